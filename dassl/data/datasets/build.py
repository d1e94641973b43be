"""Dataset registry and factory."""
from __future__ import annotations

from dassl.utils import Registry

DATASET_REGISTRY = Registry("DATASET")


def build_dataset(cfg):
    """Instantiate ``DATASET_REGISTRY[cfg.DATASET.NAME](cfg)``."""
    return DATASET_REGISTRY.build(cfg.DATASET.NAME, cfg)

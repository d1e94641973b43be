"""Dataset registry and factory."""
from __future__ import annotations

from dassl.utils import Registry

DATASET_REGISTRY = Registry("DATASET")


def build_dataset(cfg):
    """Instantiate ``DATASET_REGISTRY[cfg.DATASET.NAME](cfg)``."""
    name = cfg.DATASET.NAME
    cls = DATASET_REGISTRY.get(name)
    if cfg.VERBOSE:
        print(f"Loading dataset: {name}")
    return cls(cfg)

"""Trainer registry and factory."""
from __future__ import annotations

from dassl.utils import Registry

TRAINER_REGISTRY = Registry("TRAINER")


def build_trainer(cfg):
    """Instantiate ``TRAINER_REGISTRY[cfg.TRAINER.NAME](cfg)`` (lookup errors suggest a name)."""
    return TRAINER_REGISTRY.build(cfg.TRAINER.NAME, cfg)

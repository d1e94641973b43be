"""Trainer registry and factory."""
from __future__ import annotations

from dassl.utils import Registry

TRAINER_REGISTRY = Registry("TRAINER")


def build_trainer(cfg):
    """Instantiate ``TRAINER_REGISTRY[cfg.TRAINER.NAME](cfg)`` (lookup errors suggest a name)."""
    name = cfg.TRAINER.NAME
    cls = TRAINER_REGISTRY.get(name)
    if cfg.VERBOSE:
        print(f"Loading trainer: {name}")
    return cls(cfg)

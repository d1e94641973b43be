"""Trainer registry and factory."""
from __future__ import annotations

from typing import Any

from dassl.utils import Registry

from .trainer import NOT_VALIDATED

TRAINER_REGISTRY = Registry("TRAINER")


def build_trainer(cfg, validated: Any = NOT_VALIDATED, **options: Any):
    """Instantiate ``TRAINER_REGISTRY[cfg.TRAINER.NAME](cfg)`` (lookup errors suggest a name).

    ``validated``: what the trainer class's ``validate_cfg(cfg)`` returned, when the caller has
    already validated ``cfg`` (passed on, so the trainer does not validate it again);
    ``options``: further keyword arguments of that trainer's constructor.
    """
    if validated is not NOT_VALIDATED:
        options["validated"] = validated
    return TRAINER_REGISTRY.build(cfg.TRAINER.NAME, cfg, **options)

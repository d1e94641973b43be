"""Evaluator registry and factory."""
from __future__ import annotations

from dassl.utils import Registry

EVALUATOR_REGISTRY = Registry("EVALUATOR")


def build_evaluator(cfg, **kwargs):
    """Instantiate ``EVALUATOR_REGISTRY[cfg.TEST.EVALUATOR](cfg, **kwargs)``."""
    name = cfg.TEST.EVALUATOR
    cls = EVALUATOR_REGISTRY.get(name)
    if cfg.VERBOSE:
        print(f"Loading evaluator: {name}")
    return cls(cfg, **kwargs)

"""OpenAI-compatible CLIP: ``from clip import clip`` (CoOp style) and ``import clip; clip.load(...)``.

Submodules: ``clip.clip`` (load, tokenize, available_models), ``clip.model`` (architecture,
build_model, convert_weights), ``clip.simple_tokenizer``, ``clip.weights`` (name table, cache,
downloads), ``clip.checkpoint`` (reading weights files), ``clip.random_weights`` (test weights).

Names load on first use (PEP 562), so that ``python -m clip.random_weights --help`` answers
without importing torch and torchvision.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_SUBMODULES = ("clip", "model", "simple_tokenizer")
_FUNCTIONS = ("available_models", "build_model", "load", "load_weights", "tokenize")  # of clip.clip

__all__ = [*_SUBMODULES, *_FUNCTIONS]


def __getattr__(name: str) -> Any:
    """A submodule or a function of ``clip.clip``, imported on first use."""
    if name in _SUBMODULES:
        value = import_module(f"{__name__}.{name}")
    elif name in _FUNCTIONS:
        value = getattr(import_module(f"{__name__}.clip"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value

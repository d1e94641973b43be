"""IQA datasets for CLIP-AGIQA: importing this package registers "AGIQA", "AGIQA1K",
"AIGCIQA2023" and "AIGIQA20K" in dassl's ``DATASET_REGISTRY``; ``add_dataset_config(cfg)``
declares their config keys. ``registry.py`` holds each database's facts once (folder, configs,
label columns, licence, download sources); ``python -m datasets.fetch`` downloads them, verified.

The package's names load on first use (PEP 562), so that ``python -m datasets.<command> --help``
answers without importing torch: that command's own import of this package (while Python
locates the command, ``sys.argv[0]`` is ``"-m"``) registers nothing: the command imports what
it needs (``datasets.fetch`` calls ``register()``), and the first use of a name below registers
all. Every other import registers at once.
"""
from __future__ import annotations

import sys
from importlib import import_module
from typing import Any

# Public name -> the submodule that defines it.
_HOMES = {"add_dataset_config": "config", "DatasetError": "errors", "AGIQA": "agiqa",
          "AGIQA1K": "agiqa1k", "AIGCIQA2023": "aigciqa2023", "AIGIQA20K": "aigiqa20k"}
_DATASET_MODULES = ("agiqa", "agiqa1k", "aigciqa2023", "aigiqa20k")

__all__ = ["register", *_HOMES]


def register() -> None:
    """Register the four datasets in ``DATASET_REGISTRY`` (importing their modules; once)."""
    for module in _DATASET_MODULES:
        import_module(f"{__name__}.{module}")


def __getattr__(name: str) -> Any:
    """A public name, loaded (and every dataset registered) on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    register()
    value = getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value


if getattr(sys, "argv", [None])[:1] != ["-m"]:
    register()

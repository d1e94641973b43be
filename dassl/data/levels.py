"""The quality levels of upstream CLIP-AGIQA: six names, worst first.

Defined once here (the lowest package that both ``datasets`` and ``trainers`` may import):
``DATASET.LEVEL_NAMES`` defaults to them (``datasets.config``), and a run of the original code,
which stores no config, is rebuilt with them (``trainers.inference.run_model``, ``score.py``).
"""
from __future__ import annotations

__all__ = ["UPSTREAM_LEVEL_NAMES"]

UPSTREAM_LEVEL_NAMES: tuple[str, ...] = ("terrible", "bad", "poor", "average", "good", "perfect")

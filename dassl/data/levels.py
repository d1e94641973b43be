"""Default class names of a quality-level dataset: six levels, worst first.

A quality dataset's classes are ordered levels; these six are the ones the original code's
datasets declared, and ``DATASET.LEVEL_NAMES`` defaults to them (``datasets.config``). They are
here, in the data plumbing, because this is the one package that both the dataset loaders and
the trainers may import (a run of the original code stores no level names, so the model is
rebuilt with these: ``trainers.inference.run_model``, ``score.py``).
"""
from __future__ import annotations

__all__ = ["UPSTREAM_LEVEL_NAMES"]

UPSTREAM_LEVEL_NAMES: tuple[str, ...] = ("terrible", "bad", "poor", "average", "good", "perfect")

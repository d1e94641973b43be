"""Config files made for one database: the naming rule shared by train.py and the sweep.

A method or ablation yaml whose file name ends in ``_<dataset>``, where ``<dataset>`` is a dataset
yaml stem of the registry (``datasets/registry.py``, the stems of ``configs/datasets/*.yaml``) in
lower case (``levels5_agiqa``, ``levels2_aigciqa2023``), holds settings valid for that database
only (MOS cut points on its scale, its prompts): it trains only with that dataset yaml.
"""
from __future__ import annotations

import os
from pathlib import Path

from .registry import config_names

__all__ = ["database_tag", "config_applies_to"]


def database_tag(config_stem: str) -> str | None:
    """The dataset yaml stem (lower case) ``config_stem`` is named for: the longest one that
    ends it after an underscore, else None (a config for any database)."""
    name = config_stem.lower()
    ordered = sorted((s.lower() for s in config_names()), key=len, reverse=True)
    return next((stem for stem in ordered if name.endswith(f"_{stem}")), None)


def config_applies_to(config_file: str | os.PathLike,
                      dataset_config_file: str | os.PathLike) -> bool:
    """Whether the method yaml ``config_file`` may train with the dataset yaml
    ``dataset_config_file``: yes unless it is named for another database (``database_tag``)."""
    tag = database_tag(Path(config_file).stem)
    return tag is None or Path(dataset_config_file).stem.lower() == tag

"""Dataset-independent assembly: config options -> split, levelled parts (no dassl import).

Each dataset module reads its label table and finds its image folder; ``assemble`` then applies
the configured split and MOS->level mapping and checks the images, producing a ``LevelledData``
that the dassl-facing classes turn into ``Datum`` lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from .config import DATASET_KEYS
from .errors import DatasetError
from .layout import check_images
from .levels import mos_to_levels, resolve_thresholds, validate_levels
from .prompts import attach_prompts
from .splits import split_table

__all__ = ["DatasetOptions", "LevelledData", "read_options", "resolve_task", "assemble"]

PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetOptions:
    """The ``DATASET.*`` values the loaders use (see ``datasets/config.py`` for their meaning)."""

    root: str
    task: str
    level_names: tuple[str, ...]
    level_thresholds: tuple[float, ...]
    split_seed: int
    test_ratio: float
    val_ratio: float
    check_files: bool
    split_mode: str = "random"
    prompt_file: str = ""
    skip_bad_images: bool = False


@dataclass(frozen=True)
class LevelledData:
    """A dataset ready for ``Datum`` construction.

    ``parts`` maps "train"/"val"/"test" to tables in split order with columns ``name`` (str),
    ``mos`` (float64), ``label`` (int64 level index) and, where available, ``prompt``.
    """

    task: str
    image_dir: Path
    level_names: list[str]
    thresholds: list[float]
    parts: dict[str, pd.DataFrame]


def _normalised(value: Any) -> str:
    return str(value).strip().lower()


# DatasetOptions field -> conversion of its config value; the field of DATASET.<KEY> is
# key.lower(). The SPLIT_MODE value itself is checked by splits.split_table.
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "root": str, "task": _normalised, "level_names": tuple, "level_thresholds": tuple,
    "split_seed": int, "test_ratio": float, "val_ratio": float, "check_files": bool,
    "split_mode": _normalised, "prompt_file": lambda value: str(value).strip(),
    "skip_bad_images": bool,
}


def read_options(cfg: Any) -> DatasetOptions:
    """Collect the dataset options from ``cfg.DATASET``: ``ROOT`` plus every key of
    ``add_dataset_config`` (``DATASET_KEYS``), one ``DatasetOptions`` field each."""
    node = cfg.DATASET
    values = {}
    for key in ("ROOT", *DATASET_KEYS):
        if key not in node:
            raise DatasetError(f"config key DATASET.{key} is not declared: call "
                               "datasets.add_dataset_config(cfg) before merging config files")
        field = key.lower()
        values[field] = _CONVERT[field](node[key])
    return DatasetOptions(**values)


def resolve_task(task: str, known: Sequence[str], dataset: str) -> str:
    """Return ``task`` (or the first known task when empty) after checking it is supported."""
    task = task or known[0]
    if task not in known:
        raise DatasetError(f"DATASET.TASK {task!r} is not supported by {dataset}; "
                           f"choose one of {list(known)}")
    return task


def assemble(table: pd.DataFrame, image_dir: Path, options: DatasetOptions, task: str,
             default_thresholds: Mapping[str, Sequence[float]]) -> LevelledData:
    """Split ``table``, attach level labels and (if ``options.check_files``) check the images.

    ``default_thresholds`` maps each task to the thresholds used when
    ``DATASET.LEVEL_THRESHOLDS`` is empty. Levels are computed per row, so they do not depend on
    the split. The prompts of ``options.prompt_file``, when set, replace the table's own
    ``prompt`` column (for a prompt-disjoint split and for prompt-conditioned level prompts).
    With ``options.split_mode == "prompt"`` the split is prompt-disjoint.
    """
    thresholds = resolve_thresholds(options.level_thresholds, default_thresholds[task])
    names, thresholds = validate_levels(options.level_names, thresholds)
    if options.check_files:
        check_images(image_dir, table["name"].tolist())
    labelled = table.copy()
    if options.prompt_file:
        labelled = attach_prompts(labelled, options.prompt_file)
    labelled["label"] = mos_to_levels(labelled["mos"].to_numpy(), thresholds)
    split = split_table(labelled, options.test_ratio, options.split_seed, options.val_ratio,
                        mode=options.split_mode)
    return LevelledData(task=task, image_dir=image_dir, level_names=names, thresholds=thresholds,
                        parts=split.tables(labelled))

"""Dataset-independent assembly: config options -> split, levelled parts (no dassl import).

Each dataset module reads its label table and finds its image folder; ``assemble`` then applies
the configured split and MOS->level mapping and checks the images, producing a ``LevelledData``
that the dassl-facing classes turn into ``Datum`` lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .config import DATASET_KEYS
from .errors import DatasetError
from .labels import sha256_file
from .layout import check_images
from .levels import mos_to_levels, quantile_thresholds, resolve_thresholds, validate_levels
from .prompts import attach_prompts
from .split_files import resolve_split_path, split_file_list, split_from_file
from .splits import Split, split_table
from dassl.names import shown

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
    label_file: str = ""
    label_sheet: str = ""
    drop_duplicate_names: bool = False
    split_file: str = ""
    split_index: int = -1
    fetch: bool = True
    check_parts: tuple[str, ...] = ()

    def checked_parts(self) -> tuple[str, ...]:
        """The parts whose images are checked (``CHECK_PARTS``; every part when empty)."""
        unknown = [p for p in self.check_parts if p not in PARTS]
        if unknown:
            raise DatasetError(f"DATASET.CHECK_PARTS {list(self.check_parts)}: {unknown[0]!r} is "
                               f"not a part; the parts are {list(PARTS)}")
        return self.check_parts or PARTS


@dataclass(frozen=True)
class LevelledData:
    """A dataset ready for ``Datum`` construction.

    ``parts`` maps "train"/"val"/"test" to tables in split order with columns ``name`` (str),
    ``mos`` (float64), ``label`` (int64 level index), where available ``prompt``, and
    ``folder`` (str) when the images of a database lie in several folders (else every image is
    in ``image_dir``). ``provenance``: where the labels and the split came from (file paths
    and SHA-256, split settings, threshold rule), as ``results.json`` records it.
    """

    task: str
    image_dir: Path
    level_names: list[str]
    thresholds: list[float]
    parts: dict[str, pd.DataFrame]
    provenance: dict = field(default_factory=dict)


def _normalised(value: Any) -> str:
    return str(value).strip().lower()


# DatasetOptions field -> conversion of its config value; the field of DATASET.<KEY> is
# key.lower(). The SPLIT_MODE value itself is checked by splits.split_table.
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "root": str, "task": _normalised, "level_names": tuple, "level_thresholds": tuple,
    "split_seed": int, "test_ratio": float, "val_ratio": float, "check_files": bool,
    "split_mode": _normalised, "prompt_file": lambda value: str(value).strip(),
    "skip_bad_images": bool, "label_file": lambda value: str(value).strip(),
    "label_sheet": lambda value: str(value).strip(), "drop_duplicate_names": bool,
    "split_file": lambda value: str(value).strip(), "split_index": int, "fetch": bool,
    "check_parts": lambda value: tuple(_normalised(v) for v in value),
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
        raise DatasetError(f"DATASET.TASK {shown(task)} is not supported by {dataset}; "
                           f"choose one of {list(known)}")
    return task


def file_record(path: Path) -> dict:
    """``{"path", "sha256"}`` of a label or split file."""
    return {"path": str(Path(path).resolve()), "sha256": sha256_file(path)}


def choose_split(table: pd.DataFrame, options: DatasetOptions, base: Path | None,
                 fixed_split: Split | None = None) -> tuple[Split, dict]:
    """The split of ``table`` and its provenance record.

    In order: ``SPLIT_MODE all`` (every row tested), ``SPLIT_FILE`` (+ ``SPLIT_INDEX``, relative
    to the database folder ``base``), the database's ``fixed_split`` (AIGIQA-20K's official
    membership), else ``split_table`` with the seed and ratios.
    """
    if options.split_index >= 0 and not options.split_file:
        raise DatasetError(f"DATASET.SPLIT_INDEX {options.split_index} needs DATASET.SPLIT_FILE "
                           "(the folder holding the numbered split folders)")
    record: dict[str, Any] = {"mode": options.split_mode}
    if options.split_mode == "all":
        if options.split_file:
            raise DatasetError("DATASET.SPLIT_MODE all puts every row in the test part: leave "
                               "DATASET.SPLIT_FILE empty")
        return split_table(table, mode="all"), record
    if options.split_file:
        if options.split_mode != "random":
            raise DatasetError(f"DATASET.SPLIT_FILE sets the split: DATASET.SPLIT_MODE "
                               f"{options.split_mode!r} cannot apply as well (leave it 'random')")
        path = resolve_split_path(options.split_file, options.split_index,
                                  base if base is not None else Path.cwd())
        split = split_from_file(table, path)
        record.update(mode="file", file=str(path.resolve()), index=options.split_index,
                      files=[file_record(f) for f in split_file_list(path)])
        unassigned = len(table) - sum(len(getattr(split, part)) for part in PARTS)
        if unassigned:
            print(f"Split file {shown(path)}: {unassigned} of {len(table)} label rows are in no part "
                  "and are not used")
        return split, record
    if fixed_split is not None:
        record.update(mode="official")
        return fixed_split, record
    record.update(seed=options.split_seed, test_ratio=options.test_ratio,
                  val_ratio=options.val_ratio)
    return split_table(table, options.test_ratio, options.split_seed, options.val_ratio,
                       mode=options.split_mode), record


def _thresholds(options: DatasetOptions, default: Sequence[float] | None, table: pd.DataFrame,
                split: Split) -> tuple[list[float], list[str], str]:
    """Level names, thresholds and the rule that gave them ("configured", "database default"
    or "training quantiles": the L-quantiles of the training part's MOS, all rows without one)."""
    if len(options.level_thresholds):
        names, cuts = validate_levels(options.level_names, options.level_thresholds)
        return cuts, names, "configured"
    if default is not None:
        names, cuts = validate_levels(options.level_names, resolve_thresholds((), default))
        return cuts, names, "database default"
    rows = split.train if len(split.train) else np.arange(len(table))
    cuts = quantile_thresholds(table["mos"].to_numpy()[rows], len(options.level_names))
    names, cuts = validate_levels(options.level_names, cuts)
    return cuts, names, "training quantiles" if len(split.train) else "quantiles of all rows"


def check_table_images(table: pd.DataFrame, image_dir: Path, searched: Path | None = None) -> None:
    """Every image of ``table`` must exist, in its ``folder`` when it has one. ``searched``: the
    database folder ``find_image_dir`` searched, named when no image is found at all."""
    if "folder" not in table:
        check_images(image_dir, table["name"].tolist(), searched)
        return
    for folder, group in table.groupby("folder", sort=False):
        check_images(Path(folder), group["name"].tolist())


def assemble(table: pd.DataFrame, image_dir: Path, options: DatasetOptions, task: str,
             default_thresholds: Mapping[str, Sequence[float] | None], *,
             base: Path | None = None, label_files: Sequence[Path] = (),
             fixed_split: Split | None = None) -> LevelledData:
    """Split ``table``, attach level labels and (if ``options.check_files``) check the images.

    ``default_thresholds`` maps each task to the thresholds used when
    ``DATASET.LEVEL_THRESHOLDS`` is empty; None there means the L-quantiles of the training
    split's MOS (``levels.quantile_thresholds``). Levels are computed per row. The prompts of
    ``options.prompt_file``, when set, replace the table's own ``prompt`` column (for a
    prompt-disjoint split and for prompt-conditioned level prompts). With
    ``options.split_mode == "prompt"`` the split is prompt-disjoint; see ``choose_split`` for
    split files, ``SPLIT_MODE all`` and ``fixed_split``. ``base`` is the database folder
    (relative ``SPLIT_FILE`` paths start there), ``label_files`` the files the table was read
    from (for the provenance record).
    """
    labelled = table.copy()
    if options.prompt_file:
        labelled = attach_prompts(labelled, options.prompt_file)
    split, split_record = choose_split(labelled, options, base, fixed_split)
    if options.check_files:
        rows = np.concatenate([getattr(split, part) for part in options.checked_parts()])
        check_table_images(labelled.iloc[np.sort(rows)] if options.check_parts else labelled,
                           image_dir, searched=base)
    thresholds, names, rule = _thresholds(options, default_thresholds[task], labelled, split)
    labelled["label"] = mos_to_levels(labelled["mos"].to_numpy(), thresholds)
    provenance = {"label_files": [file_record(f) for f in label_files], "split": split_record,
                  "level_thresholds": {"values": thresholds, "rule": rule}}
    return LevelledData(task=task, image_dir=image_dir, level_names=names, thresholds=thresholds,
                        parts=split.tables(labelled), provenance=provenance)

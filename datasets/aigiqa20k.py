"""AIGIQA-20K (image track of AIGCQA-30K, NTIRE 2024), registered as "AIGIQA20K".

On disk: ``DATASET.ROOT/AIGIQA-20K/`` holds the official split files ``info_train.xlsx``
(header ``name,prompt,mos``, 14,000 rows), ``info_val.xlsx`` (2,000) and ``info_test.xlsx``
(4,000; both ``name,prompt`` without MOS), or CSVs of the same names and columns, and the
images either in ``train/``, ``val/``, ``test/`` or all in one flat folder (the database
folder itself or one sub-folder of it). Names are ``<Model>_<4 digits>.png``.

The official val/test MOS are not public, so the default splits the 14,000 labelled training
rows into train / (val) / test with ``SPLIT_SEED``, ``TEST_RATIO`` and ``VAL_RATIO``. A user who
holds a full ``name,prompt,mos`` file sets ``DATASET.LABEL_FILE`` (relative to the database
folder): the official 14,000 / 2,000 / 4,000 membership of the info files is then the split.
The level thresholds are the sextiles of the training split's MOS (no published ones).
Blind predictions for the official val or test names: ``score.py RUN --list info_test.xlsx``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dassl.data.datasets import DATASET_REGISTRY
from dassl.names import shown

from .base import LevelDataset
from .core import DatasetOptions, LevelledData, assemble, resolve_task
from .errors import SHOW_MISSING, DatasetError, MissingDataError, describe_dir
from .labels import read_label_table
from .layout import dataset_folder, find_file, find_image_dir, label_file_path
from .registry import AIGIQA20K as DATABASE
from .splits import Split

__all__ = ["AIGIQA20K", "load_aigiqa20k", "official_split", "info_file", "FOLDER", "PARTS",
           "DEFAULT_THRESHOLDS"]

FOLDER = DATABASE.folder
MOS_COLUMN = DATABASE.task_columns["quality"]
PARTS = ("train", "val", "test")
# None: the L-quantiles of the training split's MOS (datasets.levels.quantile_thresholds).
DEFAULT_THRESHOLDS = {"quality": None}


def info_file(base: Path, part: str) -> Path:
    """``info_<part>.xlsx`` (or ``.csv``) in the database folder or one folder deeper."""
    names = [f"info_{part}.xlsx", f"info_{part}.csv"]
    path = find_file(base, names, f"AIGIQA-20K {part} list")
    if path is None:
        raise MissingDataError(f"AIGIQA-20K official {part} list {base / names[0]} (or "
                           f"{names[1]}) not found; {describe_dir(base)}")
    return path


def official_split(table: pd.DataFrame, lists: dict[str, pd.DataFrame],
                   source: Path) -> Split:
    """Row positions of ``table`` (the full label table) per official part, in list order.

    Every listed name must be in ``table`` (else ``DatasetError`` naming the first ones); rows
    of ``table`` that no list names belong to no part.
    """
    position = {name: i for i, name in enumerate(table["name"])}
    parts = {}
    for part, listing in lists.items():
        missing = [n for n in listing["name"] if n not in position]
        if missing:
            raise DatasetError(
                f"label file {shown(source)} lacks {len(missing)} of the {len(listing)} images of the "
                f"official {part} list, e.g. {', '.join(map(repr, missing[:SHOW_MISSING]))}")
        parts[part] = np.asarray([position[n] for n in listing["name"]], dtype=np.int64)
    return Split(**parts)


def _image_folder(base: Path, part: str, names: list[str]) -> Path:
    """The folder holding ``names`` (official ``part``): ``base/part`` or the flat folder."""
    return find_image_dir(list(dict.fromkeys([base / part, base])), names)


def load_aigiqa20k(options: DatasetOptions) -> LevelledData:
    """Read AIGIQA-20K's labels, split them and attach levels (see the module docstring)."""
    task = resolve_task(options.task, list(DEFAULT_THRESHOLDS), "AIGIQA20K")
    base = dataset_folder(options.root, FOLDER)
    train_file = info_file(base, "train")
    full_file = label_file_path(base, options.label_file)
    if full_file is None:
        table = read_label_table(train_file, MOS_COLUMN, prompt_column="prompt",
                                 sheet=options.label_sheet)
        table["folder"] = str(_image_folder(base, "train", table["name"].tolist()))
        return assemble(table, base, options, task, DEFAULT_THRESHOLDS, base=base,
                        label_files=[train_file])
    files = {"train": train_file, **{part: info_file(base, part) for part in PARTS[1:]}}
    lists = {part: read_label_table(path, None, sheet=options.label_sheet)
             for part, path in files.items()}
    table = read_label_table(full_file, MOS_COLUMN, prompt_column="prompt",
                             sheet=options.label_sheet)
    split = official_split(table, lists, full_file)
    if sum(len(getattr(split, part)) for part in PARTS) < len(table):
        print(f"Label file {full_file}: {len(table) - sum(len(lists[p]) for p in PARTS)} row(s) "
              "are in no official list and are not used")
    # Keep the listed rows only, train then val then test; the split becomes three ranges.
    pieces, start, ranges = [], 0, {}
    for part in PARTS:
        rows = table.iloc[getattr(split, part)].copy()
        rows["folder"] = str(_image_folder(base, part, rows["name"].tolist()))
        pieces.append(rows)
        ranges[part] = np.arange(start, start + len(rows), dtype=np.int64)
        start += len(rows)
    table = pd.concat(pieces, ignore_index=True)
    split = Split(**ranges)
    return assemble(table, base, options, task, DEFAULT_THRESHOLDS, base=base,
                    label_files=[full_file, *files.values()], fixed_split=split)


@DATASET_REGISTRY.register()
class AIGIQA20K(LevelDataset):
    """AIGIQA-20K: 14,000 labelled rows (default split 11,200 train / 2,800 test), or the
    official 14,000 / 2,000 / 4,000 with a full label file."""

    @staticmethod
    def load(options: DatasetOptions) -> LevelledData:
        return load_aigiqa20k(options)

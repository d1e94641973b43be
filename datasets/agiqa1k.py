"""AGIQA-1K (Zhang et al., "A Perceptual Quality Assessment Exploration for AIGC Images",
2023), registered as "AGIQA1K".

On disk: ``DATASET.ROOT/AGIQA-1K/AIGC_MOS_Zscore.xlsx`` (one sheet, header ``Image,Prompt,MOS``,
1,080 rows, MOS in [0, 5]) or a CSV with the same columns (``AIGC_MOS_Zscore.csv``, or any file
named by ``DATASET.LABEL_FILE``), and the images in ``ROOT/AGIQA-1K/file/`` (the release's
archive folder) or directly beside the label file. Prompts come from the Prompt column.

The published file lists ``dreamStudio_8_9_1_1.jpg`` on two rows (two MOS) and
``dreamStudio_8_5_0_0.jpg`` on none. The default keeps both rows, as every published split does;
``DATASET.DROP_DUPLICATE_NAMES True`` keeps only the first. Either way the log names the rows
once. No official split exists: the default is the same seeded 80/20 split as AGIQA-3K, and
``DATASET.SPLIT_FILE`` reads fixed splits such as the peer folders. The level thresholds are the
sextiles of the training split's MOS (no published ones).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dassl.data.datasets import DATASET_REGISTRY

from .base import LevelDataset
from .core import DatasetOptions, LevelledData, assemble, resolve_task
from .errors import MissingDataError, describe_dir
from .labels import duplicate_rows, read_label_table
from .layout import dataset_folder, find_file, find_image_dir, label_file_path
from .registry import AGIQA1K as DATABASE

__all__ = ["AGIQA1K", "load_agiqa1k", "report_duplicates", "FOLDER", "LABEL_FILES",
           "IMAGE_FOLDER", "COLUMNS", "DEFAULT_THRESHOLDS"]

FOLDER = DATABASE.folder
LABEL_FILES = ("AIGC_MOS_Zscore.xlsx", "AIGC_MOS_Zscore.csv")
IMAGE_FOLDER = "file"
COLUMNS = {"name": DATABASE.name_column, "prompt": "Prompt",
           "mos": DATABASE.task_columns["quality"]}
# None: the L-quantiles of the training split's MOS (datasets.levels.quantile_thresholds).
DEFAULT_THRESHOLDS = {"quality": None}


def report_duplicates(table: pd.DataFrame, path: Path, kept: str) -> str | None:
    """One log line naming every duplicated image name with its rows and MOS; None if none.

    ``kept`` says what the loader does with them ("both rows kept", ...).
    """
    groups = duplicate_rows(table["name"])
    if not groups:
        return None
    names, mos = table["name"].tolist(), table["mos"].tolist()
    described = "; ".join(
        f"{names[rows[0]]!r} at data rows {rows} (MOS {', '.join(f'{mos[r]:.4f}' for r in rows)})"
        for rows in groups)
    return f"Label file {path}: image name listed on several rows: {described}; {kept}"


def load_agiqa1k(options: DatasetOptions) -> LevelledData:
    """Read AGIQA-1K's label file, split it and attach levels (see ``core.assemble``)."""
    task = resolve_task(options.task, list(DEFAULT_THRESHOLDS), "AGIQA1K")
    base = dataset_folder(options.root, FOLDER)
    path = label_file_path(base, options.label_file) or find_file(
        base, list(LABEL_FILES), "AGIQA-1K label file")
    if path is None:
        raise MissingDataError(f"AGIQA-1K label file {base / LABEL_FILES[0]} (or "
                           f"{LABEL_FILES[1]}, columns {list(COLUMNS.values())}) not found (also "
                           f"looked one folder deeper); {describe_dir(base)}")
    table = read_label_table(path, COLUMNS["mos"], name_column=COLUMNS["name"],
                             prompt_column=COLUMNS["prompt"], sheet=options.label_sheet,
                             duplicates="keep")
    kept = ("only the first row kept (DATASET.DROP_DUPLICATE_NAMES True)"
            if options.drop_duplicate_names else
            "every row kept, as the published splits do (DATASET.DROP_DUPLICATE_NAMES True "
            "keeps only the first)")
    message = report_duplicates(table, path, kept)
    if message is not None:
        print(message)
    if options.drop_duplicate_names:
        table = table[~table["name"].duplicated(keep="first")].reset_index(drop=True)
    bases = list(dict.fromkeys([base / IMAGE_FOLDER, path.parent / IMAGE_FOLDER, path.parent,
                                base]))
    image_dir = find_image_dir(bases, table["name"].tolist())
    return assemble(table, image_dir, options, task, DEFAULT_THRESHOLDS, base=base,
                    label_files=[path])


@DATASET_REGISTRY.register()
class AGIQA1K(LevelDataset):
    """AGIQA-1K: 1,080 label rows (1,079 distinct images); default split 864 train / 216 test."""

    @staticmethod
    def load(options: DatasetOptions) -> LevelledData:
        return load_agiqa1k(options)

"""AIGCIQA2023 (Wang et al., 2023), registered as "AIGCIQA2023".

On disk: images ``DATASET.ROOT/AIGCIQA2023/allimg/<i>.png`` (or ``allimg/<sub>/<i>.png``) and
the MOS of the task (quality, authenticity, correspondence = k 1, 2, 3), the first found of:

1. ``MOS/mosz{k}.mat`` as the database ships them (variable ``MOSz``, shape (N, 1), row i =
   image ``i.png``; ``python -m datasets.fetch AIGCIQA2023`` unpacks them);
2. ``mos_{task}.csv`` as ``mat2csv.py`` writes them (columns ``name,mos``);
3. ``moz{k}.txt`` as the Hugging Face repository ``IntMeGroup/AIGCIQA2023`` (linked from the
   official GitHub repository) holds them: N numbers in image order, row i = image ``i.png``;
4. ``AIGCIQA2023.csv``, the all-in-one table of pull request 4 of ``wangjiarui153/AIGCIQA2023``
   (columns ``name``, ``prompt``, ``quality_mos``, ``authenticity_mos``,
   ``correspondence_mos``, ...; the registry's ``task_columns``), which also gives the prompts.

The ``.mat`` file is preferred because the others are derived from it. ``DATASET.LABEL_FILE``
names one of these files instead (its kind found from its suffix and header). Each may also sit
one folder deeper (``ROOT/AIGCIQA2023/<sub>/MOS/...``), and the images in any folder up to three
levels below the dataset folder: the release unpacks to ``DATA/MOS/mosz*.mat`` and
``Image/allimg/<i>.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from dassl.data.datasets import DATASET_REGISTRY
from dassl.names import shown
from dassl.utils.image_files import find_images

from .base import LevelDataset
from .core import DatasetOptions, LevelledData, assemble, resolve_task
from .errors import DatasetError, MissingDataError, describe_dir
from .labels import (read_label_table, read_mat_table, read_score_list,
                     read_text_table)
from .layout import dataset_folder, find_file, find_image_dir, label_file_path
from .registry import AIGCIQA2023 as DATABASE

__all__ = ["AIGCIQA2023", "load_aigciqa2023", "mos_sources", "FOLDER", "IMAGE_FOLDER",
           "TASK_MAT_INDEX", "DEFAULT_THRESHOLDS"]

FOLDER = DATABASE.folder
IMAGE_FOLDER = "allimg"
# Task -> k of MOS/mosz{k}.mat (the database's numbering).
TASK_MAT_INDEX = {"quality": 1, "authenticity": 2, "correspondence": 3}
# Upstream's fixed 10-point bins on the ~27..74 MOS scale, the same for every task.
DEFAULT_THRESHOLDS = {task: (30.0, 40.0, 50.0, 60.0, 70.0) for task in TASK_MAT_INDEX}

_NUMBERED_PNG = re.compile(r"^(\d+)\.png$")


ALL_IN_ONE = "AIGCIQA2023.csv"


def mos_sources(task: str) -> tuple[list[str], list[str]]:
    """Candidate ``.mat`` and CSV paths (relative to the dataset folder) for ``task``."""
    k = TASK_MAT_INDEX[task]
    return [f"MOS/mosz{k}.mat", f"mosz{k}.mat"], [f"mos_{task}.csv"]


def _candidates(task: str) -> list[tuple[str, list[str]]]:
    """``(kind, names)`` in the order of the module docstring."""
    mat_names, csv_names = mos_sources(task)
    return [("mat", mat_names), ("csv", csv_names),
            ("txt", [f"moz{TASK_MAT_INDEX[task]}.txt"]), ("all", [ALL_IN_ONE])]


def _kind_of(path: Path, task: str) -> str:
    """The kind of a ``DATASET.LABEL_FILE``: by suffix, and a table holding the task's column
    of the all-in-one CSV is read as one."""
    suffix = path.suffix.lower()
    if suffix in (".mat", ".txt"):
        return suffix[1:]
    header = read_text_table(path, ()).columns
    return "all" if DATABASE.task_columns[task] in header else "csv"


def read_task_mos(path: Path, kind: str, task: str, sheet: str = "") -> pd.DataFrame:
    """The label table of ``task`` from ``path`` of ``kind`` (see ``_candidates``)."""
    if kind == "mat":
        return read_mat_table(path)
    if kind == "txt":
        return read_score_list(path)
    if kind == "all":
        return read_label_table(path, DATABASE.task_columns[task],
                                name_column=DATABASE.name_column, prompt_column="prompt",
                                sheet=sheet)
    return read_label_table(path, "mos", sheet=sheet)


def find_mos_file(base: Path, task: str, label_file: str) -> tuple[Path, str]:
    """``(path, kind)`` of the task's MOS under the database folder ``base``
    (``label_file``: ``DATASET.LABEL_FILE``); ``MissingDataError`` naming every candidate."""
    given = label_file_path(base, label_file)
    if given is not None:
        return given, _kind_of(given, task)
    for kind, names in _candidates(task):
        path = find_file(base, names, f"AIGCIQA2023 {task} MOS")
        if path is not None:
            return path, kind
    (_, mat), (_, csv), (_, txt), (_, table) = _candidates(task)
    raise MissingDataError(
        f"AIGCIQA2023 {task} MOS not found: expected {base / mat[0]} (variable MOSz), "
        f"{base / csv[0]} (columns name,mos, see mat2csv.py), {base / txt[0]} (one score per "
        f"image, in order) or {base / table[0]} (column {DATABASE.task_columns[task]}); "
        f"{describe_dir(base)}; {describe_dir(base / 'MOS')}")


def load_aigciqa2023(options: DatasetOptions) -> LevelledData:
    """Read the task's MOS, split them and attach levels (see ``core.assemble``)."""
    task = resolve_task(options.task, list(TASK_MAT_INDEX), "AIGCIQA2023")
    base = dataset_folder(options.root, FOLDER)
    source, kind = find_mos_file(base, task, options.label_file)
    table = read_task_mos(source, kind, task, options.label_sheet)
    data_root = source.parent.parent if source.parent.name == "MOS" else source.parent
    # allimg/ where the loader documents it, beside the MOS folder, or anywhere below the
    # dataset folder (the release unpacks to AIGCIQA2023/Image/allimg/).
    bases = list(dict.fromkeys([base / IMAGE_FOLDER, data_root / IMAGE_FOLDER, base]))
    image_dir = find_image_dir(bases, table["name"].tolist())
    data = assemble(table, image_dir, options, task, DEFAULT_THRESHOLDS, base=base,
                    label_files=[source])
    if options.check_files:
        _check_no_extra_images(image_dir, len(table), source)
    return data


def _check_no_extra_images(image_dir: Path, rows: int, source: Path) -> None:
    """Catch a MOS file shorter than the image set (e.g. a truncated or wrong ``.mat``).

    All of ``0.png .. rows-1.png`` are known to exist at this point; numbered images beyond
    them mean the MOS file does not cover the whole folder.
    """
    extra = sorted(int(m.group(1)) for name in find_images(image_dir, recursive=False).names
                   if (m := _NUMBERED_PNG.match(name)) and int(m.group(1)) >= rows)
    if extra:
        raise DatasetError(
            f"wrong MOS length: {shown(source)} has {rows} rows but {shown(image_dir)} also holds "
            f"{len(extra)} numbered image(s) beyond them ({extra[0]}.png .. {extra[-1]}.png)"
        )


@DATASET_REGISTRY.register()
class AIGCIQA2023(LevelDataset):
    """AIGCIQA2023: 2,400 images; reference split 1,920 train / 480 test."""

    @staticmethod
    def load(options: DatasetOptions) -> LevelledData:
        return load_aigciqa2023(options)

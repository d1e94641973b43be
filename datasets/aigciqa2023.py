"""AIGCIQA2023 (Wang et al., 2023), registered as "AIGCIQA2023".

On disk: images ``DATASET.ROOT/AIGCIQA2023/allimg/<i>.png`` (or ``allimg/<sub>/<i>.png``) and
the MOS either as the database ships them, ``MOS/mosz{1,2,3}.mat`` (variable ``MOSz``, shape
(N, 1), row i = image ``i.png``), or as the CSVs ``mat2csv.py`` writes,
``mos_{quality,authenticity,correspondence}.csv`` (columns ``name,mos``). The ``.mat`` file is
preferred when both exist because the CSV is derived from it. Either may also sit one folder
deeper (``ROOT/AIGCIQA2023/<sub>/MOS/...``), and the images in any folder up to three levels
below the dataset folder: the release unpacks to ``DATA/MOS/mosz*.mat`` and
``Image/allimg/<i>.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

from dassl.data.datasets import DATASET_REGISTRY

from .base import LevelDataset
from .core import DatasetOptions, LevelledData, assemble, resolve_task
from .errors import DatasetError, describe_dir
from .labels import read_label_table, read_mat_table
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


def mos_sources(task: str) -> tuple[list[str], list[str]]:
    """Candidate ``.mat`` and CSV paths (relative to the dataset folder) for ``task``."""
    k = TASK_MAT_INDEX[task]
    return [f"MOS/mosz{k}.mat", f"mosz{k}.mat"], [f"mos_{task}.csv"]


def load_aigciqa2023(options: DatasetOptions) -> LevelledData:
    """Read the task's MOS, split them and attach levels (see ``core.assemble``)."""
    task = resolve_task(options.task, list(TASK_MAT_INDEX), "AIGCIQA2023")
    base = dataset_folder(options.root, FOLDER)
    mat_names, csv_names = mos_sources(task)
    given = label_file_path(base, options.label_file)
    mat_path = given if given is not None and given.suffix.lower() == ".mat" else (
        None if given is not None else find_file(base, mat_names, f"AIGCIQA2023 {task} MOS"))
    if mat_path is not None:
        table = read_mat_table(mat_path)
        data_root = mat_path.parent.parent if mat_path.parent.name == "MOS" else mat_path.parent
        source = mat_path
    else:
        csv_path = given or find_file(base, csv_names, f"AIGCIQA2023 {task} MOS")
        if csv_path is None:
            raise DatasetError(
                f"AIGCIQA2023 {task} MOS not found: expected {base / mat_names[0]} (variable MOSz) "
                f"or {base / csv_names[0]} (columns name,mos, see mat2csv.py); "
                f"{describe_dir(base)}; {describe_dir(base / 'MOS')}"
            )
        table = read_label_table(csv_path, "mos", sheet=options.label_sheet)
        data_root, source = csv_path.parent, csv_path
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
    extra = sorted(int(m.group(1)) for p in image_dir.iterdir()
                   if (m := _NUMBERED_PNG.match(p.name)) and int(m.group(1)) >= rows)
    if extra:
        raise DatasetError(
            f"wrong MOS length: {source} has {rows} rows but {image_dir} also holds "
            f"{len(extra)} numbered image(s) beyond them ({extra[0]}.png .. {extra[-1]}.png)"
        )


@DATASET_REGISTRY.register()
class AIGCIQA2023(LevelDataset):
    """AIGCIQA2023: 2,400 images; reference split 1,920 train / 480 test."""

    @staticmethod
    def load(options: DatasetOptions) -> LevelledData:
        return load_aigciqa2023(options)

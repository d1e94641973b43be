"""AGIQA-3K (Li et al., TCSVT 2023), registered as "AGIQA".

On disk: ``DATASET.ROOT/AGIQA-3K/data.csv`` and the images beside it (or one folder deeper,
as unzipping the image archive often leaves them: ``ROOT/AGIQA-3K/<sub>/<name>``). ``data.csv``
may itself sit one folder deeper. Targets: ``quality`` (column ``mos_quality``, default) or
``alignment`` (``mos_align``), both on a 0..5 scale.
"""

from __future__ import annotations

from dassl.data.datasets import DATASET_REGISTRY

from .base import LevelDataset
from .core import DatasetOptions, LevelledData, assemble, resolve_task
from .errors import MissingDataError, describe_dir
from .labels import read_label_table
from .layout import dataset_folder, find_file, find_image_dir, label_file_path
from .registry import AGIQA3K as DATABASE

__all__ = ["AGIQA", "load_agiqa", "FOLDER", "LABEL_FILE", "TASK_COLUMNS", "DEFAULT_THRESHOLDS"]

FOLDER = DATABASE.folder
LABEL_FILE = "data.csv"
TASK_COLUMNS = DATABASE.task_columns
DEFAULT_THRESHOLDS = {
    # Upstream's hard-coded cut points (close to the training split's mos_quality sextiles).
    "quality": (1.231, 2.266, 2.749, 3.092, 3.456),
    # Sextiles of the reference training split's mos_align, rounded to 3 decimals
    # (same construction as the quality ones; also in configs/datasets/AGIQA_alignment.yaml).
    "alignment": (1.267, 2.343, 2.813, 3.102, 3.416),
}


def load_agiqa(options: DatasetOptions) -> LevelledData:
    """Read AGIQA-3K's label file, split it and attach levels (see ``core.assemble``)."""
    task = resolve_task(options.task, list(TASK_COLUMNS), "AGIQA")
    base = dataset_folder(options.root, FOLDER)
    csv_path = label_file_path(base, options.label_file) or find_file(
        base, [LABEL_FILE], "AGIQA-3K label file")
    if csv_path is None:
        raise MissingDataError(f"AGIQA-3K label file {base / LABEL_FILE} not found (also looked one "
                           f"folder deeper); {describe_dir(base)}")
    table = read_label_table(csv_path, TASK_COLUMNS[task], prompt_column="prompt", name_column=DATABASE.name_column,
                             sheet=options.label_sheet)
    bases = [csv_path.parent] + ([base] if csv_path.parent != base else [])
    image_dir = find_image_dir(bases, table["name"].tolist())
    return assemble(table, image_dir, options, task, DEFAULT_THRESHOLDS, base=base,
                    label_files=[csv_path])


@DATASET_REGISTRY.register()
class AGIQA(LevelDataset):
    """AGIQA-3K: 2,982 images; reference split 2,385 train / 597 test."""

    @staticmethod
    def load(options: DatasetOptions) -> LevelledData:
        return load_agiqa(options)

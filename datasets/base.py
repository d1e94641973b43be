"""Dassl-facing base class: turns a ``LevelledData`` into ``Datum`` lists on a ``DatasetBase``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from dassl.data.datasets import DatasetBase, Datum

from .core import DatasetOptions, LevelledData, read_options

__all__ = ["LevelDataset", "to_datums"]


def to_datums(part: pd.DataFrame, data: LevelledData) -> list[Datum]:
    """One ``Datum`` per row of ``part``, in order.

    ``name`` is the image name exactly as the label file gives it (split files print it),
    ``impath`` the resolved path, ``mos`` a Python float, ``label`` the level index and
    ``classname`` its level name. Existence was already checked in bulk, so ``check_file`` is off.
    """
    folder = data.image_dir
    return [
        Datum(impath=str(folder / name), label=int(label), classname=data.level_names[int(label)],
              mos=float(mos), name=name)
        for name, mos, label in zip(part["name"], part["mos"], part["label"])
    ]


class LevelDataset(DatasetBase):
    """A MOS dataset whose items carry a float ``mos`` and a quality-level label.

    Subclasses implement ``load(options) -> LevelledData``. Attributes after construction:
    ``task`` (str), ``thresholds`` (list of float, the MOS cut points used), ``dataset_dir``
    (the image folder), plus DatasetBase's ``train_x``/``val``/``test`` and ``classnames`` =
    ``DATASET.LEVEL_NAMES``. Nothing is written to disk. Like upstream, ``DATASET.NUM_SHOTS`` is
    not applied: the whole training split is used.
    """

    def __init__(self, cfg: Any) -> None:
        data = self.load(read_options(cfg))
        self.task = data.task
        self.thresholds = list(data.thresholds)
        self.dataset_dir = str(data.image_dir)
        parts = {name: to_datums(table, data) for name, table in data.parts.items()}
        super().__init__(train_x=parts["train"], val=parts["val"] or None, test=parts["test"],
                         classnames=list(data.level_names))

    @staticmethod
    def load(options: DatasetOptions) -> LevelledData:
        raise NotImplementedError

"""Train / validation / test splits over a label table (pure functions, no file access).

A *label table* is a ``pandas.DataFrame`` with one row per image, in label-file order, holding
at least ``name`` (str, image file name as the label file gives it) and ``mos`` (float), and
optionally ``prompt`` (str) for future prompt-aware splits.

The default reproduces the reference split exactly: scikit-learn's
``train_test_split(rows, test_size=0.2, random_state=42)`` over the rows in file order, with
both parts kept in that function's (shuffled) output order. The shuffle depends only on the row
count, ratio and seed, so splitting row positions is identical to splitting the table itself.
An optional validation part is carved from the training part the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .errors import DatasetError

__all__ = ["Split", "random_split_positions", "split_table", "validate_ratios"]


@dataclass(frozen=True)
class Split:
    """Row positions (into the label table) of each part, each an int64 array in split order."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def tables(self, table: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """Return ``{"train", "val", "test"}`` sub-tables of ``table`` in split order."""
        return {part: table.iloc[getattr(self, part)].reset_index(drop=True)
                for part in ("train", "val", "test")}


def validate_ratios(test_ratio: float, val_ratio: float) -> None:
    """Require ``0 < test_ratio < 1`` and ``0 <= val_ratio < 1`` (fractions of rows)."""
    if not 0.0 < float(test_ratio) < 1.0:
        raise DatasetError(f"DATASET.TEST_RATIO must be in (0, 1), got {test_ratio}")
    if not 0.0 <= float(val_ratio) < 1.0:
        raise DatasetError(f"DATASET.VAL_RATIO must be in [0, 1), got {val_ratio}")


def random_split_positions(positions: np.ndarray, ratio: float,
                           seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle-split ``positions`` into ``(kept, held_out)`` with sklearn's ``train_test_split``.

    ``held_out`` has ``ceil(ratio * len(positions))`` elements (sklearn's rounding). Raises
    ``DatasetError`` when either part would be empty.
    """
    positions = np.asarray(positions, dtype=np.int64)
    try:
        kept, held_out = train_test_split(positions, test_size=float(ratio), random_state=int(seed))
    except ValueError as exc:
        raise DatasetError(
            f"cannot split {len(positions)} rows with ratio {ratio}: {exc}"
        ) from exc
    return np.asarray(kept, dtype=np.int64), np.asarray(held_out, dtype=np.int64)


def split_table(table: pd.DataFrame, test_ratio: float = 0.2, seed: int = 42,
                val_ratio: float = 0.0) -> Split:
    """Split a label table into train / val / test row positions.

    Test is taken from all rows with ``test_ratio`` and ``seed``; when ``val_ratio > 0`` the
    validation part is then taken from the training part with ``val_ratio`` (a fraction of the
    training part) and the same seed. With ``val_ratio == 0`` the val array is empty.
    """
    validate_ratios(test_ratio, val_ratio)
    if len(table) < 2:
        raise DatasetError(f"a label table needs at least 2 rows to be split, got {len(table)}")
    train, test = random_split_positions(np.arange(len(table)), test_ratio, seed)
    val = np.empty(0, dtype=np.int64)
    if val_ratio > 0:
        train, val = random_split_positions(train, val_ratio, seed)
    return Split(train=train, val=val, test=test)

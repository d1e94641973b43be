"""Train / validation / test splits over a label table (pure functions, no file access).

A *label table* is a ``pandas.DataFrame`` with one row per image, in label-file order, holding
at least ``name`` (str, image file name as the label file gives it) and ``mos`` (float), and
optionally ``prompt`` (str, the text the image was generated from).

The default reproduces the reference split exactly: scikit-learn's
``train_test_split(rows, test_size=0.2, random_state=42)`` over the rows in file order, with
both parts kept in that function's (shuffled) output order. The shuffle depends only on the row
count, ratio and seed, so splitting row positions is identical to splitting the table itself.
An optional validation part is carved from the training part the same way.

``mode="prompt"`` instead splits whole prompts (AGIQA-3K has about 10 images per prompt, one per
generator setting), so that no prompt occurs in two parts and a model cannot score a test image
by recognising its prompt's content from training. The ratios are then met approximately, in
images (see ``group_split_positions``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .errors import DatasetError

__all__ = ["Split", "SPLIT_MODES", "random_split_positions", "group_split_positions",
           "prompt_key", "split_table", "validate_ratios"]

SPLIT_MODES = ("random", "prompt", "all")


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
    """Require ``0 <= test_ratio < 1`` and ``0 <= val_ratio < 1`` (fractions of rows).

    ``test_ratio`` 0 holds out no test part (e.g. before testing on another database); the
    validation part, if any, is then the only held-out one (``train.py`` checks that the
    evaluation settings agree: ``TEST.SPLIT val``, or ``TEST.FINAL_MODEL last_step`` without one).
    """
    if not 0.0 <= float(val_ratio) < 1.0:
        raise DatasetError(f"DATASET.VAL_RATIO must be in [0, 1), got {val_ratio}")
    if float(test_ratio) == 0.0:
        return
    if not 0.0 < float(test_ratio) < 1.0:
        raise DatasetError(f"DATASET.TEST_RATIO must be in (0, 1), or 0 to hold out no test "
                           f"part, got {test_ratio}")


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


def prompt_key(prompt: str) -> str:
    """The grouping key of a prompt: lower case, whitespace runs collapsed, ends stripped.

    Prompts that differ only in case or spacing describe the same content, so they must land in
    the same part.
    """
    return " ".join(str(prompt).split()).lower()


def group_split_positions(positions: np.ndarray, groups: np.ndarray, ratio: float,
                          seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``positions`` into ``(kept, held_out)`` so that each group lies wholly in one part.

    ``groups[i]`` is the group key of ``positions[i]``. The distinct groups (sorted, so the
    result does not depend on row order) are shuffled with ``numpy.random.RandomState(seed)``;
    the held-out part is the shortest prefix of that order whose image count is closest to
    ``ratio * len(positions)``, keeping at least one group on each side. Within each part,
    rows follow the shuffled group order, then their order in ``positions``. Raises
    ``DatasetError`` with fewer than two groups.
    """
    positions = np.asarray(positions, dtype=np.int64)
    keys = np.asarray(groups, dtype=object)
    if keys.shape != positions.shape:
        raise DatasetError(f"need one group per row: {len(keys)} groups for {len(positions)} rows")
    unique, inverse = np.unique(keys.astype(str), return_inverse=True)
    if len(unique) < 2:
        raise DatasetError(f"cannot split {len(positions)} rows by prompt with ratio {ratio}: "
                           f"they share {len(unique)} distinct prompt(s), at least 2 are needed")
    order = np.random.RandomState(int(seed)).permutation(len(unique))
    cumulative = np.cumsum(np.bincount(inverse, minlength=len(unique))[order])
    # cumulative[:-1]: held-out prefixes of 1 .. G-1 groups; argmin keeps the first on ties.
    n_held = int(np.argmin(np.abs(cumulative[:-1] - float(ratio) * len(positions)))) + 1
    rank = np.empty(len(unique), dtype=np.int64)
    rank[order] = np.arange(len(unique))
    row_rank = rank[inverse]
    arranged = np.lexsort((np.arange(len(positions)), row_rank))  # by group rank, then row order
    held = row_rank[arranged] < n_held
    return positions[arranged[~held]], positions[arranged[held]]


def split_table(table: pd.DataFrame, test_ratio: float = 0.2, seed: int = 42,
                val_ratio: float = 0.0, mode: str = "random") -> Split:
    """Split a label table into train / val / test row positions.

    Test is taken from all rows with ``test_ratio`` and ``seed``; when ``val_ratio > 0`` the
    validation part is then taken from the training part with ``val_ratio`` (a fraction of the
    training part) and the same seed. With ``val_ratio == 0`` the val array is empty.
    ``mode="prompt"`` splits by ``prompt_key`` of the table's ``prompt`` column (which must
    exist and have no empty cell) with ``group_split_positions``; ``"random"`` splits rows;
    ``"all"`` puts every row in the test part (ratios unused; for evaluating a model trained
    on another database).
    """
    if mode not in SPLIT_MODES:
        raise DatasetError(f"DATASET.SPLIT_MODE must be one of {list(SPLIT_MODES)}, got {mode!r}")
    if mode == "all":
        empty = np.empty(0, dtype=np.int64)
        return Split(train=empty, val=empty, test=np.arange(len(table), dtype=np.int64))
    validate_ratios(test_ratio, val_ratio)
    if len(table) < 2:
        raise DatasetError(f"a label table needs at least 2 rows to be split, got {len(table)}")
    keys = _prompt_keys(table) if mode == "prompt" else None

    def split(positions: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
        if keys is None:
            return random_split_positions(positions, ratio, seed)
        return group_split_positions(positions, keys[positions], ratio, seed)

    if float(test_ratio) == 0.0:
        train, test = np.arange(len(table), dtype=np.int64), np.empty(0, dtype=np.int64)
    else:
        train, test = split(np.arange(len(table)), test_ratio)
    val = np.empty(0, dtype=np.int64)
    if val_ratio > 0:
        train, val = split(train, val_ratio)
    return Split(train=train, val=val, test=test)


def _prompt_keys(table: pd.DataFrame) -> np.ndarray:
    """``prompt_key`` of every row; a missing column or an empty prompt is a ``DatasetError``."""
    if "prompt" not in table.columns:
        raise DatasetError("DATASET.SPLIT_MODE 'prompt' needs a prompt per image, but the label "
                           "table has no prompt column: set DATASET.PROMPT_FILE to a CSV with "
                           "columns name,prompt")
    keys = np.array([prompt_key(p) for p in table["prompt"].fillna("")], dtype=object)
    empty = np.flatnonzero(keys == "")
    if empty.size:
        raise DatasetError(f"image {table['name'].iloc[empty[0]]!r} has an empty prompt "
                           f"({empty.size} such image(s)); SPLIT_MODE 'prompt' needs every "
                           "image's prompt")
    return keys

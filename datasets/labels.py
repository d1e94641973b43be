"""Readers for the label files of the supported databases, returning validated label tables.

A label table (see ``splits.py``) is a ``pandas.DataFrame`` in file order with columns
``name`` (str), ``mos`` (float64) and, where the label file has one, ``prompt`` (str).
Every reader rejects missing columns, empty names, non-numeric or NaN MOS and duplicate names
with a ``DatasetError`` that names the file and the offending row ("data row i" is 0-based
and counts rows after the header).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import DatasetError

__all__ = ["read_csv_table", "read_mat_table", "read_text_csv", "mat_row_name", "MAT_VARIABLE"]

MAT_VARIABLE = "MOSz"  # the variable AIGCIQA2023's MOS/mosz*.mat files hold, shape (N, 1)


def mat_row_name(index: int) -> str:
    """Image name of row ``index`` of an AIGCIQA2023 ``.mat`` file (row i is ``i.png``)."""
    return f"{index}.png"


def read_text_csv(path: str | os.PathLike, columns: Sequence[str],
                  what: str = "label file") -> pd.DataFrame:
    """Read a CSV with every cell as text and require ``columns``; ``what`` names the file kind
    ("label file", "prompt file") in the ``DatasetError`` raised for a parse error or a missing
    column."""
    path = Path(path)
    try:
        # Everything as text: names stay verbatim (no "NA" -> NaN) and MOS are parsed by
        # Python's float(), which round-trips repr() exactly on every pandas version.
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot parse {what} {path}: {exc}") from exc
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise DatasetError(
            f"{what} {path} lacks column(s) {missing}; it has columns {list(raw.columns)}"
        )
    return raw


def read_csv_table(path: str | os.PathLike, mos_column: str, name_column: str = "name",
                   prompt_column: str | None = None) -> pd.DataFrame:
    """Read a CSV label file into a validated label table.

    ``mos_column`` becomes ``mos``; ``prompt_column`` (if given and present) becomes ``prompt``.
    MOS cells are parsed with ``float()``, so values equal those written with ``repr``.
    """
    path = Path(path)
    raw = read_text_csv(path, (name_column, mos_column))
    mos = _numeric_mos(raw[mos_column], raw[name_column], path, mos_column)
    table = pd.DataFrame({"name": raw[name_column], "mos": mos})
    if prompt_column is not None and prompt_column in raw.columns:
        table["prompt"] = raw[prompt_column].fillna("")
    return _validated(table, path)


def read_mat_table(path: str | os.PathLike, variable: str = MAT_VARIABLE) -> pd.DataFrame:
    """Read an AIGCIQA2023 ``.mat`` MOS file into a label table with names ``0.png .. N-1.png``.

    The variable must be a non-empty numeric vector of shape ``(N, 1)``, ``(1, N)`` or ``(N,)``.
    """
    # Deferred: only AIGCIQA2023 .mat users need SciPy's io module.
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    path = Path(path)
    try:
        contents = loadmat(path)
    except (MatReadError, ValueError, TypeError, OSError, NotImplementedError) as exc:
        # NotImplementedError: MATLAB v7.3 (HDF5) files, which loadmat cannot read.
        raise DatasetError(f"cannot read MATLAB file {path}: {exc}") from exc
    if variable not in contents:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise DatasetError(f"MATLAB file {path} has no variable '{variable}'; it holds {found}")
    array = np.asarray(contents[variable])
    if array.ndim > 2 or array.size == 0 or (array.ndim == 2 and min(array.shape) != 1):
        raise DatasetError(
            f"variable '{variable}' in {path} must be a vector of shape (N, 1), "
            f"got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DatasetError(
            f"variable '{variable}' in {path} is not real-valued (dtype {array.dtype})"
        )
    values = array.reshape(-1).astype(np.float64)
    table = pd.DataFrame({"name": [mat_row_name(i) for i in range(values.size)], "mos": values})
    return _validated(table, path, what=f"variable '{variable}' row")


def _numeric_mos(column: pd.Series, names: pd.Series, path: Path, mos_column: str) -> np.ndarray:
    """Convert a text MOS column to float64; empty cells become NaN (rejected later)."""
    values = np.empty(len(column), dtype=np.float64)
    for i, cell in enumerate(column):
        # Short rows leave trailing cells NaN even when reading as text.
        text = cell.strip() if isinstance(cell, str) else ""
        try:
            values[i] = float(text) if text else np.nan
        except ValueError:
            raise DatasetError(
                f"label file {path}: column '{mos_column}' is not numeric at data row {i} "
                f"(name {names.iloc[i]!r}): {cell!r}"
            ) from None
    return values


def _validated(table: pd.DataFrame, path: Path, what: str = "data row") -> pd.DataFrame:
    """Reject empty names, NaN/inf MOS and duplicate names; return the table with a fresh index."""
    table = table.reset_index(drop=True)
    if table.empty:
        raise DatasetError(f"label file {path} has no data rows")
    names = table["name"]
    empty = names.isna() | (names.astype(str).str.strip() == "")
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise DatasetError(f"label file {path}: empty image name at {what} {i}")
    mos = table["mos"].to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(mos))
    if bad.size:
        i = int(bad[0])
        raise DatasetError(
            f"label file {path}: MOS is missing or not finite ({mos[i]}) at {what} {i} "
            f"(name {names.iloc[i]!r}); {bad.size} such row(s) in total"
        )
    dup = names.duplicated(keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())
        first = names.iloc[rows[0]]
        same = np.flatnonzero((names == first).to_numpy()).tolist()
        raise DatasetError(
            f"label file {path}: duplicate image name {first!r} at {what}s {same}; "
            f"{int(names[dup].nunique())} name(s) are duplicated"
        )
    table["name"] = names.astype(str)
    return table

"""Readers for the label files of the supported databases, returning validated label tables.

A label table (see ``splits.py``) is a ``pandas.DataFrame`` in file order with columns
``name`` (str), ``mos`` (float64) and, where the label file has one, ``prompt`` (str).
Every reader rejects missing columns, empty names, non-numeric or NaN MOS and duplicate names
with a ``DatasetError`` that names the file and the offending row ("data row i" is 0-based
and counts rows after the header).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from dassl.utils.label_file import LabelFileError, parse_number, read_label_file

from .errors import DatasetError
from dassl.names import shown

__all__ = ["read_label_table", "read_mat_table", "read_text_table", "data_row", "duplicate_rows",
           "read_score_list", "sha256_file", "mat_row_name", "MAT_VARIABLE", "DUPLICATE_POLICIES"]

MAT_VARIABLE = "MOSz"  # the variable AIGCIQA2023's MOS/mosz*.mat files hold, shape (N, 1)
# What a label table does with an image name on several rows: "error" (every database but
# AGIQA-1K), "keep" (all rows stay, as AGIQA-1K's published splits do) or "first".
DUPLICATE_POLICIES = ("error", "keep", "first")


def mat_row_name(index: int) -> str:
    """Image name of row ``index`` of an AIGCIQA2023 ``.mat`` file (row i is ``i.png``)."""
    return f"{index}.png"


def read_text_table(path: str | os.PathLike, columns: Sequence[str], what: str = "label file",
                    sheet: str = "") -> pd.DataFrame:
    """Every cell of a label file (CSV or ``.xlsx``, ``sheet`` "" = its first) as text, with
    ``columns`` required, through the project's one label-file reader
    (``dassl.utils.label_file.read_label_file``: any common encoding, delimiter and spreadsheet
    quirk); ``what`` names the file kind ("label file", "prompt file") in the ``DatasetError``
    raised when it cannot be read."""
    try:
        return read_label_file(path, columns, what=what, sheet=sheet)
    except LabelFileError as exc:
        raise DatasetError(str(exc)) from None


def data_row(table: pd.DataFrame, i: int) -> str:
    """``"data row i (line L)"``: a row of a table from ``read_text_table`` in words, 0-based
    after the header, with its 1-based line in the file."""
    lines = table.attrs.get("lines")
    return f"data row {i} (line {lines[i]})" if lines and i < len(lines) else f"data row {i}"


def read_label_table(path: str | os.PathLike, mos_column: str | None, name_column: str = "name",
                     prompt_column: str | None = None, sheet: str = "",
                     duplicates: str = "error") -> pd.DataFrame:
    """Read a CSV or Excel label file into a validated label table.

    ``mos_column`` becomes ``mos`` (None: a list of images without MOS, e.g. AIGIQA-20K's
    ``info_test.xlsx``; the table then has no ``mos`` column); ``prompt_column`` (if given and
    present) becomes ``prompt``. MOS cells are parsed with ``float()``, so values equal those
    written with ``repr``. ``duplicates`` (``DUPLICATE_POLICIES``): "error" rejects a name on
    several rows, "keep" keeps every row, "first" keeps the first row of each name.
    """
    path = Path(path)
    needed = (name_column,) if mos_column is None else (name_column, mos_column)
    raw = read_text_table(path, needed, sheet=sheet)
    table = pd.DataFrame({"name": raw[name_column]})
    if mos_column is not None:
        table["mos"] = _numeric_mos(raw, raw[name_column], path, mos_column)
    if prompt_column is not None and prompt_column in raw.columns:
        table["prompt"] = raw[prompt_column].fillna("").astype(str)
    return _validated(table, path, duplicates=duplicates, lines=raw.attrs.get("lines"))


def duplicate_rows(names: pd.Series) -> list[list[int]]:
    """Positions of every image name listed on several rows, one list per name, in file order."""
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        positions.setdefault(str(name), []).append(i)
    return [rows for rows in positions.values() if len(rows) > 1]


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (provenance of label and split files, fetched files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
        raise DatasetError(f"cannot read MATLAB file {shown(path)}: {exc}") from exc
    if variable not in contents:
        found = sorted(k for k in contents if not k.startswith("__"))
        raise DatasetError(f"MATLAB file {shown(path)} has no variable '{variable}'; it holds {found}")
    array = np.asarray(contents[variable])
    if array.ndim > 2 or array.size == 0 or (array.ndim == 2 and min(array.shape) != 1):
        raise DatasetError(
            f"variable '{variable}' in {shown(path)} must be a vector of shape (N, 1), "
            f"got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DatasetError(
            f"variable '{variable}' in {shown(path)} is not real-valued (dtype {array.dtype})"
        )
    values = array.reshape(-1).astype(np.float64)
    table = pd.DataFrame({"name": [mat_row_name(i) for i in range(values.size)], "mos": values})
    return _validated(table, path, what=f"variable '{variable}' row")


def read_score_list(path: str | os.PathLike) -> pd.DataFrame:
    """Read a text file of N scores in image order (AIGCIQA2023's ``moz{k}.txt``: numbers
    separated by line breaks, spaces, tabs or commas) into a label table with names
    ``0.png .. N-1.png`` (as ``read_mat_table``). Raises ``DatasetError`` naming the first value
    that is not a number."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read score list {shown(path)}: {exc}") from exc
    cells = text.replace(",", " ").split()
    values = np.empty(len(cells), dtype=np.float64)
    for i, cell in enumerate(cells):
        try:
            values[i] = float(cell)
        except ValueError:
            raise DatasetError(f"score list {shown(path)}: value {i} ({cell!r}) is not a number; "
                               "expected one score per image, in image order") from None
    table = pd.DataFrame({"name": [mat_row_name(i) for i in range(values.size)], "mos": values})
    return _validated(table, path, what="value")


def _numeric_mos(raw: pd.DataFrame, names: pd.Series, path: Path, mos_column: str) -> np.ndarray:
    """Convert a text MOS column to float64 (``parse_number``: decimal commas too); empty cells
    become NaN (rejected later)."""
    column = raw[mos_column]
    values = np.empty(len(column), dtype=np.float64)
    for i, cell in enumerate(column):
        try:
            values[i] = parse_number(cell)
        except ValueError:
            raise DatasetError(
                f"label file {shown(path)}: column '{mos_column}' is not numeric at {data_row(raw, i)} "
                f"(name {shown(names.iloc[i])}): {cell!r}; expected a number such as 3.25 or 3,25"
            ) from None
    return values


def _validated(table: pd.DataFrame, path: Path, what: str = "data row",
               duplicates: str = "error", lines: Sequence[int] | None = None) -> pd.DataFrame:
    """Reject empty names, NaN/inf MOS and (``duplicates`` "error") duplicate names; with
    "first" keep each name's first row. Returns the table with a fresh index. ``lines`` (file
    line of each row) adds "(line L)" to the row named in a message."""
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    table = table.reset_index(drop=True)

    def line(i: int) -> str:
        return f" (line {lines[i]})" if lines is not None and i < len(lines) else ""

    if table.empty:
        raise DatasetError(f"label file {shown(path)} has no data rows")
    names = table["name"]
    empty = names.isna() | (names.astype(str).str.strip() == "")
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise DatasetError(f"label file {shown(path)}: empty image name at {what} {i}{line(i)}")
    mos = table["mos"].to_numpy(dtype=np.float64) if "mos" in table else np.zeros(len(table))
    bad = np.flatnonzero(~np.isfinite(mos))
    if bad.size:
        i = int(bad[0])
        raise DatasetError(
            f"label file {shown(path)}: MOS is missing or not finite ({mos[i]}) at {what} {i}{line(i)} "
            f"(name {shown(names.iloc[i])}); {bad.size} such row(s) in total"
        )
    dup = names.duplicated(keep=False)
    if duplicates == "first":
        table = table[~names.duplicated(keep="first")].reset_index(drop=True)
        names = table["name"]
    elif dup.any() and duplicates == "error":
        rows = np.flatnonzero(dup.to_numpy())
        first = names.iloc[rows[0]]
        same = np.flatnonzero((names == first).to_numpy()).tolist()
        at_lines = f" (lines {[lines[i] for i in same]})" if lines is not None else ""
        raise DatasetError(
            f"label file {shown(path)}: duplicate image name {shown(first)} at {what}s {same}{at_lines}; "
            f"{int(names[dup].nunique())} name(s) are duplicated"
        )
    table["name"] = names.astype(str)
    return table

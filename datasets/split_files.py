"""Splits as data: ``DATASET.SPLIT_FILE`` (and ``DATASET.SPLIT_INDEX``) -> row positions.

Two forms, both CSV:
- one file with columns ``name,split`` (``split`` is train, val or test), one row per image;
- a folder holding ``train.csv``, ``val.csv`` and optionally ``test.csv``, whose first column is
  the image name (peer AGIQA-1K splits have the header ``Image,Prompt,MOS``; the ``splits/``
  folder every run writes has ``name,mos``). Without a ``test.csv`` the folder's ``val.csv`` is
  the reported set and becomes the test part (there is then no validation part); with one, a
  missing ``val.csv`` means no validation part.

Rows are matched by image name. Where the label table lists a name on several rows (AGIQA-1K's
duplicate), the split file's MOS column (``mos``, any case) tells them apart, so the two rows may
sit in different parts. A name absent from the label table, or given to two parts (or twice to
one), is a ``DatasetError`` naming it and the file. Label rows the file does not mention belong
to no part.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SHOW_MISSING, DatasetError, describe_dir, path_problem
from .labels import read_text_table
from .splits import Split
from dassl.names import shown

__all__ = ["resolve_split_path", "read_split_parts", "split_from_file", "split_file_list",
           "PART_NAMES"]

PART_NAMES = ("train", "val", "test")
_MOS_TOLERANCE = 1e-6  # relative: CSV copies of the MOS are printed to >= 15 significant digits


def resolve_split_path(split_file: str, split_index: int, base: Path) -> Path:
    """``SPLIT_FILE`` (relative to the database folder ``base``, or absolute; ``~`` expanded),
    followed by the sub-folder ``SPLIT_INDEX`` when that is >= 0. Must exist."""
    path = Path(os.path.expanduser(split_file))
    if not path.is_absolute():
        path = base / path
    if split_index >= 0:
        path = path / str(split_index)
    if not path.exists():
        raise DatasetError(f"split file {shown(path)} {path_problem(path)} (DATASET.SPLIT_FILE={shown(split_file)}, "
                           f"DATASET.SPLIT_INDEX={split_index}); {describe_dir(path)}")
    return path


def split_file_list(path: Path) -> list[Path]:
    """The files a split path consists of (for provenance), in part order."""
    if path.is_file():
        return [path]
    return [path / f"{part}.csv" for part in PART_NAMES if (path / f"{part}.csv").is_file()]


def _listing(path: Path, first_column: bool) -> pd.DataFrame:
    """``name`` (and ``mos`` when the file has such a column) of a split CSV, in file order."""
    raw = read_text_table(path, () if first_column else ("name", "split"), what="split file")
    if raw.shape[1] == 0:
        raise DatasetError(f"split file {shown(path)} has no columns; expected the image name first")
    listing = pd.DataFrame({"name": raw[raw.columns[0] if first_column else "name"]})
    mos_columns = [c for c in raw.columns if str(c).strip().lower() == "mos"]
    if mos_columns:
        listing["mos"] = raw[mos_columns[0]]
    if not first_column:
        listing["split"] = raw["split"].str.strip().str.lower()
    return listing


def read_split_parts(path: Path) -> dict[str, pd.DataFrame]:
    """Read a split file or folder into ``{part: listing}`` (``name`` and optional ``mos``
    columns, file order); parts a folder lacks are empty. See the module docstring."""
    if path.is_file():
        listing = _listing(path, first_column=False)
        unknown = sorted(set(listing["split"]) - set(PART_NAMES))
        if unknown:
            raise DatasetError(f"split file {shown(path)}: column 'split' holds {unknown}; expected "
                               f"one of {list(PART_NAMES)}")
        return {part: listing[listing["split"] == part].drop(columns="split")
                .reset_index(drop=True) for part in PART_NAMES}
    present = {part: path / f"{part}.csv" for part in PART_NAMES
               if (path / f"{part}.csv").is_file()}
    if "train" not in present or not ({"val", "test"} & set(present)):
        raise DatasetError(f"split folder {shown(path)} must hold train.csv and val.csv (and optionally "
                           f"test.csv); {describe_dir(path)}")
    parts = {part: _listing(file, first_column=True) for part, file in present.items()}
    empty = pd.DataFrame({"name": pd.Series([], dtype=object)})
    if "test" not in parts:
        parts["test"] = parts.pop("val")
    return {part: parts.get(part, empty) for part in PART_NAMES}


def _as_float(text: object) -> float:
    try:
        return float(str(text).strip())
    except ValueError:
        return float("nan")


def split_from_file(table: pd.DataFrame, path: Path) -> Split:
    """Row positions of ``table`` (a label table) per part of the split file at ``path``."""
    parts = read_split_parts(path)
    rows_of: dict[str, list[int]] = {}
    for position, name in enumerate(table["name"]):
        rows_of.setdefault(str(name), []).append(position)
    label_mos = table["mos"].to_numpy(dtype=np.float64) if "mos" in table else None
    owner: dict[int, str] = {}
    positions: dict[str, list[int]] = {}
    for part in PART_NAMES:
        listing = parts[part]
        chosen = []
        unknown = [n for n in listing["name"] if str(n) not in rows_of]
        if unknown:
            raise DatasetError(
                f"split file {shown(path)}: {len(unknown)} image(s) of the {part} part are not in the "
                f"label file, e.g. {', '.join(map(repr, unknown[:SHOW_MISSING]))}")
        for i, name in enumerate(listing["name"]):
            mos = _as_float(listing["mos"].iloc[i]) if "mos" in listing else float("nan")
            chosen.append(_pick_row(str(name), mos, rows_of[str(name)], label_mos, owner, part,
                                    path))
        positions[part] = chosen
    return Split(**{part: np.asarray(positions[part], dtype=np.int64) for part in PART_NAMES})


def _pick_row(name: str, mos: float, candidates: list[int], label_mos: np.ndarray | None,
              owner: dict[int, str], part: str, path: Path) -> int:
    """The label row a split-file entry stands for; records it in ``owner`` (row -> part)."""
    if len(candidates) > 1 and label_mos is not None and np.isfinite(mos):
        close = [r for r in candidates
                 if abs(label_mos[r] - mos) <= _MOS_TOLERANCE * max(1.0, abs(mos))]
        free = [r for r in close if r not in owner]
        if not close:
            raise DatasetError(f"split file {shown(path)}: image {shown(name)} ({part} part) has MOS {mos}, "
                               f"which none of its {len(candidates)} label rows has "
                               f"({[float(label_mos[r]) for r in candidates]})")
    else:
        free = [r for r in candidates if r not in owner]
    if not free:
        taken = sorted({owner[r] for r in candidates if r in owner} | {part})
        raise DatasetError(f"split file {shown(path)}: image {shown(name)} is listed in two parts or twice "
                           f"({', '.join(taken)}); every image belongs to one part")
    owner[free[0]] = part
    return free[0]

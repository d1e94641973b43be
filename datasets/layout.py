"""Locating dataset folders, label files and images on disk, tolerant of nested archive layouts.

Unzipping an archive often adds one folder level (``ROOT/AGIQA-3K/AGIQA-3K/<name>``,
``ROOT/AIGCIQA2023/allimg/allimg/<i>.png``). These helpers accept the expected location or one
level below it, and otherwise fail with a ``DatasetError`` that says what was expected where and
what the folder actually holds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .errors import SHOW_MISSING, DatasetError, describe_dir

__all__ = ["dataset_folder", "find_file", "find_image_dir", "check_images", "label_file_path"]

_PROBE = 20  # how many image names to probe when deciding which folder holds the images


def dataset_folder(root: str, folder: str) -> Path:
    """Return ``root/folder`` (``root`` = ``DATASET.ROOT``, ``~`` expanded), which must exist."""
    if not str(root).strip():
        raise DatasetError("DATASET.ROOT is empty: set it to the folder that holds "
                           f"'{folder}/' (e.g. --root /data or DATASET.ROOT /data)")
    path = Path(os.path.expanduser(str(root))) / folder
    if not path.is_dir():
        raise DatasetError(f"dataset folder {path} not found (DATASET.ROOT={root!r}); "
                           f"{describe_dir(path)}")
    return path


def find_file(folder: Path, candidates: Sequence[str], what: str) -> Path | None:
    """Return the first existing ``folder/c`` or ``folder/<sub>/c`` over ``candidates`` in order.

    Candidates are tried at the top level first, then one folder deeper (subfolders in sorted
    order). Returns None when nothing matches, so callers can try another source; ``what`` is
    only used to report an ambiguous nested match.
    """
    for c in candidates:
        if (folder / c).is_file():
            return folder / c
    subdirs = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    for c in candidates:
        hits = [d / c for d in subdirs if (d / c).is_file()]
        if len(hits) > 1:
            raise DatasetError(f"{what}: found several candidates {[str(h) for h in hits]}; "
                               "keep only one")
        if hits:
            return hits[0]
    return None


def label_file_path(base: Path, label_file: str) -> Path | None:
    """``DATASET.LABEL_FILE`` (relative to the database folder ``base``, or absolute; ``~``
    expanded), which must exist; None when the key is empty."""
    if not label_file:
        return None
    path = Path(os.path.expanduser(label_file))
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise DatasetError(f"DATASET.LABEL_FILE {path} not found; {describe_dir(path.parent)}")
    return path


def find_image_dir(bases: Sequence[Path], names: Sequence[str]) -> Path:
    """Return the folder among ``bases`` and their direct subfolders that holds the listed images.

    Probes the first few ``names`` and picks the folder holding most of them; earlier bases win
    ties, and ``bases[0]`` is returned when no folder holds any of them, so that the file check
    reports the expected location.
    """
    probe = list(names[:_PROBE])
    best, best_hits = bases[0], -1
    for base in bases:
        candidates = [base]
        if base.is_dir():
            candidates += sorted(p for p in base.iterdir() if p.is_dir())
        for folder in candidates:
            hits = _count_present(folder, probe)
            if hits > best_hits:
                best, best_hits = folder, hits
            if hits == len(probe):
                return folder
    return best if best_hits > 0 else bases[0]


def check_images(image_dir: Path, names: Sequence[str]) -> None:
    """Raise one ``DatasetError`` listing how many of ``names`` are missing from ``image_dir``."""
    try:
        present = set(os.listdir(image_dir))
    except OSError:
        present = set()
    # Names with a folder part are not in the flat listing: fall back to a stat for those.
    missing = [n for n in names if n not in present and not (image_dir / n).is_file()]
    if missing:
        shown = "\n  ".join(str(image_dir / n) for n in missing[:SHOW_MISSING])
        raise DatasetError(
            f"{len(missing)} of {len(names)} images listed in the label file are missing from "
            f"{image_dir}; first missing:\n  {shown}\n{describe_dir(image_dir)}\n"
            "(set DATASET.CHECK_FILES False to skip this check)"
        )


def _count_present(folder: Path, names: Sequence[str]) -> int:
    return sum((folder / n).is_file() for n in names)

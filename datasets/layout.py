"""Locating dataset folders, label files and images on disk, tolerant of nested archive layouts.

Unzipping an archive often adds folder levels (``ROOT/AGIQA-3K/AGIQA-3K/<name>``,
``ROOT/AIGCIQA2023/allimg/allimg/<i>.png``, AIGCIQA2023's release layout
``ROOT/AIGCIQA2023/DATA/MOS/mosz1.mat`` + ``ROOT/AIGCIQA2023/Image/allimg/<i>.png``). Label files
are found at the expected location or one level below it, images in any folder up to
``SEARCH_DEPTH`` levels below the expected ones; otherwise a ``DatasetError`` says what was
expected where and what the folder actually holds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from dassl.names import look_alike, shown
from dassl.utils.image_files import FolderImages, find_images

from .errors import SHOW_MISSING, DatasetError, MissingDataError, describe_dir, path_problem

__all__ = ["dataset_folder", "find_file", "find_image_dir", "check_images", "label_file_path",
           "SEARCH_DEPTH"]

_PROBE = 20  # how many image names to probe when deciding which folder holds the images
# How deep below the expected folders images are looked for: release archives and users'
# copies add folders (AIGCIQA2023's release: AIGCIQA2023/Image/allimg/<i>.png).
SEARCH_DEPTH = 3


def dataset_folder(root: str, folder: str) -> Path:
    """Return ``root/folder`` (``root`` = ``DATASET.ROOT``, ``~`` expanded), which must exist."""
    if not str(root).strip():
        raise DatasetError("DATASET.ROOT is empty: set it to the folder that holds "
                           f"'{folder}/' (e.g. --root /data or DATASET.ROOT /data)")
    path = Path(os.path.expanduser(str(root))) / folder
    problem = path_problem(path, "folder")
    if problem:
        raise MissingDataError(f"dataset folder {shown(path)} {problem} (DATASET.ROOT={shown(root)}); "
                               f"{describe_dir(path.parent if path.exists() else path)}")
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
    problem = path_problem(path, "file")
    if problem:
        raise DatasetError(f"DATASET.LABEL_FILE {shown(path)} {problem}; {describe_dir(path.parent)}")
    return path


def find_image_dir(bases: Sequence[Path], names: Sequence[str]) -> Path:
    """Return the folder among ``bases`` and the folders below them (up to ``SEARCH_DEPTH``
    levels) that holds the listed images.

    Probes the first few ``names`` and picks the folder holding most of them; earlier bases, and
    shallower folders, win ties. ``bases[0]`` is returned when no folder holds any of them, so
    that the file check reports the expected location.
    """
    probe = list(names[:_PROBE])
    best, best_hits = bases[0], 0
    for base in bases:
        for folder in _folders_below(base, SEARCH_DEPTH):
            hits = _count_present(folder, probe)
            if hits == len(probe) and probe:
                return folder
            if hits > best_hits:
                best, best_hits = folder, hits
    return best


def _folders_below(base: Path, depth: int) -> list[Path]:
    """``base`` and its sub-folders down to ``depth`` levels, breadth first, sorted per level
    (hidden folders skipped)."""
    level, found = [base], []
    for _ in range(depth + 1):
        found += [p for p in level if p.is_dir()]
        level = [child for parent in level if parent.is_dir()
                 for child in sorted(_subfolders(parent))]
    return found


def _subfolders(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return []


def check_images(image_dir: Path, names: Sequence[str], searched: Path | None = None) -> None:
    """Raise one ``DatasetError`` listing how many of ``names`` are missing from ``image_dir``.

    ``searched``: the folder whose sub-folders ``find_image_dir`` searched, named in the message
    when none of the images was found anywhere.
    """
    try:
        walk = find_images(image_dir)
    except OSError:
        walk = FolderImages(str(image_dir))
    present = set(walk.names)
    # A listed name the walk left out as a second name of an image (a link to an image or a
    # folder found already) is there all the same: present means the file can be opened.
    missing = [n for n in names if n not in present and not (image_dir / n).is_file()]
    if not missing:
        return
    why = dict(walk.skipped)  # a listed name that is a broken link, a loop, not an image, ...

    def named(name: str, folder: Path | None = None) -> str:
        text = shown(folder / name if folder else name)
        reason = why.get(name) or look_alike(name, present)
        return f"{text} ({reason})" if reason else text
    if len(missing) == len(names):
        where = (f"; no folder up to {SEARCH_DEPTH} levels below {searched} holds them either"
                 if searched is not None else "")
        raise MissingDataError(
            f"none of the {len(names)} images listed in the label file were found: expected "
            f"them in {shown(image_dir)} (e.g. {', '.join(map(named, missing[:SHOW_MISSING]))}){where}; "
            f"{describe_dir(image_dir)}")
    listed = "\n  ".join(named(n, image_dir) for n in missing[:SHOW_MISSING])
    raise MissingDataError(
        f"{len(missing)} of {len(names)} images listed in the label file are missing from "
        f"{shown(image_dir)}; first missing:\n  {listed}\n{describe_dir(image_dir)}\n"
        "(set DATASET.CHECK_FILES False to skip this check)"
    )


def _count_present(folder: Path, names: Sequence[str]) -> int:
    return sum((folder / n).is_file() for n in names)

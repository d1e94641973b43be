"""Every image a folder holds: the one folder walk of the project.

``score.py`` (image folders given on its command line), the dataset loaders' image check and
the unpacked-database check of ``python -m datasets.fetch`` all list image folders through
:func:`find_images`, so they find the same images whatever the folder's links and extensions:

- **Image files** are those whose extension (any letter case: ``.JPG``, ``.Jpeg``) is one
  Pillow can open (``PIL.Image.registered_extensions()`` of a format with an opener: .jpg, .png,
  .webp, .tif, .bmp, .gif, ...); what :func:`dassl.utils.images.read_image` then reads.
- **Links** to files and folders are followed, each file and each folder once, by its identity
  on disk (``st_dev``, ``st_ino``): a link to an image already found, a link to a folder
  already searched, and a link loop (a link to a folder above it) are skipped. The real entry
  wins over a link to it, whichever sorts first; real entries are all taken (hard links are
  names of their own).
- **Skipped and named**: hidden entries (a leading dot), files that are not images, broken
  links, link loops and duplicates, and folders that cannot be listed are returned with the
  reason; :meth:`FolderImages.skipped_line` is the one-line summary the entry points print.

Names are the paths relative to the walked folder with ``/`` separators, sorted. Standard
library and Pillow only.
"""
from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

from PIL import Image

from .errors import shown

__all__ = ["image_extensions", "is_image_name", "find_images", "FolderImages", "SHOW_SKIPPED"]

SHOW_SKIPPED = 8  # names a skipped-files summary shows before "and N more"

NOT_IMAGE = "not an image"
HIDDEN = "hidden"
BROKEN_LINK = "broken link"
LINK_LOOP = "link loop"


@lru_cache(maxsize=1)
def image_extensions() -> frozenset[str]:
    """Lower-case extensions (with the dot) of every format Pillow can open, e.g. ``.jpg``,
    ``.webp``, ``.tif``; write-only formats (``.pdf``) are not among them."""
    return frozenset(ext.lower() for ext, fmt in Image.registered_extensions().items()
                     if fmt in Image.OPEN)


def is_image_name(name: str) -> bool:
    """Whether a file name has an image extension (letter case ignored) and is not hidden."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in image_extensions()


@dataclass
class FolderImages:
    """What :func:`find_images` found under ``folder``.

    ``images``: ``(name, path)`` pairs, name relative to ``folder`` (``/``-separated), sorted by
    name; ``skipped``: ``(name, reason)`` of every entry left out, in walk order.
    """
    folder: str
    images: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.images]

    def skipped_line(self, limit: Optional[int] = SHOW_SKIPPED,
                     more_hint: str = "") -> Optional[str]:
        """``"skipped 3 entries of FOLDER: a.txt (not an image), .DS_Store (hidden), ..."``;
        None when nothing was skipped. At most ``limit`` are named (None: all), then ``" and N
        more"`` and ``more_hint`` (how the caller names them all)."""
        if not self.skipped:
            return None
        limit = len(self.skipped) if limit is None else limit
        listed = ", ".join(f"{shown(name)} ({reason})" for name, reason in self.skipped[:limit])
        more = (f" and {len(self.skipped) - limit} more{more_hint}"
                if len(self.skipped) > limit else "")
        noun = "entry" if len(self.skipped) == 1 else "entries"
        return f"skipped {len(self.skipped)} {noun} of {shown(self.folder)}: {listed}{more}"


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def find_images(folder: str | os.PathLike, recursive: bool = True) -> FolderImages:
    """Every image file under ``folder`` (rules in the module doc); ``recursive`` False looks
    at ``folder``'s own entries only. ``folder`` itself must be a folder (a link to one is
    fine): raises ``NotADirectoryError``/``FileNotFoundError`` otherwise; sub-folders that
    cannot be listed are skipped and named."""
    root = os.fspath(folder)
    found = FolderImages(root)
    seen_files: dict[tuple[int, int], str] = {}
    seen_folders: dict[tuple[int, int], str] = {}
    root_stat = os.stat(root)
    if not stat.S_ISDIR(root_stat.st_mode):
        raise NotADirectoryError(f"not a folder: {shown(root)}")
    seen_folders[_identity(root_stat)] = ""
    # Real entries first, links after: a link never wins over the real file or folder it names.
    pending_links: list[tuple[str, str, tuple[str, ...]]] = []
    folders: list[tuple[str, str, tuple[str, ...]]] = [("", root, ())]
    while folders or pending_links:
        if folders:
            name, path, above = folders.pop(0)
            _list_folder(found, name, path, above + (name,), recursive, seen_files,
                         seen_folders, folders, pending_links)
            continue
        name, path, above = pending_links.pop(0)
        _follow_link(found, name, path, above, recursive, seen_files, seen_folders, folders)
    found.images.sort()
    return found


def _list_folder(found: FolderImages, name: str, path: str, above: tuple[str, ...],
                 recursive: bool, seen_files: dict, seen_folders: dict, folders: list,
                 pending_links: list) -> None:
    """Take the images of one folder; queue its real sub-folders and its links."""
    try:
        with os.scandir(path) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        found.skipped.append((name or ".", f"folder cannot be listed: {exc.strerror or exc}"))
        return
    for entry in entries:
        child = f"{name}/{entry.name}" if name else entry.name
        if entry.name.startswith("."):
            found.skipped.append((child, HIDDEN))
        elif entry.is_symlink():
            pending_links.append((child, entry.path, above))
        elif entry.is_dir(follow_symlinks=False):
            st = entry.stat(follow_symlinks=False)
            seen_folders.setdefault(_identity(st), child)
            if recursive:
                folders.append((child, entry.path, above))
        else:
            _take_file(found, child, entry.path, entry.stat(follow_symlinks=False), seen_files)


def _follow_link(found: FolderImages, name: str, path: str, above: tuple[str, ...],
                 recursive: bool, seen_files: dict, seen_folders: dict, folders: list) -> None:
    """A link: to a file (taken unless already found), a folder (searched unless already
    searched), or nothing (broken)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        found.skipped.append((name, LINK_LOOP if exc.errno == errno.ELOOP else BROKEN_LINK))
        return
    if not stat.S_ISDIR(st.st_mode):
        _take_file(found, name, path, st, seen_files, via_link=True)
        return
    key = _identity(st)
    if key in seen_folders:
        first = seen_folders[key]
        loop = first in above
        target = f" to {shown(first)}" if first else " to the folder searched"
        found.skipped.append((name, LINK_LOOP + target if loop else
                              f"same folder as {shown(first) if first else 'the folder searched'}"))
        return
    seen_folders[key] = name
    if recursive:
        folders.append((name, path, above))


def _take_file(found: FolderImages, name: str, path: str, st: os.stat_result,
               seen_files: dict, via_link: bool = False) -> None:
    """Take one file; a link (``via_link``) to a file already taken is a duplicate. Real
    entries are all taken: two names hard-linked to one file are two names of the folder."""
    if not stat.S_ISREG(st.st_mode):
        found.skipped.append((name, "not a regular file"))
    elif not is_image_name(os.path.basename(name)):
        found.skipped.append((name, NOT_IMAGE))
    elif via_link and _identity(st) in seen_files:
        found.skipped.append((name, f"same file as {shown(seen_files[_identity(st)])}"))
    else:
        seen_files.setdefault(_identity(st), name)
        found.images.append((name, path))

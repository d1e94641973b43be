"""Small file-system, JSON and image helpers."""
from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import OutputWriteError, write_failure
from ..names import shown


def mkdir_if_missing(dirname: str) -> None:
    """Create ``dirname`` (and parents) if it does not exist yet."""
    if dirname:
        os.makedirs(dirname, exist_ok=True)


def check_isfile(fpath: str) -> bool:
    """True if ``fpath`` is an existing regular file; otherwise warn and return False."""
    isfile = os.path.isfile(fpath)
    if not isfile:
        print(f'No file found at "{fpath}"')
    return isfile


_TMP_SUFFIX = ".tmp"


def atomic_write(fpath: str, write_fn: Callable[[str], None]) -> None:
    """Call ``write_fn(tmp_path)`` on a temporary file next to ``fpath``, then rename it over
    ``fpath``, so readers never see a half-written file even if the process is killed.

    A full disk, an exceeded quota or a read-only folder (also torch.save's ``RuntimeError``
    of a write that stopped short) raise ``OutputWriteError`` naming ``fpath``; the temporary
    file is removed and ``fpath`` keeps its previous content."""
    try:
        _atomic_write(fpath, write_fn)
    except OSError as exc:
        if write_failure(exc) and not isinstance(exc, OutputWriteError):
            raise OutputWriteError(fpath, exc) from exc
        raise
    except RuntimeError as exc:
        if _stream_write_failed(exc):
            raise OutputWriteError(fpath, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) \
                from exc
        raise


def _stream_write_failed(exc: RuntimeError) -> bool:
    """Whether ``exc`` is torch's zip writer failing mid-file ("unexpected pos", "file write
    failed"): what torch.save raises instead of ``OSError`` when the disk fills."""
    text = str(exc)
    return any(s in text for s in ("unexpected pos", "PytorchStreamWriter failed",
                                   "file write failed"))


def _atomic_write(fpath: str, write_fn: Callable[[str], None]) -> None:
    directory = os.path.dirname(os.path.abspath(fpath))
    mkdir_if_missing(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(fpath) + ".",
                               suffix=_TMP_SUFFIX)
    os.close(fd)
    try:
        write_fn(tmp)
        # mkstemp creates 0600; results and checkpoints are ordinary files, so give them the mode
        # a plain open() would (0666 minus the umask).
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, fpath)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def remove_stale_temp_files(directory: str) -> list[str]:
    """Delete the hidden temporary files (``.<name>.<random>.tmp``) that ``atomic_write`` left in
    ``directory`` when its process was killed mid-write; return their paths. The files they
    would have replaced are intact, so nothing is lost."""
    if not os.path.isdir(directory):
        return []
    stale = [os.path.join(directory, f) for f in sorted(os.listdir(directory))
             if f.startswith(".") and f.endswith(_TMP_SUFFIX)]
    for path in stale:
        os.remove(path)
    return stale


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(fpath: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``fpath`` atomically."""
    def _write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    atomic_write(fpath, _write)


def read_json(fpath: str) -> Any:
    with open(fpath, "r", encoding="utf-8") as f:
        return json.load(f)


def write_json(obj: Any, fpath: str) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_text(fpath, json.dumps(obj, indent=4, separators=(",", ": ")) + "\n")


def listdir_nohidden(path: str, sort: bool = False) -> list[str]:
    """List entries of ``path`` that do not start with a dot."""
    items = [f for f in os.listdir(path) if not f.startswith(".")]
    return sorted(items) if sort else items


def tolist_if_not(x: Any) -> list:
    """Wrap a non-list value in a list."""
    return x if isinstance(x, list) else [x]


def path_problem(path: str | os.PathLike, want: str = "folder") -> str:
    """Why ``path`` is not the ``want`` ("folder" or "file") a message expected, worded as the
    rest of a sentence that starts with the path: ``"is a file, not a folder"``, ``"is a
    folder, not a file"`` or ``"not found"`` ("" when it is what was wanted)."""
    path = Path(path)
    if path.is_dir():
        return "" if want == "folder" else "is a folder, not a file"
    if path.exists():
        return "" if want == "file" else "is a file, not a folder"
    return "not found"


def describe_dir(path: str | os.PathLike, limit: int = 10) -> str:
    """Return a one-line description of what ``path`` holds, for error messages.

    Walks up to the nearest existing ancestor when ``path`` itself is missing, so the user sees
    how far the expected layout actually exists (an ancestor that is a file is said to be one).
    At most ``limit`` entries are listed.
    """
    path = Path(path)
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path.name)
        path = path.parent
    if not path.is_dir():
        return f"{shown(path)} is a file, not a folder"
    prefix = f"{shown(path / missing[-1])} does not exist; " if missing else ""
    try:
        entries = sorted(os.listdir(path))
    except OSError as exc:
        return f"{prefix}{shown(path)} cannot be listed ({exc.strerror})"
    if not entries:
        return f"{prefix}{shown(path)} is empty"
    listed = [shown(e) + ("/" if (path / e).is_dir() else "") for e in entries[:limit]]
    more = f" ... ({len(entries) - limit} more)" if len(entries) > limit else ""
    return f"{prefix}{shown(path)} contains: {', '.join(listed)}{more}"


def count_noun(count: int, noun: str, plural: str | None = None) -> str:
    """``"1 image"``, ``"3 images"``: the count with its noun in the number it takes.

    ``plural`` defaults to ``noun + "s"``; give it for irregular nouns (``"batch"``, ``"batches"``).
    """
    return f"{count} {noun if count == 1 else (plural or noun + 's')}"

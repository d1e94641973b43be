"""Exception type for problems with dataset files on disk or dataset config values."""

from __future__ import annotations

import os
from pathlib import Path

from dassl.utils.errors import UserError

__all__ = ["DatasetError", "describe_dir", "SHOW_MISSING"]

SHOW_MISSING = 5  # how many missing/unlisted image names an error message shows


class DatasetError(UserError, ValueError):
    """A dataset cannot be built from what is on disk or from the config.

    Subclasses ``ValueError`` so callers that already catch bad config values keep working, and
    dassl's ``UserError`` so ``train.py`` reports it as ``error: <message>`` without a
    traceback; the message alone says what was expected, where, and what was found instead.
    """


def describe_dir(path: str | os.PathLike, limit: int = 10) -> str:
    """Return a one-line description of what ``path`` holds, for error messages.

    Walks up to the nearest existing ancestor when ``path`` itself is missing, so the user sees
    how far the expected layout actually exists. At most ``limit`` entries are listed.
    """
    path = Path(path)
    if path.is_file():
        return f"{path} is a file, not a folder"
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path.name)
        path = path.parent
    prefix = f"{path / missing[-1]} does not exist; " if missing else ""
    try:
        entries = sorted(os.listdir(path))
    except OSError as exc:
        return f"{prefix}{path} cannot be listed ({exc.strerror})"
    if not entries:
        return f"{prefix}{path} is empty"
    shown = [e + ("/" if (path / e).is_dir() else "") for e in entries[:limit]]
    more = f" ... ({len(entries) - limit} more)" if len(entries) > limit else ""
    return f"{prefix}{path} contains: {', '.join(shown)}{more}"

"""Exception types for problems the user can fix (bad input), as opposed to bugs, and the one
way every command line reports them.

Command lines catch exactly ``USER_ERRORS`` (every ``UserError`` and an ``OSError`` of a path
the user gave; an entry point adds the bad-input types of the libraries it uses, e.g. a
backbone's) and turn them into one ``error: <message>`` line on stderr and exit status 2
(``report_user_error``); anything else is a bug and keeps its traceback. Each subclass also
derives from the builtin type callers caught before it existed (``ValueError``,
``RuntimeError``, ``OSError``), so existing ``except`` clauses keep working.
"""
from __future__ import annotations

import errno
import os
import sys
from contextlib import contextmanager
from typing import Iterator, Optional, TextIO, Union

from ..names import shown  # also re-exported: errors show names by its rule

__all__ = ["shown", "UserError", "ConfigError", "InputError", "TrainingDiverged", "OutputWriteError",
           "write_failure", "CheckpointFileError",
           "CheckpointMismatchError", "USER_ERRORS", "EXIT_USER_ERROR", "EXIT_INTERRUPTED", "error_message",
           "report_user_error"]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell convention for Ctrl-C


class UserError(Exception):
    """Base class: the message alone says what is wrong, where, and what to do about it."""


class ConfigError(UserError, ValueError):
    """A config key or value is invalid (unknown key, wrong type, value out of range)."""


class InputError(UserError, ValueError):
    """A command-line argument, or a file or folder it names, cannot be used as given."""


class TrainingDiverged(UserError, FloatingPointError):
    """Training produced a non-finite loss or non-finite weights (a learning rate far too high,
    an fp16 overflow); the message names where, the loss, learning rate and precision, and what
    to do. Never the resume point: the last finite checkpoint stays the resume point."""


class CheckpointFileError(UserError, RuntimeError):
    """A checkpoint file exists but cannot be read, or does not fit the model it is loaded into."""


class CheckpointMismatchError(CheckpointFileError, ValueError):
    """A checkpoint's keys or shapes do not match the model it is loaded into."""


# What a failed write's errno means for the user: the disk (or quota) is full, or the place is
# read-only.
_WRITE_FAILURES = {errno.ENOSPC: "no space left on the device",
                   errno.EDQUOT: "the disk quota is exceeded (no space left for this user)",
                   errno.EROFS: "the file system is read-only"}


def write_failure(exc: BaseException) -> Optional[str]:
    """``"no space left on the device"`` / ``"... read-only"`` when ``exc`` is an ``OSError``
    of a full disk, an exceeded quota or a read-only file system; None otherwise."""
    return _WRITE_FAILURES.get(getattr(exc, "errno", None)) if isinstance(exc, OSError) else None


@contextmanager
def written_as(path: Union[str, "os.PathLike[str]"]) -> Iterator[None]:
    """Name ``path`` in an ``OSError`` raised inside that names no file: a ``write()`` that
    failed on a full or read-only disk (Pillow's ``save``, pandas' ``to_csv``, SciPy's
    ``savemat`` write through an open file object, whose error carries no file name), so that
    ``error_message`` says which file could not be written."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = os.fspath(path)
        raise


class OutputWriteError(UserError, OSError):
    """An output file could not be written because its disk is full or read-only; the message
    names the file and says that its previous version (if any) is unchanged."""

    def __init__(self, path: str, cause: OSError) -> None:
        problem = write_failure(cause) or (cause.strerror or str(cause))
        super().__init__(f"cannot write {path}: {problem}; nothing was replaced (an earlier "
                         f"version of the file, or the last complete checkpoint, is kept): free "
                         "some space or write to another folder, then run the same command again")
        self.message = self.args[0]
        self.errno, self.filename = cause.errno, path

    def __str__(self) -> str:  # not OSError's "[Errno N] strerror: filename"
        return self.message


# Problems the user can fix. OSError: a path the user gave that is missing, or cannot be made or
# written (an OUTPUT_DIR under a file, no permission, a full disk).
USER_ERRORS = (UserError, OSError)


def error_message(exc: BaseException) -> str:
    """The message of ``exc`` on one line: without ``KeyError``'s quotes, its type name when
    empty; a full or read-only disk (``write_failure``) named as such with the path."""
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0] or type(exc).__name__
    if write_failure(exc) and not isinstance(exc, UserError):  # a raw full / read-only disk
        return f"cannot write {exc.filename or 'an output file'}: {write_failure(exc)}"
    return str(exc) or type(exc).__name__


def report_user_error(exc: BaseException, prog: Optional[str] = None,
                      stream: Optional[TextIO] = None, message: Optional[str] = None) -> int:
    """Print ``[prog: ]error: <message>`` (default ``error_message(exc)``) to ``stream``
    (default stderr) and return the exit status of bad input, ``EXIT_USER_ERROR`` (2)."""
    prefix = f"{prog}: " if prog else ""
    print(f"{prefix}error: {message or error_message(exc)}", file=stream or sys.stderr,
          flush=True)
    return EXIT_USER_ERROR

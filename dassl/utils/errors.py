"""Exception types for problems the user can fix (bad input), as opposed to bugs, and the one
way every command line reports them.

``train.py``, ``score.py``, ``mat2csv.py`` and ``scripts/sweep.py`` catch exactly
``USER_ERRORS`` (every ``UserError``, the foreign types of ``clip`` that mean bad input, and an
``OSError`` of a path the user gave) and turn them into one ``error: <message>`` line on
stderr and exit status 2 (``report_user_error``); anything else is a bug and keeps its
traceback. Each subclass also
derives from the builtin type callers caught before it existed (``ValueError``,
``RuntimeError``, ``OSError``), so existing ``except`` clauses keep working.
"""
from __future__ import annotations

import sys
from typing import Optional, TextIO

from clip.checkpoint import CheckpointError
from clip.clip import TextTooLongError
from clip.weights import DownloadError, WeightsNotFoundError, WeightsUnavailableError

__all__ = ["UserError", "ConfigError", "InputError", "CheckpointFileError",
           "CheckpointMismatchError", "USER_ERRORS", "EXIT_USER_ERROR", "error_message",
           "report_user_error"]

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Base class: the message alone says what is wrong, where, and what to do about it."""


class ConfigError(UserError, ValueError):
    """A config key or value is invalid (unknown key, wrong type, value out of range)."""


class InputError(UserError, ValueError):
    """A command-line argument, or a file or folder it names, cannot be used as given."""


class CheckpointFileError(UserError, RuntimeError):
    """A checkpoint file exists but cannot be read, or does not fit the model it is loaded into."""


class CheckpointMismatchError(CheckpointFileError, ValueError):
    """A checkpoint's keys or shapes do not match the model it is loaded into."""


# Problems the user can fix. clip's own types are listed one by one because clip imports nothing
# of ours. OSError: a path the user gave that is missing, or cannot be made or written (an
# OUTPUT_DIR under a file, no permission, a full disk).
USER_ERRORS = (UserError, CheckpointError, DownloadError, WeightsNotFoundError, TextTooLongError,
               OSError)


def error_message(exc: BaseException, weights_option: str = "MODEL.BACKBONE.NAME") -> str:
    """The message of ``exc`` on one line: without ``KeyError``'s quotes, its type name when
    empty; CLIP weights that cannot be fetched, or a weights file that is not there, say to
    pass ``weights_option`` (the caller's flag or key for a weights file) instead."""
    if isinstance(exc, WeightsUnavailableError):
        return exc.one_line(f"pass {weights_option} path/to/{exc.filename}")
    if isinstance(exc, WeightsNotFoundError):
        return (f"{exc}; pass {weights_option} PATH with the CLIP weights file the run was "
                "trained with (a relative path is relative to the working directory)")
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0] or type(exc).__name__
    return str(exc) or type(exc).__name__


def report_user_error(exc: BaseException, prog: Optional[str] = None,
                      weights_option: str = "MODEL.BACKBONE.NAME",
                      stream: Optional[TextIO] = None) -> int:
    """Print ``[prog: ]error: <message>`` (``error_message``) to ``stream`` (default stderr)
    and return the exit status of bad input, ``EXIT_USER_ERROR`` (2)."""
    prefix = f"{prog}: " if prog else ""
    print(f"{prefix}error: {error_message(exc, weights_option)}", file=stream or sys.stderr,
          flush=True)
    return EXIT_USER_ERROR

"""Exception types for problems the user can fix (bad input), as opposed to bugs.

``train.py`` turns every ``UserError`` (and a few foreign types it lists itself) into a one-line
``error: <message>`` and exit status 2, without a traceback; anything else is a bug and keeps
its traceback. Each subclass also derives from the builtin type callers caught before it
existed (``ValueError``, ``RuntimeError``), so existing ``except`` clauses keep working.
"""
from __future__ import annotations

__all__ = ["UserError", "ConfigError", "CheckpointFileError", "CheckpointMismatchError"]


class UserError(Exception):
    """Base class: the message alone says what is wrong, where, and what to do about it."""


class ConfigError(UserError, ValueError):
    """A config key or value is invalid (unknown key, wrong type, value out of range)."""


class CheckpointFileError(UserError, RuntimeError):
    """A checkpoint file exists but cannot be read, or does not fit the model it is loaded into."""


class CheckpointMismatchError(CheckpointFileError, ValueError):
    """A checkpoint's keys or shapes do not match the model it is loaded into."""

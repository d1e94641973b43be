"""The bad-input errors of the command lines that build a model (`train.py`, `score.py`):
dassl's (`dassl.utils.USER_ERRORS`) and clip's types that mean bad input,
composed here because `dassl` knows no backbone and `clip` imports nothing of ours."""
from __future__ import annotations

from clip.checkpoint import CheckpointError
from clip.clip import TextTooLongError
from clip.weights import DownloadError, WeightsNotFoundError, WeightsUnavailableError
from dassl.utils import errors

__all__ = ["USER_ERRORS", "error_message"]

USER_ERRORS = errors.USER_ERRORS + (CheckpointError, DownloadError, WeightsNotFoundError,
                                    TextTooLongError)


def error_message(exc: BaseException, weights_option: str = "MODEL.BACKBONE.NAME") -> str:
    """`dassl.utils.error_message`, except that CLIP weights that cannot be fetched, or a
    weights file that is not there, say to pass `weights_option` (the caller's flag or key for a
    weights file) instead."""
    if isinstance(exc, WeightsUnavailableError):
        return exc.one_line(f"pass {weights_option} path/to/{exc.filename}")
    if isinstance(exc, WeightsNotFoundError):
        return (f"{exc}; pass {weights_option} PATH with the CLIP weights file the run was "
                "trained with (a relative path is relative to the working directory)")
    return errors.error_message(exc)

"""The bad-input errors of the command lines that build a model (`train.py`, `score.py`):
dassl's (`dassl.utils.USER_ERRORS`) and clip's types that mean bad input,
composed here because `dassl` knows no backbone and `clip` imports nothing of ours."""
from __future__ import annotations

from clip.checkpoint import CheckpointError
from clip.clip import TextTooLongError
from clip.weights import MODELS, DownloadError, WeightsNotFoundError, WeightsUnavailableError
from dassl.names import did_you_mean
from dassl.utils import errors

__all__ = ["USER_ERRORS", "error_message"]

USER_ERRORS = errors.USER_ERRORS + (CheckpointError, DownloadError, WeightsNotFoundError,
                                    TextTooLongError)


def error_message(exc: BaseException, weights_option: str = "MODEL.BACKBONE.NAME",
                  new_run: bool = False) -> str:
    """`dassl.utils.error_message`, except that CLIP weights that cannot be fetched, or a
    weights file that is not there, say to pass `weights_option` (the caller's flag or key for a
    weights file) instead: a model name or any weights file for a ``new_run``, else the file the
    run was trained with; a name close to a model name's (``ViT-B16``) gets "did you mean"."""
    if isinstance(exc, WeightsUnavailableError):
        return exc.one_line(f"pass {weights_option} path/to/{exc.filename}")
    if isinstance(exc, WeightsNotFoundError):
        close = did_you_mean(exc.requested, MODELS) if exc.requested else ""
        wanted = ("one of those names or the path of a CLIP weights file" if new_run else
                  "PATH with the CLIP weights file the run was trained with")
        return (f"{exc}{close}; pass {weights_option} {wanted} (a relative path is relative to "
                "the working directory)")
    return errors.error_message(exc)

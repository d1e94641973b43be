"""Exception type for problems with dataset files on disk or dataset config values."""

from __future__ import annotations

from dassl.utils.errors import UserError
from dassl.utils.tools import describe_dir, path_problem  # noqa: F401  (for the loaders)

__all__ = ["DatasetError", "MissingDataError", "describe_dir", "path_problem", "SHOW_MISSING"]

SHOW_MISSING = 5  # how many missing/unlisted image names an error message shows


class DatasetError(UserError, ValueError):
    """A dataset cannot be built from what is on disk or from the config.

    Subclasses ``ValueError`` so callers that already catch bad config values keep working, and
    dassl's ``UserError`` so ``train.py`` reports it as ``error: <message>`` without a
    traceback; the message alone says what was expected, where, and what was found instead.
    """


class MissingDataError(DatasetError):
    """A database's folder, label file or images are absent or incomplete on disk (not a config
    problem): the message says what is missing, and the dataset class adds the
    ``python -m datasets.fetch`` command that repairs it where the database has a source."""

"""Image prompts from ``DATASET.PROMPT_FILE``, for prompt-disjoint splits.

AGIQA-3K's ``data.csv`` carries each image's prompt; AIGCIQA2023's MOS files do not, so a
prompt-disjoint split of it needs a user-supplied CSV with columns ``name`` (image name exactly
as the label table has it, e.g. ``17.png``) and ``prompt``. Extra columns and extra rows are
ignored; every image of the label table must be listed, with a non-empty prompt.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from dassl.names import shown

from .errors import SHOW_MISSING, DatasetError, path_problem
from .labels import data_row, read_text_table

__all__ = ["read_prompt_file", "attach_prompts"]


def read_prompt_file(path: str | os.PathLike) -> pd.DataFrame:
    """Read a prompt file into a ``(name, prompt)`` table (both str, file order).

    Raises ``DatasetError`` naming the file for a missing file, missing columns, empty names or
    prompts, and names listed twice.
    """
    path = Path(os.path.expanduser(str(path)))
    if not path.is_file():
        raise DatasetError(f"DATASET.PROMPT_FILE {shown(path)} {path_problem(path, 'file')} (expected a CSV with columns "
                           "name,prompt)")
    raw = read_text_table(path, ("name", "prompt"), what="prompt file")
    table = raw[["name", "prompt"]].reset_index(drop=True)
    table.attrs = dict(raw.attrs)
    for column in ("name", "prompt"):
        empty = table.index[table[column].str.strip() == ""]
        if len(empty):
            raise DatasetError(f"prompt file {shown(path)}: empty {column} at {data_row(table, empty[0])} "
                               f"({len(empty)} such row(s))")
    dup = table["name"][table["name"].duplicated()]
    if len(dup):
        raise DatasetError(f"prompt file {shown(path)}: image {dup.iloc[0]!r} is listed more than once "
                           f"({dup.nunique()} duplicated name(s))")
    return table


def attach_prompts(table: pd.DataFrame, path: str | os.PathLike) -> pd.DataFrame:
    """Return a copy of the label ``table`` whose ``prompt`` column comes from the prompt file.

    A prompt column the label file already had is replaced: the user's file wins.
    """
    prompts = read_prompt_file(path)
    lookup = dict(zip(prompts["name"], prompts["prompt"]))
    unlisted = [n for n in table["name"] if n not in lookup]
    if unlisted:
        examples = ", ".join(map(shown, unlisted[:SHOW_MISSING]))
        raise DatasetError(f"prompt file {shown(path)} lists no prompt for {len(unlisted)} of "
                           f"{len(table)} images, e.g. {examples}")
    attached = table.copy()
    attached["prompt"] = [lookup[n] for n in table["name"]]
    return attached

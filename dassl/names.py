"""How messages show a name the user gave (a file, folder, column, config key, dataset or sweep
name): the one quoting rule of the project, :func:`shown`. Standard library only.

Run as a file it prints each argument as shown, one a line: ``python dassl/names.py NAME...``
(the shell scripts' error lines).
"""
from __future__ import annotations

import os
import sys

__all__ = ["shown"]


def shown(name: object) -> str:
    """A user-supplied name (file, folder, column, config key or name) as messages show it:
    as it is when every character is visible and it neither starts nor ends with a space;
    otherwise quoted and escaped like ``repr`` so that the difference is visible (a trailing
    space ``'vit_b16 '``, a tab ``'a\\tb.png'``, a no-break space ``'x\\xa0y'``, a zero-width
    ``'\\u200bAGIQA'``, a carriage return ``'False\\r'``; Unicode categories Z* other than the
    plain space and C* are escaped). The one quoting rule of the project: the shell scripts
    call it as ``python dassl/names.py NAME`` (this file imports the standard library only,
    so that ``dassl.config`` and the scripts show names without importing torch)."""
    text = os.fspath(name) if isinstance(name, os.PathLike) else str(name)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text and text.isprintable() and text[0] != " " and text[-1] != " ":
        return text
    return repr(text)


if __name__ == "__main__":
    for _name in sys.argv[1:]:
        print(shown(_name))

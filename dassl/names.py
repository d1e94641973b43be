"""Names the user gave (a file, folder, column, config key, dataset, config or sweep name) in
messages: how they are shown (:func:`shown`, the one quoting rule of the project) and which valid
names a rejected one may have meant (:func:`close_names`, :func:`did_you_mean`,
:func:`unknown_name_message`). Standard library only, so that ``dassl.config``, the standalone
database registry and the shell scripts use it without importing torch.

Run as a file (the shell scripts' error lines):
  ``python dassl/names.py NAME...``                     each NAME as shown, one a line;
  ``python dassl/names.py --did-you-mean NAME VALID...``  ``did_you_mean`` (maybe empty).
"""
from __future__ import annotations

import difflib
import os
import re
import sys
import unicodedata
from typing import Iterable, Sequence

__all__ = ["shown", "close_names", "did_you_mean", "unknown_name_message", "look_alike"]

_CUTOFF = 0.6  # difflib ratio a spelling needs to be offered (difflib's own default)


def shown(name: object) -> str:
    """A user-supplied name (file, folder, column, config key or name) as messages show it:
    as it is when every character is visible and it neither starts nor ends with a space;
    otherwise quoted and escaped like ``repr`` so that the difference is visible (a trailing
    space ``'vit_b16 '``, a tab ``'a\\tb.png'``, a no-break space ``'x\\xa0y'``, a zero-width
    ``'\\u200bAGIQA'``, a carriage return ``'False\\r'``; Unicode categories Z* other than the
    plain space and C* are escaped)."""
    text = os.fspath(name) if isinstance(name, os.PathLike) else str(name)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if text and text.isprintable() and text[0] != " " and text[-1] != " ":
        return text
    return repr(text)


def _folded(name: str) -> str:
    return re.sub(r"[\W_]+", "", str(name)).lower()


def close_names(requested: str, valid: Iterable[str], n: int = 3,
                cutoff: float = _CUTOFF) -> list[str]:
    """Up to ``n`` names of ``valid`` that ``requested`` may have meant, best first: those equal
    to it but for case, spaces and punctuation (``vit_b16_EP100``, ``ViT-B16``), then the
    closest spellings (case and punctuation ignored) with a ``difflib`` ratio of at least
    ``cutoff``."""
    valid = [str(v) for v in dict.fromkeys(valid)]
    folded = _folded(requested)
    same = [v for v in valid if _folded(v) == folded]
    if same:  # the same name but for case and punctuation: no need to guess further
        return same[:n]
    by_fold: dict[str, list[str]] = {}
    for v in valid:
        by_fold.setdefault(_folded(v), []).append(v)
    near = difflib.get_close_matches(folded, list(by_fold), n=n, cutoff=cutoff)
    return [v for f in near for v in by_fold[f]][:n]


def did_you_mean(requested: str, valid: Iterable[str], n: int = 3,
                 cutoff: float = _CUTOFF) -> str:
    """``" (did you mean a?)"`` / ``" (did you mean a or b?)"``, each name ``shown``; "" without
    a close name (``close_names``)."""
    close = close_names(requested, valid, n=n, cutoff=cutoff)
    if not close:
        return ""
    return f" (did you mean {' or '.join(shown(c) for c in close)}?)"


def unknown_name_message(kind: str, name: str, valid: Iterable[str]) -> str:
    """``unknown KIND NAME (did you mean X?); valid KINDs: A, B, C``: the message of a name that
    is none of ``valid``, the name ``shown``, the closest valid name offered."""
    choices = sorted(dict.fromkeys(str(v) for v in valid))
    listed = ", ".join(choices) if choices else "none"
    return f"unknown {kind} {shown(name)}{did_you_mean(str(name), choices, n=1)}; valid {kind}s: {listed}"


def _loosely(name: str) -> str:
    """``name`` with what a reader cannot tell apart removed: Unicode compatibility forms
    (NFKC), letter case, format characters (zero-width spaces, BOM) and surrounding spaces."""
    text = unicodedata.normalize("NFKC", str(name)).casefold()
    return "".join(c for c in text if unicodedata.category(c) != "Cf").strip()


def look_alike(name: str, candidates: Iterable[str]) -> str:
    """For a name that is none of ``candidates`` (an image a label file lists, missing from its
    folder): ``"a.JPG is there: the names differ in letter case or invisible characters"``
    when one of them reads the same (``_loosely``), else ""."""
    wanted = _loosely(name)
    hit = next((c for c in candidates if c != name and _loosely(c) == wanted), None)
    if hit is None:
        return ""
    return f"{shown(hit)} is there: the names differ in letter case or invisible characters"


def main(argv: Sequence[str]) -> int:
    """The command line of the module docstring; exit 2 on a bare ``--did-you-mean``."""
    if argv[:1] == ["--did-you-mean"]:
        if len(argv) < 2:
            print("usage: python dassl/names.py --did-you-mean NAME [VALID ...]", file=sys.stderr)
            return 2
        print(did_you_mean(argv[1], argv[2:]).strip())
        return 0
    for name in argv:
        print(shown(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

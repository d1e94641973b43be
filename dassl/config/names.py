"""Close matches of a mistyped name, for the "did you mean" of every error that rejects one
(config keys, registry names, config files, main.sh's CFG). Standard library only: the shell
scripts run it as ``python -m dassl.config.names`` on their error path.

Case, spaces and punctuation are ignored first (``vit_b16_EP100`` is ``vit_b16_ep100``), then
the nearest spellings by ``difflib``'s ratio.
"""
from __future__ import annotations

import difflib
import re
import sys
from typing import Iterable, Sequence

__all__ = ["close_names", "did_you_mean"]

_CUTOFF = 0.6  # difflib ratio a spelling needs to be offered (its own default)


def _folded(name: str) -> str:
    return re.sub(r"[\W_]+", "", str(name)).lower()


def close_names(requested: str, valid: Iterable[str], n: int = 3,
                cutoff: float = _CUTOFF) -> list[str]:
    """Up to ``n`` names of ``valid`` that ``requested`` may have meant, best first: those equal
    to it but for case and punctuation, then the closest spellings (case and punctuation
    ignored) with a ``difflib`` ratio of at least ``cutoff``."""
    valid = list(dict.fromkeys(valid))
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
    """``" (did you mean 'a'?)"`` / ``" (did you mean 'a' or 'b'?)"``; "" without a close name
    (``close_names``)."""
    close = close_names(requested, valid, n=n, cutoff=cutoff)
    if not close:
        return ""
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)"


def main(argv: Sequence[str]) -> int:
    """``python -m dassl.config.names NAME VALID...``: print ``did_you_mean`` (maybe empty)."""
    if not argv:
        print("usage: python -m dassl.config.names NAME [VALID ...]", file=sys.stderr)
        return 2
    print(did_you_mean(argv[0], argv[1:]).strip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

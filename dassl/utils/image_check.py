"""Up-front check that image files decode, so a bad file fails a run before training, not at
epoch 80.

The check runs the decoder training and scoring use (``dassl.utils.images.read_image``), so it
catches everything decoding will hit: missing files, files over the pixel limit, truncated or
corrupt data (also a PNG whose chunk checksums are valid but whose compressed pixel data is
not), modes without an RGB rendering. The one difference: JPEG files are decoded at 1/8 scale
(every compressed byte is still decoded, so a truncated or corrupt stream still fails).
Cost per image, measured on one core of a shared 2-core x86 machine: 14 ms for a 1024 px JPEG,
14 ms for a 512 px and 50 ms for a 1024 px PNG (2,400 PNGs of 512 px: about 35 s on one
core). Decoding releases the GIL, so a small thread pool scales with the cores.
"""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence

from .images import ImageReadError, read_image
from .tools import count_noun
from ..names import shown

__all__ = ["image_problem", "find_unreadable_images", "format_bad_images"]

_MAX_THREADS = 8  # enough to saturate a local disk; more threads only add contention
_DRAFT_SCALE = 8  # JPEG decode scale factor of the check


def image_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be used as an image (e.g. ``"OSError: image file is truncated"``),
    or None when it reads fine."""
    try:
        read_image(path, reduce=_DRAFT_SCALE)
    except ImageReadError as exc:
        return exc.reason or str(exc)
    return None


def find_unreadable_images(paths: Sequence[str], threads: Optional[int] = None,
                           progress: bool = True) -> list[tuple[str, str]]:
    """Check every path with :func:`image_problem`; return ``(path, reason)`` of the bad ones in
    the order of ``paths``.

    With ``progress`` a ``Checking images: i/N`` line is redrawn on a terminal (``\\r``, so it
    never reaches the log file) and one summary line is printed at the end.
    """
    if not paths:
        return []
    threads = threads or min(_MAX_THREADS, os.cpu_count() or 1)
    start = time.time()
    interactive = progress and sys.stdout.isatty()
    step = max(1, len(paths) // 100)
    problems: list[Optional[str]] = []
    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        for i, problem in enumerate(pool.map(image_problem, paths), start=1):
            problems.append(problem)
            if interactive and (i % step == 0 or i == len(paths)):
                print(f"\rChecking images: {i}/{len(paths)}", end="", flush=True)
    finally:
        # On Ctrl-C, drop the queued checks instead of finishing them all first.
        pool.shutdown(wait=True, cancel_futures=True)
    if interactive:
        print("\r", end="")
    bad = [(path, problem) for path, problem in zip(paths, problems) if problem is not None]
    if progress:
        print(f"Checked that {count_noun(len(paths), 'image')} decode in {time.time() - start:.1f} s: "
              f"{len(bad)} unreadable")
    return bad


def format_bad_images(bad: Sequence[tuple[str, str]], limit: int = 10) -> str:
    """Indented ``path (reason)`` lines for the first ``limit`` entries, plus a count of the rest."""
    lines = [f"  {shown(path)} ({reason})" for path, reason in bad[:limit]]
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more")
    return "\n".join(lines)

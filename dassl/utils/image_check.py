"""Up-front check that image files decode, so a bad file fails a run before training, not at
epoch 80.

Cost per image (measured on one CPU core): PNG files are verified (chunk checksums, no
decompression, about 2 ms for a 3 MB file); JPEG files are decoded at 1/8 scale (a truncated
entropy-coded stream still fails, about 2-5 ms for 512-1024 px); other formats are fully
decoded. Decoding releases the GIL, so a small thread pool scales with the cores.
"""
from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence

from PIL import Image

__all__ = ["image_problem", "find_unreadable_images", "format_bad_images"]

_MAX_THREADS = 8  # enough to saturate a local disk; more threads only add contention
_DRAFT_SCALE = 8  # JPEG decode scale factor of the check


def image_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be used as an image (e.g. ``"OSError: image file is truncated"``),
    or None when it reads fine."""
    try:
        with Image.open(path) as img:
            if img.format == "PNG":
                img.verify()  # CRCs of every chunk: catches truncation and flipped bytes
            else:
                if img.format == "JPEG":
                    img.draft("RGB", (max(1, img.width // _DRAFT_SCALE),
                                      max(1, img.height // _DRAFT_SCALE)))
                img.load()
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, ... per codec
        return f"{type(exc).__name__}: {exc}"
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
        print(f"Checked that {len(paths)} images decode in {time.time() - start:.1f} s: "
              f"{len(bad)} unreadable")
    return bad


def format_bad_images(bad: Sequence[tuple[str, str]], limit: int = 10) -> str:
    """Indented ``path (reason)`` lines for the first ``limit`` entries, plus a count of the rest."""
    lines = [f"  {path} ({reason})" for path, reason in bad[:limit]]
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more")
    return "\n".join(lines)

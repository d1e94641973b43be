"""Tee ``sys.stdout`` and ``sys.stderr`` into a log file.

Usage (train.py): call :func:`buffer_early_output` first thing (optional), then
``setup_logger(cfg.OUTPUT_DIR)`` once the output directory is known. Everything printed in
between (e.g. "Setting fixed seed") is kept in memory and written at the top of the log, so no
message is lost; stderr (warnings, tracebacks) goes to the log as well. Text containing a
carriage return (progress-bar redraws) is shown on the console but not copied to the file;
:func:`log_only` writes to the file alone.
"""
from __future__ import annotations

import atexit
import io
import os
import sys
import time
from typing import IO, Optional

from .errors import write_failure
from .tools import mkdir_if_missing


class _Tee:
    """File-like object writing to the original stream and to a sink (log file or buffer)."""

    def __init__(self, stream: IO[str], sink: IO[str]) -> None:
        self.stream = stream
        self.sink = sink

    def write(self, text: str) -> int:
        self.stream.write(text)
        if "\r" not in text:  # progress-bar redraws would only clutter the file
            self._to_sink(self.sink.write, text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self._to_sink(self.sink.flush)

    def _to_sink(self, method, *args) -> None:
        """Write to the log file; when it cannot be written (full or read-only disk) say so once
        on the console and go on without it, so the console and the run's real error survive."""
        if _state.get("sink_failed"):
            return
        try:
            method(*args)
        except OSError as exc:
            _state["sink_failed"] = True
            self.stream.write(f"\nwarning: the log file {_state.get('path') or ''} cannot be "
                              f"written ({write_failure(exc) or exc.strerror or exc}); the "
                              "log goes on on the console only\n")

    def isatty(self) -> bool:
        return self.stream.isatty()

    def __getattr__(self, name: str):
        # encoding, fileno, errors, ... come from the wrapped console stream.
        return getattr(self.stream, name)


_state: dict = {"stdout": None, "stderr": None, "sink": None, "path": None}


def _uninstall() -> str:
    """Restore the original streams; return the text captured by an early buffer, if any."""
    early_text = ""
    if _state["stdout"] is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = _state["stdout"], _state["stderr"]
        sink = _state["sink"]
        if isinstance(sink, io.StringIO):
            early_text = sink.getvalue()
        else:
            try:
                sink.close()
            except OSError:  # its last lines did not fit (said on the console by _Tee)
                pass
    _state.update(stdout=None, stderr=None, sink=None, path=None, sink_failed=False)
    return early_text


def _install(sink: IO[str], path: Optional[str]) -> None:
    _state.update(stdout=sys.stdout, stderr=sys.stderr, sink=sink, path=path, sink_failed=False)
    sys.stdout = _Tee(sys.stdout, sink)
    sys.stderr = _Tee(sys.stderr, sink)


def buffer_early_output() -> None:
    """Start keeping a copy of stdout/stderr in memory until :func:`setup_logger` is called."""
    early = _uninstall()
    buffer = io.StringIO()
    buffer.write(early)
    _install(buffer, None)


def _rotated_name(fpath: str) -> str:
    """``dir/log.txt`` -> ``dir/log-YYYY-MM-DD-HH-MM-SS.txt`` (old file's mtime; unique)."""
    root, ext = os.path.splitext(fpath)
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.localtime(os.path.getmtime(fpath)))
    candidate, n = f"{root}-{stamp}{ext}", 1
    while os.path.exists(candidate):
        candidate, n = f"{root}-{stamp}-{n}{ext}", n + 1
    return candidate


def setup_logger(output: Optional[str] = None) -> Optional[str]:
    """Tee stdout and stderr into a log file and return its path.

    ``output`` ending in ``.txt``/``.log`` is the file itself, otherwise ``output/log.txt``.
    An existing file of that name is renamed to ``<name>-YYYY-MM-DD-HH-MM-SS<ext>`` first, so the
    plain name always holds the newest run. Calling it again replaces the previous tee.
    ``output=None`` does nothing (Dassl behaviour).
    """
    if output is None:
        return None
    if output.endswith(".txt") or output.endswith(".log"):
        fpath = output
    else:
        fpath = os.path.join(output, "log.txt")
    early_text = _uninstall()
    mkdir_if_missing(os.path.dirname(os.path.abspath(fpath)))
    if os.path.exists(fpath):
        os.replace(fpath, _rotated_name(fpath))
    # Line buffering: every complete line reaches the file even if the process is killed.
    sink = open(fpath, "w", encoding="utf-8", buffering=1)
    sink.write(early_text)
    _install(sink, fpath)
    return fpath


def log_only(text: str) -> bool:
    """Write ``text`` to the log file (or the early buffer) but not to the console.

    For what a log must keep but a user need not read at every start (the full config, the
    environment). Returns False, writing nothing, when no log or buffer is set up.
    """
    sink = _state["sink"]
    if sink is None:
        return False
    sink.write(text if text.endswith("\n") else text + "\n")
    return True


def teardown_logger() -> None:
    """Stop teeing and close the log file (also discards an unused early buffer)."""
    _uninstall()


atexit.register(teardown_logger)

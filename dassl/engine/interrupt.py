"""Graceful Ctrl-C and SIGTERM (a job's time limit, ``kill``) for long work.

In the training loop (``InterruptGuard``) the first SIGINT or SIGTERM only sets a flag: the loop finishes the current optimizer step, stops, and
raises :class:`TrainingInterrupted` naming the checkpoint a re-run resumes from. A second one
raises ``KeyboardInterrupt`` at once (checkpoints are written atomically, so this is safe too).

Why no mid-epoch checkpoint: a half-finished epoch cannot be resumed bit-exactly (the data order
and the augmentation RNG of DataLoader workers are not restorable), so the resumable state is
always the last end-of-epoch checkpoint and a re-run repeats the interrupted epoch from its
start; it then reaches the same final numbers as an uninterrupted run.

Other long work (scoring, writing tables) uses ``terminate_as_interrupt``: SIGTERM raises
``KeyboardInterrupt`` like Ctrl-C, so one ``except KeyboardInterrupt`` keeps what was done.
"""
from __future__ import annotations

import os
import signal
import contextlib
import threading
from typing import Iterator, Optional

__all__ = ["TrainingInterrupted", "InterruptGuard", "interruption_message",
           "terminate_as_interrupt", "STOP_SIGNALS"]

# The signals that stop long work gracefully: Ctrl-C and a polite kill (SLURM's time limit).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped after a Ctrl-C; ``str()`` says which checkpoint a re-run resumes from."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "training interrupted"


class InterruptGuard:
    """Context manager turning the first SIGINT or SIGTERM into a request flag (see the module
    docstring).

    Outside the main thread, signals cannot be handled, so the guard does nothing and
    ``requested`` stays False. The previous handler is restored on exit.
    """

    def __init__(self) -> None:
        self.requested = False
        self._pid = os.getpid()
        self._previous = None
        self._installed = False

    def _handle(self, signum, frame) -> None:
        if os.getpid() != self._pid:
            # A forked DataLoader worker inherited this handler; a terminal's Ctrl-C reaches it
            # too. The main process decides; the worker keeps serving until it is shut down.
            return
        name = _signal_name(signum)
        if self.requested:
            raise KeyboardInterrupt(f"second {name}: aborted immediately")
        self.requested = True
        # A raw write: print() here could re-enter a buffered write the signal interrupted.
        try:
            os.write(2, f"\n{name}: stopping after the current step (send it again to abort "
                        "at once)\n".encode())
        except OSError:
            pass

    def __enter__(self) -> "InterruptGuard":
        if threading.current_thread() is threading.main_thread():
            self._pid = os.getpid()
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
            self._installed = True
        return self

    def __exit__(self, *exc) -> None:
        if self._installed:
            for signum, previous in self._previous.items():
                signal.signal(signum, previous)
            self._installed = False


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(_signal_name(signum))


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does (main thread only;
    elsewhere nothing changes), so long work keeps what it did on either."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interruption_message(epoch: int, max_epoch: int, stopped_at: Optional[tuple[int, int]],
                         checkpoint: Optional[str], resumed_epochs: Optional[int]) -> str:
    """Text of :class:`TrainingInterrupted`.

    ``epoch`` is 1-based; ``stopped_at`` = (batches done, batches per epoch) when the epoch was
    cut short, None when it completed; ``checkpoint`` the latest resumable file (None if none);
    ``resumed_epochs`` the number of finished epochs it holds.
    """
    if stopped_at is not None:
        where = f"during epoch {epoch}/{max_epoch} (after batch {stopped_at[0]}/{stopped_at[1]})"
    else:
        where = f"after epoch {epoch}/{max_epoch}"
    if checkpoint is None:
        return (f"training interrupted {where}; no checkpoint was saved yet, so running the same "
                "command again starts from scratch")
    return (f"training interrupted {where}; the last checkpoint is {checkpoint} (end of epoch "
            f"{resumed_epochs}). Run the same command again to resume from it: the interrupted "
            "epoch is repeated from its start, so the final results equal those of an "
            "uninterrupted run")

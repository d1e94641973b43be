"""Run status and parallel execution of sweep runs (one child process per run).

A run folder is *done* when its ``results.json`` (written by ``train.py`` after training) is
complete, *resume* when it holds a checkpoint pointer from an interrupted run (``train.py``
resumes from ``OUTPUT_DIR`` by itself), else *new*. Before launching, the sweep writes
``sweep_run.json`` (the run's identity, see ``Run.identity``); a folder whose stored identity
differs is refused, so results of different experiments are never mixed or resumed into each
other. Once a run has finished, its ``sweep_run.json`` also records where its labels and split
came from (``data``: path and SHA-256 of each label and split file, the split mode and index, as
the run's ``results.json`` has them); that record is not part of the identity. Each child's
stdout and stderr are appended to ``sweep.log`` in its run folder.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Mapping, Optional, Sequence

from dassl.evaluation.metric_names import RAW_METRICS
from dassl.utils import UserError, atomic_write_text
from dassl.utils.run_dir import (RESULTS_FILE, SWEEP_LOG_FILE, SWEEP_RUN_FILE, RerunAdvice,
                                 check_new_run_folder, checkpoint_dirs, same_path)
from dassl.utils.run_record import PATH_KEYS
from dassl.utils.run_dir import read_results as read_run_results
from dassl.utils.run_lock import RunLock, lock_run_dir

from .spec import SweepError

__all__ = ["RESULTS_FILE", "RUN_FILE", "LOG_FILE", "INTERRUPTED_EXIT_CODES", "Job", "read_results", "run_status",
           "check_identity", "write_identity", "data_record", "record_data", "visible_gpus", "device_slots", "launch", "take_lock", "report",
           "log_tail", "execute"]

RUN_FILE = SWEEP_RUN_FILE  # names of the run folder contract (dassl.utils.run_dir)
LOG_FILE = SWEEP_LOG_FILE
REQUIRED_METRICS = RAW_METRICS
# Entries of sweep_run.json that record what a finished run used, not what it is: never compared.
RECORD_KEYS = ("data",)
_TAIL_LINES = 8  # lines of a failed run's log shown on the console
# Exit statuses of an interrupted run: train.py's after Ctrl-C (128 + SIGINT), and a child killed
# by SIGINT (Popen's negative signal number). Either stops the sweep.
INTERRUPTED_EXIT_CODES = (128 + signal.SIGINT, -signal.SIGINT)


@dataclass(frozen=True)
class Job:
    """A command to run in ``output_dir`` (``argv[0]`` is the interpreter) and its identity."""

    key: str
    argv: tuple[str, ...]
    output_dir: Path
    identity: Mapping
    mode: str = "train"  # the results.json mode that marks it done: "train" or "eval_only"


def read_results(run_dir: str | os.PathLike, mode: str = "train") -> Optional[dict]:
    """The run's ``results.json`` if it is a complete report of ``mode``, else None.

    Complete: that mode, and ``last`` / ``selected`` blocks (train) or a ``final`` block
    (eval_only) whose ``metrics`` hold SRCC/PLCC/KRCC/RMSE keys (values may be null = NaN).
    Unreadable JSON counts as incomplete.
    """
    results = read_run_results(os.fspath(run_dir))
    if results is None or results.get("mode") != mode:
        return None
    for block in ("last", "selected") if mode == "train" else ("final",):
        part = results.get(block)
        metrics = part.get("metrics") if isinstance(part, dict) else None
        if not isinstance(metrics, dict) or not all(k in metrics for k in REQUIRED_METRICS):
            return None
    return results


def run_status(run_dir: str | os.PathLike, mode: str = "train") -> str:
    """"done", "resume" (a module folder holds a checkpoint) or "new"."""
    run_dir = Path(run_dir)
    if read_results(run_dir, mode) is not None:
        return "done"
    if run_dir.is_dir() and checkpoint_dirs(os.fspath(run_dir)):
        return "resume"
    return "new"


def check_identity(run_dir: str | os.PathLike, identity: Mapping) -> None:
    """Raise ``SweepError`` if ``run_dir`` holds a ``sweep_run.json`` of another experiment."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SweepError(f"{path} is not valid JSON ({exc}); delete it to reuse the folder") \
            from exc
    expected = json.loads(json.dumps(dict(identity)))  # tuples -> lists, as stored
    differs = sorted(k for k in set(stored) | set(expected)
                     if k not in RECORD_KEYS and stored.get(k) != expected.get(k)
                     and not (k == "opts" and _same_opts(stored.get(k), expected.get(k))))
    if differs:
        details = "; ".join(f"{k}: stored {stored.get(k)!r}, now {expected.get(k)!r}"
                            for k in differs)
        raise SweepError(f"{run_dir} belongs to a different experiment ({details}); use another "
                         "--output or delete the folder")


def _same_opts(stored, expected) -> bool:
    """Whether two ``KEY VALUE`` lists are equal, a path-valued key (``PATH_KEYS``) counting
    as equal when both values name one existing file (a stored relative path: relative to the
    working directory, as in sweeps stored before paths were written absolute)."""
    if not (isinstance(stored, list) and isinstance(expected, list)) \
            or len(stored) != len(expected) or stored[0::2] != expected[0::2]:
        return False
    return all(old == new or (key in PATH_KEYS and same_path(old, new, [os.getcwd()]))
               for key, old, new in zip(stored[0::2], stored[1::2], expected[1::2]))


def write_identity(run_dir: str | os.PathLike, identity: Mapping) -> None:
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(str(Path(run_dir) / RUN_FILE), json.dumps(dict(identity), indent=2) + "\n")


def data_record(results: Mapping) -> dict:
    """Where a run's labels and split came from, from its ``results.json`` ``data`` block:
    ``label_files`` and ``split_files`` (lists of ``{"path", "sha256"}``), ``split_mode``
    ("random", "prompt", "file", "official" or "all") and ``split_index`` (int, None without a
    split file). Missing entries are empty lists / None (e.g. a results.json of an old run)."""
    data = results.get("data") if isinstance(results.get("data"), Mapping) else {}
    split = data.get("split") if isinstance(data.get("split"), Mapping) else {}
    return {"label_files": list(data.get("label_files") or []),
            "split_files": list(split.get("files") or []),
            "split_mode": split.get("mode"), "split_index": split.get("index")}


def record_data(job: Job, results: Mapping) -> None:
    """Add ``data_record(results)`` of the finished ``job`` to its ``sweep_run.json``."""
    identity = dict(job.identity)
    identity["data"] = data_record(results)
    write_identity(job.output_dir, identity)


def visible_gpus(env: Optional[Mapping[str, str]] = None,
                 count: Optional[Callable[[], int]] = None) -> list[str]:
    """GPU ids children may use: ``CUDA_VISIBLE_DEVICES`` entries when it is set (``""`` or
    ``-1`` = none), else ``0 .. torch.cuda.device_count()-1``."""
    env = os.environ if env is None else env
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids = [g.strip() for g in listed.split(",") if g.strip()]
        # CUDA stops at the first invalid id, and -1 is the usual way to hide all GPUs.
        return ids[:ids.index("-1")] if "-1" in ids else ids
    if count is None:
        import torch  # deferred: only needed when the environment does not list the GPUs
        count = torch.cuda.device_count
    return [str(i) for i in range(count())]


def device_slots(gpus: Sequence[str], jobs: Optional[int] = None) -> list[Optional[str]]:
    """Parallel slots: ``jobs`` (default one per GPU, 1 without GPUs) slots cycling over the
    GPUs; None = leave ``CUDA_VISIBLE_DEVICES`` as it is (CPU)."""
    n = jobs if jobs is not None else max(1, len(gpus))
    if n < 1:
        raise SweepError(f"--jobs must be at least 1, got {n}")
    return [gpus[i % len(gpus)] if gpus else None for i in range(n)]


def log_tail(run_dir: str | os.PathLike, lines: int = _TAIL_LINES) -> str:
    """The last ``lines`` lines of the run's ``sweep.log``, indented ("" when unreadable)."""
    try:
        text = (Path(run_dir) / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def launch(job: Job, device: Optional[str] = None,
           preexec_fn: Optional[Callable[[], None]] = None,
           lock: Optional[RunLock] = None) -> tuple[subprocess.Popen, IO[str]]:
    """Start ``job.argv`` in the background: record the run's identity, append a header and the
    child's stdout/stderr to ``sweep.log``; ``device`` sets ``CUDA_VISIBLE_DEVICES`` (None =
    inherit); ``preexec_fn`` runs in the child before ``exec`` (e.g. to ignore a signal);
    ``lock``: the run folder's lock (``take_lock``), handed to the child, which adopts it.
    Returns the process and the open log (close it once the process has ended)."""
    write_identity(job.output_dir, job.identity)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    pass_fds: tuple[int, ...] = ()
    if lock is not None and lock.fd is not None:
        env, pass_fds = lock.child_env(env), (lock.fd,)
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    log = open(job.output_dir / LOG_FILE, "a", encoding="utf-8")
    log.write(f"\n===== sweep launch {time.strftime('%Y-%m-%d %H:%M:%S')}: "
              f"{' '.join(job.argv)}\n")
    log.flush()
    proc = subprocess.Popen(list(job.argv), stdout=log, stderr=subprocess.STDOUT, env=env,
                            preexec_fn=preexec_fn, pass_fds=pass_fds)
    if lock is not None:
        lock.hand_to(proc.pid, job.argv)  # the run's pid with the run's command, and the sweep
    return proc, log


def take_lock(job: Job, echo: Callable[[str], None] = print) -> Optional[RunLock]:
    """The lock of ``job``'s run folder for the sweep to hand to its ``train.py``
    (``dassl.utils.run_lock``); None, after saying so, when another process holds it: a sweep
    never starts a run whose folder is in use, or a folder holding other files than a run's
    (``check_new_run_folder``)."""
    try:
        check_new_run_folder(os.fspath(job.output_dir), what="run folder",
                             advice=RerunAdvice(other_folder="give the sweep another --output"))
        # Held by the sweep itself (its pid, its command) until ``launch`` hands it to the run.
        return lock_run_dir(os.fspath(job.output_dir), what="run folder")
    except UserError as exc:  # RunFolderBusy, or a folder of the user's
        echo(f"skip  {job.key}: {exc}")
        return None


def report(job: Job, code: Optional[int], took_s: float) -> tuple[bool, str]:
    """Whether a run that ended with exit status ``code`` succeeded (status 0 and a complete
    ``results.json``), and the console line for it (a failure shows the log's last lines). A
    finished run's data sources go into its ``sweep_run.json`` (``record_data``)."""
    results = read_results(job.output_dir, job.mode) if code == 0 else None
    if results is None:
        return False, (f"FAILED {job.key} (exit code {code}) after {took_s:.0f} s; log "
                       f"{job.output_dir / LOG_FILE}:\n{log_tail(job.output_dir)}")
    record_data(job, results)
    if job.mode != "train":
        srcc = results["final"]["metrics"].get("srcc")
        srcc = "nan" if srcc is None else f"{float(srcc):.4f}"
        return True, (f"done  {job.key} in {took_s:.0f} s: SRCC {srcc} on all "
                      f"{results['final'].get('n_images')} images")
    selected = results["selected"]
    srcc = selected["metrics"].get("srcc")
    srcc = "nan" if srcc is None else f"{float(srcc):.4f}"
    return True, (f"done  {job.key} in {took_s:.0f} s: selected epoch {selected.get('epoch')} "
                  f"({selected.get('selected_on')}), test SRCC {srcc}")


def execute(jobs: Sequence[Job], slots: Sequence[Optional[str]],
            echo: Callable[[str], None] = print, poll_s: float = 0.2) -> dict[str, bool]:
    """Run ``jobs`` with at most ``len(slots)`` at a time; return ``{key: succeeded}``.

    A job succeeded when it exited with 0 and left a complete ``results.json``. Failures are
    reported (with the log's last lines) and do not stop the other jobs; a job whose run folder
    another process holds (``take_lock``) is not started (and not in the result). On KeyboardInterrupt,
    or when a run ends interrupted (``INTERRUPTED_EXIT_CODES``: train.py's exit status after
    Ctrl-C, or killed by SIGINT), no further job starts, the running children are terminated
    (their runs resume next time) and KeyboardInterrupt is raised.
    """
    pending = list(jobs)
    free = list(range(len(slots)))
    active: dict[int, tuple[Job, subprocess.Popen, object, float]] = {}
    locks: dict[int, RunLock] = {}
    outcome: dict[str, bool] = {}
    total = len(pending)
    try:
        while pending or active:
            while pending and free:
                job = pending.pop(0)
                lock = take_lock(job, echo)
                if lock is None:
                    continue
                slot = free.pop(0)
                proc, log = launch(job, slots[slot], lock=lock)
                where = f" on GPU {slots[slot]}" if slots[slot] is not None else ""
                echo(f"[{total - len(pending)}/{total}] start {job.key}{where}")
                active[slot] = (job, proc, log, time.monotonic())
                locks[slot] = lock
            time.sleep(poll_s)
            for slot, (job, proc, log, started) in list(active.items()):
                code = proc.poll()
                if code is None:
                    continue
                log.close()
                locks.pop(slot).release()
                del active[slot]
                free.append(slot)
                if code in INTERRUPTED_EXIT_CODES:
                    # Ctrl-C reached the run (its process group) but maybe not this process
                    # (SIGINT ignored, as in a background job): stop the sweep all the same.
                    echo(f"interrupted {job.key} (exit code {code}): stopping the sweep")
                    raise KeyboardInterrupt
                outcome[job.key], message = report(job, code, time.monotonic() - started)
                echo(message)
    except KeyboardInterrupt:
        for job, proc, log, _started in active.values():
            proc.terminate()
        for job, proc, log, _started in active.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        for lock in locks.values():
            lock.release()
        print("sweep interrupted: run the same command again to resume", file=sys.stderr)
        raise
    return outcome

"""Sweep runs on a SLURM cluster through submitit: one job array per submission.

Each array task runs a chunk of ``runs_per_task`` runs one after the other, with the same
``train.py`` command lines, ``sweep_run.json`` and ``sweep.log`` as the local executor
(``RunTask``). submitit writes the batch file, the pickled tasks and the logs to
``OUTPUT/slurm/`` and asks for ``USR2`` shortly before the time limit; ``RunTask`` is a
``submitit.helpers.Checkpointable``, so on that signal its running ``train.py`` is stopped and
the task is requeued, and the run resumes from its last end-of-epoch checkpoint (the run folders
resume by themselves; a task that SLURM requeues after preemption restarts the same way).

Every submitted run folder holds ``sweep_job.json`` (``MARKER_FILE``): the executor, the array
task's job id, when it was submitted and what the task last did with the run (``state``:
queued, running, requeued, done, failed; ``exit_code``). A run's state (``run_states``) combines
that marker with the scheduler's (``sacct``, read through submitit): done (complete
``results.json``), queued, running, failed (submitted or started, not done and no longer in the
scheduler) or new. Runs that are queued or running are never submitted again, and a task takes a
lock on the run folder (``dassl.utils.run_lock``, the lock every writer of a run folder
takes) and hands it to its ``train.py``, so no folder is trained twice at once; a folder whose
lock is held counts as running whatever started it.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import re
import shlex
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

from dassl.utils import atomic_write_text
from dassl.utils.run_lock import describe_holder, lock_holder

from .runner import (LOG_FILE, RUN_FILE, Job, launch, log_tail, read_results, report,
                     take_lock, write_identity)
from .spec import REPO, SweepError

try:  # optional: only the slurm executor needs it (requirements-cluster.txt)
    import submitit
    from submitit.helpers import Checkpointable
except ImportError:  # --executor slurm then says how to install it (require_submitit)
    submitit = None
    Checkpointable = object

__all__ = ["SUBMITIT_CLUSTER", "MARKER_FILE", "LOG_DIR", "STATES", "SlurmOptions", "RunState",
           "RunTask", "require_submitit", "parse_time_minutes", "parse_sbatch_opts",
           "read_marker", "write_marker", "scheduler_states", "run_states",
           "submission_lock", "task_chunks", "submit_runs", "submit_collect", "wait_for",
           "describe_failure"]

# The submitit executor behind ``--executor slurm``; the tests run the same code with "local"
# (submitit's LocalExecutor: real subprocesses on this machine, no cluster).
SUBMITIT_CLUSTER = "slurm"
MARKER_FILE = "sweep_job.json"
LOG_DIR = "slurm"
STATES = ("new", "queued", "running", "done", "failed")
INSTALL_HINT = "pip install -r requirements-cluster.txt  (or: pip install submitit)"
# sacct's job states, by what they mean for the runs of an array task.
QUEUED_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD",
                           "CONFIGURING", "SUSPENDED", "RESIZING"})
RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT"})
# A job sacct does not know yet (the accounting database lags behind sbatch) counts as queued
# for this long after its submission.
SUBMIT_GRACE_S = 600
# Seconds a stopped train.py gets to end its step (SIGINT) before SIGKILL: well inside the 90 s
# between submitit's USR2 and SLURM's kill.
STOP_GRACE_S = 60.0
# Sbatch options owned by a dedicated flag or by submitit itself (array, logs, signal).
_OWNED = {"partition": "--partition", "p": "--partition", "account": "--account",
          "A": "--account", "qos": "--qos", "q": "--qos", "time": "--time-per-run",
          "t": "--time-per-run", "gpus-per-node": "--gpus-per-run", "gpus": "--gpus-per-run",
          "G": "--gpus-per-run", "cpus-per-task": "--cpus-per-run", "c": "--cpus-per-run",
          "mem": "--mem", "array": "--array-parallelism and --runs-per-task",
          "a": "--array-parallelism and --runs-per-task", "output": "submitit (OUTPUT/slurm/)",
          "o": "submitit (OUTPUT/slurm/)", "error": "submitit (OUTPUT/slurm/)",
          "e": "submitit (OUTPUT/slurm/)", "signal": "submitit (requeue on timeout)",
          "job-name": "the sweep", "J": "the sweep", "open-mode": "submitit"}
_SBATCH_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
_TIME = re.compile(r"^(?:(?P<days>\d+)-)?(?P<rest>\d+(?::\d+){0,2})$")


def require_submitit() -> Any:
    """The submitit module; ``SweepError`` with the install command when it is missing."""
    if submitit is None:
        raise SweepError(f"--executor slurm needs the submitit package: {INSTALL_HINT}")
    return submitit


def parse_time_minutes(text: str, flag: str = "--time-per-run") -> int:
    """A SLURM time limit as whole minutes (rounded up): ``MINUTES``, ``MINUTES:SECONDS``,
    ``HOURS:MINUTES:SECONDS``, ``DAYS-HOURS``, ``DAYS-HOURS:MINUTES`` or
    ``DAYS-HOURS:MINUTES:SECONDS``. Raises ``SweepError`` unless it is a positive time."""
    match = _TIME.match(str(text).strip())
    if match is None:
        raise SweepError(f"{flag} must be a positive SLURM time (MINUTES, HH:MM:SS or "
                         f"D-HH:MM:SS), got {text!r}")
    parts = [int(p) for p in match["rest"].split(":")]
    if match["days"] is not None:  # D-H, D-H:M, D-H:M:S
        parts += [0] * (3 - len(parts))
        seconds = int(match["days"]) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]
    elif len(parts) == 3:
        seconds = parts[0] * 3600 + parts[1] * 60 + parts[2]
    else:  # M or M:S
        seconds = parts[0] * 60 + (parts[1] if len(parts) == 2 else 0)
    if seconds <= 0:
        raise SweepError(f"{flag} must be a positive time, got {text!r}")
    return math.ceil(seconds / 60)


def parse_sbatch_opts(items: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (``KEY`` an sbatch long option, leading ``--`` allowed) as a
    mapping; raises ``SweepError`` for anything else or for options another flag sets."""
    parsed: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        key = key[2:] if key.startswith("--") else key
        if not sep or not value or not _SBATCH_KEY.match(key):
            raise SweepError(f"--sbatch-opt takes KEY=VALUE (an sbatch option and its value, e.g. "
                             f"constraint=a100), got {item!r}")
        if key in _OWNED or key.replace("_", "-") in _OWNED:
            raise SweepError(f"--sbatch-opt {key}: set by {_OWNED[key.replace('_', '-')]}")
        parsed[key] = value
    return parsed


def _positive(value: Optional[int], flag: str) -> Optional[int]:
    if value is not None and value < 1:
        raise SweepError(f"{flag} must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class SlurmOptions:
    """Resources of one array task; a task runs ``runs_per_task`` runs one after the other."""

    time_per_run_min: int
    runs_per_task: int = 1
    gpus_per_run: int = 1
    cpus_per_run: Optional[int] = None
    mem_gb: Optional[float] = None
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    array_parallelism: Optional[int] = None
    sbatch_opts: Mapping[str, str] = None  # type: ignore[assignment]

    @classmethod
    def from_flags(cls, time_per_run: str, runs_per_task: int = 1, gpus_per_run: int = 1,
                   cpus_per_run: Optional[int] = None, mem: Optional[str] = None,
                   partition: Optional[str] = None, account: Optional[str] = None,
                   qos: Optional[str] = None, array_parallelism: Optional[int] = None,
                   sbatch_opts: Sequence[str] = ()) -> "SlurmOptions":
        """Validate the command-line values (``SweepError`` names the flag at fault)."""
        if gpus_per_run < 0:
            raise SweepError(f"--gpus-per-run must be 0 or more, got {gpus_per_run}")
        return cls(time_per_run_min=parse_time_minutes(time_per_run),
                   runs_per_task=_positive(runs_per_task, "--runs-per-task"),
                   gpus_per_run=gpus_per_run,
                   cpus_per_run=_positive(cpus_per_run, "--cpus-per-run"),
                   mem_gb=_parse_mem_gb(mem), partition=partition, account=account, qos=qos,
                   array_parallelism=_positive(array_parallelism, "--array-parallelism"),
                   sbatch_opts=parse_sbatch_opts(sbatch_opts))

    @property
    def task_time_min(self) -> int:
        """The time limit of one array task: runs per task x time per run (minutes)."""
        return self.runs_per_task * self.time_per_run_min

    def parameters(self, name: str) -> dict[str, Any]:
        """``AutoExecutor.update_parameters`` keywords of the array."""
        params: dict[str, Any] = dict(
            name=name, timeout_min=self.task_time_min, gpus_per_node=self.gpus_per_run,
            tasks_per_node=1, cpus_per_task=self.cpus_per_run, mem_gb=self.mem_gb,
            slurm_partition=self.partition, slurm_account=self.account, slurm_qos=self.qos,
            slurm_array_parallelism=self.array_parallelism,
            slurm_additional_parameters=dict(self.sbatch_opts or {}) or None,
            slurm_setup=[_pythonpath_line()], local_setup=[_pythonpath_line()])
        return {k: v for k, v in params.items() if v is not None}


def _parse_mem_gb(text: Optional[str]) -> Optional[float]:
    if text is None:
        return None
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(G|GB)?\s*$", str(text), re.IGNORECASE)
    if match is None or float(match[1]) <= 0:
        raise SweepError(f"--mem must be a positive number of GB (e.g. 32 or 32G), got {text!r}")
    return float(match[1])


def _pythonpath_line() -> str:
    """Shell line that makes this repository importable in a task (it unpickles ``RunTask``)."""
    repo = shlex.quote(str(REPO))
    return f"export PYTHONPATH={repo}${{PYTHONPATH:+:$PYTHONPATH}}"


# ----------------------------------------------------------------------------- markers, state
def read_marker(run_dir: str | os.PathLike) -> Optional[dict]:
    """The run's ``sweep_job.json``, or None (absent or unreadable)."""
    try:
        marker = json.loads((Path(run_dir) / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("job_id") else None


def write_marker(run_dir: str | os.PathLike, **fields: Any) -> dict:
    """Update the run's marker with ``fields`` (atomically) and return it."""
    marker = dict(read_marker(run_dir) or {}, **fields)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(str(Path(run_dir) / MARKER_FILE), json.dumps(marker, indent=2) + "\n")
    return marker


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists on this machine and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def scheduler_states(markers: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``{job_id: STATE}`` of the markers' jobs: sacct's state (first word, e.g. PENDING,
    RUNNING, COMPLETED, CANCELLED; UNKNOWN when sacct does not report it) for SLURM jobs, one
    sacct call through submitit; RUNNING or ENDED for local jobs (process alive on this host)."""
    states: dict[str, str] = {}
    slurm_ids = sorted({str(m["job_id"]) for m in markers if m.get("executor") == "slurm"})
    for m in markers:
        if m.get("executor") == "local":
            alive = m.get("host") == socket.gethostname() and _pid_alive(int(m["job_id"]))
            states[str(m["job_id"])] = "RUNNING" if alive else "ENDED"
    if slurm_ids:
        from submitit.slurm.slurm import SlurmInfoWatcher

        watcher = SlurmInfoWatcher()
        for job_id in slurm_ids:
            watcher.register_job(job_id)
        watcher.update()  # one sacct call for all array jobs (errors: logged, states UNKNOWN)
        for job_id in slurm_ids:
            states[job_id] = (watcher.get_state(job_id, mode="cache").split() or ["UNKNOWN"])[0]
    return states


@dataclass(frozen=True)
class RunState:
    """Where a run stands: ``state`` (one of ``STATES``), its last job and a short detail."""

    state: str
    job_id: Optional[str] = None
    detail: str = ""

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")


def _age_s(marker: Mapping[str, Any]) -> float:
    try:
        return (datetime.datetime.now()
                - datetime.datetime.fromisoformat(str(marker.get("submitted")))).total_seconds()
    except ValueError:
        return math.inf


def _state_of(job: Job, marker: Optional[Mapping[str, Any]], scheduler: Mapping[str, str],
              has_checkpoint: bool) -> RunState:
    resume = "; resumes from its last checkpoint" if has_checkpoint else ""
    if marker is None:
        launched = (job.output_dir / RUN_FILE).is_file()
        return RunState("failed", None, "stopped" + resume) if launched else RunState("new")
    job_id = str(marker["job_id"])
    sched = scheduler.get(job_id, "UNKNOWN")
    mark = marker.get("state", "queued")
    if sched in RUNNING_STATES and mark == "running":
        return RunState("running", job_id, f"since {marker.get('started', '?')}")
    if sched in RUNNING_STATES and mark in ("queued", "requeued"):
        return RunState("queued", job_id, "requeued" if mark == "requeued"
                        else "its task is running an earlier run")
    if sched in QUEUED_STATES:
        return RunState("queued", job_id, sched)
    if sched == "UNKNOWN" and mark == "queued" and _age_s(marker) < SUBMIT_GRACE_S:
        return RunState("queued", job_id, "just submitted")
    if mark == "failed":
        detail = f"exit code {marker.get('exit_code')}"
    elif sched in ("UNKNOWN", "ENDED", "COMPLETED", "FAILED"):
        detail = f"task ended while the run was {mark}"
    else:
        detail = f"job {sched} while the run was {mark}"
    return RunState("failed", job_id, detail + resume)


def run_states(jobs: Sequence[Job]) -> dict[str, RunState]:
    """``{key: RunState}`` from the run folders and, for runs with a marker, the scheduler; a
    run whose folder lock is held (``dassl.utils.run_lock``) is running, whoever started it."""
    from dassl.utils.run_dir import checkpoint_dirs

    done = {job.key for job in jobs if read_results(job.output_dir, job.mode) is not None}
    markers = {job.key: read_marker(job.output_dir) for job in jobs if job.key not in done}
    scheduler = scheduler_states([m for m in markers.values() if m is not None])
    states = {}
    for job in jobs:
        if job.key in done:
            states[job.key] = RunState("done")
            continue
        holder = lock_holder(os.fspath(job.output_dir))
        if holder is not None:  # a writer holds the folder, whatever started it
            marker = markers[job.key] or {}
            job_id = marker.get("job_id")
            states[job.key] = RunState("running", None if job_id is None else str(job_id),
                                       f"held by {describe_holder(holder)}")
            continue
        has_checkpoint = job.output_dir.is_dir() and bool(checkpoint_dirs(str(job.output_dir)))
        states[job.key] = _state_of(job, markers[job.key], scheduler, has_checkpoint)
    return states


# ----------------------------------------------------------------------------- array tasks
def _preempt_signal() -> int:
    """The signal submitit asks SLURM for before the time limit (``SUBMITIT_PREEMPT_SIGNAL``,
    default USR2)."""
    return getattr(signal, "SIG" + submitit.JobEnvironment.USR_SIG)


def _ignore_preempt_signal() -> None:
    """In a task's train.py (before exec): leave the preemption signal to the task, which
    stops train.py itself (SIGINT) and requeues; an ignored signal stays ignored across exec."""
    signal.signal(_preempt_signal(), signal.SIG_IGN)


def _stop(pid: int, grace_s: float) -> None:
    """SIGINT ``pid`` (train.py ends its step and exits), SIGKILL it after ``grace_s``. Uses
    ``os.waitpid`` directly: this runs in a signal handler, possibly inside ``Popen.wait``."""
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, ChildProcessError):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


class RunTask(Checkpointable):
    """One array task: its runs, one after the other (finished runs are skipped, interrupted
    ones resume). Returns ``{key: "done" | "failed" | "busy"}``; raises ``RuntimeError`` when a
    run failed, so the task shows as FAILED in sacct. On submitit's timeout signal the running
    train.py is stopped and the task requeued (``checkpoint``)."""

    def __init__(self, jobs: Sequence[Job], stop_grace_s: float = STOP_GRACE_S) -> None:
        self.jobs = tuple(jobs)
        self.stop_grace_s = stop_grace_s
        self._child: Optional[int] = None
        self._current: Optional[Job] = None

    def __getstate__(self) -> dict:
        return {"jobs": self.jobs, "stop_grace_s": self.stop_grace_s}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["jobs"], state["stop_grace_s"])

    def __call__(self) -> dict[str, str]:
        job_id = submitit.JobEnvironment().job_id
        outcome = {job.key: self._run(job, job_id) for job in self.jobs}
        failed = [key for key, state in outcome.items() if state == "failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} run(s) failed: {', '.join(failed)}; submit the "
                               "sweep again to retry them")
        return outcome

    def _run(self, job: Job, job_id: str) -> str:
        if read_results(job.output_dir, job.mode) is not None:
            print(f"skip  {job.key}: already done", flush=True)
            return "done"
        marker = read_marker(job.output_dir) or {}
        if str(marker.get("job_id")) == job_id and marker.get("state") == "failed":
            # This job failed it before a requeue: failed runs wait for the next submission.
            print(f"skip  {job.key}: failed earlier in this job (exit code "
                  f"{marker.get('exit_code')}); submit the sweep again to retry it", flush=True)
            return "failed"
        lock = take_lock(job, lambda line: print(line, flush=True))
        if lock is None:
            return "busy"
        with lock:
            write_marker(job.output_dir, job_id=job_id, state="running", started=_now(),
                         host=socket.gethostname(), pid=os.getpid())
            print(f"start {job.key}", flush=True)
            started = time.monotonic()
            proc, log = launch(job, preexec_fn=_ignore_preempt_signal, lock=lock)
            self._child, self._current = proc.pid, job
            try:
                code = proc.wait()
            finally:
                self._child, self._current = None, None
                log.close()
            ok, message = report(job, code, time.monotonic() - started)
            write_marker(job.output_dir, state="done" if ok else "failed", exit_code=code,
                         ended=_now())
            print(message, flush=True)
            return "done" if ok else "failed"

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's hook on the timeout signal: stop train.py, mark its run requeued and
        resubmit this task unchanged (its runs resume from their folders)."""
        if self._child is not None:
            _stop(self._child, self.stop_grace_s)
        if self._current is not None:
            write_marker(self._current.output_dir, state="requeued", ended=_now())
            print(f"requeued {self._current.key}: it resumes from its last checkpoint",
                  flush=True)
        return super().checkpoint(*args, **kwargs)


# ----------------------------------------------------------------------------- submission
@contextlib.contextmanager
def submission_lock(output: Path) -> Iterator[None]:
    """Serialise submissions into ``output`` (two at once could both see a run as new)."""
    import fcntl

    folder = output / LOG_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "submit.lock", "a", encoding="utf-8") as handle:
        with contextlib.suppress(OSError):  # no flock on this file system: go unlocked
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _executor(output: Path) -> Any:
    """submitit's executor for ``SUBMITIT_CLUSTER``; ``SweepError`` when SLURM is not here."""
    try:
        return require_submitit().AutoExecutor(folder=output / LOG_DIR, cluster=SUBMITIT_CLUSTER)
    except RuntimeError as exc:  # SlurmExecutor: no srun on PATH
        raise SweepError(f"--executor slurm: {exc} (run it on the cluster's login node)") \
            from exc


@contextlib.contextmanager
def _sbatch_errors() -> Iterator[None]:
    """Turn a refused submission (sbatch's non-zero exit or unreadable answer) into
    ``SweepError`` with sbatch's own message."""
    try:
        yield
    except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError,
            OSError) as exc:
        raise SweepError(f"sbatch refused the submission: {str(exc).strip()}") from exc


def task_chunks(jobs: Sequence[Job], runs_per_task: int,
                followers: Optional[Mapping[str, Sequence[Job]]] = None) -> list[list[Job]]:
    """The jobs of each array task: ``runs_per_task`` of ``jobs`` each, every one followed by
    its ``followers[job.key]`` (the cross-database evaluations of a training run, which need
    its checkpoint and so run in the same task, after it)."""
    followers = followers or {}
    chunks = []
    for i in range(0, len(jobs), runs_per_task):
        chunk = []
        for job in jobs[i:i + runs_per_task]:
            chunk += [job, *followers.get(job.key, ())]
        chunks.append(chunk)
    return chunks


def submit_runs(jobs: Sequence[Job], options: SlurmOptions, output: Path, name: str,
                followers: Optional[Mapping[str, Sequence[Job]]] = None) -> list:
    """Submit ``jobs`` as one job array of ``ceil(len / runs_per_task)`` tasks (``task_chunks``:
    each run followed by its ``followers``); mark every run folder (identity +
    ``sweep_job.json``) and return the submitit jobs, one per task."""
    executor = _executor(output)
    executor.update_parameters(**options.parameters(name))
    chunks = task_chunks(jobs, options.runs_per_task, followers)
    jobs = [job for chunk in chunks for job in chunk]
    for job in jobs:  # claim the folders before any task can start
        write_identity(job.output_dir, job.identity)
    with _sbatch_errors():
        tasks = executor.submit_array([RunTask(chunk) for chunk in chunks])
    submitted = _now()
    for task, chunk in zip(tasks, chunks):
        for job in chunk:
            marker = read_marker(job.output_dir)
            if marker is not None and str(marker["job_id"]) == task.job_id:
                continue  # the task started already and wrote its own marker
            atomic_write_text(str(job.output_dir / MARKER_FILE), json.dumps(
                {"executor": SUBMITIT_CLUSTER, "job_id": task.job_id, "submitted": submitted,
                 "state": "queued", "host": socket.gethostname()}, indent=2) + "\n")
    return tasks


def submit_collect(command: Sequence[str], after: str, options: SlurmOptions, output: Path,
                   name: str) -> Any:
    """Submit ``command`` (the sweep's ``--collect-only`` command line) as a CPU job that
    starts once job ``after`` (the array) has ended, whatever its outcome."""
    executor = _executor(output)
    executor.update_parameters(**{k: v for k, v in dict(
        name=f"{name}-collect", timeout_min=30, gpus_per_node=0, tasks_per_node=1,
        cpus_per_task=1, slurm_partition=options.partition, slurm_account=options.account,
        slurm_qos=options.qos, slurm_dependency=f"afterany:{after.split('_')[0]}",
        slurm_setup=[_pythonpath_line()], local_setup=[_pythonpath_line()]).items()
        if v is not None})
    with _sbatch_errors():
        return executor.submit(submitit.helpers.CommandFunction(list(command), cwd=os.getcwd()))


def wait_for(tasks: Sequence[Any], poll_s: float = 1.0) -> None:
    """Block until every submitit job in ``tasks`` has ended."""
    while not all(task.done() for task in tasks):
        time.sleep(poll_s)


def describe_failure(job: Job, state: RunState) -> str:
    """Console text of a failed run: its state and the last lines of its ``sweep.log``."""
    tail = log_tail(job.output_dir)
    return f"FAILED {job.key} (job {state.job_id or '-'}: {state.detail})" + (
        f"; log {job.output_dir / LOG_FILE}:\n{tail}" if tail else "")

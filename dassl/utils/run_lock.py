"""One writer per run folder: the lock every command takes before it writes into a run folder.

A run folder (``OUTPUT_DIR``) is written by one process at a time, whatever started it
(``train.py`` directly or through ``main.sh`` / ``eval.sh``, a sweep on any executor,
``score.py`` writing into it). The lock is an OS lock (``fcntl.flock``) on the hidden file
``OUTPUT_DIR/.run.lock``: the kernel releases it when its process ends, however it ends, so a
killed run never blocks the next one (the file stays; a stale file holds no lock). While held,
the file holds a small JSON record of its holder (pid, host, command, start time) for the
message that refuses a second writer (``RunFolderBusy``, a ``UserError``: one ``error:`` line,
exit status 2). Pid and command in a record are always those of one process; a run started by
a launcher also names the launcher (``launcher``: its pid and command), so a message says both
and nobody stops a whole sweep believing it is one run.

A launcher that takes the lock for a child (the sweep executors) hands the open file to it
(``child_env`` / ``pass_fds``): ``flock`` locks belong to the open file, so the child holds the
very same lock, and ``lock_run_dir`` in the child adopts it instead of refusing itself. The
launcher records the child as the holder once started (``hand_to``); the child, adopting,
records itself and keeps the launcher.

Where ``fcntl`` does not exist (native Windows) or the file system refuses ``flock``, folders
are not locked (said once on stderr).
"""
from __future__ import annotations

import datetime
import errno
import json
import os
import shlex
import socket
import sys
from typing import Optional, Sequence

from .errors import UserError, shown

try:
    import fcntl
except ImportError:  # native Windows: no flock
    fcntl = None

__all__ = ["LOCK_FILE", "LOCK_FD_ENV", "RunFolderBusy", "RunLock", "lock_run_dir", "lock_holder",
           "describe_holder"]

LOCK_FILE = ".run.lock"
# Environment variable naming the descriptor of a lock a launcher took for its child.
LOCK_FD_ENV = "CLIP_AGIQA_RUN_LOCK_FD"
_SHOWN_COMMAND = 200  # characters of the holder's command a message shows
_BUSY_ERRNOS = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


class RunFolderBusy(UserError, RuntimeError):
    """Another process holds the run folder's lock."""


def _shown_command(record: dict) -> str:
    """A record's command on one line, cut to ``_SHOWN_COMMAND`` characters."""
    command = str(record.get("command") or "?").replace("\r", "\\r").replace("\n", "\\n")
    if len(command) > _SHOWN_COMMAND:
        command = command[:_SHOWN_COMMAND - 3] + "..."
    return command


def describe_holder(holder: Optional[dict]) -> str:
    """``process 123 on host h (python train.py ..., started 2026-01-01 10:00:00 UTC)``, plus
    ``, launched by process 99 (python sweep.py ...)`` for a run a launcher started."""
    if not holder:
        return "another process (its record is unreadable)"
    text = (f"process {holder.get('pid', '?')} on host {holder.get('host', '?')} "
            f"({_shown_command(holder)}, started {holder.get('started', '?')})")
    launcher = holder.get("launcher")
    if isinstance(launcher, dict):
        text += f", launched by process {launcher.get('pid', '?')} ({_shown_command(launcher)})"
    return text


def _read_holder(handle) -> Optional[dict]:
    try:
        handle.seek(0)
        data = json.loads(handle.read() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _same_file(fd: int, path: str) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class RunLock:
    """The held lock of one run folder; ``release()`` (or leaving the ``with`` block) frees it.
    ``fd``: the lock file's descriptor, to hand to a child (``child_env``)."""

    def __init__(self, run_dir: str, handle=None, adopted: bool = False) -> None:
        self.run_dir = run_dir
        self._handle = handle
        self.adopted = adopted

    @property
    def fd(self) -> Optional[int]:
        return None if self._handle is None else self._handle.fileno()

    def child_env(self, env: dict) -> dict:
        """``env`` plus the variable that lets a child command adopt this lock (pass ``fd`` in
        ``pass_fds`` too)."""
        env = dict(env)
        if self.fd is not None:
            env[LOCK_FD_ENV] = str(self.fd)
        return env

    def write_holder(self, command: Optional[Sequence[str]] = None, pid: Optional[int] = None,
                     launcher: Optional[dict] = None) -> None:
        """Record the holder: process ``pid`` (default: this one) running ``command`` (default:
        this process's command line; give it with ``pid``), host, start time and
        ``launcher`` (``{"pid", "command"}`` of the process that started it, if any)."""
        if self._handle is None:
            return
        if command is None:
            command = [os.path.basename(sys.executable), *sys.argv]
        record = {"pid": os.getpid() if pid is None else pid, "host": socket.gethostname(),
                  "command": shlex.join(command),
                  "started": datetime.datetime.now(datetime.timezone.utc)
                  .strftime("%Y-%m-%d %H:%M:%S UTC")}
        if launcher:
            record["launcher"] = launcher
        try:
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.write(json.dumps(record) + "\n")
            self._handle.flush()
        except OSError:  # the record is only for messages; the lock holds without it
            pass

    def hand_to(self, pid: int, command: Sequence[str]) -> None:
        """Record the child ``pid`` (running ``command``) this process started with the lock
        handed down (``child_env``) as the holder, this process as its launcher."""
        self.write_holder(command, pid=pid, launcher=_this_process())

    def release(self) -> None:
        if self._handle is not None:
            if not self.adopted:
                try:
                    fcntl.flock(self._handle, fcntl.LOCK_UN)
                except OSError:
                    pass
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _this_process() -> dict:
    """``{"pid", "command"}`` of this process (a holder record's ``launcher``)."""
    return {"pid": os.getpid(),
            "command": shlex.join([os.path.basename(sys.executable), *sys.argv])}


def _launcher(record: Optional[dict]) -> Optional[dict]:
    """The launcher an adopting child keeps from the launcher's record: the record's own
    ``launcher`` (the launcher already named this child), else the record's process."""
    if not record:
        return None
    if isinstance(record.get("launcher"), dict):
        return record["launcher"]
    if record.get("pid") == os.getpid():
        return None
    return {"pid": record.get("pid"), "command": record.get("command")}


def _adopt(path: str) -> Optional[RunLock]:
    """The lock a launcher took for this process on ``path``, when it handed it down."""
    value = os.environ.pop(LOCK_FD_ENV, "")
    if not value.isdigit() or not _same_file(int(value), path):
        return None
    handle = os.fdopen(int(value), "a+", encoding="utf-8")
    return RunLock(os.path.dirname(path), handle, adopted=True)


def lock_run_dir(run_dir: str, command: Optional[Sequence[str]] = None,
                 what: str = "run folder") -> RunLock:
    """Take ``run_dir``'s lock (creating the folder), recording this process as its holder.

    Raises ``RunFolderBusy`` naming the folder and the holding process when another process
    holds it, ``UserError`` when ``run_dir`` is a file; ``OSError`` when the folder cannot be
    made. ``command``: what the record shows (default: this process's command line).
    """
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise UserError(f"{what} {shown(run_dir)} is a file, not a folder: give a folder for the run")
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, LOCK_FILE)
    adopted = _adopt(path)
    if adopted is not None:
        adopted.write_holder(command, launcher=_launcher(_read_holder(adopted._handle)))
        return adopted
    if fcntl is None:
        return RunLock(run_dir)
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _read_holder(handle)
        handle.close()
        if exc.errno in _BUSY_ERRNOS:
            raise RunFolderBusy(f"{what} {shown(run_dir)} is in use by {describe_holder(holder)}: one "
                                "process writes a run folder at a time; wait for it to end (or "
                                "stop it), or write elsewhere") from None
        print(f"note: {shown(run_dir)} cannot be locked on this file system ({exc.strerror}); make "
              "sure no other process writes into it", file=sys.stderr)
        return RunLock(run_dir)
    lock = RunLock(run_dir, handle)
    lock.write_holder(command)
    return lock


def lock_holder(run_dir: str) -> Optional[dict]:
    """The holder record of ``run_dir``'s lock while another process holds it (``{}`` when the
    record is unreadable); None when the folder is free (or cannot be locked at all)."""
    path = os.path.join(run_dir, LOCK_FILE)
    if fcntl is None or not os.path.isfile(path):
        return None
    try:
        handle = open(path, "r", encoding="utf-8")
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            return (_read_holder(handle) or {}) if exc.errno in _BUSY_ERRNOS else None
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None

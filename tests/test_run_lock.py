"""Issue 25, fault 1: one writer per run folder, whatever started it (train.py and the scripts on
it, a sweep on any executor, score.py writing into a run folder); a killed holder never blocks
the next writer, and a status never calls a running run failed."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import score
from dassl.utils.run_lock import LOCK_FD_ENV, LOCK_FILE, RunFolderBusy, lock_holder, lock_run_dir
from scripts.sweeps import cluster
from scripts.sweeps.runner import Job, execute

from conftest import REPO

HOLD = ("import sys, time\n"
        "from dassl.utils.run_lock import lock_run_dir\n"
        "lock = lock_run_dir(sys.argv[1])\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n")


@pytest.fixture
def holder():
    """``holder(folder) -> Popen``: another process (a python command) holding ``folder``'s lock
    until it is killed; every one started is killed at the end."""
    started = []

    def start(folder: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=REPO,
                                stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc
    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def test_a_second_writer_is_refused_naming_the_holder_until_it_ends(holder, tmp_path, capsys,
                                                                    tiny_args, sentinel,
                                                                    user_error):
    out = tmp_path / "run"
    check = sentinel(out)  # a previous run's results and checkpoint
    proc = holder(out)
    record = lock_holder(str(out))
    assert record["pid"] == proc.pid and record["host"] == socket.gethostname()

    # train.py (and main.sh / eval.sh, which run it), with --force too: refused at once, exit 2,
    # one line naming the folder and the holding process; nothing moved aside or written.
    for flags in ((), ("--force",)):
        message = user_error(tiny_args(out, flags=list(flags)))
        assert f"OUTPUT_DIR {out} is in use by process {proc.pid} on host " \
               f"{socket.gethostname()} (" in message and " -c " in message
        assert check()
        assert not [p for p in out.iterdir() if p.name.startswith("previous-")]

    # score.py writing into the run folder is a writer too.
    code = score.main([str(out), str(tmp_path), "--output", str(out / "scores.csv")])
    assert code == 2 and f"run folder {out} is in use by process {proc.pid}" in \
        capsys.readouterr().err
    assert not (out / "scores.csv").exists()

    # A holder killed without a chance to clean up leaves its lock file, but no lock.
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / LOCK_FILE).is_file() and lock_holder(str(out)) is None
    with lock_run_dir(str(out)):
        with pytest.raises(RunFolderBusy, match=f"in use by process {os.getpid()}"):
            lock_run_dir(str(out))  # a second lock in this process is a second writer too
    assert lock_holder(str(out)) is None


def test_a_sweep_skips_a_folder_in_use_hands_its_lock_to_its_run_and_calls_it_running(
        holder, tmp_path):
    busy, free = tmp_path / "busy", tmp_path / "free"
    proc = holder(busy)
    # The child takes the lock of its own folder as train.py does: it adopts the sweep's.
    child = ("import os, sys\n"
             "from dassl.utils.run_lock import lock_run_dir\n"
             f"assert {LOCK_FD_ENV!r} in os.environ\n"
             "lock_run_dir(sys.argv[1])\n"
             "open(os.path.join(sys.argv[1], 'adopted'), 'w').close()\n")
    jobs = [Job(name, (sys.executable, "-c", child, str(folder)), folder, {"key": name})
            for name, folder in (("busy", busy), ("free", free))]
    lines = []
    os.environ.pop(LOCK_FD_ENV, None)
    outcome = execute(jobs, [None], echo=lines.append, poll_s=0.05)
    assert (free / "adopted").is_file()  # it ran, holding the sweep's lock
    assert not (busy / "adopted").exists() and "busy" not in outcome
    assert any(line.startswith("skip  busy: run folder") and f"process {proc.pid}" in line
               for line in lines)
    assert lock_holder(str(free)) is None  # released once its run ended
    # A run whose folder is held counts as running (never failed), whatever started it, even
    # with a sweep record of an earlier launch.
    (busy / "sweep_run.json").write_text("{}")
    states = cluster.run_states(jobs)
    assert states["busy"].state == "running" and str(proc.pid) in states["busy"].detail
    assert states["free"].state == "failed"  # launched, not done, nobody holds it

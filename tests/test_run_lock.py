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


SWEEP = ("import sys\n"
         "from pathlib import Path\n"
         "from scripts.sweeps.runner import Job, execute\n"
         "folder = Path(sys.argv[1])\n"
         "execute([Job('run', (sys.executable, sys.argv[2], str(folder)), folder,\n"
         "             {'key': 'run'})], [None], poll_s=0.05)\n")
# The sweep's run: says its pid, waits for "go", then takes its folder's lock as train.py does.
RUN = ("import os, sys, time\n"
       "from dassl.utils.run_lock import lock_run_dir\n"
       "folder = sys.argv[1]\n"
       "open(os.path.join(folder, 'pid'), 'w').write(str(os.getpid()))\n"
       "while not os.path.exists(os.path.join(folder, 'go')): time.sleep(0.05)\n"
       "lock = lock_run_dir(folder)\n"
       "open(os.path.join(folder, 'adopted'), 'w').close()\n"
       "time.sleep(120)\n")


def test_a_run_of_a_sweep_is_named_by_its_own_pid_and_command_and_the_sweeps(
        tmp_path, tiny_args, user_error):
    import time
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != LOCK_FD_ENV}
    env["PYTHONPATH"] = str(REPO)
    script = tmp_path / "my_sweep.py"  # a sweep and its run as scripts: command lines name them
    script.write_text(SWEEP)
    run = tmp_path / "my_run.py"
    run.write_text(RUN)
    sweep = subprocess.Popen([sys.executable, str(script), str(out), str(run)], cwd=REPO, env=env)
    try:
        def wait_for(name: str) -> None:
            deadline = time.monotonic() + 60
            while not (out / name).is_file():
                assert sweep.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        wait_for("pid")
        run_pid = int((out / "pid").read_text())
        assert run_pid != sweep.pid
        # Before the run takes the lock (started, the lock handed down) and after it adopts it:
        # the record's pid runs the record's command; the sweep is named as its launcher.
        for step in ("handed", "adopted"):
            if step == "adopted":
                (out / "go").touch()
                wait_for("adopted")
            record = lock_holder(str(out))
            assert record["pid"] == run_pid and "my_run.py" in record["command"] and \
                "my_sweep.py" not in record["command"], (step, record)
            assert record["launcher"]["pid"] == sweep.pid and "my_sweep.py" in \
                record["launcher"]["command"], (step, record)
            message = user_error(tiny_args(out))
            run_part, sweep_part = message.split(f", launched by process {sweep.pid} (")
            assert f"in use by process {run_pid} on host " in run_part and \
                "my_sweep.py" not in run_part, (step, message)
            assert "my_sweep.py" in sweep_part, (step, message)
    finally:
        sweep.terminate()  # ends the sweep and, as after Ctrl-C, its run
        sweep.wait(timeout=60)
        if (out / "pid").is_file():
            try:
                os.kill(int((out / "pid").read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass

"""Interruptions: SIGKILL and Ctrl-C of a real `train.py` process mid-epoch, then the same
command again, must reach exactly the numbers of an uninterrupted run (CPU, same seed); and
checkpoint writes are atomic."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dassl.engine import TrainerX
from dassl.engine.interrupt import InterruptGuard
from dassl.utils import read_checkpoint_pointer, save_checkpoint
from dassl.utils import torchtools

from conftest import REPO
from tolerances import assert_same_outcome

EPOCHS = 3
# 32 training images in batches of 4: 8 steps per epoch, so a signal sent right after the
# first step of epoch 2 lands well inside that epoch (7 more steps, >= 50 ms each).
MID_EPOCH_2 = f"epoch [2/{EPOCHS}] batch [1/8]"
TIMEOUT_S = 120


def command(tiny_args, out) -> list[str]:
    return [sys.executable, str(REPO / "train.py"),
            *tiny_args(out, "TRAIN.PRINT_FREQ", "1", epochs=EPOCHS)]


# One compute thread per process: the reference run goes on beside the interrupted one, and
# oversubscribed OpenMP threads would slow both down many times over. Every process of a
# comparison uses the same setting, so their numbers stay comparable bit for bit.
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def launch(argv, cwd) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=cwd, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_log(process: subprocess.Popen, out: Path, text: str) -> None:
    """Poll OUTPUT_DIR/log.txt (line-buffered) until ``text`` appears."""
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline:
        log = out / "log.txt"
        if log.is_file() and text in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            pytest.fail(f"train.py ended (status {process.returncode}) before {text!r}:\n"
                        + process.communicate()[1][-3000:])
        time.sleep(0.01)
    process.kill()
    pytest.fail(f"{text!r} did not appear in {TIMEOUT_S} s")


def outcome(out: Path) -> dict:
    """What must be identical between runs: metrics of every block and the predictions."""
    results = json.loads((out / "results.json").read_text())
    return {"final": results["final"], "last": results["last"],
            "selected": results["selected"], "predictions": (out / "predictions.csv").read_text()}


@pytest.fixture(scope="module")
def reference(tiny_args, tmp_path_factory):
    """An uninterrupted run, started at once in the background; call it to wait for it."""
    out = tmp_path_factory.mktemp("reference") / "run"
    process = launch(command(tiny_args, out), out.parent)

    def result() -> dict:
        _, err = process.communicate(timeout=TIMEOUT_S)
        assert process.returncode == 0, err[-3000:]
        return outcome(out)

    yield result
    if process.poll() is None:
        process.kill()


def rerun(argv, out: Path, cwd) -> str:
    """The same command again; returns the new log."""
    done = subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    return (out / "log.txt").read_text()


def pointers(out: Path) -> list:
    return [read_checkpoint_pointer(str(out / m)) for m in ("prompt_learner", "regression")]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_same_command_resumes(reference, tiny_args, tmp_path):
    out = tmp_path / "killed"
    argv = command(tiny_args, out)
    victim = launch(argv, tmp_path)
    wait_for_log(victim, out, MID_EPOCH_2)
    victim.kill()  # SIGKILL: no handler, no cleanup
    victim.communicate(timeout=TIMEOUT_S)
    assert victim.returncode == -signal.SIGKILL
    assert pointers(out) == ["model.pth.tar-1"] * 2  # epoch 1's checkpoint survived intact
    assert not (out / "results.json").exists()

    log = rerun(argv, out, tmp_path)
    assert "Resumed after epoch 1" in log and "epoch [1/3]" not in log
    assert_same_outcome(outcome(out), reference())


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_same_command_resumes(reference, tiny_args, tmp_path):
    out = tmp_path / "interrupted"
    argv = command(tiny_args, out)
    victim = launch(argv, tmp_path)
    wait_for_log(victim, out, MID_EPOCH_2)
    victim.send_signal(signal.SIGINT)
    _, err = victim.communicate(timeout=TIMEOUT_S)
    assert victim.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    assert "interrupted: training interrupted during epoch 2/3 (after batch" in err
    assert f"the last checkpoint is {out / 'prompt_learner' / 'model.pth.tar-1'}" in err
    assert "Ctrl-C: stopping after the current step" in err
    assert "interrupted: training" in (out / "log.txt").read_text()
    assert pointers(out) == ["model.pth.tar-1"] * 2
    assert not (out / "results.json").exists()

    log = rerun(argv, out, tmp_path)
    assert "Resumed after epoch 1" in log
    assert_same_outcome(outcome(out), reference())


def test_interrupt_guard_first_flags_second_aborts():
    previous = signal.getsignal(signal.SIGINT)
    with InterruptGuard() as guard:
        assert not guard.requested
        signal.raise_signal(signal.SIGINT)
        assert guard.requested
        with pytest.raises(KeyboardInterrupt, match="second Ctrl-C"):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is previous


class _DyingLoader:
    """Two batches, then the failure a DataLoader shows when Ctrl-C killed its workers."""

    def __len__(self) -> int:
        return 4

    def __iter__(self):
        yield {"x": 0}
        yield {"x": 1}
        raise RuntimeError("DataLoader worker (pid 123) exited unexpectedly")


@pytest.mark.parametrize("requested", [True, False])
def test_loader_failure_after_ctrl_c_counts_as_the_interruption(requested):
    trainer = object.__new__(TrainerX)  # only what _train_batches reads
    trainer.train_loader_x, trainer.num_batches = _DyingLoader(), 4
    guard = InterruptGuard()
    guard.requested = requested
    trainer._interrupt_guard = guard
    if requested:
        assert [b["x"] for b in trainer._train_batches()] == [0, 1]
        assert trainer.stopped_at == (2, 4)
    else:
        with pytest.raises(RuntimeError, match="exited unexpectedly"):
            list(trainer._train_batches())


def test_checkpoint_write_killed_midway_keeps_the_previous_one(tmp_path, monkeypatch):
    state = {"state_dict": {"w": torch.ones(3)}, "epoch": 1}
    save_checkpoint(state, str(tmp_path))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_save = torch.save

    def dying_save(obj, path):  # writes half a file, then the process "dies"
        real_save(obj, path)
        Path(path).write_bytes(Path(path).read_bytes()[:20])
        raise KeyboardInterrupt

    monkeypatch.setattr(torchtools.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 2}, str(tmp_path))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no temp file left
    monkeypatch.setattr(torchtools.torch, "save", real_save)
    loaded = torchtools.load_checkpoint(str(tmp_path / read_checkpoint_pointer(str(tmp_path))))
    assert loaded["epoch"] == 1 and torch.equal(loaded["state_dict"]["w"], torch.ones(3))
    assert not os.path.exists(tmp_path / "model.pth.tar-2")

"""Issue 25, fault 3: long work interrupted by Ctrl-C (SIGINT) or SIGTERM (a job's time limit)
says in one line what was done and where it is, keeps what was computed, and a re-run continues:
score.py keeps the rows scored so far next to --output (an earlier complete file there stays as
it was) and scores only the rest when run again; training stops after its step on either
signal."""
from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import score
import train
from dassl.engine.base import TrainerBase

from conftest import REPO, file_state


@pytest.fixture(scope="module")
def trained(trained_run) -> Path:
    return trained_run


def _rows(path: Path) -> dict[str, float]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["name"]: float(row["score"]) for row in csv.DictReader(handle)}


def _stop_after(monkeypatch, batches: int, signum: int) -> None:
    """The progress bar sends ``signum`` to this process before batch ``batches`` + 1."""
    def bar(iterator, total=None, **kwargs):
        for index, item in enumerate(iterator):
            if index == batches:
                os.kill(os.getpid(), signum)
            yield item
    monkeypatch.setattr(score, "tqdm", bar)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_scoring_keeps_the_scored_rows_and_a_rerun_scores_only_the_rest(
        signum, trained, tiny_assets, tmp_path, capsys, monkeypatch):
    images = Path(tiny_assets["root"]) / "AGIQA-3K"
    output = tmp_path / "scores.csv"
    argv = [str(trained), str(images), "--output", str(output), "--batch-size", "4",
            "--workers", "1"]
    assert score.main(argv) == 0
    reference = _rows(output)
    before = file_state([output])  # an earlier complete file at --output

    with monkeypatch.context() as patch:
        _stop_after(patch, 2, signum)
        assert score.main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    partial = tmp_path / "scores.partial.csv"
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
    assert err[-1] == (f"interrupted ({name}): 8 of {len(reference)} images scored; their rows "
                       f"are in {partial} ({output} is left as it was); run the same command "
                       "again to score the rest")
    assert file_state([output]) == before
    kept = _rows(partial)
    assert len(kept) == 8 and all(reference[n] == s for n, s in kept.items())

    # The re-run scores only the others (a model that scores nothing twice) and ends complete.
    scored = []
    real = score.load_scorer

    def counting(*args, **kwargs):
        scorer = real(*args, **kwargs)
        inner = scorer.score_batches

        def batches(paths, *a, **k):
            scored.extend(paths)
            return inner(paths, *a, **k)
        scorer.score_batches = batches
        return scorer
    monkeypatch.setattr(score, "load_scorer", counting)
    assert score.main(argv) == 0
    assert f"continuing: 8 of {len(reference)} images" in capsys.readouterr().err
    assert len(scored) == len(reference) - 8
    assert _rows(output) == reference and list(_rows(output)) == list(reference)
    assert not partial.exists() and not Path(str(partial) + ".json").exists()


def test_a_partial_file_of_another_scoring_is_not_reused(trained, tiny_assets, tmp_path, capsys):
    images = Path(tiny_assets["root"]) / "AGIQA-3K"
    output = tmp_path / "scores.csv"
    partial = tmp_path / "scores.partial.csv"
    partial.write_text("name,score\n" + "".join(f"{p.name},99.0\n"
                                                for p in sorted(images.glob("*.jpg"))[:3]))
    Path(str(partial) + ".json").write_text('{"run_dir": "elsewhere"}\n')
    assert score.main([str(trained), str(images), "--output", str(output)]) == 0
    assert "is of another scoring" in capsys.readouterr().err
    assert 99.0 not in _rows(output).values() and not partial.exists()


def test_training_stops_after_its_step_on_sigterm_and_resumes(tiny_args, tmp_path, capfd,
                                                                monkeypatch):
    real = TrainerBase.model_update

    def update(self, names=None):
        real(self, names)
        if self.epoch == 1 and self.batch_idx == 1:
            os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(TrainerBase, "model_update", update)
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        train.main(tiny_args(out, epochs=2))
    assert info.value.code == 130
    err = capfd.readouterr().err  # the signal handler writes to file descriptor 2
    assert "SIGTERM: stopping after the current step" in err
    assert ("interrupted: training interrupted during epoch 2/2 (after batch 2/" in err
            and "the last checkpoint is" in err and "(end of epoch 1)" in err)
    monkeypatch.undo()
    results = train.main(tiny_args(out, epochs=2))
    assert results["selected"]["epoch"] == 2 or results["last"]["epoch"] == 2


LAUNCHES = {"main.sh": ["AGIQA", "vit_b16_ep100", "end", "16", "1", "False"],
            "eval.sh": ["AGIQA", "vit_b16_ep100", "end", "16", "1", "False"],
            "demo.sh": ["--dir", "demo", "--images", "40", "--epochs", "1"]}


@pytest.mark.parametrize("script", sorted(LAUNCHES))
def test_a_launchers_sigterm_reaches_train_py(script, tmp_path):
    """SIGTERM to main.sh, eval.sh or demo.sh (a job's time limit, `kill`) reaches the train.py it runs,
    which stops as on Ctrl-C; the script waits for it and exits with its status, leaving no
    train.py running on its own. The child may take Ctrl-C too (not started with it ignored)."""
    ready, got = tmp_path / "ready", tmp_path / "got"
    child = tmp_path / "child.py"
    child.write_text(
        "import os, pathlib, signal, sys, time\n"
        f"pathlib.Path({str(got)!r}).write_text('')\n"
        "def stop(signum, frame):\n"
        f"    pathlib.Path({str(got)!r}).write_text(signal.Signals(signum).name)\n"
        "    time.sleep(0.5)  # a clean stop takes a moment: the script must wait for it\n"
        "    sys.exit(130)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"pathlib.Path({str(ready)!r}).write_text(str(os.getpid()) + ' ' + "
        "str(signal.getsignal(signal.SIGINT) == signal.default_int_handler))\n"
        "time.sleep(60)\n"
        "sys.exit(0)\n")
    fake = tmp_path / "fakepython"
    fake.write_text(f'#!/usr/bin/env bash\ncase "$1" in train.py|*/train.py) exec "{sys.executable}" '
                    f'"{child}" ;; esac\nexec "{sys.executable}" "$@"\n')
    fake.chmod(0o755)
    (tmp_path / "output/AGIQA/CLIP_AGIQA/vit_b16_ep100_1shots/nctx16_cscFalse_ctpend/seed1"
     ).mkdir(parents=True)  # eval.sh's trained run
    launcher = subprocess.Popen(
        ["bash", str(REPO / "scripts" / script), *LAUNCHES[script]], cwd=tmp_path, env=dict(os.environ, PYTHON=str(fake)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (ready.exists() and ready.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        pid, takes_ctrl_c = ready.read_text().split()
        launcher.send_signal(signal.SIGTERM)  # to the script alone, not its process group
        assert launcher.wait(timeout=30) == 130
        assert got.read_text() == "SIGTERM" and takes_ctrl_c == "True"
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(launcher.pid, signal.SIGKILL)

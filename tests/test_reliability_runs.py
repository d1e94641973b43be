"""Reproducible, recorded, non-destructive runs: same seed -> same numbers; re-running into a
finished OUTPUT_DIR changes nothing unless --force; every run records its config, versions and
commit; the determinism switch is wired; unreadable images can be skipped visibly."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import train
from dassl.config import get_cfg_default
from datasets import add_dataset_config
from trainers import add_trainer_config

from conftest import REPO, file_state
from tolerances import assert_same_metrics, assert_same_outcome
from dassl.utils.run_lock import LOCK_FILE


def outcome(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    return {"final": results["final"], "last": results["last"],
            "selected": results["selected"], "predictions": (out / "predictions.csv").read_text()}


def all_files(folder: Path) -> list[Path]:
    """The files of ``folder``, without the run folder lock (taken by every writer, holding who
    writes, not what was written)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != LOCK_FILE)


@pytest.fixture(scope="module")
def finished(tiny_args, tmp_path_factory) -> Path:
    """A finished 2-epoch run; read-only (copy it to modify it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    train.main(tiny_args(out, epochs=2))
    return out


@pytest.mark.slow
def test_same_seed_gives_identical_metrics_and_predictions(finished, tiny_args, tmp_path):
    train.main(tiny_args(tmp_path / "again", epochs=2))
    assert_same_outcome(outcome(tmp_path / "again"), outcome(finished))
    assert outcome(finished)["last"]["epoch"] == 2


def test_rerun_into_finished_dir_returns_stored_results_and_writes_nothing(
        finished, tiny_args, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(finished, out)  # copy2 keeps the mtimes the check below compares
    before = file_state(all_files(out))
    # Loader workers and print frequency do not make it another experiment.
    results = train.main(tiny_args(out, "TRAIN.PRINT_FREQ", "1", epochs=2))
    assert results == json.loads((out / "results.json").read_text())
    assert f"already finished: {out} holds the results of this run" in capsys.readouterr().out
    assert file_state(all_files(out)) == before


@pytest.mark.slow
def test_force_moves_the_previous_run_aside_and_retrains(finished, tiny_args, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    # Every file the first run wrote, as listed from its folder (not by hand: a file a later
    # version adds is covered), with its bytes.
    first = {p.relative_to(out): p.read_bytes() for p in all_files(out)}
    assert {"report.html", "scatter.png", "results.json", "config.yaml"} <= \
        {str(p) for p in first}
    train.main(tiny_args(out, epochs=2, flags=["--force"]))
    previous = [p for p in out.iterdir() if p.name.startswith("previous-")]
    assert len(previous) == 1
    moved = previous[0]
    assert {p.relative_to(moved): p.read_bytes() for p in all_files(moved)} == first
    log = (out / "log.txt").read_text()
    assert "--force: the previous run's files were moved to" in log
    assert "No checkpoint found, train from scratch" in log
    assert_same_outcome(outcome(out), outcome(finished))


def test_run_record(finished, tiny_args):
    cfg = get_cfg_default()
    add_dataset_config(cfg)
    add_trainer_config(cfg)
    cfg.merge_from_file(str(finished / "config.yaml"))
    args = train.build_parser().parse_args(tiny_args(finished, epochs=2))
    assert cfg == train.setup_cfg(args)

    info = json.loads((finished / "run_info.json").read_text())
    assert info["argv"] == tiny_args(finished, epochs=2) and info["seed"] == 0
    assert info["packages"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert info["python"].count(".") == 2 and info["device"].startswith("cpu")
    assert info["start_time"][:2] == "20" and info["previous_runs"] == []
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                          text=True)
    if head.returncode == 0:
        assert info["git"]["commit"] == head.stdout.strip()
        assert isinstance(info["git"]["dirty"], bool)
    else:
        assert info["git"] is None
    for split in ("train", "test"):
        assert len(pd.read_csv(finished / "splits" / f"{split}.csv")) == {"train": 32,
                                                                          "test": 8}[split]


def test_rerun_after_a_kill_during_final_evaluation_keeps_the_history(finished, tiny_args,
                                                                      tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    (out / "results.json").unlink()  # killed after the last checkpoint, before the report
    train.main(tiny_args(out, epochs=2))
    assert "Resumed after epoch 2" in (out / "log.txt").read_text()
    assert_same_outcome(outcome(out), outcome(finished))
    info = json.loads((out / "run_info.json").read_text())
    assert len(info["previous_runs"]) == 1
    assert info["previous_runs"][0]["start_time"] == json.loads(
        (finished / "run_info.json").read_text())["start_time"]


@pytest.mark.slow
def test_eval_only_rerun_is_skipped_until_the_checkpoint_changes(finished, tiny_args, tmp_path,
                                                                capsys):
    flags = ["--eval-only", "--model-dir", str(finished), "--load-epoch", "2"]
    first = train.main(tiny_args(tmp_path / "eval", flags=flags))
    assert_same_metrics(first["final"]["metrics"], outcome(finished)["last"]["metrics"])
    capsys.readouterr()
    assert train.main(tiny_args(tmp_path / "eval", flags=flags)) == first
    assert "already finished" in capsys.readouterr().out
    # A retrained checkpoint (newer than the stored evaluation) is evaluated again.
    model_dir = tmp_path / "model"
    shutil.copytree(finished, model_dir)
    flags[2] = str(model_dir)
    with pytest.raises(SystemExit):  # another model directory: refused without --force
        train.main(tiny_args(tmp_path / "eval", flags=flags))
    train.main(tiny_args(tmp_path / "eval", flags=flags + ["--force"]))
    capsys.readouterr()
    stamp = os.path.getmtime(tmp_path / "eval" / "results.json") + 10
    for module in ("prompt_learner", "regression"):
        os.utime(model_dir / module / "model.pth.tar-2", (stamp, stamp))
    train.main(tiny_args(tmp_path / "eval", flags=flags))
    assert "already finished" not in capsys.readouterr().out


def test_deterministic_switch_is_applied_before_training(tiny_args, tmp_path, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        train.main(tiny_args(tmp_path / "det", "DETERMINISTIC", "True", flags=["--no-train"]))
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert json.loads((tmp_path / "det" / "run_info.json").read_text())["deterministic"]
    finally:
        torch.use_deterministic_algorithms(False)


def test_skip_bad_images_drops_them_with_a_warning(tiny_args, tiny_data, tmp_path, capsys):
    names = sorted(p.name for p in (tiny_data / "AGIQA-3K").glob("*.jpg"))[5:7]
    for name in names:
        (tiny_data / "AGIQA-3K" / name).write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = tmp_path / "out"
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train.main(tiny_args(out, "DATASET.SKIP_BAD_IMAGES", "True", root=tiny_data,
                             flags=["--no-train"]))
    # Said once as a plain line, not as a Python warning too.
    assert not [w for w in caught if "skipping" in str(w.message)]
    console = capsys.readouterr()
    assert (console.out + console.err).count("skipping 2 of 40 images") == 1
    log = (out / "log.txt").read_text()
    assert log.count("skipping 2 of 40 images") == 1
    assert "WARNING: DATASET.SKIP_BAD_IMAGES: skipping 2 of 40 images" in log
    assert all(str(tiny_data / "AGIQA-3K" / name) in log for name in names)
    listed = pd.concat([pd.read_csv(out / "splits" / f"{s}.csv") for s in ("train", "test")])
    assert len(listed) == 38 and not set(names) & set(listed["name"])
    assert yaml.safe_load((out / "config.yaml").read_text())["DATASET"]["SKIP_BAD_IMAGES"]


def test_ctrl_c_outside_the_loop_exits_130_and_bugs_keep_their_traceback(
        tiny_args, tmp_path, monkeypatch, capsys):
    def interrupted(cfg, validated=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "build_trainer", interrupted)
    with pytest.raises(SystemExit) as info:
        train.main(tiny_args(tmp_path / "a"))
    assert info.value.code == 130
    assert "interrupted (Ctrl-C)" in capsys.readouterr().err

    def bug(cfg, validated=None):
        raise RuntimeError("an internal bug")

    monkeypatch.setattr(train, "build_trainer", bug)
    with pytest.raises(RuntimeError, match="an internal bug"):  # not turned into exit status 2
        train.main(tiny_args(tmp_path / "b"))


@pytest.mark.parametrize("launcher, other_folder, force", [
    ("", "use another --output-dir", "pass --force"),
    ("main.sh", "give main.sh another SEED", "pass --force to main.sh"),
    ("eval.sh", None, "pass --force to eval.sh"),
])
def test_occupied_folder_advice_names_what_the_typed_command_accepts(
        finished, tiny_args, tmp_path, monkeypatch, capsys, launcher, other_folder, force):
    """main.sh and eval.sh have no --output-dir: their users are told what those scripts take."""
    out = tmp_path / "copy"
    shutil.copytree(finished, out)
    monkeypatch.setenv(train.LAUNCHER_ENV, launcher)
    with pytest.raises(SystemExit) as exit_info:
        train.main(tiny_args(out, "OPTIM.LR", "0.05", epochs=2))
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and "already holds the results of a run with a different config" in error
    assert f"{force} to move the previous files" in error
    if other_folder is None:
        assert "another" not in error
    else:
        assert other_folder in error
    if launcher:
        assert "--output-dir" not in error
    train.main(tiny_args(out, epochs=2))
    assert f"{force} to retrain" in capsys.readouterr().out


@pytest.mark.parametrize("launcher, advice", [
    ("", "to evaluate a trained run use --eval-only --model-dir RUN"),
    ("main.sh", "to evaluate a trained run use scripts/eval.sh with main.sh's arguments"),
])
def test_zero_epochs_advice_names_what_the_typed_command_accepts(
        tiny_args, tmp_path, monkeypatch, capsys, launcher, advice):
    monkeypatch.setenv(train.LAUNCHER_ENV, launcher)
    with pytest.raises(SystemExit) as exit_info:
        train.main(tiny_args(tmp_path / "run", epochs=0))
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and error.startswith("error: OPTIM.MAX_EPOCH must be >= 1")
    assert advice in error

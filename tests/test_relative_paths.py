"""Relative paths in a run's config: an existing file given relative to the working directory
is stored absolute, two spellings of one file are the same config, and a run can be resumed,
evaluated and scored from another folder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

import score
import train
from dassl.utils.run_dir import config_differences
from dassl.utils.run_record import resolve_recorded_path


@pytest.fixture
def workdir(tiny_assets, tmp_path, monkeypatch) -> Path:
    """A working folder holding ``w/tiny.pt`` (a copy of the tiny weights); the test runs in it."""
    work = tmp_path / "work"
    (work / "w").mkdir(parents=True)
    shutil.copy(tiny_assets["weights"], work / "w" / "tiny.pt")
    monkeypatch.chdir(work)
    return work


def stored_config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


@pytest.mark.slow
def test_a_relative_backbone_is_stored_absolute_and_matches_other_spellings(
        workdir, tiny_args, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    train.main(tiny_args(out, weights="w/tiny.pt"))
    assert stored_config(out)["MODEL"]["BACKBONE"]["NAME"] == str(workdir / "w" / "tiny.pt")
    assert json.loads((out / "run_info.json").read_text())["cwd"] == str(workdir)
    # The same file, spelled absolute, and relative from another folder: the same config.
    for cwd, weights in ((workdir, str(workdir / "w" / "tiny.pt")),
                         (tmp_path, "work/./w/tiny.pt")):
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        assert train.main(tiny_args(out, weights=weights)) is not None
        assert "already finished" in capsys.readouterr().out
    # score.py from another folder needs no --backbone.
    image = next(Path(tiny_args(out)[1]).rglob("*.jpg"))
    assert score.main([str(out), str(image), "--output", str(tmp_path / "s.csv"),
                       "--no-progress"]) == 0


def test_a_split_file_relative_to_the_database_matches_its_absolute_spelling(tmp_path):
    """LABEL_FILE / SPLIT_FILE are relative to the database folder (``data_bases``), not to
    the working directory."""
    database = tmp_path / "data" / "AGIQA-3K"
    (database / "splits").mkdir(parents=True)
    (database / "splits" / "a.csv").write_text("name,split\n")
    (database / "splits" / "b.csv").write_text("name,split\n")
    stored = {"DATASET.SPLIT_FILE": "splits/a.csv"}
    folders = [str(tmp_path / "data"), str(database)]
    assert config_differences(stored, {"DATASET.SPLIT_FILE": str(database / "splits" / "a.csv")},
                              data_bases=folders) == []
    assert config_differences(stored, {"DATASET.SPLIT_FILE": str(database / "splits" / "b.csv")},
                              data_bases=folders) != []
    # The working directory is no base for them.
    assert config_differences(stored, {"DATASET.SPLIT_FILE": str(database / "splits" / "a.csv")},
                              bases=[str(database)]) != []


@pytest.mark.slow
def test_a_run_with_a_relative_split_file_is_finished_for_its_absolute_spelling(
        tiny_data, tiny_args, tmp_path, capsys):
    import pandas as pd
    from datasets.agiqa import FOLDER, LABEL_FILE
    database = tiny_data / FOLDER
    names = pd.read_csv(database / LABEL_FILE)["name"].tolist()
    (database / "splits").mkdir()
    pd.DataFrame({"name": names, "split": ["test" if i % 5 == 0 else "train"
                                           for i in range(len(names))]}) \
        .to_csv(database / "splits" / "fixed.csv", index=False)
    out = tmp_path / "run"
    train.main(tiny_args(out, "DATASET.SPLIT_FILE", "splits/fixed.csv", root=tiny_data))
    capsys.readouterr()
    again = tiny_args(out, "DATASET.SPLIT_FILE", str(database / "splits" / "fixed.csv"),
                      root=tiny_data)
    assert train.main(again) is not None
    assert "already finished" in capsys.readouterr().out


def test_existing_relative_paths_resolve_against_their_base(tmp_path):
    work = tmp_path / "work"
    (work / "w").mkdir(parents=True)
    (work / "w" / "a.pt").write_bytes(b"a")
    assert resolve_recorded_path("w/a.pt", str(work)) == str(work / "w" / "a.pt")
    assert resolve_recorded_path("ViT-B/16", str(work)) == "ViT-B/16"
    assert resolve_recorded_path("w/missing.pt", str(work)) == "w/missing.pt"


@pytest.mark.slow
def test_score_says_to_pass_backbone_when_the_weights_file_is_gone(workdir, tiny_args, tmp_path,
                                                                    capsys):
    out = tmp_path / "run"
    train.main(tiny_args(out, weights="w/tiny.pt"))
    (workdir / "w" / "tiny.pt").unlink()
    image = next(Path(tiny_args(out)[1]).rglob("*.jpg"))
    capsys.readouterr()
    status = score.main([str(out), str(image), "--output", str(tmp_path / "s.csv"),
                         "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err, err
    assert "is not an existing file" in err and "pass --backbone PATH" in err, err


@pytest.mark.slow
def test_eval_only_from_another_folder_takes_the_runs_relative_root(tiny_assets, tiny_args,
                                                                    tmp_path, monkeypatch,
                                                                    capsys):
    """Trained with a relative --root; evaluated (no --root) from another folder."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(tiny_assets["root"], work / "data")
    monkeypatch.chdir(work)
    out = tmp_path / "run"
    train.main(tiny_args(out, root="data"))
    assert stored_config(out)["DATASET"]["ROOT"] == str(work / "data")
    monkeypatch.chdir(tmp_path)
    argv = tiny_args(tmp_path / "eval", flags=["--eval-only", "--model-dir", str(out)])
    argv = argv[2:]  # no --root: the run's own
    results = train.main(argv)
    assert results is not None

"""mat2csv.py: AIGCIQA2023 .mat -> name,mos CSVs, and the loader reading them."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.io import loadmat, savemat

import mat2csv
from dassl.config import get_cfg_default
from datasets import AIGCIQA2023, add_dataset_config

REPO = Path(__file__).resolve().parents[1]


def make_cfg(root, task):
    cfg = add_dataset_config(get_cfg_default())
    cfg.DATASET.NAME = "AIGCIQA2023"
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.TASK = task
    cfg.DATASET.CHECK_FILES = False
    return cfg


def test_round_trip_gives_exactly_the_mat_values(tmp_path, capsys, aigciqa2023_mos):
    base = tmp_path / "AIGCIQA2023"
    (base / "MOS").mkdir(parents=True)
    for k in (1, 2):
        shutil.copy(aigciqa2023_mos / f"mosz{k}.mat", base / "MOS")
    assert mat2csv.main(["--mos-dir", str(base / "MOS"), "--out-dir", str(base)]) == 0
    out, err = capsys.readouterr()
    assert "mos_quality.csv (2400 rows)" in out and "mos_authenticity.csv" in out
    assert "mosz3.mat" in err and not (base / "mos_correspondence.csv").exists()
    assert sorted(p.name for p in base.iterdir()) == ["MOS", "mos_authenticity.csv",
                                                      "mos_quality.csv"]  # no temp files left

    csv = pd.read_csv(base / "mos_quality.csv")
    assert list(csv.columns) == ["name", "mos"] and len(csv) == 2400
    assert csv["name"].tolist()[:3] == ["0.png", "1.png", "2.png"]

    for task, k in (("quality", 1), ("authenticity", 2)):
        from_mat = AIGCIQA2023(make_cfg(tmp_path, task))
        shutil.move(base / "MOS", tmp_path / "MOS.hidden")  # force the CSV source
        from_csv = AIGCIQA2023(make_cfg(tmp_path, task))
        shutil.move(tmp_path / "MOS.hidden", base / "MOS")
        for a, b in ((from_mat.train_x, from_csv.train_x), (from_mat.test, from_csv.test)):
            assert [(d.name, d.mos, d.label) for d in a] == [(d.name, d.mos, d.label) for d in b]
        mat = loadmat(aigciqa2023_mos / f"mosz{k}.mat")["MOSz"][:, 0]
        expected = [float(mat[int(d.name[:-4])]) for d in from_csv.test]
        assert [d.mos for d in from_csv.test] == expected


def test_all_three_tasks_and_out_dir_creation(tmp_path):
    mos_dir = tmp_path / "MOS"
    mos_dir.mkdir()
    values = {k: np.random.default_rng(k).uniform(27, 74, (7, 1)) for k in (1, 2, 3)}
    for k, v in values.items():
        savemat(mos_dir / f"mosz{k}.mat", {"MOSz": v})
    out = tmp_path / "new" / "dir"
    assert mat2csv.main(["--mos-dir", str(mos_dir), "--out-dir", str(out)]) == 0
    for k, task in ((1, "quality"), (2, "authenticity"), (3, "correspondence")):
        lines = (out / f"mos_{task}.csv").read_text().splitlines()
        assert lines[0] == "name,mos" and len(lines) == 8
        assert [float(line.split(",")[1]) for line in lines[1:]] == values[k][:, 0].tolist()


def test_failures_return_nonzero_with_a_message(tmp_path, capsys):
    assert mat2csv.main(["--mos-dir", str(tmp_path / "absent"), "--out-dir", str(tmp_path)]) == 2
    assert "the MOS folder" in capsys.readouterr().err
    assert mat2csv.main(["--mos-dir", str(tmp_path), "--out-dir", str(tmp_path)]) == 2
    assert "none of" in capsys.readouterr().err
    savemat(tmp_path / "mosz1.mat", {"other": np.ones((3, 1))})
    assert mat2csv.main(["--mos-dir", str(tmp_path), "--out-dir", str(tmp_path)]) == 2
    assert "no variable 'MOSz'" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.csv")) and not list(tmp_path.glob(".*tmp"))


def test_no_arguments_outside_the_database_names_the_default_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert mat2csv.main([]) == 2
    err = capsys.readouterr().err
    assert "no MOS folder here" in err and "pass --mos-dir" in err


def test_help_from_the_command_line():
    result = subprocess.run([sys.executable, "mat2csv.py", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "--mos-dir" in result.stdout and "mos_correspondence.csv" in result.stdout


def test_positional_paths_and_the_original_defaults(tmp_path, monkeypatch, aigciqa2023_mos):
    """`mat2csv.py MOS_DIR OUT_DIR`, and no arguments from the AIGCIQA2023 root (./MOS -> .)."""
    root = tmp_path / "AIGCIQA2023"
    (root / "MOS").mkdir(parents=True)
    shutil.copy(aigciqa2023_mos / "mosz2.mat", root / "MOS" / "mosz2.mat")
    assert mat2csv.main([str(root / "MOS"), str(tmp_path / "out")]) == 0
    positional = (tmp_path / "out" / "mos_authenticity.csv").read_text()
    assert positional.splitlines()[0] == "name,mos"
    assert len(positional.splitlines()) == 2401
    monkeypatch.chdir(root)
    assert mat2csv.main([]) == 0
    assert (root / "mos_authenticity.csv").read_text() == positional
    assert not (root / "mos_quality.csv").exists()


def test_an_output_folder_that_cannot_be_made_is_one_error_line(tmp_path, capsys):
    mos_dir = tmp_path / "MOS"
    mos_dir.mkdir()
    savemat(mos_dir / "mosz1.mat", {"MOSz": np.ones((3, 1))})
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert mat2csv.main(["--mos-dir", str(mos_dir), "--out-dir", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {blocker / 'sub' / 'mos_quality.csv'}: ")
    assert len(err.splitlines()) == 1 and "Traceback" not in err

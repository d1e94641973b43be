"""Issue 25, fault 5, a checkout made on Windows (Git's core.autocrlf=true, then the commands run
under WSL or Git Bash): the documented commands run there as here.

Two halves: (1) `.gitattributes` makes a clone with core.autocrlf=true check every text file out
with LF (and leaves binaries and the published label file byte for byte), so the shell scripts
run; (2) files that have CRLF anyway (a checkout made before, files edited on Windows: configs,
label CSVs, split files, sweep specs, a wrapper script's arguments) are read as with LF: a copy
of the repository whose Python, yaml, CSV and text files are all CRLF trains through main.sh
with a CR after its last argument, and plans a sweep from a CRLF spec."""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

# bash cannot run a script with CRLF line ends: these are what .gitattributes keeps LF.
SHELL_FILES = ("*.sh", "run")
TEXT_SUFFIXES = {".py", ".yaml", ".yml", ".csv", ".txt", ".md", ".ini", ".cfg"}
BINARY_SUFFIXES = {".png", ".gz", ".xlsx"}
PUBLISHED = Path("datasets/data")  # kept byte for byte (its SHA-256 is checked)


def _copy_repo(target: Path) -> Path:
    """The repository's files (no .git, outputs or caches) in ``target``."""
    shutil.copytree(REPO, target, ignore=shutil.ignore_patterns(
        ".git", "output", "__pycache__", ".pytest_cache", "*.pyc"), symlinks=True)
    return target


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c",
                    "core.autocrlf=false", "-c", "init.defaultBranch=main", *args],
                   cwd=cwd, check=True, capture_output=True)


def _is_shell(path: Path) -> bool:
    return path.suffix == ".sh" or path.as_posix().endswith(".ci/run")


def _files(root: Path):
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".git" not in path.relative_to(root).parts:
            yield path.relative_to(root)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_clone_with_autocrlf_checks_text_out_with_lf_and_the_scripts_run(tmp_path):
    source = _copy_repo(tmp_path / "source")
    _git("init", "-q", cwd=source)
    _git("add", "-A", cwd=source)
    _git("commit", "-q", "-m", "snapshot", cwd=source)
    clone = tmp_path / "clone"
    subprocess.run(["git", "-c", "core.autocrlf=true", "clone", "-q", "-c", "core.autocrlf=true",
                    str(source), str(clone)], check=True, capture_output=True)
    texts = 0
    for relative in _files(clone):
        data = (clone / relative).read_bytes()
        if relative.suffix in BINARY_SUFFIXES or PUBLISHED in relative.parents:
            assert data == (source / relative).read_bytes(), relative
        elif relative.suffix in TEXT_SUFFIXES or _is_shell(relative):
            assert b"\r\n" not in data, f"{relative} was checked out with CRLF"
            texts += 1
    assert texts > 200  # the check saw the repository's text files
    done = subprocess.run(["bash", "scripts/main.sh", "--help"], cwd=clone, capture_output=True,
                          text=True)
    assert done.returncode == 0 and "DATASET is one of" in done.stdout, done.stderr


def _to_crlf(path: Path) -> None:
    data = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    path.write_bytes(data)


def test_crlf_files_and_a_cr_after_the_last_argument_are_read_as_with_lf(tiny_assets, tmp_path):
    copy = _copy_repo(tmp_path / "crlf copy")
    converted = 0
    for relative in _files(copy):
        if relative.suffix in TEXT_SUFFIXES and not _is_shell(relative) \
                and PUBLISHED not in relative.parents:
            _to_crlf(copy / relative)
            converted += 1
    assert converted > 200 and b"\r\n" in (copy / "configs/datasets/AGIQA.yaml").read_bytes()

    # The user's data with Windows line ends: the label CSV and a split file.
    root = tmp_path / "data"
    shutil.copytree(tiny_assets["root"], root)
    _to_crlf(root / "AGIQA-3K" / "data.csv")
    with open(root / "AGIQA-3K" / "data.csv", newline="", encoding="utf-8") as handle:
        names = [row["name"] for row in csv.DictReader(handle)]
    split = root / "AGIQA-3K" / "my_split.csv"
    split.write_bytes(b"name,split\r\n" + b"".join(
        f"{n},{'test' if i % 4 == 0 else 'train'}\r\n".encode() for i, n in enumerate(names)))

    # A wrapper script edited on Windows leaves a CR after main.sh's last argument.
    env = dict(os.environ, DATA=str(root) + "\r", PYTHON=sys.executable)
    done = subprocess.run(
        ["bash", "scripts/main.sh", "AGIQA", "vit_b16_ep100", "end", "4", "1", "False", "1",
         "--", "MODEL.BACKBONE.NAME", tiny_assets["weights"], "OPTIM.MAX_EPOCH", "1",
         "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
         "DATASET.SPLIT_FILE", "my_split.csv", "TEST.NO_TEST", "False\r"],
        cwd=copy, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = copy / "output/AGIQA/CLIP_AGIQA/vit_b16_ep100_1shots/nctx4_cscFalse_ctpend/seed1"
    assert (run / "results.json").is_file()
    with open(run / "splits" / "test.csv", newline="", encoding="utf-8") as handle:
        tested = sorted(row[0] for row in list(csv.reader(handle))[1:])
    assert tested == sorted(n for i, n in enumerate(names) if i % 4 == 0)

    # A sweep spec edited on Windows plans as with LF.
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(b"root: " + str(root).encode() + b"\r\noutput: " +
                     str(tmp_path / "sweep").encode() + b"\r\ndatasets: [AGIQA]\r\n"
                     b"variants: [vit_b16_ep100]\r\nprotocols: [paper]\r\nseeds: [1, 2]\r\n"
                     b"extra_opts: [MODEL.BACKBONE.NAME, " + tiny_assets["weights"].encode() +
                     b"]\r\n")
    planned = subprocess.run(["bash", "scripts/sweep.sh", str(spec), "--dry-run\r"], cwd=copy,
                             env=dict(os.environ, PYTHON=sys.executable), capture_output=True,
                             text=True, timeout=300)
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert "\r" not in planned.stdout and ": 2 run(s): 0 done, 0 to resume, 2 new" in planned.stdout

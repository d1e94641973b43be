"""The database registry (datasets/registry.py) is the one list of databases: the dataset yamls,
the loaders, main.sh --help, score.py's label columns and the README table all agree with it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import score
from datasets import agiqa, agiqa1k, aigciqa2023, aigiqa20k
from datasets.registry import DATABASES, by_config, config_names, readme_table, with_readme_table

REPO = Path(__file__).resolve().parents[1]


def test_every_dataset_yaml_is_a_registered_config_of_its_database():
    stems = sorted(p.stem for p in (REPO / "configs" / "datasets").glob("*.yaml"))
    assert sorted(config_names()) == stems
    for stem in stems:
        cfg = yaml.safe_load((REPO / "configs" / "datasets" / f"{stem}.yaml").read_text())
        assert cfg["DATASET"]["NAME"] == by_config(stem).name


def test_the_loaders_read_their_folder_and_columns_from_the_registry():
    assert (agiqa.FOLDER, agiqa1k.FOLDER, aigciqa2023.FOLDER, aigiqa20k.FOLDER) == tuple(
        db.folder for db in DATABASES.values())
    assert agiqa.TASK_COLUMNS is DATABASES["AGIQA"].task_columns
    assert list(aigciqa2023.TASK_MAT_INDEX) == list(DATABASES["AIGCIQA2023"].task_columns)
    assert agiqa1k.COLUMNS["name"] == DATABASES["AGIQA1K"].name_column


def test_readme_table_between_the_markers_is_the_generated_one():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert with_readme_table(text) == text, \
        "run: python datasets/registry.py --update-readme README.md"
    assert readme_table() in text


def test_a_readme_without_markers_is_refused():
    with pytest.raises(ValueError, match="databases:start"):
        with_readme_table("# no table here\n")


def test_main_sh_help_lists_every_config_from_the_registry():
    done = subprocess.run(["bash", str(REPO / "scripts/main.sh"), "--help"], capture_output=True,
                          text=True, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("DATASET is one of", 1)[1]
    for db in DATABASES.values():
        assert f"{', '.join(db.configs)}  ({db.title}" in listed


def test_score_reads_each_databases_own_label_columns():
    for db in DATABASES.values():
        mos = next(iter(db.task_columns.values()))
        header = ["idx", db.name_column, "prompt", mos]
        assert score.label_columns(header, None) == (db.name_column, mos)

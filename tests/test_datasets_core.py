"""Pure dataset logic: level mapping, splits, label-file readers, layout helpers, config keys."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat
from sklearn.model_selection import train_test_split

from dassl.config import get_cfg_default, merge_config
from datasets import DatasetError, add_dataset_config
from datasets.config import DEFAULT_LEVEL_NAMES
from datasets.labels import read_label_table, read_mat_table
from datasets.layout import check_images, find_file, find_image_dir
from datasets.levels import mos_to_levels, validate_levels
from datasets.splits import split_table

REPO = Path(__file__).resolve().parents[1]
NAMES = ["a", "b", "c"]


# ----------------------------------------------------------------------------- levels
def test_levels_are_half_open_bins():
    t = [1.0, 2.0]
    mos = [-0.5, 0.0, 0.999, 1.0, 1.5, 2.0, 7.0]
    assert mos_to_levels(mos, t).tolist() == [0, 0, 0, 1, 1, 2, 2]


def test_nan_mos_is_rejected_with_position():
    with pytest.raises(DatasetError, match="position 2"):
        mos_to_levels([0.1, 0.2, float("nan")], [1.0])


@pytest.mark.parametrize("names, thresholds, message", [
    (NAMES, [1.0], "len\\(LEVEL_NAMES\\) - 1 = 2"),
    (NAMES, [1.0, 2.0, 3.0], "got 3"),
    (NAMES, [2.0, 1.0], "strictly increasing"),
    (NAMES, [1.0, 1.0], "strictly increasing"),
    (NAMES, [1.0, float("inf")], "not finite"),
    (["a", "a", "b"], [1.0, 2.0], "duplicates"),
    (["a"], [], "at least 2"),
    (NAMES, ["x", 1.0], "must be numbers"),
])
def test_bad_levels_raise_clear_errors(names, thresholds, message):
    with pytest.raises(DatasetError, match=message):
        validate_levels(names, thresholds)


# ----------------------------------------------------------------------------- splits
def _table(n):
    return pd.DataFrame({"name": [f"{i}.png" for i in range(n)], "mos": np.linspace(0, 1, n)})


@pytest.mark.parametrize("n, ratio, seed", [(2982, 0.2, 42), (2400, 0.2, 42), (101, 0.3, 7)])
def test_split_matches_sklearn_on_the_table(n, ratio, seed):
    table = _table(n)
    split = split_table(table, ratio, seed)
    ref_train, ref_test = train_test_split(table, test_size=ratio, random_state=seed)
    parts = split.tables(table)
    assert parts["train"]["name"].tolist() == ref_train["name"].tolist()
    assert parts["test"]["name"].tolist() == ref_test["name"].tolist()
    assert len(split.val) == 0


def test_val_is_carved_from_train_with_the_split_seed():
    table = _table(500)
    split = split_table(table, 0.2, 3, val_ratio=0.25)
    ref_train, ref_test = train_test_split(np.arange(500), test_size=0.2, random_state=3)
    ref_train2, ref_val = train_test_split(ref_train, test_size=0.25, random_state=3)
    assert split.test.tolist() == ref_test.tolist()
    assert split.train.tolist() == ref_train2.tolist()
    assert split.val.tolist() == ref_val.tolist()
    assert len(set(split.train) | set(split.val) | set(split.test)) == 500


@pytest.mark.parametrize("test_ratio, val_ratio", [(1.0, 0.0), (0.2, 1.0), (0.2, -0.1),
                                                    (0.0, 1.0), (0.0, -0.1)])
def test_bad_ratios_are_rejected(test_ratio, val_ratio):
    with pytest.raises(DatasetError, match="RATIO"):
        split_table(_table(10), test_ratio, 0, val_ratio)


def test_no_test_and_no_validation_part_trains_on_every_row():
    # TEST_RATIO 0, VAL_RATIO 0 (train.py allows it with TEST.FINAL_MODEL last_step).
    split = split_table(_table(10), 0.0, 0, 0.0)
    assert split.train.tolist() == list(range(10))
    assert len(split.val) == 0 and len(split.test) == 0


# ----------------------------------------------------------------------------- label files
def _write_csv(path, text):
    path.write_text(text)
    return path


def test_csv_reader_keeps_order_and_exact_floats(tmp_path):
    text = "name,mos,prompt\nb.jpg,0.1,x\na.jpg,2.965602553000001,\n"
    path = _write_csv(tmp_path / "l.csv", text)
    table = read_label_table(path, "mos", prompt_column="prompt")
    assert table["name"].tolist() == ["b.jpg", "a.jpg"]
    assert table["mos"].tolist() == [0.1, 2.965602553000001]
    assert table["prompt"].tolist() == ["x", ""]


@pytest.mark.parametrize("text, message", [
    ("name,score\na.jpg,1\n", r"lacks column\(s\) \['mos'\]; it has columns \[name, score\]"),
    ("name,mos\na.jpg,1\nb.jpg,\n", "MOS is missing or not finite .* data row 1 .*b.jpg"),
    ("name,mos\na.jpg,1\nb.jpg,nan\n", "data row 1"),
    ("name,x,mos\na.jpg,0,1\nb.jpg,0\n", "MOS is missing .* data row 1 .*b.jpg"),
    ("name,mos\na.jpg,1\nb.jpg,good\n", "not numeric at data row 1 .*b.jpg.*'good'"),
    ("name,mos\na.jpg,1\nb.jpg,2\na.jpg,3\n",
     r"duplicate image name a.jpg at data rows \[0, 2\]"),
    ("name,mos\na.jpg,1\n,2\n", "empty image name at data row 1"),
    ("name,mos\n", "no data rows"),
])
def test_csv_reader_errors_name_the_problem_and_row(tmp_path, text, message):
    path = _write_csv(tmp_path / "labels.csv", text)
    with pytest.raises(DatasetError, match=message) as info:
        read_label_table(path, "mos")
    assert "labels.csv" in str(info.value)


def test_mat_reader_accepts_column_row_and_flat_vectors(tmp_path):
    for shape in [(5, 1), (1, 5)]:
        savemat(tmp_path / "m.mat", {"MOSz": np.arange(5.0).reshape(shape) + 30})
        table = read_mat_table(tmp_path / "m.mat")
        assert table["name"].tolist() == [f"{i}.png" for i in range(5)]
        assert table["mos"].tolist() == [30.0, 31.0, 32.0, 33.0, 34.0]


@pytest.mark.parametrize("content, message", [
    ({"MOS": np.ones((4, 1))}, r"no variable 'MOSz'; it holds \['MOS'\]"),
    ({"MOSz": np.ones((4, 2))}, r"shape \(4, 2\)"),
    ({"MOSz": np.array([[1.0], [np.nan], [2.0]])}, "row 1 .*1.png"),
])
def test_mat_reader_errors(tmp_path, content, message):
    savemat(tmp_path / "bad.mat", content)
    with pytest.raises(DatasetError, match=message):
        read_mat_table(tmp_path / "bad.mat")


def test_mat_reader_rejects_non_mat_file(tmp_path):
    (tmp_path / "x.mat").write_text("not matlab")
    with pytest.raises(DatasetError, match="cannot read MATLAB file"):
        read_mat_table(tmp_path / "x.mat")


# ----------------------------------------------------------------------------- layout
def test_find_file_looks_one_level_deeper(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.csv").write_text("x")
    assert find_file(tmp_path, ["data.csv"], "labels") == tmp_path / "sub" / "data.csv"
    (tmp_path / "data.csv").write_text("x")
    assert find_file(tmp_path, ["data.csv"], "labels") == tmp_path / "data.csv"
    assert find_file(tmp_path, ["other.csv"], "labels") is None


def test_find_image_dir_prefers_the_folder_holding_the_images(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "imgs").mkdir()
    for n in NAMES:
        (tmp_path / "imgs" / n).write_text("")
    assert find_image_dir([tmp_path], NAMES) == tmp_path / "imgs"
    assert find_image_dir([tmp_path / "missing", tmp_path], NAMES) == tmp_path / "imgs"
    assert find_image_dir([tmp_path], ["zzz"]) == tmp_path


def test_check_images_reports_count_and_first_paths(tmp_path):
    names = [f"{i}.png" for i in range(10)]
    for n in names[:3]:
        (tmp_path / n).write_text("")
    with pytest.raises(DatasetError) as info:
        check_images(tmp_path, names)
    message = str(info.value)
    assert message.startswith("7 of 10 images")
    assert str(tmp_path / "3.png") in message and str(tmp_path / "7.png") in message
    assert str(tmp_path / "8.png") not in message  # only the first five are listed
    check_images(tmp_path, names[:3])


# ----------------------------------------------------------------------------- config
def test_add_dataset_config_declares_keys_idempotently():
    cfg = get_cfg_default()
    assert "TASK" not in cfg.DATASET
    add_dataset_config(cfg)
    assert cfg.DATASET.TASK == "" and cfg.DATASET.LEVEL_NAMES == DEFAULT_LEVEL_NAMES
    assert cfg.DATASET.LEVEL_THRESHOLDS == [] and cfg.DATASET.SPLIT_SEED == 42
    assert cfg.DATASET.TEST_RATIO == 0.2 and cfg.DATASET.VAL_RATIO == 0.0
    assert cfg.DATASET.CHECK_FILES is True
    cfg.DATASET.TASK = "alignment"
    cfg.DATASET.LEVEL_NAMES.append("x")
    add_dataset_config(cfg)
    assert cfg.DATASET.TASK == "alignment"
    assert DEFAULT_LEVEL_NAMES[-1] == "perfect"  # the default list was not shared


def test_add_dataset_config_on_frozen_cfg_fails_clearly():
    cfg = get_cfg_default()
    cfg.freeze()
    with pytest.raises(ValueError, match="frozen"):
        add_dataset_config(cfg)


EXPECTED_YAML = {
    "AGIQA.yaml": ("AGIQA", "quality", []),
    "AGIQA_alignment.yaml": ("AGIQA", "alignment", [1.267, 2.343, 2.813, 3.102, 3.416]),
    "AIGCIQA2023.yaml": ("AIGCIQA2023", "quality", []),
    "AIGCIQA2023_authenticity.yaml": ("AIGCIQA2023", "authenticity", []),
    "AIGCIQA2023_correspondence.yaml": ("AIGCIQA2023", "correspondence", []),
}


def test_every_dataset_yaml_loads_into_a_cfg():
    files = sorted(p.name for p in (REPO / "configs" / "datasets").glob("*.yaml"))
    assert set(EXPECTED_YAML) <= set(files)
    for name in files:
        cfg = add_dataset_config(get_cfg_default())
        cfg.merge_from_file(str(REPO / "configs" / "datasets" / name))
        if name in EXPECTED_YAML:
            assert (cfg.DATASET.NAME, cfg.DATASET.TASK,
                    list(cfg.DATASET.LEVEL_THRESHOLDS)) == EXPECTED_YAML[name]
        assert len(cfg.DATASET.LEVEL_NAMES) == 6


def test_dataset_keys_accept_command_line_overrides():
    cfg = add_dataset_config(get_cfg_default())
    merge_config(cfg, opts=["DATASET.LEVEL_THRESHOLDS", "[1.0, 2.0]", "DATASET.LEVEL_NAMES",
                            "['low', 'mid', 'high']", "DATASET.VAL_RATIO", "0.1",
                            "DATASET.CHECK_FILES", "False"])
    assert cfg.DATASET.LEVEL_THRESHOLDS == [1.0, 2.0]
    assert cfg.DATASET.LEVEL_NAMES == ["low", "mid", "high"]
    assert cfg.DATASET.VAL_RATIO == 0.1 and cfg.DATASET.CHECK_FILES is False

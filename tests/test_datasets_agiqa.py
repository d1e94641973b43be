"""AGIQA-3K loader on the real label file (committed: tests/data/), paired with tiny placeholder images."""

import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from dassl.config import get_cfg_default
from dassl.data.datasets import build_dataset
from datasets import AGIQA, DatasetError, add_dataset_config
from synthetic_databases import write_placeholder_images
from label_files import AGIQA3K_CSV

REAL_CSV = AGIQA3K_CSV  # committed: tests/data/README.md

QUALITY_TRAIN_COUNTS = [398, 398, 400, 399, 395, 395]
QUALITY_TEST_COUNTS = [106, 110, 104, 93, 83, 101]  # upstream's committed test split


def make_cfg(root, **dataset):
    cfg = add_dataset_config(get_cfg_default())
    cfg.DATASET.NAME = "AGIQA"
    cfg.DATASET.ROOT = str(root)
    for key, value in dataset.items():
        cfg.DATASET[key] = value
    return cfg


@pytest.fixture(scope="module")
def real_df():
    return pd.read_csv(REAL_CSV)


@pytest.fixture(scope="module")
def root(tmp_path_factory, real_df):
    """ROOT/AGIQA-3K/data.csv (the real one) with an 8x8 image per listed name. Read-only."""
    root = tmp_path_factory.mktemp("agiqa_root")
    write_placeholder_images(root / "AGIQA-3K", real_df["name"].tolist())
    shutil.copy(REAL_CSV, root / "AGIQA-3K" / "data.csv")
    return root


@pytest.fixture(scope="module")
def dataset(root):
    return AGIQA(make_cfg(root))


def names(items):
    return [d.name for d in items]


def test_counts_and_class_names(dataset, real_df):
    assert len(real_df) == 2982
    assert (len(dataset.train_x), len(dataset.test)) == (2385, 597)
    assert not dataset.val
    assert dataset.classnames == ["terrible", "bad", "poor", "average", "good", "perfect"]
    assert dataset.num_classes == 6 and dataset.task == "quality"
    assert sorted(names(dataset.train_x) + names(dataset.test)) == sorted(real_df["name"])


def test_split_equals_an_independent_sklearn_call(dataset, real_df):
    train, test = train_test_split(real_df, test_size=0.2, random_state=42)
    assert names(dataset.train_x) == train["name"].tolist()
    assert names(dataset.test) == test["name"].tolist()
    assert names(dataset.train_x)[:3] == ["sd1.5_lowcorr_210.jpg", "sd1.5_lowcorr_002.jpg",
                                          "midjourney_normal_066.jpg"]
    assert names(dataset.test)[:3] == ["sd1.5_normal_027.jpg", "sd1.5_highcorr_065.jpg",
                                       "glide_normal_291.jpg"]


def test_split_is_identical_across_runs_and_registry_builds_it(root, dataset):
    again = build_dataset(make_cfg(root))
    assert isinstance(again, AGIQA)
    assert names(again.train_x) == names(dataset.train_x)
    assert names(again.test) == names(dataset.test)


def test_datum_fields(dataset, root, real_df):
    mos = dict(zip(real_df["name"], real_df["mos_quality"]))
    for d in dataset.train_x[:50] + dataset.test[:50]:
        assert d.impath == str(root / "AGIQA-3K" / d.name)
        assert isinstance(d.mos, float) and d.mos == mos[d.name]
        assert d.classname == dataset.classnames[d.label]
    thresholds = np.array([-np.inf, 1.231, 2.266, 2.749, 3.092, 3.456, np.inf])
    for d in dataset.train_x:
        assert thresholds[d.label] <= d.mos < thresholds[d.label + 1]


def test_level_counts_match_upstream(dataset):
    assert np.bincount([d.label for d in dataset.train_x]).tolist() == QUALITY_TRAIN_COUNTS
    assert np.bincount([d.label for d in dataset.test]).tolist() == QUALITY_TEST_COUNTS


def test_alignment_task_uses_mos_align_and_its_sextile_thresholds(root, real_df, dataset):
    align = AGIQA(make_cfg(root, TASK="alignment"))
    assert names(align.train_x) == names(dataset.train_x)  # same split for both tasks
    mos = dict(zip(real_df["name"], real_df["mos_align"]))
    assert all(d.mos == mos[d.name] for d in align.train_x + align.test)
    assert [d.mos for d in align.test] != [d.mos for d in dataset.test]
    train_mos = np.array([d.mos for d in align.train_x])
    sextiles = np.round(np.quantile(train_mos, np.arange(1, 6) / 6), 3).tolist()
    assert align.thresholds == sextiles == [1.267, 2.343, 2.813, 3.102, 3.416]
    assert np.bincount([d.label for d in align.train_x]).tolist() == [398, 398, 397, 395, 399, 398]


def test_configured_names_and_thresholds_replace_the_defaults(root):
    ds = AGIQA(make_cfg(root, LEVEL_NAMES=["low", "high"], LEVEL_THRESHOLDS=[2.5]))
    assert ds.classnames == ["low", "high"] and ds.num_classes == 2
    for d in ds.test:
        assert d.label == int(d.mos >= 2.5) and d.classname == ["low", "high"][d.label]


def test_val_ratio_carves_validation_from_train(root, dataset):
    ds = AGIQA(make_cfg(root, VAL_RATIO=0.1))
    ref_train, ref_val = train_test_split(names(dataset.train_x), test_size=0.1, random_state=42)
    assert (len(ds.train_x), len(ds.val), len(ds.test)) == (2146, 239, 597)
    assert names(ds.train_x) == ref_train and names(ds.val) == ref_val
    assert names(ds.test) == names(dataset.test)


def test_split_seed_and_test_ratio_are_configurable(root, dataset):
    ds = AGIQA(make_cfg(root, SPLIT_SEED=1, TEST_RATIO=0.3))
    assert (len(ds.train_x), len(ds.test)) == (2087, 895)
    assert names(ds.test)[:20] != names(dataset.test)[:20]


def test_save_splits_writes_names_as_in_the_label_file(dataset, tmp_path):
    dataset.save_splits(str(tmp_path / "splits"))
    train = pd.read_csv(tmp_path / "splits" / "train.csv")
    assert train["name"].tolist() == names(dataset.train_x)
    # float64 MOS through a CSV: round-trip formatting only (np.allclose's rtol 1e-5 is far above).
    assert np.allclose(train["mos"], [d.mos for d in dataset.train_x])
    assert not (tmp_path / "splits" / "val.csv").exists()


def test_images_one_folder_deeper_and_nested_csv_are_found(tmp_path, real_df):
    inner = tmp_path / "AGIQA-3K" / "AGIQA-3K"
    write_placeholder_images(inner, real_df["name"].tolist())
    shutil.copy(REAL_CSV, tmp_path / "AGIQA-3K" / "data.csv")
    ds = AGIQA(make_cfg(tmp_path))
    assert ds.train_x[0].impath == str(inner / ds.train_x[0].name)
    (tmp_path / "AGIQA-3K" / "data.csv").rename(inner / "data.csv")
    assert AGIQA(make_cfg(tmp_path)).test[0].impath == str(inner / ds.test[0].name)


def test_check_files_off_needs_no_images(tmp_path):
    (tmp_path / "AGIQA-3K").mkdir()
    shutil.copy(REAL_CSV, tmp_path / "AGIQA-3K" / "data.csv")
    ds = AGIQA(make_cfg(tmp_path, CHECK_FILES=False))
    assert len(ds.train_x) == 2385
    assert ds.train_x[0].impath == str(tmp_path / "AGIQA-3K" / ds.train_x[0].name)


# ----------------------------------------------------------------------------- errors
def small_root(tmp_path, csv_text, images=("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg")):
    (tmp_path / "AGIQA-3K").mkdir(parents=True)
    (tmp_path / "AGIQA-3K" / "data.csv").write_text(csv_text)
    write_placeholder_images(tmp_path / "AGIQA-3K", list(images))
    return tmp_path


GOOD = "name,mos_quality,mos_align\n" + "".join(f"{c}.jpg,{i},{i}\n" for i, c in enumerate("abcde"))


def test_missing_root_names_the_expected_path_and_what_exists(tmp_path):
    (tmp_path / "AIGCIQA2023").mkdir()
    with pytest.raises(DatasetError) as info:
        AGIQA(make_cfg(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "AGIQA-3K") in message and "AIGCIQA2023/" in message
    with pytest.raises(DatasetError, match="DATASET.ROOT is empty"):
        AGIQA(make_cfg(""))


def test_missing_csv_lists_the_folder(tmp_path):
    write_placeholder_images(tmp_path / "AGIQA-3K", ["a.jpg"])
    with pytest.raises(DatasetError, match=r"data.csv not found.*contains: a.jpg"):
        AGIQA(make_cfg(tmp_path))


@pytest.mark.parametrize("text, task, message", [
    ("name,mos\na.jpg,1\n", "quality", r"lacks column\(s\) \['mos_quality'\]"),
    (GOOD.replace("c.jpg,2,", "c.jpg,,"), "quality", "data row 2 .*c.jpg"),
    (GOOD.replace("d.jpg,3,3", "d.jpg,3,NaN"), "alignment", "data row 3 .*d.jpg"),
    (GOOD.replace("e.jpg", "a.jpg"), "quality",
     r"duplicate image name a.jpg at data rows \[0, 4\]"),
    (GOOD, "aesthetics", "aesthetics is not supported by AGIQA; choose one of"),
])
def test_label_problems_name_the_row(tmp_path, text, task, message):
    with pytest.raises(DatasetError, match=message):
        AGIQA(make_cfg(small_root(tmp_path, text), TASK=task))


def test_missing_images_are_reported_once_with_a_count(tmp_path):
    root = small_root(tmp_path, GOOD, images=("a.jpg", "c.jpg"))
    with pytest.raises(DatasetError, match=r"(?s)^3 of 5 images .*b.jpg") as info:
        AGIQA(make_cfg(root))
    assert info.value.__cause__ is None
    assert len(AGIQA(make_cfg(root, CHECK_FILES=False)).train_x) == 4


@pytest.mark.parametrize("thresholds, message", [
    ([1.0, 2.0], "len\\(LEVEL_NAMES\\) - 1 = 5"),
    ([1.0, 2.0, 2.0, 3.0, 4.0], "strictly increasing"),
])
def test_bad_thresholds_are_rejected(tmp_path, thresholds, message):
    with pytest.raises(DatasetError, match=message):
        AGIQA(make_cfg(small_root(tmp_path, GOOD), LEVEL_THRESHOLDS=thresholds))


def test_loading_writes_nothing(tmp_path):
    root = small_root(tmp_path, GOOD)
    before = sorted(p for p in root.rglob("*"))
    AGIQA(make_cfg(root, VAL_RATIO=0.5))
    assert sorted(p for p in root.rglob("*")) == before


def test_small_table_levels_and_order(tmp_path):
    ds = AGIQA(make_cfg(small_root(tmp_path, GOOD), LEVEL_NAMES=["lo", "hi"],
                        LEVEL_THRESHOLDS=[2.0]))
    items = {d.name: d for d in ds.train_x + ds.test}
    assert {n: d.label for n, d in items.items()} == {"a.jpg": 0, "b.jpg": 0, "c.jpg": 1,
                                                       "d.jpg": 1, "e.jpg": 1}
    assert len(ds.test) == 1

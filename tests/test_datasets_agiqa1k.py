"""AGIQA-1K: the real label file (tests/data/agiqa1k, MIT) with placeholder images named as the
real ones; xlsx/CSV reading and its errors; split files (peer split 1, round trip)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datasets import DatasetError
from datasets.agiqa1k import load_agiqa1k
from datasets.labels import read_label_table
from synthetic_databases import make_synthetic_agiqa1k, write_xlsx
from datasets.registry import PRODUCT_DATA
from label_files import dataset_options as options

DATA = Path(__file__).resolve().parent / "data" / "agiqa1k"
LABELS = DATA / "AIGC_MOS_Zscore.xlsx"
PEER = DATA / "peer_splits"
DUPLICATE = "dreamStudio_8_9_1_1.jpg"
UNLISTED = "dreamStudio_8_5_0_0.jpg"


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """DATASET.ROOT with AGIQA-1K/AIGC_MOS_Zscore.xlsx and 1,079 placeholder images in file/."""
    base = tmp_path_factory.mktemp("agiqa1k")
    make_synthetic_agiqa1k(base, LABELS)
    return base


def test_real_label_file_rows_duplicate_and_default_split(root, capsys):
    data = load_agiqa1k(options(root))
    out = capsys.readouterr().out
    parts = data.parts
    assert (len(parts["train"]), len(parts["val"]), len(parts["test"])) == (864, 0, 216)
    rows = pd.concat([parts["train"], parts["test"]])
    assert len(rows) == 1080 and rows["name"].nunique() == 1079
    assert UNLISTED not in set(rows["name"])
    dup = rows[rows["name"] == DUPLICATE]
    assert sorted(dup["mos"].round(4)) == [0.4414, 2.0841]
    assert set(dup["prompt"]) == {"alien, wearing shirt, wild, realistic style"}
    # Reported once, naming both rows (0-based data rows) and their MOS.
    assert out.count(DUPLICATE) == 1
    assert "data rows [1078, 1079]" in out and "0.4414, 2.0841" in out
    assert data.image_dir == root / "AGIQA-1K" / "file"


def test_drop_duplicate_names_keeps_the_first_row(root, capsys):
    data = load_agiqa1k(options(root, DROP_DUPLICATE_NAMES=True))
    rows = pd.concat([data.parts["train"], data.parts["test"]])
    assert len(rows) == 1079 and rows["name"].is_unique
    assert rows.loc[rows["name"] == DUPLICATE, "mos"].round(4).tolist() == [0.4414]
    assert "only the first row kept" in capsys.readouterr().out


def test_thresholds_are_the_training_sextiles(root):
    data = load_agiqa1k(options(root))
    train = np.sort(data.parts["train"]["mos"].to_numpy())
    # Linear interpolation between order statistics at (n - 1) k / 6, written out by hand.
    expected = []
    for k in range(1, 6):
        pos = (len(train) - 1) * k / 6
        lo = int(np.floor(pos))
        expected.append(train[lo] + (pos - lo) * (train[lo + 1] - train[lo]))
    # Tolerance: the same arithmetic in another order (float64 rounding only).
    np.testing.assert_allclose(data.thresholds, expected, rtol=0, atol=1e-12)
    counts = np.bincount(data.parts["train"]["label"], minlength=6)
    assert counts.min() >= 143 and counts.max() <= 145  # 864 / 6 = 144 per level
    assert data.provenance["level_thresholds"]["rule"] == "training quantiles"


def test_csv_label_file_and_images_beside_it(tmp_path):
    base = tmp_path / "AGIQA-1K"
    base.mkdir()
    table = read_label_table(LABELS, "MOS", name_column="Image", duplicates="keep")
    raw = pd.DataFrame({"Image": table["name"], "Prompt": "p", "MOS": [repr(m) for m in
                                                                      table["mos"]]})
    raw.to_csv(base / "AIGC_MOS_Zscore.csv", index=False)
    from synthetic_databases import write_placeholder_images
    write_placeholder_images(base, sorted(set(table["name"])))
    data = load_agiqa1k(options(tmp_path))
    assert data.image_dir == base
    assert sorted(pd.concat(data.parts.values())["mos"]) == sorted(table["mos"])


def test_label_file_errors_name_file_sheet_and_columns(tmp_path, root):
    with pytest.raises(DatasetError, match=r"has no sheet 'Scores'; its sheets are \['Sheet1'\]"):
        load_agiqa1k(options(root, LABEL_SHEET="Scores", CHECK_FILES=False))
    bad = tmp_path / "AGIQA-1K"
    write_xlsx(bad / "AIGC_MOS_Zscore.xlsx", ["Image", "Prompt", "Score"], [("a.jpg", "p", 1.0)])
    with pytest.raises(DatasetError, match=r"AIGC_MOS_Zscore.xlsx, sheet 'Sheet1', lacks "
                                           r"column\(s\) \['MOS'\]; it has columns "
                                           r"\[Image, Prompt, Score\]"):
        load_agiqa1k(options(tmp_path, CHECK_FILES=False))
    (bad / "AIGC_MOS_Zscore.xlsx").write_bytes(b"not a zip file")
    with pytest.raises(DatasetError, match="cannot read label file .* as an Excel workbook"):
        load_agiqa1k(options(tmp_path, CHECK_FILES=False))


def test_database_folder_in_the_wrong_place(tmp_path):
    nested = tmp_path / "datasets" / "AGIQA-1K"
    nested.mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"dataset folder .*AGIQA-1K not found .*contains: "
                                           r"datasets/"):
        load_agiqa1k(options(tmp_path))


def test_peer_split_1_is_reproduced_exactly(root):
    data = load_agiqa1k(options(root, SPLIT_FILE=str(PEER), SPLIT_INDEX=1))
    for ours, theirs in (("train", "train.csv"), ("test", "val.csv")):
        peer = pd.read_csv(PEER / "1" / theirs)
        part = data.parts[ours]
        assert part["name"].tolist() == peer["Image"].tolist()
        # Same rows, duplicate included. Tolerance: the peer CSVs print the xlsx doubles with
        # 15 significant digits where that is enough, so the last digits may be cut off.
        np.testing.assert_allclose(part["mos"], peer["MOS"], rtol=1e-13, atol=0)
    assert len(data.parts["val"]) == 0
    record = data.provenance["split"]
    assert record["mode"] == "file" and record["index"] == 1
    assert [Path(f["path"]).name for f in record["files"]] == ["train.csv", "val.csv"]
    assert all(len(f["sha256"]) == 64 for f in record["files"])


def test_split_file_round_trip_and_duplicate_in_two_parts(root, tmp_path):
    data = load_agiqa1k(options(root, SPLIT_SEED=7, VAL_RATIO=0.1))
    folder = tmp_path / "splits"
    folder.mkdir()
    for part, table in data.parts.items():  # the name,mos files every run writes to splits/
        table[["name", "mos"]].assign(mos=[repr(m) for m in table["mos"]]).to_csv(
            folder / f"{part}.csv", index=False)
    again = load_agiqa1k(options(root, SPLIT_FILE=str(folder)))
    for part in ("train", "val", "test"):
        pd.testing.assert_frame_equal(again.parts[part][["name", "mos", "label"]],
                                      data.parts[part][["name", "mos", "label"]])
    # One file name,split: the duplicate's two rows in two parts, told apart by MOS.
    both = pd.concat(data.parts.values())
    high = both["name"].eq(DUPLICATE) & (both["mos"] > 1)
    rows = pd.DataFrame({"name": both["name"], "split": np.where(high, "test", "train"),
                         "mos": [repr(m) for m in both["mos"]]})
    rows.to_csv(tmp_path / "split.csv", index=False)
    split = load_agiqa1k(options(root, SPLIT_FILE=str(tmp_path / "split.csv")))
    assert split.parts["test"]["mos"].round(4).tolist() == [2.0841]
    assert len(split.parts["train"]) == 1079


def test_split_file_errors(root, tmp_path):
    pd.DataFrame({"name": ["deepai_0_0_0_0.jpg", "nobody.jpg"], "split": ["train", "test"]}) \
        .to_csv(tmp_path / "unknown.csv", index=False)
    with pytest.raises(DatasetError, match=r"not in the label file, e\.g\. 'nobody\.jpg'"):
        load_agiqa1k(options(root, SPLIT_FILE=str(tmp_path / "unknown.csv")))
    pd.DataFrame({"name": ["deepai_0_0_0_0.jpg", "deepai_0_0_0_0.jpg"],
                  "split": ["train", "test"]}).to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(DatasetError, match=r"deepai_0_0_0_0\.jpg is listed in two parts or "
                                           r"twice \(test, train\)"):
        load_agiqa1k(options(root, SPLIT_FILE=str(tmp_path / "twice.csv")))
    (tmp_path / "only_train").mkdir()
    shutil.copy(PEER / "1" / "train.csv", tmp_path / "only_train" / "train.csv")
    with pytest.raises(DatasetError, match="must hold train.csv and val.csv"):
        load_agiqa1k(options(root, SPLIT_FILE=str(tmp_path / "only_train")))
    with pytest.raises(DatasetError, match="split file .*peer_splits/11 not found"):
        load_agiqa1k(options(root, SPLIT_FILE=str(PEER), SPLIT_INDEX=11))


AGIQA3K_CSV = PRODUCT_DATA / "AGIQA-3K" / "data.csv"  # shipped for users (MIT)


def test_the_quantile_rule_gives_agiqa3k_training_sextiles():
    from datasets.levels import quantile_thresholds
    from datasets.splits import split_table

    table = read_label_table(AGIQA3K_CSV, "mos_quality")
    split = split_table(table)  # the reference split, 2,385 training rows
    cuts = quantile_thresholds(table["mos"].to_numpy()[split.train], 6)
    # The values the published cut points 1.231/2.266/2.749/3.092/3.456 approximate.
    assert [round(c, 3) for c in cuts] == [1.232, 2.264, 2.748, 3.091, 3.456]

"""AIGCIQA2023 loader on MOS files of the real shape (the real ones when present), paired with
tiny placeholder images; see tests/label_files.py."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat
from sklearn.model_selection import train_test_split

from dassl.config import get_cfg_default
from dassl.data.datasets import build_dataset
from datasets import AIGCIQA2023, DatasetError, add_dataset_config
from synthetic_databases import write_placeholder_images
from label_files import AIGCIQA2023_ROWS, needs_real_aigciqa2023

N = AIGCIQA2023_ROWS
ALL_NAMES = [f"{i}.png" for i in range(N)]


def make_cfg(root, **dataset):
    cfg = add_dataset_config(get_cfg_default())
    cfg.DATASET.NAME = "AIGCIQA2023"
    cfg.DATASET.ROOT = str(root)
    for key, value in dataset.items():
        cfg.DATASET[key] = value
    return cfg


@pytest.fixture(scope="module")
def mos_file(aigciqa2023_mos):
    """``mos_file(k) -> Path`` of mosz<k>.mat (real or stand-in)."""
    return lambda k: aigciqa2023_mos / f"mosz{k}.mat"


@pytest.fixture(scope="module")
def mos_values(mos_file):
    """``mos_values(k) -> (2400,) float64``: the scores of mosz<k>.mat, row i = image i.png."""
    return lambda k: loadmat(mos_file(k))["MOSz"][:, 0]


@pytest.fixture(scope="module")
def build_root(mos_file):
    """``build_root(root, mats, image_dir, names) -> root`` with AIGCIQA2023/MOS and images."""

    def build(root, mats=(1, 2), image_dir="allimg", names=ALL_NAMES):
        base = root / "AIGCIQA2023"
        (base / "MOS").mkdir(parents=True)
        for k in mats:
            shutil.copy(mos_file(k), base / "MOS" / f"mosz{k}.mat")
        write_placeholder_images(base / image_dir, names)
        return root

    return build


@pytest.fixture(scope="module")
def root(tmp_path_factory, build_root):
    return build_root(tmp_path_factory.mktemp("aigc_root"))


@pytest.fixture(scope="module")
def quality(root):
    return AIGCIQA2023(make_cfg(root))


def names(items):
    return [d.name for d in items]


def test_counts_split_and_fields(quality, root, mos_values):
    assert (len(quality.train_x), len(quality.test)) == (1920, 480)
    assert quality.task == "quality" and quality.thresholds == [30.0, 40.0, 50.0, 60.0, 70.0]
    ref_train, ref_test = train_test_split(np.arange(N), test_size=0.2, random_state=42)
    assert names(quality.train_x) == [f"{i}.png" for i in ref_train]
    assert names(quality.test) == [f"{i}.png" for i in ref_test]
    mos = mos_values(1)
    for d in quality.train_x[:100] + quality.test[:100]:
        assert d.mos == float(mos[int(d.name[:-4])])
        assert d.impath == str(root / "AIGCIQA2023" / "allimg" / d.name)
        assert d.classname == quality.classnames[d.label]


@needs_real_aigciqa2023
def test_level_counts_match_upstream(quality, root):
    assert np.bincount([d.label for d in quality.train_x]).tolist() == [7, 338, 574, 686, 307, 8]
    auth = AIGCIQA2023(make_cfg(root, TASK="authenticity"))
    assert np.bincount([d.label for d in auth.train_x]).tolist() == [5, 228, 734, 742, 208, 3]


def test_task_switch_keeps_the_split_and_changes_the_values(quality, root, mos_values):
    auth = build_dataset(make_cfg(root, TASK="authenticity"))
    assert isinstance(auth, AIGCIQA2023) and auth.task == "authenticity"
    assert names(auth.train_x) == names(quality.train_x)
    mos2 = mos_values(2)
    assert all(d.mos == float(mos2[int(d.name[:-4])]) for d in auth.train_x + auth.test)
    assert [d.mos for d in auth.test] != [d.mos for d in quality.test]


def test_split_identical_across_runs_and_val_ratio(quality, root):
    again = AIGCIQA2023(make_cfg(root))
    assert names(again.train_x) == names(quality.train_x)
    with_val = AIGCIQA2023(make_cfg(root, VAL_RATIO=0.2))
    assert (len(with_val.train_x), len(with_val.val), len(with_val.test)) == (1536, 384, 480)
    ref_train, ref_val = train_test_split(names(quality.train_x), test_size=0.2, random_state=42)
    assert names(with_val.train_x) == ref_train and names(with_val.val) == ref_val


def test_missing_task_file_names_both_expected_sources(root):
    with pytest.raises(DatasetError) as info:
        AIGCIQA2023(make_cfg(root, TASK="correspondence"))
    message = str(info.value)
    assert "MOS/mosz3.mat" in message and "mos_correspondence.csv" in message
    assert "mosz1.mat" in message  # what MOS/ holds instead


def test_nested_image_folder_is_tolerated(tmp_path, build_root):
    root = build_root(tmp_path, mats=(1,), image_dir="allimg/allimg")
    ds = AIGCIQA2023(make_cfg(root))
    assert ds.test[0].impath == str(root / "AIGCIQA2023" / "allimg" / "allimg" / ds.test[0].name)


def test_missing_root_and_missing_images(tmp_path, build_root):
    with pytest.raises(DatasetError, match=r"AIGCIQA2023 not found .*does not exist"):
        AIGCIQA2023(make_cfg(tmp_path / "nowhere"))
    root = build_root(tmp_path, mats=(1,), names=ALL_NAMES[:-3])
    with pytest.raises(DatasetError, match=r"(?s)^3 of 2400 images .*2397.png"):
        AIGCIQA2023(make_cfg(root))
    assert len(AIGCIQA2023(make_cfg(root, CHECK_FILES=False)).test) == 480


def test_mat_without_mosz_or_with_wrong_length(tmp_path, build_root, mos_values):
    root = build_root(tmp_path, mats=(), names=ALL_NAMES)
    mat = root / "AIGCIQA2023" / "MOS" / "mosz1.mat"
    savemat(mat, {"scores": mos_values(1)[:, None]})
    with pytest.raises(DatasetError, match=r"no variable 'MOSz'; it holds \['scores'\]"):
        AIGCIQA2023(make_cfg(root))
    savemat(mat, {"MOSz": mos_values(1)[:-1, None]})
    with pytest.raises(DatasetError, match=r"wrong MOS length: .*2399 rows .*2399.png"):
        AIGCIQA2023(make_cfg(root))
    savemat(mat, {"MOSz": np.stack([mos_values(1), mos_values(2)], axis=1)})
    with pytest.raises(DatasetError, match=r"shape \(2400, 2\)"):
        AIGCIQA2023(make_cfg(root))
    bad = mos_values(1).copy()
    bad[17] = np.nan
    savemat(mat, {"MOSz": bad[:, None]})
    with pytest.raises(DatasetError, match="row 17 .*17.png"):
        AIGCIQA2023(make_cfg(root))


def test_csv_source_is_used_when_no_mat_exists(tmp_path, build_root):
    root = build_root(tmp_path, mats=(), names=["0.png", "1.png", "2.png", "3.png", "4.png"])
    (root / "AIGCIQA2023" / "mos_authenticity.csv").write_text(
        "name,mos\n0.png,25.5\n1.png,35\n2.png,45\n3.png,65\n4.png,75\n")
    ds = AIGCIQA2023(make_cfg(root, TASK="authenticity"))
    got = {d.name: (d.mos, d.label) for d in ds.train_x + ds.test}
    assert got == {"0.png": (25.5, 0), "1.png": (35.0, 1), "2.png": (45.0, 2),
                   "3.png": (65.0, 4), "4.png": (75.0, 5)}


# The header of the all-in-one AIGCIQA2023.csv (pull request 4 of wangjiarui153/AIGCIQA2023;
# the first column is a pandas index without a name).
ALL_IN_ONE_HEADER = (",name,prompt,style,class,quality_mos,authenticity_mos,correspondence_mos,"
                     "quality_std,authenticity_std,correspondence_std")
REAL_ALL_IN_ONE = Path(__file__).resolve().parent / "data" / "aigciqa2023" / "AIGCIQA2023.csv"


def write_all_in_one(path, rows=8):
    """A file of the all-in-one CSV's shape; task k's MOS of image i is 30 + 10 k + i."""
    lines = [ALL_IN_ONE_HEADER] + [
        f"{i},{i}.png,prompt {i // 4},Basic,Animals,{40 + i},{50 + i},{60 + i},1.0,1.0,1.0"
        for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return {"quality": 40.0, "authenticity": 50.0, "correspondence": 60.0}


def mos_by_name(ds):
    return {d.name: d.mos for d in ds.train_x + ds.test}


def test_all_three_tasks_from_the_all_in_one_csv(tmp_path, build_root):
    root = build_root(tmp_path, mats=(), names=[f"{i}.png" for i in range(8)])
    offsets = write_all_in_one(root / "AIGCIQA2023" / "AIGCIQA2023.csv")
    for task, offset in offsets.items():
        ds = AIGCIQA2023(make_cfg(root, TASK=task))
        assert mos_by_name(ds) == {f"{i}.png": offset + i for i in range(8)}
        assert {d.prompt for d in ds.train_x + ds.test} == {"prompt 0", "prompt 1"}
        assert ds.provenance["label_files"][0]["path"].endswith("AIGCIQA2023.csv")


def test_score_lists_and_the_order_of_the_sources(tmp_path, build_root, mos_values):
    root = build_root(tmp_path, mats=(), names=[f"{i}.png" for i in range(8)])
    base = root / "AIGCIQA2023"
    write_all_in_one(base / "AIGCIQA2023.csv")
    (base / "moz3.txt").write_text("\n".join(f"{33 + i}.5" for i in range(8)) + "\n")
    ds = AIGCIQA2023(make_cfg(root, TASK="correspondence"))  # moz3.txt before the CSV
    assert mos_by_name(ds) == {f"{i}.png": 33.5 + i for i in range(8)}
    (base / "mos_correspondence.csv").write_text(
        "name,mos\n" + "".join(f"{i}.png,{70 - i}\n" for i in range(8)))
    ds = AIGCIQA2023(make_cfg(root, TASK="correspondence"))  # mat2csv's CSV before moz3.txt
    assert mos_by_name(ds) == {f"{i}.png": 70.0 - i for i in range(8)}
    ds = AIGCIQA2023(make_cfg(root, TASK="correspondence", LABEL_FILE="AIGCIQA2023.csv"))
    assert mos_by_name(ds) == {f"{i}.png": 60.0 + i for i in range(8)}
    (base / "moz3.txt").write_text("40\n41\nn/a\n")
    with pytest.raises(DatasetError, match=r"moz3.txt: value 2 \('n/a'\) is not a number"):
        AIGCIQA2023(make_cfg(root, TASK="correspondence", LABEL_FILE="moz3.txt"))


@needs_real_aigciqa2023
@pytest.mark.skipif(not REAL_ALL_IN_ONE.is_file(),
                    reason=f"needs the all-in-one AIGCIQA2023.csv in {REAL_ALL_IN_ONE.parent} "
                           "(tests/data/README.md)")
def test_the_real_all_in_one_csv_equals_the_mat_files(mos_values):
    from datasets.aigciqa2023 import read_task_mos

    for k, task in ((1, "quality"), (2, "authenticity")):
        table = read_task_mos(REAL_ALL_IN_ONE, "all", task)
        assert table["name"].tolist() == ALL_NAMES
        # The CSV holds the .mat values printed with 8 to 10 significant digits: 5e-9 is the
        # largest difference found (tests/data/README.md), far below a wrong row (>= 0.01).
        np.testing.assert_allclose(table["mos"].to_numpy(), mos_values(k), rtol=0, atol=5e-9)


def test_each_image_carries_its_generator_by_index(quality):
    """pic-index.xlsx: 400 images per model, in the order Controlnet, DALLE, Glide, Lafite,
    stable-diffusion, Unidiffuser."""
    models = ["Controlnet", "DALLE", "Glide", "Lafite", "stable-diffusion", "Unidiffuser"]
    for d in quality.train_x + quality.test:
        assert d.generator == models[int(d.name[:-4]) // 400]

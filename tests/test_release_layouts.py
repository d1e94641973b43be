"""Databases as their release archives unpack and as users copy them: images found a few folders
down, and when none is found anywhere the message says where they were expected, without
suggesting to turn the check off."""
from __future__ import annotations

import shutil

import pytest

from dassl.config import get_cfg_default
from datasets import AGIQA, AIGCIQA2023, DatasetError, add_dataset_config
from datasets.synthetic import make_synthetic_agiqa, make_synthetic_aigciqa2023

N = 12


def make_cfg(name: str, root) -> object:
    cfg = add_dataset_config(get_cfg_default())
    cfg.DATASET.NAME = name
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.TEST_RATIO = 0.25
    return cfg


def release_layout(root):
    """AIGCIQA2023 as its archive unpacks: DATA/MOS/mosz*.mat and Image/allimg/<i>.png."""
    base = make_synthetic_aigciqa2023(root, n_images=N, sizes=((16, 16),))
    (base / "DATA").mkdir()
    shutil.move(str(base / "MOS"), str(base / "DATA" / "MOS"))
    (base / "Image").mkdir()
    shutil.move(str(base / "allimg"), str(base / "Image" / "allimg"))
    return base


def test_aigciqa2023_release_layout_is_found(tmp_path):
    base = release_layout(tmp_path)
    dataset = AIGCIQA2023(make_cfg("AIGCIQA2023", tmp_path))
    assert dataset.dataset_dir == str(base / "Image" / "allimg")
    assert len(dataset.train_x) + len(dataset.test) == N
    assert all(d.impath.startswith(str(base / "Image" / "allimg")) for d in dataset.test)


def test_agiqa_images_two_folders_down_are_found(tmp_path):
    make_synthetic_agiqa(tmp_path, n_images=N, sizes=((16, 16),))
    base = tmp_path / "AGIQA-3K"
    target = base / "images" / "AGIQA-3K"
    target.mkdir(parents=True)
    for image in base.glob("*.jpg"):
        shutil.move(str(image), str(target / image.name))
    assert AGIQA(make_cfg("AGIQA", tmp_path)).dataset_dir == str(target)


def test_no_image_anywhere_says_where_they_were_expected(tmp_path):
    base = release_layout(tmp_path)
    shutil.rmtree(base / "Image")
    (base / "Image").mkdir()
    with pytest.raises(DatasetError) as info:
        AIGCIQA2023(make_cfg("AIGCIQA2023", tmp_path))
    message = str(info.value)
    assert message.startswith(f"none of the {N} images listed in the label file were found: "
                              f"expected them in {base / 'allimg'} (e.g. 0.png, 1.png")
    assert f"no folder up to 3 levels below {base} holds them either" in message
    assert "CHECK_FILES" not in message


def test_mat2csv_without_arguments_finds_the_release_mos_folder(tmp_path, monkeypatch):
    import pandas as pd
    from scipy.io import loadmat

    import mat2csv

    base = release_layout(tmp_path)
    monkeypatch.chdir(base)
    assert mat2csv.main([]) == 0
    written = pd.read_csv(base / "mos_quality.csv")
    expected = loadmat(base / "DATA" / "MOS" / "mosz1.mat")["MOSz"][:, 0]
    assert written["name"].tolist() == [f"{i}.png" for i in range(N)]
    assert written["mos"].tolist() == expected.tolist()

"""AIGIQA-20K: label files of the real shape built here (the real ones have no known licence;
the real-file checks run only where a user put them in tests/data/aigiqa20k/), both image layouts, the
official membership with a full label file, and the image list for blind predictions."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import score
from datasets import DatasetError
from datasets.aigiqa20k import load_aigiqa20k
from datasets.labels import read_label_table
from synthetic_databases import aigiqa20k_names, make_synthetic_aigiqa20k
from label_files import dataset_options as options

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "tests" / "data" / "aigiqa20k"  # git-ignored: see tests/data/README.md
SMALL = {"train": 2, "val": 1, "test": 1}  # images per model unit: 80 / 40 / 40


@pytest.fixture(scope="module")
def full_size(tmp_path_factory) -> Path:
    """info_{train,val,test}.xlsx of the real shape (14,000 / 2,000 / 4,000) + full.csv."""
    root = tmp_path_factory.mktemp("aigiqa20k")
    make_synthetic_aigiqa20k(root, full_label_file="full.csv")
    return root


def test_default_splits_the_labelled_training_rows(full_size):
    data = load_aigiqa20k(options(full_size, CHECK_FILES=False))
    sizes = {part: len(t) for part, t in data.parts.items()}
    assert sizes == {"train": 11200, "val": 0, "test": 2800}
    info = read_label_table(full_size / "AIGIQA-20K" / "info_train.xlsx", "mos")
    together = pd.concat([data.parts["train"], data.parts["test"]])
    assert sorted(together["name"]) == sorted(info["name"])
    assert [Path(f["path"]).name for f in data.provenance["label_files"]] == ["info_train.xlsx"]


def test_full_label_file_gives_the_official_membership(full_size):
    data = load_aigiqa20k(options(full_size, CHECK_FILES=False, LABEL_FILE="full.csv"))
    names = aigiqa20k_names()
    for part, expected in names.items():
        assert data.parts[part]["name"].tolist() == expected
        assert set(data.parts[part]["folder"]) == {str(full_size / "AIGIQA-20K" / part)}
    assert [len(names[p]) for p in ("train", "val", "test")] == [14000, 2000, 4000]
    assert data.provenance["split"]["mode"] == "official"


def test_blind_list_names_in_file_order(tmp_path):
    base = make_synthetic_aigiqa20k(tmp_path, SMALL, images="split")
    names = aigiqa20k_names(SMALL)["test"]
    listed, _ = score.list_images(str(base / "info_test.xlsx"), [])
    assert [n for n, _ in listed] == names
    assert all(Path(p) == base / "test" / n for n, p in listed)
    (base / "test" / names[5]).unlink()
    with pytest.raises(FileNotFoundError, match=f"1 of the 40 images .* e.g. {names[5]}"):
        score.list_images(str(base / "info_test.xlsx"), [str(base)])


@pytest.mark.parametrize("layout", ["split", "flat"])
def test_both_image_layouts(tmp_path, layout):
    make_synthetic_aigiqa20k(tmp_path, SMALL, images=layout, file_format="csv",
                             full_label_file="all.csv")
    data = load_aigiqa20k(options(tmp_path, LABEL_FILE="all.csv"))
    base = tmp_path / "AIGIQA-20K"
    for part in ("train", "val", "test"):
        expected = base / part if layout == "split" else base
        assert set(data.parts[part]["folder"]) == {str(expected)}
    assert {p: len(t) for p, t in data.parts.items()} == {"train": 80, "val": 40, "test": 40}


def test_errors(tmp_path):
    base = make_synthetic_aigiqa20k(tmp_path, SMALL, file_format="csv")
    full = pd.read_csv(base / "info_train.csv")
    full.iloc[:-1].to_csv(base / "short.csv", index=False)  # lacks train's last name
    with pytest.raises(DatasetError, match=r"lacks 1 of the 80 images of the official train "
                                           r"list, e\.g\. 'SSD1B_\d{4}\.png'"):
        load_aigiqa20k(options(tmp_path, CHECK_FILES=False, LABEL_FILE="short.csv"))
    with pytest.raises(DatasetError, match="LABEL_FILE .*missing.csv not found"):
        load_aigiqa20k(options(tmp_path, CHECK_FILES=False, LABEL_FILE="missing.csv"))
    (base / "info_val.csv").unlink()
    full.to_csv(base / "all.csv", index=False)
    with pytest.raises(DatasetError, match=r"official val list .*info_val.xlsx \(or "
                                           r"info_val.csv\) not found"):
        load_aigiqa20k(options(tmp_path, CHECK_FILES=False, LABEL_FILE="all.csv"))
    pd.DataFrame({"name": ["a.png"], "prompt": ["p"]}).to_csv(base / "info_train.csv",
                                                              index=False)
    with pytest.raises(DatasetError, match=r"info_train.csv lacks column\(s\) \['mos'\]"):
        load_aigiqa20k(options(tmp_path, CHECK_FILES=False))


@pytest.mark.skipif(not REAL.is_dir(), reason=f"needs AIGIQA-20K's real label files: copy "
                    f"info_train.xlsx, info_val.xlsx and info_test.xlsx into {REAL} (see "
                    "tests/data/README.md; they have no known licence to ship)")
def test_real_info_files_have_the_shape_the_synthetic_ones_copy():
    shapes = {}
    for part in ("train", "val", "test"):
        table = read_label_table(REAL / f"info_{part}.xlsx", "mos" if part == "train" else None,
                                 prompt_column="prompt")
        shapes[part] = (len(table), list(table.columns))
        models = sorted({n.rsplit("_", 1)[0] for n in table["name"]})
        assert models == sorted({n.rsplit("_", 1)[0] for n in aigiqa20k_names()[part]})
    assert shapes == {"train": (14000, ["name", "mos", "prompt"]),
                      "val": (2000, ["name", "prompt"]), "test": (4000, ["name", "prompt"])}

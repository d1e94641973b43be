"""Evaluation protocols (configs/protocols) and prompt-disjoint splits (DATASET.SPLIT_MODE)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dassl.config import get_cfg_default, merge_config
from datasets import AGIQA, AIGCIQA2023, DatasetError, add_dataset_config
from datasets.labels import read_label_table
from datasets.prompts import attach_prompts, read_prompt_file
from datasets.splits import group_split_positions, prompt_key, split_table
from datasets.synthetic import make_synthetic_aigciqa2023
from synthetic_databases import write_placeholder_images
from label_files import AGIQA3K_CSV
from scripts.sweeps.spec import format_opt_value, load_protocol, yaml_to_opts
from trainers import add_trainer_config

REPO = Path(__file__).resolve().parents[1]
REAL_CSV = AGIQA3K_CSV  # committed: tests/data/README.md

PROTOCOLS = {  # name -> (SPLIT_MODE, VAL_RATIO, FINAL_MODEL, ALLOW_SELECTION_ON_TEST)
    "paper": ("random", 0.0, "best_val", True),
    "val": ("random", 0.1, "best_val", False),
    "last": ("random", 0.0, "last_step", False),
    "prompt_disjoint": ("prompt", 0.1, "best_val", False),
}


def full_cfg():
    cfg = get_cfg_default()
    add_dataset_config(cfg)
    add_trainer_config(cfg)
    return cfg


def protocol_values(cfg):
    return (cfg.DATASET.SPLIT_MODE, cfg.DATASET.VAL_RATIO, cfg.TEST.FINAL_MODEL,
            cfg.TEST.ALLOW_SELECTION_ON_TEST)


# ----------------------------------------------------------------------------- protocol yamls
@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_protocol_yaml_and_its_opts_give_the_same_config(name):
    path = REPO / "configs" / "protocols" / f"{name}.yaml"
    from_file = merge_config(full_cfg(), [str(path)])
    protocol = load_protocol(name)
    from_opts = merge_config(full_cfg(), opts=list(protocol.opts))
    assert protocol.path == path.resolve()
    assert protocol_values(from_file) == protocol_values(from_opts) == PROTOCOLS[name]
    assert from_file == from_opts  # nothing else differs either


def test_protocols_folder_holds_exactly_the_documented_protocols():
    assert {p.stem for p in (REPO / "configs" / "protocols").glob("*.yaml")} == set(PROTOCOLS)


@pytest.mark.parametrize("value", ["True", "1", "[1, 2]", "best_val", "a photo of a", True, 0.1,
                                   3, [0.5, 1.5], ("a", "b")])
def test_opt_values_survive_yacs_parsing(value):
    cfg = get_cfg_default()
    key_type = {str: "TRAINER.NAME", bool: "USE_CUDA", float: "OPTIM.LR", int: "SEED",
                list: "INPUT.PIXEL_MEAN", tuple: "INPUT.TRANSFORMS"}[type(value)]
    if isinstance(value, list):
        cfg.INPUT.PIXEL_MEAN = [0.0]
    cfg.merge_from_list([key_type, format_opt_value(value)])
    node = cfg
    for part in key_type.split("."):
        node = node[part]
    assert node == value and type(node) is type(value)


def test_yaml_to_opts_flattens_nested_mappings():
    assert yaml_to_opts({"A": {"B": 1, "C": {"D": "x"}}, "E": False}) == \
        ["A.B", "1", "A.C.D", "x", "E", "False"]


# ----------------------------------------------------------------------------- group split
def test_group_split_keeps_groups_whole_and_is_deterministic():
    groups = np.repeat([f"p{i}" for i in range(40)], np.arange(40) % 5 + 1)  # sizes 1..5
    positions = np.arange(len(groups)) + 1000
    kept, held = group_split_positions(positions, groups, 0.25, seed=3)
    assert sorted(np.concatenate([kept, held]).tolist()) == positions.tolist()
    held_groups = set(groups[held - 1000])
    assert held_groups.isdisjoint(groups[kept - 1000])
    assert abs(len(held) - 0.25 * len(groups)) <= 5  # within one group of the target
    again = group_split_positions(positions, groups, 0.25, seed=3)
    assert [a.tolist() for a in again] == [kept.tolist(), held.tolist()]
    other = group_split_positions(positions, groups, 0.25, seed=4)
    assert set(other[1].tolist()) != set(held.tolist())
    # Rows of one group stay together, in their input order.
    first = groups[held[0] - 1000]
    block = held[: int(np.sum(groups == first))]
    assert (np.diff(block) > 0).all() and set(groups[block - 1000]) == {first}


def test_group_split_does_not_depend_on_row_order():
    groups = np.array([f"p{i % 7}" for i in range(50)])
    positions = np.arange(50)
    _, held = group_split_positions(positions, groups, 0.3, seed=0)
    perm = np.random.default_rng(0).permutation(50)
    _, held_perm = group_split_positions(positions[perm], groups[perm], 0.3, seed=0)
    assert set(groups[held]) == set(groups[held_perm])


def test_group_split_needs_two_groups():
    with pytest.raises(DatasetError, match="at least 2"):
        group_split_positions(np.arange(5), np.array(["a"] * 5), 0.2, seed=0)


def test_prompt_key_ignores_case_and_spacing():
    assert prompt_key("  A  cat\tIn Space ") == prompt_key("a cat in space") == "a cat in space"


# ----------------------------------------------------------------------------- real data.csv
@pytest.mark.parametrize("seed", [42, 7])
def test_prompt_split_of_real_agiqa3k_is_disjoint_and_near_the_ratios(seed):
    table = read_label_table(REAL_CSV, "mos_quality", prompt_column="prompt")
    split = split_table(table, 0.2, seed, val_ratio=0.1, mode="prompt")
    parts = split.tables(table)
    prompts = {k: set(v["prompt"].map(prompt_key)) for k, v in parts.items()}
    assert prompts["train"].isdisjoint(prompts["test"])
    assert prompts["train"].isdisjoint(prompts["val"])
    assert prompts["val"].isdisjoint(prompts["test"])
    assert sum(map(len, prompts.values())) == 300  # every prompt in exactly one part
    n = len(table)
    assert len(split.train) + len(split.val) + len(split.test) == n == 2982
    assert abs(len(split.test) - 0.2 * n) <= 10  # a prompt has at most 10 images
    assert abs(len(split.val) - 0.1 * (n - len(split.test))) <= 10
    again = split_table(table, 0.2, seed, val_ratio=0.1, mode="prompt")
    assert all(np.array_equal(getattr(split, p), getattr(again, p))
               for p in ("train", "val", "test"))


def test_random_mode_still_gives_the_reference_split():
    table = read_label_table(REAL_CSV, "mos_quality", prompt_column="prompt")
    assert (len(split_table(table).train), len(split_table(table).test)) == (2385, 597)
    random_test = set(split_table(table).test.tolist())
    assert random_test != set(split_table(table, mode="prompt").test.tolist())


# ----------------------------------------------------------------------------- dataset classes
def dataset_cfg(name, root, **dataset):
    cfg = add_dataset_config(get_cfg_default())
    cfg.DATASET.NAME = name
    cfg.DATASET.ROOT = str(root)
    for key, value in dataset.items():
        cfg.DATASET[key] = value
    return cfg


@pytest.fixture
def agiqa_root(tmp_path):
    """30 images, 6 prompts x 5 images; one prompt written with other case/spacing."""
    names = [f"img_{i:02d}.jpg" for i in range(30)]
    prompts = [f"prompt {i % 6}" for i in range(30)]
    prompts[5] = "  PROMPT   5 "  # same group as "prompt 5"
    folder = tmp_path / "AGIQA-3K"
    write_placeholder_images(folder, names)
    pd.DataFrame({"name": names, "prompt": prompts, "mos_quality": np.linspace(0, 5, 30),
                  "mos_align": np.linspace(5, 0, 30)}).to_csv(folder / "data.csv", index=False)
    return tmp_path


def test_agiqa_prompt_mode_builds_disjoint_parts(agiqa_root):
    ds = AGIQA(dataset_cfg("AGIQA", agiqa_root, SPLIT_MODE="prompt", VAL_RATIO=0.25,
                           TEST_RATIO=0.3))
    table = pd.read_csv(agiqa_root / "AGIQA-3K" / "data.csv")
    key = dict(zip(table["name"], table["prompt"].map(prompt_key)))
    parts = {p: {key[d.name] for d in getattr(ds, p)} for p in ("train_x", "val", "test")}
    assert parts["train_x"].isdisjoint(parts["test"]) and parts["val"].isdisjoint(parts["test"])
    assert parts["train_x"].isdisjoint(parts["val"])
    assert (len(ds.train_x), len(ds.val), len(ds.test)) == (15, 5, 10)  # whole groups of 5
    assert len(parts["test"]) == 2


def test_bad_split_mode_is_rejected(agiqa_root):
    with pytest.raises(DatasetError, match="SPLIT_MODE must be one of"):
        AGIQA(dataset_cfg("AGIQA", agiqa_root, SPLIT_MODE="prompts"))


@pytest.fixture
def aigc_root(tmp_path):
    make_synthetic_aigciqa2023(tmp_path, n_images=24, sizes=((8, 8),))
    return tmp_path


def test_aigciqa2023_prompt_mode_needs_a_prompt_file(aigc_root):
    with pytest.raises(DatasetError, match="DATASET.PROMPT_FILE"):
        AIGCIQA2023(dataset_cfg("AIGCIQA2023", aigc_root, SPLIT_MODE="prompt"))


def test_aigciqa2023_prompt_file_gives_disjoint_parts(aigc_root, tmp_path):
    prompt_of = {f"{i}.png": f"prompt {i // 4}" for i in range(24)}  # 6 prompts x 4 images
    path = tmp_path / "prompts.csv"
    pd.DataFrame({"name": list(prompt_of), "prompt": list(prompt_of.values())}).to_csv(
        path, index=False)
    ds = AIGCIQA2023(dataset_cfg("AIGCIQA2023", aigc_root, SPLIT_MODE="prompt",
                                 PROMPT_FILE=str(path)))
    train = {prompt_of[d.name] for d in ds.train_x}
    test = {prompt_of[d.name] for d in ds.test}
    assert train.isdisjoint(test) and len(ds.train_x) + len(ds.test) == 24
    assert len(ds.test) == 4  # 0.2 * 24 = 4.8 images: one prompt of 4 is closest
    # In random mode the file only supplies the prompts: the reference split is unchanged.
    plain = AIGCIQA2023(dataset_cfg("AIGCIQA2023", aigc_root, PROMPT_FILE=str(path)))
    default = AIGCIQA2023(dataset_cfg("AIGCIQA2023", aigc_root))
    assert [d.name for d in plain.test] == [d.name for d in default.test]
    assert all(d.prompt == prompt_of[d.name] for d in plain.train_x + plain.test)
    assert all(d.prompt is None for d in default.train_x + default.test)


def test_prompt_file_errors_name_the_problem(tmp_path):
    table = pd.DataFrame({"name": ["0.png", "1.png"], "mos": [1.0, 2.0]})
    with pytest.raises(DatasetError, match="not found"):
        read_prompt_file(tmp_path / "missing.csv")
    (tmp_path / "cols.csv").write_text("image,text\n0.png,a\n")
    with pytest.raises(DatasetError, match="lacks column"):
        read_prompt_file(tmp_path / "cols.csv")
    (tmp_path / "dup.csv").write_text("name,prompt\n0.png,a\n0.png,b\n")
    with pytest.raises(DatasetError, match="more than once"):
        read_prompt_file(tmp_path / "dup.csv")
    (tmp_path / "empty.csv").write_text("name,prompt\n0.png,\n")
    with pytest.raises(DatasetError, match="empty prompt"):
        read_prompt_file(tmp_path / "empty.csv")
    (tmp_path / "short.csv").write_text("name,prompt\n0.png,a\n")
    with pytest.raises(DatasetError, match="no prompt for 1 of 2 images, e.g. 1.png"):
        attach_prompts(table, tmp_path / "short.csv")
    (tmp_path / "ok.csv").write_text("name,prompt,extra\n1.png,b,x\n0.png,a,y\n9.png,c,z\n")
    assert attach_prompts(table, tmp_path / "ok.csv")["prompt"].tolist() == ["a", "b"]

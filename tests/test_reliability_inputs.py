"""Bad dataset files and bad config values: one clear `error:` line, exit status 2, no traceback,
found before any training step, and a previous run's files in OUTPUT_DIR left untouched.

Every test feeds one bad input through `train.main` (fixtures in conftest.py).
"""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

import train

from datasets.synthetic import make_synthetic_aigciqa2023

from conftest import REPO

AIGC_YAML = str(REPO / "configs/datasets/AIGCIQA2023.yaml")


def edit_labels(root, change) -> None:
    """Apply ``change(table)`` to AGIQA-3K's data.csv (read as text, so cells stay verbatim)."""
    path = root / "AGIQA-3K" / "data.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(table)
    table.to_csv(path, index=False)


def check_logged(out, message: str) -> None:
    """Errors raised after the log file exists are in it too, and no training step ran."""
    log = (out / "log.txt").read_text()
    assert f"error: {message}" in log
    assert "epoch [" not in log


# ----------------------------------------------------------------- dataset root and label files
def test_missing_root(user_error, tiny_args, sentinel, tmp_path):
    out = tmp_path / "out"
    untouched = sentinel(out)
    message = user_error(tiny_args(out, root=tmp_path / "nowhere"))
    assert f"dataset folder {tmp_path / 'nowhere' / 'AGIQA-3K'} not found" in message
    assert f"{tmp_path / 'nowhere'} does not exist" in message
    assert untouched()
    check_logged(out, message)


def test_missing_dataset_folder(user_error, tiny_args, sentinel, tmp_path):
    root = tmp_path / "root"
    (root / "AGIQA3K").mkdir(parents=True)  # a typo in the folder name
    out = tmp_path / "out"
    untouched = sentinel(out)
    message = user_error(tiny_args(out, root=root))
    assert "AGIQA-3K not found" in message and "contains: AGIQA3K/" in message
    assert untouched()


def test_missing_label_file(user_error, tiny_args, tiny_data, sentinel, tmp_path):
    (tiny_data / "AGIQA-3K" / "data.csv").unlink()
    untouched = sentinel(tmp_path / "out")
    message = user_error(tiny_args(tmp_path / "out", root=tiny_data))
    assert f"label file {tiny_data / 'AGIQA-3K' / 'data.csv'} not found" in message
    assert "contains: AttnGAN_normal_000.jpg" in message
    assert untouched()


def test_label_file_missing_column(user_error, tiny_args, tiny_data, sentinel, tmp_path):
    edit_labels(tiny_data, lambda t: t.pop("mos_quality"))
    untouched = sentinel(tmp_path / "out")
    message = user_error(tiny_args(tmp_path / "out", root=tiny_data))
    assert "lacks column(s) ['mos_quality']" in message and "mos_align" in message
    assert untouched()


def test_label_file_non_numeric_mos(user_error, tiny_args, tiny_data, sentinel, tmp_path):
    edit_labels(tiny_data, lambda t: t.__setitem__("mos_quality", t["mos_quality"].where(
        t.index != 3, "n/a")))
    untouched = sentinel(tmp_path / "out")
    message = user_error(tiny_args(tmp_path / "out", root=tiny_data))
    assert "column 'mos_quality' is not numeric at data row 3" in message and "'n/a'" in message
    assert untouched()


def test_label_file_nan_mos(user_error, tiny_args, tiny_data, sentinel, tmp_path):
    edit_labels(tiny_data, lambda t: t.__setitem__("mos_quality", t["mos_quality"].where(
        t.index != 5, "")))
    untouched = sentinel(tmp_path / "out")
    message = user_error(tiny_args(tmp_path / "out", root=tiny_data))
    assert "MOS is missing or not finite (nan) at data row 5" in message
    assert untouched()


def test_label_file_duplicate_names(user_error, tiny_args, tiny_data, sentinel, tmp_path):
    edit_labels(tiny_data, lambda t: t.__setitem__("name", t["name"].where(
        t.index != 7, t["name"][2])))
    untouched = sentinel(tmp_path / "out")
    message = user_error(tiny_args(tmp_path / "out", root=tiny_data))
    assert "duplicate image name" in message and "data rows [2, 7]" in message
    assert untouched()


# ----------------------------------------------------------------- images
def test_listed_images_missing(user_error, tiny_args, tiny_data, sentinel, tmp_path):
    names = sorted(p.name for p in (tiny_data / "AGIQA-3K").glob("*.jpg"))[:3]
    for name in names:
        (tiny_data / "AGIQA-3K" / name).unlink()
    out = tmp_path / "out"
    untouched = sentinel(out)
    message = user_error(tiny_args(out, root=tiny_data))
    assert "3 of 40 images listed in the label file are missing" in message
    assert all(name in message for name in names)
    assert untouched()
    check_logged(out, message.splitlines()[0])


@pytest.mark.parametrize("damage", ["truncated", "not_an_image"])
def test_unreadable_image_is_named(damage, user_error, tiny_args, tiny_data, sentinel, tmp_path):
    bad = sorted((tiny_data / "AGIQA-3K").glob("*.jpg"))[4]
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not an image")
    out = tmp_path / "out"
    untouched = sentinel(out)
    message = user_error(tiny_args(out, root=tiny_data))
    assert "1 of 40 images cannot be read" in message and str(bad) in message
    assert ("truncated" if damage == "truncated" else "cannot identify image file") in message
    assert "DATASET.SKIP_BAD_IMAGES True" in message
    assert untouched()


# ----------------------------------------------------------------- AIGCIQA2023 .mat files
@pytest.fixture(scope="module")
def aigc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("aigc")
    make_synthetic_aigciqa2023(root, n_images=20, sizes=((32, 32),))
    return root


@pytest.fixture
def aigc_copy(aigc_root, tmp_path):
    shutil.copytree(aigc_root, tmp_path / "aigc")
    return tmp_path / "aigc"


def test_mat_file_missing(user_error, tiny_args, aigc_copy, sentinel, tmp_path):
    shutil.rmtree(aigc_copy / "AIGCIQA2023" / "MOS")
    untouched = sentinel(tmp_path / "out")
    message = user_error(tiny_args(tmp_path / "out", root=aigc_copy, dataset_yaml=AIGC_YAML))
    assert "AIGCIQA2023 quality MOS not found" in message
    assert "MOS/mosz1.mat (variable MOSz)" in message and "contains: allimg/" in message
    assert untouched()


def test_mat_file_without_mosz(user_error, tiny_args, aigc_copy, sentinel, tmp_path):
    savemat(aigc_copy / "AIGCIQA2023" / "MOS" / "mosz1.mat", {"scores": np.ones((20, 1))})
    untouched = sentinel(tmp_path / "out")
    message = user_error(tiny_args(tmp_path / "out", root=aigc_copy, dataset_yaml=AIGC_YAML))
    assert "has no variable 'MOSz'; it holds ['scores']" in message
    assert untouched()


def test_mat_file_wrong_length(user_error, tiny_args, aigc_copy, sentinel, tmp_path):
    savemat(aigc_copy / "AIGCIQA2023" / "MOS" / "mosz1.mat", {"MOSz": np.full((18, 1), 50.0)})
    untouched = sentinel(tmp_path / "out")
    message = user_error(tiny_args(tmp_path / "out", root=aigc_copy, dataset_yaml=AIGC_YAML))
    assert "wrong MOS length" in message and "has 18 rows" in message
    assert "2 numbered image(s) beyond them (18.png .. 19.png)" in message
    assert untouched()


# ----------------------------------------------------------------- config
CONFIG_CASES = {
    "unknown_key": (["TRAINER.CLIP_AGIQA.NCTX", "8"],
                    "Non-existent config key: TRAINER.CLIP_AGIQA.NCTX (did you mean "
                    "TRAINER.CLIP_AGIQA.N_CTX?)"),
    "wrong_type": (["OPTIM.MAX_EPOCH", "ten"], "Type mismatch"),
    "odd_opts": (["OPTIM.LR"], "KEY VALUE pairs"),
    "flag_after_opts": (["--eval-only"], "--eval-only comes after the KEY VALUE config options"),
    "prec": (["TRAINER.CLIP_AGIQA.PREC", "fp8"], "TRAINER.CLIP_AGIQA.PREC must be one of"),
    "class_token_position": (["TRAINER.CLIP_AGIQA.CLASS_TOKEN_POSITION", "left"],
                             "CLASS_TOKEN_POSITION must be one of"),
    "n_ctx_too_large": (["TRAINER.CLIP_AGIQA.N_CTX", "80"], "Prompt too long: N_CTX=80"),
    "thresholds_not_increasing": (["DATASET.LEVEL_THRESHOLDS", "[1.0, 3.0, 2.0, 4.0, 4.5]"],
                                  "must be strictly increasing, but [1]=3.0 >= [2]=2.0"),
    "thresholds_vs_names": (["DATASET.LEVEL_THRESHOLDS", "[1.0, 2.0]"],
                            "must have len(LEVEL_NAMES) - 1 = 5 values"),
    "final_model": (["TEST.FINAL_MODEL", "best"], "TEST.FINAL_MODEL must be one of"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config_value(case, user_error, tiny_args, sentinel, tmp_path):
    opts, expected = CONFIG_CASES[case]
    out = tmp_path / "out"
    untouched = sentinel(out)
    message = user_error(tiny_args(out, *opts))
    assert expected in message
    assert untouched()
    # Checked before OUTPUT_DIR is touched at all (no log, no run record).
    assert sorted(p.name for p in out.iterdir()) == ["predictions.csv", "prompt_learner"]


def test_level_names_do_not_match_default_thresholds(user_error, tiny_args, sentinel, tmp_path):
    untouched = sentinel(tmp_path / "out")
    message = user_error(tiny_args(tmp_path / "out", "DATASET.LEVEL_NAMES", "['bad', 'good']"))
    assert "must have len(LEVEL_NAMES) - 1 = 1 values" in message
    assert untouched()


def test_missing_and_broken_config_files(user_error, tiny_args, tmp_path):
    args = tiny_args(tmp_path / "out")
    missing = args[:args.index("--config-file") + 1] + [str(tmp_path / "nope.yaml")] + \
        args[args.index("--config-file") + 2:]
    assert user_error(missing).startswith(f"Config file not found: {tmp_path / 'nope.yaml'}")
    broken = tmp_path / "broken.yaml"
    broken.write_text("OPTIM: [unclosed\n")
    message = user_error(missing[:missing.index("--config-file") + 1] + [str(broken)]
                         + missing[missing.index("--config-file") + 2:])
    assert message.startswith("invalid config:") and "flow sequence" in message
    assert f"config file {broken} is not valid yaml at line 2, column 1" in message
    assert len(message.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, content, expected", [
    ("weights.pt", b"\x80\x02binary", "is not a yaml file (expected a name ending in .yaml or .yml)"),
    ("latin1.yaml", "OPTIM: {LR: 0.1}  # \xe9t\xe9\n".encode("latin-1"), "is not UTF-8 text"),
    ("list.yaml", b"- OPTIM\n- LR\n", "must hold a yaml mapping of config keys"),
])
def test_a_config_file_that_is_not_a_yaml_mapping_is_one_error_line(user_error, tiny_args,
                                                                     tmp_path, name, content,
                                                                     expected):
    path = tmp_path / name
    path.write_bytes(content)
    args = tiny_args(tmp_path / "out")
    args[args.index("--config-file") + 1] = str(path)
    message = user_error(args)
    assert message == f"invalid config: config file {path} {expected}" or \
        message.startswith(f"invalid config: config file {path} {expected}")
    assert len(message.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_an_output_dir_that_cannot_be_made_is_one_error_line(user_error, tiny_args, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    message = user_error(tiny_args(blocker / "run"))
    assert "Not a directory" in message and str(blocker / "run") in message


def test_unknown_trainer(user_error, tiny_args, tmp_path):
    args = tiny_args(tmp_path / "out")
    args[args.index("--trainer") + 1] = "CLIP_AQIGA"
    message = user_error(args)
    assert "CLIP_AQIGA does not exist in the 'TRAINER' registry" in message
    assert "did you mean CLIP_AGIQA?" in message


def test_no_arguments_prints_usage_with_an_example(capsys):
    with pytest.raises(SystemExit) as info:
        train.main([])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    assert err.startswith("usage: ") and "--trainer CLIP_AGIQA" in err
    assert "--dataset-config-file configs/datasets/AGIQA.yaml" in err


@pytest.mark.parametrize("drop, expected", [
    ("--trainer", "no trainer given: pass --trainer CLIP_AGIQA"),
    ("--dataset-config-file", "no dataset given: pass --dataset-config-file"),
])
def test_missing_trainer_or_dataset_says_which_flag(drop, expected, user_error, tiny_args,
                                                     tmp_path):
    args = tiny_args(tmp_path / "out")
    at = args.index(drop)
    message = user_error(args[:at] + args[at + 2:])
    assert message.startswith(expected)
    assert not (tmp_path / "out").exists()


def test_help_hides_the_coop_only_flags_which_stay_accepted(capsys, tiny_args, tmp_path):
    with pytest.raises(SystemExit) as info:
        train.main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "example (train on AGIQA-3K" in out
    assert not {"--source-domains", "--target-domains", "--head"} & set(out.split())
    args = tiny_args(tmp_path / "out", flags=["--source-domains", "a", "--target-domains", "b",
                                              "--head", "mlp", "--no-train"])
    assert train.main(args) is None  # parsed and built as before


def test_a_run_folder_made_by_a_command_that_failed_on_bad_input_is_removed(user_error, tiny_args,
                                                                           tmp_path):
    out = tmp_path / "new" / "run"
    message = user_error(tiny_args(out, root=tmp_path / "nowhere"))
    assert "does not exist" in message
    assert not out.exists()  # the existing-folder case keeps its log: test_missing_root

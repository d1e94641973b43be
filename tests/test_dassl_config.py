"""dassl.config: defaults, one declaration per key, merge order and yacs validation."""
import os
import re

import pytest

from dassl.config import get_cfg_default, load_config_file, merge_config
from dassl.utils.errors import ConfigError

DEFAULTS_FILE = os.path.join(os.path.dirname(__file__), os.pardir, "dassl", "config", "defaults.py")


def test_public_defaults_of_the_reference():
    cfg = get_cfg_default()
    expected = {
        "OUTPUT_DIR": "./output", "RESUME": "", "SEED": -1, "USE_CUDA": True, "VERBOSE": True,
        "INPUT.SIZE": (224, 224), "INPUT.INTERPOLATION": "bilinear", "INPUT.TRANSFORMS": (),
        "INPUT.NO_TRANSFORM": False, "INPUT.PIXEL_MEAN": [0.485, 0.456, 0.406],
        "INPUT.PIXEL_STD": [0.229, 0.224, 0.225], "INPUT.RRCROP_SCALE": (0.08, 1.0),
        "DATASET.ROOT": "", "DATASET.NAME": "", "DATASET.SOURCE_DOMAINS": (),
        "DATASET.TARGET_DOMAINS": (), "DATASET.NUM_SHOTS": -1,
        "DATALOADER.NUM_WORKERS": 4, "DATALOADER.K_TRANSFORMS": 1, "DATALOADER.RETURN_IMG0": False,
        "DATALOADER.TRAIN_X.SAMPLER": "RandomSampler", "DATALOADER.TRAIN_X.BATCH_SIZE": 32,
        "DATALOADER.TRAIN_X.N_DOMAIN": 0, "DATALOADER.TRAIN_X.N_INS": 16,
        "DATALOADER.TEST.SAMPLER": "SequentialSampler", "DATALOADER.TEST.BATCH_SIZE": 32,
        "MODEL.BACKBONE.NAME": "", "MODEL.INIT_WEIGHTS": "",
        "OPTIM.NAME": "adam", "OPTIM.LR": 0.0003, "OPTIM.WEIGHT_DECAY": 5e-4, "OPTIM.MOMENTUM": 0.9,
        "OPTIM.SGD_DAMPNING": 0, "OPTIM.SGD_NESTEROV": False, "OPTIM.RMSPROP_ALPHA": 0.99,
        "OPTIM.ADAM_BETA1": 0.9, "OPTIM.ADAM_BETA2": 0.999, "OPTIM.STAGED_LR": False,
        "OPTIM.NEW_LAYERS": (), "OPTIM.BASE_LR_MULT": 0.1, "OPTIM.LR_SCHEDULER": "single_step",
        "OPTIM.STEPSIZE": (-1,), "OPTIM.GAMMA": 0.1, "OPTIM.MAX_EPOCH": 10,
        "OPTIM.WARMUP_EPOCH": -1, "OPTIM.WARMUP_TYPE": "linear", "OPTIM.WARMUP_CONS_LR": 1e-5,
        "OPTIM.WARMUP_MIN_LR": 1e-5, "OPTIM.WARMUP_RECOUNT": True,
        "TRAIN.CHECKPOINT_FREQ": 0, "TRAIN.PRINT_FREQ": 10,
        "TEST.EVALUATOR": "IQA", "TEST.PER_CLASS_RESULT": False, "TEST.COMPUTE_CMAT": False,
        "TEST.NO_TEST": False, "TEST.SPLIT": "test", "TEST.FINAL_MODEL": "last_step",
        "TEST.ALLOW_SELECTION_ON_TEST": False, "TEST.NUM_CROPS": 1, "DETERMINISTIC": False,
        "TRAINER.NAME": "",
    }
    for key, value in expected.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == value and type(node) is type(value), key


def test_defaults_are_a_fresh_copy():
    a = get_cfg_default()
    a.OPTIM.LR = 1.0
    assert get_cfg_default().OPTIM.LR == 0.0003


def test_every_key_declared_once_with_a_comment():
    with open(DEFAULTS_FILE, encoding="utf-8") as f:
        lines = [ln for ln in f if ln.startswith("_C.")]
    keys = []
    for ln in lines:
        m = re.match(r"_C\.([A-Z0-9_.]+) = (.*)$", ln.rstrip("\n"))
        assert m, ln
        if m.group(2).startswith("CN()"):
            continue
        assert "  # " in m.group(2), f"missing comment: {ln}"
        keys.append(m.group(1))
    assert len(keys) == len(set(keys))

    def leaves(node, prefix=""):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from leaves(v, prefix + k + ".")
            else:
                yield prefix + k
    assert sorted(leaves(get_cfg_default())) == sorted(keys)


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_merge_order_defaults_dataset_method_cli_opts(tmp_path):
    dataset_yaml = _write(tmp_path / "ds.yaml",
                          'DATASET:\n  NAME: "AGIQA"\nOPTIM:\n  LR: 0.1\n  MAX_EPOCH: 7\n')
    method_yaml = _write(tmp_path / "method.yaml", "\n".join([
        "OPTIM:", '  NAME: "sgd"', "  LR: 0.002", "  MAX_EPOCH: 100", "  WARMUP_CONS_LR: 1e-5",
        "INPUT:", '  SIZE: (224, 224)', '  TRANSFORMS: ["random_resized_crop", "random_flip", "normalize"]',
        "  PIXEL_MEAN: [0.48145466, 0.4578275, 0.40821073]", ""]))
    cfg = get_cfg_default()
    merge_config(cfg, [dataset_yaml, method_yaml, ""])
    assert cfg.DATASET.NAME == "AGIQA"  # dataset yaml only
    assert cfg.OPTIM.LR == 0.002  # method yaml overrides dataset yaml
    assert cfg.OPTIM.WARMUP_CONS_LR == 1e-5 and isinstance(cfg.OPTIM.WARMUP_CONS_LR, float)
    assert cfg.INPUT.SIZE == (224, 224)
    assert cfg.INPUT.TRANSFORMS == ("random_resized_crop", "random_flip", "normalize")
    cfg.SEED = 0  # a CLI flag, applied between the files and the opts
    cfg.OUTPUT_DIR = "from-cli"
    merge_config(cfg, opts=["OPTIM.MAX_EPOCH", "5", "TEST.FINAL_MODEL", "best_val",
                            "OUTPUT_DIR", "from-opts", "TEST.ALLOW_SELECTION_ON_TEST", "True"])
    assert cfg.OPTIM.MAX_EPOCH == 5  # opts override the yaml files
    assert cfg.TEST.FINAL_MODEL == "best_val"
    assert cfg.OUTPUT_DIR == "from-opts"  # opts override CLI flags
    assert cfg.TEST.ALLOW_SELECTION_ON_TEST is True
    assert cfg.SEED == 0


def test_unknown_keys_rejected(tmp_path):
    cfg = get_cfg_default()
    with pytest.raises(KeyError, match="OPTIM.LEARNING_RATE"):
        merge_config(cfg, opts=["OPTIM.LEARNING_RATE", "0.1"])
    bad = _write(tmp_path / "bad.yaml", "TRAINER:\n  COOP:\n    N_CTX: 8\n")
    with pytest.raises(KeyError):
        merge_config(get_cfg_default(), [bad])


@pytest.mark.parametrize("opts", [
    ["OPTIM.MAX_EPOCH", "abc"],  # str for int
    ["TEST.NO_TEST", "yes"],  # str for bool
    ["OPTIM.SGD_DAMPNING", "0.0"],  # float for int
    ["INPUT.SIZE", "224"],  # int for tuple
])
def test_wrong_types_rejected(opts):
    with pytest.raises(ValueError):
        merge_config(get_cfg_default(), opts=opts)


def test_merge_helper_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        merge_config(get_cfg_default(), [str(tmp_path / "missing.yaml")])
    with pytest.raises(ValueError, match="KEY VALUE"):
        merge_config(get_cfg_default(), opts=["OPTIM.LR"])


def test_whole_numbers_are_taken_for_float_keys(tmp_path):
    cfg = get_cfg_default()
    yaml_file = tmp_path / "opts.yaml"
    yaml_file.write_text("OPTIM:\n  LR: 1\n")
    merge_config(cfg, [str(yaml_file)], opts=["OPTIM.WEIGHT_DECAY", "0"])
    assert cfg.OPTIM.LR == 1.0 and isinstance(cfg.OPTIM.LR, float)
    assert cfg.OPTIM.WEIGHT_DECAY == 0.0 and isinstance(cfg.OPTIM.WEIGHT_DECAY, float)
    with pytest.raises(ValueError, match="Type mismatch"):  # an int key still wants an int
        merge_config(cfg, opts=["OPTIM.MAX_EPOCH", "1.5"])


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_base_files_are_merged_first_and_may_name_bases(tmp_path):
    write(tmp_path / "a/root.yaml", "OPTIM:\n  LR: 0.5\n  MAX_EPOCH: 3\nTRAIN:\n  PRINT_FREQ: 7\n")
    write(tmp_path / "b/middle.yaml", "_BASE_: ../a/root.yaml\nOPTIM:\n  LR: 0.25\n")
    leaf = write(tmp_path / "b/c/leaf.yaml", "_BASE_: ../middle.yaml\nOPTIM:\n  MAX_EPOCH: 9\n")
    assert load_config_file(leaf) == {"OPTIM": {"LR": 0.25, "MAX_EPOCH": 9},
                                      "TRAIN": {"PRINT_FREQ": 7}}
    cfg = merge_config(get_cfg_default(), [leaf])
    assert (cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH, cfg.TRAIN.PRINT_FREQ) == (0.25, 9, 7)


def test_an_unknown_key_in_a_base_names_the_file_that_was_given(tmp_path):
    write(tmp_path / "root.yaml", "OPTIM:\n  LRR: 0.5\n")
    leaf = write(tmp_path / "leaf.yaml", "_BASE_: root.yaml\n")
    with pytest.raises(KeyError, match=r"OPTIM.LRR .*leaf.yaml"):
        merge_config(get_cfg_default(), [leaf])


def test_a_missing_or_circular_base_is_one_config_error_naming_the_files(tmp_path):
    leaf = write(tmp_path / "leaf.yaml", "_BASE_: gone.yaml\nOPTIM:\n  LR: 0.1\n")
    with pytest.raises(ConfigError, match=r"leaf.yaml names _BASE_ gone.yaml, but .*gone.yaml "
                                          r"does not exist"):
        load_config_file(leaf)
    one = write(tmp_path / "one.yaml", "_BASE_: two.yaml\n")
    write(tmp_path / "two.yaml", "_BASE_: one.yaml\n")
    with pytest.raises(ConfigError, match=r"in a circle: .*one.yaml -> .*two.yaml -> .*one.yaml"):
        load_config_file(one)
    itself = write(tmp_path / "self.yaml", "_BASE_: self.yaml\n")
    with pytest.raises(ConfigError, match="in a circle"):
        load_config_file(itself)
    with pytest.raises(ConfigError, match="must be the path of one yaml file"):
        load_config_file(write(tmp_path / "list.yaml", "_BASE_: [one.yaml]\n"))


def test_train_reports_a_bad_base_as_one_error_line(tmp_path, capsys):
    import train
    from dassl.utils import EXIT_USER_ERROR

    one = write(tmp_path / "one.yaml", "_BASE_: two.yaml\n")
    write(tmp_path / "two.yaml", "_BASE_: one.yaml\n")
    with pytest.raises(SystemExit) as info:
        train.main(["--trainer", "CLIP_AGIQA", "--config-file", one,
                    "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert info.value.code == EXIT_USER_ERROR and "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "one.yaml -> " in lines[0] and "two.yaml" in lines[0], err
    assert not (tmp_path / "out").exists()

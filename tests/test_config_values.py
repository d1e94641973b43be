"""Config values that torch or our builders used to reject only once the run folder was written
(a traceback, exit 1, a half-made folder) are checked with the other config checks: one
`error:` line naming the key, exit status 2, and no folder left behind."""
from __future__ import annotations

import pytest

from dassl.config import get_cfg_default
from dassl.optim import check_optim_cfg
from dassl.utils import ConfigError


@pytest.mark.parametrize("opts, start", [
    (["OPTIM.NAME", "adm"], "OPTIM.NAME must be one of"),
    (["OPTIM.LR", "-1"], "OPTIM.LR must be > 0, got -1"),
    (["OPTIM.LR", "0"], "OPTIM.LR must be > 0, got 0"),
    (["OPTIM.WEIGHT_DECAY", "-0.1"], "OPTIM.WEIGHT_DECAY must be >= 0"),
    (["OPTIM.MOMENTUM", "-0.5"], "OPTIM.MOMENTUM must be >= 0"),
    (["OPTIM.ADAM_BETA2", "1.0"], "OPTIM.ADAM_BETA2 must be in [0, 1)"),
    (["OPTIM.MAX_EPOCH", "0"], "OPTIM.MAX_EPOCH must be >= 1 to train, got 0"),
    (["OPTIM.MAX_EPOCH", "-2"], "OPTIM.MAX_EPOCH must be a whole number >= 1"),
    (["OPTIM.LR_SCHEDULER", "cosin"], "OPTIM.LR_SCHEDULER must be one of"),
    (["OPTIM.GAMMA", "0"], "OPTIM.GAMMA must be > 0"),
    (["OPTIM.WARMUP_EPOCH", "1", "OPTIM.WARMUP_TYPE", "linar"],
     "OPTIM.WARMUP_TYPE must be one of"),
    (["OPTIM.WARMUP_EPOCH", "1", "OPTIM.WARMUP_TYPE", "constant", "OPTIM.WARMUP_CONS_LR", "-1"],
     "OPTIM.WARMUP_CONS_LR must be > 0"),
    (["OPTIM.NAME", "sgd", "OPTIM.SGD_NESTEROV", "True", "OPTIM.MOMENTUM", "0"],
     "OPTIM.SGD_NESTEROV True needs OPTIM.MOMENTUM > 0"),
    (["DATALOADER.NUM_WORKERS", "-3"], "DATALOADER.NUM_WORKERS must be a whole number >= 0"),
    (["DATALOADER.TRAIN_X.BATCH_SIZE", "0"], "DATALOADER.TRAIN_X.BATCH_SIZE must be a whole "
                                             "number >= 1"),
    (["DATALOADER.TEST.BATCH_SIZE", "-1"], "DATALOADER.TEST.BATCH_SIZE must be a whole number"),
    (["DATALOADER.K_TRANSFORMS", "0"], "DATALOADER.K_TRANSFORMS must be a whole number >= 1"),
    (["DATALOADER.TRAIN_X.SAMPLER", "Random"], "DATALOADER.TRAIN_X.SAMPLER must be one of"),
    (["TRAIN.PRINT_FREQ", "0"], "TRAIN.PRINT_FREQ must be a whole number >= 1"),
    (["INPUT.PIXEL_STD", "[0.0, 0.1, 0.1]"], "INPUT.PIXEL_STD must be 3 numbers > 0"),
    (["INPUT.PIXEL_STD", "[0.1, 0.1]"], "INPUT.PIXEL_STD must be 3 numbers"),
    (["INPUT.TRANSFORMS", "['gaussian_blur']", "INPUT.GB_K", "4"], "INPUT.GB_K must be odd"),
    (["INPUT.RRCROP_SCALE", "(0.9, 0.1)"], "INPUT.RRCROP_SCALE must be (low, high) with"),
    (["INPUT.GB_P", "1.5"], "INPUT.GB_P must be a probability in [0, 1]"),
])
def test_bad_optim_and_loader_values_fail_before_the_run_folder(opts, start, user_error,
                                                                tiny_args, tmp_path):
    message = user_error(tiny_args(tmp_path / "out", *opts))
    assert message.startswith(start), message
    assert not (tmp_path / "out").exists()


def test_a_mistyped_resume_folder_is_refused_not_trained_from_scratch(user_error, tiny_args,
                                                                      tmp_path):
    missing = tmp_path / "no_such_run"
    message = user_error(tiny_args(tmp_path / "out", flags=["--resume", str(missing)]))
    assert message.startswith(f"--resume {missing} not found"), message
    assert not (tmp_path / "out").exists()


def test_max_epoch_zero_is_allowed_only_for_evaluation():
    """The OPTIM check itself accepts MAX_EPOCH 0 (an --eval-only run trains nothing); train.py
    refuses it when training (tested above)."""
    cfg = get_cfg_default()
    cfg.OPTIM.MAX_EPOCH = 0
    check_optim_cfg(cfg.OPTIM)
    cfg.OPTIM.MAX_EPOCH = 1.5
    with pytest.raises(ConfigError, match="OPTIM.MAX_EPOCH"):
        check_optim_cfg(cfg.OPTIM)


def test_the_default_and_shipped_optim_values_pass():
    cfg = get_cfg_default()
    check_optim_cfg(cfg.OPTIM)


@pytest.mark.parametrize("text, expected", [
    ("OPTIM:\n  MAX_EPOCHS: 3\n",
     "Non-existent config key: OPTIM.MAX_EPOCHS (did you mean OPTIM.MAX_EPOCH?)"),
    ("OPTIMS:\n  MAX_EPOCH: 3\n", "Non-existent config key: OPTIMS (did you mean OPTIM"),
    ("OPTIM:\n  MAX_EPOCH: ten\n", "Type mismatch"),
])
def test_a_bad_key_in_a_yaml_file_names_the_file(text, expected, user_error, tiny_args,
                                                   tmp_path):
    """A typo inside a --config-file gets the same did-you-mean as on the command line, and
    the message names the file."""
    bad = tmp_path / "typo.yaml"
    bad.write_text(text)
    argv = tiny_args(tmp_path / "out")
    argv[argv.index("--config-file") + 1] = str(bad)
    message = user_error(argv)
    assert expected in message, message
    assert message.endswith(f" in config file {bad}"), message
    assert not (tmp_path / "out").exists()

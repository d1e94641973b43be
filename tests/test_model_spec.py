"""The model spec: built once from the config, saved with the weights, enough to rebuild them."""
from __future__ import annotations

import shutil

import pytest
import torch

import train
from dassl.config import get_cfg_default
from trainers import load_scorer
from trainers.inference.run_model import TrainedRun
from trainers.method.model_spec import SPEC_VERSION, ModelSpec, add_trainer_config
from trainers.method.precision import resolve_precision

LEVELS = ("terrible", "bad", "poor", "average", "good", "perfect")


def method_cfg(**keys):
    cfg = get_cfg_default()
    add_trainer_config(cfg)
    for key, value in keys.items():
        cfg.TRAINER.CLIP_AGIQA[key] = value
    return cfg


def test_from_config_reads_every_model_key():
    cfg = method_cfg(N_CTX=8, CSC=True, CLASS_TOKEN_POSITION="middle", HEAD_INPUT="text",
                     STANDARDIZE_TARGET=True, PREC="amp", PIPELINE="reference")
    cfg.MODEL.BACKBONE.NAME = "RN50"
    spec = ModelSpec.from_config(cfg, LEVELS)
    assert (spec.backbone, spec.level_names, spec.n_ctx, spec.csc) == ("RN50", LEVELS, 8, True)
    assert (spec.class_token_position, spec.head_input, spec.standardize_target,
            spec.precision, spec.test_input.pipeline) == ("middle", "text", True, "amp",
                                                          "reference")
    assert spec.test_input.size == (224, 224) and spec.version == SPEC_VERSION
    # CTX_INIT sets the context length by its BPE tokens ("aigc" is more than one).
    assert ModelSpec.from_config(method_cfg(CTX_INIT="an aigc image"), LEVELS).n_ctx > 3


def test_to_dict_is_plain_data_and_round_trips(tmp_path):
    spec = ModelSpec.from_config(method_cfg(CTX_INIT="a photo of a"), LEVELS)
    path = tmp_path / "spec.pt"
    torch.save({"model_spec": spec.to_dict()}, path)
    loaded = torch.load(path, weights_only=True)["model_spec"]
    assert ModelSpec.from_dict(loaded) == spec
    for version in (SPEC_VERSION - 1, SPEC_VERSION + 1):
        with pytest.raises(ValueError, match="version"):
            ModelSpec.from_dict(dict(loaded, version=version))
    with pytest.raises(ValueError, match="unknown entries"):
        ModelSpec.from_dict(dict(loaded, wings=2))


def test_checkpoints_carry_the_spec_and_rebuild_without_config_yaml(tiny_args, tmp_path):
    out = tmp_path / "run"
    train.main(tiny_args(out, "TRAINER.CLIP_AGIQA.STANDARDIZE_TARGET", "True"))
    for module in ("prompt_learner", "regression"):
        checkpoint = torch.load(out / module / "model.pth.tar-1", weights_only=True)
        stored = ModelSpec.from_dict(checkpoint["model_spec"])
        # The effective precision: PREC fp16 (the yaml's) runs in CPU_PREC auto's choice on a
        # CPU (bf16 or fp32, read from this CPU's flags).
        assert stored.precision == resolve_precision("fp16", "cpu", "auto")
        assert stored.standardize_target
        assert stored.level_names == LEVELS and stored.n_ctx == 4
    with_config = load_scorer(out)
    weights_only = tmp_path / "weights_only"
    for module in ("prompt_learner", "regression"):
        shutil.copytree(out / module, weights_only / module)
    alone = load_scorer(weights_only)
    # The saved spec is the source whether or not config.yaml lies beside the weights.
    assert (with_config.run.config_source, alone.run.config_source) == ("model_spec",
                                                                         "model_spec")
    images = torch.rand(3, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(alone(images), with_config(images), rtol=0, atol=0)
    with pytest.raises(ValueError, match="do not pass other ones"):
        load_scorer(weights_only, level_names=["bad", "good"])


def test_head_dropout_goes_from_the_key_to_both_dropout_layers():
    from clip import clip
    from clip.random_weights import random_state_dict
    from trainers.method.custom_clip import CustomCLIP

    assert ModelSpec.from_config(method_cfg(), LEVELS).head_dropout == 0.5  # upstream
    spec = ModelSpec.from_config(method_cfg(HEAD_DROPOUT=0.2), LEVELS)
    model = CustomCLIP.from_spec(spec, clip.build_model(random_state_dict("tiny-vit")).float())
    assert (model.regression[0].p, model.regression[3].p) == (0.2, 0.2)
    with pytest.raises(ValueError, match="HEAD_DROPOUT must be a probability"):
        ModelSpec.from_config(method_cfg(HEAD_DROPOUT=1.0), LEVELS)


def test_every_model_key_goes_to_the_spec_and_back():
    """Every key the spec reads survives the checkpoint's plain data, so eval-only and the
    scorer rebuild the model a spec describes (a new option needs no line there)."""
    from dataclasses import fields

    cfg = method_cfg(N_CTX=8, CSC=True, CLASS_TOKEN_POSITION="middle", HEAD_INPUT="text",
                     HEAD_DROPOUT=0.3, STANDARDIZE_TARGET=True, TRAIN_IMAGE_ENCODER="lora",
                     ENCODER_LAST_K=3, LORA_RANK=2, PREC="amp", CPU_PREC="fp32",
                     PIPELINE="reference")
    spec = ModelSpec.from_config(cfg, LEVELS)
    defaults = ModelSpec.from_config(method_cfg(), LEVELS)
    changed = {f.name for f in fields(ModelSpec)
               if getattr(spec, f.name) != getattr(defaults, f.name)}
    assert changed >= {"n_ctx", "csc", "head_dropout", "lora_rank", "cpu_precision",
                       "test_input"}
    assert ModelSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.slow
def test_head_dropout_is_saved_with_the_weights_and_rebuilt(tiny_args, tmp_path):
    """HEAD_DROPOUT (the issue's example of a new option) reaches the trained model, every
    checkpoint's model_spec, the scorer's rebuilt model and the model an eval-only run builds."""
    out = tmp_path / "run"
    train.main(tiny_args(out, "TRAINER.CLIP_AGIQA.HEAD_DROPOUT", "0.25"))
    for module in ("prompt_learner", "regression"):
        checkpoint = torch.load(out / module / "model.pth.tar-1", weights_only=True)
        assert ModelSpec.from_dict(checkpoint["model_spec"]).head_dropout == 0.25
    scorer = load_scorer(out)
    assert scorer.run.config_source == "model_spec"
    assert (scorer.model.regression[0].p, scorer.model.regression[3].p) == (0.25, 0.25)
    assert TrainedRun(str(out), "model.pth.tar-1").spec.head_dropout == 0.25

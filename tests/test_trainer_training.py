"""CLIP_AGIQA trainer on a tiny synthetic AGIQA-3K and a tiny random CLIP (CPU)."""
from __future__ import annotations

import warnings

import pytest
import torch

from clip.random_weights import save_random_weights
from datasets.synthetic import make_synthetic_agiqa
from trainers.clip_agiqa import CheckpointMismatchError
from tiny_trainer import build_tiny_trainer
from tolerances import MOS_ATOL

TRAINABLE = {"prompt_learner.ctx", "regression.1.weight", "regression.1.bias",
             "regression.4.weight", "regression.4.bias"}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer_assets")
    make_synthetic_agiqa(root / "data", n_images=20, sizes=((32, 32),))
    weights = save_random_weights(root / "tiny.pt", "tiny-vit")
    return {"root": str(root / "data"), "weights": str(weights)}


def make_trainer(assets, out_dir, prec="fp32", **opts):
    return build_tiny_trainer(
        assets["root"], assets["weights"], out_dir,
        "TRAINER.CLIP_AGIQA.PREC", prec, "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
        "DATALOADER.TEST.BATCH_SIZE", "8", "INPUT.TRANSFORMS", "('normalize',)",
        "OPTIM.LR", "0.5", "OPTIM.MAX_EPOCH", "1", *[x for kv in opts.items() for x in kv])


def snapshot(trainer):
    return {name: {k: v.detach().clone() for k, v in trainer._models[name].state_dict().items()}
            for name in trainer.get_model_names()}


@pytest.mark.parametrize("prec, cpu_prec, effective, tower", [
    ("fp32", "auto", "fp32", torch.float32), ("amp", "auto", "amp", torch.float32),
    ("fp16", "fp16", "fp16", torch.float16), ("fp16", "bf16", "bf16", torch.bfloat16),
    ("fp16", "fp32", "fp32", torch.float32), ("bf16", "auto", "bf16", torch.bfloat16)])
def test_one_step_trains_both_modules(assets, tmp_path, prec, cpu_prec, effective, tower):
    """Every precision runs on the CPU for real (no fallback, no warning)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = make_trainer(assets, tmp_path, prec,
                               **{"TRAINER.CLIP_AGIQA.CPU_PREC": cpu_prec})
    assert not [w for w in caught if "PREC" in str(w.message)]
    assert trainer.prec == effective
    assert (trainer.scaler is not None) == (prec == "amp")
    assert trainer.get_model_names() == ["prompt_learner", "regression"]
    assert trainer.model.dtype == tower
    ctx_dtype = torch.float16 if effective == "fp16" else torch.float32
    assert trainer.model.prompt_learner.ctx.dtype == ctx_dtype
    assert trainer.model.regression[1].weight.dtype == torch.float32

    before = snapshot(trainer)
    trainer.set_model_mode("train")
    batch = next(iter(trainer.train_loader_x))
    summary = trainer.forward_backward(batch)
    assert set(summary) == {"loss"} and summary["loss"] > 0
    after = snapshot(trainer)
    assert not torch.equal(before["prompt_learner"]["ctx"], after["prompt_learner"]["ctx"])
    for key in ("1.weight", "4.weight", "4.bias"):
        assert not torch.equal(before["regression"][key], after["regression"][key])
    # Prompt buffers are constants.
    for key in ("token_prefix", "token_suffix"):
        assert torch.equal(before["prompt_learner"][key], after["prompt_learner"][key])


def test_only_context_and_head_get_gradients(assets, tmp_path):
    trainer = make_trainer(assets, tmp_path)
    trainable = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable == TRAINABLE
    trainer.set_model_mode("train")
    trainer.forward_backward(next(iter(trainer.train_loader_x)))
    with_grad = {n for n, p in trainer.model.named_parameters() if p.grad is not None}
    assert with_grad == TRAINABLE
    assert trainer.model.prompt_learner.ctx.grad.abs().sum() > 0
    # The whole CustomCLIP follows the mode; the frozen encoders never leave eval mode.
    assert trainer.model.training and trainer.model.regression.training
    assert not trainer.model.image_encoder.training and not trainer.model.text_encoder.training
    trainer.set_model_mode("eval")
    assert not trainer.model.training and not trainer.model.regression[0].training


def test_loss_is_mse_on_mos(assets, tmp_path):
    # Image batches (the fast pipeline's feature batches: tests/test_fast_pipeline.py).
    trainer = make_trainer(assets, tmp_path, **{"TRAINER.CLIP_AGIQA.PIPELINE": "reference"})
    batch = next(iter(trainer.train_loader_x))
    trainer.set_model_mode("eval")  # no dropout: the loss is reproducible before the step
    with torch.no_grad():
        expected = ((trainer.model(batch["img"]) - batch["mos"].float()) ** 2).mean().item()
    # The same forward with gradients enabled may take other float32 kernels: an MSE of MOS-scale
    # values then differs by rounding, MOS_ATOL / 5 relative (5e-5).
    assert trainer.forward_backward(batch)["loss"] == pytest.approx(expected, rel=MOS_ATOL / 5)
    batch.pop("mos")
    with pytest.raises(KeyError, match="mos"):
        trainer.forward_backward(batch)


def test_strict_loading_except_prompt_buffers(assets, tmp_path):
    trainer = make_trainer(assets, tmp_path / "a")
    trainer.save_model(0, str(tmp_path / "ckpt"), model_name="model-best.pth.tar")
    saved = snapshot(trainer)
    other = make_trainer(assets, tmp_path / "b")
    with torch.no_grad():
        other.model.prompt_learner.ctx.zero_()
    other.load_model(str(tmp_path / "ckpt"))
    assert torch.equal(other.model.prompt_learner.ctx, saved["prompt_learner"]["ctx"])
    assert torch.equal(other.model.regression[4].weight, saved["regression"]["4.weight"])
    assert other.loaded_checkpoints["regression"]["epoch"] == 1

    path = tmp_path / "ckpt" / "prompt_learner" / "model-best.pth.tar"
    checkpoint = torch.load(path, weights_only=True)
    # Recomputed buffers may be absent or of another shape (other level names).
    del checkpoint["state_dict"]["token_prefix"]
    checkpoint["state_dict"]["token_suffix"] = torch.zeros(2, 3)
    torch.save(checkpoint, path)
    other.load_model(str(tmp_path / "ckpt"))

    checkpoint["state_dict"]["extra_key"] = torch.zeros(1)
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointMismatchError, match="unexpected keys \\['extra_key'\\]"):
        other.load_model(str(tmp_path / "ckpt"))
    del checkpoint["state_dict"]["extra_key"]
    del checkpoint["state_dict"]["ctx"]
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointMismatchError, match="missing keys \\['ctx'\\]"):
        other.load_model(str(tmp_path / "ckpt"))
    checkpoint["state_dict"]["ctx"] = torch.zeros(7, 64)
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointMismatchError, match="ctx has shape \\(7, 64\\)"):
        other.load_model(str(tmp_path / "ckpt"))
    with pytest.raises(FileNotFoundError, match="model.pth.tar-5"):
        other.load_model(str(tmp_path / "ckpt"), epoch=5)

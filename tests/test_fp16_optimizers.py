"""fp16 with every optimiser `OPTIM.NAME` accepts, on the CPU's real fp16 path (issue #26).

SGD keeps the original's float16 context, updated in float16; the others train a float32 copy of
the context (`ModelSpec.fp32_ctx`), because their float16 state and eps underflow (NaN at the
first step: `trainers.method.precision`). Checked here: a few steps of each optimiser give a
finite loss and finite, moved parameters; SGD's update is float16 SGD on the float16 context,
bit for bit; a float32-context run rebuilds from its checkpoints (eval-only, score.py, resume).
"""
from __future__ import annotations

import csv
import inspect
import json
import math

import pytest
import torch

import score
import train
from dassl.optim.optimizer import AVAI_OPTIMS
from trainers.method.model_spec import FP16_CONTEXT_OPTIMIZERS
from tiny_trainer import build_tiny_trainer

from test_precisions import interrupt_in_epoch_2, max_pred_diff, predictions, reorder_tolerance

FP16 = ("TRAINER.CLIP_AGIQA.PREC", "fp16", "TRAINER.CLIP_AGIQA.CPU_PREC", "fp16")
STEPS = 3
CUDA = pytest.mark.cuda
# Every optimiser on the CPU's real fp16 path; Adam (openai/CLIP issues 40 and 57) on a GPU too.
CASES = [pytest.param("cpu", name, id=f"cpu-{name}") for name in AVAI_OPTIMS] + [
    pytest.param("cuda", "adam", marks=CUDA, id="cuda-adam")]


def fp16_trainer(tiny_assets, out, optimizer: str, *opts: str, device: str = "cpu"):
    return build_tiny_trainer(tiny_assets["root"], tiny_assets["weights"], out, *FP16,
                              "USE_CUDA", str(device == "cuda"),
                              "OPTIM.NAME", optimizer, "OPTIM.LR", "0.002",
                              "DATALOADER.TRAIN_X.BATCH_SIZE", "4", *opts)


def trainable(trainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("device, optimizer", CASES)
def test_every_optimizer_trains_finitely_in_fp16(tiny_assets, tmp_path, device, optimizer):
    trainer = fp16_trainer(tiny_assets, tmp_path, optimizer, device=device)
    assert trainer.device.type == device
    assert trainer.prec == "fp16" and trainer.model.dtype == torch.float16
    ctx = trainer.model.prompt_learner.ctx
    fp16_ctx = optimizer in FP16_CONTEXT_OPTIMIZERS
    assert ctx.dtype == (torch.float16 if fp16_ctx else torch.float32)
    assert trainer.spec.fp32_ctx is not fp16_ctx
    before = trainable(trainer)
    trainer.set_model_mode("train")
    torch.manual_seed(3)
    for step, batch in zip(range(STEPS), trainer.train_loader_x):
        loss = trainer.forward_backward(batch)["loss"]
        assert math.isfinite(loss), (optimizer, step, loss)
    after = trainable(trainer)
    for name, value in after.items():
        assert torch.isfinite(value).all(), (optimizer, name)
    # The context really trains (the NaN came from its update) and so does the head.
    assert not torch.equal(after["prompt_learner.ctx"], before["prompt_learner.ctx"])
    assert not torch.equal(after["regression.1.weight"], before["regression.1.weight"])


def test_sgd_updates_the_fp16_context_in_fp16_as_the_original(tiny_assets, tmp_path):
    """The trainer's SGD step on the context equals torch's SGD stepping a float16 tensor with
    the same gradient and settings (what the original does): bit for bit, every step."""
    trainer = fp16_trainer(tiny_assets, tmp_path, "sgd")
    ctx = trainer.model.prompt_learner.ctx
    optim = trainer._optims["prompt_learner"]
    accepted = inspect.signature(torch.optim.SGD).parameters
    settings = {k: v for k, v in optim.param_groups[0].items() if k in accepted and k != "params"}
    assert settings["momentum"] > 0 and settings["weight_decay"] > 0  # the paths that round
    mirror = ctx.detach().clone().requires_grad_(True)
    assert mirror.dtype == torch.float16
    reference = torch.optim.SGD([mirror], **settings)
    trainer.set_model_mode("train")
    torch.manual_seed(3)
    for _, batch in zip(range(STEPS), trainer.train_loader_x):
        trainer.forward_backward(batch)
        assert ctx.grad.dtype == torch.float16
        mirror.grad = ctx.grad.detach().clone()
        reference.step()
        assert torch.equal(ctx.detach(), mirror.detach())


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_an_fp32_context_run_rebuilds_from_its_checkpoints(tiny_args, tiny_assets, tmp_path,
                                                           monkeypatch, device):
    """Adam under fp16: the checkpoints record `fp32_ctx` and hold a float32 context; eval-only
    and score.py rebuild that model, a resumed run ends as an uninterrupted one."""
    def argv(out, *flags):
        return tiny_args(out, *FP16, "USE_CUDA", str(device == "cuda"), "OPTIM.NAME", "adam",
                         "OPTIM.LR", "0.002", flags=flags, epochs=2)

    out = tmp_path / "run"
    train.main(argv(out))
    checkpoint = torch.load(out / "prompt_learner" / "model.pth.tar-2", weights_only=True)
    assert checkpoint["model_spec"]["fp32_ctx"] is True
    assert checkpoint["model_spec"]["precision"] == "fp16"
    assert checkpoint["state_dict"]["ctx"].dtype == torch.float32
    preds = predictions(out)
    assert all(math.isfinite(p) for _, p in preds) and len({p for _, p in preds}) > 1
    results = json.loads((out / "results.json").read_text())
    assert all(math.isfinite(v) for v in results["final"]["metrics"].values())

    evaluated = tmp_path / "eval"
    train.main(argv(evaluated, "--eval-only", "--model-dir", str(out)))
    assert predictions(evaluated) == preds  # same model, loader and kernels

    images = [f"{tiny_assets['root']}/AGIQA-3K/{name}" for name, _ in preds]
    scores_csv = tmp_path / "scores.csv"
    assert score.main([str(out), *images, "--output", str(scores_csv), "--cpu-prec", "fp16",
                       "--device", device, "--batch-size", "3", "--no-progress"]) == 0
    with open(scores_csv, newline="") as handle:
        scores = [(row["name"], float(row["score"])) for row in csv.DictReader(handle)]
    assert max_pred_diff(scores, preds) <= reorder_tolerance(device, "fp16")

    resumed = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        interrupt_in_epoch_2(patch)
        with pytest.raises(SystemExit):
            train.main(argv(resumed))
    train.main(argv(resumed))
    assert "Resumed after epoch 1" in (resumed / "log.txt").read_text()
    if device == "cpu":
        assert predictions(resumed) == preds  # bit for bit on a CPU
    else:  # a GPU may differ in the last bits (atomics, autotuning): the fp16 rounding bound
        assert max_pred_diff(predictions(resumed), preds) <= reorder_tolerance(device, "fp16")

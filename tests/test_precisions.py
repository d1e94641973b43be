"""Every precision on every device, end to end through train.py, score.py and the trainer.

Cases run on the CPU in CI; the `cuda` ones (marker `cuda`: deselected by default, `pytest -m
cuda` on a GPU, skipped without one) repeat them on the GPU, as issue #18 asks. Per case:
2 epochs train with finite loss and finite metrics; `--eval-only` reproduces `predictions.csv`;
a run interrupted in epoch 2 and resumed ends like an uninterrupted one; `score.py` reproduces
the run's predictions; the fast and the reference pipelines give the same parameters after the
same steps. Tolerances are stated where they are defined, with their reason.
"""
from __future__ import annotations

import csv
import json
import math

import pytest
import torch

import score
import train
from dassl.utils import ConfigError
from trainers import clip_agiqa
from trainers.inference.run_model import TrainedRun
from trainers.method.precision import (auto_cpu_precision, cpu_flags, recorded_precision,
                                resolve_precision)
from tiny_trainer import build_tiny_trainer

from test_fast_pipeline import PAPER_TRANSFORMS, TRAINABLE

CUDA = pytest.mark.cuda


def case(device: str, prec: str, cpu_prec: str = "auto"):
    """One (device, PREC, CPU_PREC) case; on a CPU, "fp16" means the real fp16 path."""
    marks = [CUDA] if device == "cuda" else []
    return pytest.param(device, prec, cpu_prec, marks=marks, id=f"{device}-{prec}")


CASES = [case("cpu", "fp32"), case("cpu", "amp"), case("cpu", "fp16", "fp16"),
         case("cpu", "bf16"), case("cuda", "fp16"), case("cuda", "fp32"), case("cuda", "amp")]


# Largest |prediction difference| (MOS units; the synthetic MOS lie in 0-5) tolerated between
# two computations of the same model with other batch shapes, hence possibly other kernels and
# summation orders (score.py vs the trainer's test loader, a resumed vs an uninterrupted run).
# Each way rounds the features (unit norm) to the towers' compute dtype, 2**-bits relative; the
# fp32 head maps them to MOS of order 5, so the predictions differ by a few units of 5 * 2**-bits.
# We allow 16 such units: fp32 (24 bits) 5e-6; fp16 and TF32 (11 bits) 4e-2; bf16 (8 bits) 0.3.
FP32_AT_MOS5 = 16 * 5 * 2.0 ** -24


def compute_bits(device: str, prec: str) -> int:
    """Significant bits of the towers' arithmetic: fp32 24 (11 for cuDNN's default TF32
    convolutions on a GPU), fp16 11, bf16 8; amp autocasts to fp16 on a GPU, bf16 on a CPU."""
    if prec == "amp":
        return 11 if device == "cuda" else 8
    return {"fp32": 11 if device == "cuda" else 24, "fp16": 11, "bf16": 8}[prec]


def reorder_tolerance(device: str, prec: str) -> float:
    """Tolerance of predictions computed with other batch shapes (see the comment above)."""
    return 16 * 5 * 2.0 ** -compute_bits(device, prec)


def run_args(tiny_args, out, device: str, prec: str, cpu_prec: str, *opts: str,
             flags=()) -> list[str]:
    return tiny_args(out, "USE_CUDA", str(device == "cuda"), "TRAINER.CLIP_AGIQA.PREC", prec,
                     "TRAINER.CLIP_AGIQA.CPU_PREC", cpu_prec,
                     "OPTIM.LR", "0.05", "TEST.FINAL_MODEL", "best_val",
                     "TEST.ALLOW_SELECTION_ON_TEST", "True", *opts, flags=flags, epochs=2)


def predictions(out) -> list[tuple[str, float]]:
    with open(out / "predictions.csv", newline="") as handle:
        return [(row["name"], float(row["pred"])) for row in csv.DictReader(handle)]


def max_pred_diff(a, b) -> float:
    assert [n for n, _ in a] == [n for n, _ in b]
    return max(abs(x - y) for (_, x), (_, y) in zip(a, b))


@pytest.fixture(scope="module")
def finished(tiny_args, tmp_path_factory):
    """`finished(device, prec, cpu_prec) -> OUTPUT_DIR` of a 2-epoch run, trained once."""
    runs = {}

    def get(*key: str):
        if key not in runs:
            out = tmp_path_factory.mktemp("_".join(key)) / "run"
            train.main(run_args(tiny_args, out, *key))
            runs[key] = out
        return runs[key]

    return get


@pytest.mark.parametrize("device, prec, cpu_prec", CASES)
def test_two_epochs_train_and_eval_only_reproduces_predictions(finished, tiny_args, tmp_path,
                                                               device, prec, cpu_prec):
    out = finished(device, prec, cpu_prec)
    results = json.loads((out / "results.json").read_text())
    # The effective precision is recorded in results.json, run_info.json and every checkpoint's
    # model_spec.
    effective = cpu_prec if device == "cpu" and prec == "fp16" else prec
    assert results["precision"] == effective
    assert json.loads((out / "run_info.json").read_text())["precision"] == effective
    for module in ("prompt_learner", "regression"):
        for path in (out / module).glob("model*.pth.tar*"):
            checkpoint = torch.load(path, weights_only=True)
            assert checkpoint["model_spec"]["precision"] == effective
            state = checkpoint["trainer_state"]
            assert ("grad_scaler" in state) == (prec == "amp")
    log = (out / "log.txt").read_text()
    assert log.count("Precision: ") == 1 and f"Precision: {effective}" in log
    assert results["last"]["epoch"] == 2
    for block in ("last", "selected", "final"):
        assert all(math.isfinite(v) for v in results[block]["metrics"].values()), results[block]
    preds = predictions(out)
    assert all(math.isfinite(p) for _, p in preds) and len({p for _, p in preds}) > 1
    eval_out = tmp_path / "eval"
    train.main(run_args(tiny_args, eval_out, device, prec, cpu_prec,
                        flags=["--eval-only", "--model-dir", str(out)]))
    # Same model, same loader, same batches and kernels: the same numbers.
    assert predictions(eval_out) == preds


@pytest.mark.parametrize("forced", ["fp32", "fp16"])
def test_a_cpu_prec_on_the_command_line_wins_for_eval_only_and_scoring(
        finished, tiny_args, tiny_assets, tmp_path, capsys, forced):
    """The trained run's saved precision (bf16 here) yields to a CPU_PREC given for the
    evaluation, whatever the checkpoint records, with one log line; score.py's --cpu-prec does the
    same. The predictions then differ from the bf16 run's by bf16 rounding only (see
    `reorder_tolerance`)."""
    out = finished("cpu", "bf16", "auto")
    eval_out = tmp_path / "eval"
    train.main(tiny_args(eval_out, "TRAINER.CLIP_AGIQA.CPU_PREC", forced,
                         flags=["--eval-only", "--model-dir", str(out)]))
    assert json.loads((eval_out / "results.json").read_text())["precision"] == forced
    log = (eval_out / "log.txt").read_text()
    line = f"Precision: {forced} (TRAINER.CLIP_AGIQA.CPU_PREC {forced} set for this evaluation"
    assert log.count(line) == 1 and "was computed in bf16" in log
    tolerance = reorder_tolerance("cpu", "bf16")
    assert 0 < max_pred_diff(predictions(eval_out), predictions(out)) <= tolerance
    images = [f"{tiny_assets['root']}/AGIQA-3K/{name}" for name, _ in predictions(out)]
    capsys.readouterr()
    assert score.main([str(out), *images, "--output", str(tmp_path / "scores.csv"),
                       "--cpu-prec", forced, "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"{forced} on cpu" in err and err.count(line) == 1


def interrupt_in_epoch_2(monkeypatch) -> None:
    """Make the next train.main stop at step 2 of epoch 2, as a kill there would (the last
    checkpoint is epoch 1's); the patch is undone before the resume."""
    original = clip_agiqa.CLIP_AGIQA.forward_backward

    def forward_backward(self, batch):
        if self.epoch == 1 and self.batch_idx == 1:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(clip_agiqa.CLIP_AGIQA, "forward_backward", forward_backward)


@pytest.mark.parametrize("device, prec, cpu_prec", CASES)
def test_resume_after_an_interruption_ends_like_an_uninterrupted_run(
        finished, tiny_args, tmp_path, monkeypatch, device, prec, cpu_prec):
    uninterrupted = finished(device, prec, cpu_prec)
    out = tmp_path / "resumed"
    argv = run_args(tiny_args, out, device, prec, cpu_prec)
    with monkeypatch.context() as patch:
        interrupt_in_epoch_2(patch)
        with pytest.raises(SystemExit) as info:
            train.main(argv)
    assert info.value.code == 130
    assert (out / "prompt_learner" / "model.pth.tar-1").is_file()
    train.main(argv)
    log = (out / "log.txt").read_text()
    assert "Resumed after epoch 1" in log
    if device == "cpu":  # bit for bit on a CPU (README, Determinism)
        assert predictions(out) == predictions(uninterrupted)
        return
    # On a GPU the same computation repeated may differ in the last bits (atomics, autotuning):
    # measure that spread with a second uninterrupted run; the resumed run may differ by as much.
    again = tmp_path / "again"
    train.main(run_args(tiny_args, again, device, prec, cpu_prec))
    spread = max_pred_diff(predictions(again), predictions(uninterrupted))
    diff = max_pred_diff(predictions(out), predictions(uninterrupted))
    print(f"{device} {prec}: run-to-run spread {spread:.3g}, resumed vs uninterrupted {diff:.3g}")
    assert diff <= max(2 * spread, FP32_AT_MOS5), (diff, spread)


@pytest.mark.parametrize("device, prec, cpu_prec", CASES)
def test_score_cli_reproduces_the_run_predictions(finished, tiny_assets, tmp_path, device,
                                                 prec, cpu_prec):
    out = finished(device, prec, cpu_prec)
    preds = predictions(out)
    images = [f"{tiny_assets['root']}/AGIQA-3K/{name}" for name, _ in preds]
    scores_csv = tmp_path / "scores.csv"
    # Batch size 3 (the test loader uses 16): other shapes, possibly other kernels.
    assert score.main([str(out), *images, "--output", str(scores_csv), "--device", device,
                       "--batch-size", "3", "--no-progress"]) == 0
    with open(scores_csv, newline="") as handle:
        scores = [(row["name"], float(row["score"])) for row in csv.DictReader(handle)]
    diff = max_pred_diff(scores, preds)
    print(f"{device} {prec}: score.py vs predictions.csv max |diff| {diff:.3g}")
    assert diff <= reorder_tolerance(device, prec), diff


def trainable(trainer) -> dict:
    return {n: p.detach().float().clone() for n, p in trainer.model.named_parameters()
            if p.requires_grad}


PARITY = [pytest.param("cpu", "fp32", "auto", "device", id="cpu-fp32"),
          pytest.param("cpu", "fp16", "fp16", "device", id="cpu-fp16"),
          pytest.param("cpu", "bf16", "auto", "device", id="cpu-bf16"),
          pytest.param("cpu", "amp", "auto", "device", id="cpu-amp"),
          pytest.param("cuda", "fp32", "auto", "device", marks=CUDA, id="cuda-fp32-on-device"),
          pytest.param("cuda", "fp32", "auto", "cpu", marks=CUDA, id="cuda-fp32-on-cpu")]


@pytest.mark.parametrize("device, prec, cpu_prec, decoded_on", PARITY)
def test_fast_and_reference_pipelines_step_alike(tiny_assets, tmp_path, device, prec, cpu_prec,
                                                 decoded_on):
    """3 SGD steps (lr 0.01) on the same augmented batches, dropout seeded alike. The pipelines
    encode those pixels in batches of other sizes (5 vs 4), so each feature may be rounded
    differently, by up to a few units of 2**-bits of the compute dtype (`compute_bits`). The
    parameters' displacement then differs by the same relative amount: we allow 2**(4-bits) of
    the displacement (16 units), plus one unit of the stored context's dtype (fp16 for fp16:
    2**-11 relative to |ctx| <= 0.1). Other seeds (other batches) move them apart by far more."""
    def make(name: str, pipeline: str):
        return build_tiny_trainer(
            tiny_assets["root"], tiny_assets["weights"], tmp_path / name,
            "USE_CUDA", str(device == "cuda"), "TRAINER.CLIP_AGIQA.PREC", prec,
            "TRAINER.CLIP_AGIQA.CPU_PREC", cpu_prec,
            "TRAINER.CLIP_AGIQA.PIPELINE", pipeline, "TRAINER.CLIP_AGIQA.DECODED_ON", decoded_on,
            "TRAINER.CLIP_AGIQA.ENCODE_BATCH_SIZE", "5", "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
            "INPUT.TRANSFORMS", PAPER_TRANSFORMS, "INPUT.INTERPOLATION", "bicubic",
            "OPTIM.LR", "0.01", "OPTIM.MAX_EPOCH", "2")

    fast, reference = make("fast", "fast"), make("reference", "reference")
    assert fast.device.type == device and fast.pipeline == "fast" and fast.prec == reference.prec
    loader = fast.train_loader_x
    pixels = []
    transform = loader.transform
    loader.transform = lambda images, idx: pixels.append(transform(images, idx)) or pixels[-1]
    torch.manual_seed(7)
    batches = list(loader)
    images = torch.cat(pixels)
    fast.set_model_mode("train")
    reference.set_model_mode("train")
    before = trainable(fast)
    for step, batch in enumerate(batches[:3]):
        torch.manual_seed(100 + step)
        reference.forward_backward({"img": images[4 * step: 4 * step + 4], "mos": batch["mos"]})
        torch.manual_seed(100 + step)
        fast.forward_backward(batch)
    after_fast, after_ref = trainable(fast), trainable(reference)
    moved = max((after_fast[n] - before[n]).abs().max().item() for n in TRAINABLE)
    apart = max((after_fast[n] - after_ref[n]).abs().max().item() for n in TRAINABLE)
    ctx_unit = 0.1 * 2.0 ** -11 if fast.prec == "fp16" else 0.0
    bits = compute_bits(device, fast.prec)
    print(f"{device} {fast.prec}: moved {moved:.3g}, apart {apart:.3g}")
    assert moved > 1e-3 and apart <= moved * 2.0 ** (4 - bits) + ctx_unit, (moved, apart)


# ---------------------------------------------------------------- the CPU rule and the records
def test_cpu_precision_rule_reads_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n\n"
                       "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_flags(str(cpuinfo)) == {"fpu", "sse", "avx2", "avx512f", "avx512_bf16"}
    assert auto_cpu_precision({"avx512f", "avx512_bf16"}) == "bf16"
    assert auto_cpu_precision({"amx_tile", "amx_bf16"}) == "bf16"
    assert auto_cpu_precision({"avx512f", "avx512_fp16", "avx2"}) == "fp32"  # never fp16
    cpu = torch.device("cpu")
    assert resolve_precision("fp16", cpu, "auto", {"avx512_bf16"}) == "bf16"
    assert resolve_precision("fp16", cpu, "auto", {"avx2"}) == "fp32"
    assert resolve_precision("fp16", cpu, "fp16", {"avx512_bf16"}) == "fp16"
    for prec in ("fp32", "amp", "bf16"):  # CPU_PREC only decides what PREC fp16 becomes
        assert resolve_precision(prec, cpu, "fp16", {"avx512_bf16"}) == prec
    assert resolve_precision("fp16", torch.device("cuda"), "fp32", {"avx512_bf16"}) == "fp16"


def test_the_amp_scaler_state_is_checkpointed(tiny_assets, tmp_path):
    """A scale that fell after overflows must survive a resume (it decides the next steps)."""
    def make():
        return build_tiny_trainer(tiny_assets["root"], tiny_assets["weights"], tmp_path,
                                  "TRAINER.CLIP_AGIQA.PREC", "amp", "OPTIM.MAX_EPOCH", "1")

    trainer = make()
    trainer.scaler.scale(torch.ones(()))  # the scaler's tensors exist after its first use
    trainer.scaler.update(new_scale=1024.0)
    trainer.scaler._growth_tracker.fill_(7)
    trainer.save_model(0, str(tmp_path))
    resumed = make()
    assert resumed.scaler.get_scale() == 65536.0  # a fresh scaler's initial scale
    assert resumed.resume_model_if_exist(str(tmp_path)) == 1
    assert resumed.scaler.get_scale() == 1024.0
    assert resumed.scaler.state_dict()["_growth_tracker"] == 7


def train_one_epoch(tiny_assets, out, *opts):
    trainer = build_tiny_trainer(tiny_assets["root"], tiny_assets["weights"], out,
                                 "OPTIM.MAX_EPOCH", "1", "OPTIM.LR", "0.05", *opts)
    trainer.train()
    return trainer


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_a_resume_continues_in_the_recorded_precision_or_refuses(tiny_assets, tmp_path, capsys):
    first = train_one_epoch(tiny_assets, tmp_path, "TRAINER.CLIP_AGIQA.PREC", "fp32")
    assert first.prec == "fp32"
    # The config alone would give bf16; the checkpoint to resume says fp32: the model is built
    # in fp32, said once.
    capsys.readouterr()
    again = build_tiny_trainer(tiny_assets["root"], tiny_assets["weights"], tmp_path,
                               "TRAINER.CLIP_AGIQA.PREC", "bf16", "OPTIM.MAX_EPOCH", "2")
    assert again.prec == "fp32" and again.model.dtype == torch.float32
    assert again.model.prompt_learner.ctx.dtype == torch.float32
    assert "Precision: fp32 (recorded in checkpoint" in capsys.readouterr().out
    assert again.resume_model_if_exist(str(tmp_path)) == 1
    # Saved and loaded in the recorded precision: bit-identical.
    torch.testing.assert_close(again.model.prompt_learner.ctx, first.model.prompt_learner.ctx,
                               rtol=0, atol=0)
    # A CPU precision forced by the user that differs from the checkpoint's: refused.
    with pytest.raises(ConfigError, match="computed in fp32.*CPU_PREC bf16 asks for bf16"):
        build_tiny_trainer(tiny_assets["root"], tiny_assets["weights"], tmp_path,
                           "TRAINER.CLIP_AGIQA.PREC", "fp16",
                           "TRAINER.CLIP_AGIQA.CPU_PREC", "bf16", "OPTIM.MAX_EPOCH", "2")


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("trained, evaluated", [
    (("fp16", "fp16"), "fp32"), (("bf16", "auto"), "fp32"), (("fp32", "auto"), "fp16")])
def test_checkpoints_load_in_another_precision(tiny_assets, tmp_path, trained, evaluated,
                                               capsys):
    """Evaluating with a CPU_PREC set for the evaluation builds the model in that precision
    (said in the log); the predictions then differ from the training precision's only by
    rounding: 16 units of 2**-bits of the coarser of the two at MOS 5."""
    source = train_one_epoch(tiny_assets, tmp_path / "run", "TRAINER.CLIP_AGIQA.PREC", trained[0],
                             "TRAINER.CLIP_AGIQA.CPU_PREC", trained[1])
    source.test()
    expected = torch.tensor([p[2] for p in source.evaluator.predictions()])
    capsys.readouterr()
    run = TrainedRun(str(tmp_path / "run"), "model.pth.tar-1", cpu_precision=evaluated)
    target = build_tiny_trainer(tiny_assets["root"], tiny_assets["weights"], tmp_path / "eval",
                                trained=run)
    assert target.prec == evaluated
    assert f"set for this evaluation; {tmp_path / 'run'}" in capsys.readouterr().out
    target.load_model(str(tmp_path / "run"), epoch=1)
    target.test()
    got = torch.tensor([p[2] for p in target.evaluator.predictions()])
    bits = min(compute_bits("cpu", source.prec), compute_bits("cpu", target.prec))
    assert (got - expected).abs().max() <= 16 * 5 * 2.0 ** -bits


def test_unrecorded_checkpoints_count_as_fp32_on_a_cpu():
    assert recorded_precision({"state_dict": {}}, "cpu", "fp16") == ("fp32", False)
    assert recorded_precision({"trainer_state": {}}, "cuda", "fp16") == ("fp16", False)
    assert recorded_precision({"model_spec": {"precision": "fp16"}}, "cpu", "fp32") == \
        ("fp16", True)

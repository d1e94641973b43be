"""dassl.engine: the training lifecycle on a tiny synthetic IQA dataset (CPU).

Covers the log-line format, per-epoch LR, checkpoint layout and pointers, weights_only loading,
save -> kill -> resume giving the same losses/weights/results as an uninterrupted run, model
selection with and without a validation split, and the eval-only flow.
"""
import contextlib
import glob
import io
import os
import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from dassl.config import get_cfg_default
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum
from dassl.engine import TRAINER_REGISTRY, TrainerX, build_trainer
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import set_random_seed
from tolerances import FP32_EPS, METRIC_REL

N_IMAGES = 22


def _image_mos(i):
    return 1.0 + 3.0 * i / (N_IMAGES - 1)


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    """Non-square JPEGs whose brightness grows with their MOS."""
    root = tmp_path_factory.mktemp("engine_images")
    rng = np.random.default_rng(0)
    for i in range(N_IMAGES):
        h, w = 18 + i % 3, 22 + i % 4
        base = 40 + 150 * (i / (N_IMAGES - 1))
        arr = np.clip(base + rng.normal(0, 20, size=(h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(root / f"im{i:02d}.jpg", quality=92)
    return str(root)


class _ToyIQABase(DatasetBase):
    with_val = True

    def __init__(self, cfg):
        root = cfg.DATASET.ROOT
        items = [Datum(impath=os.path.join(root, f"im{i:02d}.jpg"), label=min(i // 8, 2),
                       mos=_image_mos(i), check_file=True) for i in range(N_IMAGES)]
        order = np.random.default_rng(42).permutation(N_IMAGES)  # fixed split, independent of SEED
        items = [items[j] for j in order]
        train, val, test = items[:12], items[12:16], items[16:]
        if not self.with_val:
            train, val = items[:16], None
        super().__init__(train_x=train, val=val, test=test, classnames=["low", "mid", "high"])


@DATASET_REGISTRY.register()
class DasslEngineToyIQA(_ToyIQABase):
    with_val = True


@DATASET_REGISTRY.register()
class DasslEngineToyIQANoVal(_ToyIQABase):
    with_val = False


class _Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.drop = nn.Dropout(0.3)  # consumes the torch RNG during training

    def forward(self, x):
        return self.drop(F.adaptive_avg_pool2d(F.relu(self.conv(x)), 1).flatten(1))


class _Interrupted(Exception):
    pass


@TRAINER_REGISTRY.register()
class DasslEngineToyTrainer(TrainerX):
    """Two registered modules with two optimizers/schedulers, like CLIP-AGIQA."""

    stop_after_epoch = None

    def build_model(self):
        self.backbone = _Backbone()
        self.head = nn.Linear(4, 1)
        self.model = nn.Sequential(self.backbone, self.head).to(self.device)
        # The head learns at half the backbone's rate, so per-module LR logs can be told apart.
        head_optim_cfg = self.cfg.OPTIM.clone()
        head_optim_cfg.defrost()
        head_optim_cfg.LR = self.cfg.OPTIM.LR / 2
        for name, module, optim_cfg in (("backbone", self.backbone, self.cfg.OPTIM),
                                        ("head", self.head, head_optim_cfg)):
            optim = build_optimizer(module, optim_cfg)
            self.register_model(name, module, optim, build_lr_scheduler(optim, optim_cfg))
        self.history = []

    def forward_backward(self, batch):
        img = batch["img"].to(self.device)
        mos = batch["mos"].to(self.device, dtype=torch.float32)
        loss = F.mse_loss(self.model(img).squeeze(1), mos)
        self.model_backward_and_update(loss)
        self.history.append((self.epoch, self.batch_idx, loss.item(), self.get_current_lr()))
        return {"loss": loss.item()}

    def model_inference(self, input):
        return self.model(input).squeeze(1)

    def after_epoch(self):
        super().after_epoch()
        if self.stop_after_epoch == self.epoch + 1:
            raise _Interrupted  # simulates a killed run right after the epoch's checkpoint


def _cfg(root, out, dataset="DasslEngineToyIQA", final_model="best_val", **opts):
    cfg = get_cfg_default()
    cfg.VERBOSE = False
    cfg.USE_CUDA = False
    cfg.OUTPUT_DIR = str(out)
    cfg.TRAINER.NAME = "DasslEngineToyTrainer"
    cfg.DATASET.NAME = dataset
    cfg.DATASET.ROOT = root
    cfg.INPUT.SIZE = (16, 16)
    cfg.INPUT.INTERPOLATION = "bicubic"
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 4
    cfg.DATALOADER.TEST.BATCH_SIZE = 3
    cfg.OPTIM.NAME = "sgd"
    cfg.OPTIM.LR = 0.01
    cfg.OPTIM.MAX_EPOCH = 4
    cfg.OPTIM.LR_SCHEDULER = "cosine"
    cfg.OPTIM.WARMUP_EPOCH = 1
    cfg.OPTIM.WARMUP_TYPE = "constant"
    cfg.OPTIM.WARMUP_CONS_LR = 0.002
    cfg.TRAIN.PRINT_FREQ = 2
    cfg.TEST.FINAL_MODEL = final_model
    for key, value in opts.items():
        node = cfg
        *parents, leaf = key.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return cfg


def _run(cfg, seed=1, stop_after_epoch=None):
    set_random_seed(seed)  # as train.py does, before building the trainer
    trainer = build_trainer(cfg)
    trainer.stop_after_epoch = stop_after_epoch
    trainer.train()
    return trainer


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


@pytest.fixture(scope="module")
def full_run(image_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        trainer = _run(_cfg(image_root, out))
    return trainer, str(out), buf.getvalue()


def test_log_lines_lr_and_tensorboard(full_run):
    trainer, out, stdout = full_run
    pattern = re.compile(r"epoch \[(\d)/4\] batch \[(\d)/3\] time \d+\.\d{3} \(\d+\.\d{3}\) "
                         r"data \d+\.\d{3} \(\d+\.\d{3}\) loss \d+\.\d{4} \(\d+\.\d{4}\) "
                         r"lr (\d\.\d{4}e-\d\d) eta \d+:\d\d:\d\d")
    lines = [ln for ln in stdout.splitlines() if ln.startswith("epoch [")]
    assert len(lines) == 4 and all(pattern.fullmatch(ln) for ln in lines)  # PRINT_FREQ 2
    parsed = [pattern.fullmatch(ln).groups() for ln in lines]
    assert [(e, b) for e, b, _ in parsed] == [(str(e), "2") for e in range(1, 5)]
    # One LR per epoch (schedulers step after the epoch): warm-up, then cosine restarted at 0.01.
    expected = [0.002] + [0.005 * (1 + np.cos(np.pi * (e - 1) / 4)) for e in range(1, 4)]
    assert [lr for (_, _, lr) in parsed] == [f"{expected[e]:.4e}" for e in range(4)]
    for epoch, _, _, lr in trainer.history:  # Python floats: a few float64 roundings
        assert lr == pytest.approx(expected[epoch], rel=1e-12)
    assert len(trainer.history) == 12  # 4 epochs x 3 batches (12 train images, drop_last)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(os.path.join(out, "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/lr", "val/srcc", "val/plcc", "test/srcc"} <= tags
    assert [e.step for e in acc.Scalars("train/lr")] == list(range(12))
    # The final test of the last-epoch model and that of the selected model do not share a tag.
    assert [e.step for e in acc.Scalars("test/srcc")] == [3]
    assert [e.step for e in acc.Scalars("selected/test/srcc")] == [3]
    assert [round(e.value, 6) for e in acc.Scalars("train/lr")][::3] == [round(v, 6) for v in expected]
    backbone_lr = [e.value for e in acc.Scalars("train/lr/backbone")][::3]
    head_lr = [e.value for e in acc.Scalars("train/lr/head")][::3]
    # TensorBoard stores scalars in float32: rounded by <= FP32_EPS / 2 relative; the next
    # epoch's LR differs by > 10 %.
    assert backbone_lr == pytest.approx(expected, rel=FP32_EPS)
    # The head's schedule: the same warm-up LR, then half the backbone's cosine values.
    assert head_lr == pytest.approx([expected[0]] + [v / 2 for v in expected[1:]], rel=FP32_EPS)


def test_checkpoint_layout_pointers_and_safe_loading(full_run):
    trainer, out, _ = full_run
    for name in ("backbone", "head"):
        d = os.path.join(out, name)
        assert sorted(os.listdir(d)) == ["checkpoint", "checkpoint-best", "model-best.pth.tar",
                                         "model.pth.tar-4"]
        assert open(os.path.join(d, "checkpoint")).read() == "model.pth.tar-4\n"
        assert open(os.path.join(d, "checkpoint-best")).read() == "model-best.pth.tar\n"
        last = torch.load(os.path.join(d, "model.pth.tar-4"), weights_only=True)
        best = torch.load(os.path.join(d, "model-best.pth.tar"), weights_only=True)
        assert set(last) >= {"state_dict", "epoch", "optimizer", "scheduler", "val_result"}
        assert last["epoch"] == 4 and last["val_result"] is None
        assert best["epoch"] == trainer.best_epoch
        assert best["val_result"] == pytest.approx(trainer.best_result, rel=METRIC_REL)
        assert last["scheduler"]["kind"] == "constant" and "successor" in last["scheduler"]
        assert last["trainer_state"]["best_epoch"] == trainer.best_epoch
    assert sorted(os.listdir(os.path.join(out, "splits"))) == ["test.csv", "train.csv", "val.csv"]
    assert len(open(os.path.join(out, "splits", "train.csv")).read().splitlines()) == 13


def test_final_results_report_last_and_selected(full_run):
    trainer, out, stdout = full_run
    fr = trainer.final_results
    assert fr["final_model"] == "best_val"
    assert fr["last"]["epoch"] == 4 and fr["last"]["split"] == "test"
    sel = fr["selected"]
    assert sel["selected_on"] == "val" and sel["split"] == "test" and sel["epoch"] == trainer.best_epoch
    assert sel["selection_metric"] == "srcc" and sel["selection_value"] == trainer.best_result
    assert list(sel["metrics"])[0] == "srcc" and "plcc_fitted" in sel["metrics"]
    assert "Evaluate on the *val* set" in stdout and "* last-epoch model (epoch 4)" in stdout
    preds = trainer.evaluator.predictions()  # the selected model's test predictions
    assert len(preds) == 6 and all(re.fullmatch(r"im\d\d\.jpg", n) for n, _, _ in preds)
    assert np.isclose(trainer.last_test_results["srcc"], sel["metrics"]["srcc"], rtol=METRIC_REL,
                      atol=0)


def test_eval_only_flow(full_run, image_root, tmp_path):
    trainer, out, _ = full_run
    set_random_seed(5)
    evaluator = build_trainer(_cfg(image_root, tmp_path / "eval"))
    evaluator.load_model(out)  # model-best.pth.tar
    # Recomputed predictions may differ by rounding, which cannot reorder 6 distinct ranks: the
    # SRCC is the same float64 value up to METRIC_REL.
    assert evaluator.test() == pytest.approx(trainer.final_results["selected"]["metrics"]["srcc"],
                                             rel=METRIC_REL)
    evaluator.load_model(out, epoch=4)  # periodic file: val_result None must not crash
    assert evaluator.test() == pytest.approx(trainer.final_results["last"]["metrics"]["srcc"],
                                             rel=METRIC_REL)
    with pytest.raises(FileNotFoundError, match="model.pth.tar-3"):
        evaluator.load_model(out, epoch=3)


def test_kill_and_resume_matches_uninterrupted_run(full_run, image_root, tmp_path):
    reference, _, _ = full_run
    out = tmp_path / "resumed"
    with pytest.raises(_Interrupted):
        _run(_cfg(image_root, out), stop_after_epoch=2)
    for name in ("backbone", "head"):  # only the latest (non-kept) file and the best file
        files = sorted(os.listdir(out / name))
        assert "model.pth.tar-2" in files and "model.pth.tar-1" not in files
        assert (out / name / "checkpoint").read_text() == "model.pth.tar-2\n"

    # What a kill in the middle of writing epoch 3's checkpoint leaves behind; resume removes it
    # (the listing comparison at the end would fail otherwise).
    (out / "head" / ".model.pth.tar-3.k1ll3d.tmp").write_bytes(b"half a checkpoint")

    # A fresh process: different seed on purpose, the checkpoint's RNG states take over.
    resumed = _run(_cfg(image_root, out), seed=123)
    assert resumed.history == [h for h in reference.history if h[0] >= 2]
    ref_w, res_w = _weights(reference), _weights(resumed)
    assert all(torch.equal(ref_w[k], res_w[k]) for k in ref_w)
    assert resumed.best_epoch == reference.best_epoch
    assert resumed.best_result == reference.best_result
    np.testing.assert_equal(resumed.final_results, reference.final_results)
    assert sorted(os.listdir(out / "head")) == sorted(os.listdir(os.path.join(full_run[1], "head")))


def test_resume_restores_best_state_before_training(image_root, tmp_path):
    out = tmp_path / "r"
    set_random_seed(1)
    first = build_trainer(_cfg(image_root, out))
    first.stop_after_epoch = 3
    with pytest.raises(_Interrupted):
        first.train()
    fresh = build_trainer(_cfg(image_root, out))
    assert fresh.resume_model_if_exist(str(out)) == 3
    assert (fresh.best_epoch, fresh.best_result) == (first.best_epoch, first.best_result)
    np.testing.assert_equal(fresh.best_metrics, first.best_metrics)  # NaN-aware
    assert fresh.get_current_lr() == first.get_current_lr()


def test_checkpoint_freq_keeps_periodic_files(image_root, tmp_path):
    out = tmp_path / "freq"
    _run(_cfg(image_root, out, final_model="last_step", TRAIN__CHECKPOINT_FREQ=2))
    assert sorted(os.listdir(out / "backbone")) == ["checkpoint", "model.pth.tar-2", "model.pth.tar-4"]


def test_best_val_without_val_split_requires_explicit_opt_in(image_root, tmp_path, capsys):
    cfg = _cfg(image_root, tmp_path / "a", dataset="DasslEngineToyIQANoVal")
    with pytest.raises(ValueError, match="ALLOW_SELECTION_ON_TEST"):
        _run(cfg)
    assert not glob.glob(str(tmp_path / "a" / "*" / "model*"))  # failed before training

    cfg = _cfg(image_root, tmp_path / "b", dataset="DasslEngineToyIQANoVal",
               TEST__ALLOW_SELECTION_ON_TEST=True)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = _run(cfg)
    # A plain log line, not a Python warning with a source line.
    assert not [w for w in caught if "SELECTED ON THE TEST SET" in str(w.message)]
    out = capsys.readouterr().out
    assert out.count("SELECTED ON THE TEST SET") == 1
    assert [line for line in out.splitlines()
            if line.startswith("WARNING: TEST.ALLOW_SELECTION_ON_TEST is set")]
    fr = trainer.final_results
    assert fr["selected"]["selected_on"] == "test" and fr["last"]["epoch"] == 4
    # Selected on the test split: the selected model's final test SRCC is the value it was
    # selected with (recomputed from predictions equal up to rounding: METRIC_REL). This
    # replaces a comparison of fr with itself, which could not fail.
    assert fr["selected"]["metrics"]["srcc"] == pytest.approx(fr["selected"]["selection_value"],
                                                              rel=METRIC_REL)
    assert not os.path.exists(tmp_path / "b" / "splits" / "val.csv")


def test_last_step_and_no_test(image_root, tmp_path, capsys):
    trainer = _run(_cfg(image_root, tmp_path / "last", final_model="last_step",
                        TRAIN__PRINT_FREQ=5))
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch [")]
    assert len(lines) == 12  # fewer batches than PRINT_FREQ: every batch is logged
    assert "Evaluate on the *val* set" not in "".join(lines)
    fr = trainer.final_results
    assert fr["selected"]["selected_on"] == "last_epoch" and fr["selected"]["epoch"] == 4
    assert fr["selected"]["metrics"] == fr["last"]["metrics"]
    assert not os.path.exists(tmp_path / "last" / "head" / "model-best.pth.tar")
    # Re-running into the finished directory resumes at epoch 4: no training, same result.
    again = _run(_cfg(image_root, tmp_path / "last", final_model="last_step"))
    assert again.history == []
    np.testing.assert_equal(again.final_results, fr)

    quiet = _run(_cfg(image_root, tmp_path / "nt", TEST__NO_TEST=True))
    assert quiet.final_results == {} and quiet.best_epoch is None


def test_trainer_api_errors(image_root, tmp_path):
    trainer = build_trainer(_cfg(image_root, tmp_path / "x"))
    with pytest.raises(KeyError, match="already registered"):
        trainer.register_model("head", trainer.head)
    with pytest.raises(KeyError, match="neck"):
        trainer.get_model_names("neck")
    with pytest.raises(KeyError, match="mode"):
        trainer.set_model_mode("inference")
    with pytest.raises(FloatingPointError):
        trainer.model_backward_and_update(torch.tensor(float("nan"), requires_grad=True))
    trainer.set_model_mode("eval")
    assert not trainer.head.training
    with pytest.raises(ValueError, match="FINAL_MODEL"):
        build_trainer(_cfg(image_root, tmp_path / "y", final_model="best"))


def test_resume_from_another_directory(full_run, image_root, tmp_path):
    reference, _, _ = full_run
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    with pytest.raises(_Interrupted):
        _run(_cfg(image_root, first_dir), stop_after_epoch=3)
    resumed = _run(_cfg(image_root, second_dir, RESUME=str(first_dir)))
    assert resumed.history == [h for h in reference.history if h[0] == 3]
    np.testing.assert_equal(resumed.final_results, reference.final_results)
    assert (second_dir / "head" / "checkpoint").read_text() == "model.pth.tar-4\n"

"""Fast pipeline, trainer side: parity with the reference pipeline, loader semantics, caching,
config, fallback (CPU, tiny random CLIP, tiny synthetic AGIQA-3K)."""
from __future__ import annotations

import math
import os
import warnings

import pytest
import torch
from torch import nn

from clip.random_weights import save_random_weights
from dassl.config import get_cfg_default
from datasets.synthetic import make_synthetic_agiqa
from trainers import add_trainer_config
from trainers.method.model_spec import check_trainer_config
from trainers.fast.decoded_images import StreamedImages
from trainers.fast.feature_loaders import CachedFeatureLoader, FeatureEpochLoader
from trainers.fast.memory_plan import plan_memory
from tiny_trainer import build_tiny_trainer
from tolerances import MOS_ATOL, UNIT_ATOL

PAPER_TRANSFORMS = "('random_resized_crop', 'random_flip', 'normalize')"
TRAINABLE = ("prompt_learner.ctx", "regression.1.weight", "regression.1.bias",
             "regression.4.weight", "regression.4.bias")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("fast_assets")
    # 23 images -> 18 train (batch 4: 4 full batches, 2 dropped) and 5 test; mixed sizes.
    make_synthetic_agiqa(root / "data", n_images=23, sizes=((64, 48), (40, 56), (48, 48)))
    weights = save_random_weights(root / "tiny.pt", "tiny-vit")
    return {"root": str(root / "data"), "weights": str(weights)}


@pytest.fixture(scope="module")
def large_assets(assets, tmp_path_factory):
    """12 images larger than the 224 px test crop (9 train / 3 test), the same tiny CLIP."""
    root = tmp_path_factory.mktemp("large_assets")
    make_synthetic_agiqa(root / "data", n_images=12, sizes=((300, 260), (260, 320)))
    return {"root": str(root / "data"), "weights": assets["weights"]}


def make_trainer(assets, out_dir, pipeline=None, prec="fp32", transforms=PAPER_TRANSFORMS,
                 *opts):
    return build_tiny_trainer(
        assets["root"], assets["weights"], out_dir,
        "TRAINER.CLIP_AGIQA.PREC", prec, "TRAINER.CLIP_AGIQA.ENCODE_BATCH_SIZE", "5",
        "DATALOADER.TRAIN_X.BATCH_SIZE", "4", "DATALOADER.TEST.BATCH_SIZE", "2",
        "INPUT.TRANSFORMS", transforms, "INPUT.INTERPOLATION", "bicubic", "OPTIM.LR", "0.01",
        "OPTIM.MAX_EPOCH", "2",
        *(["TRAINER.CLIP_AGIQA.PIPELINE", pipeline] if pipeline else []), *opts)


def trainable(trainer):
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters()
            if p.requires_grad}


def max_param_diff(a, b):
    return max((a[n] - b[n]).abs().max().item() for n in TRAINABLE)


@pytest.mark.slow
def test_fast_is_the_default_and_batches_match_the_reference_loader(assets, tmp_path):
    fast = make_trainer(assets, tmp_path)
    assert fast.pipeline == "fast" and fast.cfg.TRAINER.CLIP_AGIQA.PIPELINE == "fast"
    assert isinstance(fast.train_loader_x, FeatureEpochLoader)
    assert isinstance(fast.test_loader, CachedFeatureLoader)
    reference = fast.dm.train_loader_x
    assert len(fast.train_loader_x) == len(reference) == 4  # 18 images, drop_last
    for seed in (0, 1):
        torch.manual_seed(seed)
        expected = [batch["index"] for batch in reference]
        after_reference = torch.rand(1)
        torch.manual_seed(seed)
        got = list(fast.train_loader_x)
        assert torch.equal(torch.rand(1), after_reference)  # same RNG use as the reference
        assert [b["index"].tolist() for b in got] == [i.tolist() for i in expected]
        for batch in got:
            assert batch["feat"].shape == (4, 64) and batch["feat"].dtype == torch.float32
            assert torch.allclose(batch["feat"].norm(dim=-1), torch.ones(4), rtol=0, atol=UNIT_ATOL)
            items = [fast.dm.dataset.train_x[i] for i in batch["index"].tolist()]
            assert batch["impath"] == [item.impath for item in items]
            assert batch["mos"].tolist() == [item.mos for item in items]
    assert fast.image_feature_encoder.calls == 2 * math.ceil(16 / 5)  # used images only


@pytest.mark.parametrize("position, csc", [("end", False), ("middle", True), ("front", False)])
def test_truncated_text_tower_equals_the_full_one(assets, tmp_path, position, csc):
    trainer = make_trainer(assets, tmp_path, "fast", "fp32", PAPER_TRANSFORMS,
                           "TRAINER.CLIP_AGIQA.CLASS_TOKEN_POSITION", position,
                           "TRAINER.CLIP_AGIQA.CSC", str(csc))
    model = trainer.model
    learner = model.prompt_learner
    assert learner.n_used_tokens == 1 + 4 + 1 + 2  # SOT, 4 ctx, one-token level name, ".", EOT
    full = model.text_encoder(learner(), learner.tokenized_prompts)  # all 77 positions
    full = (full / full.norm(dim=-1, keepdim=True)).float()
    model.train()
    truncated = model.text_features()
    # fp32 features of norm 1: the two paths differ only in summation order (8 vs 77 positions
    # in the same matmuls), a few float32 roundings (eps 1.2e-7) per layer; 1e-5 leaves room for
    # any CPU's blocking (UNIT_ATOL), while a wrong truncation (a used position dropped) changes
    # unit vectors at their own scale.
    torch.testing.assert_close(truncated, full, rtol=0, atol=UNIT_ATOL)
    # A loss whose gradient is not zero: a fixed random direction in feature space. (The sum of
    # squares of unit vectors is a constant, so its gradient would be rounding noise alone.)
    direction = torch.randn(full.shape, generator=torch.Generator().manual_seed(0))
    grad_full = torch.autograd.grad((full * direction).sum(), learner.ctx)[0]
    grad_truncated = torch.autograd.grad((truncated * direction).sum(), learner.ctx)[0]
    scale = grad_full.abs().max()
    assert scale > 1e-3  # a real gradient, far above float32 rounding
    # Same summation-order argument, relative to the gradient's scale.
    torch.testing.assert_close(grad_truncated, grad_full, rtol=0, atol=UNIT_ATOL * float(scale))
    model.eval()
    with torch.no_grad():
        cached = model.text_features()
        assert model.text_features() is cached
        # Not a constant shift, which LayerNorm removes (the features would move by rounding).
        learner.ctx.add_(0.1 * torch.randn(learner.ctx.shape,
                                           generator=torch.Generator().manual_seed(1)))
        assert not torch.allclose(model.text_features(), cached, rtol=0, atol=UNIT_ATOL)


@pytest.mark.slow
@pytest.mark.parametrize("head_input", ["image_text", "text", "image"])
def test_fast_and_reference_steps_give_the_same_parameters(assets, tmp_path, head_input):
    """Same augmented batches, same dropout masks (seeded before each step), 3 SGD steps."""
    opts = ("TRAINER.CLIP_AGIQA.HEAD_INPUT", head_input)
    fast = make_trainer(assets, tmp_path / "fast", "fast", "fp32", PAPER_TRANSFORMS, *opts)
    reference = make_trainer(assets, tmp_path / "reference", "reference", "fp32",
                             PAPER_TRANSFORMS, *opts)
    assert reference.pipeline == "reference" and fast.pipeline == "fast"
    assert max_param_diff(trainable(fast), trainable(reference)) == 0.0
    loader = fast.train_loader_x
    pixels = []
    transform = loader.transform
    loader.transform = lambda images, idx: pixels.append(transform(images, idx)) or pixels[-1]
    torch.manual_seed(7)
    feature_batches = list(loader)
    images = torch.cat(pixels)
    fast.set_model_mode("train")
    reference.set_model_mode("train")
    for step, batch in enumerate(feature_batches[:3]):
        image_batch = {"img": images[4 * step: 4 * step + 4], "mos": batch["mos"]}
        torch.manual_seed(100 + step)
        loss_ref = reference.forward_backward(image_batch)["loss"]
        torch.manual_seed(100 + step)
        loss_fast = fast.forward_backward(batch)["loss"]
        # Same pixels through cached features vs a per-batch forward: rounding only, on an MSE
        # of MOS-scale values (MOS_ATOL relative to the MOS scale 5 is 5e-5).
        assert loss_fast == pytest.approx(loss_ref, rel=MOS_ATOL / 5)
    untrained = make_trainer(assets, tmp_path / "x", "fast", "fp32", PAPER_TRANSFORMS, *opts)
    moved = max_param_diff(trainable(fast), trainable(untrained))
    assert moved > 1e-3  # the steps did change the parameters ...
    # ... identically: gradients that agree to float32 rounding, times LR and 3 steps, move the
    # parameters apart by < 1e-6, three orders below what the steps moved them.
    assert max_param_diff(trainable(fast), trainable(reference)) < 1e-6


def without_dropout(trainer):
    for i, module in enumerate(trainer.model.regression):
        if isinstance(module, nn.Dropout):
            trainer.model.regression[i] = nn.Identity()
    return trainer


@pytest.mark.slow
def test_whole_epochs_draw_the_same_batches_and_crops_as_the_reference(assets, tmp_path):
    """End to end through both loaders (dropout off, so the RNG streams line up on the CPU):
    only PIL's vs our 8-bit rounding differs, so the parameters agree closely (measured ~1e-6);
    a different seed (other batches and crops) moves them far apart (~0.1)."""
    runs = {}
    for name, pipeline, seed in [("fast", "fast", 3), ("reference", "reference", 3),
                                 ("other_seed", "fast", 4)]:
        trainer = without_dropout(make_trainer(assets, tmp_path / name, pipeline))
        torch.manual_seed(seed)
        for trainer.epoch in range(2):
            trainer.run_epoch()
            trainer.test()
        runs[name] = (trainable(trainer), trainer.last_test_results["srcc"])
    same = max_param_diff(runs["fast"][0], runs["reference"][0])
    other = max_param_diff(runs["fast"][0], runs["other_seed"][0])
    # 1e-4 lies between the effect of one 8-bit level on some pixels and that of other batches.
    assert same < 1e-4 and other > 1e-2


def test_test_features_are_computed_once(assets, tmp_path):
    fast = make_trainer(assets, tmp_path / "fast")
    reference = make_trainer(assets, tmp_path / "reference", "reference")
    calls = []
    forward = fast.model.image_encoder.forward
    fast.model.image_encoder.forward = lambda x: calls.append(len(x)) or forward(x)
    first = fast.test()
    predictions = fast.evaluator.predictions()
    assert calls == [5]  # one chunk holds the 5 test images
    fast.set_model_mode("train")
    assert fast.test() == first and fast.evaluator.predictions() == predictions
    assert calls == [5]
    # The reference pipeline re-encodes the test set; predictions agree up to 8-bit rounding.
    reference.test()
    ref_pred = torch.tensor([p[2] for p in reference.evaluator.predictions()])
    assert [p[0] for p in reference.evaluator.predictions()] == [p[0] for p in predictions]
    # One 8-bit level on some pixels (PIL's rounding vs ours) moves a tiny-model prediction by
    # < 1e-3; another image moves it by > 1e-2.
    assert torch.allclose(torch.tensor([p[2] for p in predictions]), ref_pred, rtol=0, atol=1e-3)
    with torch.no_grad():
        fast.model.image_encoder.proj.mul_(2.0)  # an edited encoder invalidates the cache
    fast.test()
    assert calls == [5, 5]


@pytest.mark.slow
@pytest.mark.parametrize("prec", ["fp32", "amp"])
def test_fast_pipeline_trains_and_tests_end_to_end(assets, tmp_path, prec, capsys):
    extra = ["TEST.FINAL_MODEL", "best_val", "TEST.ALLOW_SELECTION_ON_TEST", "True"]
    trainer = make_trainer(assets, tmp_path, None, prec, PAPER_TRANSFORMS, *extra)
    before = trainable(trainer)
    capsys.readouterr()
    trainer.train()
    # Selection on the test split is said once, as a plain line.
    assert capsys.readouterr().out.count("SELECTED ON THE TEST SET") == 1
    assert max_param_diff(before, trainable(trainer)) > 0
    for key in ("last", "selected"):
        metrics = trainer.final_results[key]["metrics"]
        assert math.isfinite(metrics["rmse"]) and math.isfinite(metrics["srcc"])
    assert trainer.final_results["last"]["epoch"] == 2
    assert len(trainer.evaluator.predictions()) == 5


@pytest.mark.slow
def test_reference_pipeline_trains_end_to_end(assets, tmp_path):
    trainer = make_trainer(assets, tmp_path, "reference")
    trainer.train()
    assert not isinstance(trainer.train_loader_x, FeatureEpochLoader)
    assert math.isfinite(trainer.final_results["last"]["metrics"]["rmse"])


def test_unsupported_transforms_fall_back_to_the_reference(assets, tmp_path, capsys):
    trainer = make_trainer(assets, tmp_path, "fast", "fp32", "('colorjitter', 'normalize')")
    assert trainer.pipeline == "reference"
    assert not isinstance(trainer.test_loader, CachedFeatureLoader)
    log = capsys.readouterr().out
    assert log.count("Fast pipeline unavailable") == 1 and "colorjitter" in log


def run_two_epochs(trainer, seed: int = 3) -> dict:
    """Two epochs (train, then test) from `seed`: trained parameters, test features and
    predictions."""
    torch.manual_seed(seed)
    for trainer.epoch in range(2):
        trainer.run_epoch()
        trainer.test()
    return {"params": trainable(trainer), "features": trainer.test_loader.features().clone(),
            "predictions": trainer.evaluator.predictions()}


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_over_the_memory_budget_nothing_changes_but_where_images_are(large_assets, tmp_path,
                                                                      capsys, workers):
    """A budget below 12 images larger than the test crop forces both over-budget paths:
    training images decoded again every epoch (in `workers` loader processes) and test images
    kept as their test crops. The batches, crops, features, steps and predictions are those of decoding once:
    the same pixels go through the same computations (dropout off, same seed)."""
    once = without_dropout(make_trainer(large_assets, tmp_path / "once", "fast"))
    assert "within TRAINER.CLIP_AGIQA.DECODED_MEMORY_GB 12: every split is decoded once" \
        in capsys.readouterr().out
    size = tuple(once.cfg.INPUT.SIZE)
    crops = 3 * size[0] * size[1] * 3  # bytes of the 3 test crops: the budget just holds them
    budget = without_dropout(make_trainer(
        large_assets, tmp_path / "budget", "fast", "fp32", PAPER_TRANSFORMS,
        "TRAINER.CLIP_AGIQA.DECODED_MEMORY_GB", repr(crops * 1.01 / 2 ** 30),
        "DATALOADER.NUM_WORKERS", str(workers)))
    log = capsys.readouterr().out
    assert log.count("Memory: ") == 1 and "over TRAINER.CLIP_AGIQA.DECODED_MEMORY_GB" in log
    assert "training images decoded again every epoch" in log and "test crops" in log
    assert (budget.train_loader_x.storage, budget.test_loader.storage) == ("streamed",
                                                                           "transformed")
    assert isinstance(budget.train_loader_x.decoded(), StreamedImages)
    expected, got = run_two_epochs(once), run_two_epochs(budget)
    assert torch.equal(got["features"], expected["features"])
    assert all(torch.equal(got["params"][n], expected["params"][n]) for n in TRAINABLE)
    assert got["predictions"] == expected["predictions"]
    assert budget.test_loader.decoded().groups[0].shape == (3, 3, *size)  # 3 test crops


def test_training_images_stay_decoded_when_they_fit_beside_the_test_crops(large_assets,
                                                                          tmp_path):
    once = make_trainer(large_assets, tmp_path / "once", "fast")
    full = once.memory_plan.full_bytes
    size = tuple(once.cfg.INPUT.SIZE)
    # Between "train + test crops" and "everything at full size".
    needed = full["train"] + 3 * size[0] * size[1] * 3  # 3 test crops
    assert needed < sum(full.values())
    budget = make_trainer(large_assets, tmp_path / "budget", "fast", "fp32", PAPER_TRANSFORMS,
                          "TRAINER.CLIP_AGIQA.DECODED_MEMORY_GB", repr(needed / 2 ** 30 * 1.001))
    assert (budget.memory_plan.train, budget.memory_plan.evaluation) == ("full", "transformed")
    assert budget.memory_plan.kept_bytes == needed
    assert torch.equal(budget.test_loader.features(), once.test_loader.features())


def test_multi_crop_tests_are_decoded_per_evaluation_over_the_budget(assets, tmp_path, capsys):
    """TEST.NUM_CROPS 4 crops the full image: over the budget the test split is decoded again
    for each evaluation (no stored crops), with the same features."""
    crops = ("TEST.NUM_CROPS", "4")
    once = make_trainer(assets, tmp_path / "once", "fast", "fp32", PAPER_TRANSFORMS, *crops)
    budget = make_trainer(assets, tmp_path / "budget", "fast", "fp32", PAPER_TRANSFORMS, *crops,
                          "TRAINER.CLIP_AGIQA.DECODED_MEMORY_GB", "1e-6")
    assert "test/val images decoded again for each evaluation" in capsys.readouterr().out
    assert budget.test_loader.storage == "streamed"
    expected = once.test_loader.features()
    assert expected.shape[:2] == (5, 4)
    assert torch.equal(budget.test_loader.features(), expected)


def test_a_trained_encoder_gets_the_same_augmented_images_over_the_budget(assets, tmp_path):
    """TRAIN_IMAGE_ENCODER: the image batches of a streamed epoch equal those of decoding once."""
    opts = ("TRAINER.CLIP_AGIQA.TRAIN_IMAGE_ENCODER", "last_k")
    once = make_trainer(assets, tmp_path / "once", "fast", "fp32", PAPER_TRANSFORMS, *opts)
    budget = make_trainer(assets, tmp_path / "budget", "fast", "fp32", PAPER_TRANSFORMS, *opts,
                          "TRAINER.CLIP_AGIQA.DECODED_MEMORY_GB", "1e-6")
    assert budget.train_loader_x.storage == "streamed"
    batches = {}
    for name, trainer in (("once", once), ("budget", budget)):
        torch.manual_seed(5)
        batches[name] = [(b["index"], b["img"]) for b in trainer.train_loader_x]
    assert len(batches["once"]) == 4
    for (i, a), (j, b) in zip(batches["once"], batches["budget"]):
        assert torch.equal(i, j) and torch.equal(a, b)


def test_memory_plan_for_aigiqa20k_sizes():
    """AIGIQA-20K's default split (11,200 / 2,800 of its 14,000 labelled images) at 1024 px
    training and 512 px test images: 3 H W bytes each, exactly."""
    train, test = [(1024, 1024)] * 11_200, [(512, 512)] * 2_800
    plan = plan_memory({"train": train, "val": [], "test": test}, 12.0, (224, 224), 1, 4)
    assert plan.full_bytes == {"train": 3 * 1024 ** 2 * 11_200, "val": 0,
                               "test": 3 * 512 ** 2 * 2_800}
    assert (plan.train, plan.evaluation) == ("streamed", "transformed")
    assert plan.kept_bytes == 3 * 224 * 224 * 2_800  # the test crops only
    assert "34.86 GiB" in plan.message and "4 loader worker processes" in plan.message
    # Training images that fit once the test images are cropped stay decoded once.
    fits = plan_memory({"train": train[:3_500], "test": test}, 12.0, (224, 224), 1, 0)
    assert (fits.train, fits.evaluation) == ("full", "transformed")
    # Multi-crop tests need the full images: kept at full size while they fit, else decoded
    # again for each evaluation.
    crops = plan_memory({"train": train, "test": test}, 12.0, (224, 224), 5, 0)
    assert (crops.train, crops.evaluation) == ("streamed", "full")
    crops = plan_memory({"train": train, "test": test}, 2.0, (224, 224), 5, 0)
    assert (crops.train, crops.evaluation) == ("streamed", "streamed")
    # Images smaller than their test crops are kept as they are.
    small = plan_memory({"train": train, "test": [(128, 128)] * 2_800}, 12.0, (224, 224), 1, 0)
    assert small.evaluation == "full" and "smaller than their test crops" in small.message
    within = plan_memory({"train": train[:1_000], "test": test}, 12.0, (224, 224), 1, 0)
    assert (within.train, within.evaluation) == ("full", "full")


@pytest.mark.parametrize("key, value, message", [
    ("DECODED_MEMORY_GB", 0.0, "DECODED_MEMORY_GB must be a positive number"),
    ("PIPELINE", "turbo", "PIPELINE must be one of"),
    ("ENCODE_BATCH_SIZE", 0, "ENCODE_BATCH_SIZE must be a positive integer"),
    ("DECODED_ON", "gpu", "DECODED_ON must be one of"),
])
def test_config_values_are_validated(key, value, message):
    cfg = add_trainer_config(get_cfg_default())
    node = cfg.TRAINER.CLIP_AGIQA
    assert (node.PIPELINE, node.ENCODE_BATCH_SIZE, node.DECODED_ON) == ("fast", 256, "device")
    setattr(node, key, value)
    with pytest.raises(ValueError, match=message):
        check_trainer_config(cfg)


def test_loaders_the_fast_pipeline_replaces_do_not_warn_about_their_workers(tiny_assets, tmp_path):
    """DATALOADER.NUM_WORKERS above the CPU count: the fast pipeline starts no loader workers,
    so building (and replacing) Dassl's loaders says nothing; the replaced loader still has the
    workers, and torch's check, which it makes again when a loader starts them (the reference
    pipeline), still warns."""
    too_many = 2 * len(os.sched_getaffinity(0)) + 1 if hasattr(os, "sched_getaffinity") else 64
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = build_tiny_trainer(tiny_assets["root"], tiny_assets["weights"], tmp_path,
                                     "DATALOADER.NUM_WORKERS", str(too_many))
        trainer.test()
    assert trainer.pipeline == "fast"
    assert not [w for w in caught if "worker processes" in str(w.message)]
    with pytest.warns(UserWarning, match=f"will create {too_many} worker processes"):
        trainer.dm.train_loader_x.check_worker_number_rationality()

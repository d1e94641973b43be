"""Ablation configs (configs/ablations) and the HEAD_INPUT / STANDARDIZE_TARGET keys.

Every ablation yaml builds the trainer and runs one training step on a tiny random CLIP and a
tiny synthetic AGIQA-3K; the head input size follows the config; standardised targets give
predictions on the MOS scale that survive an eval-only reload.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml

import train
from clip.random_weights import save_random_weights
from dassl.config import load_config_file
from dassl.engine import build_trainer
from datasets.synthetic import make_synthetic_agiqa
from trainers.method.model_spec import count_bpe_tokens
from trainers.method.custom_clip import build_head_input
from tolerances import EXACT, MOS_ATOL, UNIT_ATOL, reorder_atol

REPO = Path(__file__).resolve().parents[1]
ABLATIONS = sorted((REPO / "configs/ablations").glob("*.yaml"))
DATASET_YAML = str(REPO / "configs/datasets/AGIQA.yaml")
BASE_YAML = REPO / "configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml"
EMBED_DIM = 64  # tiny presets


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablations")
    # At least 224 - 2 * 4 px: random_crop takes a 224 px window of the padded image.
    make_synthetic_agiqa(root / "data", n_images=6, sizes=((224, 232),))  # 4 train, 2 test
    return {"root": str(root / "data"),
            "tiny-vit": str(save_random_weights(root / "vit.pt", "tiny-vit")),
            "tiny-rn": str(save_random_weights(root / "rn.pt", "tiny-rn"))}


def setup_cfg(method_yaml, out_dir, *opts):
    args = train.build_parser().parse_args([
        "--dataset-config-file", DATASET_YAML, "--config-file", str(method_yaml),
        "--output-dir", str(out_dir), "--seed", "0", "--trainer", "CLIP_AGIQA", *opts])
    return train.setup_cfg(args)


def tiny_opts(assets, weights="tiny-vit"):
    return ["--root", assets["root"], "MODEL.BACKBONE.NAME", assets[weights],
            "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
            "DATALOADER.TEST.BATCH_SIZE", "8", "VERBOSE", "False",
            "TRAINER.CLIP_AGIQA.PREC", "fp32"]


def flat(node, prefix=""):
    out = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_every_ablation_is_the_base_config_plus_its_change():
    """Each ablation names the paper config as its `_BASE_` and writes only its own change, in
    a few lines under a one-line `# Ablation:` comment saying what and why."""
    base = flat(load_config_file(str(BASE_YAML)))
    assert len(ABLATIONS) >= 20
    readme = (REPO / "configs/ablations/README.md").read_text()
    for path in ABLATIONS:
        text = path.read_text()
        assert text.startswith("# Ablation: ") and text.count("\n#") == 0, path.name
        assert f"`{path.name}`" in readme, f"{path.name} missing from the README table"
        written = yaml.safe_load(text)
        assert (path.parent / written.pop("_BASE_")).resolve() == BASE_YAML, path.name
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
        assert len(lines) <= 12 and "LR_SCHEDULER" not in text, path.name
        merged = flat(load_config_file(str(path)))
        assert set(base) <= set(merged), f"{path.name} lacks base keys {set(base) - set(merged)}"
        changed = {k for k in merged if merged[k] != base.get(k)}
        assert path.name == "nctx16.yaml" or changed, f"{path.name} changes nothing"
        assert len(changed) <= 2, f"{path.name} changes more than one thing: {changed}"
        assert set(flat(written)) == (changed or set(flat(written))), (
            f"{path.name} writes keys it does not change: {set(flat(written)) - changed}")


def test_method_yamls_and_the_demo_name_the_paper_config_as_their_base():
    """The paper's schedule is written once: in `vit_b16_ep100.yaml`, read by every other
    method yaml and the demo through `_BASE_`."""
    for path in [*(REPO / "configs/trainers/CLIP_AGIQA").glob("*.yaml"),
                 *(REPO / "configs/demo").glob("*.yaml")]:
        if path == BASE_YAML:
            continue
        text = path.read_text()
        assert "LR_SCHEDULER" not in text and "_BASE_" in text, path.name
        assert load_config_file(str(path))["OPTIM"]["LR_SCHEDULER"] == "cosine", path.name


@pytest.mark.parametrize("method_yaml", ABLATIONS, ids=lambda p: p.stem)
def test_ablation_builds_and_trains_one_step(method_yaml, assets, tmp_path):
    declared = setup_cfg(method_yaml, tmp_path)
    backbone = declared.MODEL.BACKBONE.NAME
    assert backbone in ("ViT-B/16", "ViT-B/32", "RN50", "ViT-L/14")
    weights = "tiny-rn" if backbone.startswith("RN") else "tiny-vit"
    cfg = setup_cfg(method_yaml, tmp_path, *tiny_opts(assets, weights))
    torch.manual_seed(0)
    trainer = build_trainer(cfg)
    model, node = trainer.model, cfg.TRAINER.CLIP_AGIQA

    # The ablated setting reached the model.
    levels = len(cfg.DATASET.LEVEL_NAMES)
    assert list(trainer.dm.dataset.classnames) == list(cfg.DATASET.LEVEL_NAMES)
    if node.HEAD == "similarity":
        assert set(model.regression.state_dict()) == {"logit_scale", "slope", "intercept"}
    else:
        expected_in = {"image_text": EMBED_DIM * (1 + levels), "image": EMBED_DIM,
                       "text": EMBED_DIM * levels}[node.HEAD_INPUT]
        assert model.regression[1].in_features == expected_in
    n_ctx = count_bpe_tokens(node.CTX_INIT) if node.CTX_INIT else node.N_CTX
    assert model.prompt_learner.n_ctx == n_ctx
    assert model.prompt_learner.ctx.dim() == (3 if node.CSC and not node.CTX_INIT else 2)
    assert model.prompt_learner.class_token_position == node.CLASS_TOKEN_POSITION
    keys = set(model.regression.state_dict())
    upstream_keys = {"1.weight", "1.bias", "4.weight", "4.bias"}
    if node.HEAD == "mlp":
        assert keys == (upstream_keys | {"target_mean", "target_std"}
                        if node.STANDARDIZE_TARGET else upstream_keys)
    tuned = node.TRAIN_IMAGE_ENCODER != "none"
    assert trainer.get_model_names() == ["prompt_learner", "regression"] + (
        ["image_encoder"] if tuned else [])

    head_param = model.regression.slope if node.HEAD == "similarity" else model.regression[1].weight
    before = head_param.detach().clone()
    trainer.set_model_mode("train")
    summary = trainer.forward_backward(next(iter(trainer.train_loader_x)))
    assert math.isfinite(summary["loss"]) and summary["loss"] > 0
    assert not torch.equal(before, head_param)


def test_head_inputs_are_built_as_documented():
    torch.manual_seed(0)
    image = torch.nn.functional.normalize(torch.randn(3, 8), dim=1)
    text = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    both = build_head_input("image_text", image, text)
    assert both.shape == (3, 8 * 5)
    torch.testing.assert_close(both[1, 8:16], text[0], **EXACT)  # a copy
    assert torch.equal(build_head_input("image", image, None), image)
    only_text = build_head_input("text", image, text)
    assert only_text.shape == (3, 8 * 4)
    # Level l of image b: cos(image_b, level_l) * level_l.
    torch.testing.assert_close(only_text[2, 8:16], (image[2] @ text[1]) * text[1], rtol=0,
                               atol=UNIT_ATOL)  # batched vs one dot product of unit vectors
    with pytest.raises(ValueError, match="needs the level-prompt features"):
        build_head_input("text", image, None)


def test_unknown_head_input_is_rejected(assets, tmp_path):
    with pytest.raises(ValueError, match="HEAD_INPUT must be one of"):
        cfg = setup_cfg(BASE_YAML, tmp_path, *tiny_opts(assets),
                        "TRAINER.CLIP_AGIQA.HEAD_INPUT", "pixels")
        build_trainer(cfg)


def read_predictions(path):
    with open(path, newline="") as handle:
        return [(r["name"], float(r["mos"]), float(r["pred"])) for r in csv.DictReader(handle)]


def test_standardised_target_predicts_mos_and_survives_reload(assets, tmp_path):
    opts = tiny_opts(assets) + ["OPTIM.MAX_EPOCH", "1", "TRAINER.CLIP_AGIQA.N_CTX", "4"]
    yaml_path = str(REPO / "configs/ablations/standardize.yaml")
    base = ["--trainer", "CLIP_AGIQA", "--dataset-config-file", DATASET_YAML,
            "--config-file", yaml_path, "--seed", "0"]
    out = tmp_path / "run"
    train.main(base + ["--output-dir", str(out)] + opts)

    with open(out / "splits/train.csv", newline="") as handle:
        train_mos = torch.tensor([float(r["mos"]) for r in csv.DictReader(handle)],
                                 dtype=torch.float64)
    state = torch.load(out / "regression/model.pth.tar-1", weights_only=True)["state_dict"]
    # Computed and stored in float32 over the training MOS (<= 5): reorder_atol of that sum.
    stats_atol = reorder_atol(5.0, terms=len(train_mos), stages=2)
    assert float(state["target_mean"]) == pytest.approx(float(train_mos.mean()), abs=stats_atol)
    assert float(state["target_std"]) == pytest.approx(float(train_mos.std(unbiased=False)),
                                                       abs=stats_atol)
    # One epoch at LR 1e-5 leaves the head near its initialisation: the standardised output is
    # small, so predictions sit near the training mean (MOS scale), not near 0.
    rows = read_predictions(out / "predictions.csv")
    preds = torch.tensor([r[2] for r in rows], dtype=torch.float64)
    assert (preds - train_mos.mean()).abs().max() < train_mos.std()
    assert preds.min() > 0.5

    evaluated = train.main(base + ["--output-dir", str(tmp_path / "eval"), "--eval-only",
                                   "--model-dir", str(out), "--load-epoch", "1"] + opts)
    assert evaluated["mode"] == "eval_only"
    again = read_predictions(tmp_path / "eval/predictions.csv")
    assert [r[0] for r in again] == [r[0] for r in rows]
    # Another process and loader: the same maths up to the order of operations (MOS_ATOL).
    torch.testing.assert_close(torch.tensor([r[2] for r in again], dtype=torch.float64), preds,
                               rtol=0, atol=MOS_ATOL)


def test_standardised_loss_is_mse_over_variance(assets, tmp_path):
    cfg = setup_cfg(REPO / "configs/ablations/standardize.yaml", tmp_path, *tiny_opts(assets))
    trainer = build_trainer(cfg)
    model = trainer.model
    mos = torch.tensor([float(d.mos) for d in trainer.dm.dataset.train_x], dtype=torch.float64)
    assert float(model.regression.target_std) == pytest.approx(
        float(mos.std(unbiased=False)), abs=reorder_atol(5.0, terms=len(mos), stages=2))
    pred, target = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.5, 2.0, 3.0])
    std = float(model.regression.target_std)
    expected = float(((pred - target) ** 2).mean()) / std ** 2
    # float32: a handful of roundings (<= 10 FP32_EPS = 1.2e-6 relative); 1e-5 leaves room.
    assert float(model.loss(pred, target)) == pytest.approx(expected, rel=1e-5)
    # forward = standardised head output * std + mean.
    x = torch.randn(2, model.head_in_features)
    model.eval()
    raw = torch.nn.Sequential(*list(model.regression))(x)
    torch.testing.assert_close(model.regression(x),
                               raw * model.regression.target_std + model.regression.target_mean,
                               rtol=0, atol=MOS_ATOL)


def test_image_only_head_trains_under_amp(assets, tmp_path):
    """The prompts get no gradient with HEAD_INPUT image; the amp step must still work."""
    cfg = setup_cfg(REPO / "configs/ablations/head_image.yaml", tmp_path, *tiny_opts(assets),
                    "TRAINER.CLIP_AGIQA.PREC", "amp")
    trainer = build_trainer(cfg)
    ctx = trainer.model.prompt_learner.ctx.detach().clone()
    head = trainer.model.regression[4].weight.detach().clone()
    trainer.set_model_mode("train")
    summary = trainer.forward_backward(next(iter(trainer.train_loader_x)))
    assert math.isfinite(summary["loss"])
    assert torch.equal(ctx, trainer.model.prompt_learner.ctx)
    assert not torch.equal(head, trainer.model.regression[4].weight)


def test_agiqa_level_sets_carry_the_cut_points_they_name():
    """The five-level AGIQA-3K yaml cuts at the quintiles of the reference training split's
    mos_quality (the quantile rule, rounded to the 3 decimals the yaml keeps); the two-level one
    at the middle of the six AGIQA-3K cut points. Level sets on one database's MOS scale are
    named for it, so a sweep runs them only with that database."""
    import pandas as pd

    from datasets.agiqa import DEFAULT_THRESHOLDS
    from datasets.levels import quantile_thresholds
    from datasets.splits import split_table
    from scripts.sweeps.spec import database_tag

    table = pd.read_csv(REPO / "datasets/data/AGIQA-3K/data.csv")
    train_rows = split_table(table.rename(columns={"mos_quality": "mos"}), 0.2, 42).train
    quintiles = quantile_thresholds(table["mos_quality"].to_numpy()[train_rows], 5)
    five = load_config_file(str(REPO / "configs/ablations/levels5_agiqa.yaml"))["DATASET"]
    assert len(five["LEVEL_NAMES"]) == 5
    assert five["LEVEL_THRESHOLDS"] == pytest.approx(quintiles, abs=5e-4)  # 3 decimals kept
    two = load_config_file(str(REPO / "configs/ablations/levels2_agiqa.yaml"))["DATASET"]
    assert two["LEVEL_THRESHOLDS"] == [DEFAULT_THRESHOLDS["quality"][2]]
    for path in ABLATIONS:
        dataset = load_config_file(str(path)).get("DATASET", {})
        if dataset.get("LEVEL_THRESHOLDS"):
            assert database_tag(path.stem) is not None, f"{path.name}: MOS cut points, no database"

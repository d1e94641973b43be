"""Method variants end to end (issue 16): for each variant a 2-epoch tiny-CLIP run, scored again
by `load_scorer` exactly as evaluated, and the set of parameters that receive gradients."""
from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import pytest
import torch

import score
import train
from clip.checkpoint import model_from_file
from clip.random_weights import save_random_weights
from dassl.engine import build_trainer
from datasets.synthetic import make_synthetic_agiqa
from trainers import load_scorer
from tolerances import MOS_ATOL

REPO = Path(__file__).resolve().parents[1]
AGIQA_YAML = str(REPO / "configs/datasets/AGIQA.yaml")
METHOD_YAML = str(REPO / "configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml")
ABLATIONS = REPO / "configs/ablations"
UPSTREAM_HEAD = {"regression.1.weight", "regression.1.bias", "regression.4.weight",
                 "regression.4.bias"}

# variant -> (method yaml, extra opts); the tiny ViT has 2 blocks.
VARIANTS = {
    "similarity": (ABLATIONS / "head_similarity.yaml", []),
    "multicrop": (METHOD_YAML, ["TEST.NUM_CROPS", "4"]),
    "prompt_levels": (ABLATIONS / "prompt_levels_agiqa.yaml", []),
    "levels5": (ABLATIONS / "levels5_agiqa.yaml", []),
    "last_k": (ABLATIONS / "encoder_last2.yaml", ["TRAINER.CLIP_AGIQA.ENCODER_LAST_K", "1",
                                                  "TRAINER.CLIP_AGIQA.ENCODER_LR", "0.01"]),
    "lora": (ABLATIONS / "encoder_lora.yaml", ["TRAINER.CLIP_AGIQA.ENCODER_LR", "0.05"]),
}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """12 synthetic AGIQA-3K images of 240 x 300 px (a 2 x 2 crop grid fits at native size),
    6 train / 6 test, and tiny random CLIP weights."""
    root = tmp_path_factory.mktemp("variants")
    make_synthetic_agiqa(root / "data", n_images=12, sizes=((300, 240),))
    return {"root": root / "data", "weights": save_random_weights(root / "tiny.pt", "tiny-vit")}


def argv(assets, out, method_yaml, *opts, epochs=2, root=None):
    return ["--root", str(root or assets["root"]), "--seed", "0", "--trainer", "CLIP_AGIQA",
            "--dataset-config-file", AGIQA_YAML, "--config-file", str(method_yaml),
            "--output-dir", str(out), "MODEL.BACKBONE.NAME", str(assets["weights"]),
            "OPTIM.MAX_EPOCH", str(epochs), "OPTIM.LR", "0.05", "OPTIM.WARMUP_EPOCH", "0",
            "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "3",
            "DATALOADER.TEST.BATCH_SIZE", "4", "TRAINER.CLIP_AGIQA.N_CTX", "4",
            "TRAINER.CLIP_AGIQA.PREC", "fp32", "DATASET.TEST_RATIO", "0.5", "VERBOSE", "False",
            *opts]


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def prompts_of(assets) -> dict[str, str]:
    return {r["name"]: r["prompt"] for r in read_rows(assets["root"] / "AGIQA-3K/data.csv")}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_trains_two_epochs_and_scores_as_evaluated(variant, assets, tmp_path):
    method_yaml, opts = VARIANTS[variant]
    out = tmp_path / variant
    results = train.main(argv(assets, out, method_yaml, *opts))
    rows = read_rows(out / "predictions.csv")
    preds = torch.tensor([float(r["pred"]) for r in rows])
    assert len(rows) == 6 and preds.std() > 0

    scorer = load_scorer(out)
    paths = [str(assets["root"] / "AGIQA-3K" / r["name"]) for r in rows]
    prompts = [prompts_of(assets)[r["name"]] for r in rows] if variant == "prompt_levels" else None
    # Same model, same test transform, same maths in another order: float32 rounding only.
    torch.testing.assert_close(scorer(paths, prompts=prompts), preds, rtol=0, atol=MOS_ATOL)
    if variant == "multicrop":
        assert scorer.num_crops == 4
    if variant in ("last_k", "lora"):
        assert sorted(p.name for p in (out / "image_encoder").glob("model*")) == \
            sorted(p.name for p in (out / "regression").glob("model*"))
        # The scorer loaded the trained encoder parts, not fresh ones.
        tuned = dict(scorer.model.encoder_tuning.named_parameters())
        if variant == "lora":
            assert any(p.abs().sum() > 0 for n, p in tuned.items() if n.endswith("lora_B"))
        else:
            fresh = model_from_file(assets["weights"]).float().visual.transformer.resblocks[1]
            assert not torch.equal(tuned["0.attn.in_proj_weight"], fresh.attn.in_proj_weight)
    if variant == "prompt_levels":
        with pytest.raises(ValueError, match="generation prompt"):
            scorer(paths)


EXPECTED_TRAINABLE = {
    "default": lambda names: {"prompt_learner.ctx"} | UPSTREAM_HEAD,
    "similarity": lambda names: {"prompt_learner.ctx", "regression.slope",
                                 "regression.intercept"},
    "prompt_levels": lambda names: {"prompt_learner.ctx"} | UPSTREAM_HEAD,
    "last_k": lambda names: {"prompt_learner.ctx"} | UPSTREAM_HEAD | {
        n for n in names if n.startswith("image_encoder.transformer.resblocks.1.")},
    "lora": lambda names: {"prompt_learner.ctx"} | UPSTREAM_HEAD | {
        n for n in names if n.endswith((".lora_A", ".lora_B"))},
}


@pytest.mark.parametrize("variant", list(EXPECTED_TRAINABLE))
def test_gradients_reach_exactly_the_parameters_that_train(variant, assets, tmp_path):
    method_yaml, opts = VARIANTS.get(variant, (METHOD_YAML, []))
    args = train.build_parser().parse_args(argv(assets, tmp_path, method_yaml, *opts))
    torch.manual_seed(0)
    trainer = build_trainer(train.setup_cfg(args))
    model = trainer.model
    names = [n for n, _ in model.named_parameters()]
    expected = EXPECTED_TRAINABLE[variant](names)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == expected
    trainer.set_model_mode("train")
    trainer.forward_backward(next(iter(trainer.train_loader_x)))
    assert {n for n, p in model.named_parameters() if p.grad is not None} == expected
    # Trainable encoder parameters are float32 whatever PREC.
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)


def test_missing_generation_prompts_stop_the_run_before_training(assets, tmp_path, user_error):
    root = tmp_path / "data"
    make_synthetic_agiqa(root, n_images=6, sizes=((48, 48),))
    table = root / "AGIQA-3K/data.csv"
    text = table.read_text().splitlines()
    header = text[0].split(",")
    keep = [i for i, column in enumerate(header) if column != "prompt"]
    table.write_text("\n".join(",".join(line.split(",")[i] for i in keep) for line in text) + "\n")
    message = user_error(argv(assets, tmp_path / "run", ABLATIONS / "prompt_levels_agiqa.yaml",
                              root=root))
    assert "PROMPT_TEMPLATE needs each image's generation prompt" in message
    assert not (tmp_path / "run" / "prompt_learner").exists()


def test_score_py_takes_the_prompts_as_a_csv(assets, tmp_path, capsys):
    out = tmp_path / "run"
    train.main(argv(assets, out, ABLATIONS / "prompt_levels_agiqa.yaml", epochs=1))
    rows = read_rows(out / "predictions.csv")
    images = [str(assets["root"] / "AGIQA-3K" / r["name"]) for r in rows]
    prompt_csv = tmp_path / "prompts.csv"
    prompt_csv.write_text("name,prompt\n" + "".join(
        f"{r['name']},{prompts_of(assets)[r['name']]}\n" for r in rows))
    scores_csv = tmp_path / "scores.csv"
    assert score.main([str(out), *images, "--output", str(scores_csv), "--prompts",
                       str(prompt_csv), "--no-progress"]) == 0
    scored = {r["name"]: float(r["score"]) for r in read_rows(scores_csv)}
    for r in rows:
        assert scored[r["name"]] == pytest.approx(float(r["pred"]), abs=MOS_ATOL)  # as above
    capsys.readouterr()
    assert score.main([str(out), *images, "--output", str(scores_csv), "--no-progress"]) == 2
    assert "pass --prompts" in capsys.readouterr().err


def test_main_sh_takes_an_ablation_name_as_cfg(tmp_path):
    import os
    import subprocess

    record = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(f'#!/usr/bin/env bash\ncase "$1" in *method_args.py|*/names.py) exec "{sys.executable}" "$@" ;; esac\n'
                    f'printf "%s\\n" "$@" >> {record}\n')
    fake.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake), DATA="/datasets")
    subprocess.run(["bash", str(REPO / "scripts/main.sh"), "AGIQA", "head_similarity", "end",
                    "16", "-1", "False", "1"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    args = record.read_text().splitlines()
    assert args[args.index("--config-file") + 1] == str(ABLATIONS / "head_similarity.yaml")
    assert "head_similarity_-1shots" in args[args.index("--output-dir") + 1]
    unknown = subprocess.run(["bash", str(REPO / "scripts/main.sh"), "AGIQA", "no_such_cfg",
                              "end", "16", "-1", "False"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    assert unknown.returncode == 2 and "no_such_cfg" in unknown.stderr


def test_sweep_over_the_ablations_runs_only_what_applies_to_each_database():
    from scripts.sweeps.spec import build_spec, load_spec_file

    spec = build_spec(load_spec_file(REPO / "configs/sweeps/ablations.yaml"), {})
    ablations = sorted(p.stem for p in ABLATIONS.glob("*.yaml"))
    assert sorted(v.name for v in spec.variants) == ablations
    planned = {(r.dataset.name, r.variant.name) for r in spec.runs()}
    for name in ablations:
        on_agiqa, on_aigc = ("AGIQA", name) in planned, ("AIGCIQA2023", name) in planned
        if name.endswith("_agiqa"):
            assert on_agiqa and not on_aigc, name
        elif name.endswith("_aigciqa2023"):
            assert on_aigc and not on_agiqa, name
        else:
            assert on_agiqa and on_aigc, name
    assert ("AIGCIQA2023", "prompt_levels_agiqa") in spec.skipped()
    assert len(spec.runs()) == 3 * len(planned)          # three seeds each

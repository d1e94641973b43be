"""Cross-database evaluation end to end: train on a tiny AGIQA-1K (real label rows, rendered
images), then test on all of a tiny AIGIQA-20K with one eval-only command naming only B."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import train
from synthetic_databases import make_synthetic_agiqa1k, make_synthetic_aigiqa20k
from trainers import load_scorer
from tolerances import MOS_ATOL, reorder_atol

REPO = Path(__file__).resolve().parents[1]
AGIQA1K_YAML = str(REPO / "configs/datasets/AGIQA1K.yaml")
AIGIQA20K_YAML = str(REPO / "configs/datasets/AIGIQA20K.yaml")
LABELS = REPO / "tests" / "data" / "agiqa1k" / "AIGC_MOS_Zscore.xlsx"
TINY_20K = {"train": 1, "val": 1, "test": 1}  # 40 images per part


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def cross(tmp_path_factory, tiny_args):
    """A 1-epoch AGIQA-1K run (standardised target, fp32) and its eval-only run on AIGIQA-20K."""
    root = tmp_path_factory.mktemp("cross")
    make_synthetic_agiqa1k(root, LABELS, n_images=40, size=(40, 40), rendered=True)
    make_synthetic_aigiqa20k(root, TINY_20K, images="split", size=(40, 40))
    run = root / "run"
    train.main(tiny_args(run, "TRAINER.CLIP_AGIQA.PREC", "fp32",
                         "TRAINER.CLIP_AGIQA.STANDARDIZE_TARGET", "True",
                         "TEST.FINAL_MODEL", "best_val", "TEST.ALLOW_SELECTION_ON_TEST", "True",
                         root=root, dataset_yaml=AGIQA1K_YAML))
    results = train.main(["--eval-only", "--model-dir", str(run), "--dataset-config-file",
                          AIGIQA20K_YAML, "DATASET.SPLIT_MODE", "all",
                          "DATALOADER.NUM_WORKERS", "0"])
    return {"root": root, "run": run, "results": results, "eval": run / "eval" / "AIGIQA20K"}


def test_eval_only_tests_every_row_of_b_with_the_trained_model(cross):
    results = cross["results"]
    assert results["mode"] == "eval_only" and results["dataset"] == "AIGIQA20K"
    assert results["final"]["split"] == "test" and results["final"]["n_images"] == 40
    assert results["data"]["split"]["mode"] == "all"
    assert results["trained_run"]["dataset"] == "AGIQA1K"
    assert json.loads((cross["eval"] / "results.json").read_text()) == results
    rows = read_rows(cross["eval"] / "predictions.csv")
    # The predictions are those of the trained run's model (its weights, prompts, transforms,
    # precision and target statistics), scored independently of the eval-only run.
    scorer = load_scorer(cross["run"])
    folder = cross["root"] / "AIGIQA-20K" / "train"
    expected = scorer([str(folder / r["name"]) for r in rows])
    # Tolerance: the fast pipeline and the scorer resize on different code paths (float32):
    # the same maths in another order (MOS_ATOL).
    torch.testing.assert_close(torch.tensor([float(r["pred"]) for r in rows]), expected,
                               rtol=0, atol=MOS_ATOL)


def test_model_settings_and_levels_come_from_the_trained_run(cross):
    evaluated = yaml.safe_load((cross["eval"] / "config.yaml").read_text())
    # The evaluated model is the checkpoint's (its spec, recorded in results.json), not the
    # defaults of this command line (N_CTX 16).
    stored = torch.load(cross["run"] / "prompt_learner" / "model-best.pth.tar",
                        weights_only=True)["model_spec"]
    assert cross["results"]["model_spec"] == stored and stored["n_ctx"] == 4
    assert stored["standardize_target"] and stored["precision"] == "fp32"
    used = json.loads((cross["run"] / "results.json").read_text())["data"]["level_thresholds"]
    assert used["rule"] == "training quantiles"
    assert evaluated["DATASET"]["LEVEL_THRESHOLDS"] == used["values"]
    assert cross["results"]["data"]["level_thresholds"]["rule"] == "configured"
    # B's scale never reaches the model: the head keeps A's training statistics.
    head = torch.load(cross["run"] / "regression" / "model-best.pth.tar",
                      weights_only=True)["state_dict"]
    train_mos = [float(r["mos"]) for r in read_rows(cross["run"] / "splits" / "train.csv")]
    mean = sum(train_mos) / len(train_mos)
    # Tolerance: the buffer is a float32 mean of the training MOS (reorder_atol of that sum).
    assert float(head["target_mean"]) == pytest.approx(
        mean, abs=reorder_atol(max(map(abs, train_mos)), terms=len(train_mos), stages=2))


def test_cross_predictions_come_from_the_saved_spec_not_config_yaml(cross, tmp_path):
    """Deleting or altering the trained run's config.yaml changes no prediction: the model,
    transforms and precision come from the spec saved in its checkpoints."""

    def evaluate(run: Path, *flags: str) -> list[dict]:
        out = tmp_path / f"eval_{run.name}"
        train.main(["--eval-only", "--model-dir", str(run), *flags, "--output-dir", str(out),
                    "--dataset-config-file", AGIQA1K_YAML, "DATASET.SPLIT_MODE", "all",
                    "DATALOADER.NUM_WORKERS", "0"])
        return read_rows(out / "predictions.csv")

    reference = evaluate(cross["run"])
    assert len({r["pred"] for r in reference}) > 1  # rendered images: distinct predictions
    deleted, altered = tmp_path / "deleted", tmp_path / "altered"
    for copy in (deleted, altered):
        shutil.copytree(cross["run"], copy, ignore=shutil.ignore_patterns("eval"))
    (deleted / "config.yaml").unlink()
    config = yaml.safe_load((altered / "config.yaml").read_text())
    config["TRAINER"]["CLIP_AGIQA"].update(N_CTX=16, PREC="bf16", HEAD_INPUT="image",
                                           STANDARDIZE_TARGET=False, PIPELINE="reference")
    config["INPUT"].update(SIZE=[32, 32], INTERPOLATION="bilinear", PIXEL_MEAN=[0.5] * 3)
    config["MODEL"]["BACKBONE"]["NAME"] = "ViT-B/32"
    config["TEST"]["NUM_CROPS"] = 4
    (altered / "config.yaml").write_text(yaml.safe_dump(config))
    # Exactly the same rows and predictions (same weights, same computation).
    assert evaluate(deleted, "--root", str(cross["root"])) == reference
    assert evaluate(altered) == reference


def test_split_mode_all_cannot_train(tiny_args, user_error, tmp_path, cross):
    message = user_error(tiny_args(tmp_path / "out", "DATASET.SPLIT_MODE", "all",
                                   root=cross["root"], dataset_yaml=AIGIQA20K_YAML))
    assert "SPLIT_MODE all puts every row in the test part" in message
    assert "--eval-only" in message


def test_train_on_all_of_a_with_a_validation_part(tiny_args, user_error, tmp_path, cross):
    opts = ("DATASET.TEST_RATIO", "0", "DATASET.VAL_RATIO", "0.25",
            "TEST.FINAL_MODEL", "best_val")
    message = user_error(tiny_args(tmp_path / "a", *opts, root=cross["root"],
                                   dataset_yaml=AGIQA1K_YAML))
    assert "TEST_RATIO 0 trains on every row" in message and "TEST.SPLIT val" in message
    results = train.main(tiny_args(tmp_path / "b", *opts, "TEST.SPLIT", "val",
                                   root=cross["root"], dataset_yaml=AGIQA1K_YAML))
    # 40 rows: no test part, a quarter of them validate and are the reported split.
    assert results["final"]["split"] == "val" and results["final"]["n_images"] == 10
    assert results["selected"]["selected_on"] == "val"
    splits = tmp_path / "b" / "splits"
    assert len(read_rows(splits / "train.csv")) == 30 and len(read_rows(splits / "test.csv")) == 0


def test_train_on_all_of_a_without_test_or_validation_part(tiny_args, tmp_path, cross):
    """TEST_RATIO 0, VAL_RATIO 0, FINAL_MODEL last_step: every row trains, nothing is
    evaluated, the last-epoch model is the result and tests on all of B."""
    run = tmp_path / "all_of_a"
    results = train.main(tiny_args(run, "DATASET.TEST_RATIO", "0", "DATASET.VAL_RATIO", "0",
                                   "TEST.FINAL_MODEL", "last_step", "TRAINER.CLIP_AGIQA.PREC",
                                   "fp32", "TRAINER.CLIP_AGIQA.STANDARDIZE_TARGET", "True",
                                   epochs=2, root=cross["root"],
                                   dataset_yaml=AGIQA1K_YAML))
    assert len(read_rows(run / "splits" / "train.csv")) == 40
    assert len(read_rows(run / "splits" / "test.csv")) == 0
    assert results["final"]["n_images"] == 0 and results["last"]["epoch"] == 2
    assert results["selected"]["selected_on"] == "last_epoch"
    # No image was evaluated: every metric is undefined (NaN, null in results.json).
    assert set(results["final"]["metrics"]) >= {"srcc", "plcc", "krcc", "rmse"}
    assert all(v is None for v in results["final"]["metrics"].values())
    assert (run / "predictions.csv").read_text() == "name,mos,pred\n"
    assert (run / "prompt_learner" / "model.pth.tar-2").is_file()
    # (The AIGIQA-20K images here are grey placeholders: A's rendered images give an SRCC.)
    tested = train.main(["--eval-only", "--model-dir", str(run), "--dataset-config-file",
                         AGIQA1K_YAML, "DATASET.SPLIT_MODE", "all",
                         "DATALOADER.NUM_WORKERS", "0"])
    # The run's deployed model: its last epoch (a last_step run keeps no model-best file).
    assert tested["evaluated_checkpoint"]["load_epoch"] == 2
    assert tested["final"]["n_images"] == 40
    assert tested["final"]["metrics"]["srcc"] is not None  # finite, not NaN
    assert tested["trained_run"]["dataset"] == "AGIQA1K"


def test_blind_predictions_for_the_official_test_list(cross, tmp_path):
    import score
    from datasets.labels import read_label_table

    info = cross["root"] / "AIGIQA-20K" / "info_test.xlsx"
    out = tmp_path / "test_scores.csv"
    assert score.main([str(cross["run"]), "--list", str(info), "--output", str(out),
                       "--no-progress", "--workers", "1"]) == 0
    rows = read_rows(out)
    names = read_label_table(info, None)["name"].tolist()
    assert [r["name"] for r in rows] == names  # the official order and names, no MOS needed
    expected = load_scorer(cross["run"])(
        [str(cross["root"] / "AIGIQA-20K" / "test" / n) for n in names])
    torch.testing.assert_close(torch.tensor([float(r["score"]) for r in rows]), expected,
                               rtol=0, atol=MOS_ATOL)  # same scorer, same images: batching only


def test_an_evaluation_says_which_model_settings_come_from_the_checkpoint(cross, tmp_path,
                                                                           capsys):
    """The config's N_CTX (16 by default) is not the trained run's (4): the evaluation uses the
    checkpoint's and says so in one line, instead of silently overriding the config."""
    train.main(["--eval-only", "--model-dir", str(cross["run"]), "--output-dir",
                str(tmp_path / "eval"), "--dataset-config-file", AGIQA1K_YAML,
                "DATASET.SPLIT_MODE", "all", "DATALOADER.NUM_WORKERS", "0"])
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("The model comes from ")]
    assert len(lines) == 1 and "N_CTX 4 (the config files say 16)" in lines[0], lines

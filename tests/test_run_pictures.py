"""Pictures of a run: OUTPUT_DIR/scatter.png after training and eval-only, TensorBoard scalars."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import train
from clip.random_weights import save_random_weights
from datasets.synthetic import make_synthetic_agiqa
from trainers.reporting import save_scatter_plot, scatter_title
from tolerances import FP32_EPS

REPO = Path(__file__).resolve().parents[1]
MAX_EPOCH = 2
N_TRAIN, BATCH = 12, 4  # 3 iterations per epoch


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pictures")
    make_synthetic_agiqa(root / "data", n_images=20, sizes=((40, 40),))
    weights = save_random_weights(root / "tiny.pt", "tiny-vit")
    common = ["--root", str(root / "data"), "--seed", "0", "--trainer", "CLIP_AGIQA",
              "--dataset-config-file", str(REPO / "configs/datasets/AGIQA.yaml"),
              "--config-file", str(REPO / "configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml")]
    opts = ["MODEL.BACKBONE.NAME", str(weights), "OPTIM.MAX_EPOCH", str(MAX_EPOCH),
            "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", str(BATCH),
            "DATALOADER.TEST.BATCH_SIZE", "8", "TRAINER.CLIP_AGIQA.N_CTX", "4",
            "TRAINER.CLIP_AGIQA.PREC", "fp32", "DATASET.TEST_RATIO", "0.4"]
    out = root / "train"
    results = train.main(common + ["--output-dir", str(out)] + opts + [
        "TEST.FINAL_MODEL", "best_val", "TEST.ALLOW_SELECTION_ON_TEST", "True"])
    evaluated = root / "eval"
    train.main(common + ["--output-dir", str(evaluated), "--eval-only", "--model-dir", str(out)]
               + opts)
    return {"train": out, "eval": evaluated, "results": results}


def check_png(path: Path) -> None:
    assert path.is_file(), path
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[0] > 300 and pixels.shape[1] > 300
    assert pixels.std() > 10  # not a blank canvas


@pytest.mark.slow
def test_scatter_written_after_training_and_eval_only(runs):
    check_png(runs["train"] / "scatter.png")
    check_png(runs["eval"] / "scatter.png")
    log = (runs["eval"] / "log.txt").read_text()
    assert "Scatter plot written to" in log


def test_scatter_failure_only_warns(tmp_path):
    with pytest.warns(RuntimeWarning, match="could not draw"):
        assert save_scatter_plot([], {}, str(tmp_path / "scatter.png")) is False
    assert not (tmp_path / "scatter.png").exists()
    rows = [(f"{i}.jpg", float(i), float(i) ** 0.5) for i in range(8)]
    assert save_scatter_plot(rows, {"srcc": 1.0}, str(tmp_path / "ok.png"), title="t") is True
    check_png(tmp_path / "ok.png")


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def test_tensorboard_has_loss_learning_rates_and_epoch_metrics(runs):
    tags = scalars(runs["train"])
    iterations = MAX_EPOCH * (N_TRAIN // BATCH)
    for tag in ("train/loss", "train/lr", "train/lr/prompt_learner", "train/lr/regression"):
        assert [step for step, _ in tags[tag]] == list(range(iterations)), tag
    per_iteration = N_TRAIN // BATCH
    for module in ("prompt_learner", "regression"):
        values = [v for _, v in tags[f"train/lr/{module}"]]
        # Epoch 1: constant warm-up LR; epoch 2: the cosine schedule's LR (the yaml's 0.002).
        # TensorBoard stores float32: rounded by <= FP32_EPS / 2 relative.
        assert values[:per_iteration] == pytest.approx([1e-5] * per_iteration, rel=FP32_EPS)
        assert values[per_iteration:] == pytest.approx([0.002] * per_iteration, rel=FP32_EPS)
    assert all(np.isfinite(v) and v > 0 for _, v in tags["train/loss"])
    # Per-epoch evaluation (best_val): one value per epoch at steps 0 and 1 (the final re-test of
    # the selected model has its own selected/test/* tags).
    last = runs["results"]["last"]["metrics"]
    for metric in ("srcc", "plcc"):
        events = tags[f"test/{metric}"]
        assert [step for step, _ in events] == list(range(MAX_EPOCH))
        # float32 in TensorBoard; metrics are <= 1 in size (RMSE <= 5: FP32_EPS relative).
        assert events[-1][1] == pytest.approx(last[metric], rel=FP32_EPS, abs=FP32_EPS)



def test_scatter_title_names_the_selected_epoch_and_its_split(runs):
    """The title says which model the dots are: the selected epoch and where it was selected."""
    results = runs["results"]
    selected = results["selected"]
    assert selected["selected_on"] == "test"  # best_val without a val split selects on test
    title = scatter_title(results).splitlines()
    assert title[0] == "AGIQA quality: test split (after training)"
    assert title[1] == f"epoch {selected['epoch']}, selected on the test split by SRCC"
    evaluated = json.loads((runs["eval"] / "results.json").read_text())
    assert scatter_title(evaluated).splitlines() == ["AGIQA quality: test split (eval-only)",
                                                     f"checkpoint of epoch {selected['epoch']}"]
    last = dict(results, selected=dict(selected, epoch=MAX_EPOCH, selected_on="last_epoch",
                                       selection_metric=None))
    assert scatter_title(last).splitlines()[1] == f"epoch {MAX_EPOCH} (the last epoch, no selection)"

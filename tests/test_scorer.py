"""Scoring one's own images: trainers.inference.scorer.load_scorer and score.py, on a tiny trained run."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

import score
import train
from clip.random_weights import save_random_weights
from dassl.evaluation import iqa_metrics
from dassl.utils import ConfigError
from datasets.synthetic import make_synthetic_agiqa
from synthetic_databases import write_xlsx
from trainers import Scorer, load_scorer
from trainers.inference.run_model import load_run_model
from tolerances import EXACT, FP16_CTX_ATOL, METRIC_REL, MOS_ATOL, MOS_CSV_ATOL

REPO = Path(__file__).resolve().parents[1]


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished 2-epoch run (best epoch selected on test) with 10 test images of 2 sizes."""
    root = tmp_path_factory.mktemp("scorer")
    make_synthetic_agiqa(root / "data", n_images=20, sizes=((48, 40), (36, 52)))
    weights = save_random_weights(root / "tiny.pt", "tiny-vit")
    out = root / "run"
    train.main([
        "--root", str(root / "data"), "--seed", "0", "--trainer", "CLIP_AGIQA",
        "--dataset-config-file", str(REPO / "configs/datasets/AGIQA.yaml"),
        "--config-file", str(REPO / "configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml"),
        "--output-dir", str(out), "MODEL.BACKBONE.NAME", str(weights), "OPTIM.MAX_EPOCH", "2",
        "OPTIM.LR", "0.05", "OPTIM.WARMUP_EPOCH", "0", "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TRAIN_X.BATCH_SIZE", "5",
        "DATALOADER.TEST.BATCH_SIZE", "4", "TRAINER.CLIP_AGIQA.N_CTX", "4",
        "TRAINER.CLIP_AGIQA.PREC", "fp32", "DATASET.TEST_RATIO", "0.5",
        "TEST.FINAL_MODEL", "best_val", "TEST.ALLOW_SELECTION_ON_TEST", "True"])
    rows = read_rows(out / "predictions.csv")
    images = root / "data" / "AGIQA-3K"
    return {"out": out, "weights": str(weights), "images": images, "rows": rows,
            "paths": [str(images / r["name"]) for r in rows],
            "preds": torch.tensor([float(r["pred"]) for r in rows])}


@pytest.fixture(scope="module")
def scorer(run):
    return load_scorer(run["out"])


@pytest.mark.slow
def test_scorer_reproduces_the_run_predictions(run, scorer):
    assert isinstance(scorer, Scorer) and scorer.lower_better is False
    assert scorer.run.config_source == "model_spec"  # the checkpoint's own description
    assert len(run["rows"]) == 10 and run["preds"].std() > 0
    scores = scorer(run["paths"])
    assert scores.shape == (10,) and scores.dtype == torch.float32
    # The run's test loader batched the images otherwise: rounding only (MOS_ATOL).
    torch.testing.assert_close(scores, run["preds"], rtol=0, atol=MOS_ATOL)
    # Batching and threaded decoding do not change the result beyond rounding.
    torch.testing.assert_close(scorer.score_paths(run["paths"], batch_size=3, workers=2),
                               scores, rtol=0, atol=MOS_ATOL)
    train_mos = [float(r["mos"]) for r in read_rows(run["out"] / "splits/train.csv")]
    assert scorer.score_range == (min(train_mos), max(train_mos))


def test_pil_images_and_tensors_score_like_the_files(run, scorer):
    pil = [Image.open(p) for p in run["paths"][:3]]
    from_files = scorer(run["paths"][:3])
    # Same pixels, other batch sizes and input paths: rounding only (MOS_ATOL).
    torch.testing.assert_close(scorer(pil), from_files, rtol=0, atol=MOS_ATOL)
    # A tensor made from an 8-bit image (x = u / 255) is the same image.
    single = TF.to_tensor(pil[0].convert("RGB"))
    torch.testing.assert_close(scorer(single), from_files[:1], rtol=0, atol=MOS_ATOL)
    torch.testing.assert_close(scorer(single.unsqueeze(0).repeat(2, 1, 1, 1)),
                               from_files[:1].repeat(2), rtol=0, atol=MOS_ATOL)


def test_tensor_range_and_shape_are_checked(scorer):
    image = torch.full((1, 3, 32, 32), 0.5)
    too_bright = image.clone()
    too_bright[0, 1, 2, 3] = 2.0
    with pytest.raises(ValueError, match=r"\[0, 1\].*max 2"):
        scorer(too_bright)
    with pytest.raises(ValueError, match=r"\[0, 1\].*min -0.5"):
        scorer(image - 1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        scorer(image * float("nan"))
    with pytest.raises(ValueError, match="must be float"):
        scorer((image * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        scorer(torch.rand(1, 1, 32, 32))
    with pytest.raises(TypeError, match="paths, PIL images or float tensors"):
        scorer([42])


def test_checkpoint_choice(run, tmp_path):
    last = load_run_model(run["out"], epoch=2)
    assert last.model_files["regression"].endswith("model.pth.tar-2")
    assert load_run_model(run["out"]).model_files["regression"].endswith("model-best.pth.tar")
    with pytest.raises(FileNotFoundError, match=r"model.pth.tar-7 does not exist"):
        load_run_model(run["out"], epoch=7)
    with pytest.raises(FileNotFoundError, match="not a trained CLIP-AGIQA run"):
        load_scorer(tmp_path)


def make_original_layout(run, target: Path) -> None:
    """The original code's output: module folders only, fp16 context, DataParallel prefixes."""
    for name in ("prompt_learner", "regression"):
        checkpoint = torch.load(run["out"] / name / "model-best.pth.tar", weights_only=True)
        state = {f"module.{k}": (v.half() if k == "ctx" else v)
                 for k, v in checkpoint["state_dict"].items()}
        (target / name).mkdir(parents=True)
        torch.save({"state_dict": state, "epoch": checkpoint["epoch"], "optimizer": None,
                    "scheduler": None, "val_result": 0.5}, target / name / "model-best.pth.tar")


def test_original_layout_is_read_off_the_checkpoints(run, scorer, tmp_path):
    original = tmp_path / "original"
    make_original_layout(run, original)
    rebuilt = load_scorer(original, backbone=run["weights"])
    assert rebuilt.run.config_source == "checkpoint" and rebuilt.score_range is None
    spec = rebuilt.run.spec
    assert (spec.n_ctx, spec.csc, spec.head_input, spec.standardize_target) == (
        4, False, "image_text", False)
    assert rebuilt.test_input.pipeline == "reference"  # upstream preprocessing (PIL)
    pil = [Image.open(p).convert("RGB") for p in run["paths"]]
    pixels = rebuilt.preprocess(pil)
    # Same input, same weights (ctx rounded to fp16 as the original stores it).
    torch.testing.assert_close(rebuilt.predict(pixels), scorer.predict(pixels),
                               rtol=0, atol=FP16_CTX_ATOL)
    # ... and the fp16 ctx alone explains the difference: load it into our model too.
    ours = load_run_model(run["out"])
    with torch.no_grad():
        ours.model.prompt_learner.ctx.copy_(ours.model.prompt_learner.ctx.half().float())
    torch.testing.assert_close(rebuilt.predict(pixels),
                               Scorer(ours).predict(pixels), rtol=0, atol=MOS_ATOL)
    # Independent check: the PIL path agrees with the run's own (fast-pipeline) predictions
    # (fp16 ctx as above; the two pipelines' resampling agrees to well within that).
    torch.testing.assert_close(rebuilt(run["paths"]), run["preds"], rtol=0, atol=FP16_CTX_ATOL)


def test_original_layout_rejects_wrong_levels(run, tmp_path):
    original = tmp_path / "original"
    make_original_layout(run, original)
    with pytest.raises(ConfigError, match="6 level prompts but 2 level names"):
        load_scorer(original, backbone=run["weights"], level_names=["bad", "good"])
    wrong = ["awful", "bad", "poor", "fair", "good", "perfect"]
    with pytest.raises(ConfigError, match="level-name prompts differ"):
        load_scorer(original, backbone=run["weights"], level_names=wrong)


def test_score_cli_writes_scores_and_metrics(run, tmp_path, capsys):
    extra = tmp_path / "single.png"
    Image.open(run["paths"][0]).save(extra)
    folder = tmp_path / "folder" / "nested"
    folder.mkdir(parents=True)
    for path in run["paths"][1:]:
        shutil.copy(path, folder)
    (folder / "notes.txt").write_text("not an image")
    labels = tmp_path / "labels.csv"
    labels.write_text("name,mos\n" + "".join(f"{r['name']},{r['mos']}\n" for r in run["rows"]))
    output = tmp_path / "out" / "scores.csv"
    output.parent.mkdir()
    status = score.main([str(run["out"]), str(extra), str(tmp_path / "folder"),
                         "--output", str(output), "--labels", str(labels), "--batch-size", "4",
                         "--no-progress"])
    assert status == 0
    rows = read_rows(output)
    assert list(rows[0]) == ["name", "score"] and len(rows) == 10
    assert rows[0]["name"] == "single.png"
    names = sorted(f"nested/{r['name']}" for r in run["rows"][1:])
    assert [r["name"] for r in rows[1:]] == names  # relative to the folder, sorted
    # Copies of the test images: the run's predictions.
    by_name = {f"nested/{r['name']}": (float(r["pred"]), float(r["mos"])) for r in run["rows"]}
    scores = [float(r["score"]) for r in rows[1:]]
    torch.testing.assert_close(torch.tensor(scores),
                               torch.tensor([by_name[n][0] for n in names]), rtol=0,
                               atol=MOS_CSV_ATOL)
    report = json.loads((tmp_path / "out" / "scores.metrics.json").read_text())
    assert report["n_scored"] == 10 and report["n_labelled"] == 9  # single.png has no label
    expected = iqa_metrics(scores, [by_name[n][1] for n in names])
    # Same float64 metric of the same values (METRIC_REL).
    assert report["metrics"]["srcc"] == pytest.approx(expected["srcc"], rel=METRIC_REL)
    assert report["metrics"]["rmse"] == pytest.approx(expected["rmse"], rel=METRIC_REL)
    out = capsys.readouterr().out
    assert f"SRCC {report['metrics']['srcc']:.4f}" in out and "n = 9 of 10" in out


def test_score_cli_reports_bad_input(run, tmp_path, capsys):
    assert score.main([str(tmp_path), str(run["paths"][0])]) == 2
    assert "error:" in capsys.readouterr().err
    assert score.main([str(run["out"]), str(tmp_path / "missing.png"),
                       "--output", str(tmp_path / "s.csv")]) == 2
    assert "input not found" in capsys.readouterr().err
    bad_labels = tmp_path / "labels.csv"
    bad_labels.write_text("file,quality\na.png,1\n")
    assert score.main([str(run["out"]), run["paths"][0], "--labels", str(bad_labels),
                       "--output", str(tmp_path / "s.csv")]) == 2
    assert "columns name,mos" in capsys.readouterr().err


def test_score_cli_checks_the_output_before_scoring(run, tmp_path, capsys):
    """A folder or a missing folder as --output (or its metrics file) is one error line before
    the model is loaded and any image scored."""
    folder = tmp_path / "a_folder"
    folder.mkdir()
    for output in (folder, tmp_path / "missing" / "s.csv"):
        assert score.main([str(run["out"]), *run["paths"], "--output", str(output),
                           "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: cannot write {output}: ") and "Scoring" not in err
        assert len(err.strip().splitlines()) == 1
        assert ("it is a folder" if output == folder else "does not exist") in err
    (tmp_path / "s.metrics.json").mkdir()  # --labels also writes S.metrics.json beside S.csv
    labels = run["images"] / "data.csv"
    assert score.main([str(run["out"]), run["paths"][0], "--output", str(tmp_path / "s.csv"),
                       "--labels", str(labels), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "s.metrics.json: it is a folder" in err and "Scoring" not in err


def test_score_cli_reads_the_databases_own_label_files(run, tmp_path, capsys):
    """AGIQA-3K's data.csv (name, mos_quality, mos_align), AGIQA-1K's workbook (Image, MOS) and
    --mos-column: the metrics are those of the chosen MOS column."""
    data_csv = run["images"] / "data.csv"
    table = {row["name"]: row for row in read_rows(data_csv)}
    output = tmp_path / "s.csv"
    base = [str(run["out"]), *run["paths"], "--output", str(output), "--no-progress"]

    def metrics(*extra: str) -> dict:
        assert score.main(base + list(extra)) == 0, capsys.readouterr().err
        report = json.loads((tmp_path / "s.metrics.json").read_text())
        assert report["n_labelled"] == 10
        return report["metrics"]

    quality = metrics("--labels", str(data_csv))
    scores = [float(r["score"]) for r in read_rows(output)]
    names = [r["name"] for r in read_rows(output)]
    for column, got in (("mos_quality", quality),
                        ("mos_align", metrics("--labels", str(data_csv), "--mos-column",
                                              "mos_align"))):
        expected = iqa_metrics(scores, [float(table[n][column]) for n in names])
        # The same float64 metric of the same values (METRIC_REL).
        assert got["srcc"] == pytest.approx(expected["srcc"], rel=METRIC_REL), column
        assert got["rmse"] == pytest.approx(expected["rmse"], rel=METRIC_REL), column
    workbook = write_xlsx(tmp_path / "AIGC_MOS_Zscore.xlsx", ["Image", "Prompt", "MOS"],
                          [(n, "p", float(table[n]["mos_quality"])) for n in names])
    assert metrics("--labels", str(workbook))["srcc"] == pytest.approx(quality["srcc"],
                                                                       rel=METRIC_REL)
    assert score.main(base + ["--labels", str(data_csv), "--mos-column", "mos_typo"]) == 2
    assert "column 'mos_typo' (--mos-column)" in capsys.readouterr().err


def test_score_cli_shows_the_run_not_the_model_building(run, tmp_path, capsys):
    """The console gets one line on the run, where the scores went and nothing of the model's
    construction (prompt initialisation, checkpoint loading) unless --verbose asks for it."""
    output = tmp_path / "s.csv"
    args = [str(run["out"]), run["paths"][0], "--output", str(output), "--no-progress"]
    assert score.main(args) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"Scoring 1 image with {run['out']} (model config from model_spec, fp32 on cpu)",
        f"Scores written to {output}"]
    assert score.main(args + ["--verbose"]) == 0
    verbose = capsys.readouterr()
    assert verbose.out == ""
    assert 'Initial context: "X X X X"' in verbose.err
    assert verbose.err.splitlines()[-2:] == captured.err.splitlines()


def test_images_score_as_displayed_in_the_api_and_the_cli(run, scorer, tmp_path):
    """A 16-bit greyscale PNG scores as its 8-bit rendering (257 g is grey g), a sideways-stored
    photo with EXIF orientation 6 as the upright file; file and PIL inputs agree."""
    photo = Image.open(run["paths"][0]).convert("RGB")
    grey = np.asarray(photo.convert("L"))
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "i16.png")
    Image.fromarray(grey).save(tmp_path / "l8.png")
    photo.save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    photo.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "phone.png", exif=exif)
    paths = [str(tmp_path / n) for n in ("i16.png", "l8.png", "phone.png", "upright.png")]
    scores = scorer(paths)
    assert scores[0] == scores[1] and scores[2] == scores[3]
    assert scores[0] != scores[3]  # the grey copy is another picture: the check can fail
    # Same files, same call: bit-identical (EXACT).
    torch.testing.assert_close(scorer([Image.open(p) for p in paths]), scores, **EXACT)
    output = tmp_path / "scores.csv"
    assert score.main([str(run["out"]), *paths, "--output", str(output), "--no-progress"]) == 0
    cli = {r["name"]: float(r["score"]) for r in read_rows(output)}
    assert cli["i16.png"] == cli["l8.png"] and cli["phone.png"] == cli["upright.png"]


@pytest.mark.parametrize("device, cuda_gpus, message", [
    ("cuda", 0, "'cuda' was asked for but .*; use cpu"),
    ("cuda:3", 1, r"'cuda:3' was asked for but only 1 CUDA GPU\(s\) are visible"),
    ("gpu", 0, "unknown device 'gpu': use cpu, cuda, cuda:N or mps"),
])
def test_a_device_the_machine_lacks_is_one_error_line(run, tmp_path, capsys, monkeypatch,
                                                      device, cuda_gpus, message):
    # The machine's GPUs are set by the test, so it means the same on CPU and GPU machines.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda_gpus)
    with pytest.raises(ConfigError, match=message):
        load_scorer(run["out"], device=device)
    capsys.readouterr()
    status = score.main([str(run["out"]), run["paths"][0], "--device", device,
                         "--output", str(tmp_path / "s.csv"), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(("error: device", "error: unknown device"))


def test_score_cli_takes_options_between_the_run_and_the_images(run, tmp_path):
    # `score.py RUN --device cpu IMG ...` is how people type it; plain argparse refuses the images
    # after an option ("unrecognized arguments").
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    Image.open(run["paths"][0]).save(first)
    Image.open(run["paths"][1]).save(second)
    output = tmp_path / "scores.csv"
    status = score.main([str(run["out"]), "--device", "cpu", str(first), "--no-progress",
                         str(second), "--output", str(output)])
    assert status == 0
    assert [r["name"] for r in read_rows(output)] == ["a.png", "b.png"]

"""Per-generator results and the run's report.html: the registry's generator rules, the
per-generator table recomputed from predictions.csv, the paper's numbers from their one source,
and the page in headless Chromium (no broken image, no console error, nothing fetched, the
numbers equal results.json)."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

import train
from browser import chrome, page_problems, screenshot
from synthetic_databases import AIGIQA20K_MODEL_UNITS, aigiqa20k_names
from datasets.registry import DATABASES, aigciqa2023_generator
from dassl.utils.run_dir import REPORT_FILE
from trainers.run_report import paper_results, paper_row, write_run_report

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 2


@pytest.fixture(scope="module")
def runs(tiny_args, tiny_assets, tmp_path_factory) -> dict:
    """A tiny run under the paper's protocol (tested every epoch, selected on test) and an
    eval-only run of it."""
    base = tmp_path_factory.mktemp("report")
    trained = base / "train"
    train.main(tiny_args(trained, "TEST.FINAL_MODEL", "best_val",
                         "TEST.ALLOW_SELECTION_ON_TEST", "True", epochs=EPOCHS))
    evaluated = base / "eval"
    train.main(tiny_args(evaluated, flags=["--eval-only", "--model-dir", str(trained)]))
    return {"train": trained, "eval": evaluated, "base": base}


def test_generator_rules_follow_the_databases_names():
    agiqa = DATABASES["AGIQA"].generator
    names = pd.read_csv(REPO / "datasets/data/AGIQA-3K/data.csv")["name"]
    assert sorted({agiqa(n) for n in names}) == sorted(
        ["AttnGAN", "DALLE2", "glide", "midjourney", "sd1.5", "xl2.2"])
    assert DATABASES["AGIQA1K"].generator("dreamStudio_0001.png") == "dreamStudio"
    twenty = DATABASES["AIGIQA20K"].generator
    assert twenty("SDXL_Turbo_12.jpg") == "SDXL_Turbo"
    assert twenty("LCM_Pixart_3.jpg") == "LCM_Pixart"
    assert twenty("DALLE3_7.jpg") == "DALLE3"
    assert DATABASES["AIGCIQA2023"].generator is aigciqa2023_generator
    edges = {0: "Controlnet", 399: "Controlnet", 400: "DALLE", 1199: "Glide", 1200: "Lafite",
             1999: "stable-diffusion", 2000: "Unidiffuser", 2399: "Unidiffuser"}
    for index, model in edges.items():
        assert aigciqa2023_generator(f"{index}.png") == model
        assert aigciqa2023_generator(f"Image/allimg/{index}.png") == model
    assert aigciqa2023_generator("2400.png") is None
    assert aigciqa2023_generator("name.png") is None
    # AIGIQA-20K's model names, "_" and "." included (LCM_SD1.5), from its names' pattern.
    for part in aigiqa20k_names(per_unit={"train": 1}).values():
        assert {twenty(n) for n in part} == set(AIGIQA20K_MODEL_UNITS)


@pytest.mark.slow
def test_per_generator_equals_predictions_grouped_by_the_rule(runs):
    for kind in ("train", "eval"):
        results = json.loads((runs[kind] / "results.json").read_text())
        table = pd.read_csv(runs[kind] / "predictions.csv")
        table["generator"] = [DATABASES["AGIQA"].generator(n) for n in table["name"]]
        generators = results["final"]["per_generator"]
        assert set(generators) == set(table["generator"])
        for name, group in table.groupby("generator"):
            entry = generators[name]
            assert entry["n_images"] == len(group)
            if len(group) < 3:
                assert entry["srcc"] is None and entry["plcc"] is None
                continue
            # The same float64 arrays through scipy: equal to the last bits (no tolerance).
            srcc = stats.spearmanr(group["pred"], group["mos"])[0]
            plcc = stats.pearsonr(group["pred"], group["mos"])[0]
            for got, want in ((entry["srcc"], srcc), (entry["plcc"], plcc)):
                assert (got is None and not math.isfinite(want)) or got == pytest.approx(
                    want, rel=1e-12, abs=1e-12)  # float64 summation order only


@pytest.mark.slow
def test_curves_and_level_probabilities_are_the_runs(runs, tiny_assets):
    """The page's sources: the TensorBoard scalars of every tested epoch, and level
    probabilities equal to the scorer's for the same test images."""
    from trainers.inference.scorer import load_scorer
    from trainers.run_report import mos_bands, read_curves

    results = json.loads((runs["train"] / "results.json").read_text())
    curves = read_curves(str(runs["train"]))
    assert sorted(curves["test/srcc"]) == list(range(EPOCHS))  # tested every epoch
    # TensorBoard stores float32: the last epoch's value to float32 precision.
    assert curves["test/srcc"][EPOCHS - 1] == pytest.approx(
        results["last"]["metrics"]["srcc"], rel=1e-6)
    table = pd.read_csv(runs["eval"] / "predictions.csv")
    paths = [str(Path(tiny_assets["root"]) / "AGIQA-3K" / n) for n in table["name"]]
    scores, levels = load_scorer(str(runs["train"])).assess_paths(paths)
    # Same model, same test input; the trainer's batches differ from the scorer's: float32
    # summation order only.
    assert np.allclose(scores.numpy(), table["pred"], rtol=0, atol=1e-5)
    shown = []
    with chrome() as driver:
        driver.get((runs["eval"] / REPORT_FILE).as_uri())
        shown = [float(e.get_attribute("data-value")) for e in driver.find_elements(
            "css selector", 'span.num[data-kind="level-prob"]')]
    expected = [levels.numpy()[band].mean(axis=0) for band in
                mos_bands(table["mos"].to_numpy())]
    assert np.allclose(shown, np.concatenate(expected), rtol=0, atol=1e-6)


def test_paper_numbers_have_one_source():
    paper = paper_results()
    readme = (REPO / "README.md").read_text()
    docs = [readme] + [p.read_text() for p in (REPO / "docs").glob("*.md")]
    for row in paper["results"]:
        line = (f"| {row['label']} | {row['srcc']:.4f} | {row['plcc']:.4f} | "
                f"{row['krcc']:.4f} |")
        assert any(line in text for text in docs), line
    run = {"mode": "train", "backbone": "ViT-B/16", "dataset": "AIGCIQA2023",
           "task": "authenticity", "final_model": "best_val",
           "selected": {"selected_on": "test"}}
    assert paper_row(run)["srcc"] == 0.7940
    assert paper_row(dict(run, selected={"selected_on": "val"})) is None
    assert paper_row(dict(run, backbone="ViT-L/14")) is None
    assert paper_row(dict(run, task="correspondence")) is None


def shown_numbers(driver, kind: str) -> list:
    """The exact values (data-value) of the page's numbers of `kind`, checked against their
    shown text (rounded to the shown decimals)."""
    values = []
    for element in driver.find_elements("css selector", f'span.num[data-kind="{kind}"]'):
        exact = element.get_attribute("data-value")
        text = element.text
        if exact == "null":
            assert text == "n/a"
            values.append(None)
            continue
        decimals = len(text.split(".")[1])
        assert float(text) == pytest.approx(float(exact), abs=0.5 * 10 ** -decimals + 1e-12)
        values.append(float(exact))
    return values


@pytest.mark.slow
def test_run_pages_in_a_browser(runs, tmp_path):
    for kind in ("train", "eval"):
        results = json.loads((runs[kind] / "results.json").read_text())
        with chrome() as driver:
            driver.get((runs[kind] / REPORT_FILE).as_uri())
            assert page_problems(driver) == []
            for metric in ("srcc", "plcc", "krcc", "rmse"):
                assert shown_numbers(driver, f"run-{metric}") == [
                    results["final"]["metrics"][metric]]
            generators = results["final"]["per_generator"]
            assert shown_numbers(driver, "gen-srcc") == [g["srcc"] for g in generators.values()]
            assert shown_numbers(driver, "gen-plcc") == [g["plcc"] for g in generators.values()]
            # Each MOS band's level probabilities are a softmax's means: they sum to 1 (the
            # shown rounding aside, exact values to float32 precision).
            probabilities = np.asarray(shown_numbers(driver, "level-prob")).reshape(
                -1, len(results["level_names"]))
            assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
            headings = [h.text for h in driver.find_elements("css selector", "h2")]
            assert headings == ["Final metrics", "Per-epoch curves", "Predicted vs MOS",
                                "Per generator", "Images predicted worst",
                                "Level prompts read zero-shot"]
            thumbs = driver.find_elements("css selector", ".thumbs img")
            assert len(thumbs) == 8
            path = screenshot(driver, f"report_{kind}.png", tmp_path)
        with Image.open(path) as image:
            assert np.asarray(image.convert("L")).std() > 10


@pytest.mark.slow
def test_page_notes_images_no_longer_on_disk(runs, tmp_path):
    """The page of a run whose images were deleted since its test says so instead of a
    thumbnail."""
    results = json.loads((runs["eval"] / "results.json").read_text())
    rows = [tuple(r) for r in pd.read_csv(runs["eval"] / "predictions.csv").itertuples(
        index=False)]
    gone = [str(tmp_path / "deleted" / name) for name, _, _ in rows]
    page = write_run_report(str(tmp_path), results, rows, image_paths=gone)
    text = Path(page).read_text()
    assert text.count("image not on disk") == 8
    assert "8 of these images are no longer on disk" in text


def test_the_page_shows_the_runs_own_scatter_png(runs):
    """The scatter on the page is the run's scatter.png byte for byte (one drawing, with its
    title naming the selected epoch and split), not a second figure drawn for the page."""
    import base64

    for kind in ("train", "eval"):
        text = (runs[kind] / REPORT_FILE).read_text()
        section = text.split('id="predicted-vs-mos"')[1].split("</section>")[0]
        embedded = re.search(r'src="data:image/png;base64,([^"]+)"', section).group(1)
        assert base64.b64decode(embedded) == (runs[kind] / "scatter.png").read_bytes()


def test_report_is_one_offline_file():
    """The page shell links nothing outside itself."""
    from dassl.evaluation.html_page import page

    text = page("t", [("A b", "<p>x</p>")])
    assert not re.search(r"(src|href)=\"(https?:)?//", text)
    assert '<section id="a-b">' in text

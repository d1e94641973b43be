"""The sweep's report.html and generators.csv: per-generator medians from the runs'
results.json, and in headless Chromium the page links every run's own page, shows the medians
of summary.csv and embeds the box plots (nothing broken, nothing fetched)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from browser import chrome, page_problems, screenshot
from test_sweep import results_json, run_dir, sweep, two_by_two, write_run

# srcc of each run; nctx8 seed 2 is missing (planned, never run)
VALUES = {("nctx4", 1): 0.80, ("nctx4", 2): 0.90, ("nctx8", 1): 0.60}


def per_generator(srcc: float) -> dict:
    return {"midjourney": {"srcc": srcc, "plcc": srcc / 2, "n_images": 10},
            "xl2.2": {"srcc": None, "plcc": None, "n_images": 2}}


@pytest.fixture
def swept(tmp_path, capsys) -> Path:
    out = tmp_path / "sweep"
    for (variant, seed), srcc in VALUES.items():
        results = results_json(srcc, plcc=srcc / 2)
        results["final"] = {"per_generator": per_generator(srcc)}
        folder = run_dir(out, variant, seed)
        write_run(folder, results)
        (folder / "report.html").write_text(f"<!DOCTYPE html><title>{variant} {seed}</title>"
                                            f"<h1>run {variant} seed {seed}</h1>")
    assert sweep.main(two_by_two(out) + ["--collect-only"]) == 1  # one run missing
    assert f"sweep page: {out / 'report.html'}" in capsys.readouterr().out
    return out


def test_generators_csv_holds_the_medians(swept):
    table = pd.read_csv(swept / "generators.csv").set_index(["variant", "generator"])
    assert table.loc[("nctx4", "midjourney"), "n"] == 2
    assert table.loc[("nctx4", "midjourney"), "srcc_median"] == pytest.approx(0.85)
    assert table.loc[("nctx4", "midjourney"), "plcc_median"] == pytest.approx(0.425)
    assert table.loc[("nctx8", "midjourney"), "srcc_median"] == pytest.approx(0.60)
    assert np.isnan(table.loc[("nctx4", "xl2.2"), "srcc_median"])  # too few images: NaN
    assert table.loc[("nctx4", "xl2.2"), "n_images"] == 2


@pytest.mark.slow
def test_sweep_page_links_every_run(swept, tmp_path):
    summary = pd.read_csv(swept / "summary.csv")
    with chrome() as driver:
        driver.get((swept / "report.html").as_uri())
        assert page_problems(driver) == []
        links = driver.find_elements("css selector", "#runs a")
        targets = {Path(a.get_attribute("href").removeprefix("file://")).resolve()
                   for a in links}
        done = {(run_dir(swept, v, s) / "report.html").resolve() for v, s in VALUES}
        assert targets == done and len(links) == len(done)
        rows = driver.find_elements("css selector", "#runs tbody tr")
        assert len(rows) == 4 and "missing" in rows[-1].text
        shown = [float(e.get_attribute("data-value")) for e in driver.find_elements(
            "css selector", 'span.num[data-kind="median-srcc"]')]
        assert shown == summary["srcc_median"].tolist()
        assert len(driver.find_elements("css selector", "#box-plots img")) == 1
        screenshot(driver, "report_sweep.png", tmp_path)
        links[0].click()  # a run's own page opens from the sweep's
        assert driver.find_element("css selector", "h1").text.startswith("run nctx4 seed 1")
    # Relative links: the folder can move as a whole.
    text = (swept / "report.html").read_text()
    assert str(swept) not in text.split('id="runs"')[1]
    assert os.path.isfile(swept / "boxplot.png")

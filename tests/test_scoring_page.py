"""`score.py RUN --serve`: the Gradio scoring page in headless Chromium loads with no console
error and nothing fetched from outside, accepts an upload through the browser and shows the
scores `score.py` prints for the same files; without Gradio, one error line."""
from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import score
import train
from browser import chrome, console_errors, page_problems, screenshot

N_UPLOAD = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def trained(tiny_args, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serve") / "run"
    train.main(tiny_args(out))
    return out


def test_serve_without_gradio_is_one_error_line(trained, monkeypatch, user_error, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    assert score.main([str(trained), "--serve"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "pip install -r requirements-app.txt" in err[0]


def test_assess_paths_scores_are_score_paths(trained, tiny_assets):
    from trainers.inference.scorer import load_scorer

    scorer = load_scorer(str(trained))
    paths = sorted(str(p) for p in (Path(tiny_assets["root"]) / "AGIQA-3K").glob("*.jpg"))[:5]
    scores, levels = scorer.assess_paths(paths, batch_size=2)
    assert scores.tolist() == scorer.score_paths(paths, batch_size=2).tolist()  # bit-equal
    assert levels.shape == (5, len(scorer.level_names))
    assert levels.sum(dim=1).sub(1).abs().max() < 1e-5  # a softmax (float32 rounding)


@pytest.mark.slow
def test_scoring_page_in_a_browser_scores_like_score_py(trained, tiny_assets, tmp_path):
    from trainers.inference.app import serve
    from trainers.inference.scorer import load_scorer

    images = sorted((Path(tiny_assets["root"]) / "AGIQA-3K").glob("*.jpg"))[:N_UPLOAD]
    assert score.main([str(trained), *map(str, images), "--output", str(tmp_path / "s.csv"),
                       "--no-progress"]) == 0
    expected = pd.read_csv(tmp_path / "s.csv").set_index("name")["score"].to_dict()
    port = free_port()
    app = serve(load_scorer(str(trained)), str(trained), port=port, block=False)
    try:
        with chrome() as driver:
            driver.get(f"http://127.0.0.1:{port}/")
            deadline = time.time() + 60
            while not driver.find_elements("css selector", "#upload input[type=file]"):
                assert time.time() < deadline, "the page did not load"
                time.sleep(0.2)
            local = (f"http://127.0.0.1:{port}/", "data:", "blob:")
            assert page_problems(driver, local) == []
            upload = driver.find_element("css selector", "#upload input[type=file]")
            upload.send_keys("\n".join(str(p) for p in images))
            # The upload finishes before the button reacts; retry the click until results show.
            results = []
            while len(results) < N_UPLOAD:
                assert time.time() < deadline + 60, "no scores shown"
                driver.find_element("css selector", "#score-button").click()
                time.sleep(1.0)
                results = driver.find_elements("css selector", "#results .img-result")
            shown = {r.get_attribute("data-name"): float(r.get_attribute("data-score"))
                     for r in results}
            # score.py writes repr(float) of the same float32 scores: equal, not close.
            assert shown == expected
            gallery = driver.find_elements("css selector", "#gallery img")
            assert len(gallery) >= N_UPLOAD
            assert console_errors(driver) == []
            screenshot(driver, "scoring_page.png", tmp_path)
    finally:
        app.close()

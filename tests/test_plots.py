"""dassl.evaluation.plots: scatter with logistic fit, sweep box plots, CLI (PNG checks)."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dassl.evaluation import iqa_metrics
from dassl.evaluation.plots import (format_metrics, main, save_boxplot, save_scatter,
                                    scatter_figure, scatter_from_predictions)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TAB_RED = np.array([214, 39, 40])  # matplotlib "tab:red", the fitted curve's colour


def data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    mos = rng.uniform(0, 5, n)
    pred = np.tanh((mos - 2.5) / 2) + rng.normal(0, 0.1, n)
    return pred, mos


def red_pixels(path):
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.int64)
    # Antialiased edges blend the colour with the background: 30 of 765 levels keeps the
    # marker's body and leaves out blends and other colours (tab:blue is > 300 away).
    return int((np.abs(pixels - TAB_RED).sum(axis=-1) < 30).sum())


def check_png(path, min_kb=10):
    raw = path.read_bytes()
    assert raw[:8] == PNG_MAGIC and len(raw) > min_kb * 1024
    img = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    assert img.shape[0] > 300 and img.shape[1] > 300 and img.std() > 10  # not blank
    return img


def test_scatter_png_with_fit_and_metrics(tmp_path):
    pred, mos = data()
    path = tmp_path / "sub" / "scatter.png"
    shown = save_scatter(pred, mos, str(path), title="run")
    check_png(path)
    # Same float64 metrics of the same values (METRIC_REL, pytest.approx's default).
    assert shown == pytest.approx(dict(iqa_metrics(pred, mos)), nan_ok=True)
    assert shown["srcc"] > 0.9
    # Constant predictions: no logistic fit, so (nearly) no red curve pixels, only the legend.
    flat = tmp_path / "flat.png"
    save_scatter(np.zeros(20), np.linspace(0, 5, 20), str(flat))
    assert red_pixels(path) > 5 * red_pixels(flat) and red_pixels(path) > 300


def test_scatter_uses_given_title_metrics(tmp_path):
    pred, mos = data(30)
    given = {"srcc": 0.5, "plcc": 0.25, "krcc": None, "rmse": 1.0}
    assert save_scatter(pred, mos, str(tmp_path / "s.png"), title_metrics=given) == given
    assert format_metrics(given) == "SRCC 0.5000  PLCC 0.2500  KRCC nan  RMSE 1.0000"


def test_scatter_rejects_mismatched_inputs(tmp_path):
    with pytest.raises(ValueError, match="3 and 2"):
        save_scatter([1, 2, 3], [1, 2], str(tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()


def sweep_rows():
    rng = np.random.default_rng(1)
    return [{"dataset": "AGIQA", "variant": v, "protocol": "paper", "seed": s,
             "srcc": rng.uniform(0.7, 0.9), "plcc": rng.uniform(0.7, 0.9)}
            for v in ("vit_b16", "nctx8") for s in range(4)]


def test_boxplot_from_dataframe_and_rows(tmp_path):
    rows = sweep_rows()
    labels = save_boxplot(pd.DataFrame(rows), str(tmp_path / "box.png"))
    assert labels == ["vit_b16", "nctx8"]  # only the varying column, first-seen order
    check_png(tmp_path / "box.png")
    rows.append({"dataset": "AGIQA", "variant": "broken", "protocol": "val", "srcc": None,
                 "plcc": float("nan")})
    labels = save_boxplot(rows, str(tmp_path / "box2.png"), title="sweep")
    assert labels == ["vit_b16\npaper", "nctx8\npaper", "broken\nval"]
    check_png(tmp_path / "box2.png")


def test_boxplot_without_finite_values_fails_clearly(tmp_path):
    with pytest.raises(ValueError, match="no finite"):
        save_boxplot([{"variant": "a", "srcc": None, "plcc": None}], str(tmp_path / "b.png"))


def test_scatter_from_predictions_csv_and_cli(tmp_path, capsys):
    pred, mos = data(50)
    csv = tmp_path / "predictions.csv"
    pd.DataFrame({"name": [f"{i}.png" for i in range(50)], "mos": mos, "pred": pred}).to_csv(
        csv, index=False)
    metrics = scatter_from_predictions(str(csv), str(tmp_path / "a.png"))
    # Read back from the CSV's repr() floats: the same float64 metric (METRIC_REL).
    assert metrics["srcc"] == pytest.approx(iqa_metrics(pred, mos)["srcc"])
    assert main([str(csv), str(tmp_path / "b.png"), "--title", "x"]) == 0
    assert "SRCC" in capsys.readouterr().out
    check_png(tmp_path / "b.png")
    (tmp_path / "bad.csv").write_text("name,score\na,1\n")
    with pytest.raises(ValueError, match="name,mos,pred"):
        scatter_from_predictions(str(tmp_path / "bad.csv"), str(tmp_path / "c.png"))


def test_boxplot_axis_has_a_minimum_span_for_near_equal_values():
    from dassl.evaluation.plots import y_limits
    lo, hi = y_limits([0.8012, 0.8016])
    # One run per protocol: the axis must not magnify a 4e-4 difference to full height.
    # Float64 arithmetic of decimal inputs: a few FP64_EPS; approx's rel 1e-6 is far above.
    assert hi - lo == pytest.approx(0.1) and lo < 0.8012 and hi > 0.8016
    assert (lo + hi) / 2 == pytest.approx(0.8014)
    lo, hi = y_limits([0.2, 0.9])
    assert lo == pytest.approx(0.13) and hi == pytest.approx(0.97)


def test_scatter_figure_draws_the_identity_line_and_the_title(tmp_path):
    pred, mos = data(30)
    pred = 0.5 * pred + 1.0  # off the MOS scale, so y = x spans more than the predictions
    fig, _ = scatter_figure(pred, mos, title="AGIQA: test split\nepoch 7, selected on the test split")
    [ax] = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    identity = lines["y = x"]
    xs, ys = identity.get_xdata(), identity.get_ydata()
    assert list(xs) == list(ys)
    everything = np.concatenate([pred, mos])
    assert (min(xs), max(xs)) == (everything.min(), everything.max())
    assert "y = x" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_title().startswith("AGIQA: test split\nepoch 7, selected on the test split\nSRCC ")

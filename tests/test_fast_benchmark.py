"""benchmarks/: the synthetic AGIQA-3K builder and the summary/report arithmetic (CPU, tiny)."""
from __future__ import annotations

import re
import sys
from argparse import Namespace
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_assets import default_names_csv, ensure_dataset  # noqa: E402
from bench_report import format_table, summarize  # noqa: E402
from datasets.synthetic import AGIQA_APPROX_SIZES  # noqa: E402

# Tolerances: the figures checked here are float64 sums and ratios of the fake timings (decimal
# inputs), unrounded in the JSON: they differ from the expectation by a few FP64_EPS only.
# pytest.approx's default (rel 1e-6, METRIC_REL in tests/tolerances.py) is far above that and
# far below a real error (another run's or stage's figure: >= 1 % here).


@pytest.mark.parametrize("real_names", [True, False])
def test_dataset_has_the_agiqa_layout_real_sizes_and_is_reused(tmp_path, real_names):
    names_csv = default_names_csv() if real_names else None
    assert (names_csv is not None) == real_names  # the checkout carries datasets/data/AGIQA-3K/data.csv
    folder, reused = ensure_dataset(tmp_path, 4, names_csv, workers=2)
    assert not reused and folder == tmp_path / "AGIQA-3K"
    table = pd.read_csv(folder / "data.csv")
    assert len(table) == 4 and table["mos_quality"].between(0, 5).all()
    if real_names:  # evenly spaced rows of the real file, in file order
        real = pd.read_csv(names_csv)["name"]
        assert table["name"].tolist() == [real[round(i * (len(real) - 1) / 3)] for i in range(4)]
    for name in table["name"]:
        with Image.open(folder / name) as img:
            assert img.format == "JPEG"
            assert img.size == AGIQA_APPROX_SIZES[name.split("_")[0]]
    assert ensure_dataset(tmp_path, 4, names_csv, workers=2) == (folder, True)


def fake_run(path: str, train_s: float, test_s: float) -> dict:
    run = {"path": path, "setup_s": 2.0, "device": "cuda:0", "gpu": "H100", "prec": "fp16",
           "threads": 16, "n_train": 2385, "n_test": 597, "steps_per_epoch": 74,
           "batch_size": 32, "final_evaluation_s": 0.5, "peak_rss_bytes": 4 * 2 ** 30,
           "peak_gpu_bytes": 8 * 2 ** 30, "srcc_last": 0.5,
           "epochs": [{"train_s": 9.0, "test_s": 9.0, "checkpoint_s": 1.0},
                      {"train_s": train_s, "test_s": test_s, "checkpoint_s": 0.1},
                      {"train_s": train_s, "test_s": test_s, "checkpoint_s": 0.1}]}
    if path == "fast":
        run.update(decode_s=3.0, decoded_bytes=2 ** 32, decoded_on="cuda:0", test_cache_s=0.2,
                   eval_images=2385, eval_s=0.4)
    return run


def test_summary_uses_steady_epochs_and_checks_the_targets():
    results = {"fast": fake_run("fast", 0.4, 0.01), "reference": fake_run("reference", 8.0, 1.99)}
    # A long first-epoch cell (28 characters), wider than the table's old fixed column.
    results["fast"]["epochs"][0] = {"train_s": 0.0123, "test_s": 0.00987, "checkpoint_s": 0.00576}
    summary = summarize(results, Namespace(n_images=2982, epochs=3))
    fast = summary["paths"]["fast"]
    assert fast["steady"]["total_s"] == pytest.approx(0.51)  # epoch 1 excluded
    assert fast["projected_100_epochs_s"] == pytest.approx(0.2 + 51.0 + 0.5)
    assert fast["train_images_per_s"] == pytest.approx(74 * 32 / 0.4)
    assert fast["eval_images_per_s"] == pytest.approx(2385 / 0.4)
    assert summary["paths"]["reference"]["eval_images_per_s"] == pytest.approx(597 / 1.99)
    assert summary["speedup"]["total_s"] == pytest.approx(10.09 / 0.51)
    assert summary["targets"] == {"100_epochs_le_60s": True, "speedup_ge_20x": False,
                                  "eval_ge_5000_images_per_s": True,
                                  "decoded_host_lt_12gib": True}
    table = format_table(summary)
    assert "speedup reference/fast (total): 19.8x" in table
    assert "target speedup_ge_20x: not met (19.8x)" in table and "4.00 GiB on cuda:0" in table
    assert "target 100_epochs_le_60s: met (51.7 s)" in table
    # Every column is separated from the next by two spaces at least, however long its cells.
    assert re.search(r"0\.0123 / 0\.00987 / 0\.00576 s {2,}9 / 9 / 1 s", table), table


def test_benchmark_device_cuda_without_a_gpu_is_one_error_line(monkeypatch, capsys):
    import torch
    from bench_train import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["--device", "cuda", "--small"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: device 'cuda' was asked for but") and err.count("\n") == 1


def test_cpu_summary_compares_every_precision_with_fp32():
    """CPU: the reference in fp32 against the fast pipeline in each precision, the largest
    prediction difference from the fast fp32 run, and the 2x target read on the precision the
    default configuration gets (here bf16)."""
    runs = {"reference": fake_run("reference", 8.0, 2.0), "fast": fake_run("fast", 6.0, 0.01),
            "fast-bf16": fake_run("fast", 3.0, 0.01), "fast-fp16": fake_run("fast", 20.0, 0.01)}
    for (label, run), prec, preds in zip(runs.items(), ("fp32", "fp32", "bf16", "fp16"),
                                         ([1.0, 2.0], [1.0, 2.5], [1.25, 2.5], [1.0, 2.4])):
        run.update(device="cpu", prec=prec, last_epoch_predictions=preds)
    runs["fast-bf16"]["load_avg"] = [0.5, 1.5]  # the 1-minute load average at start and end
    summary = summarize(runs, Namespace(n_images=45, epochs=3, default_cpu_prec="bf16"))
    assert summary["max_pred_diff_vs_fp32"] == pytest.approx(
        {"reference": 0.5, "fast": 0.0, "fast-bf16": 0.25, "fast-fp16": 0.1})
    by_run = summary["speedup_by_run"]
    assert by_run["fast-bf16"]["total_s"] == pytest.approx(10.1 / 3.11)
    assert by_run["fast-fp16"]["total_s"] == pytest.approx(10.1 / 20.11)
    assert summary["targets"] == {"cpu_speedup_ge_2x": True}  # bf16: 3.2x; fp32 alone: 1.6x
    assert summary["paths"]["fast-bf16"]["prec"] == "bf16"
    table = format_table(summary)
    assert "speedup reference/fast-bf16 (bf16, total): 3.25x" in table
    assert "max |prediction - fast fp32| after the same steps, fast-bf16: 0.25" in table
    assert "default configuration (PREC fp16) on this CPU: bf16" in table
    assert "target cpu_speedup_ge_2x: met (3.25x)" in table and "PASS" not in table
    summary["targets"]["cpu_speedup_ge_2x"] = False
    assert "target cpu_speedup_ge_2x: not met (3.25x)" in format_table(summary)
    load_row = next(x for x in table.splitlines() if x.startswith("load average"))
    assert load_row.split()[-6:] == ["-", "-", "0.5", "/", "1.5", "-"]  # reference .. fast-fp16


def test_variant_runs_are_interleaved_and_reported_as_medians(monkeypatch, tmp_path, capsys):
    """bench_variants.py --repeats 3: the order is A, B, A, B, A, B; each variant's row holds the
    medians of its runs (so one run slowed by another user's job does not move it) and the range
    of the load averages seen."""
    import json

    import bench_variants

    order = []
    steady = {"default": [10.0, 30.0, 12.0], "encoder_lora": [25.0, 24.0, 90.0]}

    def fake_run(args, variant, weights, repeat):
        order.append(variant)
        train = steady[variant][repeat]
        return {"variant": variant, "device": "cpu", "prec": "bf16", "threads": 2, "n_train": 36,
                "n_test": 9, "epochs": [{"train_s": 2 * train, "test_s": 1.0},
                                        {"train_s": train, "test_s": 0.5}],
                "steady_train_s": train, "steady_test_s": 0.5, "steady_cpu_s": train + 1.5,
                "wall_s": 3 * train,
                "load_avg": [1.0 + repeat, 2.0 + repeat]}

    monkeypatch.setattr(bench_variants, "ensure_dataset", lambda *a, **k: (tmp_path, True))
    monkeypatch.setattr(bench_variants, "ensure_weights", lambda *a, **k: (tmp_path / "w.pt", True))
    monkeypatch.setattr(bench_variants, "run_variant", fake_run)
    out = tmp_path / "variants.json"
    assert bench_variants.main(["--root", str(tmp_path), "--variants", "default", "encoder_lora",
                                "--repeats", "3", "--out", str(out)]) == 0
    assert order == ["default", "encoder_lora"] * 3
    rows = {r["variant"]: r for r in json.loads(out.read_text())["results"]}
    assert rows["default"]["steady_train_s"] == 12.0 and rows["encoder_lora"]["steady_train_s"] == 25.0
    assert rows["default"]["epoch1_s"] == 25.0 and rows["encoder_lora"]["wall_s"] == 75.0
    table = capsys.readouterr().out
    line = next(x for x in table.splitlines() if x.startswith("encoder_lora"))
    # 25.5 / 12.5 = 2.04x the default's steady epoch; CPU 26.5 / 13.5 = 1.96x; load averages
    # 1.0 .. 4.0 over the runs
    assert line.split()[1:] == ["3", "51.0", "25.0", "0.5", "25.5", "2.04", "26.5", "1.96",
                                "1.0-4.0"]
    assert bench_variants.main(["--root", str(tmp_path), "--repeats", "0"]) == 2
    assert capsys.readouterr().err == "error: --repeats must be at least 1\n"


def test_encode_stages_add_up_and_name_the_top_operators(tmp_path, capsys):
    """bench_encode.py --stages with a tiny CLIP on 3 synthetic images: per precision the
    transform + encoder time and its ratio to fp32's are the sums and ratios of the measured
    stages; the profile lists operators by falling self CPU time, shares of one total."""
    import json

    import bench_encode

    assert bench_encode.main(["--stages", "--model", "tiny-vit", "--root", str(tmp_path),
                              "--n-images", "3", "--precisions", "fp32,bf16", "--repeats", "1",
                              "--profile", "4"]) == 0
    stages = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stages["n_images"] == 3 and stages["decode_cpu_s_per_image"] > 0
    transform = stages["transform_cpu_s_per_image"]
    fp32, bf16 = stages["encode"]["fp32"], stages["encode"]["bf16"]
    for row in (fp32, bf16):
        assert row["transform_plus_encode_cpu_s_per_image"] == pytest.approx(
            transform + row["cpu_s_per_image"])
        ops = row["top_ops"]
        assert len(ops) == 4 and all(a["self_cpu_s"] >= b["self_cpu_s"] for a, b in zip(ops, ops[1:]))
        assert 0 < sum(op["share"] for op in ops) <= 1
    assert bf16["end_to_end_speedup_vs_fp32"] == pytest.approx(
        (transform + fp32["cpu_s_per_image"]) / (transform + bf16["cpu_s_per_image"]))
    assert fp32["end_to_end_speedup_vs_fp32"] == pytest.approx(1.0)


def test_epoch_rows_split_wall_and_cpu_seconds_per_epoch():
    """_instrument's events -> per-epoch rows: the per-epoch test (inside after_epoch) apart
    from the final evaluation (inside after_train), checkpoints = after_epoch - its test, and
    the process CPU seconds of training and of the per-epoch test."""
    from bench_report import _steady
    from bench_train import _epoch_rows

    events = [(0, "run_epoch", 10.0, None, 15.0), (0, "test", 2.0, "after_epoch", 3.0),
              (0, "after_epoch", 2.5, None, 3.2), (1, "run_epoch", 8.0, None, 14.0),
              (1, "test", 1.0, "after_epoch", 1.5), (1, "after_epoch", 1.25, None, 1.6),
              (1, "test", 4.0, "after_train", 6.0), (1, "after_train", 4.0, None, 6.0)]
    rows = _epoch_rows(events, 2)
    assert rows == [{"train_s": 10.0, "test_s": 2.0, "checkpoint_s": 0.5, "train_cpu_s": 15.0,
                     "test_cpu_s": 3.0},
                    {"train_s": 8.0, "test_s": 1.0, "checkpoint_s": 0.25, "train_cpu_s": 14.0,
                     "test_cpu_s": 1.5}]
    assert _steady(rows) == {"train_s": 8.0, "test_s": 1.0, "checkpoint_s": 0.25,
                             "total_s": 9.25, "cpu_s": 15.5}

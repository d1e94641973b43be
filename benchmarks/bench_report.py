"""Summary and table of a training benchmark (see bench_train.py for what is measured).

Per pipeline: one-time costs (setup = weights + dataset check; decode; test-feature cache),
epoch 1 and the steady epoch (mean of epochs 2+, or epoch 1 alone) split into train, per-epoch
test and checkpoint writing, train/eval images per second, the projected 100-epoch time
(one-time test cache + 100 steady epochs + the final evaluation; decoding excluded), peak host
RSS and peak GPU memory.
Speedups are reference time / fast time of the same run. Targets (from the speed issue) are
checked against the numbers where they apply (GPU targets assume the full AGIQA-3K size).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GIB = 1024 ** 3
KEYS = ("train_s", "test_s", "checkpoint_s")


def _steady(epochs: list[dict]) -> dict:
    rows = epochs[1:] or epochs
    steady = {k: sum(r[k] for r in rows) / len(rows) for k in KEYS}
    steady["total_s"] = sum(steady[k] for k in KEYS)
    if all("train_cpu_s" in r for r in rows):  # process CPU seconds (results before: absent)
        steady["cpu_s"] = sum(r["train_cpu_s"] + r["test_cpu_s"] for r in rows) / len(rows)
    return steady


def _path_summary(r: dict) -> dict:
    steady = _steady(r["epochs"])
    first = dict(r["epochs"][0], total_s=sum(r["epochs"][0][k] for k in KEYS))
    train_images = r["steps_per_epoch"] * r["batch_size"]
    one_time = r.get("test_cache_s", 0.0)
    out = {
        "setup_s": r["setup_s"], "decode_s": r.get("decode_s"),
        "decoded_gib": r["decoded_bytes"] / GIB if "decoded_bytes" in r else None,
        "decoded_on": r.get("decoded_on"), "test_cache_s": r.get("test_cache_s"),
        "epoch1": first, "steady": steady,
        "train_images_per_s": train_images / steady["train_s"] if steady["train_s"] else None,
        "final_evaluation_s": r.get("final_evaluation_s"),
        "projected_100_epochs_s": one_time + 100 * steady["total_s"]
        + r.get("final_evaluation_s", 0.0),
        "peak_rss_gib": r["peak_rss_bytes"] / GIB,
        "peak_gpu_gib": r["peak_gpu_bytes"] / GIB if "peak_gpu_bytes" in r else None,
        "srcc_last": r.get("srcc_last"),
        "prec": r.get("prec"),
        "load_avg": r.get("load_avg"),
        "compile_s": r.get("compile_s"),
    }
    if "eval_s" in r:
        out["eval_images_per_s"] = r["eval_images"] / r["eval_s"]
    elif steady["test_s"]:
        out["eval_images_per_s"] = r["n_test"] / steady["test_s"]  # a test pass from disk
    return out


def summarize(results: dict[str, dict], args: Any) -> dict:
    """One JSON-able dict for all measured pipelines of a run."""
    any_run = next(iter(results.values()))
    summary = {
        "benchmark": "clip_agiqa_train", "device": any_run["device"],
        "gpu": any_run.get("gpu"), "prec": any_run["prec"], "threads": any_run["threads"],
        "n_images": args.n_images, "n_train": any_run["n_train"], "n_test": any_run["n_test"],
        "steps_per_epoch": any_run["steps_per_epoch"], "epochs_measured": args.epochs,
        "paths": {name: _path_summary(r) for name, r in results.items()},
    }
    paths = summary["paths"]
    if "fast" in paths and "reference" in paths:
        fast, ref = paths["fast"]["steady"], paths["reference"]["steady"]
        summary["speedup"] = {k: (ref[k] / fast[k] if fast[k] else None)
                              for k in ("train_s", "test_s", "total_s")}
    if "reference" in paths:
        ref = paths["reference"]["steady"]
        summary["speedup_by_run"] = {
            label: {k: (ref[k] / p["steady"][k] if p["steady"][k] else None)
                    for k in ("train_s", "test_s", "total_s")}
            for label, p in paths.items() if label != "reference"}
    summary["max_pred_diff_vs_fp32"] = _prediction_differences(results)
    summary["default_cpu_prec"] = getattr(args, "default_cpu_prec", None)
    summary["targets"] = _targets(summary)
    summary["target_figures"] = _target_figures(summary)
    return summary


def _prediction_differences(results: dict[str, dict]) -> dict:
    """Largest |prediction - fast fp32 prediction| (MOS) of every run after the same steps
    (every run draws the same batches, crops and dropout masks); {} without a fast fp32 run."""
    base = next((r for label, r in results.items() if label.startswith("fast")
                 and r.get("prec") == "fp32" and r.get("last_epoch_predictions")), None)
    if base is None:
        return {}
    out = {}
    for label, r in results.items():
        preds = r.get("last_epoch_predictions")
        if preds and len(preds) == len(base["last_epoch_predictions"]):
            out[label] = max(abs(a - b) for a, b in zip(preds, base["last_epoch_predictions"]))
    return out


def _cpu_default_speedup(summary: dict) -> float | None:
    """Reference / fast total time of the run in the precision the default configuration gets
    on this CPU (else of the fast run)."""
    speedup = (summary.get("speedup") or {}).get("total_s")
    default = summary.get("default_cpu_prec")
    label = next((name for name, p in summary["paths"].items()
                  if name != "reference" and p.get("prec") == default), None)
    if label is not None and summary.get("speedup_by_run"):
        speedup = summary["speedup_by_run"][label]["total_s"]
    return speedup


def _target_figures(summary: dict) -> dict:
    """The measured figure each target of `_targets` is checked on, as text ("1.8x")."""
    fast = summary["paths"].get("fast")
    if fast is None:
        return {}
    if summary["device"].startswith("cuda"):
        host_decoded = fast["decoded_gib"] if fast["decoded_on"] == "cpu" else 0.0
        return {"100_epochs_le_60s": _fmt(fast["projected_100_epochs_s"], " s"),
                "speedup_ge_20x": _fmt((summary.get("speedup") or {}).get("total_s"), "x"),
                "eval_ge_5000_images_per_s": _fmt(fast.get("eval_images_per_s"), " images/s"),
                "decoded_host_lt_12gib": _fmt(host_decoded, " GiB")}
    return {"cpu_speedup_ge_2x": _fmt(_cpu_default_speedup(summary), "x")}


def _targets(summary: dict) -> dict:
    fast = summary["paths"].get("fast")
    speedup = (summary.get("speedup") or {}).get("total_s")
    if fast is None:
        return {}
    if summary["device"].startswith("cuda"):
        host_decoded = fast["decoded_gib"] if fast["decoded_on"] == "cpu" else 0.0
        return {
            "100_epochs_le_60s": fast["projected_100_epochs_s"] <= 60.0,
            "speedup_ge_20x": None if speedup is None else speedup >= 20.0,
            "eval_ge_5000_images_per_s": fast.get("eval_images_per_s", 0.0) >= 5000.0,
            "decoded_host_lt_12gib": host_decoded < 12.0,
        }
    # On a CPU: the run in the precision the default configuration gets there.
    speedup = _cpu_default_speedup(summary)
    return {"cpu_speedup_ge_2x": None if speedup is None else speedup >= 2.0}


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
        return text + unit
    return str(value) + unit


def format_table(summary: dict) -> str:
    """Readable side-by-side table of `summarize`'s result."""
    names = list(summary["paths"])
    rows = [
        ("setup: weights + data check", lambda p: _fmt(p["setup_s"], " s")),
        ("decode (once)", lambda p: _fmt(p["decode_s"], " s")),
        ("decoded pixels", lambda p: "-" if p["decoded_gib"] is None
         else f"{p['decoded_gib']:.2f} GiB on {p['decoded_on']}"),
        ("test-feature cache (once)", lambda p: _fmt(p["test_cache_s"], " s")),
        ("torch.compile (in epoch 1 + cache)", lambda p: _fmt(p.get("compile_s"), " s")),
        ("epoch 1: train / test / ckpt", lambda p: " / ".join(
            _fmt(p["epoch1"][k]) for k in KEYS) + " s"),
        ("steady epoch: train", lambda p: _fmt(p["steady"]["train_s"], " s")),
        ("steady epoch: test", lambda p: _fmt(p["steady"]["test_s"], " s")),
        ("steady epoch: checkpoints", lambda p: _fmt(p["steady"]["checkpoint_s"], " s")),
        ("steady epoch: total", lambda p: _fmt(p["steady"]["total_s"], " s")),
        ("steady epoch: train + test CPU", lambda p: _fmt(p["steady"].get("cpu_s"), " s")),
        ("train images/s", lambda p: _fmt(p["train_images_per_s"])),
        ("eval images/s", lambda p: _fmt(p.get("eval_images_per_s"))),
        ("final evaluation (after_train)", lambda p: _fmt(p["final_evaluation_s"], " s")),
        ("projected 100 epochs", lambda p: _fmt(p["projected_100_epochs_s"], " s")),
        ("peak host RSS", lambda p: _fmt(p["peak_rss_gib"], " GiB")),
        ("peak GPU memory", lambda p: _fmt(p["peak_gpu_gib"], " GiB")),
        ("SRCC after the last epoch", lambda p: _fmt(p["srcc_last"])),
        ("load average 1 min: start / end", lambda p: "-" if not p.get("load_avg")
         else " / ".join(f"{x:.1f}" for x in p["load_avg"])),
    ]
    cells = [[label] + [get(summary["paths"][n]) for n in names] for label, get in rows]
    # Each column as wide as its widest cell plus two spaces, so values never run together.
    widths = [max(len(row[i]) for row in cells + [[""] + names]) + 2
              for i in range(len(names) + 1)]
    head = (f"{summary['device']} {summary.get('gpu') or ''} prec={summary['prec']} "
            f"threads={summary['threads']}: {summary['n_train']} train / {summary['n_test']} "
            f"test images, {summary['steps_per_epoch']} steps/epoch, "
            f"{summary['epochs_measured']} epochs measured")
    lines = [head] + ["".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                      for row in [[""] + names] + cells]
    for key, value in (summary.get("speedup") or {}).items():
        lines.append(f"speedup reference/fast ({key[:-2]}): {_fmt(value, 'x')}")
    if len(summary.get("speedup_by_run") or {}) > 1:
        for label, value in summary["speedup_by_run"].items():
            lines.append(f"speedup reference/{label} ({summary['paths'][label]['prec']}, "
                         f"total): {_fmt(value['total_s'], 'x')}")
    for label, value in (summary.get("max_pred_diff_vs_fp32") or {}).items():
        lines.append(f"max |prediction - fast fp32| after the same steps, {label}: "
                     f"{_fmt(value)}")
    if summary.get("default_cpu_prec"):
        lines.append(f"default configuration (PREC fp16) on this CPU: {summary['default_cpu_prec']}")
    figures = summary.get("target_figures") or {}
    for key, value in summary["targets"].items():
        verdict = "met" if value else "not met" if value is False else "not measured"
        figure = f" ({figures[key]})" if figures.get(key, "-") != "-" else ""
        lines.append(f"target {key}: {verdict}{figure}")
    return "\n".join(lines)


def emit(table: str, summary: dict, out: str | None) -> None:
    """Print the human table, then the summary as one JSON line (what scripts parse), and write
    that line to ``out`` when given."""
    print(table)
    line = json.dumps(summary, sort_keys=True)
    print(line)
    if out:
        Path(out).write_text(line + "\n")

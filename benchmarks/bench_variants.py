"""Per-epoch cost of the method variants (configs/ablations) against the default configuration.

    python benchmarks/bench_variants.py                       # CPU, ViT-B/16, ~45 images
    python benchmarks/bench_variants.py --variants default head_similarity encoder_lora
    python benchmarks/bench_variants.py --variants default encoder_last2 --repeats 3

Builds (once, shared with bench_train.py) a synthetic AGIQA-3K under `--root` at the real
per-generator image sizes and random ViT-B/16 weights, then trains each variant for `--epochs`
epochs of the paper's protocol (fast pipeline, test after every epoch), one subprocess per
variant and repeat, in interleaved order (A, B, A, B, ... with `--repeats 2`) so that a change
of load on a shared machine hits every variant alike. It reports per variant the median over
the repeats of epoch 1 and of the steady epoch (mean of epochs 2+: train, per-epoch test), the
steady epoch's ratio to the default's, and the 1-minute load average at the start and end of
its runs. Prints a table and one JSON line (also written to `--out`). See docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench_assets import default_names_csv, ensure_dataset, ensure_weights  # noqa: E402
from bench_report import emit  # noqa: E402
from bench_train import _epoch_rows, _instrument  # noqa: E402

# The issue-16 variants; "default" is configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml.
VARIANTS = ("default", "head_similarity", "multicrop15", "prompt_levels_agiqa",
            "levels5_agiqa", "encoder_last2", "encoder_lora")
DEFAULT_YAML = REPO / "configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.path.join(tempfile.gettempdir(), "clip_agiqa_bench"),
                        help="folder of the synthetic dataset and weights (reused)")
    parser.add_argument("--n-images", type=int, default=45, help="dataset size (80/20 split)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per variant (>= 2)")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch size")
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS),
                        help="'default' or names of configs/ablations/<NAME>.yaml")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs per variant, interleaved (A, B, A, B); medians reported")
    parser.add_argument("--out", default=None, help="also write the JSON summary here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--weights", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    return parser


def method_yaml(variant: str) -> Path:
    """The method yaml of a variant name; `ValueError` for an unknown one."""
    path = DEFAULT_YAML if variant == "default" else REPO / "configs/ablations" / f"{variant}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown variant {variant!r}: no {path}")
    return path


def run_worker(args: argparse.Namespace) -> dict:
    """Train one variant for `args.epochs` epochs and time each epoch."""
    import torch

    import datasets  # noqa: F401  (registers AGIQA)
    import trainers  # noqa: F401  (registers CLIP_AGIQA)
    from dassl.config import get_cfg_default, merge_config
    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed
    from datasets import add_dataset_config
    from trainers import add_trainer_config

    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    cfg = add_trainer_config(add_dataset_config(get_cfg_default()))
    merge_config(cfg, [str(REPO / "configs/datasets/AGIQA.yaml"), str(method_yaml(args.worker))], [
        "TRAINER.NAME", "CLIP_AGIQA", "DATASET.ROOT", args.root,
        "MODEL.BACKBONE.NAME", args.weights,
        "OUTPUT_DIR", tempfile.mkdtemp(prefix=f"bench_{args.worker}_", dir=args.root),
        "USE_CUDA", str(use_cuda), "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TRAIN_X.BATCH_SIZE", str(args.batch_size), "OPTIM.MAX_EPOCH", str(args.epochs),
        "TEST.FINAL_MODEL", "best_val", "TEST.ALLOW_SELECTION_ON_TEST", "True", "SEED", "1"])
    cfg.freeze()
    set_random_seed(1)
    trainer = build_trainer(cfg)
    events: list = []
    _instrument(trainer, events)
    trainer.train()
    rows = _epoch_rows(events, args.epochs)
    steady = rows[1:] or rows
    return {"variant": args.worker, "device": str(trainer.device), "prec": trainer.prec,
            "threads": torch.get_num_threads(), "n_train": len(trainer.dm.dataset.train_x),
            "n_test": len(trainer.dm.dataset.test), "epochs": rows,
            "steady_train_s": sum(r["train_s"] for r in steady) / len(steady),
            "steady_test_s": sum(r["test_s"] for r in steady) / len(steady),
            "steady_cpu_s": sum(r["train_cpu_s"] + r["test_cpu_s"] for r in steady) / len(steady)}


def run_variant(args: argparse.Namespace, variant: str, weights: Path, repeat: int) -> dict:
    """Train `variant` once in its own subprocess; its `run_worker` result with the wall time
    and the 1-minute load average at the start and end (`load_avg`). Log:
    `--root/bench_variant_<variant>.log` (the last repeat's)."""
    with tempfile.NamedTemporaryFile(suffix=".json", dir=args.root, delete=False) as handle:
        result_file = handle.name
    log = Path(args.root) / f"bench_variant_{variant}.log"
    load_start, start = os.getloadavg()[0], time.perf_counter()
    with open(log, "w") as out:
        subprocess.run([sys.executable, __file__, "--worker", variant, "--root", args.root,
                        "--weights", str(weights), "--epochs", str(args.epochs),
                        "--batch-size", str(args.batch_size), "--device", args.device,
                        "--result-file", result_file], stdout=out, stderr=subprocess.STDOUT,
                       check=True)
    result = json.loads(Path(result_file).read_text())
    os.unlink(result_file)
    result["wall_s"] = time.perf_counter() - start
    result["load_avg"] = [load_start, os.getloadavg()[0]]
    print(f"{variant} (run {repeat + 1}): done in {result['wall_s']:.0f} s, load average "
          f"{load_start:.1f} -> {result['load_avg'][1]:.1f} (log {log})", flush=True)
    return result


def median_result(runs: list[dict]) -> dict:
    """One variant's runs (`run_worker` results with `wall_s` and `load_avg`) as one row: the
    medians over the runs of epoch 1 (train + test), the steady train and test seconds, the
    steady epoch's process CPU seconds, and the wall time; the load averages (1 min) seen at each run's start and end; the runs
    themselves."""
    def median(key):
        return statistics.median(r[key] for r in runs)

    return {"variant": runs[0]["variant"], "device": runs[0]["device"], "prec": runs[0]["prec"],
            "threads": runs[0]["threads"], "n_train": runs[0]["n_train"],
            "n_test": runs[0]["n_test"], "repeats": len(runs),
            "epoch1_s": statistics.median(r["epochs"][0]["train_s"] + r["epochs"][0]["test_s"]
                                          for r in runs),
            "steady_train_s": median("steady_train_s"), "steady_test_s": median("steady_test_s"),
            "steady_cpu_s": median("steady_cpu_s"),
            "wall_s": median("wall_s"), "load_avg": [x for r in runs for x in r["load_avg"]],
            "runs": runs}


def format_table(results: list[dict]) -> str:
    """Per variant (`median_result` rows): epoch 1 (with the one-time test-feature cache) and the
    steady epoch (wall seconds and process CPU seconds), medians over the repeats, their ratios
    to the default's, and the range of the 1-minute load average over its runs."""
    base = next((r for r in results if r["variant"] == "default"), None)
    lines = [f"{'variant':<22}{'runs':>5}{'epoch 1 s':>11}{'train s':>10}{'test s':>9}"
             f"{'epoch s':>10}{'x default':>11}{'CPU s':>8}{'x default':>11}{'load avg':>12}"]
    for r in results:
        epoch = r["steady_train_s"] + r["steady_test_s"]
        ratio = epoch / (base["steady_train_s"] + base["steady_test_s"]) if base else float("nan")
        cpu_ratio = r["steady_cpu_s"] / base["steady_cpu_s"] if base else float("nan")
        load = f"{min(r['load_avg']):.1f}-{max(r['load_avg']):.1f}"
        lines.append(f"{r['variant']:<22}{r['repeats']:>5}{r['epoch1_s']:>11.1f}"
                     f"{r['steady_train_s']:>10.1f}{r['steady_test_s']:>9.1f}{epoch:>10.1f}"
                     f"{ratio:>11.2f}{r['steady_cpu_s']:>8.1f}{cpu_ratio:>11.2f}{load:>12}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        result = run_worker(args)
        Path(args.result_file).write_text(json.dumps(result))
        return 0
    if args.epochs < 2:
        print("error: --epochs must be at least 2 (the first epoch is a warm-up)", file=sys.stderr)
        return 2
    if args.repeats < 1:
        print("error: --repeats must be at least 1", file=sys.stderr)
        return 2
    try:
        for variant in args.variants:
            method_yaml(variant)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    Path(args.root).mkdir(parents=True, exist_ok=True)
    ensure_dataset(args.root, args.n_images, default_names_csv())
    weights, _ = ensure_weights(args.root)
    runs: dict[str, list[dict]] = {variant: [] for variant in args.variants}
    for repeat in range(args.repeats):
        for variant in args.variants:
            runs[variant].append(run_variant(args, variant, weights, repeat))
    results = [median_result(variant_runs) for variant_runs in runs.values()]
    emit(format_table(results), {"results": results}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Per-epoch cost of the method variants (configs/ablations) against the default configuration.

    python benchmarks/bench_variants.py                       # CPU, ViT-B/16, ~45 images
    python benchmarks/bench_variants.py --variants default head_similarity encoder_lora

Builds (once, shared with bench_train.py) a synthetic AGIQA-3K under `--root` at the real
per-generator image sizes and random ViT-B/16 weights, then trains each variant for `--epochs`
epochs of the paper's protocol (fast pipeline, test after every epoch), one subprocess per
variant, and reports the steady epoch (mean of epochs 2+: train, per-epoch test) and its ratio
to the default. Prints a table and one JSON line (also written to `--out`). See
benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
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
            "steady_test_s": sum(r["test_s"] for r in steady) / len(steady)}


def format_table(results: list[dict]) -> str:
    """Epoch 1 (with the one-time test-feature cache) and the steady epoch per variant, and the
    steady epoch's ratio to the default's."""
    base = next((r for r in results if r["variant"] == "default"), None)
    lines = [f"{'variant':<22}{'epoch 1 s':>11}{'train s':>10}{'test s':>9}{'epoch s':>10}"
             f"{'x default':>11}"]
    for r in results:
        first = r["epochs"][0]["train_s"] + r["epochs"][0]["test_s"]
        epoch = r["steady_train_s"] + r["steady_test_s"]
        ratio = epoch / (base["steady_train_s"] + base["steady_test_s"]) if base else float("nan")
        lines.append(f"{r['variant']:<22}{first:>11.1f}{r['steady_train_s']:>10.1f}"
                     f"{r['steady_test_s']:>9.1f}{epoch:>10.1f}{ratio:>11.2f}")
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
    try:
        for variant in args.variants:
            method_yaml(variant)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    Path(args.root).mkdir(parents=True, exist_ok=True)
    ensure_dataset(args.root, args.n_images, default_names_csv())
    weights, _ = ensure_weights(args.root)
    results = []
    for variant in args.variants:
        with tempfile.NamedTemporaryFile(suffix=".json", dir=args.root, delete=False) as handle:
            result_file = handle.name
        log = Path(args.root) / f"bench_variant_{variant}.log"
        start = time.perf_counter()
        with open(log, "w") as out:
            subprocess.run([sys.executable, __file__, "--worker", variant, "--root", args.root,
                            "--weights", str(weights), "--epochs", str(args.epochs),
                            "--batch-size", str(args.batch_size), "--device", args.device,
                            "--result-file", result_file], stdout=out, stderr=subprocess.STDOUT,
                           check=True)
        result = json.loads(Path(result_file).read_text())
        os.unlink(result_file)
        result["wall_s"] = time.perf_counter() - start
        results.append(result)
        print(f"{variant}: done in {result['wall_s']:.0f} s (log {log})", flush=True)
    emit(format_table(results), {"results": results}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

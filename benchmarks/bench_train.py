"""Benchmark the fast and the reference training pipelines of CLIP-AGIQA side by side.

    python benchmarks/bench_train.py --small                     # CPU, a few minutes
    python benchmarks/bench_train.py --root /data/bench          # AGIQA-3K size, GPU if any

Builds (once) a synthetic AGIQA-3K under `--root` and random ViT-B/16 weights, then measures
each pipeline in its own subprocess (so peak memories are separate): setup (weights, dataset
check), decoding (fast), the one-time test-feature cache (fast), `--epochs` epochs of the
paper's protocol (train, per-epoch test, checkpoints) and the eval-only throughput. Prints a
table and one JSON line (also written to `--out`). See docs/performance.md.
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

from bench_assets import FULL_SIZE, default_names_csv, ensure_dataset, ensure_weights  # noqa: E402
from bench_report import emit, format_table, summarize  # noqa: E402

SMALL = {"n_images": 45, "epochs": 2}  # 36 train (one step of 32) / 9 test images
PRECISIONS = ("fp16", "fp32", "amp", "bf16")
# On a CPU: the fast pipeline in each precision (run label "fast" for the first, "fast-<prec>"
# for the others) against the reference pipeline in fp32.
CPU_PRECISION_RUNS = ("fp32", "bf16", "amp", "fp16")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root",
                        default=os.path.join(tempfile.gettempdir(), "clip_agiqa_bench"),
                        help="folder of the synthetic dataset and weights (built once, reused)")
    parser.add_argument("--n-images", type=int, default=None,
                        help=f"dataset size (default {FULL_SIZE}, the real AGIQA-3K)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per pipeline (default 2)")
    parser.add_argument("--small", action="store_true",
                        help=f"{SMALL['n_images']} images, {SMALL['epochs']} epochs: "
                             "CPU in minutes")
    parser.add_argument("--model", default="ViT-B/16",
                        help="random CLIP preset to measure (clip.random_weights.PRESETS; "
                             "tiny-vit for smoke tests)")
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--prec", choices=PRECISIONS, default=None,
                        help="TRAINER.CLIP_AGIQA.PREC of both pipelines (default fp16 on CUDA; "
                             "on a CPU the reference runs in fp32 and the fast pipeline in "
                             "every precision of --precisions)")
    parser.add_argument("--precisions", default=None,
                        help="CPU: comma-separated precisions of the fast pipeline (default "
                             f"{','.join(CPU_PRECISION_RUNS)}; fp16 is the real fp16 path)")
    parser.add_argument("--cpu-prec", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--paths", default="fast,reference", help="pipelines to measure")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                        help="DATALOADER.NUM_WORKERS of the reference pipeline")
    parser.add_argument("--encode-batch-size", type=int, default=256)
    parser.add_argument("--decoded-on", choices=["device", "cpu"], default="device")
    parser.add_argument("--compile", action="store_true",
                        help="TRAINER.CLIP_AGIQA.COMPILE True in every run; the compile time "
                             "(torch.compile's own account) is reported apart as compile_s")
    parser.add_argument("--out", default=None, help="also write the JSON summary here")
    parser.add_argument("--prepare-only", action="store_true",
                        help="build (or reuse) the dataset and the weights, measure nothing")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    return parser


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _instrument(trainer, events: list) -> None:
    """Record `(epoch, method, seconds, enclosing, cpu_seconds)` for every run_epoch / test /
    after_epoch / after_train call, device-synchronised; `enclosing` tells a per-epoch test
    (inside after_epoch) from the final evaluation (inside after_train); `cpu_seconds` is this
    process's CPU time (all its threads, not DataLoader worker processes), which another user's
    load on a shared machine inflates far less than wall time."""
    stack: list[str] = []
    for name in ("run_epoch", "test", "after_epoch", "after_train"):
        method = getattr(trainer, name)

        def timed(*args, _method=method, _name=name, **kwargs):
            enclosing = stack[-1] if stack else None
            stack.append(_name)
            _sync(trainer.device)
            start, cpu = time.perf_counter(), time.process_time()
            try:
                return _method(*args, **kwargs)
            finally:
                _sync(trainer.device)
                stack.pop()
                events.append((trainer.epoch, _name, time.perf_counter() - start, enclosing,
                               time.process_time() - cpu))
                if _name == "test" and enclosing == "after_epoch":
                    trainer.bench_predictions = [float(p[2])
                                                 for p in trainer.evaluator.predictions()]

        setattr(trainer, name, timed)


def _epoch_rows(events: list, n_epochs: int) -> list[dict]:
    rows = []
    for epoch in range(n_epochs):
        def total(name, enclosing=None, field=2):
            return sum(event[field] for event in events if event[0] == epoch
                       and event[1] == name and (enclosing is None or event[3] == enclosing))
        test = total("test", enclosing="after_epoch")
        # The per-epoch test runs inside after_epoch; the rest of it is checkpoint I/O.
        rows.append({"train_s": total("run_epoch"), "test_s": test,
                     "checkpoint_s": max(0.0, total("after_epoch") - test),
                     "train_cpu_s": total("run_epoch", field=4),
                     "test_cpu_s": total("test", enclosing="after_epoch", field=4)})
    return rows


def _compile_seconds() -> float | None:
    """Wall seconds torch.compile spent compiling in this process (Dynamo's own account, all
    shapes; included in the first epoch and the test-feature cache), None where torch has no
    such account."""
    try:
        from torch._dynamo.utils import calculate_time_spent

        return float(calculate_time_spent().get("total_wall_time", 0.0))
    except (ImportError, AttributeError):
        return None


def run_worker(args: argparse.Namespace) -> dict:
    """Measure one pipeline (this process does nothing else, so its peak memory is its own)."""
    import resource

    import torch

    import datasets  # noqa: F401  (registers AGIQA)
    import trainers  # noqa: F401  (registers CLIP_AGIQA)
    from dassl.config import get_cfg_default, merge_config
    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed
    from datasets import add_dataset_config
    from trainers import add_trainer_config

    cfg = add_trainer_config(add_dataset_config(get_cfg_default()))
    merge_config(cfg, [str(REPO / "configs/datasets/AGIQA.yaml"),
                       str(REPO / "configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml")], [
        "TRAINER.NAME", "CLIP_AGIQA", "DATASET.ROOT", args.root,
        "MODEL.BACKBONE.NAME", args.weights,
        "OUTPUT_DIR", tempfile.mkdtemp(prefix=f"bench_{args.worker}_", dir=args.root),
        "USE_CUDA", str(args.device == "cuda"), "TRAINER.CLIP_AGIQA.PREC", args.prec,
        "TRAINER.CLIP_AGIQA.CPU_PREC", args.cpu_prec,
        "TRAINER.CLIP_AGIQA.PIPELINE", args.worker,
        "TRAINER.CLIP_AGIQA.ENCODE_BATCH_SIZE", str(args.encode_batch_size),
        "TRAINER.CLIP_AGIQA.DECODED_ON", args.decoded_on,
        "DATALOADER.NUM_WORKERS", str(args.workers), "OPTIM.MAX_EPOCH", str(args.epochs),
        "TEST.FINAL_MODEL", "best_val", "TEST.ALLOW_SELECTION_ON_TEST", "True", "SEED", "1",
        "TRAINER.CLIP_AGIQA.COMPILE", str(args.compile)])
    cfg.freeze()
    set_random_seed(1)
    start = time.perf_counter()
    trainer = build_trainer(cfg)
    out = {"path": trainer.pipeline, "setup_s": time.perf_counter() - start,
           "device": str(trainer.device), "prec": trainer.prec,
           "n_train": len(trainer.dm.dataset.train_x), "n_test": len(trainer.dm.dataset.test),
           "steps_per_epoch": len(trainer.train_loader_x),
           "batch_size": cfg.DATALOADER.TRAIN_X.BATCH_SIZE, "threads": torch.get_num_threads()}
    if trainer.device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(trainer.device)
        torch.cuda.reset_peak_memory_stats(trainer.device)
    if trainer.pipeline == "fast":
        train_images = trainer.train_loader_x.decoded()
        test_images = trainer.test_loader.decoded()
        out["decode_s"] = train_images.decode_seconds + test_images.decode_seconds
        out["decoded_bytes"] = train_images.nbytes + test_images.nbytes
        out["decoded_on"] = str(train_images.storage_device)
        _sync(trainer.device)
        start = time.perf_counter()
        trainer.test_loader.features()
        _sync(trainer.device)
        out["test_cache_s"] = time.perf_counter() - start
    events: list = []
    _instrument(trainer, events)
    trainer.train()
    out["final_evaluation_s"] = sum(e[2] for e in events if e[1] == "after_train")
    out["epochs"] = _epoch_rows(events, args.epochs)
    out["srcc_last"] = trainer.final_results["last"]["metrics"]["srcc"]
    # The last per-epoch test's predictions (same steps in every run: same seed, same draws).
    out["last_epoch_predictions"] = getattr(trainer, "bench_predictions", None)
    if trainer.pipeline == "fast":
        # Eval-only throughput from decoded images: test transform + encoder, no training.
        encoder, transform = trainer.image_feature_encoder, trainer.test_loader.transform
        _sync(trainer.device)
        start = time.perf_counter()
        encoder.encode(train_images, torch.arange(len(train_images)), transform)
        _sync(trainer.device)
        out["eval_images"] = len(train_images)
        out["eval_s"] = time.perf_counter() - start
    if args.compile:
        out["compile_s"] = _compile_seconds()
        out["compiled"] = trainer.model.compiled_image_encoder.compiled
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if trainer.device.type == "cuda":
        out["peak_gpu_bytes"] = torch.cuda.max_memory_allocated(trainer.device)
    return out


def _worker_argv(args: argparse.Namespace, run: dict, result_file: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", run["path"],
            "--result-file", result_file, "--root", args.root, "--n-images", str(args.n_images),
            "--epochs", str(args.epochs), "--device", args.device, "--prec", run["prec"],
            "--cpu-prec", run["cpu_prec"],
            "--workers", str(args.workers), "--encode-batch-size", str(args.encode_batch_size),
            "--decoded-on", args.decoded_on, "--model", args.model] + (
                ["--compile"] if args.compile else [])


def planned_runs(args: argparse.Namespace) -> list[dict]:
    """`[{label, path, prec, cpu_prec}]` to measure. With `--prec` (and always on CUDA) each
    pipeline of `--paths` once in that precision; on a CPU otherwise the reference in fp32 and
    the fast pipeline in each of `--precisions` (PREC fp16 with CPU_PREC fp16: the real fp16)."""
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = [p for p in paths if p not in ("fast", "reference")]
    if unknown:
        raise SystemExit(f"--paths: unknown pipeline {unknown[0]!r} (fast, reference)")
    if args.prec is not None or args.device == "cuda":
        prec = args.prec or "fp16"
        return [{"label": p, "path": p, "prec": prec, "cpu_prec": prec if prec == "fp16"
                 else "auto"} for p in paths]
    precisions = [p.strip() for p in (args.precisions or ",".join(CPU_PRECISION_RUNS)).split(",")
                  if p.strip()]
    bad = [p for p in precisions if p not in PRECISIONS]
    if bad or not precisions:
        raise SystemExit(f"--precisions: expected some of {PRECISIONS}, got {args.precisions!r}")
    runs = []
    if "reference" in paths:
        runs.append({"label": "reference", "path": "reference", "prec": "fp32",
                     "cpu_prec": "auto"})
    if "fast" in paths:
        for index, prec in enumerate(precisions):
            runs.append({"label": "fast" if index == 0 else f"fast-{prec}", "path": "fast",
                         "prec": prec, "cpu_prec": "fp16" if prec == "fp16" else "auto"})
    return runs


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.n_images = args.n_images or (SMALL["n_images"] if args.small else FULL_SIZE)
    args.epochs = args.epochs or SMALL["epochs"]
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device == "cuda":
        from dassl.utils import ConfigError, resolve_device

        try:  # USE_CUDA True on a machine without a GPU would silently measure the CPU
            resolve_device("cuda")
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.worker:
        args.weights = str(ensure_weights(args.root, args.model)[0])  # the parent made them
        result = run_worker(args)
        Path(args.result_file).write_text(json.dumps(result))
        return 0

    Path(args.root).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    names_csv = default_names_csv()
    folder, reused = ensure_dataset(args.root, args.n_images, names_csv)
    print(f"dataset: {folder} ({args.n_images} images, names from "
          f"{names_csv or 'the AGIQA-3K pattern'}; {'reused' if reused else 'built'} in "
          f"{time.perf_counter() - start:.1f} s)", flush=True)
    weights, reused = ensure_weights(args.root, args.model)
    print(f"weights: {weights} ({'reused' if reused else 'generated'})", flush=True)
    if args.prepare_only:
        return 0
    results = {}
    for run in planned_runs(args):
        label = run["label"]
        log = Path(args.root) / f"bench_{label}.log"
        result_file = Path(args.root) / f"bench_{label}.json"
        print(f"measuring the {run['path']} pipeline, PREC {run['prec']} (log: {log}) ...",
              flush=True)
        load_start = os.getloadavg()[0]
        with open(log, "w") as handle:
            proc = subprocess.run(_worker_argv(args, run, str(result_file)), stdout=handle,
                                  stderr=subprocess.STDOUT, cwd=REPO)
        if proc.returncode != 0:
            raise SystemExit(f"the {label} run failed (exit {proc.returncode}); see {log}")
        results[label] = json.loads(result_file.read_text())
        # The 1-minute load average when the run started and ended: on a shared machine the
        # figures are comparable only between runs under similar load.
        results[label]["load_avg"] = [load_start, os.getloadavg()[0]]
    if args.device == "cpu":
        from trainers.method.precision import resolve_precision

        # What the default configuration (main.sh: PREC fp16) runs in on this CPU.
        args.default_cpu_prec = resolve_precision("fp16", "cpu", "auto")
    summary = summarize(results, args)
    summary["model"] = args.model
    emit(format_table(summary), summary, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

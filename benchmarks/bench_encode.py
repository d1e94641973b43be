"""Image-encoder cost per precision on this machine (random ViT-B/16, no grad).

    python benchmarks/bench_encode.py                    # 1 thread, batch 8, every precision
    python benchmarks/bench_encode.py --threads 2 --batch 16 --model tiny-vit
    python benchmarks/bench_encode.py --stages --precisions fp32,bf16 --profile 12
    python benchmarks/bench_encode.py --precisions fp32,bf16 --compile --threads 2 --batch 16

Per precision (fp32, bf16, amp, fp16; see trainers/method/precision.py): wall seconds and process CPU
seconds per image, best of `--repeats` timed batches after one warm-up batch, and the ratio to
fp32 (`--compile`: also through `torch.compile`, with the compile time apart). CPU seconds are
reported because a shared machine's load inflates wall time; with one
thread they measure the arithmetic itself. Prints a table and one JSON line.

`--stages` follows one image through the fast evaluation path instead, on the synthetic
AGIQA-3K of bench_train.py (`--root`, `--n-images`; real per-generator sizes 256-1024 px):
decoding to uint8 (`DecodedImages.decode`, once per run), the test transform (resize, centre
crop, normalise: `TensorTransform`), and per precision the image encoder
(`CustomCLIP.encode_image` under the run's autocast); CPU seconds per image, best of
`--repeats` passes, and the end-to-end ratio transform + encode against fp32's. `--profile K`
adds, per precision, the K operators with the most self CPU time in one encoder batch
(`torch.profiler`).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from clip.model import build_model  # noqa: E402
from clip.random_weights import random_state_dict  # noqa: E402
from trainers.method.compiled import CompiledForward  # noqa: E402
from trainers.method.precision import cast_clip, cpu_flags, resolve_precision  # noqa: E402

BASE_YAML = REPO / "configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml"

PRECISIONS = ("fp32", "bf16", "amp", "fp16")


def measure(model: torch.nn.Module, precision: str, batch: int, repeats: int,
            compile: bool = False) -> dict:
    """Seconds per image (wall and CPU) of the image tower in `precision`, best of `repeats`;
    `compile`: through `torch.compile` (`TRAINER.CLIP_AGIQA.COMPILE`), its warm-up batch (the
    timed shape: one compile) giving `compile_s`, the wall seconds beyond a compiled batch."""
    cast_clip(model, "fp32" if precision == "amp" else precision)
    dtype = model.visual.conv1.weight.dtype
    images = torch.randn(batch, 3, model.visual.input_resolution, model.visual.input_resolution)
    context = torch.autocast("cpu") if precision == "amp" else nullcontext()
    encoder = CompiledForward(model.visual) if compile else model.visual
    walls, cpus = [], []
    with torch.no_grad(), context:
        # Warm-up (kernel selection, allocations; compiled: the compile of the timed shape).
        start = time.perf_counter()
        encoder((images if compile else images[:1]).to(dtype))
        first_s = time.perf_counter() - start
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            encoder(images.to(dtype))
            walls.append((time.perf_counter() - wall) / batch)
            cpus.append((time.process_time() - cpu) / batch)
    out = {"wall_s_per_image": min(walls), "cpu_s_per_image": min(cpus)}
    if compile:
        out["compile_s"] = first_s - min(walls) * batch
        out["compiled"] = encoder.compiled
    return out


def _cpu_seconds(fn, repeats: int) -> float:
    """Least process CPU seconds of `repeats` calls of `fn()`."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def profile_top_ops(fn, k: int) -> list[dict]:
    """The `k` operators with the most self CPU time in one call of `fn()`: name, self CPU
    seconds, calls and share of the profiled total."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:k]
    return [{"op": e.key, "self_cpu_s": e.self_cpu_time_total / 1e6, "calls": e.count,
             "share": e.self_cpu_time_total / total} for e in top]


def measure_stages(args: argparse.Namespace) -> dict:
    """Decode, test transform and encoder (per precision) of the fast evaluation path; CPU
    seconds per image. See the module docstring."""
    from bench_assets import default_names_csv, ensure_dataset

    from dassl.config import get_cfg_default, merge_config
    from trainers.fast.decoded_images import DecodedImages
    from trainers.fast.tensor_transforms import TensorTransform
    from trainers.method.custom_clip import CustomCLIP
    from trainers.method.precision import autocast_dtype

    folder, _ = ensure_dataset(args.root, args.n_images, default_names_csv())
    names = (folder / "data.csv").read_text().splitlines()[1:]
    paths = [str(folder / line.split(",")[0]) for line in names]
    start = time.process_time()
    images = DecodedImages.decode(paths, "cpu", workers=1)
    decode = (time.process_time() - start) / len(paths)
    cfg = get_cfg_default()
    merge_config(cfg, [str(BASE_YAML)], [])
    transform = TensorTransform.from_config(cfg, is_train=False)
    batches = torch.arange(len(paths)).split(args.batch)
    transform_s = _cpu_seconds(lambda: [transform(images, b) for b in batches], args.repeats)
    pixels = [transform(images, b) for b in batches]
    clip_model = build_model(random_state_dict(args.model))
    out = {"n_images": len(paths), "sizes": sorted({f"{w}x{h}" for h, w in images.sizes}),
           "decode_cpu_s_per_image": decode,
           "transform_cpu_s_per_image": transform_s / len(paths), "encode": {}}
    for precision in args.precisions.split(","):
        cast_clip(clip_model, "fp32" if precision == "amp" else precision)
        # CustomCLIP.encode_image reads only these attributes of the model (uncompiled).
        model = SimpleNamespace(image_encoder=clip_model.visual, compiled_image_encoder=None,
                                dtype=clip_model.visual.conv1.weight.dtype)
        dtype = autocast_dtype("cpu") if precision == "amp" else None

        def encode(model=model, dtype=dtype):
            with torch.no_grad(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                for batch in pixels:
                    CustomCLIP.encode_image(model, batch)

        encode()  # warm-up
        row = {"cpu_s_per_image": _cpu_seconds(encode, args.repeats) / len(paths)}
        if args.profile:
            row["top_ops"] = profile_top_ops(lambda: encode(), args.profile)
        out["encode"][precision] = row
    base = out["encode"].get("fp32")
    for row in out["encode"].values():
        row["encode_speedup_vs_fp32"] = base["cpu_s_per_image"] / row["cpu_s_per_image"] \
            if base else None
        both = out["transform_cpu_s_per_image"] + row["cpu_s_per_image"]
        row["transform_plus_encode_cpu_s_per_image"] = both
        row["end_to_end_speedup_vs_fp32"] = (out["transform_cpu_s_per_image"]
                                             + base["cpu_s_per_image"]) / both if base else None
    return out


def print_stages(stages: dict) -> None:
    """The stage table and, when profiled, each precision's top operators."""
    print(f"{stages['n_images']} images ({', '.join(stages['sizes'])}); CPU s per image:")
    print(f"  decode (once per run)  {stages['decode_cpu_s_per_image']:.4f}")
    print(f"  test transform         {stages['transform_cpu_s_per_image']:.4f}")
    for name, row in stages["encode"].items():
        print(f"  encode {name:5s}           {row['cpu_s_per_image']:.4f}  x{row['encode_speedup_vs_fp32']:.2f}"
              f" vs fp32; transform + encode {row['transform_plus_encode_cpu_s_per_image']:.4f}"
              f"  x{row['end_to_end_speedup_vs_fp32']:.2f}")
    for name, row in stages["encode"].items():
        if "top_ops" in row:
            print(f"  top operators, {name} (self CPU s, calls, share):")
            for op in row["top_ops"]:
                print(f"    {op['op'][:40]:40s} {op['self_cpu_s']:8.3f} {op['calls']:6d} "
                      f"{op['share']:6.1%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ViT-B/16", help="clip.random_weights preset")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    parser.add_argument("--compile", action="store_true",
                        help="also each precision through torch.compile (rows '<prec>+compile', "
                             "with the compile time)")
    parser.add_argument("--stages", action="store_true",
                        help="decode / test transform / encoder of the fast evaluation path")
    parser.add_argument("--profile", type=int, default=0, metavar="K",
                        help="with --stages: the K operators with the most self CPU time")
    parser.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "clip_agiqa_bench"),
                        help="with --stages: folder of bench_train.py's synthetic dataset")
    parser.add_argument("--n-images", type=int, default=45, help="with --stages: dataset size")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.stages:
        stages = measure_stages(args)
        stages.update(model=args.model, threads=args.threads, batch=args.batch,
                      torch=torch.__version__)
        print_stages(stages)
        print(json.dumps(stages, sort_keys=True))
        return 0
    model = build_model(random_state_dict(args.model))
    results = {}
    for precision in args.precisions.split(","):
        results[precision] = measure(model, precision, args.batch, args.repeats)
        if args.compile:
            results[f"{precision}+compile"] = measure(model, precision, args.batch,
                                                      args.repeats, compile=True)
    base = results.get("fp32")
    for row in results.values():
        for key in ("wall", "cpu"):
            unit = f"{key}_s_per_image"
            row[f"{key}_speedup_vs_fp32"] = base[unit] / row[unit] if base else None
    flags = cpu_flags()
    summary = {"model": args.model, "threads": args.threads, "batch": args.batch,
               "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
               "bf16_flags": sorted(flags & {"avx512_bf16", "amx_bf16"}),
               "fp16_flags": sorted(flags & {"avx512_fp16", "amx_fp16"}),
               "default_cpu_prec": resolve_precision("fp16", "cpu", "auto"), "results": results}
    print(f"{args.model}, {args.threads} thread(s), batch {args.batch}, torch {torch.__version__}, "
          f"default PREC fp16 -> {summary['default_cpu_prec']}")
    for name, row in results.items():
        compiled = f", compile {row['compile_s']:.1f} s" if "compile_s" in row else ""
        print(f"  {name:13s} wall {row['wall_s_per_image']:.3f} s/img, CPU "
              f"{row['cpu_s_per_image']:.3f} s/img, x{row['cpu_speedup_vs_fp32'] or 0:.2f} vs fp32 "
              f"(CPU){compiled}")
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

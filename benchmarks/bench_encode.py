"""Image-encoder cost per precision on this machine (random ViT-B/16, no grad).

    python benchmarks/bench_encode.py                    # 1 thread, batch 8, every precision
    python benchmarks/bench_encode.py --threads 2 --batch 16 --model tiny-vit

Per precision (fp32, bf16, amp, fp16; see trainers/method/precision.py): wall seconds and process CPU
seconds per image, best of `--repeats` timed batches after one warm-up batch, and the ratio to
fp32. CPU seconds are reported because a shared machine's load inflates wall time; with one
thread they measure the arithmetic itself. Prints a table and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from clip.model import build_model  # noqa: E402
from clip.random_weights import random_state_dict  # noqa: E402
from trainers.method.precision import cast_clip, cpu_flags, resolve_precision  # noqa: E402

PRECISIONS = ("fp32", "bf16", "amp", "fp16")


def measure(model: torch.nn.Module, precision: str, batch: int, repeats: int) -> dict:
    """Seconds per image (wall and CPU) of the image tower in `precision`, best of `repeats`."""
    cast_clip(model, "fp32" if precision == "amp" else precision)
    dtype = model.visual.conv1.weight.dtype
    images = torch.randn(batch, 3, model.visual.input_resolution, model.visual.input_resolution)
    context = torch.autocast("cpu") if precision == "amp" else nullcontext()
    walls, cpus = [], []
    with torch.no_grad(), context:
        model.visual(images[:1].to(dtype))  # warm-up (kernel selection, allocations)
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            model.visual(images.to(dtype))
            walls.append((time.perf_counter() - wall) / batch)
            cpus.append((time.process_time() - cpu) / batch)
    return {"wall_s_per_image": min(walls), "cpu_s_per_image": min(cpus)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="ViT-B/16", help="clip.random_weights preset")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = build_model(random_state_dict(args.model))
    results = {p: measure(model, p, args.batch, args.repeats)
               for p in args.precisions.split(",")}
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
        print(f"  {name:5s} wall {row['wall_s_per_image']:.3f} s/img, CPU "
              f"{row['cpu_s_per_image']:.3f} s/img, x{row['cpu_speedup_vs_fp32'] or 0:.2f} vs fp32 (CPU)")
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Peak host and GPU memory of the fast pipeline's data path at AIGIQA-20K's size.

    python benchmarks/bench_memory.py                       # 20,000 paths, 1,000 decoded per mode
    python benchmarks/bench_memory.py --run-images 4000 --model ViT-B/16 --device cuda

AIGIQA-20K has 20,000 PNG images of 512 to 1024 px (official split 14,000 / 2,000 / 4,000). The
benchmark writes `--distinct` real PNG files of four sizes (512x512, 768x768, 1024x1024,
1024x576) under `--root` once and lists them cyclically as the 20,000 images of that split, so
the header estimate and the memory plan (`trainers.fast.memory_plan`) see the database's size.
It then runs, each mode in its own subprocess (peak RSS is per process):

- `budget`: what the trainer does under `TRAINER.CLIP_AGIQA.DECODED_MEMORY_GB` (`--budget-gb`,
  default 12) for the 20,000 images: the first `--run-images` training images of one epoch
  (random resized crop + flip) decoded in `--workers` loader processes and encoded, and the
  first `--run-images` / 3.5 test images stored as their 224x224 test crops and encoded;
- `full`: the decode-once path on the same images (every split decoded at full size).

Reported per mode: seconds, peak RSS of the main process and of its largest loader worker
(`resource.getrusage`, so including every tensor and the decoder buffers), the decoded bytes
held, and peak GPU memory (`torch.cuda.max_memory_allocated`; "n/a" on a CPU). The full mode's
memory grows with the images decoded (the plan's estimate says how much for 20,000); the budget
mode's training memory is the chunks in flight. The image encoder is `--model`: "standin" (a
16x16 patch mean and a linear map to 512 features, so that a CPU measures the data path, not
ViT arithmetic) or a `clip.random_weights` preset (e.g. ViT-B/16, random weights).
Prints a table and one JSON line (also to `--out`), with the load average beside the figures.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from tabulate import tabulate  # noqa: E402

from bench_report import emit  # noqa: E402

GIB = 2 ** 30
SIZES = ((512, 512), (768, 768), (1024, 1024), (576, 1024))  # (H, W), cycled
# AIGIQA-20K's official membership, as fractions of the images.
PARTS = {"train": 0.7, "val": 0.1, "test": 0.2}
CROP = 224
MODES = ("budget", "full")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.path.join(tempfile.gettempdir(),
                                                       "clip_agiqa_bench_memory"))
    parser.add_argument("--images", type=int, default=20_000, help="images listed (20,000)")
    parser.add_argument("--distinct", type=int, default=16, help="PNG files written (cycled)")
    parser.add_argument("--run-images", type=int, default=1000,
                        help="training images decoded per mode (the test part: this / 3.5)")
    parser.add_argument("--budget-gb", type=float, default=12.0,
                        help="TRAINER.CLIP_AGIQA.DECODED_MEMORY_GB (default 12)")
    parser.add_argument("--workers", type=int, default=2, help="loader worker processes")
    parser.add_argument("--encode-batch-size", type=int, default=256)
    parser.add_argument("--model", default="standin",
                        help="'standin' or a clip.random_weights preset, e.g. ViT-B/16")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--out", default=None, help="also write the JSON line here")
    parser.add_argument("--worker-mode", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    return parser


def ensure_images(root: Path, distinct: int) -> list[str]:
    """`distinct` PNG files cycling through `SIZES` (smooth colour fields with noise, so PNG
    decoding costs about what photographs cost), written once."""
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    rng = np.random.default_rng(0)
    for i in range(distinct):
        path = folder / f"img_{i:03d}.png"
        paths.append(str(path))
        if path.is_file():
            continue
        h, w = SIZES[i % len(SIZES)]
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], axis=-1)
        noisy = base + rng.normal(0, 12, base.shape)
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path)
    return paths


def split_paths(files: list[str], n: int) -> dict[str, list[str]]:
    """`n` paths cycling through `files`, cut into the official parts in order."""
    paths = [files[i % len(files)] for i in range(n)]
    cuts, out, start = [round(n * f) for f in PARTS.values()], {}, 0
    for name, count in zip(PARTS, cuts):
        out[name] = paths[start:start + count]
        start += count
    return out


class StandinEncoder(torch.nn.Module):
    """`encode_image`: mean of 16 x 16 patches, a fixed linear map to 512 features, unit norm."""

    def __init__(self) -> None:
        super().__init__()
        self.image_encoder = torch.nn.Linear(3 * 16 * 16, 512)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        patches = torch.nn.functional.unfold(images, 16, stride=16).mean(dim=-1)
        return torch.nn.functional.normalize(self.image_encoder(patches), dim=-1)


def load_model(name: str, device: torch.device) -> torch.nn.Module:
    if name == "standin":
        return StandinEncoder().to(device).eval()
    from clip.random_weights import save_random_weights
    from trainers.method.custom_clip import load_clip

    weights = Path(tempfile.gettempdir()) / f"bench_memory_{name.replace('/', '-')}.pt"
    if not weights.is_file():
        save_random_weights(weights, name)
    clip_model = load_clip(str(weights), "fp32" if device.type == "cpu" else "fp16")
    clip_model.image_encoder = clip_model.visual  # what ImageFeatureEncoder inspects
    return clip_model.to(device).eval()


def transform_config():
    from dassl.config import get_cfg_default

    cfg = get_cfg_default()
    cfg.INPUT.SIZE = (CROP, CROP)
    cfg.INPUT.INTERPOLATION = "bicubic"
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    return cfg


def peak_rss() -> tuple[int, int]:
    """Peak RSS in bytes of this process and of its largest finished child (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return own, child


def run_mode(args: argparse.Namespace) -> dict:
    """One mode in this process: the training epoch, then the test split; figures."""
    from trainers.fast.decoded_images import DecodedImages, StreamedImages
    from trainers.fast.feature_loaders import ImageFeatureEncoder
    from trainers.fast.multi_crop import MultiCropTransform
    from trainers.fast.tensor_transforms import TensorTransform
    from trainers.method.model_spec import TestInput

    device = torch.device("cuda" if args.device == "cuda" or (
        args.device == "auto" and torch.cuda.is_available()) else "cpu")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    parts = split_paths(ensure_images(Path(args.root), args.distinct), args.images)
    train = parts["train"][:args.run_images]
    test = parts["test"][:max(1, round(args.run_images / 3.5))]
    cfg = transform_config()
    test_input = TestInput(size=(CROP, CROP), interpolation="bicubic",
                           mean=tuple(cfg.INPUT.PIXEL_MEAN), std=tuple(cfg.INPUT.PIXEL_STD))
    encoder = ImageFeatureEncoder(load_model(args.model, device), device,
                                  args.encode_batch_size, contextlib.nullcontext)
    torch.manual_seed(0)
    start = time.perf_counter()
    held = 0
    if args.worker_mode == "budget":
        train_images = StreamedImages(train, device, args.workers)
        test_images = DecodedImages.store_transformed(
            StreamedImages(test, device, args.workers), MultiCropTransform(test_input).resample,
            (CROP, CROP))
    else:
        train_images = DecodedImages.decode(train, device)
        test_images = DecodedImages.decode(test, device)
        held += train_images.nbytes
    held += test_images.nbytes
    train_features = encoder.encode(train_images, torch.randperm(len(train)),
                                    TensorTransform.from_config(cfg, is_train=True))
    test_features = encoder.encode(test_images, torch.arange(len(test)),
                                   MultiCropTransform(test_input))
    seconds = time.perf_counter() - start
    own, child = peak_rss()
    return {"mode": args.worker_mode, "device": str(device), "train_images": len(train),
            "test_images": len(test), "seconds": seconds, "peak_rss_bytes": own,
            "peak_worker_rss_bytes": child, "decoded_bytes_held": held,
            "features": [tuple(train_features.shape), tuple(test_features.shape)],
            "peak_gpu_bytes": (torch.cuda.max_memory_allocated() if device.type == "cuda"
                               else None)}


def plan_for_database(args: argparse.Namespace) -> dict:
    """Header estimate and memory plan for the `--images` listed images."""
    from trainers.fast.decoded_images import header_sizes
    from trainers.fast.memory_plan import plan_memory

    parts = split_paths(ensure_images(Path(args.root), args.distinct), args.images)
    start = time.perf_counter()
    sizes = {name: header_sizes(paths) for name, paths in parts.items()}
    seconds = time.perf_counter() - start
    plan = plan_memory(sizes, args.budget_gb, (CROP, CROP), 1, args.workers)
    return {"images": args.images, "header_seconds": seconds, "full_bytes": dict(plan.full_bytes),
            "kept_bytes": plan.kept_bytes, "train": plan.train, "evaluation": plan.evaluation,
            "message": plan.message}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker_mode:
        Path(args.result_file).write_text(json.dumps(run_mode(args)))
        return 0
    plan = plan_for_database(args)
    print(plan["message"])
    runs = {}
    for mode in args.modes.split(","):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            result_file = handle.name
        command = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]),
                   "--worker-mode", mode, "--result-file", result_file]
        subprocess.run(command, check=True)
        runs[mode] = json.loads(Path(result_file).read_text())
        runs[mode]["load_avg"] = os.getloadavg()
        os.unlink(result_file)
    rows = [[mode, r["train_images"], r["test_images"], f"{r['seconds']:.1f}",
             f"{r['peak_rss_bytes'] / GIB:.2f}", f"{r['peak_worker_rss_bytes'] / GIB:.2f}",
             f"{r['decoded_bytes_held'] / GIB:.2f}",
             "n/a" if r["peak_gpu_bytes"] is None else f"{r['peak_gpu_bytes'] / GIB:.2f}",
             " ".join(f"{x:.2f}" for x in r["load_avg"])] for mode, r in runs.items()]
    table = tabulate(rows, headers=["mode", "train imgs", "test imgs", "s", "peak RSS GiB",
                                    "largest child RSS GiB", "decoded held GiB", "peak GPU GiB",
                                    "load avg"], tablefmt="github")
    summary = {"benchmark": "clip_agiqa_memory", "plan": plan, "runs": runs,
               "model": args.model, "workers": args.workers, "cpus": os.cpu_count()}
    emit(table, summary, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

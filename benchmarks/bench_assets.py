"""Inputs of the training benchmark: a synthetic AGIQA-3K and random CLIP weights, built once.

The dataset has AGIQA-3K's layout (`ROOT/AGIQA-3K/data.csv` + JPEG images), the real image names
when the real label file is available (so the real train/test split sizes follow: 2,385 / 597
for all 2,982 rows) and approximately the real per-generator sizes (256, 512 and 1024 px; see
`datasets.synthetic.AGIQA_APPROX_SIZES`). Images are rendered in parallel processes, each
running `datasets.synthetic.make_synthetic_agiqa` on a slice of the names; a marker file records
what was built so a later run with the same request reuses it.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from clip.random_weights import save_random_weights
from datasets.labels import read_text_table
from datasets.synthetic import make_synthetic_agiqa

REPO = Path(__file__).resolve().parents[1]
# The real AGIQA-3K label file, shipped with the loaders (MIT licence; datasets/data/README.md).
NAMES_CSV = REPO / "datasets" / "data" / "AGIQA-3K" / "data.csv"
MARKER = ".bench_dataset.json"
FULL_SIZE = 2982  # rows of AGIQA-3K's data.csv


def default_names_csv() -> Path | None:
    """The real AGIQA-3K data.csv if this checkout has it (a copy without tests/ may not),
    else None (generated names)."""
    return NAMES_CSV if NAMES_CSV.is_file() else None


def _render_part(job: tuple[str, str, int]) -> str:
    """Process-pool task: render the names of one CSV slice into its own root."""
    part_root, names_csv, seed = job
    make_synthetic_agiqa(part_root, names_csv=names_csv, sizes="real", seed=seed)
    return part_root


def _names_table(n_images: int, names_csv: Path | None, scratch: Path) -> pd.DataFrame:
    """`n_images` rows (evenly spaced, file order) of the real label file, or generated names
    in AGIQA-3K's pattern (taken from a throw-away 8 px synthetic set)."""
    if names_csv is not None:
        table = read_text_table(names_csv, ("name",))
        if not 0 < n_images <= len(table):
            raise ValueError(f"--n-images must be in 1..{len(table)} for {names_csv}")
        step = (len(table) - 1) / max(1, n_images - 1)
        return table.iloc[[round(i * step) for i in range(n_images)]].reset_index(drop=True)
    folder = make_synthetic_agiqa(scratch / "names", n_images=n_images, sizes=((8, 8),))
    return pd.read_csv(folder / "data.csv", dtype=str, keep_default_na=False)


def ensure_dataset(root: str | Path, n_images: int, names_csv: Path | None = None,
                   workers: int | None = None) -> tuple[Path, bool]:
    """Build (or reuse) the synthetic AGIQA-3K under `root`; return `(folder, reused)`."""
    root = Path(root)
    folder = root / "AGIQA-3K"
    request = {"n_images": int(n_images), "names_csv": str(names_csv) if names_csv else None,
               "sizes": "real"}
    marker = folder / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == request:
        return folder, True
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    workers = max(1, min(workers or os.cpu_count() or 1, n_images))
    with tempfile.TemporaryDirectory(dir=root) as scratch_dir:
        scratch = Path(scratch_dir)
        table = _names_table(n_images, names_csv, scratch)
        jobs = []
        for k in range(workers):
            part = table.iloc[k * len(table) // workers:(k + 1) * len(table) // workers]
            part_csv = scratch / f"names_{k}.csv"
            part.to_csv(part_csv, index=False)
            jobs.append((str(scratch / f"part_{k}"), str(part_csv), k))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            part_roots = list(pool.map(_render_part, jobs))
        tables = []
        for part_root in part_roots:
            part_folder = Path(part_root) / "AGIQA-3K"
            tables.append(pd.read_csv(part_folder / "data.csv", dtype=str,
                                      keep_default_na=False))
            for image in part_folder.iterdir():
                if image.name != "data.csv":
                    os.replace(image, folder / image.name)
    pd.concat(tables).to_csv(folder / "data.csv", index=False)
    marker.write_text(json.dumps(request))
    return folder, False


def ensure_weights(root: str | Path, arch: str = "ViT-B/16", seed: int = 0) -> tuple[Path, bool]:
    """Random OpenAI-layout weights of `arch` in `root` (reused when present)."""
    path = Path(root) / f"random_{arch.replace('/', '-')}_seed{seed}.pt"
    if path.is_file():
        return path, True
    return Path(save_random_weights(path, arch, seed)), False

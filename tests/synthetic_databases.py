"""Synthetic AGIQA-1K and AIGIQA-20K in their real layouts, for the tests (the user-facing
generator, ``python -m datasets.synthetic``, builds AGIQA-3K and AIGCIQA2023): label files of the
real shape and images named as the real ones, grey placeholders or degraded scenes of
``datasets.synthetic`` whose strength follows the MOS."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from datasets import agiqa1k, aigiqa20k
from datasets.labels import read_text_table
from datasets.synthetic import PROMPT_WORDS, degrade, random_scene, save_image

Size = tuple[int, int]  # (width, height) in pixels

# AIGIQA-20K's 15 generators (name prefixes) and their share of the images, in units of 1/40:
# each part of the official split holds the same proportions (350/50/100 images per unit in
# info_train/val/test = 14,000/2,000/4,000 rows).
AIGIQA20K_MODEL_UNITS = {"DALLE2": 1, "DALLE3": 1, "Dream": 4, "IF": 1, "LCM_Pixart": 2,
                         "LCM_SD1.5": 2, "LCM_SDXL": 2, "MJ": 1, "Pixart": 4, "Playground": 4,
                         "SD1.4": 4, "SD1.5": 4, "SDXL": 4, "SDXL_Turbo": 2, "SSD1B": 4}
AIGIQA20K_PART_UNITS = {"train": 350, "val": 50, "test": 100}

def write_placeholder_images(folder: str | Path, names: Sequence[str],
                             size: Size = (8, 8)) -> None:
    """Write one tiny grey image per name into ``folder`` (created if missing).

    For loader tests that only need the files to exist and decode: the image is encoded once
    (JPEG or PNG after the first name's extension) and its bytes copied to every name.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not len(names):
        return
    buffer = io.BytesIO()
    fmt = "PNG" if str(names[0]).lower().endswith(".png") else "JPEG"
    Image.new("RGB", tuple(size), (128, 128, 128)).save(buffer, format=fmt)
    data = buffer.getvalue()
    for name in names:
        (folder / name).write_bytes(data)


def write_xlsx(path: str | Path, header: Sequence[str], rows: Sequence[Sequence]) -> Path:
    """Write one sheet ("Sheet1") with ``header`` and ``rows`` to the ``.xlsx`` file ``path``."""
    from openpyxl import Workbook  # deferred: only the xlsx-based databases need it

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Sheet1")
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def make_synthetic_agiqa1k(root: str | Path, label_file: str | Path, n_images: int | None = None,
                           size: Size = (8, 8), seed: int = 0, rendered: bool = False) -> Path:
    """Build ``root/AGIQA-1K/AIGC_MOS_Zscore.xlsx`` and ``file/<name>`` from a real label file.

    The rows (names, prompts and MOS) are those of ``label_file`` (an AGIQA-1K xlsx), all of
    them or ``n_images`` evenly spaced ones plus the duplicated last row, so the duplicate
    stays. Images: grey placeholders of ``size`` (loader tests), or with ``rendered`` the
    degraded scenes of ``render_example`` whose strength follows the MOS (``s = 1 - MOS / 5``),
    so a model can learn them. Returns the ``AGIQA-1K`` folder.
    """
    raw = read_text_table(label_file, list(agiqa1k.COLUMNS.values()))
    if n_images is not None:
        if not 2 <= n_images <= len(raw):
            raise ValueError(f"n_images must be in 2..{len(raw)}, got {n_images}")
        keep = np.unique(np.r_[np.linspace(0, len(raw) - 3, n_images - 2).round().astype(int),
                               len(raw) - 2, len(raw) - 1])
        raw = raw.iloc[keep].reset_index(drop=True)
    folder = Path(root) / agiqa1k.FOLDER
    columns = list(agiqa1k.COLUMNS.values())
    write_xlsx(folder / agiqa1k.LABEL_FILES[0], columns,
               [(r[0], r[1], float(r[2])) for r in raw[columns].itertuples(index=False)])
    images = folder / agiqa1k.IMAGE_FOLDER
    names = list(dict.fromkeys(raw[agiqa1k.COLUMNS["name"]]))
    if not rendered:
        write_placeholder_images(images, names, size)
        return folder
    images.mkdir(parents=True, exist_ok=True)
    mos = dict(zip(raw[agiqa1k.COLUMNS["name"]], raw[agiqa1k.COLUMNS["mos"]].astype(float)))
    for i, name in enumerate(names):
        rng = np.random.default_rng([seed, 0, i])
        strength = float(np.clip(1.0 - mos[name] / 5.0, 0.0, 1.0))
        save_image(degrade(random_scene(rng, size), strength, rng), images / name, "jpg")
    return folder


def aigiqa20k_names(per_unit: Mapping[str, int] | None = None,
                    seed: int = 0) -> dict[str, list[str]]:
    """Image names of each official part, ``<Model>_<4 digits>.png``, in AIGIQA-20K's
    proportions: ``per_unit[part]`` images per model unit (default 350/50/100, the real
    14,000/2,000/4,000). Each model's numbers ``0000 ..`` are dealt to the parts at random."""
    per_unit = dict(AIGIQA20K_PART_UNITS if per_unit is None else per_unit)
    rng = np.random.default_rng([seed, 20])
    parts: dict[str, list[str]] = {part: [] for part in per_unit}
    for model, units in AIGIQA20K_MODEL_UNITS.items():
        counts = {part: units * n for part, n in per_unit.items()}
        numbers = rng.permutation(sum(counts.values()))
        start = 0
        for part, count in counts.items():
            parts[part] += [f"{model}_{k:04d}.png" for k in sorted(numbers[start:start + count])]
            start += count
    return parts


def make_synthetic_aigiqa20k(root: str | Path, per_unit: Mapping[str, int] | None = None,
                             images: str = "none", size: Size = (8, 8), seed: int = 0,
                             full_label_file: str | None = None, file_format: str = "xlsx",
                             rendered: bool = False) -> Path:
    """Build ``root/AIGIQA-20K/info_{train,val,test}.<xlsx|csv>`` of the real shape (header
    ``name,prompt,mos`` for train, ``name,prompt`` for val/test; sizes from ``per_unit``, see
    ``aigiqa20k_names``) and optionally the images: ``images`` "none", "split" (``train/``,
    ``val/``, ``test/`` folders) or "flat" (all in the database folder), grey placeholders of
    ``size``, or with ``rendered`` degraded scenes whose strength follows the MOS (as
    ``make_synthetic_agiqa1k``), so a model can learn them. MOS are uniform in [0.12, 4.98].
    ``full_label_file`` (a file name) also writes every part's rows with MOS there, as a user
    holding the full 20,000-row file would. Returns the ``AIGIQA-20K`` folder.
    """
    if images not in ("none", "split", "flat"):
        raise ValueError(f"images must be 'none', 'split' or 'flat', got {images!r}")
    folder = Path(root) / aigiqa20k.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 21])
    full = []
    for part, names in aigiqa20k_names(per_unit, seed).items():
        prompts = [f"a {PROMPT_WORDS[i % len(PROMPT_WORDS)]} number {i}" for i in range(len(names))]
        mos = rng.uniform(0.12, 4.98, len(names))
        rows = [(n, p, float(m)) for n, p, m in zip(names, prompts, mos)]
        full += rows
        header = ["name", "prompt", "mos"] if part == "train" else ["name", "prompt"]
        body = rows if part == "train" else [r[:2] for r in rows]
        _write_table(folder / f"info_{part}.{file_format}", header, body)
        target = folder / part if images == "split" else folder
        if images != "none" and not rendered:
            write_placeholder_images(target, names, size)
        elif images != "none":
            target.mkdir(parents=True, exist_ok=True)
            for i, (name, score) in enumerate(zip(names, mos)):
                scene_rng = np.random.default_rng([seed, 20, len(full) - len(names) + i])
                strength = float(np.clip(1.0 - score / 5.0, 0.0, 1.0))
                save_image(degrade(random_scene(scene_rng, size), strength, scene_rng), target / name,
                      "png")
    if full_label_file:
        _write_table(folder / full_label_file, ["name", "prompt", "mos"], full)
    return folder


def _write_table(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    """``.xlsx`` through ``write_xlsx``, anything else as CSV."""
    if path.suffix == ".xlsx":
        write_xlsx(path, header, rows)
    else:
        pd.DataFrame(list(rows), columns=list(header)).to_csv(path, index=False)

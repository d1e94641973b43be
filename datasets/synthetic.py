"""Synthetic stand-ins for AGIQA-3K and AIGCIQA2023 whose MOS follow visible degradations.

Used by tests, the demo and benchmarks, since the real images cannot be downloaded here. Each
image is a random smooth "scene" (a blurred colour field, sharp-edged shapes and a fine
grating) degraded by Gaussian blur, Gaussian noise and JPEG compression, all growing with one
strength ``s`` in [0, 1]; the quality MOS is a decreasing linear function of ``s``
(AGIQA-3K: ``5 (1 - s)``; AIGCIQA2023: ``27 + 47 (1 - s)``), so a model can learn it from pixels.
Optionally (``haze``, used by the demo) the image also fades toward white as ``s`` grows: blur,
noise and JPEG hardly change what a CLIP with random weights computes (its image feature is
close to an average over patches, where noise cancels), while a haze shifts every patch alike.
Generation is deterministic in ``(seed, image index)``.

CLI: ``python -m datasets.synthetic agiqa --root DIR --n 200`` or
``python -m datasets.synthetic aigciqa2023 --root DIR --n 200``.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFilter

from . import agiqa, aigciqa2023
from .labels import MAT_VARIABLE, mat_row_name, read_text_csv

__all__ = ["make_synthetic_agiqa", "make_synthetic_aigciqa2023", "make_synthetic_agiqa1k",
           "make_synthetic_aigiqa20k", "aigiqa20k_names", "write_xlsx", "render_example",
           "random_scene", "degrade", "write_placeholder_images", "AGIQA_APPROX_SIZES",
           "AGIQA_GROUPS", "AIGIQA20K_MODEL_UNITS", "AIGIQA20K_PART_UNITS", "main"]

Size = tuple[int, int]  # (width, height) in pixels
SizeSpec = Union[Sequence[Size], Mapping[str, Size], str]

# Approximately the real AGIQA-3K image sizes per generator (the name's prefix); used with
# sizes="real". Early GANs/diffusion at 256 px, SD-based at 512 px, commercial ones at 1024 px.
AGIQA_APPROX_SIZES: dict[str, Size] = {
    "AttnGAN": (256, 256), "glide": (256, 256), "sd1.5": (512, 512), "xl2.2": (512, 512),
    "DALLE2": (1024, 1024), "midjourney": (1024, 1024),
}
# (generator, style) groups of AGIQA-3K's names, "<generator>_<style>_<NNN>.jpg".
AGIQA_GROUPS = [("AttnGAN", "normal"), ("DALLE2", "normal"), ("glide", "normal"),
                ("midjourney", "lowstep"), ("midjourney", "normal"), ("sd1.5", "highcorr"),
                ("sd1.5", "lowcorr"), ("sd1.5", "lowstep"), ("sd1.5", "normal"),
                ("xl2.2", "normal")]
AGIQA_COLUMNS = ["name", "prompt", "adj1", "adj2", "style", agiqa.TASK_COLUMNS["quality"],
                 "std_quality", agiqa.TASK_COLUMNS["alignment"], "std_align"]
# AIGIQA-20K's 15 generators (name prefixes) and their share of the images, in units of 1/40:
# each part of the official split holds the same proportions (350/50/100 images per unit in
# info_train/val/test = 14,000/2,000/4,000 rows).
AIGIQA20K_MODEL_UNITS = {"DALLE2": 1, "DALLE3": 1, "Dream": 4, "IF": 1, "LCM_Pixart": 2,
                         "LCM_SD1.5": 2, "LCM_SDXL": 2, "MJ": 1, "Pixart": 4, "Playground": 4,
                         "SD1.4": 4, "SD1.5": 4, "SDXL": 4, "SDXL_Turbo": 2, "SSD1B": 4}
AIGIQA20K_PART_UNITS = {"train": 350, "val": 50, "test": 100}
_WORDS = ["cat", "city", "forest", "robot", "river", "castle", "flower", "ship", "mountain", "owl"]
_MAX_BLUR = 3.0    # Gaussian blur radius at s = 1, in pixels per 256 px of the short side
_MAX_NOISE = 25.0  # noise standard deviation at s = 1, in 8-bit grey levels
_JPEG_BEST, _JPEG_WORST = 95, 10  # JPEG quality at s = 0 and s = 1
_HAZE_COLOUR = 255.0  # the haze is white


def random_scene(rng: np.random.Generator, size: Size) -> Image.Image:
    """A clean RGB scene of ``size`` = (width, height): smooth colours, shapes and a grating."""
    w, h = size
    field = rng.uniform(0, 255, size=(4, 4, 3)).astype(np.uint8)
    img = Image.fromarray(field).resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, x1 = sorted(rng.uniform(0, w, 2))
        y0, y1 = sorted(rng.uniform(0, h, 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    # A fine grating (period 4 px) in one quarter: the detail blur and JPEG visibly destroy.
    gx, gy = int(rng.integers(0, w // 2 + 1)), int(rng.integers(0, h // 2 + 1))
    stripes = (np.arange(w // 2) // 2 % 2 * 255).astype(np.uint8)
    patch = np.broadcast_to(stripes[None, :, None], (h // 2, w // 2, 3))
    img.paste(Image.fromarray(np.ascontiguousarray(patch)), (gx, gy))
    return img


def degrade(scene: Image.Image, strength: float, rng: np.random.Generator,
            haze: float = 0.0) -> Image.Image:
    """Blur, haze, add noise and JPEG-compress ``scene``, each growing linearly with ``strength``.

    ``haze`` in [0, 1] is the fraction of white mixed into every pixel at ``strength`` 1
    (0: no haze). Raises ValueError for a strength or haze outside [0, 1].
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if not 0.0 <= haze <= 1.0:
        raise ValueError(f"haze must be in [0, 1], got {haze}")
    radius = _MAX_BLUR * strength * min(scene.size) / 256
    img = scene.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else scene.copy()
    pixels = np.asarray(img, dtype=np.float32)
    if haze > 0:
        veil = haze * strength
        pixels = (1.0 - veil) * pixels + veil * _HAZE_COLOUR
    pixels = pixels + rng.normal(0.0, _MAX_NOISE * strength, size=pixels.shape)
    img = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    quality = round(_JPEG_BEST - (_JPEG_BEST - _JPEG_WORST) * strength)
    img.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def render_example(seed: int, index: int, size: Size, haze: float = 0.0
                   ) -> tuple[Image.Image, Image.Image, float]:
    """Return ``(clean, degraded, strength)`` of image ``index`` of a set made with ``seed``
    (``haze``: see ``degrade``)."""
    rng = np.random.default_rng([seed, 0, index])
    scene = random_scene(rng, size)
    strength = float(rng.uniform(0.0, 1.0))
    return scene, degrade(scene, strength, rng, haze), strength


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


def _size_for(spec: SizeSpec, name: str, index: int) -> Size:
    """Size of image ``index`` named ``name``: a sequence is cycled, a mapping keyed by the
    generator prefix of the name, "real" means ``AGIQA_APPROX_SIZES``. At least 8x8."""
    size = _lookup_size(spec, name, index)
    if len(size) != 2 or min(size) < 8:
        raise ValueError(f"image sizes must be (width, height) of at least 8 px, got {size}")
    return size


def _lookup_size(spec: SizeSpec, name: str, index: int) -> Size:
    if isinstance(spec, str):
        if spec != "real":
            raise ValueError("sizes must be a list of (width, height), a mapping or 'real', "
                             f"got {spec!r}")
        spec = AGIQA_APPROX_SIZES
    if isinstance(spec, Mapping):
        generator = name.split("_")[0]
        if generator not in spec:
            raise ValueError(f"no size given for generator {generator!r} (image {name}); "
                             f"sizes has {sorted(spec)}")
        return tuple(spec[generator])
    if not len(spec):
        raise ValueError("sizes is empty")
    return tuple(spec[index % len(spec)])


def _save(img: Image.Image, path: Path, image_format: str) -> None:
    """Save as "jpg" (quality 95, on top of the degradation's own JPEG pass) or "png"."""
    if image_format == "jpg":
        img.save(path, format="JPEG", quality=95)
    else:
        img.save(path, format="PNG", compress_level=1)  # level 1: speed over file size


def _agiqa_rows(n_images: int | None, names_csv: str | Path | None,
                image_format: str) -> pd.DataFrame:
    """Names and text columns: from ``names_csv`` (an evenly spaced subset in file order when
    ``n_images`` is smaller) or generated in AGIQA-3K's naming pattern."""
    if names_csv is not None:
        source = read_text_csv(names_csv, ("name",))
        if n_images is not None:
            if not 0 < n_images <= len(source):
                raise ValueError(f"n_images must be in 1..{len(source)} for {names_csv}, "
                                 f"got {n_images}")
            source = source.iloc[np.linspace(0, len(source) - 1, n_images).round().astype(int)]
        rows = pd.DataFrame({c: source[c].to_numpy() if c in source else ""
                             for c in AGIQA_COLUMNS[:5]})
        return rows.reset_index(drop=True)
    n = 64 if n_images is None else int(n_images)
    if n < 1:
        raise ValueError(f"n_images must be positive, got {n}")
    ext = "jpg" if image_format == "jpg" else "png"
    names = []
    for i in range(n):  # cycle through the groups: AttnGAN_normal_000, DALLE2_normal_000, ...
        generator, style = AGIQA_GROUPS[i % len(AGIQA_GROUPS)]
        names.append(f"{generator}_{style}_{i // len(AGIQA_GROUPS):03d}.{ext}")
    prompts = [f"a {_WORDS[i % len(_WORDS)]} number {i}" for i in range(n)]
    return pd.DataFrame({"name": names, "prompt": prompts, "adj1": "", "adj2": "", "style": ""})


def make_synthetic_agiqa(root: str | Path, n_images: int | None = None,
                         names_csv: str | Path | None = None, sizes: SizeSpec = ((256, 256),),
                         seed: int = 0, image_format: str = "jpg", haze: float = 0.0) -> Path:
    """Build ``root/AGIQA-3K/data.csv`` plus its images; return the ``AGIQA-3K`` folder.

    Names come from ``names_csv`` (e.g. the real data.csv; prompt/adj/style copied, MOS
    replaced) or follow ``<Generator>_<style>_<NNN>.<ext>`` (64 images when ``n_images`` is
    None). ``mos_quality = 5 (1 - s)`` in [0, 5]; ``mos_align`` is uniform in [0, 5] and
    unrelated to the pixels. ``sizes``: see ``_size_for`` ("real" = ``AGIQA_APPROX_SIZES``).
    ``haze``: see ``degrade`` (0: none).
    """
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    folder = Path(root) / agiqa.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rows = _agiqa_rows(n_images, names_csv, image_format)
    quality = np.empty(len(rows))
    for i, name in enumerate(rows["name"]):
        _clean, img, strength = render_example(seed, i, _size_for(sizes, name, i), haze)
        _save(img, folder / name, image_format)
        quality[i] = 5.0 * (1.0 - strength)
    rng = np.random.default_rng([seed, 1])
    rows[agiqa.TASK_COLUMNS["quality"]] = quality
    rows["std_quality"] = rng.uniform(0.2, 1.0, len(rows))
    rows[agiqa.TASK_COLUMNS["alignment"]] = rng.uniform(0.0, 5.0, len(rows))
    rows["std_align"] = rng.uniform(0.2, 1.0, len(rows))
    rows[AGIQA_COLUMNS].to_csv(folder / agiqa.LABEL_FILE, index=False)
    return folder


def make_synthetic_aigciqa2023(root: str | Path, n_images: int = 64, seed: int = 0,
                               sizes: Sequence[Size] = ((256, 256),), haze: float = 0.0) -> Path:
    """Build ``root/AIGCIQA2023/allimg/<i>.png`` and ``MOS/mosz{1,2,3}.mat``; return the folder.

    ``MOSz`` has shape (N, 1): quality ``27 + 47 (1 - s)``, authenticity the quality plus
    N(0, 4^2) noise, correspondence uniform in [27, 74]; all clipped to [27, 74]. The real
    images are about 512x512; smaller defaults keep tests fast. ``haze``: see ``degrade``.
    """
    from scipy.io import savemat  # deferred: SciPy's io module is only needed here

    if n_images < 1:
        raise ValueError(f"n_images must be positive, got {n_images}")
    folder = Path(root) / aigciqa2023.FOLDER
    (folder / aigciqa2023.IMAGE_FOLDER).mkdir(parents=True, exist_ok=True)
    quality = np.empty(n_images)
    for i in range(n_images):
        name = mat_row_name(i)
        _clean, img, strength = render_example(seed, i, _size_for(sizes, name, i), haze)
        _save(img, folder / aigciqa2023.IMAGE_FOLDER / name, "png")
        quality[i] = 27.0 + 47.0 * (1.0 - strength)
    rng = np.random.default_rng([seed, 1])
    scores = {"quality": quality, "authenticity": quality + rng.normal(0.0, 4.0, n_images),
              "correspondence": rng.uniform(27.0, 74.0, n_images)}
    for task, values in scores.items():
        mat_path = folder / aigciqa2023.mos_sources(task)[0][0]  # the shipped MOS/mosz{k}.mat
        mat_path.parent.mkdir(exist_ok=True)
        savemat(mat_path, {MAT_VARIABLE: np.clip(values, 27.0, 74.0)[:, None]})
    return folder


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
    from . import agiqa1k
    from .labels import read_text_table

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
        _save(degrade(random_scene(rng, size), strength, rng), images / name, "jpg")
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
    folder = Path(root) / "AIGIQA-20K"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 21])
    full = []
    for part, names in aigiqa20k_names(per_unit, seed).items():
        prompts = [f"a {_WORDS[i % len(_WORDS)]} number {i}" for i in range(len(names))]
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
                _save(degrade(random_scene(scene_rng, size), strength, scene_rng), target / name,
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


def _parse_sizes(text: str) -> SizeSpec:
    """CLI sizes: 'real' or comma-separated WxH values, e.g. '256x256,512x384'."""
    if text == "real":
        return text
    try:
        return [tuple(int(v) for v in item.lower().split("x")) for item in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"sizes must be 'real' or WxH[,WxH...], got {text!r}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; prints the created dataset folder."""
    parser = argparse.ArgumentParser(prog="python -m datasets.synthetic",
                                     description="Write a synthetic AGIQA-3K or AIGCIQA2023 "
                                                 "under ROOT (images + labels).")
    parser.add_argument("dataset", choices=["agiqa", "aigciqa2023"])
    parser.add_argument("--root", required=True, type=Path, help="DATASET.ROOT to write into")
    parser.add_argument("--n", type=int, default=None,
                        help="number of images (default: all names of --names-csv, else 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=_parse_sizes, default=[(256, 256)],
                        help="'real' (AGIQA approximate real sizes) or WxH[,WxH...] cycled")
    parser.add_argument("--names-csv", type=Path, default=None,
                        help="agiqa only: take image names and prompts from this data.csv")
    parser.add_argument("--format", choices=["jpg", "png"], default="jpg", help="agiqa only")
    parser.add_argument("--haze", type=float, default=0.0,
                        help="fraction of white mixed in at the worst quality (0..1, default 0: "
                             "blur, noise and JPEG only)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.haze <= 1.0:
        parser.error(f"--haze must be in [0, 1], got {args.haze}")
    if args.dataset == "agiqa":
        folder = make_synthetic_agiqa(args.root, args.n, args.names_csv, args.sizes, args.seed,
                                      args.format, args.haze)
    else:
        if args.sizes == "real" or args.names_csv is not None:
            parser.error("--sizes real and --names-csv apply to agiqa only")
        folder = make_synthetic_aigciqa2023(args.root, 64 if args.n is None else args.n,
                                            args.seed, args.sizes, args.haze)
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Synthetic stand-ins for AGIQA-3K and AIGCIQA2023 whose MOS follow visible degradations.

Used by the demo, the benchmarks and the tests (which build the AGIQA-1K and AIGIQA-20K
layouts from these pieces in ``tests/synthetic_databases.py``). Each
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
import sys
from pathlib import Path
from typing import Mapping, Sequence, Union

Size = tuple[int, int]  # (width, height) in pixels
SizeSpec = Union[Sequence[Size], Mapping[str, Size], str]


def _parse_sizes(text: str) -> SizeSpec:
    """CLI sizes: 'real' or comma-separated WxH values, e.g. '256x256,512x384'."""
    if text == "real":
        return text
    try:
        return [tuple(int(v) for v in item.lower().split("x")) for item in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"sizes must be 'real' or WxH[,WxH...], got {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m datasets.synthetic``."""
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
    return parser


# --help answers before torch (imported by dassl.utils and the loaders) and pandas load.
if __name__ == "__main__" and {"-h", "--help"} & set(sys.argv[1:]):
    build_parser().parse_args(sys.argv[1:])

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from dassl.utils.errors import report_user_error, written_as  # noqa: E402

from . import agiqa, aigciqa2023  # noqa: E402
from .labels import MAT_VARIABLE, mat_row_name, read_text_table  # noqa: E402

__all__ = ["make_synthetic_agiqa", "make_synthetic_aigciqa2023", "render_example",
           "random_scene", "degrade", "save_image", "AGIQA_APPROX_SIZES", "AGIQA_GROUPS",
           "PROMPT_WORDS", "main"]

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
PROMPT_WORDS = ["cat", "city", "forest", "robot", "river", "castle", "flower", "ship", "mountain",
                "owl"]
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


def save_image(img: Image.Image, path: Path, image_format: str) -> None:
    """Save as "jpg" (quality 95, on top of the degradation's own JPEG pass) or "png"."""
    with written_as(path):  # Pillow's failed write() names no file
        if image_format == "jpg":
            img.save(path, format="JPEG", quality=95)
        else:
            img.save(path, format="PNG", compress_level=1)  # level 1: speed over file size


def _agiqa_rows(n_images: int | None, names_csv: str | Path | None,
                image_format: str) -> pd.DataFrame:
    """Names and text columns: from ``names_csv`` (an evenly spaced subset in file order when
    ``n_images`` is smaller) or generated in AGIQA-3K's naming pattern."""
    if names_csv is not None:
        source = read_text_table(names_csv, ("name",))
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
    prompts = [f"a {PROMPT_WORDS[i % len(PROMPT_WORDS)]} number {i}" for i in range(n)]
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
        save_image(img, folder / name, image_format)
        quality[i] = 5.0 * (1.0 - strength)
    rng = np.random.default_rng([seed, 1])
    rows[agiqa.TASK_COLUMNS["quality"]] = quality
    rows["std_quality"] = rng.uniform(0.2, 1.0, len(rows))
    rows[agiqa.TASK_COLUMNS["alignment"]] = rng.uniform(0.0, 5.0, len(rows))
    rows["std_align"] = rng.uniform(0.2, 1.0, len(rows))
    with written_as(folder / agiqa.LABEL_FILE):
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
        save_image(img, folder / aigciqa2023.IMAGE_FOLDER / name, "png")
        quality[i] = 27.0 + 47.0 * (1.0 - strength)
    rng = np.random.default_rng([seed, 1])
    scores = {"quality": quality, "authenticity": quality + rng.normal(0.0, 4.0, n_images),
              "correspondence": rng.uniform(27.0, 74.0, n_images)}
    for task, values in scores.items():
        mat_path = folder / aigciqa2023.mos_sources(task)[0][0]  # the shipped MOS/mosz{k}.mat
        mat_path.parent.mkdir(exist_ok=True)
        with written_as(mat_path):
            savemat(mat_path, {MAT_VARIABLE: np.clip(values, 27.0, 74.0)[:, None]})
    return folder


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; prints the created dataset folder."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0.0 <= args.haze <= 1.0:
        parser.error(f"--haze must be in [0, 1], got {args.haze}")
    if args.dataset != "agiqa" and (args.sizes == "real" or args.names_csv is not None):
        parser.error("--sizes real and --names-csv apply to agiqa only")
    try:
        if args.dataset == "agiqa":
            folder = make_synthetic_agiqa(args.root, args.n, args.names_csv, args.sizes,
                                          args.seed, args.format, args.haze)
        else:
            folder = make_synthetic_aigciqa2023(args.root, 64 if args.n is None else args.n,
                                                args.seed, args.sizes, args.haze)
    except OSError as exc:  # --root cannot be written: full, read-only, no permission
        return report_user_error(exc)
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Score images with a trained run: `load_scorer(run_dir)(images) -> (N,) predicted MOS`.

In the spirit of pyiqa's `create_metric`: the returned `Scorer` is a callable on image paths,
PIL images or float tensors in [0, 1], with `lower_better = False` and `score_range` (the MOS
range of the run's training split, or None when the run has no `splits/train.csv`).

Preprocessing is the run's test input (`ModelSpec.test_input`: shorter side resized to
`max(size)`, centre crop, normalisation), computed the way the run computed it, so scores equal
the run's `predictions.csv`. Files and PIL images are decoded by `dassl.utils.read_image` /
`to_display_rgb`, the decoder training used (EXIF orientation, alpha over white, 16-bit
samples' top 8 bits). Runs with the fast pipeline use its tensor transform
(`trainers.fast.tensor_transforms`), others dassl's PIL transform. Tensors are first quantised to
8-bit levels (`round(x * 255)`), the precision of the images the model was trained on; a tensor
made from an 8-bit image (`x = u / 255`) therefore scores exactly like the image file.
Runs with C > 1 test crops (`TEST.NUM_CROPS`) score the mean over the same C-crop grid, and runs with
`TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE` need each image's generation prompt (`prompts=`).
"""
from __future__ import annotations

import csv
import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Sequence, Union

import numpy as np
import torch
from PIL import Image

from dassl.data.transforms import build_test_transform
from dassl.utils import ConfigError, ImageReadError, InputError, read_image, to_display_rgb
from dassl.utils.label_file import parse_number, read_label_file

from ..fast.decoded_images import DecodedImages
from ..fast.multi_crop import MultiCropTransform
from .run_model import RunModel, load_run_model

__all__ = ["Scorer", "load_scorer", "training_score_range", "ImageInput", "scores_csv_text"]

ImageInput = Union[str, os.PathLike, Image.Image, torch.Tensor,
                   Sequence[Union[str, os.PathLike, Image.Image]]]
DEFAULT_BATCH_SIZE = 32


def training_score_range(run_dir: str) -> tuple[float, float] | None:
    """`(min, max)` MOS of `run_dir/splits/train.csv` (columns name,mos), None without it."""
    path = os.path.join(run_dir, "splits", "train.csv")
    if not os.path.isfile(path):
        return None
    table = read_label_file(path, ("name", "mos"), what="split file")
    values = [v for v in map(parse_number, table["mos"]) if math.isfinite(v)]
    return (min(values), max(values)) if values else None


def _check_tensor(images: torch.Tensor) -> torch.Tensor:
    """`(N, 3, H, W)` (or `(3, H, W)`) float in [0, 1] -> `(N, 3, H, W)` uint8 on the CPU."""
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"image tensors must be (N, 3, H, W) or (3, H, W) RGB, got shape "
                         f"{tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"image tensors must be float in [0, 1], got dtype {images.dtype} "
                         "(divide 8-bit images by 255)")
    if images.numel():
        low, high = float(images.min()), float(images.max())
        if not (0.0 <= low and high <= 1.0):  # also False for NaN
            raise ValueError(f"image tensors must hold values in [0, 1], got min {low:.4g} and "
                             f"max {high:.4g} (pass unnormalised RGB; divide 8-bit images by 255)")
    return images.detach().float().cpu().mul(255.0).round_().to(torch.uint8)


def _as_pil_list(images: ImageInput) -> list[Image.Image]:
    """Decode/convert any accepted input to a list of RGB PIL images (paths read at once)."""
    if torch.is_tensor(images):
        pixels = _check_tensor(images)
        return [Image.fromarray(p.permute(1, 2, 0).numpy()) for p in pixels]
    if isinstance(images, (str, os.PathLike, Image.Image)):
        images = [images]
    out = []
    for item in images:
        if isinstance(item, Image.Image):
            out.append(to_display_rgb(item))
        elif isinstance(item, (str, os.PathLike)):
            out.append(read_image(os.fspath(item)))
        else:
            raise TypeError("images must be paths, PIL images or float tensors in [0, 1], got "
                            f"{type(item).__name__}")
    return out


def _decoded(images: Sequence[Image.Image], device: torch.device) -> DecodedImages:
    """Pack PIL images as `DecodedImages` (uint8 groups of equal size) for the tensor transform."""
    sizes = [(img.height, img.width) for img in images]
    members: dict[tuple[int, int], list[int]] = {}
    for i, size in enumerate(sizes):
        members.setdefault(size, []).append(i)
    group_of = torch.empty(len(images), dtype=torch.int64)
    row_of = torch.empty(len(images), dtype=torch.int64)
    groups = []
    for g, indices in enumerate(members.values()):
        stack = np.stack([np.asarray(images[i]) for i in indices])      # (n, H, W, 3)
        groups.append(torch.from_numpy(stack).permute(0, 3, 1, 2).contiguous().to(device))
        group_of[indices] = g
        row_of[indices] = torch.arange(len(indices))
    return DecodedImages(sizes, groups, group_of, row_of, device)


class Scorer:
    """Callable quality predictor of a trained run (build it with `load_scorer`).

    `scorer(images) -> (N,)` float32 CPU tensor of predicted MOS (MOS units of the training
    labels; higher is better). `images`: a path, a PIL image, a list of those, or a float tensor
    `(N, 3, H, W)` / `(3, H, W)` of RGB values in [0, 1] (other values raise `ValueError`).
    Attributes: `lower_better` (False), `score_range` (`(min, max)` training MOS or None),
    `model`, `test_input` (the run's `TestInput`), `device`, `level_names`, `precision`, `run`.
    """

    lower_better = False

    def __init__(self, run: RunModel, score_range: tuple[float, float] | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.run = run
        self.model, self.device = run.model, run.device
        self.level_names, self.precision = run.level_names, run.precision
        self.score_range = score_range
        self.batch_size = int(batch_size)
        self.test_input = test = run.spec.test_input
        fast = test.pipeline == "fast"
        self.num_crops = test.crops
        self.needs_prompts = bool(run.spec.prompt_template)
        if self.num_crops > 1 and not fast:
            raise ConfigError(f"the run tests {self.num_crops} crops per image, which needs the "
                             "fast pipeline's transforms; its config cannot use them")
        self._tensor_transform = MultiCropTransform(test) if fast else None
        self._pil_transform = None if fast else build_test_transform(
            test.size, test.interpolation, test.mean, test.std, test.normalize)

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """RGB PIL images -> `(B, 3, h, w)` float32 model input on `device` (test transform)."""
        if self._tensor_transform is not None:
            decoded = _decoded(images, self.device)
            return self._tensor_transform(decoded, torch.arange(len(images)))
        return torch.stack([self._pil_transform(img) for img in images]).to(self.device)

    @torch.no_grad()
    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocessed `(B * C, 3, h, w)` input (C = `num_crops` per image, image-major) ->
        float32 image features, `(B, D)` or `(B, C, D)` with C > 1."""
        self.model.eval()
        autocast = self.precision == "amp"
        with torch.autocast(self.device.type, enabled=autocast):
            features = self.model.encode_image(pixels)
        features = features.float()
        if self.num_crops > 1:
            features = features.reshape(-1, self.num_crops, features.shape[-1])
        return features

    @torch.no_grad()
    def predict(self, pixels: torch.Tensor, prompts: Sequence[str] | None = None) -> torch.Tensor:
        """Preprocessed `(B * C, 3, h, w)` input (see `features`) -> `(B,)` float32 predicted
        MOS on the CPU; `prompts`: the B generation prompts."""
        return self.model.predict_from_features(self.features(pixels), prompts).float().cpu()

    @torch.no_grad()
    def assess(self, pixels: torch.Tensor,
               prompts: Sequence[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`predict`'s `(B,)` scores (the same computation) and the `(B, n_levels)` level
        probabilities of the same features (`CustomCLIP.assess_features`: the level prompts
        encoded once for both), on the CPU."""
        scores, probabilities = self.model.assess_features(self.features(pixels), prompts)
        return scores.float().cpu(), probabilities.float().cpu()

    def _check_prompts(self, prompts: Sequence[str] | None, count: int) -> list[str] | None:
        if not self.needs_prompts:
            return None
        if prompts is None or len(prompts) != count:
            given = "none" if prompts is None else len(prompts)
            raise InputError(f"this run conditions its level prompts on each image's generation "
                             f"prompt (PROMPT_TEMPLATE): give {count} prompts, got {given}")
        return [str(p) for p in prompts]

    def __call__(self, images: ImageInput, prompts: Sequence[str] | None = None) -> torch.Tensor:
        """Scores of `images`; `prompts` (one per image) for prompt-conditioned runs."""
        pil = _as_pil_list(images)
        prompts = self._check_prompts(prompts, len(pil))
        scores = [self.predict(self.preprocess(pil[i:i + self.batch_size]),
                               None if prompts is None else prompts[i:i + self.batch_size])
                  for i in range(0, len(pil), self.batch_size)]
        return torch.cat(scores) if scores else torch.empty(0)

    def score_paths(self, paths: Sequence[str], batch_size: int | None = None,
                    workers: int = 4,
                    progress: Callable[[Iterable, int], Iterable] | None = None,
                    prompts: Sequence[str] | None = None) -> torch.Tensor:
        """`(N,)` scores of image files, decoded by `workers` threads one batch ahead.

        `progress`: optional callable wrapping the batch iterator (e.g. a tqdm factory
        `lambda it, total: tqdm(it, total=total)`) to show progress. `prompts`: one generation
        prompt per path, for prompt-conditioned runs.
        """
        scores = list(self.score_batches(paths, batch_size, workers, progress, prompts))
        return torch.cat(scores) if scores else torch.empty(0)

    def score_batches(self, paths: Sequence[str], batch_size: int | None = None,
                      workers: int = 4,
                      progress: Callable[[Iterable, int], Iterable] | None = None,
                      prompts: Sequence[str] | None = None,
                      unreadable: Callable[[int, ImageReadError], None] | None = None
                      ) -> Iterator[torch.Tensor]:
        """The scores of `score_paths`, one `(batch,)` tensor per batch in order, so a caller
        keeps what was scored when it is interrupted.

        `unreadable`: when given, an image that cannot be read or decoded does not stop the
        scoring: it scores NaN and `unreadable(index in paths, its ImageReadError)` is called;
        without it the `ImageReadError` is raised."""
        return self._over_paths(self.predict, paths, batch_size, workers, progress, prompts,
                                unreadable)

    def assess_paths(self, paths: Sequence[str], batch_size: int | None = None,
                     workers: int = 4, prompts: Sequence[str] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """`score_paths`' `(N,)` scores (the same decoding, batches and model calls) and the
        images' `(N, n_levels)` level probabilities (`assess`)."""
        parts = list(self._over_paths(self.assess, paths, batch_size, workers, None, prompts))
        if not parts:
            return torch.empty(0), torch.empty(0, len(self.level_names))
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _over_paths(self, model_call: Callable, paths: Sequence[str], batch_size: int | None,
                    workers: int, progress: Callable[[Iterable, int], Iterable] | None,
                    prompts: Sequence[str] | None,
                    unreadable: Callable[[int, ImageReadError], None] | None = None) -> Iterator:
        """`model_call(pixels, prompts)` per batch of `paths`, decoded by `workers` threads
        one batch ahead; yields its results in order. With `unreadable` (only for a model call
        returning one `(B,)` tensor) an unreadable image is reported to it and scores NaN."""
        prompts = self._check_prompts(prompts, len(paths))
        size = int(batch_size or self.batch_size)
        batches = [list(paths[i:i + size]) for i in range(0, len(paths), size)]

        def decode(path: str) -> Image.Image | ImageReadError:
            try:
                return read_image(path)
            except ImageReadError as exc:
                if unreadable is None:
                    raise
                return exc

        with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
            decoded = (pool.map(decode, batch) for batch in batches)
            # Submit one batch ahead so decoding overlaps the model.
            pending = next(decoded, None)
            iterator = range(len(batches))
            if progress is not None:
                iterator = progress(iterator, len(batches))
            for index in iterator:
                images = list(pending)
                pending = next(decoded, None)
                batch_prompts = None if prompts is None else \
                    prompts[index * size:(index + 1) * size]
                bad = [k for k, image in enumerate(images) if isinstance(image, ImageReadError)]
                if not bad:
                    yield model_call(self.preprocess(images), batch_prompts)
                    continue
                for k in bad:
                    unreadable(index * size + k, images[k])
                good = [k for k in range(len(images)) if k not in set(bad)]
                scores = torch.full((len(images),), float("nan"))
                if good:
                    scores[good] = model_call(
                        self.preprocess([images[k] for k in good]),
                        None if batch_prompts is None else [batch_prompts[k] for k in good])
                yield scores


def load_scorer(run_dir: str, device: str | torch.device = "cpu", epoch: int | None = None,
                backbone: str | None = None, level_names: Sequence[str] | None = None,
                class_token_position: str | None = None,
                batch_size: int = DEFAULT_BATCH_SIZE,
                cpu_precision: str | None = None) -> Scorer:
    """A `Scorer` for the model of `run_dir` (ours or the original code's output directory).

    `epoch`: load `model.pth.tar-<epoch>` instead of the deployed model (best, else latest).
    `backbone`: CLIP name or weights file replacing the run's `MODEL.BACKBONE.NAME` (needed when
    the run used a file that is elsewhere now; default for original runs: ViT-B/16).
    `level_names` / `class_token_position`: for the original code's runs (see
    `trainers.inference.run_model`). `cpu_precision`: compute on a CPU in this precision rather
    than the one the checkpoint records (`load_run_model`).
    """
    run = load_run_model(run_dir, device=device, epoch=epoch, backbone=backbone,
                         level_names=level_names, class_token_position=class_token_position,
                         cpu_precision=cpu_precision)
    return Scorer(run, training_score_range(os.fspath(run_dir)), batch_size)


def scores_csv_text(names: Sequence[str], scores: Sequence[float]) -> str:
    """The scores file's text, the one format of ``score.py --output`` and the scoring page's
    download: a ``name,score`` header, then one row per image with its score in full float
    precision (``repr``, so that reading it back gives the same float)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "score"])
    writer.writerows((name, repr(float(score))) for name, score in zip(names, scores))
    return buffer.getvalue()

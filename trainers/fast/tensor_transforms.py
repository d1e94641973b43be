"""Tensor equivalents of dassl's train and test transforms, applied to decoded uint8 images.

Supported `INPUT.TRANSFORMS` choices (`FAST_TRANSFORMS` of the model spec): random_resized_crop,
random_crop, random_flip, center_crop, normalize, with `INPUT.INTERPOLATION` bicubic or
bilinear. A test transform is built from the model's `TestInput`, a training one from
`cfg.INPUT` (`TensorTransform.from_config`). The pipeline structure is dassl's
(`dassl.data.transforms`): without a random crop the image is resized to `INPUT.SIZE` (or, with
center_crop, its shorter side to `max(SIZE)`, then centre-cropped); random_crop pads
`INPUT.CROP_PADDING` zero pixels and crops `SIZE`; random_resized_crop follows; then the flip,
the [0, 1] scaling and `normalize`. Test: shorter side to `max(SIZE)`, centre crop, normalize.

Randomness: crop parameters and flips are drawn per image, in order, with exactly the calls
torchvision makes (`RandomCrop.get_params`, `RandomResizedCrop.get_params`, then
`RandomHorizontalFlip`'s `torch.rand(1)`) on the global torch RNG, so the same RNG state gives
the same parameters, in the same order, as dassl's PIL pipeline on the main process. Pixels are
resampled once per image (see `trainers.fast.resample`) and rounded to 8-bit levels as PIL does.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import torch

from ..method.model_spec import FAST_TRANSFORMS, TestInput, fast_unsupported_reason
from .decoded_images import DecodedImages
from .resample import AxisMaps, apply_axis_maps

__all__ = ["FAST_TRANSFORMS", "fast_unsupported_reason", "random_resized_crop_params",
           "random_crop_offsets", "shorter_side_size", "TensorTransform"]

# torchvision's RandomResizedCrop default aspect-ratio range (dassl does not configure it).
RRC_RATIO = (3.0 / 4.0, 4.0 / 3.0)
RRC_ATTEMPTS = 10


def random_resized_crop_params(height: int, width: int, scale: Sequence[float],
                               ratio: Sequence[float] = RRC_RATIO) -> tuple[int, int, int, int]:
    """`(top, left, h, w)` of a random resized crop of a `height x width` image.

    Area fraction uniform in `scale`, aspect ratio log-uniform in `ratio`, up to 10 attempts,
    then a centred crop clipped to `ratio`. Draws from the global torch RNG with the same calls,
    in the same float32 precision, as `torchvision.transforms.RandomResizedCrop.get_params`.
    """
    area = height * width
    lo, hi = _log_ratio(tuple(ratio))
    for _ in range(RRC_ATTEMPTS):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1]).item()
        aspect = torch.exp(torch.empty(1).uniform_(lo, hi)).item()
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = torch.randint(0, height - h + 1, size=(1,)).item()
            left = torch.randint(0, width - w + 1, size=(1,)).item()
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


@functools.lru_cache(maxsize=8)
def _log_ratio(ratio: tuple[float, float]) -> tuple[float, float]:
    # float32 logs, as torchvision computes them (uniform_ then samples between these values).
    log_ratio = torch.log(torch.tensor(ratio))
    return log_ratio[0].item(), log_ratio[1].item()


def random_crop_offsets(height: int, width: int, size: tuple[int, int]) -> tuple[int, int]:
    """`(top, left)` of a random `size` crop, drawn as `torchvision RandomCrop.get_params`."""
    th, tw = size
    if height < th or width < tw:
        raise ValueError(f"Required crop size {(th, tw)} is larger than input image size "
                         f"{(height, width)} (random_crop, after INPUT.CROP_PADDING)")
    if (height, width) == (th, tw):
        return 0, 0  # torchvision draws nothing in this case
    top = torch.randint(0, height - th + 1, size=(1,)).item()
    left = torch.randint(0, width - tw + 1, size=(1,)).item()
    return top, left


def shorter_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """`(h, w)` after resizing the shorter side to `short` (torchvision's int-size Resize)."""
    if width <= height:
        return int(short * height / width), short
    return short, int(short * width / height)


class TensorTransform:
    """Train or test transform of decoded images: `(images, indices) -> (B, 3, h, w)` float32.

    `plan(sizes)` draws the per-image parameters (train; deterministic for test) and returns
    the row and column `AxisMaps`; `__call__` draws, resamples on the images' device and
    normalises. Output units: `(x / 255 - PIXEL_MEAN) / PIXEL_STD` with normalize, else [0, 1].
    """

    def __init__(self, test_input: TestInput, choices: Sequence[str] = ("center_crop",),
                 padding: int = 0, scale: Sequence[float] = (0.08, 1.0)) -> None:
        """`test_input`'s resizing and normalisation; `choices` the dassl transforms drawn
        (default: the test transform), `padding` / `scale` those of random_crop /
        random_resized_crop."""
        self.size = (int(test_input.size[0]), int(test_input.size[1]))
        self.interpolation = test_input.interpolation
        self.random_crop = "random_crop" in choices
        self.resized_crop = "random_resized_crop" in choices
        self.center_crop = "center_crop" in choices
        self.flip = "random_flip" in choices
        self.padding = int(padding)
        self.scale = tuple(float(s) for s in scale)
        self.normalize = test_input.normalize
        self.mean = torch.tensor(test_input.mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(test_input.std, dtype=torch.float32).view(1, 3, 1, 1)

    @classmethod
    def from_config(cls, cfg, is_train: bool) -> "TensorTransform":
        """The train (`INPUT.TRANSFORMS`) or test transform of `cfg.INPUT`; `ValueError` when the
        fast pipeline cannot reproduce it (`fast_unsupported_reason`)."""
        reason = fast_unsupported_reason(cfg)
        if reason is not None:
            raise ValueError(f"the fast pipeline does not support {reason}")
        inp = cfg.INPUT
        described = TestInput(size=tuple(inp.SIZE), interpolation=inp.INTERPOLATION,
                              mean=tuple(inp.PIXEL_MEAN), std=tuple(inp.PIXEL_STD),
                              normalize="normalize" in inp.TRANSFORMS)
        return cls(described, tuple(inp.TRANSFORMS) if is_train else ("center_crop",),
                   inp.CROP_PADDING, inp.RRCROP_SCALE)

    def _plan_one(self, height: int, width: int) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
        """(start, length, resized, keep) per axis and the flip of one image, in draw order."""
        out_h, out_w = self.size
        # The current image is the window [y0, y0 + h) x [x0, x0 + w) of the original.
        y0, x0, h, w = 0, 0, height, width
        if self.random_crop:
            pad = self.padding
            top, left = random_crop_offsets(height + 2 * pad, width + 2 * pad, self.size)
            y0, x0, h, w = top - pad, left - pad, out_h, out_w
        if self.resized_crop:
            top, left, h, w = random_resized_crop_params(h, w, self.scale)
            y0, x0 = y0 + top, x0 + left
        if self.random_crop or self.resized_crop:
            rows, cols = (y0, h, out_h, 0), (x0, w, out_w, 0)
        elif self.center_crop:
            new_h, new_w = shorter_side_size(height, width, max(self.size))
            # torchvision's CenterCrop rounds the offset; the crop never exceeds the image here.
            rows = (0, height, new_h, int(round((new_h - out_h) / 2.0)))
            cols = (0, width, new_w, int(round((new_w - out_w) / 2.0)))
        else:
            rows, cols = (0, height, out_h, 0), (0, width, out_w, 0)
        flipped = self.flip and torch.rand(1).item() < 0.5
        return rows, cols, flipped

    def plan(self, sizes: Sequence[tuple[int, int]]) -> tuple[AxisMaps, AxisMaps]:
        """Row and column maps (CPU, `(B,)` each) for images of `sizes` = [(H, W), ...]."""
        plans = [self._plan_one(h, w) for h, w in sizes]
        no_flip = torch.zeros(len(plans), dtype=torch.bool)
        rows = torch.tensor([p[0] for p in plans], dtype=torch.int64).reshape(-1, 4)
        cols = torch.tensor([p[1] for p in plans], dtype=torch.int64).reshape(-1, 4)
        flips = torch.tensor([p[2] for p in plans], dtype=torch.bool)
        return (AxisMaps(*rows.unbind(1), flip=no_flip),
                AxisMaps(*cols.unbind(1), flip=flips))

    def resample(self, images: DecodedImages, indices: torch.Tensor) -> torch.Tensor:
        """The transformed pixels of images `indices` (`(B,)` int64, CPU) of `images`: `(B, 3,
        h, w)` float32 in 8-bit levels (whole numbers 0..255) on `images.compute_device`, before
        scaling and normalisation. Parameters are drawn in the order of `indices`."""
        rows, cols = self.plan([images.sizes[i] for i in indices.tolist()])
        device = images.compute_device
        out = torch.empty(len(indices), 3, *self.size, dtype=torch.float32, device=device)
        for positions, pixels in images.iter_groups(indices):
            # non_blocking: a plain host-to-GPU copy would wait for the queued GPU work, and
            # the CPU could no longer draw the next chunk while the GPU encodes this one.
            part = positions.to(device, non_blocking=True)
            out[part] = apply_axis_maps(pixels, rows[positions], cols[positions],
                                        self.size, self.interpolation)
        return out

    def __call__(self, images: DecodedImages, indices: torch.Tensor) -> torch.Tensor:
        """Transform images `indices` (`(B,)` int64, CPU) of `images` -> `(B, 3, h, w)` float32
        on `images.compute_device`. Parameters are drawn in the order of `indices`."""
        out = self.resample(images, indices)
        device = images.compute_device
        out.div_(255.0)
        if self.normalize:
            mean = self.mean.to(device, non_blocking=True)
            out.sub_(mean).div_(self.std.to(device, non_blocking=True))
        return out

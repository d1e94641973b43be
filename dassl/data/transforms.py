"""``build_transform``: torchvision pipelines configured from ``cfg.INPUT``.

Train (order): [resize] -> random_crop -> random_resized_crop -> random_flip -> colorjitter ->
randomgrayscale -> gaussian_blur -> ToTensor -> normalize. Without a random crop the image is
resized to exactly ``INPUT.SIZE`` (or, with ``center_crop``, shorter side to ``max(SIZE)`` then
centre-cropped). Test: shorter side to ``max(SIZE)`` -> CenterCrop(SIZE) -> ToTensor ->
normalize (if chosen) -- identical to CLIP's preprocessing for SIZE (224, 224), bicubic and the
CLIP mean/std. Outputs are float32 tensors ``(3, H, W)``; PIL resizing is antialiased.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torchvision.transforms as T
from torchvision.transforms import InterpolationMode

from dassl.utils import ConfigError, check_availability

INTERPOLATION_MODES = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}

AVAILABLE_TRANSFORMS = [
    "random_flip", "random_resized_crop", "random_crop", "center_crop", "normalize",
    "colorjitter", "randomgrayscale", "gaussian_blur",
]


def _input_size(cfg) -> tuple[int, int]:
    size = tuple(cfg.INPUT.SIZE)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ConfigError(f"INPUT.SIZE must be two positive ints (height, width), got {cfg.INPUT.SIZE!r}")
    return size


def _interpolation(cfg) -> InterpolationMode:
    name = cfg.INPUT.INTERPOLATION
    if name not in INTERPOLATION_MODES:
        raise ConfigError(f"INPUT.INTERPOLATION must be one of {list(INTERPOLATION_MODES)}, got {name!r}")
    return INTERPOLATION_MODES[name]


def build_transform(cfg, is_train: bool = True, choices: Optional[Sequence[str]] = None):
    """Compose the train or test pipeline; None when ``INPUT.NO_TRANSFORM``.

    ``choices`` defaults to ``cfg.INPUT.TRANSFORMS``; unknown names raise ``ConfigError`` (a
    ``ValueError``) naming the key.
    """
    if cfg.INPUT.NO_TRANSFORM:
        print("Note: no transform is applied!")
        return None
    choices = list(cfg.INPUT.TRANSFORMS if choices is None else choices)
    for choice in choices:
        try:
            check_availability(choice, AVAILABLE_TRANSFORMS)
        except ValueError as exc:
            raise ConfigError(f"INPUT.TRANSFORMS: {exc}") from None
    size = _input_size(cfg)
    interp = _interpolation(cfg)
    if is_train:
        normalize = T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)
        steps = _build_train(cfg, choices, size, interp, normalize)
    else:
        steps = _test_steps(size, interp, cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD,
                            "normalize" in choices)
    if cfg.VERBOSE:
        print(f"Building transform_{'train' if is_train else 'test'}")
        for description, _ in steps:
            print(f"+ {description}")
    return T.Compose([op for _, op in steps])


def _resize_center_crop(size, interp) -> list:
    return [(f"resize the smaller edge to {max(size)}", T.Resize(max(size), interpolation=interp)),
            (f"{size[0]}x{size[1]} center crop", T.CenterCrop(size))]


def _build_train(cfg, choices, size, interp, normalize) -> list:
    inp = cfg.INPUT
    steps = []
    if "random_crop" not in choices and "random_resized_crop" not in choices:
        if "center_crop" in choices:
            steps += _resize_center_crop(size, interp)
        else:
            steps.append((f"resize to {size[0]}x{size[1]}", T.Resize(size, interpolation=interp)))
    if "random_crop" in choices:
        steps.append((f"random crop (padding = {inp.CROP_PADDING})",
                      T.RandomCrop(size, padding=inp.CROP_PADDING)))
    if "random_resized_crop" in choices:
        scale = tuple(inp.RRCROP_SCALE)
        steps.append((f"random resized crop (size={size}, scale={scale})",
                      T.RandomResizedCrop(size, scale=scale, interpolation=interp)))
    if "random_flip" in choices:
        steps.append(("random flip", T.RandomHorizontalFlip()))
    if "colorjitter" in choices:
        steps.append(("color jitter", T.ColorJitter(brightness=inp.COLORJITTER_B,
                                                    contrast=inp.COLORJITTER_C,
                                                    saturation=inp.COLORJITTER_S,
                                                    hue=inp.COLORJITTER_H)))
    if "randomgrayscale" in choices:
        steps.append(("random gray scale", T.RandomGrayscale(p=inp.RGS_P)))
    if "gaussian_blur" in choices:
        steps.append((f"gaussian blur (kernel={inp.GB_K})",
                      T.RandomApply([T.GaussianBlur(inp.GB_K)], p=inp.GB_P)))
    steps.append(("to torch tensor of range [0, 1]", T.ToTensor()))
    if "normalize" in choices:
        steps.append((f"normalization (mean={inp.PIXEL_MEAN}, std={inp.PIXEL_STD})", normalize))
    return steps


def _test_steps(size, interp, mean, std, normalize: bool) -> list:
    steps = _resize_center_crop(size, interp)
    steps.append(("to torch tensor of range [0, 1]", T.ToTensor()))
    if normalize:
        steps.append((f"normalization (mean={mean}, std={std})", T.Normalize(mean=mean, std=std)))
    return steps


def build_test_transform(size: Sequence[int], interpolation: str, mean: Sequence[float],
                         std: Sequence[float], normalize: bool = True):
    """The test pipeline of ``build_transform`` from its (validated) values: shorter side to
    ``max(size)`` (``interpolation``, a key of ``INTERPOLATION_MODES``), centre crop ``size`` =
    (height, width), [0, 1] tensor, and with ``normalize`` per-channel ``(x - mean) / std``."""
    steps = _test_steps(tuple(size), INTERPOLATION_MODES[interpolation], list(mean), list(std),
                        normalize)
    return T.Compose([op for _, op in steps])


def _floats(cfg, key: str, count: int) -> list[float]:
    """``INPUT.<key>`` as ``count`` finite numbers; raises ``ConfigError`` otherwise."""
    value = getattr(cfg.INPUT, key)
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(items) != count or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                      and math.isfinite(v) for v in items):
        what = "a number" if count == 1 else f"{count} numbers"
        raise ConfigError(f"INPUT.{key} must be {what}, got {value!r}")
    return [float(v) for v in items]


def _require(ok: bool, key: str, rule: str, value) -> None:
    if not ok:
        raise ConfigError(f"INPUT.{key} must be {rule}, got {value!r}")


def check_input_cfg(cfg) -> None:
    """Check ``cfg.INPUT`` before any data is read (the values torchvision would refuse only
    when the first batch is drawn): SIZE, INTERPOLATION, TRANSFORMS names, PIXEL_MEAN/STD (3
    values, STD > 0), CROP_PADDING >= 0, RRCROP_SCALE (0 < low <= high), colour-jitter factors
    >= 0 (hue <= 0.5), probabilities in [0, 1], GB_K odd and positive. Raises ``ConfigError``."""
    _input_size(cfg)
    _interpolation(cfg)
    for choice in cfg.INPUT.TRANSFORMS:
        try:
            check_availability(choice, AVAILABLE_TRANSFORMS)
        except ValueError as exc:
            raise ConfigError(f"INPUT.TRANSFORMS: {exc}") from None
    node = cfg.INPUT
    _floats(cfg, "PIXEL_MEAN", 3)
    _require(all(s > 0 for s in _floats(cfg, "PIXEL_STD", 3)), "PIXEL_STD", "3 numbers > 0",
             node.PIXEL_STD)
    low, high = _floats(cfg, "RRCROP_SCALE", 2)
    _require(0 < low <= high, "RRCROP_SCALE", "(low, high) with 0 < low <= high",
             node.RRCROP_SCALE)
    for key in ("COLORJITTER_B", "COLORJITTER_C", "COLORJITTER_S"):
        _require(_floats(cfg, key, 1)[0] >= 0, key, ">= 0", getattr(node, key))
    _require(0 <= _floats(cfg, "COLORJITTER_H", 1)[0] <= 0.5, "COLORJITTER_H", "in [0, 0.5]",
             node.COLORJITTER_H)
    for key in ("RGS_P", "GB_P"):
        _require(0 <= _floats(cfg, key, 1)[0] <= 1, key, "a probability in [0, 1]",
                 getattr(node, key))
    for key, least in (("CROP_PADDING", 0), ("GB_K", 1)):
        value = getattr(node, key)
        _require(isinstance(value, int) and not isinstance(value, bool) and value >= least,
                 key, f"a whole number >= {least}", value)
    _require(node.GB_K % 2 == 1, "GB_K", "odd (a gaussian_blur kernel size)", node.GB_K)

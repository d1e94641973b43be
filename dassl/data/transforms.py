"""``build_transform``: torchvision pipelines configured from ``cfg.INPUT``.

Train (order): [resize] -> random_crop -> random_resized_crop -> random_flip -> colorjitter ->
randomgrayscale -> gaussian_blur -> ToTensor -> normalize. Without a random crop the image is
resized to exactly ``INPUT.SIZE`` (or, with ``center_crop``, shorter side to ``max(SIZE)`` then
centre-cropped). Test: shorter side to ``max(SIZE)`` -> CenterCrop(SIZE) -> ToTensor ->
normalize (if chosen) -- identical to CLIP's preprocessing for SIZE (224, 224), bicubic and the
CLIP mean/std. Outputs are float32 tensors ``(3, H, W)``; PIL resizing is antialiased.
"""
from __future__ import annotations

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
    normalize = T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)
    build = _build_train if is_train else _build_test
    steps = build(cfg, choices, size, interp, normalize)
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


def _build_test(cfg, choices, size, interp, normalize) -> list:
    steps = _resize_center_crop(size, interp)
    steps.append(("to torch tensor of range [0, 1]", T.ToTensor()))
    if "normalize" in choices:
        steps.append((f"normalization (mean={cfg.INPUT.PIXEL_MEAN}, std={cfg.INPUT.PIXEL_STD})",
                      normalize))
    return steps

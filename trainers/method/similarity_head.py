"""Similarity head (`TRAINER.CLIP_AGIQA.HEAD similarity`; the CLIP-IQA+ / LIQE / IPCE family).

No MLP: the quality of an image is read off its CLIP similarity to the L level prompts,

    logits_l = s * cos(image, level_l)                  s = exp(CLIP's logit_scale), frozen
    p = softmax(logits)                                 over the L levels, worst first
    q = sum_l p_l * l                                   expected level index, in [0, L - 1]
    MOS = slope * q + intercept                         affine map to MOS units

The affine map is learned (two scalars trained with the context vectors by the same MSE): a map
fitted on the training split would depend on the context vectors, which change every step, so
it would have to be refitted after every update. It starts from the training split's MOS
range (level 0 -> lowest MOS, level L - 1 -> highest), so the first predictions are already on
the MOS scale and the MSE does not start by only moving the map.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

__all__ = ["SimilarityHead", "training_mos_range", "expected_level"]


def expected_level(image_features: torch.Tensor, text_features: torch.Tensor,
                   scale: torch.Tensor | float) -> torch.Tensor:
    """Expected level index `(B,)` float32 of L2-normalised features.

    `image_features` `(B, D)`; `text_features` `(L, D)` (the same levels for every image) or
    `(B, L, D)` (per-image level prompts, e.g. prompt-conditioned). `scale` multiplies the
    cosines before the softmax over the L levels. Computed in float32 whatever the inputs' dtype.
    """
    image = image_features.float()
    text = text_features.float()
    if text.dim() == 2:
        cosine = image @ text.t()                                     # (B, L)
    elif text.dim() == 3:
        cosine = torch.einsum("bd,bld->bl", image, text)              # (B, L)
    else:
        raise ValueError(f"text features must be (L, D) or (B, L, D), got {tuple(text.shape)}")
    probabilities = torch.softmax(cosine * scale, dim=-1)
    levels = torch.arange(cosine.shape[-1], dtype=torch.float32, device=cosine.device)
    return probabilities @ levels


def training_mos_range(items: Sequence) -> tuple[float, float]:
    """`(min, max)` MOS of `items` (Datum-like, e.g. the training split), in MOS units.

    Raises `ValueError` when an item has no MOS or all MOS are equal (no range to map onto).
    """
    values = [getattr(item, "mos", None) for item in items]
    if not values or any(v is None for v in values):
        raise ValueError("TRAINER.CLIP_AGIQA.HEAD similarity needs a MOS for every training image")
    low, high = float(min(values)), float(max(values))
    if not high > low:
        raise ValueError(f"TRAINER.CLIP_AGIQA.HEAD similarity: the training MOS have no range "
                         f"({low} .. {high}); cannot map levels to MOS")
    return low, high


class SimilarityHead(nn.Module):
    """`forward(image (B, D), text (L, D) or (B, L, D)) -> (B,)` float32 predicted MOS.

    Buffer `logit_scale` (0-d float32): the multiplier `exp(CLIP logit_scale)` (100 for OpenAI's
    weights), frozen. Parameters `slope`, `intercept` (0-d float32, MOS units per level and MOS
    units): the learned affine map. `mos_range` `(min, max)` initialises the map so that level
    0 -> min and level L - 1 -> max; without it (a model about to load a checkpoint) both are NaN
    placeholders.
    """

    def __init__(self, n_levels: int, logit_scale: float,
                 mos_range: tuple[float, float] | None = None) -> None:
        super().__init__()
        if n_levels < 2:
            raise ValueError(f"the similarity head needs at least 2 levels, got {n_levels}")
        if not math.isfinite(logit_scale) or logit_scale <= 0:
            raise ValueError(f"logit scale must be a positive number, got {logit_scale}")
        self.n_levels = int(n_levels)
        if mos_range is None:
            slope, intercept = float("nan"), float("nan")
        else:
            low, high = mos_range
            slope, intercept = (high - low) / (n_levels - 1), low
        self.register_buffer("logit_scale", torch.tensor(float(logit_scale)))
        self.slope = nn.Parameter(torch.tensor(float(slope)))
        self.intercept = nn.Parameter(torch.tensor(float(intercept)))

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        if text_features.dim() < 2 or text_features.shape[-2] != self.n_levels:
            raise ValueError(f"the head was built for {self.n_levels} levels, got level "
                             f"features of shape {tuple(text_features.shape)}")
        level = expected_level(image_features, text_features, self.logit_scale)
        return self.slope * level + self.intercept

"""Antialiased image resampling as batched matrix products, for the fast data pipeline.

Every transform the fast pipeline supports (random resized crop, random crop with zero padding,
resize, resize + centre crop, horizontal flip) is separable: along each image axis it takes a
window of the input (possibly reaching into zero padding), resamples it to a new length with an
antialiased filter and keeps a slice of the result. Such an axis map is a matrix
`(out_len, in_len)`, so a whole transformed image is `Wy @ image @ Wx.T`, and images of the same
size are transformed together with one batched matmul, with a different crop per image.

The filter weights reproduce PyTorch's antialiased interpolation (`interpolate(...,
antialias=True)`, itself modelled on PIL's resampling): for output pixel `i` of a window of
`length` input pixels resized to `resized`, `scale = length / resized`, the filter is stretched by
`max(scale, 1)`, centred at `scale * (i + 0.5)`, truncated to the window and normalised to sum 1.
In float64 the result equals `torchvision.transforms.v2.functional.resized_crop` to ~1e-12.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

__all__ = ["FILTERS", "AxisMaps", "axis_weights", "apply_axis_maps"]

# Pixel values are float32 while resampling; one batched matmul may hold at most this many
# input elements, which bounds the memory of a chunk of large images (about 512 MiB).
MAX_RESAMPLE_ELEMENTS = 2 ** 27


def _bicubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5 (PIL's and PyTorch's antialiased bicubic)."""
    a = -0.5
    x = x.abs()
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return torch.where(x < 1.0, near, torch.where(x < 2.0, far, torch.zeros_like(x)))


def _triangle(x: torch.Tensor) -> torch.Tensor:
    """Linear interpolation kernel (antialiased bilinear)."""
    return (1.0 - x.abs()).clamp_(min=0.0)


# Interpolation name -> (kernel, half-width of its support at scale 1, in input pixels).
FILTERS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], float]] = {
    "bicubic": (_bicubic, 2.0),
    "bilinear": (_triangle, 1.0),
}


@dataclass
class AxisMaps:
    """Per-image description of one axis map, for a batch of `B` images (all `(B,)` int64).

    Input positions `start .. start + length - 1` (positions outside `0 .. in_len - 1` read zero
    padding) are resampled to `resized` pixels, of which `keep .. keep + out_len - 1` are output;
    `flip` (bool) reverses the output order (a horizontal flip when used for the x axis).
    """

    start: torch.Tensor
    length: torch.Tensor
    resized: torch.Tensor
    keep: torch.Tensor
    flip: torch.Tensor

    def __getitem__(self, index) -> "AxisMaps":
        """The maps of the images selected by `index` (a slice or an index tensor)."""
        return AxisMaps(self.start[index], self.length[index], self.resized[index],
                        self.keep[index], self.flip[index])

    def to(self, device: torch.device) -> "AxisMaps":
        # Small host tensors: an asynchronous copy does not wait for queued GPU work.
        return AxisMaps(*(t.to(device, non_blocking=True) for t in
                          (self.start, self.length, self.resized, self.keep, self.flip)))


def _max_taps(maps: AxisMaps, support: float) -> int:
    """Taps per output pixel that cover the widest filter of the batch (computed on the CPU)."""
    scale = (maps.length.double() / maps.resized.double()).max().item()
    return int(math.ceil(2.0 * support * max(scale, 1.0))) + 2


def axis_weights(maps: AxisMaps, in_len: int, out_len: int, interpolation: str = "bicubic",
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """Dense resampling matrices `(B, out_len, in_len)` float32 on `device` for `maps` (CPU).

    Row `i` of image `b` holds the weights of output pixel `i`; the weights of a row sum to 1
    unless part of its window lies in the zero padding. Computed in float64, then cast.
    """
    if interpolation not in FILTERS:
        raise ValueError(f"interpolation must be one of {list(FILTERS)}, got {interpolation!r}")
    kernel, support_1 = FILTERS[interpolation]
    n_taps = _max_taps(maps, support_1)
    maps = maps.to(device)
    f64 = dict(dtype=torch.float64, device=device)
    scale = maps.length.double() / maps.resized.double()                      # (B,)
    support = support_1 * scale.clamp(min=1.0)
    # Upsampling uses the unstretched kernel; downsampling stretches it by the scale (antialias).
    inv_scale = torch.where(scale >= 1.0, 1.0 / scale, torch.ones_like(scale))
    pos = torch.arange(out_len, **f64)[None, :] + maps.keep[:, None].double()  # (B, out)
    center = scale[:, None] * (pos + 0.5)
    # Truncation toward zero, then clamping to the window, as in the reference implementation.
    first = (center - support[:, None] + 0.5).trunc().clamp(min=0.0)
    stop = torch.minimum((center + support[:, None] + 0.5).trunc(), maps.length[:, None].double())
    taps = first[..., None] + torch.arange(n_taps, **f64)                       # (B, out, K)
    in_window = taps < stop[..., None]
    weights = kernel((taps - center[..., None] + 0.5) * inv_scale[:, None, None]) * in_window
    weights = weights / weights.sum(dim=-1, keepdim=True)
    source = taps.long() + maps.start[:, None, None]
    valid = in_window & (source >= 0) & (source < in_len)   # outside the image: zero padding
    dense = torch.zeros(len(scale), out_len, in_len, **f64)
    dense.scatter_add_(2, source.clamp(0, in_len - 1), torch.where(valid, weights, 0.0))
    dense = torch.where(maps.flip[:, None, None], dense.flip(1), dense)
    return dense.float()


def apply_axis_maps(pixels: torch.Tensor, rows: AxisMaps, cols: AxisMaps,
                    out_size: tuple[int, int], interpolation: str = "bicubic") -> torch.Tensor:
    """Transform same-sized images: `(B, C, H, W)` uint8 or float -> `(B, C, h, w)` float32.

    `rows` maps the H axis to `h = out_size[0]`, `cols` the W axis to `w = out_size[1]`. Like
    PIL, the horizontal pass runs first and both passes round and clip to 8-bit levels: PIL
    stores the intermediate image as uint8, which clips the filter's overshoot at high-contrast
    edges before the vertical pass (skipping that clip changes such pixels by tens of levels).
    The result is therefore in the units of a decoded 8-bit image. Large batches are processed
    in slices of at most `MAX_RESAMPLE_ELEMENTS` input elements.
    """
    batch, channels, height, width = pixels.shape
    out_h, out_w = out_size
    out = torch.empty(batch, channels, out_h, out_w, dtype=torch.float32, device=pixels.device)
    step = max(1, MAX_RESAMPLE_ELEMENTS // (channels * height * width))
    for lo in range(0, batch, step):
        part = slice(lo, min(batch, lo + step))
        w_rows = axis_weights(rows[part], height, out_h, interpolation, pixels.device)
        w_cols = axis_weights(cols[part], width, out_w, interpolation, pixels.device)
        x = torch.matmul(pixels[part].float(), w_cols.transpose(1, 2)[:, None])  # (b, C, H, w)
        x = torch.matmul(w_rows[:, None], x.round_().clamp_(0.0, 255.0))         # (b, C, h, w)
        out[part] = x.round_().clamp_(0.0, 255.0)
    return out

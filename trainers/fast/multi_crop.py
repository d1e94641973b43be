"""Multi-crop test (`TEST.NUM_CROPS`): a deterministic grid of `INPUT.SIZE` crops per image.

`NUM_CROPS 1` is exactly the single-crop test transform (shorter side to `max(INPUT.SIZE)`, centre
crop). With `C > 1` crops, the crops are taken from the image at its native resolution, as the
multi-crop AGIQA peers do: a `rows x cols` grid (`rows * cols = C`, the factor pair closest to
square, more crops along the image's longer side), offsets evenly spaced from one border to the
other. An image whose shorter side is below the crop size is first resized as the single-crop
transform does (shorter side to `max(INPUT.SIZE)`). The image's prediction is the mean of its
crops' predictions. Crops are ordered image-major: crop `k` of image `b` is row `b * C + k`.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..method.model_spec import TestInput
from .decoded_images import DecodedImages
from .resample import AxisMaps
from .tensor_transforms import TensorTransform, shorter_side_size

__all__ = ["grid_shape", "crop_offsets", "MultiCropTransform", "average_crops"]


def grid_shape(num_crops: int, height: int, width: int) -> tuple[int, int]:
    """`(rows, cols)` with `rows * cols = num_crops`: the most square factor pair, the larger
    factor along the longer image side (`cols` for landscape and square images)."""
    if isinstance(num_crops, bool) or int(num_crops) < 1:
        raise ValueError(f"TEST.NUM_CROPS must be a positive integer, got {num_crops!r}")
    num_crops = int(num_crops)
    small = max(f for f in range(1, int(num_crops ** 0.5) + 1) if num_crops % f == 0)
    large = num_crops // small
    return (large, small) if height > width else (small, large)


def _spaced(extent: int, crop: int, count: int) -> list[int]:
    """`count` offsets of a `crop`-long window in `extent`, evenly spaced from 0 to
    `extent - crop` (one window: centred, rounded as torchvision's CenterCrop)."""
    if count == 1:
        return [int(round((extent - crop) / 2.0))]
    return [int(round(i * (extent - crop) / (count - 1))) for i in range(count)]


def crop_offsets(height: int, width: int, size: tuple[int, int],
                 num_crops: int) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """Grid of one image: `((H', W'), [(top, left), ...])`, `num_crops` offsets in row-major order.

    `(H', W')` is the size the crops are taken from: the native `(height, width)`, or, when the
    shorter side is below `max(size)`, the image after resizing that side to `max(size)`.
    """
    crop_h, crop_w = size
    if min(height, width) < max(size):
        height, width = shorter_side_size(height, width, max(size))
    rows, cols = grid_shape(num_crops, height, width)
    tops, lefts = _spaced(height, crop_h, rows), _spaced(width, crop_w, cols)
    return (height, width), [(top, left) for top in tops for left in lefts]


class MultiCropTransform(TensorTransform):
    """Test transform (`TestInput`) of decoded images into `C = crops` crops each:
    `(images, indices (B,)) -> (B * C, 3, h, w)` float32, normalised as the test transform.

    With `C == 1` it is the test `TensorTransform` itself (same code path, same pixels).
    """

    def __init__(self, test_input: TestInput) -> None:
        super().__init__(test_input)
        self.num_crops = int(test_input.crops)
        grid_shape(self.num_crops, 1, 1)  # validates the count

    def _crop_maps(self, height: int, width: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        (new_h, new_w), offsets = crop_offsets(height, width, self.size, self.num_crops)
        return [((0, height, new_h, top), (0, width, new_w, left)) for top, left in offsets]

    def plan(self, sizes: Sequence[tuple[int, int]]) -> tuple[AxisMaps, AxisMaps]:
        """Maps for `sizes` listing each image `C` times in a row (as `__call__` passes them)."""
        if self.num_crops == 1:
            return super().plan(sizes)
        plans = []
        for position in range(0, len(sizes), self.num_crops):
            plans += self._crop_maps(*sizes[position])
        rows = torch.tensor([p[0] for p in plans], dtype=torch.int64).reshape(-1, 4)
        cols = torch.tensor([p[1] for p in plans], dtype=torch.int64).reshape(-1, 4)
        no_flip = torch.zeros(len(plans), dtype=torch.bool)
        return AxisMaps(*rows.unbind(1), flip=no_flip), AxisMaps(*cols.unbind(1), flip=no_flip)

    def __call__(self, images: DecodedImages, indices: torch.Tensor) -> torch.Tensor:
        indices = torch.as_tensor(indices, dtype=torch.int64)
        return super().__call__(images, indices.repeat_interleave(self.num_crops))


def average_crops(predictions: torch.Tensor, num_crops: int) -> torch.Tensor:
    """`(B * C,)` per-crop predictions (image-major) -> `(B,)` per-image means."""
    if predictions.shape[0] % num_crops:
        raise ValueError(f"{predictions.shape[0]} crop predictions are not a multiple of "
                         f"{num_crops} crops per image")
    return predictions.reshape(-1, num_crops).mean(dim=1)

"""Decode a split's images once and keep them as full-resolution uint8 tensors.

Images are grouped by size: each group is one `(n, 3, H, W)` uint8 tensor, so a batch of
same-sized images is a single `index_select` and can be transformed with one batched matmul.
Full resolution matters: the random resized crop must see the original pixels (downscaling
first would change the augmentation). Decoding runs in a thread pool (PIL releases the GIL
while decoding) and writes straight into the preallocated group tensors, so the host holds each
image once (about 4.1 GiB for AGIQA-3K at 256-1024 px). The groups live either on the compute
device (one copy, no transfers afterwards; host memory is then released group by group) or in
host memory, page-locked when the compute device is a GPU so batches copy asynchronously.
"""
from __future__ import annotations

import os
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

import numpy as np
import torch

from dassl.utils import ImageReadError, image_size, read_image

from .resample import MAX_RESAMPLE_ELEMENTS

__all__ = ["DecodedImages", "image_size", "default_workers"]


def default_workers() -> int:
    """Decoding threads: one per CPU core, at most 16."""
    return max(1, min(16, os.cpu_count() or 1))


class DecodedImages:
    """All images of a list of paths, decoded once, grouped by size.

    Attributes: `sizes` (list of `(H, W)` per image), `groups` (list of `(n_g, 3, H_g, W_g)`
    uint8 tensors on `storage_device`), `group_of` / `row_of` (`(N,)` int64, CPU: where image
    `i` lives), `compute_device` (where `iter_groups` delivers pixels), `nbytes` (pixel bytes
    held), `decode_seconds` (wall time of `decode`).
    """

    def __init__(self, sizes: list[tuple[int, int]], groups: list[torch.Tensor],
                 group_of: torch.Tensor, row_of: torch.Tensor, compute_device: torch.device,
                 decode_seconds: float = 0.0) -> None:
        self.sizes = sizes
        self.groups = groups
        self.group_of = group_of
        self.row_of = row_of
        self.compute_device = torch.device(compute_device)
        self.decode_seconds = decode_seconds

    def __len__(self) -> int:
        return len(self.sizes)

    @property
    def nbytes(self) -> int:
        return sum(g.numel() * g.element_size() for g in self.groups)

    @property
    def storage_device(self) -> torch.device:
        return self.groups[0].device if self.groups else self.compute_device

    @classmethod
    def decode(cls, paths: Sequence[str], compute_device: torch.device | str,
               on_device: bool = True, workers: int | None = None) -> "DecodedImages":
        """Decode `paths` into size groups (`dassl.utils.read_image`: RGB as displayed, EXIF
        orientation applied; sizes from `dassl.utils.image_size`, which agrees).

        `on_device=True` keeps the pixels on `compute_device`; False keeps them in host memory
        (page-locked when `compute_device` is CUDA). Raises `ImageReadError` (an `OSError`;
        `ImageNotFoundError` for a missing file) naming the first unreadable file.
        """
        start = time.perf_counter()
        compute_device = torch.device(compute_device)
        workers = workers or default_workers()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            sizes = list(pool.map(image_size, paths))
            by_size: "OrderedDict[tuple[int, int], list[int]]" = OrderedDict()
            for i, size in enumerate(sizes):
                by_size.setdefault(size, []).append(i)
            group_of = torch.empty(len(paths), dtype=torch.int64)
            row_of = torch.empty(len(paths), dtype=torch.int64)
            pin = compute_device.type == "cuda" and not on_device
            groups = []
            for g, ((height, width), members) in enumerate(by_size.items()):
                host = torch.empty((len(members), 3, height, width), dtype=torch.uint8,
                                   pin_memory=pin)
                jobs = [(paths[i], host[r], (height, width)) for r, i in enumerate(members)]
                list(pool.map(_decode_into, jobs))  # list(): re-raises the first failure
                group_of[members] = g
                row_of[members] = torch.arange(len(members))
                # Move group by group so that at most one group is held twice at a time.
                groups.append(host.to(compute_device) if on_device else host)
        return cls(sizes, groups, group_of, row_of, compute_device,
                   decode_seconds=time.perf_counter() - start)

    def iter_groups(self, indices: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield `(positions, pixels)` covering `indices` (`(B,)` int64, CPU) group by group.

        `positions` (CPU int64) index into `indices`; `pixels` `(b, 3, H, W)` uint8 on
        `compute_device` are those images, in the order of `positions`. Groups are cut into
        slices of at most `MAX_RESAMPLE_ELEMENTS` pixel values to bound transient memory.
        """
        indices = torch.as_tensor(indices, dtype=torch.int64)
        group_ids = self.group_of[indices]
        for g in torch.unique(group_ids).tolist():
            positions = (group_ids == g).nonzero().flatten()
            rows = self.row_of[indices[positions]]
            group = self.groups[g]
            step = max(1, MAX_RESAMPLE_ELEMENTS // group[0].numel())
            for lo in range(0, len(rows), step):
                yield positions[lo:lo + step], self._gather(group, rows[lo:lo + step])

    def _gather(self, group: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if group.device == self.compute_device:
            return group.index_select(0, rows.to(group.device, non_blocking=True))
        # Host storage, GPU compute: gather into page-locked memory, then copy asynchronously
        # (PyTorch's pinned-memory cache keeps the buffer alive until the copy has finished).
        staging = torch.empty((len(rows),) + tuple(group.shape[1:]), dtype=group.dtype,
                              pin_memory=group.is_pinned())
        torch.index_select(group, 0, rows, out=staging)
        return staging.to(self.compute_device, non_blocking=True)


def _decode_into(job: tuple[str, torch.Tensor, tuple[int, int]]) -> None:
    """Decode one file into its preallocated `(3, H, W)` slot (runs in a worker thread)."""
    path, slot, size = job
    pixels = np.asarray(read_image(path))   # (H, W, 3), read-only view of PIL's bytes
    if pixels.shape[:2] != size:
        raise ImageReadError(path=path, reason=f"decoded to (H, W) = {pixels.shape[:2]}, but its "
                                               f"header says {size}")
    # Assign through a NumPy view of the slot: one HWC -> CHW copy, no read-only tensor.
    slot.numpy().transpose(1, 2, 0)[...] = pixels

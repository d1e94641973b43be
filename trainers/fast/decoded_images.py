"""Decode a split's images once and keep them as full-resolution uint8 tensors (or, above the
memory budget, decode them per epoch: `StreamedImages`).

Images are grouped by size: each group is one `(n, 3, H, W)` uint8 tensor, so a batch of
same-sized images is a single `index_select` and can be transformed with one batched matmul.
Full resolution matters: the random resized crop must see the original pixels (downscaling
first would change the augmentation). Decoding runs in a thread pool (PIL releases the GIL
while decoding) and writes straight into the preallocated group tensors, so the host holds each
image once (about 4.1 GiB for AGIQA-3K at 256-1024 px). The groups live either on the compute
device (one copy, no transfers afterwards; host memory is then released group by group) or in
host memory, page-locked when the compute device is a GPU so batches copy asynchronously.

Memory budget (`TRAINER.CLIP_AGIQA.DECODED_MEMORY_GB`, see `trainers.clip_agiqa`): `header_sizes`
reads the image sizes from the file headers, so `decoded_nbytes` says what decoding would hold
before anything is decoded. Above the budget a split is either stored as its exact test crops
(`DecodedImages.store_transformed`) or read through `StreamedImages`, which decodes each chunk of
an epoch in DataLoader worker processes and holds only the chunks in flight. Both sources give
the transforms the same chunks (`iter_chunks`), so the augmentation draws are unchanged.
"""
from __future__ import annotations

import os
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from dassl.utils import ImageReadError, image_size, read_image

from .resample import MAX_RESAMPLE_ELEMENTS

__all__ = ["DecodedImages", "StreamedImages", "image_size", "header_sizes", "decoded_nbytes",
           "default_workers"]

# Bytes of one decoded pixel (RGB, 8 bits a channel).
PIXEL_BYTES = 3


def default_workers() -> int:
    """Decoding threads: one per CPU core, at most 16."""
    return max(1, min(16, os.cpu_count() or 1))


def header_sizes(paths: Sequence[str], workers: int | None = None) -> list[tuple[int, int]]:
    """`(H, W)` of every image from its file header (as displayed: EXIF orientation applied),
    read in a thread pool without decoding the pixels."""
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        return list(pool.map(image_size, paths))


def decoded_nbytes(sizes: Sequence[tuple[int, int]]) -> int:
    """Bytes the decoded uint8 images of `sizes` take: `3 H W` each (what `DecodedImages.decode`
    holds, exactly)."""
    return sum(PIXEL_BYTES * h * w for h, w in sizes)


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

    @classmethod
    def store_transformed(cls, source: "StreamedImages", resample, size: tuple[int, int],
                          on_device: bool = True) -> "DecodedImages":
        """Every image of `source` (in order) as `resample(images, indices)` gives it: `(B, 3,
        h, w)` float in 8-bit levels (a deterministic transform's pixels before scaling and
        normalisation, e.g. `TensorTransform.resample` of the test transform), stored as one
        `(N, 3, h, w)` uint8 group. The values are whole levels in 0..255, so the uint8 copy is
        exact; decoding streams chunk by chunk, so only the stored pixels stay in memory."""
        start = time.perf_counter()
        n = len(source)
        pin = source.compute_device.type == "cuda" and not on_device
        place = source.compute_device if on_device else torch.device("cpu")
        group = torch.empty((n, 3, *size), dtype=torch.uint8, device=place, pin_memory=pin)
        chunks = list(torch.arange(n).split(source.chunk_images))
        for chunk, (images, local) in zip(chunks, source.iter_chunks(chunks)):
            group[chunk.to(place)] = resample(images, local).to(place, torch.uint8)
        return cls([tuple(size)] * n, [group], torch.zeros(n, dtype=torch.int64),
                   torch.arange(n), source.compute_device,
                   decode_seconds=time.perf_counter() - start)

    def to(self, device: torch.device | str) -> "DecodedImages":
        """The same images with their groups on `device` (also the compute device)."""
        device = torch.device(device)
        return DecodedImages(self.sizes, [g.to(device, non_blocking=True) for g in self.groups],
                             self.group_of, self.row_of, device, self.decode_seconds)

    def iter_chunks(self, chunks: Sequence[torch.Tensor]
                    ) -> Iterator[tuple["DecodedImages", torch.Tensor]]:
        """`(images, indices)` per chunk of dataset indices: these images and the chunk itself
        (the interface `StreamedImages` shares)."""
        for chunk in chunks:
            yield self, chunk

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


class _Paths(torch.utils.data.Dataset):
    """Item `i` is path `i` (a DataLoader over it hands lists of paths to `_decode_paths`)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> str:
        return self.paths[index]


def _decode_paths(paths: list[str]) -> DecodedImages:
    """Collate function of the streaming loader: one chunk, decoded on the CPU (one thread: the
    loader runs several of these processes at once)."""
    return DecodedImages.decode(paths, "cpu", on_device=False, workers=1)


class StreamedImages:
    """The images of `paths`, decoded again every time a chunk is asked for (`iter_chunks`), in
    DataLoader worker processes that work ahead of the consumer; nothing stays decoded.

    `sizes` come from the headers (`header_sizes`), `compute_device` is where chunks are
    delivered, `workers` the worker processes (0: the main process decodes with a thread pool),
    `chunk_images` the images `store_transformed` decodes at once. Memory held: the chunks in
    flight, at most `workers + 1` (each worker prepares one ahead).
    """

    def __init__(self, paths: Sequence[str], compute_device: torch.device | str,
                 workers: int = 0, sizes: Sequence[tuple[int, int]] | None = None,
                 chunk_images: int = 64) -> None:
        self.paths = list(paths)
        self.sizes = list(sizes) if sizes is not None else header_sizes(self.paths)
        self.compute_device = torch.device(compute_device)
        self.workers = int(workers)
        self.chunk_images = int(chunk_images)

    def __len__(self) -> int:
        return len(self.paths)

    def iter_chunks(self, chunks: Sequence[torch.Tensor]
                    ) -> Iterator[tuple[DecodedImages, torch.Tensor]]:
        """`(images, local)` per chunk of dataset indices, in order: the chunk's images decoded
        (on `compute_device`) and `local` = `0 .. len(chunk) - 1`, their indices there.

        The loader has its own random generator, so creating it draws nothing from the global
        torch RNG: the transforms' draws are those of the decode-once path.
        """
        chunks = [torch.as_tensor(c, dtype=torch.int64) for c in chunks]
        if not chunks:
            return
        if self.workers == 0:
            for chunk in chunks:
                images = DecodedImages.decode([self.paths[i] for i in chunk.tolist()],
                                              self.compute_device, on_device=True)
                yield images, torch.arange(len(chunk))
            return
        loader = DataLoader(_Paths(self.paths), batch_sampler=[c.tolist() for c in chunks],
                            num_workers=self.workers, collate_fn=_decode_paths,
                            prefetch_factor=1, generator=torch.Generator())
        for chunk, images in zip(chunks, loader):
            yield images.to(self.compute_device), torch.arange(len(chunk))

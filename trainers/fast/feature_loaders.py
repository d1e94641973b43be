"""Loaders of precomputed image features that replace dassl's image loaders (fast pipeline).

CLIP-AGIQA's image encoder is frozen, in eval mode and free of randomness, so an image's
feature depends only on its (augmented) pixels. Hence:
- `FeatureEpochLoader` (for `train_loader_x`): each epoch draws the batch order from a
  DataLoader over indices that shares the reference loader's sampler, batch size and drop_last
  (so the batches, and the global-RNG draws of a DataLoader iteration, are the same), draws the
  augmentation of every image the epoch uses, encodes them in chunks of `batch_size` images
  without autograd, then yields the epoch's batches of features.
- `CachedFeatureLoader` (for `test_loader` / `val_loader`): the test transform is deterministic,
  so the features are computed once and reused while the image encoder's weights are unchanged.
- `ImageEpochLoader` (for `train_loader_x` when the image encoder trains,
  `TRAIN_IMAGE_ENCODER`): image features change every step, so no feature is cached; the
  images are still decoded once and augmented on the device, and batches carry `img`.
With `TEST.NUM_CROPS` C > 1 the cached test features are `(N, C, D)`, one per crop.
Where the images are kept (`storage`, chosen by the trainer against the memory budget): "full"
(decoded once at full resolution), "transformed" (a test/val split stored as its exact test
crops) or "streamed" (decoded again each epoch, chunk by chunk, in loader worker processes:
`StreamedImages`); the batches, draws and features are the same.
Batches are dicts: `feat` `(B, D)` (or `(B, C, D)`) float32 on the device (`img`
`(B, 3, h, w)` for `ImageEpochLoader`), `mos` `(B,)` float64 (when every item has one),
`label` `(B,)` int64 (each image's level index, under Dassl's batch key, as the reference
loader's batches), `impath` (list of B str), `index` `(B,)` int64 dataset indices, `prompt`
(list of B str, when every item has a generation prompt).
"""
from __future__ import annotations

import contextlib
import itertools
from typing import Callable, Iterator

import torch
from torch.utils.data import DataLoader

from dassl.utils import count_noun

from .decoded_images import DecodedImages, StreamedImages
from .tensor_transforms import TensorTransform

__all__ = ["ImageFeatureEncoder", "FeatureEpochLoader", "CachedFeatureLoader",
           "ImageEpochLoader", "STORAGES"]

# How a split's images are kept (see the module docstring).
STORAGES = ("full", "transformed", "streamed")
Images = DecodedImages | StreamedImages


class ImageFeatureEncoder:
    """Transforms and encodes images in chunks: `encode(images, indices, transform) -> (N, D)`.

    `model` is the CustomCLIP (its `encode_image` gives L2-normalised float32 features);
    `autocast` is a context factory matching the reference forward (autocast only for amp).
    `calls` counts image-encoder calls (tests use it to check caching).
    """

    def __init__(self, model: torch.nn.Module, device: torch.device, batch_size: int,
                 autocast: Callable[[], contextlib.AbstractContextManager]) -> None:
        self.model = model
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.autocast = autocast
        self.calls = 0

    @torch.no_grad()
    def encode(self, images: Images, indices: torch.Tensor,
               transform: TensorTransform) -> torch.Tensor:
        """Features `(N, D)` float32 (on `images.compute_device`) of `transform(images[indices])`
        (`(N * C, D)`, image-major, for a transform with `num_crops` C).

        Augmentation parameters are drawn chunk by chunk in the order of `indices`; on a GPU
        the drawing of chunk k+1 overlaps the asynchronous encoding of chunk k.
        """
        chunks = []
        # A multi-crop transform makes C inputs per image: keep each call at `batch_size` inputs.
        per_call = max(1, self.batch_size // getattr(transform, "num_crops", 1))
        parts = torch.as_tensor(indices, dtype=torch.int64).split(per_call)
        for chunk_images, chunk in images.iter_chunks(parts):
            pixels = transform(chunk_images, chunk)
            with self.autocast():
                chunks.append(self.model.encode_image(pixels).float())
            self.calls += 1
        return torch.cat(chunks)

    def encoder_state(self) -> tuple:
        """Changes whenever a weight of the image encoder is replaced, moved or edited."""
        encoder = self.model.image_encoder
        return tuple((t._version, t.data_ptr(), t.dtype, t.device)
                     for t in itertools.chain(encoder.parameters(), encoder.buffers()))


class _SplitSource:
    """What both loaders share: the reference loader's items, batches (`len()`), transform and
    decoding."""

    def __init__(self, reference: DataLoader, transform: TensorTransform,
                 encoder: ImageFeatureEncoder, decode_on_device: bool = True,
                 storage: str = "full", workers: int = 0) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
        if reference.batch_size is None:
            raise ValueError("the fast pipeline needs a loader built with batch_size and sampler")
        items = reference.dataset.data_source
        self.impaths = [item.impath for item in items]
        self.levels = torch.tensor([int(item.label) for item in items], dtype=torch.int64)
        has_mos = all(item.mos is not None for item in items)
        self.mos = (torch.tensor([float(item.mos) for item in items], dtype=torch.float64)
                    if has_mos else None)
        prompts = [getattr(item, "prompt", None) for item in items]
        self.prompts = prompts if all(p is not None for p in prompts) else None
        # Same sampler object, batch size and drop_last: identical batches and RNG consumption.
        self.index_loader = DataLoader(range(len(items)), batch_size=reference.batch_size,
                                       sampler=reference.sampler, drop_last=reference.drop_last)
        self.transform = transform
        self.encoder = encoder
        self.decode_on_device = decode_on_device
        self.storage = storage
        self.workers = int(workers)
        self.images: Images | None = None

    def __len__(self) -> int:
        return len(self.index_loader)

    def decoded(self) -> Images:
        """The split's images as `storage` keeps them, prepared on first use (idempotent)."""
        if self.images is not None:
            return self.images
        device = self.encoder.device
        if self.storage == "full":
            self.images = DecodedImages.decode(self.impaths, device,
                                               on_device=self.decode_on_device)
        else:
            streamed = StreamedImages(self.impaths, device, self.workers)
            if self.storage == "streamed":
                self.images = streamed
                return streamed
            self.images = DecodedImages.store_transformed(
                streamed, self.transform.resample, self.transform.size, self.decode_on_device)
        kept = "as test crops" if self.storage == "transformed" else "at full size"
        print(f"Decoded {count_noun(len(self.images), 'image')} {kept} ({self.images.nbytes / 2 ** 30:.2f} "
              f"GiB on {self.images.storage_device}) in {self.images.decode_seconds:.1f} s")
        return self.images

    def batch(self, indices: torch.Tensor, features: torch.Tensor) -> dict:
        out = {"feat": features, "label": self.levels[indices], "index": indices,
               "impath": [self.impaths[i] for i in indices.tolist()]}
        if self.mos is not None:
            out["mos"] = self.mos[indices]
        if self.prompts is not None:
            out["prompt"] = [self.prompts[i] for i in indices.tolist()]
        return out


class FeatureEpochLoader(_SplitSource):
    """Drop-in for `train_loader_x`: `len()` batches per epoch, each a feature batch dict.

    The images are decoded by the first iteration, or earlier by calling `decoded()`.
    """

    def __iter__(self) -> Iterator[dict]:
        images = self.decoded()
        batches = list(self.index_loader)   # draws the epoch's order exactly as the reference
        if not batches:
            return
        features = self.encoder.encode(images, torch.cat(batches), self.transform)
        for indices, feats in zip(batches, features.split([len(b) for b in batches])):
            yield self.batch(indices, feats)


class CachedFeatureLoader(_SplitSource):
    """Drop-in for a test/val loader: features of the test transform, computed once.

    Iterates in the reference loader's batches. The decoded pixels are released once the
    features exist; they are decoded again only if the image encoder's weights change.
    """

    def __init__(self, reference: DataLoader, transform: TensorTransform,
                 encoder: ImageFeatureEncoder, decode_on_device: bool = True,
                 storage: str = "full", workers: int = 0) -> None:
        if storage == "transformed" and getattr(transform, "num_crops", 1) != 1:
            raise ValueError("storage 'transformed' keeps one test crop per image: it needs "
                             "TEST.NUM_CROPS 1")
        super().__init__(reference, transform, encoder, decode_on_device, storage, workers)
        self._features: torch.Tensor | None = None
        self._state: tuple | None = None

    def features(self) -> torch.Tensor:
        """`(N, D)` (or `(N, C, D)` for C test crops) float32 features of the whole split in
        dataset order (cached)."""
        state = self.encoder.encoder_state()
        if self._features is None or state != self._state:
            images = self.decoded()
            features = self.encoder.encode(images, torch.arange(len(images)), self.transform)
            crops = getattr(self.transform, "num_crops", 1)
            self._features = features.reshape(len(images), crops, -1) if crops > 1 else features
            self._state = state
            self.images = None  # frees the pixels: the test transform never changes
        return self._features

    def __iter__(self) -> Iterator[dict]:
        features = self.features()
        for indices in self.index_loader:
            yield self.batch(indices, features[indices.to(features.device, non_blocking=True)])


class ImageEpochLoader(_SplitSource):
    """Drop-in for `train_loader_x` when the image encoder trains: the batches of the reference
    loader's sampler, as augmented images `img` `(B, 3, h, w)` float32 on the device (the
    augmentation of a batch is drawn just before it is yielded)."""

    def __iter__(self) -> Iterator[dict]:
        images = self.decoded()
        # The whole epoch's order is drawn first, as iterating the index loader lazily would
        # (its sampler draws at the start): the chunks of a streamed split are then known.
        batches = list(self.index_loader)
        for (batch_images, local), indices in zip(images.iter_chunks(batches), batches):
            pixels = self.transform(batch_images, local)
            out = self.batch(indices, pixels)
            out["img"] = out.pop("feat")
            yield out

"""Fast pipeline, data side: crop-parameter draws, resampling matrices, tensor vs PIL transforms,
decoding into size groups (CPU, small images)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.v2.functional as F2
from torchvision.transforms import InterpolationMode

from dassl.config import get_cfg_default
from dassl.data.transforms import build_transform
from dassl.utils import read_image
from datasets.synthetic import render_example
from trainers.fast.decoded_images import DecodedImages
from trainers.fast.resample import FILTERS, AxisMaps, apply_axis_maps, axis_weights
from trainers.fast.tensor_transforms import (TensorTransform, random_crop_offsets,
                                             random_resized_crop_params)
from trainers.method.model_spec import FAST_INTERPOLATIONS, fast_unsupported_reason

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
# (width, height) of the test images: portrait, landscape, square, small (upsampled crops).
SIZES = [(300, 240), (240, 320), (256, 256), (300, 240), (520, 400), (96, 64)]
ONE_LEVEL = 1.0 / 255 / min(CLIP_STD)  # one 8-bit grey level in normalised units


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fast_images")
    paths = []
    for i, size in enumerate(SIZES):
        _clean, img, _strength = render_example(3, i, size)  # edges, gratings, noise, JPEG
        path = folder / f"img{i}.jpg"
        img.save(path, quality=95)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def decoded(image_files):
    return DecodedImages.decode(image_files, "cpu", workers=2)


def make_cfg(transforms, interpolation="bicubic"):
    cfg = get_cfg_default()
    cfg.INPUT.TRANSFORMS = tuple(transforms)
    cfg.INPUT.INTERPOLATION = interpolation
    cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD = CLIP_MEAN, CLIP_STD
    cfg.VERBOSE = False
    return cfg


@pytest.mark.parametrize("size", [(224, 224), (1024, 768), (100, 1000), (1000, 90), (300, 40)])
def test_resized_crop_params_equal_torchvision_for_the_same_rng(size):
    height, width = size
    fake = torch.empty(1, dtype=torch.uint8).expand(3, height, width)
    for seed in range(200):
        torch.manual_seed(seed)
        expected = T.RandomResizedCrop.get_params(fake, [0.08, 1.0], [3 / 4, 4 / 3])
        after_expected = torch.rand(1)
        torch.manual_seed(seed)
        assert random_resized_crop_params(height, width, (0.08, 1.0)) == expected
        assert torch.equal(torch.rand(1), after_expected)  # same number of draws


def test_random_crop_offsets_equal_torchvision():
    for seed, (height, width) in enumerate([(232, 232), (300, 250), (1032, 520)]):
        fake = torch.empty(1, dtype=torch.uint8).expand(3, height, width)
        torch.manual_seed(seed)
        expected = T.RandomCrop.get_params(fake, (224, 224))[:2]
        torch.manual_seed(seed)
        assert random_crop_offsets(height, width, (224, 224)) == expected
    with pytest.raises(ValueError, match="larger than input image size"):
        random_crop_offsets(100, 300, (224, 224))


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_resampling_matrices_equal_torchvision_resized_crop(interpolation):
    mode = InterpolationMode.BICUBIC if interpolation == "bicubic" else InterpolationMode.BILINEAR
    gen = torch.Generator().manual_seed(0)
    # (H, W, top, left, h, w): downscaling, upscaling, mixed, identity.
    for height, width, top, left, h, w in [(512, 384, 10, 20, 300, 200), (256, 256, 5, 7, 100, 150),
                                           (300, 200, 50, 60, 224, 224), (64, 64, 3, 4, 40, 50)]:
        img = torch.rand(3, height, width, generator=gen, dtype=torch.float64) * 255
        expected = F2.resized_crop(img, top, left, h, w, [224, 224], mode, antialias=True)
        flip = torch.tensor([False])
        w_rows = axis_weights(AxisMaps(*(torch.tensor([v]) for v in (top, h, 224, 0)), flip),
                              height, 224, interpolation).double()[0]
        w_cols = axis_weights(AxisMaps(*(torch.tensor([v]) for v in (left, w, 224, 0)), flip),
                              width, 224, interpolation).double()[0]
        # float32 weights: ~1e-7 relative error, i.e. < 1e-3 grey levels on 0..255.
        assert torch.allclose(w_rows @ img @ w_cols.T, expected, atol=5e-3, rtol=0)


def test_padding_and_flip_in_axis_maps():
    img = torch.arange(3 * 6 * 8, dtype=torch.float32).reshape(1, 3, 6, 8) % 200
    # Identity-sized windows are exact crops; positions outside the image read zeros.
    rows = AxisMaps(*(torch.tensor([v]) for v in (-2, 6, 6, 0)), torch.tensor([False]))
    cols = AxisMaps(*(torch.tensor([v]) for v in (1, 8, 8, 0)), torch.tensor([True]))
    out = apply_axis_maps(img, rows, cols, (6, 8))
    expected = torch.zeros(1, 3, 6, 8)
    expected[:, :, 2:, :7] = img[:, :, :4, 1:]
    assert torch.equal(out, expected.flip(-1))


@pytest.mark.slow
@pytest.mark.parametrize("transforms", [
    ("random_resized_crop", "random_flip", "normalize"),  # the paper's configuration
    ("random_crop", "random_flip", "normalize"),
    ("random_crop", "random_resized_crop"),
    ("center_crop", "normalize"),
    ("normalize",),
    None,  # test transform
])
def test_tensor_transforms_match_the_pil_pipeline(image_files, decoded, transforms):
    is_train = transforms is not None
    cfg = make_cfg(transforms or ("normalize",))
    pil_transform = build_transform(cfg, is_train=is_train)
    tensor_transform = TensorTransform.from_config(cfg, is_train=is_train)
    indices = torch.tensor([4, 0, 2, 1, 3] + ([] if "random_crop" in (transforms or ()) else [5]))
    images = [read_image(image_files[i]) for i in indices.tolist()]
    for seed in range(3):
        torch.manual_seed(seed)
        expected = torch.stack([pil_transform(img) for img in images])
        next_draw = torch.rand(1)
        torch.manual_seed(seed)
        out = tensor_transform(decoded, indices)
        assert torch.equal(torch.rand(1), next_draw)  # same RNG consumption
        diff = (out - expected).abs()
        # Same crops and flips; pixels differ by at most ~2 levels of rounding, rarely.
        assert diff.max() <= 2.01 * ONE_LEVEL
        assert diff.mean() < 0.05 * ONE_LEVEL


def test_a_different_draw_gives_a_different_crop(image_files, decoded):
    cfg = make_cfg(("random_resized_crop", "random_flip", "normalize"))
    torch.manual_seed(0)
    expected = build_transform(cfg, is_train=True)(read_image(image_files[0]))
    torch.manual_seed(1)
    out = TensorTransform.from_config(cfg, is_train=True)(decoded, torch.tensor([0]))[0]
    assert (out - expected).abs().mean() > 20 * ONE_LEVEL


def test_unsupported_choices_are_reported():
    assert set(FAST_INTERPOLATIONS) == set(FILTERS)  # the spec's rule is the resampler's
    assert fast_unsupported_reason(make_cfg(("random_resized_crop", "random_flip", "normalize"))) is None
    assert "colorjitter" in fast_unsupported_reason(make_cfg(("colorjitter", "normalize")))
    assert "nearest" in fast_unsupported_reason(make_cfg(("normalize",), "nearest"))
    cfg = make_cfg(("normalize",))
    cfg.DATALOADER.K_TRANSFORMS = 2
    assert "K_TRANSFORMS" in fast_unsupported_reason(cfg)
    with pytest.raises(ValueError, match="does not support"):
        TensorTransform.from_config(make_cfg(("gaussian_blur",)), is_train=True)


def test_decoded_images_are_grouped_full_resolution_pixels(image_files, decoded):
    assert decoded.sizes == [(h, w) for w, h in SIZES]
    # Two images share 240x300; every other size has its own group.
    assert sorted(len(g) for g in decoded.groups) == [1, 1, 1, 1, 2]
    assert decoded.nbytes == sum(3 * w * h for w, h in SIZES)
    for positions, pixels in decoded.iter_groups(torch.tensor([3, 5, 0])):
        for pos, img in zip(positions.tolist(), pixels):
            index = [3, 5, 0][pos]
            pil = torch.from_numpy(np.array(read_image(image_files[index])))
            assert torch.equal(img, pil.permute(2, 0, 1))


def test_decoding_names_a_missing_file(image_files, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        DecodedImages.decode([image_files[0], str(tmp_path / "nope.jpg")], "cpu")

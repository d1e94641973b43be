"""Images decoded as a viewer shows them, by the one decoder every tool uses
(dassl.utils.read_image): every Pillow mode, EXIF orientation, both training pipelines, the
up-front check. Expected values are computed from the stated rules, not read back."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from dassl.data.data_manager import DatasetWrapper
from dassl.data.datasets import Datum
from dassl.utils import image_problem, image_size, read_image, to_display_rgb
from trainers.fast.decoded_images import DecodedImages

from test_dassl_data import _toy_cfg

H, W = 6, 10  # non-square, so a rotation shows in the size


def rgb(path) -> np.ndarray:
    return np.asarray(read_image(str(path)))


def grey3(values: np.ndarray) -> np.ndarray:
    return np.repeat(values.astype(np.uint8)[..., None], 3, axis=2)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def write_png_48bit(path, pixels: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one), filter 0 on every row."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
                     + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def gradient(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------- modes
def test_16bit_greyscale_png_keeps_its_grey_levels(tmp_path):
    # v = 257 * k is grey k on an 8-bit display (top 8 bits: (256k + k) >> 8 = k).
    k = np.arange(H * W, dtype=np.uint16).reshape(H, W) * 4
    path = tmp_path / "i16.png"
    Image.fromarray(k * 257).save(path)
    assert Image.open(path).mode == "I;16"
    np.testing.assert_array_equal(rgb(path), grey3(k))


def test_16bit_greyscale_uses_the_top_8_bits(tmp_path):
    values = np.array([[0, 255, 256, 4660, 65535]], dtype=np.uint16)
    path = tmp_path / "i16.png"
    Image.fromarray(values).save(path)
    np.testing.assert_array_equal(rgb(path), grey3(values >> 8))


def test_48bit_rgb_png_uses_the_top_8_bits(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 65536, size=(H, W, 3)).astype(np.uint16)
    path = tmp_path / "rgb48.png"
    write_png_48bit(path, pixels)
    np.testing.assert_array_equal(rgb(path), (pixels >> 8).astype(np.uint8))


def test_32bit_integer_and_float_modes(tmp_path):
    ints = np.array([[-5, 0, 256 * 100, 65535, 70000]], dtype=np.int32)
    path = tmp_path / "i32.tif"
    Image.fromarray(ints, mode="I").save(path)
    np.testing.assert_array_equal(rgb(path), grey3(np.array([[0, 0, 100, 255, 255]])))
    floats = np.array([[-0.5, 0.0, 0.5, 1.0, 3.0]], dtype=np.float32)
    path = tmp_path / "f.tif"
    Image.fromarray(floats, mode="F").save(path)
    np.testing.assert_array_equal(rgb(path), grey3(np.array([[0, 0, 128, 255, 255]])))


@pytest.mark.parametrize("alpha", [0, 128, 255])
def test_alpha_is_composited_over_white(tmp_path, alpha):
    colour = np.array([200, 40, 10])
    pixels = np.zeros((H, W, 4), dtype=np.uint8)
    pixels[..., :3] = colour
    pixels[..., 3] = alpha
    Image.fromarray(pixels, "RGBA").save(tmp_path / "rgba.png")
    expected = np.rint((colour * alpha + 255 * (255 - alpha)) / 255)
    got = rgb(tmp_path / "rgba.png").astype(int)
    # Pillow's alpha_composite rounds in integer arithmetic: within 1 level of the exact blend.
    assert np.abs(got - expected).max() <= 1
    la = np.stack([np.full((H, W), 30, np.uint8), np.full((H, W), alpha, np.uint8)], axis=2)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    grey = rgb(tmp_path / "la.png").astype(int)
    assert np.abs(grey - round((30 * alpha + 255 * (255 - alpha)) / 255)).max() <= 1


def test_palette_transparency_shows_white(tmp_path):
    image = Image.new("P", (W, H), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.info["transparency"] = 0  # palette entry 0 (black) is transparent
    image.save(tmp_path / "p.png", transparency=0)
    got = rgb(tmp_path / "p.png")
    assert tuple(got[0, 0]) == (255, 255, 255)
    assert tuple(got[1, 1]) == (255, 0, 0)


def test_bilevel_cmyk_and_ycbcr(tmp_path):
    bits = (np.arange(H * W).reshape(H, W) % 2).astype(bool)
    Image.fromarray(bits).save(tmp_path / "one.png")
    np.testing.assert_array_equal(rgb(tmp_path / "one.png"), grey3(bits * 255))
    cmyk = Image.new("CMYK", (W, H), (0, 255, 255, 0))  # full magenta + yellow = red
    cmyk.save(tmp_path / "cmyk.tif")
    assert (rgb(tmp_path / "cmyk.tif") == [255, 0, 0]).all()
    # LZW: Pillow 12.3 misreads its own uncompressed YCbCr TIFFs ("image file is truncated": it
    # assumes subsampled chroma), a Pillow fault, not ours; compressed ones decode to the colour.
    Image.new("YCbCr", (W, H), (128, 128, 128)).save(tmp_path / "ycc.tif", compression="tiff_lzw")
    assert np.abs(rgb(tmp_path / "ycc.tif").astype(int) - 128).max() <= 1


# ---------------------------------------------------------------------------- orientation
def exif_with_orientation(value: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif


@pytest.mark.parametrize("orientation, stored_as", [
    (3, Image.Transpose.ROTATE_180), (6, Image.Transpose.ROTATE_90),
    (8, Image.Transpose.ROTATE_270), (2, Image.Transpose.FLIP_LEFT_RIGHT)])
def test_exif_orientation_is_applied(tmp_path, orientation, stored_as):
    upright = Image.fromarray(gradient())
    stored = upright.transpose(stored_as)  # what the camera wrote, the tag says how to undo it
    stored.save(tmp_path / "tagged.png", exif=exif_with_orientation(orientation))
    np.testing.assert_array_equal(rgb(tmp_path / "tagged.png"), np.asarray(upright))
    assert image_size(str(tmp_path / "tagged.png")) == (H, W)


def test_sideways_phone_jpeg_equals_the_upright_one(tmp_path):
    upright = Image.fromarray(gradient())
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # (W, H) on disk
    stored.save(tmp_path / "phone.jpg", quality=95, exif=exif_with_orientation(6))
    stored.save(tmp_path / "plain.jpg", quality=95)  # same pixels, no tag
    expected = np.asarray(read_image(str(tmp_path / "plain.jpg"))
                          .transpose(Image.Transpose.ROTATE_270))
    np.testing.assert_array_equal(rgb(tmp_path / "phone.jpg"), expected)
    assert image_size(str(tmp_path / "phone.jpg")) == (H, W)
    # An in-memory image (scorer input) follows the same rule.
    np.testing.assert_array_equal(np.asarray(to_display_rgb(Image.open(tmp_path / "phone.jpg"))),
                                  expected)


# ---------------------------------------------------------------------------- every consumer
@pytest.fixture
def odd_images(tmp_path):
    """Files whose naive RGB conversion differs from the displayed picture, with the pixels
    that must be seen."""
    upright = gradient(3)
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(
        tmp_path / "rotated.png", exif=exif_with_orientation(6))
    k = np.arange(H * W, dtype=np.uint16).reshape(H, W)
    Image.fromarray(k * 257).save(tmp_path / "i16.png")
    return {str(tmp_path / "rotated.png"): upright, str(tmp_path / "i16.png"): grey3(k)}


def test_both_training_pipelines_and_the_check_see_the_displayed_picture(odd_images):
    paths = list(odd_images)
    reference = DatasetWrapper(_toy_cfg(".", n_train=2),
                               [Datum(impath=p, label=0, mos=1.0) for p in paths])
    decoded = DecodedImages.decode(paths, "cpu", workers=2)
    for i, (path, expected) in enumerate(odd_images.items()):
        np.testing.assert_array_equal(np.asarray(reference[i]["img"]), expected)
        _, pixels = next(decoded.iter_groups(torch.tensor([i])))
        np.testing.assert_array_equal(pixels[0].permute(1, 2, 0).numpy(), expected)
        assert image_problem(path) is None

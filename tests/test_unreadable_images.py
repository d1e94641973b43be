"""Every unreadable image is one named error in every tool and mode: the up-front check decodes
what training decodes, DATASET.CHECK_FILES False still names the file (exit status 2), skipping
works for files the old checksum-only check missed, and images over the pixel limit are refused
from their header in training and scoring."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import score
import train
from dassl.utils import MAX_IMAGE_PIXELS, ImageReadError, image_problem, image_size, read_image

PIPELINES = ("fast", "reference")


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        chunks.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]))
        pos += 12 + length
    return chunks


def write_corrupt_png(path: Path, size=(48, 48)) -> None:
    """A PNG whose chunks all have valid checksums but whose pixel rows use filter type 9
    (there are five, 0-4): Image.verify() accepts it, decoding fails."""
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.write_bytes(b"")
    Image.fromarray(pixels).save(path, format="PNG")
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in png_chunks(path.read_bytes()):
        if kind == b"IDAT":
            raw = bytearray(zlib.decompress(body))
            raw[(size[1] // 2) * (3 * size[0] + 1)] = 9  # the filter byte of the middle row
            body = zlib.compress(bytes(raw))
        out += (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    path.write_bytes(out)


def write_huge_png(path: Path, width: int, height: int) -> None:
    """A bilevel PNG: a few MiB in memory, a few KiB on disk, ``width * height`` pixels."""
    Image.new("1", (width, height)).save(path, format="PNG")


def test_the_check_decodes_what_training_decodes(tmp_path):
    bad = tmp_path / "bad.png"
    write_corrupt_png(bad)
    with Image.open(bad) as img:
        img.verify()  # the checksums are fine: only decoding finds the damage
    problem = image_problem(str(bad))
    assert problem is not None and "unrecognized data stream" in problem
    with pytest.raises(ImageReadError, match=f"Cannot read image file {bad}: OSError"):
        read_image(str(bad))


@pytest.mark.parametrize("side, bomb", [(8200, False), (13400, True)])
def test_images_over_the_pixel_limit_are_refused_from_the_header(tmp_path, side, bomb):
    path = tmp_path / "huge.png"
    write_huge_png(path, side, side)
    assert (side * side > 2 * Image.MAX_IMAGE_PIXELS) == bomb  # Pillow's own error, or ours
    expected = f"Cannot read image file {path}: too large: .*{side * side:,} pixels, more than "
    for call in (read_image, image_size, image_problem):
        if call is image_problem:
            assert "too large" in call(str(path))
        else:
            with pytest.raises(ImageReadError, match=expected):
                call(str(path))
    assert MAX_IMAGE_PIXELS == 8192 * 8192


# ------------------------------------------------------------------------- train.py
def damage(tiny_data: Path, index: int = 4) -> Path:
    bad = sorted((tiny_data / "AGIQA-3K").glob("*.jpg"))[index]
    write_corrupt_png(bad)  # PNG content under the .jpg name: Pillow goes by content
    return bad


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_corrupt_pixel_data_is_found_before_training(pipeline, user_error, tiny_args, tiny_data,
                                                     tmp_path):
    bad = damage(tiny_data)
    message = user_error(tiny_args(tmp_path / "out", "TRAINER.CLIP_AGIQA.PIPELINE", pipeline,
                                   root=tiny_data))
    assert "1 of 40 images cannot be read" in message and str(bad) in message
    assert "unrecognized data stream" in message


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_skipping_leaves_out_what_decoding_would_hit(pipeline, tiny_args, tiny_data, tmp_path,
                                                     capsys):
    bad = damage(tiny_data)
    out = tmp_path / "out"
    results = train.main(tiny_args(out, "TRAINER.CLIP_AGIQA.PIPELINE", pipeline,
                                   "DATASET.SKIP_BAD_IMAGES", "True", root=tiny_data))
    assert results is not None
    log = (out / "log.txt").read_text()
    assert log.count("skipping 1 of 40 images") == 1 and str(bad) in log
    listed = "".join((out / "splits" / f"{part}.csv").read_text() for part in ("train", "test"))
    assert bad.name not in listed


@pytest.mark.parametrize("pipeline, workers", [("fast", 0), ("reference", 0), ("reference", 1)])
def test_without_the_check_a_bad_image_is_one_named_error(pipeline, workers, user_error,
                                                          tiny_args, tiny_data, tmp_path):
    bad = damage(tiny_data)
    message = user_error(tiny_args(tmp_path / "out", "TRAINER.CLIP_AGIQA.PIPELINE", pipeline,
                                   "DATASET.CHECK_FILES", "False", "DATALOADER.NUM_WORKERS",
                                   str(workers), root=tiny_data))
    assert message.startswith(f"Cannot read image file {bad}: OSError: unrecognized data stream")
    assert "\n" not in message


def test_without_the_check_skipping_still_works(tiny_args, tiny_data, tmp_path):
    bad = damage(tiny_data)
    out = tmp_path / "out"
    train.main(tiny_args(out, "DATASET.CHECK_FILES", "False", "DATASET.SKIP_BAD_IMAGES",
                         "True", root=tiny_data))
    log = (out / "log.txt").read_text()
    assert str(bad) in log and log.count("skipping 1 of 40 images") == 1


def test_without_the_check_a_huge_image_is_one_named_error(user_error, tiny_args, tiny_data,
                                                           tmp_path):
    huge = sorted((tiny_data / "AGIQA-3K").glob("*.jpg"))[2]
    write_huge_png(huge, 13400, 13400)
    message = user_error(tiny_args(tmp_path / "out", "DATASET.CHECK_FILES", "False",
                                   root=tiny_data))
    assert message.startswith(f"Cannot read image file {huge}: too large")


# ------------------------------------------------------------------------- score.py
def test_score_names_a_huge_or_corrupt_image(tiny_assets, tmp_path, capsys):
    """score.py fails on the image before it needs a model: a run directory is not required to
    reach the decoding step, so use a trained tiny run."""
    out = tmp_path / "run"
    train.main(["--root", tiny_assets["root"], "--seed", "0", "--trainer", "CLIP_AGIQA",
                "--dataset-config-file", str(Path(train.REPO_DIR) / "configs/datasets/AGIQA.yaml"),
                "--config-file",
                str(Path(train.REPO_DIR) / "configs/trainers/CLIP_AGIQA/vit_b16_ep100.yaml"),
                "--output-dir", str(out), "MODEL.BACKBONE.NAME", tiny_assets["weights"],
                "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0",
                "TRAINER.CLIP_AGIQA.N_CTX", "4", "DATALOADER.TRAIN_X.BATCH_SIZE", "8"])
    huge, corrupt = tmp_path / "huge.png", tmp_path / "corrupt.png"
    write_huge_png(huge, 13400, 13400)
    write_corrupt_png(corrupt)
    for bad, reason in ((huge, "too large"), (corrupt, "OSError: unrecognized data stream")):
        capsys.readouterr()
        status = score.main([str(out), str(bad), "--output", str(tmp_path / "s.csv"),
                             "--no-progress"])
        err = capsys.readouterr().err
        assert status == 2 and "Traceback" not in err
        assert err.strip().splitlines()[-1].startswith(f"error: Cannot read image file {bad}: "
                                                       f"{reason}")

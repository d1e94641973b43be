"""Image files decoded as an image viewer shows them: the one decoder of the project.

Training (both pipelines), the up-front image check, ``score.py`` and ``load_scorer`` all read
images through :func:`read_image` (and :func:`image_size` for the size), so a file scores
exactly as it was trained on. The rules, for every Pillow mode:

- **Orientation**: the EXIF orientation tag (274) of the file header (JPEG, TIFF, WebP, a PNG
  ``eXIf`` chunk before the pixel data) is applied, as phone galleries and browsers do: a phone
  photo stored sideways with tag 6 is used upright, with its width and height swapped.
- **Alpha** (RGBA, LA, PA, RGBa, La, P/L/RGB with a transparent colour): composited over a
  white background (``Image.alpha_composite``), as on a white page.
- **High bit depth**: 16-bit samples keep their top 8 bits (``v >> 8``), the rule Pillow
  itself applies when it reads 48-bit RGB and 64-bit RGBA files; mode ``I`` (32-bit integer,
  how some 16-bit files open) is read as 16-bit with values clipped to 0..65535; mode ``F``
  (32-bit float) as 0..1, clipped, rounded to the nearest of 256 levels.
- **Other modes** (1, L, P, CMYK, YCbCr): Pillow's conversion to RGB. Embedded ICC profiles
  are not applied (pixel values are used as stored, as CLIP's preprocessing does).
- Animated and multi-page files: the first frame.
- **Size limit**: at most ``MAX_IMAGE_PIXELS`` = 8192 x 8192 pixels (16 times the largest image
  of the supported databases, 2048 x 2048; one such image takes 192 MiB decoded). Larger files
  are refused from their header, before decoding.

Every failure is an :class:`ImageReadError` (a ``UserError`` and an ``OSError``) whose one-line
message names the file and the reason.
"""
from __future__ import annotations

import os
import re
from typing import Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import UserError
from ..names import shown

__all__ = ["ImageReadError", "ImageNotFoundError", "MAX_IMAGE_PIXELS", "read_image",
           "image_size", "to_display_rgb", "exif_orientation"]

MAX_IMAGE_PIXELS = 8192 * 8192
_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transposition that shows the picture upright (EXIF 2.32, tag 274).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_WHITE = (255, 255, 255, 255)
_WORKER_TRACEBACK = re.compile(r"^\S*ImageReadError: (.*)$")


class ImageReadError(UserError, OSError):
    """An image file is missing, too large, or cannot be decoded; the message names the file.

    A DataLoader worker process re-raises it in the main process with its traceback as the
    message; only the original one-line message is kept.
    """

    def __init__(self, message: str = "", path: Optional[str] = None,
                 reason: Optional[str] = None) -> None:
        if path is not None and not message:
            message = f"Cannot read image file {shown(path)}: {reason}"
        self.path, self.reason = path, reason
        if "Original Traceback" in message:
            for line in reversed(message.strip().splitlines()):
                match = _WORKER_TRACEBACK.match(line.strip())
                if match:
                    message = match.group(1)
                    break
        super().__init__(message)


class ImageNotFoundError(ImageReadError, FileNotFoundError):
    """The image file does not exist."""


def exif_orientation(img: Image.Image) -> int:
    """EXIF orientation (1..8; 1 = upright) of an opened image, from its header only.

    A PNG's ``eXIf`` chunk counts only when it precedes the pixel data (reading one placed after
    them would mean decoding the whole file to learn its size). Malformed tags count as 1.
    """
    if img.format == "PNG" and "exif" not in img.info:
        return 1
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a malformed EXIF block must not make the picture unreadable
        return 1
    return value if isinstance(value, int) and value in _UPRIGHT else 1


def _too_large(path: str, pixels: int, size: str = "") -> ImageReadError:
    return ImageReadError(path=path, reason=(
        f"too large: {size}{pixels:,} pixels, more than the limit of 8192 x 8192 = "
        f"{MAX_IMAGE_PIXELS:,} pixels; downscale it"))


def _open(path: str) -> Image.Image:
    """Open ``path`` (header only) after the existence and pixel-limit checks."""
    if not os.path.isfile(path):
        raise ImageNotFoundError(f"Image file not found: {shown(path)}", path=path,
                                 reason="FileNotFoundError: no such file")
    try:
        img = Image.open(path)
    except Image.DecompressionBombError as exc:  # beyond twice Pillow's own limit
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(path, int(found.group(1)) if found else 0) from None
    except UnidentifiedImageError:
        raise ImageReadError(path=path, reason="cannot identify image file: not an image, or a "
                                               "format Pillow cannot read "
                                               f"({_first_bytes(path)})") from None
    except Exception as exc:
        raise ImageReadError(path=path, reason=_reason(exc)) from None
    if img.width * img.height > MAX_IMAGE_PIXELS:
        img.close()
        raise _too_large(path, img.width * img.height, f"{img.width} x {img.height} = ")
    return img


def image_size(path: str) -> tuple[int, int]:
    """``(height, width)`` of an image file as :func:`read_image` returns it (EXIF orientation
    applied), from its header: no pixel decoding. Raises ``ImageReadError``."""
    with _open(os.fspath(path)) as img:
        width, height = img.size
        swapped = exif_orientation(img) in (5, 6, 7, 8)
    return (width, height) if swapped else (height, width)


def read_image(path: str, reduce: int = 1) -> Image.Image:
    """Read an image file as the RGB ``PIL.Image`` a viewer shows (rules in the module doc).

    ``reduce`` > 1 lets JPEG files decode at 1/2, 1/4 or 1/8 of their size (every compressed
    byte is still decoded; for the up-front check); other formats ignore it. Raises
    ``ImageNotFoundError`` for a missing file and ``ImageReadError`` naming the file for one
    that is too large or cannot be decoded.
    """
    path = os.fspath(path)
    with _open(path) as img:
        try:
            orientation = exif_orientation(img)
            if reduce > 1 and img.format == "JPEG":
                img.draft("RGB", (max(1, img.width // reduce), max(1, img.height // reduce)))
            img.load()
            rgb = _rgb(img)
        except ImageReadError:
            raise
        except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ... per codec
            raise ImageReadError(path=path, reason=_reason(exc)) from None
    return rgb.transpose(_UPRIGHT[orientation]) if orientation != 1 else rgb


def to_display_rgb(img: Image.Image) -> Image.Image:
    """An in-memory ``PIL.Image`` as :func:`read_image` would return it from its file
    (orientation from its EXIF, same mode rules). Raises ``ImageReadError`` for a mode that has
    no RGB rendering (e.g. LAB, HSV)."""
    orientation = exif_orientation(img)
    try:
        rgb = _rgb(img)
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(f"Cannot convert a {img.mode} image to RGB: {_reason(exc)}") from None
    return rgb.transpose(_UPRIGHT[orientation]) if orientation != 1 else rgb


def _rgb(img: Image.Image) -> Image.Image:
    """Mode rules of the module doc: any decoded image -> a new RGB image."""
    mode = img.mode
    if mode == "I" or mode.startswith("I;16"):
        values = np.asarray(img).astype(np.int64)
        grey = (np.clip(values, 0, 65535) >> 8).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0)
        grey = np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")
    return img.convert("RGB")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _first_bytes(path: str) -> str:
    """What an unidentified file looks like, in words ("empty file", "starts with '<html'")."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        return f"cannot be opened: {exc.strerror}"
    if not head:
        return "empty file"
    if head.lstrip().lower().startswith((b"<!doctype", b"<html", b"<?xml")):
        return "an HTML/XML page, e.g. a download error page"
    return f"starts with {head[:8]!r}"



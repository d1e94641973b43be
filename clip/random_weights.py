"""Seeded random CLIP weights in OpenAI's state-dict layout, for tests, demos and benchmarks.

Presets: the real shapes of "ViT-B/16", "ViT-B/32" and "RN50", and two tiny models that build
and run in milliseconds on a CPU while still taking 224x224 images (so the real preprocessing
applies) and the full 77-token, 49,408-id text input:
- "tiny-vit": vision width 64, 2 layers, patch 16; text width 64, 2 layers; embed dim 64;
- "tiny-rn":  modified ResNet, one block per stage, stem width 8 (final width 256); same text tower.
Normalisation layers get random affine parameters and running statistics (not the identity
they start from) so that a test comparing two implementations exercises every tensor.
"""
from __future__ import annotations

import argparse
import errno
import io
import os
import sys
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

# torch (and .model) are imported where used, so that --help answers without them.

__all__ = ["PRESETS", "random_state_dict", "save_random_weights"]

_TEXT = dict(context_length=77, vocab_size=49408)
_BASE_TEXT = dict(_TEXT, transformer_width=512, transformer_heads=8, transformer_layers=12)
_TINY_TEXT = dict(_TEXT, transformer_width=64, transformer_heads=1, transformer_layers=2)

# Preset name -> CLIP(...) keyword arguments.
PRESETS: dict[str, dict] = {
    "ViT-B/16": dict(_BASE_TEXT, embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                     vision_patch_size=16),
    "ViT-B/32": dict(_BASE_TEXT, embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                     vision_patch_size=32),
    "RN50": dict(_BASE_TEXT, embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                 vision_patch_size=None),
    "tiny-vit": dict(_TINY_TEXT, embed_dim=64, image_resolution=224, vision_layers=2, vision_width=64,
                     vision_patch_size=16),
    "tiny-rn": dict(_TINY_TEXT, embed_dim=64, image_resolution=224, vision_layers=(1, 1, 1, 1), vision_width=8,
                    vision_patch_size=None),
}


def _randomize_normalization(model: nn.Module) -> None:
    """Affine parameters around (1, 0), running mean around 0, running variance in [0.5, 1.5]."""
    from torch import nn

    for module in model.modules():
        if isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
            nn.init.normal_(module.weight, mean=1.0, std=0.1)
            nn.init.normal_(module.bias, std=0.05)
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(std=0.05)
            module.running_var.uniform_(0.5, 1.5)


def _randomize_biases(model: nn.Module) -> None:
    """Small random biases instead of zeros, so a swapped or dropped bias changes the output."""
    from torch import nn

    for name, param in model.named_parameters():
        if name.endswith("bias"):
            nn.init.normal_(param, std=0.02)


def random_state_dict(arch: str = "tiny-vit", seed: int = 0, overrides: dict | None = None
                      ) -> dict[str, torch.Tensor]:
    """OpenAI-layout state dict of a randomly initialised CLIP (fp32 floats; BN counters int64).

    ``overrides`` replaces preset ``CLIP(...)`` arguments, e.g. ``{"transformer_layers": 2}`` for
    a full-width but shallow model in a fast test. Deterministic for given arguments; leaves the
    global torch RNG untouched.
    """
    import torch

    from .model import CLIP

    if arch not in PRESETS:
        raise ValueError(f"unknown random-weights preset {arch!r}; choose one of {list(PRESETS)}")
    config = dict(PRESETS[arch], **(overrides or {}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIP(**config)
        with torch.no_grad():
            _randomize_biases(model)
            _randomize_normalization(model)
    # The model is discarded, so its tensors are handed out without a copy.
    return {k: v.detach() for k, v in model.state_dict().items()}


def save_random_weights(path: str, arch: str = "tiny-vit", seed: int = 0) -> str:
    """Write ``random_state_dict(arch, seed)`` in ``torch.save``'s format (atomically); return ``path``.

    The file is serialised in memory first and its bytes written to a temporary file that is
    renamed over ``path``, so a full or read-only disk raises a plain ``OSError`` with its
    errno and ``filename`` = ``path`` (not torch's zip writer's ``RuntimeError``), and an
    earlier file at ``path`` is kept.
    """
    import torch

    path = os.fspath(path)
    buffer = io.BytesIO()
    torch.save(random_state_dict(arch, seed), buffer)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".random_clip.", suffix=".part", dir=folder)
        os.close(fd)
        with open(tmp, "wb") as out:
            out.write(buffer.getbuffer())
        os.replace(tmp, path)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, path) from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path


# A failed write's errno in the project's words (the same as dassl.utils.errors.write_failure,
# which ``clip`` may not import; tests/test_full_disk.py checks that they agree).
_WRITE_FAILURES = {errno.ENOSPC: "no space left on the device",
                   errno.EDQUOT: "the disk quota is exceeded (no space left for this user)",
                   errno.EROFS: "the file system is read-only"}


def _write_problem(exc: OSError) -> str:
    """Why a write failed, in words: a full disk, exceeded quota, read-only file system, else
    the system's message."""
    return _WRITE_FAILURES.get(exc.errno) or exc.strerror or str(exc)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m clip.random_weights",
        description="Write seeded random CLIP weights (OpenAI's state-dict layout, torch.save) to one "
                    "file, for trying the pipeline without the real weights: pass the file's path as "
                    "MODEL.BACKBONE.NAME (e.g. train.py ... MODEL.BACKBONE.NAME weights/tiny-vit.pt). The scores such weights give "
                    "mean nothing.")
    parser.add_argument("output", help="file to write, e.g. weights/tiny-vit.pt (folders are made)")
    parser.add_argument("--arch", default="tiny-vit", choices=list(PRESETS),
                        help="preset: real shapes of a published model, or a tiny CPU-fast one "
                             "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command line: write ``save_random_weights(output, arch, seed)`` and name the file written."""
    args = _parse_args(argv)
    if os.path.isdir(args.output):
        print(f"error: {args.output!r} is a folder; give the path of the weights file to write, "
              f"e.g. {os.path.join(args.output, args.arch.replace('/', '-') + '.pt')}", file=sys.stderr)
        return 2
    try:
        path = save_random_weights(args.output, args.arch, args.seed)
    except OSError as exc:
        print(f"error: cannot write {exc.filename or args.output}: {_write_problem(exc)}", file=sys.stderr)
        return 2
    print(f"Wrote random {args.arch} CLIP weights (seed {args.seed}) to {os.path.abspath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

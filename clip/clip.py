"""OpenAI-compatible CLIP entry points: ``available_models``, ``load``, ``tokenize``, ``build_model``.

Module-level names that prompt-learning code (CoOp, CLIP-AGIQA) uses are kept: ``_MODELS``
(name -> OpenAI URL, the same dict object as ``clip.weights.MODELS``), ``_download(url, root)``
and ``_transform(n_px)``.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from PIL import Image
from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Normalize, Resize, ToTensor

from . import weights
from .checkpoint import CheckpointError, model_from_file, read_state_dict
from .model import CLIP, build_model
from .simple_tokenizer import SimpleTokenizer
from .weights import DownloadError, WeightsNotFoundError

__all__ = ["available_models", "load", "load_weights", "tokenize", "build_model", "TextTooLongError",
           "CheckpointError", "DownloadError", "WeightsNotFoundError", "read_state_dict", "OPENAI_MEAN",
           "OPENAI_STD"]

_MODELS = weights.MODELS
# Per-channel RGB statistics of CLIP's training images, for inputs in [0, 1].
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class TextTooLongError(ValueError, RuntimeError):
    """A text needs more tokens than the context length (also a RuntimeError, as upstream raised)."""


def available_models() -> list[str]:
    """Names accepted by ``load`` besides file paths."""
    return list(_MODELS)


def _download(url: str, root: str | None = None) -> str:
    """Verified download of an OpenAI URL into the cache folder; returns the local path."""
    return weights.download(url, root)


def _convert_to_rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def _transform(n_px: int) -> Compose:
    """CLIP preprocessing: bicubic resize of the short side to ``n_px``, centre crop, RGB, tensor
    in [0, 1], normalise -> ``(3, n_px, n_px)`` float32."""
    return Compose([
        Resize(n_px, interpolation=InterpolationMode.BICUBIC),
        CenterCrop(n_px),
        _convert_to_rgb,
        ToTensor(),
        Normalize(OPENAI_MEAN, OPENAI_STD),
    ])


def load(name: str, device: str | torch.device = "cpu", jit: bool = False,
         download_root: str | None = None) -> tuple[CLIP, Compose]:
    """Load a CLIP model by name (``available_models()``) or from a weights file.

    Returns ``(model, preprocess)``: the Python model in eval mode on ``device`` (fp32 on the
    CPU, mixed fp16 elsewhere, as OpenAI's ``load``) and the matching image transform. Names are
    resolved through the cache folder, OpenAI's URL and the Hugging Face mirror (see
    ``clip.weights``); files may be TorchScript archives, ``torch.save`` state dicts or
    ``.safetensors``. ``jit=True`` (returning OpenAI's TorchScript module) is not supported:
    the mirror has no TorchScript files and the Python model is what callers fine-tune.
    """
    if jit:
        raise ValueError("jit=True is not supported: clip.load always returns the Python model "
                         "(use torch.compile(model) for speed)")
    path = weights.resolve_weights(name, download_root)
    model = model_from_file(path).to(device)
    if torch.device(device).type == "cpu":
        model = model.float()
    return model, _transform(model.visual.input_resolution)


def load_weights(name: str, download_root: str | None = None) -> dict[str, torch.Tensor]:
    """State dict (CPU, dtypes as stored) of a model name or weights file, resolved like ``load``.

    For callers that build the model themselves, e.g. ``build_model(load_weights("ViT-B/16"))``
    gives OpenAI's mixed-fp16 model on the CPU (where ``load`` would return fp32).
    """
    return read_state_dict(weights.resolve_weights(name, download_root))


@lru_cache(maxsize=1)
def _tokenizer() -> SimpleTokenizer:
    # Built on first use: reading the 49k merges takes a noticeable fraction of a second.
    return SimpleTokenizer()


def tokenize(texts: str | list[str], context_length: int = 77, truncate: bool = False) -> torch.Tensor:
    """Token ids ``(N, context_length)`` int64: start token, BPE ids, end token, zero padding.

    A text longer than ``context_length`` tokens (start and end included) raises
    ``TextTooLongError`` unless ``truncate=True``, which keeps the first ``context_length`` ids
    and puts the end token last (the text feature is read there).
    """
    if isinstance(texts, str):
        texts = [texts]
    if context_length < 2:
        raise ValueError(f"context_length must be at least 2 (start and end tokens), got {context_length}")
    tokenizer = _tokenizer()
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for row, text in enumerate(texts):
        ids = [tokenizer.sot_token] + tokenizer.encode(text) + [tokenizer.eot_token]
        if len(ids) > context_length:
            if not truncate:
                raise TextTooLongError(f"Input {text!r} is too long for context length {context_length} "
                                       f"({len(ids)} tokens); shorten it or pass truncate=True")
            ids = ids[:context_length]
            ids[-1] = tokenizer.eot_token
        result[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
    return result

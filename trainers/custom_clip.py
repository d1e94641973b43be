"""CLIP-AGIQA's model: frozen CLIP encoders, learnable level prompts and a regression MLP.

The image encoding is separable from the rest (`encode_image`), so image features can be
precomputed in large batches and fed to `regress` directly. Units: predictions are on the MOS
scale of the training labels (unbounded regression output).
"""
from __future__ import annotations

import os
from typing import Sequence

import torch
from torch import nn
from yacs.config import CfgNode

from clip import clip
from clip.weights import resolve_weights

from .prompt_learner import PromptLearner, TextEncoder

# Hidden width and dropout probability of the regression head (upstream values).
HEAD_HIDDEN = 512
HEAD_DROPOUT = 0.5


def load_clip_to_cpu(cfg: CfgNode) -> nn.Module:
    """CLIP named by `MODEL.BACKBONE.NAME`, on the CPU in eval mode, mixed fp16 (OpenAI layout).

    The name is an OpenAI model name (e.g. "ViT-B/16", fetched into the CLIP cache) or the path
    of a weights file in any format `clip.load` reads (TorchScript archive, `torch.save` state
    dict, `.safetensors`), so offline runs and tests can point at a local file.
    """
    name = cfg.MODEL.BACKBONE.NAME
    if not name:
        raise ValueError(
            "MODEL.BACKBONE.NAME is empty: give a CLIP model name "
            f"({', '.join(clip.available_models())}) or the path of a CLIP weights file"
        )
    path = resolve_weights(os.path.expanduser(name))
    return clip.build_model(clip.read_state_dict(path)).eval()


def build_regression_head(in_features: int) -> nn.Sequential:
    """Dropout -> Linear(in, 512) -> ReLU -> Dropout -> Linear(512, 1), in fp32.

    Indices 1 and 4 hold the Linear layers, matching the upstream state-dict keys
    `1.weight, 1.bias, 4.weight, 4.bias`.
    """
    return nn.Sequential(
        nn.Dropout(p=HEAD_DROPOUT),
        nn.Linear(in_features, HEAD_HIDDEN),
        nn.ReLU(inplace=True),
        nn.Dropout(p=HEAD_DROPOUT),
        nn.Linear(HEAD_HIDDEN, 1),
    )


class CustomCLIP(nn.Module):
    """Predicts MOS from an image and the learnable quality-level prompts.

    `forward(image (B, 3, H, W)) -> (B,)` float32 =
    `regress(encode_image(image), text_features())`. The head sees, per image,
    `[image feature | level_0 feature | ... | level_{L-1} feature]` (all L2-normalised), i.e.
    `embed_dim * (1 + n_levels)` inputs.
    """

    def __init__(self, cfg: CfgNode, classnames: Sequence[str], clip_model: nn.Module) -> None:
        super().__init__()
        self.prompt_learner = PromptLearner(cfg, classnames, clip_model)
        self.image_encoder = clip_model.visual
        self.text_encoder = TextEncoder(clip_model)
        self.embed_dim = int(clip_model.text_projection.shape[1])
        self.n_levels = len(classnames)
        self.regression = build_regression_head(self.embed_dim * (1 + self.n_levels))
        self._text_cache: tuple[tuple, torch.Tensor] | None = None

    @property
    def tokenized_prompts(self) -> torch.Tensor:
        """`(n_levels, L)` int64 token ids of the prompts (a buffer of the prompt learner)."""
        return self.prompt_learner.tokenized_prompts

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of the image tower (both OpenAI ViT and ResNet towers have `conv1`)."""
        return self.image_encoder.conv1.weight.dtype

    def train(self, mode: bool = True) -> "CustomCLIP":
        """Set train/eval mode; the frozen CLIP encoders always stay in eval mode."""
        super().train(mode)
        self.image_encoder.eval()
        self.text_encoder.eval()
        if mode:
            self._text_cache = None
        return self

    def _apply(self, fn, *args, **kwargs):
        # Device/dtype moves replace the tensors the cached text features were computed from.
        self._text_cache = None
        return super()._apply(fn, *args, **kwargs)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` float images -> `(B, embed_dim)` float32, L2-normalised.

        Normalised in the CLIP dtype before the cast, as upstream does.
        """
        features = self.image_encoder(image.type(self.dtype))
        features = features / features.norm(dim=-1, keepdim=True)
        return features.float()

    def _text_cache_key(self) -> tuple:
        pl = self.prompt_learner
        autocast = torch.is_autocast_enabled(pl.ctx.device.type)
        # `_version` changes with every in-place update (optimizer step, load_state_dict copy).
        return tuple((t._version, t.data_ptr(), t.dtype, t.device) for t in
                     (pl.ctx, pl.token_prefix, pl.token_suffix)) + (autocast,)

    def text_features(self) -> torch.Tensor:
        """`(n_levels, embed_dim)` float32 L2-normalised features of the level prompts.

        In eval mode without autograd (e.g. `test()`), the result is cached until the context
        vectors or prompt buffers change in place, the model moves, or it is switched to train
        mode. With autograd on, it is always recomputed so gradients reach `ctx`.
        """
        cacheable = not self.training and not torch.is_grad_enabled()
        key = self._text_cache_key() if cacheable else None
        if cacheable and self._text_cache is not None and self._text_cache[0] == key:
            return self._text_cache[1]
        prompts = self.prompt_learner()
        features = self.text_encoder(prompts, self.prompt_learner.tokenized_prompts)
        features = features / features.norm(dim=-1, keepdim=True)
        features = features.float()
        self._text_cache = (key, features) if cacheable else None
        return features

    def regress(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """Head on `(B, D)` image and `(n_levels, D)` text features -> `(B,)` predicted MOS.

        One batched concat `[image | text.flatten()]` per row instead of a per-sample loop.
        """
        batch = image_features.shape[0]
        flat_text = text_features.reshape(1, -1).expand(batch, -1)
        head_input = torch.cat([image_features, flat_text.to(image_features.dtype)], dim=1)
        return self.regression(head_input).squeeze(1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.regress(self.encode_image(image), self.text_features())

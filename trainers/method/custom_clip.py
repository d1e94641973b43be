"""CLIP-AGIQA's model: frozen CLIP encoders, learnable level prompts and a regression MLP.

The model takes plain arguments; `CustomCLIP.from_spec(spec, clip_model)` builds it from a
`ModelSpec` (trainers.method.model_spec). The image encoding is separable from the rest
(`encode_image`), so image features can be precomputed in large batches and fed to `regress`
directly. Units: predictions are on the MOS scale of the training labels (unbounded regression
output), also when the head is trained on standardised targets (`standardize_target`). What the
head reads is set by `head_input` (see `build_head_input`).
"""
from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode

from clip import clip
from clip.checkpoint import model_from_file
from clip.weights import resolve_weights
from dassl.utils.errors import ConfigError

from .compiled import CompiledForward
from .encoder_tuning import attach_encoder_tuning
from .model_spec import ModelSpec
from .precision import cast_clip
from .prompt_learner import PromptLearner, TextEncoder
from .prompt_template import ConditionedPromptTokens, conditioned_embeddings
from .similarity_head import SimilarityHead

# Hidden width and default dropout probability of the regression head (upstream values).
HEAD_HIDDEN = 512
HEAD_DROPOUT = ModelSpec.head_dropout
# The trained modules, each checkpointed in its own sub-folder of a run, in registration order;
# a model that fine-tunes the image encoder (TRAIN_IMAGE_ENCODER) adds ENCODER_MODULE.
MODULE_NAMES = ("prompt_learner", "regression")
ENCODER_MODULE = "image_encoder"
# Keys a module's checkpoint need not hold and loading leaves alone: the prompt buffers, which
# are recomputed from the level names.
IGNORED_ON_LOAD = {"prompt_learner": frozenset({"token_prefix", "token_suffix"})}


def module_names(spec: ModelSpec) -> tuple[str, ...]:
    """Checkpointed modules of the model `spec` describes, in registration order."""
    return MODULE_NAMES + ((ENCODER_MODULE,) if spec.train_image_encoder != "none" else ())


def load_clip(backbone: str, precision: str = "fp16") -> nn.Module:
    """CLIP named by `backbone`, on the CPU in eval mode, in the layout of the effective
    `precision` (`trainers.method.precision.cast_clip`): OpenAI's mixed fp16 as loaded for "fp16",
    float32 for "fp32" and "amp", the mixed layout in bfloat16 for "bf16".

    `backbone` is an OpenAI model name (e.g. "ViT-B/16", fetched into the CLIP cache) or the path
    of a weights file in any format `clip.load` reads (TorchScript archive, `torch.save` state
    dict, `.safetensors`), so offline runs and tests can point at a local file.
    """
    if not backbone:
        raise ConfigError(
            "MODEL.BACKBONE.NAME is empty: give a CLIP model name "
            f"({', '.join(clip.available_models())}) or the path of a CLIP weights file"
        )
    path = resolve_weights(os.path.expanduser(backbone))
    # model_from_file reports a state dict of another architecture as clip's CheckpointError.
    clip_model = model_from_file(path).eval()
    if precision != "fp16":
        cast_clip(clip_model, precision)
    return clip_model


def load_clip_to_cpu(cfg: CfgNode) -> nn.Module:
    """`load_clip(cfg.MODEL.BACKBONE.NAME)`: OpenAI's mixed fp16 (CoOp's function name)."""
    return load_clip(cfg.MODEL.BACKBONE.NAME)


def head_input_size(head_input: str, embed_dim: int, n_levels: int) -> int:
    """Number of regression-head inputs for `TRAINER.CLIP_AGIQA.HEAD_INPUT`.

    image_text: `embed_dim * (1 + n_levels)`; image: `embed_dim`; text: `embed_dim * n_levels`.
    """
    sizes = {"image_text": embed_dim * (1 + n_levels), "image": embed_dim,
             "text": embed_dim * n_levels}
    if head_input not in sizes:
        raise ValueError(f"TRAINER.CLIP_AGIQA.HEAD_INPUT must be one of {tuple(sizes)}, "
                         f"got {head_input!r}")
    return sizes[head_input]


def build_head_input(head_input: str, image_features: torch.Tensor,
                     text_features: torch.Tensor | None) -> torch.Tensor:
    """Per-image head input `(B, head_input_size)` from `(B, D)` image and `(L, D)` text features
    (or `(B, L, D)`: per-image level prompts, `TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE`).

    - image_text: `[image | level_0 | ... | level_{L-1}]` (upstream);
    - image: the image feature alone (the prompts play no part);
    - text: `[s_0 * level_0 | ... | s_{L-1} * level_{L-1}]` with `s_l` the cosine similarity of the
      image to level `l` (both L2-normalised). The level features alone are the same for every
      image, so the image reaches the head only through these similarities.
    """
    if head_input == "image":
        return image_features
    if text_features is None:
        raise ValueError(f"HEAD_INPUT {head_input!r} needs the level-prompt features")
    text = text_features.to(image_features.dtype)
    batch = image_features.shape[0]
    shared = text.dim() == 2
    if head_input == "image_text":
        flat = text.reshape(1, -1).expand(batch, -1) if shared else text.reshape(batch, -1)
        return torch.cat([image_features, flat], dim=1)
    if head_input == "text":
        if shared:
            similarity = image_features @ text.t()                   # (B, L)
            return (similarity.unsqueeze(-1) * text.unsqueeze(0)).reshape(batch, -1)
        similarity = torch.einsum("bd,bld->bl", image_features, text)
        return (similarity.unsqueeze(-1) * text).reshape(batch, -1)
    raise ValueError(f"TRAINER.CLIP_AGIQA.HEAD_INPUT must be image_text, image or text, "
                     f"got {head_input!r}")


class RegressionHead(nn.Sequential):
    """Dropout -> Linear(in, 512) -> ReLU -> Dropout -> Linear(512, 1) in fp32: `(B, in) -> (B, 1)`.

    Both Dropout layers drop with probability `dropout` (upstream 0.5).

    Indices 1 and 4 hold the Linear layers, matching the upstream state-dict keys
    `1.weight, 1.bias, 4.weight, 4.bias`. With `standardize=True` the Linear layers predict the
    standardised target `z = (mos - mean) / std` and `forward` returns `z * std + mean` (MOS
    units); `target_mean` and `target_std` (0-d float32, MOS units) are then buffers saved with
    the head's checkpoint. Without it the state dict has exactly the four upstream keys.
    """

    def __init__(self, in_features: int, standardize: bool = False,
                 target_stats: tuple[float, float] | None = None,
                 dropout: float = HEAD_DROPOUT) -> None:
        super().__init__(
            nn.Dropout(p=dropout),
            nn.Linear(in_features, HEAD_HIDDEN),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(HEAD_HIDDEN, 1),
        )
        self.standardize = bool(standardize)
        if self.standardize:
            # NaN placeholders are overwritten by load_state_dict; training with them fails loudly.
            mean, std = target_stats if target_stats is not None else (float("nan"),) * 2
            self.register_buffer("target_mean", torch.tensor(float(mean)))
            self.register_buffer("target_std", torch.tensor(float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if self.standardize:
            out = out * self.target_std + self.target_mean
        return out


def training_target_stats(items: Sequence) -> tuple[float, float]:
    """`(mean, std)` of the MOS of `items` (Datum-like, e.g. the training split), in MOS units,
    for a head with `standardize_target`. The std is the population one (ddof 0).

    Raises `ConfigError` (a `ValueError`) when an item has no MOS, or fewer than two items / a
    constant MOS leave the std undefined or zero.
    """
    values = [getattr(item, "mos", None) for item in items]
    if any(v is None for v in values):
        raise ConfigError("TRAINER.CLIP_AGIQA.STANDARDIZE_TARGET needs a MOS for every training "
                         "image, but some have none")
    mos = torch.tensor(values, dtype=torch.float64)
    std = float(mos.std(unbiased=False)) if mos.numel() else 0.0
    if mos.numel() < 2 or not std > 0:
        raise ConfigError("TRAINER.CLIP_AGIQA.STANDARDIZE_TARGET: the training MOS have no spread "
                         f"({mos.numel()} images, std {std}); cannot standardise")
    return float(mos.mean()), std


class CustomCLIP(nn.Module):
    """Predicts MOS from an image and the learnable quality-level prompts.

    `forward(image (B, 3, H, W)) -> (B,)` float32 MOS =
    `regress(encode_image(image), text_features())`. What the head sees per image is set by
    `head_input` (see `build_head_input`); upstream ("image_text") is
    `[image feature | level_0 feature | ... | level_{L-1} feature]` (all L2-normalised), i.e.
    `embed_dim * (1 + n_levels)` inputs. `target_stats` `(mean, std)` of the training MOS is
    required to train with `standardize_target` (see `training_target_stats`); without it the
    head's statistics are NaN placeholders meant to be filled from a checkpoint. The prompt
    arguments are those of `PromptLearner`.
    """

    def __init__(self, level_names: Sequence[str], clip_model: nn.Module, *, n_ctx: int = 16,
                 ctx_init: str = "", csc: bool = False, class_token_position: str = "end",
                 head_input: str = "image_text", head_dropout: float = HEAD_DROPOUT,
                 standardize_target: bool = False, head: str = "mlp", prompt_template: str = "",
                 train_image_encoder: str = "none", encoder_last_k: int = 1, lora_rank: int = 4,
                 fp32_ctx: bool = False, target_stats: tuple[float, float] | None = None,
                 mos_range: tuple[float, float] | None = None) -> None:
        super().__init__()
        self.prompt_learner = PromptLearner(level_names, clip_model, n_ctx=n_ctx,
                                            ctx_init=ctx_init, csc=csc,
                                            class_token_position=class_token_position,
                                            fp32_ctx=fp32_ctx)
        self.image_encoder = clip_model.visual
        self.text_encoder = TextEncoder(clip_model)
        self.embed_dim = int(clip_model.text_projection.shape[1])
        # CLIP's own (frozen) logit scale, exp of the stored log scale: the zero-shot reading.
        self.clip_logit_scale = float(clip_model.logit_scale.detach().float().exp())
        self.n_levels = len(level_names)
        self.head_input = head_input
        self.head = head
        if self.head == "similarity":
            # The head's logit scale is CLIP's own (exp of the stored log scale), frozen.
            self.regression = SimilarityHead(
                self.n_levels, float(clip_model.logit_scale.detach().float().exp()), mos_range)
        else:
            self.head_in_features = head_input_size(self.head_input, self.embed_dim,
                                                    self.n_levels)
            self.regression = RegressionHead(self.head_in_features, standardize_target,
                                             target_stats, dropout=head_dropout)
        # Trainable part of the image encoder (last_k / lora), else None.
        self.encoder_tuning = attach_encoder_tuning(
            self.image_encoder, train_image_encoder, encoder_last_k, lora_rank)
        self.conditioned_tokens = None
        if prompt_template:
            self.token_embedding = clip_model.token_embedding
            self.conditioned_tokens = ConditionedPromptTokens(
                " ".join(["X"] * self.prompt_learner.n_ctx), level_names, prompt_template,
                int(clip_model.positional_embedding.shape[0]))
        self._text_cache: tuple[tuple, torch.Tensor] | None = None
        # The image encoder's compiled forward (`compile_image_encoder`), else None.
        self.compiled_image_encoder: CompiledForward | None = None

    @classmethod
    def from_spec(cls, spec: ModelSpec, clip_model: nn.Module,
                  target_stats: tuple[float, float] | None = None,
                  mos_range: tuple[float, float] | None = None) -> "CustomCLIP":
        """The model `spec` describes, on `clip_model` (loaded with `load_clip(spec.backbone,
        spec.precision)`); `target_stats` for a standardised head, `mos_range` for the
        similarity head (training MOS range). Raises `ConfigError` (a `ValueError`) when the
        spec's input size is not the CLIP input resolution."""
        resolution = int(clip_model.visual.input_resolution)
        size = tuple(spec.test_input.size)
        if size != (resolution, resolution):
            raise ConfigError(f"INPUT.SIZE {size} must equal the CLIP input resolution "
                             f"({resolution}, {resolution}) of backbone {spec.backbone!r}")
        return cls(spec.level_names, clip_model, n_ctx=spec.n_ctx, ctx_init=spec.ctx_init,
                   csc=spec.csc, class_token_position=spec.class_token_position,
                   head_input=spec.head_input, head_dropout=spec.head_dropout,
                   standardize_target=spec.standardize_target, head=spec.head, prompt_template=spec.prompt_template,
                   train_image_encoder=spec.train_image_encoder,
                   encoder_last_k=spec.encoder_last_k, lora_rank=spec.lora_rank,
                   fp32_ctx=spec.fp32_ctx, target_stats=target_stats, mos_range=mos_range)

    def checkpointed_modules(self) -> dict[str, nn.Module]:
        """`{checkpoint folder: module}` of the trained parts, in registration order (see
        `module_names`)."""
        modules = {"prompt_learner": self.prompt_learner, "regression": self.regression}
        if self.encoder_tuning is not None:
            modules[ENCODER_MODULE] = self.encoder_tuning
        return modules

    @property
    def tokenized_prompts(self) -> torch.Tensor:
        """`(n_levels, L)` int64 token ids of the prompts (a buffer of the prompt learner)."""
        return self.prompt_learner.tokenized_prompts

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of the image tower (both OpenAI ViT and ResNet towers have `conv1`)."""
        return self.image_encoder.conv1.weight.dtype

    def train(self, mode: bool = True) -> "CustomCLIP":
        """Set train/eval mode; the CLIP encoders always stay in eval mode (the ViT has no
        dropout or batch norm, so a fine-tuned encoder computes the same in either mode)."""
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

    def compile_image_encoder(self, log=print) -> CompiledForward:
        """Compute `encode_image` through `torch.compile` (`TRAINER.CLIP_AGIQA.COMPILE`); a
        compile that fails falls back to the uncompiled encoder with one line to `log`
        (`trainers.method.compiled`). Only for a frozen encoder (TRAIN_IMAGE_ENCODER none)."""
        if self.encoder_tuning is not None:
            raise ValueError("compile_image_encoder compiles the frozen image encoder; this one "
                             "trains (TRAIN_IMAGE_ENCODER)")
        self.compiled_image_encoder = CompiledForward(self.image_encoder, log)
        return self.compiled_image_encoder

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """`(B, 3, H, W)` float images -> `(B, embed_dim)` float32, L2-normalised.

        Normalised in the CLIP dtype before the cast, as upstream does. Through the compiled
        encoder after `compile_image_encoder`.
        """
        encoder = self.compiled_image_encoder or self.image_encoder
        features = encoder(image.type(self.dtype))
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
        features = self.text_encoder(prompts, self.prompt_learner.tokenized_prompts,
                                     self.prompt_learner.n_used_tokens)
        features = features / features.norm(dim=-1, keepdim=True)
        features = features.float()
        self._text_cache = (key, features) if cacheable else None
        return features

    def conditioned_text_features(self, prompts: Sequence[str]) -> torch.Tensor:
        """`(B, n_levels, embed_dim)` float32 L2-normalised features of the level prompts that
        carry each image's generation prompt (`PROMPT_TEMPLATE`); B x L sequences in one batch."""
        if self.conditioned_tokens is None:
            raise ValueError("TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE is empty: the level prompts "
                             "carry no generation prompt")
        ids = self.conditioned_tokens.ids(prompts).to(self.prompt_learner.ctx.device)
        batch, n_levels, length = ids.shape
        embedded = conditioned_embeddings(self.prompt_learner.ctx, self.token_embedding, ids)
        flat_ids = ids.reshape(batch * n_levels, length)
        used = int(flat_ids.argmax(dim=-1).max()) + 1
        features = self.text_encoder(embedded, flat_ids, used)
        features = features / features.norm(dim=-1, keepdim=True)
        return features.float().reshape(batch, n_levels, -1)

    def regress(self, image_features: torch.Tensor,
                text_features: torch.Tensor | None) -> torch.Tensor:
        """Head on `(B, D)` image and `(n_levels, D)` (or per-image `(B, n_levels, D)`) text
        features -> `(B,)` predicted MOS.

        One batched head input per call (`build_head_input`) instead of a per-sample loop;
        `text_features` may be None for HEAD_INPUT "image".
        """
        if self.head == "similarity":
            return self.regression(image_features, text_features)
        head_input = build_head_input(self.head_input, image_features, text_features)
        return self.regression(head_input).squeeze(1)

    def loss(self, pred_mos: torch.Tensor, mos: torch.Tensor) -> torch.Tensor:
        """Training loss (0-d float32) of `(B,)` predictions against `(B,)` MOS, both in MOS units.

        MSE on the raw MOS scale (upstream) or, with STANDARDIZE_TARGET, on the standardised
        scale `(x - mean) / std` of the training split (= raw MSE / std**2).
        """
        pred, target = pred_mos.float(), mos.float()
        head = self.regression
        if getattr(head, "standardize", False):
            pred = (pred - head.target_mean) / head.target_std
            target = (target - head.target_mean) / head.target_std
        return F.mse_loss(pred, target)

    def predict_from_features(self, image_features: torch.Tensor,
                              prompts: Sequence[str] | None = None) -> torch.Tensor:
        """`(B, D)` precomputed image features (`encode_image`) -> `(B,)` predicted MOS.

        `(B, C, D)` features of C test crops per image give the mean of the C crops'
        predictions (`TEST.NUM_CROPS`). `prompts`: the B images' generation prompts, required
        with `PROMPT_TEMPLATE` (a missing list raises `ValueError`).
        """
        if image_features.dim() == 3:
            batch, crops = image_features.shape[:2]
            repeated = None if prompts is None else [p for p in prompts for _ in range(crops)]
            flat = self.predict_from_features(image_features.reshape(batch * crops, -1), repeated)
            return flat.reshape(batch, crops).mean(dim=1)
        if self.conditioned_tokens is not None:
            if prompts is None:
                raise ValueError("TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE needs each image's "
                                 "generation prompt, but none were given")
            return self.regress(image_features, self.conditioned_text_features(prompts))
        # The image-only head never reads the prompts: skip the text tower.
        text_features = None if self.head_input == "image" and self.head == "mlp" \
            else self.text_features()
        return self.regress(image_features, text_features)

    def level_probabilities(self, image_features: torch.Tensor,
                            prompts: Sequence[str] | None = None) -> torch.Tensor:
        """The learned level prompts read zero-shot: `(B, D)` image features (or `(B, C, D)`
        test crops, averaged over the crops) -> `(B, n_levels)` float32 probabilities,
        softmax over the levels of CLIP's logit scale times the image-text cosine similarities.
        `prompts` as in `predict_from_features` (the per-image level prompts of
        `PROMPT_TEMPLATE`)."""
        return self.assess_features(image_features, prompts, scores=False)[1]

    def assess_features(self, image_features: torch.Tensor,
                        prompts: Sequence[str] | None = None,
                        scores: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
        """`(predict_from_features, level_probabilities)` of the same features, the level
        prompts encoded once for both (the per-image prompts of `PROMPT_TEMPLATE` are the
        costly part: B x n_levels text sequences). `(B,)` MOS (None unless `scores`) and
        `(B, n_levels)` float32 probabilities; `(B, C, D)` test crops are averaged over C."""
        if image_features.dim() == 3:
            batch, crops = image_features.shape[:2]
            repeated = None if prompts is None else [p for p in prompts for _ in range(crops)]
            flat, probabilities = self.assess_features(image_features.reshape(batch * crops, -1),
                                                       repeated, scores)
            return (None if flat is None else flat.reshape(batch, crops).mean(dim=1),
                    probabilities.reshape(batch, crops, -1).mean(dim=1))
        if self.conditioned_tokens is not None:
            if prompts is None:
                raise ValueError("TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE needs each image's "
                                 "generation prompt, but none were given")
            text = self.conditioned_text_features(prompts)
            similarities = torch.einsum("bd,bld->bl", image_features.float(), text)
        else:
            text = self.text_features()
            similarities = image_features.float() @ text.t()
        probabilities = torch.softmax(self.clip_logit_scale * similarities, dim=-1)
        if not scores:
            return None, probabilities
        image_only = self.conditioned_tokens is None and self.head_input == "image" \
            and self.head == "mlp"
        return self.regress(image_features, None if image_only else text), probabilities

    def forward(self, image: torch.Tensor, prompts: Sequence[str] | None = None) -> torch.Tensor:
        return self.predict_from_features(self.encode_image(image), prompts)

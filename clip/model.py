"""CLIP architecture with OpenAI's state-dict layout, plus ``build_model`` and ``convert_weights``.

Every parameter name and shape matches OpenAI's released checkpoints, so their state dicts load
with ``strict=True``. Attention is computed with ``F.scaled_dot_product_attention`` (fused
kernels) but keeps ``nn.MultiheadAttention``'s parameters (``in_proj_weight``, ``in_proj_bias``,
``out_proj``). Transformers use the sequence-first layout ``(L, N, D)`` like the original, because
prompt-learning code feeds ``clip_model.transformer`` directly.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LayerNorm, QuickGELU, Transformer
from .resnet import ModifiedResNet

__all__ = ["CLIP", "VisionTransformer", "ModifiedResNet", "Transformer", "LayerNorm", "QuickGELU",
           "build_model", "convert_weights", "infer_hyperparameters"]

# Not parameters: scalars that OpenAI's TorchScript archives store next to the weights, and the
# causal mask that older open_clip versions saved as a buffer (here it is implicit in SDPA).
_IGNORED_KEYS = ("input_resolution", "context_length", "vocab_size", "attn_mask")


class VisionTransformer(nn.Module):
    """ViT image tower: images ``(B, 3, R, R)`` -> embeddings ``(B, output_dim)``."""

    def __init__(self, input_resolution: int, patch_size: int, width: int, layers: int, heads: int,
                 output_dim: int):
        super().__init__()
        if input_resolution % patch_size:
            raise ValueError(f"input_resolution {input_resolution} is not a multiple of patch_size {patch_size}")
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        grid = input_resolution // patch_size
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_resolution, self.input_resolution):
            raise ValueError(f"expected images of {self.input_resolution}x{self.input_resolution} pixels, "
                             f"got shape {tuple(x.shape)}")
        x = self.conv1(x)                                   # (B, width, grid, grid)
        x = x.flatten(2).transpose(1, 2)                    # (B, grid**2, width)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        x = self.transformer(x.transpose(0, 1)).transpose(0, 1)
        return self.ln_post(x[:, 0, :]) @ self.proj


class CLIP(nn.Module):
    """Image tower (ViT or modified ResNet) + causal text transformer, OpenAI's constructor signature.

    ``vision_layers`` is an int for a ViT and a 4-tuple (blocks per stage) for a ResNet.
    """

    def __init__(self, embed_dim: int, image_resolution: int, vision_layers: int | tuple[int, int, int, int],
                 vision_width: int, vision_patch_size: int | None, context_length: int, vocab_size: int,
                 transformer_width: int, transformer_heads: int, transformer_layers: int):
        super().__init__()
        self.context_length = context_length
        if isinstance(vision_layers, (tuple, list)):
            self.visual = ModifiedResNet(layers=tuple(vision_layers), output_dim=embed_dim,
                                         heads=vision_width * 32 // 64, input_resolution=image_resolution,
                                         width=vision_width)
        else:
            self.visual = VisionTransformer(image_resolution, vision_patch_size, vision_width, vision_layers,
                                            heads=vision_width // 64, output_dim=embed_dim)
        self.transformer = Transformer(transformer_width, transformer_layers, transformer_heads, causal=True)
        self.vocab_size = vocab_size
        self.token_embedding = nn.Embedding(vocab_size, transformer_width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, transformer_width))
        self.ln_final = LayerNorm(transformer_width)
        self.text_projection = nn.Parameter(torch.empty(transformer_width, embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self.initialize_parameters()

    def initialize_parameters(self) -> None:
        """OpenAI's initialisation scheme (only matters for training from scratch and random weights)."""
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        if isinstance(self.visual, ModifiedResNet):
            self.visual.initialize_parameters()
        self.transformer.initialize_parameters()
        nn.init.normal_(self.text_projection, std=self.transformer.width ** -0.5)

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of the towers: that of the first image convolution (fp16 after build_model)."""
        return self.visual.conv1.weight.dtype

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, R, R)`` (any float dtype) -> un-normalised features ``(B, embed_dim)``."""
        return self.visual(image.to(self.dtype))

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """Token ids ``(N, context_length)`` -> un-normalised features ``(N, embed_dim)``.

        The feature is read at the end-of-text token, found as the largest id in each row
        (49407 is the highest id of the vocabulary).
        """
        if text.shape[-1] != self.context_length:
            raise ValueError(f"expected token ids of length {self.context_length}, got shape {tuple(text.shape)}")
        x = self.token_embedding(text).to(self.dtype) + self.positional_embedding.to(self.dtype)
        x = self.transformer(x.transpose(0, 1)).transpose(0, 1)
        x = self.ln_final(x).to(self.dtype)
        eot = x[torch.arange(x.shape[0], device=x.device), text.argmax(dim=-1)]
        return eot @ self.text_projection

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cosine-similarity logits scaled by ``exp(logit_scale)``: ``(B, N)`` per image and ``(N, B)``."""
        image_features = F.normalize(self.encode_image(image), dim=-1)
        text_features = F.normalize(self.encode_text(text), dim=-1)
        logits_per_image = self.logit_scale.exp() * image_features @ text_features.t()
        return logits_per_image, logits_per_image.t()


def convert_weights(model: nn.Module, dtype: torch.dtype = torch.float16) -> None:
    """Cast, in place, the parameters OpenAI ships in fp16 to ``dtype`` (default fp16).

    That is: weights and biases of every Conv1d/Conv2d/Linear, the fused attention input
    projection, and any parameter attribute named ``text_projection`` or ``proj``. LayerNorm,
    BatchNorm, embeddings, ``class_embedding`` and ``logit_scale`` stay fp32. ``torch.bfloat16``
    gives the same mixed layout in bfloat16.
    """
    def _cast(module: nn.Module) -> None:
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            module.weight.data = module.weight.data.to(dtype)
            if module.bias is not None:
                module.bias.data = module.bias.data.to(dtype)
        # SelfAttention's fused projection; the CLIP/ViT output projections are bare Parameters.
        for name in ("in_proj_weight", "in_proj_bias", "text_projection", "proj"):
            tensor = getattr(module, name, None)
            if isinstance(tensor, torch.Tensor):
                tensor.data = tensor.data.to(dtype)

    model.apply(_cast)


def _require(state_dict: dict, *keys: str) -> None:
    missing = [k for k in keys if k not in state_dict]
    if missing:
        raise ValueError(f"not an OpenAI-CLIP state dict: missing key(s) {missing}")


def _block_count(state_dict: dict, prefix: str) -> int:
    """Number of distinct block indices ``prefix.<i>.*`` among the keys."""
    return len({k[len(prefix):].split(".")[1] for k in state_dict if k.startswith(prefix + ".")})


def infer_hyperparameters(state_dict: dict) -> dict:
    """Read every ``CLIP(...)`` constructor argument off the tensor shapes of an OpenAI state dict."""
    _require(state_dict, "text_projection", "positional_embedding", "token_embedding.weight",
             "ln_final.weight")
    if "visual.proj" in state_dict:
        _require(state_dict, "visual.conv1.weight", "visual.positional_embedding")
        width = state_dict["visual.conv1.weight"].shape[0]
        layers = sum(1 for k in state_dict if k.startswith("visual.") and k.endswith(".attn.in_proj_weight"))
        patch = state_dict["visual.conv1.weight"].shape[-1]
        grid = round((state_dict["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        resolution = patch * grid
    else:
        _require(state_dict, "visual.layer1.0.conv1.weight", "visual.attnpool.positional_embedding")
        layers = tuple(_block_count(state_dict, f"visual.layer{stage}") for stage in (1, 2, 3, 4))
        width = state_dict["visual.layer1.0.conv1.weight"].shape[0]
        tokens = state_dict["visual.attnpool.positional_embedding"].shape[0]
        grid = round((tokens - 1) ** 0.5)
        if grid * grid + 1 != tokens:
            raise ValueError(f"visual.attnpool.positional_embedding has {tokens} rows, not a square grid + 1")
        patch = None
        resolution = grid * 32
    text_width = state_dict["ln_final.weight"].shape[0]
    return dict(
        embed_dim=state_dict["text_projection"].shape[1],
        image_resolution=resolution,
        vision_layers=layers,
        vision_width=width,
        vision_patch_size=patch,
        context_length=state_dict["positional_embedding"].shape[0],
        vocab_size=state_dict["token_embedding.weight"].shape[0],
        transformer_width=text_width,
        transformer_heads=text_width // 64,
        transformer_layers=_block_count(state_dict, "transformer.resblocks"),
    )


def build_model(state_dict: dict) -> CLIP:
    """Build a CLIP in eval mode from an OpenAI-layout state dict (mixed fp16, as OpenAI's ``load``).

    Hyper-parameters come from tensor shapes, so any size works. The model is created on the meta
    device and filled by a strict ``load_state_dict``: no time is spent on a random init that would
    be overwritten, and a state dict that does not fit raises ``ValueError`` instead of leaving any
    parameter random. The caller's dict is not modified.
    """
    state_dict = {k: v for k, v in state_dict.items() if k not in _IGNORED_KEYS}
    hparams = infer_hyperparameters(state_dict)
    with torch.device("meta"):
        model = CLIP(**hparams)
    convert_weights(model)
    model = model.to_empty(device="cpu")
    for module in model.modules():
        # BatchNorm fills a missing num_batches_tracked from its own (here uninitialised) buffer.
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        raise ValueError(f"state dict does not match the CLIP architecture inferred from it "
                         f"({_describe(hparams)}): {err}") from err
    return model.eval()


def _describe(hparams: dict) -> str:
    kind = "ResNet" if isinstance(hparams["vision_layers"], tuple) else "ViT"
    return ", ".join([kind] + [f"{k}={v}" for k, v in sorted(hparams.items())])

"""Fine-tuning of CLIP's image encoder (`TRAINER.CLIP_AGIQA.TRAIN_IMAGE_ENCODER`).

- `none` (default): the encoder stays frozen.
- `last_k`: the last `ENCODER_LAST_K` transformer blocks of the ViT train (all their weights).
- `lora`: rank-`LORA_RANK` adapters `W + (alpha / r) * B @ A` on every block's attention input
  projection (`in_proj_weight`, q, k and v fused, `(3D, D)`), attention output projection and the
  two MLP projections. `B` starts at zero, so before the first step the encoder is exactly the
  frozen one. Our attention keeps q, k and v in one bare `in_proj_weight` parameter used through
  `F.linear`: peft's LoRA layers wrap `nn.Linear` / `nn.MultiheadAttention` modules, so they do
  not fit it, and peft would pull in transformers and accelerate; the adapters are therefore
  our own `torch.nn.utils.parametrize` parametrizations (the frozen weight is left untouched).

Trainable encoder parameters are float32 whatever `PREC`: a step of `ENCODER_LR` (about 5e-6)
is below fp16's resolution for weights of order 1e-2. Under fp16 the trained blocks run in
float32 between casts, and an adapted fp16 weight is recomputed as `(W + delta)` in float32 and
cast back. `trainable_encoder_module` returns the `nn.Module` that holds exactly the trainable
parameters: the trainer registers it as `image_encoder` (its optimizer, learning rate
`ENCODER_LR` and checkpoints), and `score.py` loads it back into a fresh encoder.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from .model_spec import ENCODER_MODES

__all__ = ["ENCODER_MODES", "LoRA", "LoRAAdapters", "TrainedBlocks", "lora_targets",
           "attach_encoder_tuning"]

# LoRA's scaling alpha / r: alpha = rank gives a scaling of 1 (the update is B @ A itself).
LORA_ALPHA_PER_RANK = 1.0


class LoRA(nn.Module):
    """Parametrization `W -> W + (alpha / rank) * B @ A` of a `(out, in)` weight.

    `lora_A` `(rank, in)` float32, Kaiming-uniform (as `nn.Linear`'s default init); `lora_B`
    `(out, rank)` float32, zero. The sum is formed in float32 and returned in `W`'s dtype.
    """

    def __init__(self, out_features: int, in_features: int, rank: int) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"TRAINER.CLIP_AGIQA.LORA_RANK must be a positive integer, got {rank}")
        self.scaling = LORA_ALPHA_PER_RANK
        self.lora_A = nn.Parameter(torch.empty(rank, in_features, dtype=torch.float32))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank, dtype=torch.float32))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        delta = self.lora_B @ self.lora_A
        return (weight.float() + self.scaling * delta).to(weight.dtype)


def lora_targets(encoder: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """`(name, module, parameter name)` of every adapted weight of a ViT image encoder, in
    block order: `attn.in_proj_weight`, `attn.out_proj.weight`, `mlp.c_fc.weight`,
    `mlp.c_proj.weight`. Raises `ValueError` for an encoder without `transformer.resblocks`."""
    blocks = _vit_blocks(encoder, "lora")
    targets = []
    for index, block in enumerate(blocks):
        for path, leaf in (("attn", "in_proj_weight"), ("attn.out_proj", "weight"),
                           ("mlp.c_fc", "weight"), ("mlp.c_proj", "weight")):
            module = block.get_submodule(path)
            targets.append((f"{index}.{path}.{leaf}", module, leaf))
    return targets


def _vit_blocks(encoder: nn.Module, mode: str) -> nn.ModuleList:
    transformer = getattr(encoder, "transformer", None)
    blocks = getattr(transformer, "resblocks", None)
    if not isinstance(blocks, nn.Sequential | nn.ModuleList):
        raise ValueError(f"TRAINER.CLIP_AGIQA.TRAIN_IMAGE_ENCODER {mode} needs a ViT image "
                         "encoder (transformer blocks); this backbone has none")
    return blocks


class LoRAAdapters(nn.Module):
    """The LoRA factors of an encoder, by target (`adapters.<i>_<path>` keys in the state dict).

    Attaching registers each `LoRA` as a parametrization of its weight in the encoder."""

    def __init__(self, encoder: nn.Module, rank: int) -> None:
        super().__init__()
        self.adapters = nn.ModuleDict()
        for name, module, leaf in lora_targets(encoder):
            out_features, in_features = getattr(module, leaf).shape
            lora = LoRA(out_features, in_features, rank).to(getattr(module, leaf).device)
            parametrize.register_parametrization(module, leaf, lora)
            self.adapters[name.replace(".", "_")] = lora


class TrainedBlocks(nn.ModuleList):
    """The last `k` transformer blocks of a ViT encoder, converted to float32; under a lower
    precision each block casts its input to float32 and its output back."""

    def __init__(self, encoder: nn.Module, k: int) -> None:
        blocks = _vit_blocks(encoder, "last_k")
        if isinstance(k, bool) or not 1 <= int(k) <= len(blocks):
            raise ValueError(f"TRAINER.CLIP_AGIQA.ENCODER_LAST_K must be in 1..{len(blocks)} for "
                             f"this backbone, got {k!r}")
        super().__init__(list(blocks)[len(blocks) - int(k):])
        for block in self:
            block.float()
            block.register_forward_pre_hook(_to_float32)
            block.register_forward_hook(_to_input_dtype)


def _to_float32(module: nn.Module, args: tuple) -> tuple:
    module._input_dtype = args[0].dtype
    return (args[0].float(),) + tuple(args[1:])


def _to_input_dtype(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    return output.to(module._input_dtype)


def attach_encoder_tuning(encoder: nn.Module, mode: str, last_k: int = 1,
                          rank: int = 4) -> nn.Module | None:
    """Make the chosen part of `encoder` trainable; return the module holding exactly the
    trainable parameters (`TrainedBlocks` or `LoRAAdapters`), None for `none`.

    Every other encoder parameter gets `requires_grad False`. Raises `ValueError` for an
    unknown `mode` or a backbone without transformer blocks.
    """
    if mode not in ENCODER_MODES:
        raise ValueError(f"TRAINER.CLIP_AGIQA.TRAIN_IMAGE_ENCODER must be one of {ENCODER_MODES}, "
                         f"got {mode!r}")
    for param in encoder.parameters():
        param.requires_grad_(False)
    if mode == "none":
        return None
    trainable = TrainedBlocks(encoder, last_k) if mode == "last_k" else \
        LoRAAdapters(encoder, int(rank))
    for param in trainable.parameters():
        param.requires_grad_(True)
    return trainable

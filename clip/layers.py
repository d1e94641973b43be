"""Transformer building blocks shared by CLIP's text tower and its ViT image tower.

Layout is sequence-first, ``(L, N, D)`` = (tokens, batch, width), as in OpenAI's code, and the
parameter names reproduce ``nn.MultiheadAttention``'s so OpenAI checkpoints load unchanged.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LayerNorm", "QuickGELU", "SelfAttention", "ResidualAttentionBlock", "Transformer"]


class LayerNorm(nn.LayerNorm):
    """LayerNorm evaluated in fp32 and cast back to the input dtype.

    Normalising fp16 activations in fp16 loses too much precision; OpenAI keeps LayerNorm
    parameters in fp32 and normalises in fp32 for this reason.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``: the GELU approximation CLIP was trained with (not ``nn.GELU``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameters, computed with SDPA.

    Parameters: ``in_proj_weight (3D, D)`` (rows: query, key, value), ``in_proj_bias (3D,)``,
    ``out_proj`` (Linear D -> D). Input and output ``(L, N, D)``.
    """

    def __init__(self, width: int, heads: int):
        super().__init__()
        if heads < 1 or width % heads:
            raise ValueError(f"width {width} is not divisible into {heads} attention heads")
        self.width = width
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)
        # Same defaults as nn.MultiheadAttention.
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        length, batch, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        # (L, N, 3D) -> (3, N, heads, L, head_dim): SDPA wants batch and heads leading.
        qkv = qkv.view(length, batch, 3, self.heads, width // self.heads).permute(2, 1, 3, 0, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=causal)
        out = out.permute(2, 0, 1, 3).reshape(length, batch, width)
        return self.out_proj(out)


class ResidualAttentionBlock(nn.Module):
    """Pre-norm block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``, MLP width x4 with QuickGELU.

    ``causal=True`` lets position i attend only to positions <= i (the text tower), so tokens
    after the end-of-text token never influence the text feature.
    """

    def __init__(self, width: int, heads: int, causal: bool = False):
        super().__init__()
        self.causal = causal
        self.attn = SelfAttention(width, heads)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * 4)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(width * 4, width)),
        ]))
        self.ln_2 = LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), causal=self.causal)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """Stack of ``layers`` residual attention blocks; ``(L, N, width)`` in and out."""

    def __init__(self, width: int, layers: int, heads: int, causal: bool = False):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads, causal) for _ in range(layers)])

    def initialize_parameters(self) -> None:
        """OpenAI's scheme: std shrinks with width, residual projections also with depth."""
        proj_std = (self.width ** -0.5) * ((2 * max(self.layers, 1)) ** -0.5)
        attn_std = self.width ** -0.5
        fc_std = (2 * self.width) ** -0.5
        for block in self.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)

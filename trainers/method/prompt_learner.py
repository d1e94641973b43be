"""Learnable prompts (CoOp context vectors) and the frozen CLIP text encoder that reads them.

Shapes: `n_levels` quality levels, `n_ctx` context tokens, `ctx_dim` = CLIP text width (512 for
ViT-B/16), `L` = CLIP context length (77).
"""
from __future__ import annotations

import warnings
from typing import Sequence

import torch
from torch import nn
from clip import clip

from .model_spec import CLASS_TOKEN_POSITIONS, count_bpe_tokens

# Standard deviation of the random context initialisation (CoOp's choice).
CTX_INIT_STD = 0.02


class PromptLearner(nn.Module):
    """Builds the `n_levels` level prompts "SOT ctx_1..ctx_n <level name> . EOT" as embeddings.

    Parameters: `ctx`, `(n_ctx, ctx_dim)` (shared) or `(n_levels, n_ctx, ctx_dim)` (CSC), float16
    with fp16 towers (upstream) unless `fp32_ctx`, and float32 otherwise (see
    `trainers.method.precision`); the text tower casts it to its own dtype. Persistent
    buffers (kept in checkpoints for compatibility, recomputed on load):
    `token_prefix` `(n_levels, 1, ctx_dim)` (SOT embedding) and `token_suffix`
    `(n_levels, L - 1 - n_ctx, ctx_dim)` (level name, ".", EOT, padding). Non-persistent buffer:
    `tokenized_prompts` `(n_levels, L)` int64, used to locate each prompt's EOT token.
    """

    def __init__(self, level_names: Sequence[str], clip_model: nn.Module, n_ctx: int = 16,
                 ctx_init: str = "", csc: bool = False,
                 class_token_position: str = "end", fp32_ctx: bool = False) -> None:
        """`level_names` worst first; `ctx_init` words (underscores as spaces) initialise a
        shared context and then set its length (their BPE token count) instead of `n_ctx`;
        `csc` gives each level its own random context; `class_token_position` end/middle/front;
        `fp32_ctx` a float32 context also with fp16 towers (`ModelSpec.fp32_ctx`).
        """
        super().__init__()
        if class_token_position not in CLASS_TOKEN_POSITIONS:
            raise ValueError(f"class_token_position must be one of {CLASS_TOKEN_POSITIONS}, got "
                             f"{class_token_position!r}")
        level_names = list(level_names)
        # fp16 towers: an fp16 context, as upstream (unless fp32_ctx); bf16 and fp32 towers: an
        # fp32 context.
        fp16 = clip_model.dtype == torch.float16 and not fp32_ctx
        dtype = torch.float16 if fp16 else torch.float32
        ctx_dim = clip_model.ln_final.weight.shape[0]
        context_length = clip_model.positional_embedding.shape[0]

        self.n_levels = len(level_names)
        self.class_token_position = class_token_position
        embedding = clip_model.token_embedding
        ctx_init = ctx_init.replace("_", " ").strip()
        if ctx_init:
            # Token count, not word count: a word may span several BPE tokens.
            n_ctx = count_bpe_tokens(ctx_init)
            tokens = clip.tokenize(ctx_init, context_length=context_length)
            with torch.no_grad():
                init_embedding = embedding(tokens).type(dtype)
            ctx_vectors = init_embedding[0, 1 : 1 + n_ctx, :].clone()
            prompt_prefix = ctx_init
            if csc:
                warnings.warn(
                    "TRAINER.CLIP_AGIQA.CSC is ignored when CTX_INIT is set: the initialised "
                    "context is shared by all levels (upstream behaviour)",
                    stacklevel=2,
                )
            print(f'Initial context: "{prompt_prefix}"')
        else:
            n_ctx = int(n_ctx)
            shape = (self.n_levels, n_ctx, ctx_dim) if csc else (n_ctx, ctx_dim)
            ctx_vectors = torch.empty(shape, dtype=dtype)
            nn.init.normal_(ctx_vectors, std=CTX_INIT_STD)
            prompt_prefix = " ".join(["X"] * n_ctx)
            kind = "class-specific" if csc else "generic"
            print(f"Initializing {kind} contexts")
            print(f'Initial context: "{prompt_prefix}"')
        print(f"Number of context words (tokens): {n_ctx}")
        self.n_ctx = n_ctx
        self.ctx = nn.Parameter(ctx_vectors)

        names = [name.replace("_", " ") for name in level_names]
        self.name_lens = [count_bpe_tokens(name) for name in names]
        prompts = [f"{prompt_prefix} {name}." for name in names]
        tokenized = torch.cat([clip.tokenize(p, context_length=context_length) for p in prompts])
        with torch.no_grad():
            prompt_embedding = embedding(tokenized).type(dtype)
        self.register_buffer("token_prefix", prompt_embedding[:, :1, :].clone())
        self.register_buffer("token_suffix", prompt_embedding[:, 1 + n_ctx :, :].clone())
        self.register_buffer("tokenized_prompts", tokenized, persistent=False)
        # Positions up to the last EOT token (the largest token id) are all the causal text tower
        # needs; a Python int, so using it costs no device sync per step.
        self.n_used_tokens = int(tokenized.argmax(dim=-1).max()) + 1

    def forward(self) -> torch.Tensor:
        """Return the prompt embeddings `(n_levels, L, ctx_dim)` in the dtype of `ctx`."""
        ctx = self.ctx
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(self.n_levels, -1, -1)
        prefix, suffix = self.token_prefix, self.token_suffix
        if self.class_token_position == "end":
            return torch.cat([prefix, ctx, suffix], dim=1)

        half = self.n_ctx // 2
        prompts = []
        for i, name_len in enumerate(self.name_lens):
            prefix_i = prefix[i : i + 1]
            ctx_i = ctx[i : i + 1]
            name_i = suffix[i : i + 1, :name_len]
            rest_i = suffix[i : i + 1, name_len:]
            if self.class_token_position == "middle":
                parts = [prefix_i, ctx_i[:, :half], name_i, ctx_i[:, half:], rest_i]
            elif self.class_token_position == "front":
                parts = [prefix_i, name_i, ctx_i, rest_i]
            else:
                raise ValueError(
                    "TRAINER.CLIP_AGIQA.CLASS_TOKEN_POSITION must be end/middle/front, got "
                    f"{self.class_token_position!r}"
                )
            prompts.append(torch.cat(parts, dim=1))
        return torch.cat(prompts, dim=0)


class TextEncoder(nn.Module):
    """CLIP's text tower applied to prompt embeddings instead of token ids.

    `forward(prompts (n, L, width), tokenized_prompts (n, L) int64, length=None) ->
    (n, embed_dim)` in the CLIP dtype; the feature is read at each prompt's EOT position (the
    largest token id). The tower is causal, so the positions after the last EOT cannot change any
    feature: `length` (at least last EOT + 1) runs only the first `length` positions, with the
    same result up to float rounding and, for 16 context tokens, about 4x fewer FLOPs forward and
    backward.
    """

    def __init__(self, clip_model: nn.Module) -> None:
        super().__init__()
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of the tower (fp16 for upstream CLIP weights, fp32 after `.float()`)."""
        return self.text_projection.dtype

    def forward(self, prompts: torch.Tensor, tokenized_prompts: torch.Tensor,
                length: int | None = None) -> torch.Tensor:
        dtype = self.dtype
        length = prompts.shape[1] if length is None else length
        x = prompts[:, :length].type(dtype) + self.positional_embedding[:length].type(dtype)
        x = x.permute(1, 0, 2)  # the CLIP transformer is sequence-first: (L, n, width)
        x = self.transformer(x)
        x = x.permute(1, 0, 2)
        x = self.ln_final(x).type(dtype)
        eot = tokenized_prompts.argmax(dim=-1)
        x = x[torch.arange(x.shape[0], device=x.device), eot]
        return x @ self.text_projection

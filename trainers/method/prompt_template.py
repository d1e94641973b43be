"""Prompt-conditioned level prompts (`TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE`; IPCE style).

Each level prompt also carries the image's generation prompt, so the text features are per
image. With the template `"{level}, {prompt}"` and 4 context tokens the prompt of level "bad"
for an image generated from "a cat on a mat" reads `X X X X bad, a cat on a mat.` (the `X`s are
the learned context vectors, the final "." is added as in the plain prompts). An empty
generation prompt drops everything from the end of `{level}` to the end of `{prompt}` (the
separator too), which leaves exactly the plain level prompt `X X X X bad.`. A template `""`
turns the variant off. A prompt longer than CLIP's context length is truncated (the end of the
generation prompt is cut; the end-of-text token stays last) with a warning.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import torch
from torch import nn

from clip import clip

__all__ = ["LEVEL_FIELD", "PROMPT_FIELD", "check_template", "fill_template",
           "ConditionedPromptTokens", "conditioned_embeddings"]

LEVEL_FIELD = "{level}"
PROMPT_FIELD = "{prompt}"


def check_template(template: str) -> None:
    """A non-empty template holds `{level}` once, then `{prompt}` once, and no other braces.

    Raises `ValueError` naming `TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE`.
    """
    if not template:
        return
    rest = template.replace(LEVEL_FIELD, "").replace(PROMPT_FIELD, "")
    if (template.count(LEVEL_FIELD) != 1 or template.count(PROMPT_FIELD) != 1
            or template.index(LEVEL_FIELD) > template.index(PROMPT_FIELD)
            or "{" in rest or "}" in rest):
        raise ValueError("TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE must contain {level} once followed "
                         f"by {{prompt}} once (e.g. '{{level}}, {{prompt}}'), got {template!r}")


def fill_template(template: str, level: str, prompt: str) -> str:
    """The level phrase of one prompt: `template` with `level` and the generation `prompt`.

    An empty (or blank) `prompt` removes the text from the end of `{level}` to the end of
    `{prompt}`; an empty `template` gives `level` alone.
    """
    check_template(template)
    if not template:
        return level
    prompt = " ".join(prompt.split())
    level_end = template.index(LEVEL_FIELD) + len(LEVEL_FIELD)
    prompt_end = template.index(PROMPT_FIELD) + len(PROMPT_FIELD)
    if not prompt:
        template = template[:level_end] + template[prompt_end:]
    return template.replace(LEVEL_FIELD, level).replace(PROMPT_FIELD, prompt)


class ConditionedPromptTokens:
    """Token ids of the prompt-conditioned level prompts, cached per generation prompt.

    `context_prefix` is the context placeholder text (`"X X ... X"`, `n_ctx` tokens), so that
    positions `1 .. n_ctx` of every sequence are the context slots. `ids(prompts)` ->
    `(B, L, context_length)` int64 for B generation prompts and the L `level_names`.
    `truncated` lists the generation prompts that had to be cut (each warned about once).
    """

    def __init__(self, context_prefix: str, level_names: Sequence[str], template: str,
                 context_length: int) -> None:
        check_template(template)
        self.context_prefix = context_prefix
        self.level_names = [name.replace("_", " ") for name in level_names]
        self.template = template
        self.context_length = int(context_length)
        self.truncated: list[str] = []
        self._cache: dict[str, torch.Tensor] = {}

    def texts(self, prompt: str) -> list[str]:
        """The L prompt texts of one image, worst level first."""
        return [f"{self.context_prefix} {fill_template(self.template, name, prompt)}."
                for name in self.level_names]

    def _ids_of(self, prompt: str) -> torch.Tensor:
        cached = self._cache.get(prompt)
        if cached is not None:
            return cached
        texts = self.texts(prompt)
        full = clip.tokenize(texts, context_length=1024, truncate=True)
        needed = int(full.argmax(dim=-1).max()) + 1
        if needed > self.context_length:
            self.truncated.append(prompt)
            message = (f"generation prompt {prompt!r} makes a level prompt of {needed} tokens, "
                       f"more than the context length {self.context_length}: truncated")
            print(f"WARNING: {message}")
            warnings.warn(message, UserWarning, stacklevel=3)
        ids = clip.tokenize(texts, context_length=self.context_length, truncate=True)
        self._cache[prompt] = ids
        return ids

    def ids(self, prompts: Sequence[str]) -> torch.Tensor:
        return torch.stack([self._ids_of(str(p)) for p in prompts])


def conditioned_embeddings(ctx: torch.Tensor, token_embedding: nn.Module,
                           ids: torch.Tensor) -> torch.Tensor:
    """Prompt embeddings `(B * L, T, width)` with the learned context in positions `1 .. n_ctx`.

    `ctx` `(n_ctx, width)` (shared) or `(L, n_ctx, width)` (one per level); `ids`
    `(B, L, T)` from `ConditionedPromptTokens.ids`. The token embeddings are frozen (no gradient);
    the gradient reaches `ctx` only.
    """
    batch, n_levels, length = ids.shape
    n_ctx = ctx.shape[-2]
    with torch.no_grad():
        embedded = token_embedding(ids.reshape(-1, length)).to(ctx.dtype)
    embedded = embedded.reshape(batch, n_levels, length, -1)
    context = ctx.unsqueeze(0) if ctx.dim() == 2 else ctx
    context = context.unsqueeze(0).expand(batch, n_levels, -1, -1)
    parts = [embedded[:, :, :1], context, embedded[:, :, 1 + n_ctx:]]
    return torch.cat(parts, dim=2).reshape(batch * n_levels, length, -1)

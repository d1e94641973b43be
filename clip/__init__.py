"""OpenAI-compatible CLIP: ``from clip import clip`` (CoOp style) and ``import clip; clip.load(...)``.

Submodules: ``clip.clip`` (load, tokenize, available_models), ``clip.model`` (architecture,
build_model, convert_weights), ``clip.simple_tokenizer``, ``clip.weights`` (name table, cache,
downloads), ``clip.checkpoint`` (reading weights files), ``clip.random_weights`` (test weights).
"""
from . import clip, model, simple_tokenizer
from .clip import available_models, build_model, load, load_weights, tokenize

__all__ = ["clip", "model", "simple_tokenizer", "available_models", "build_model", "load", "load_weights",
           "tokenize"]

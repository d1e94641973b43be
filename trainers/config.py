"""Config keys of the CLIP-AGIQA method and their validation.

`add_trainer_config(cfg)` declares `TRAINER.CLIP_AGIQA.*` on a yacs `CfgNode` (it must run before
any yaml or CLI opt that sets those keys is merged, because yacs rejects unknown keys).
`check_trainer_config(cfg, classnames=None, context_length=77)` validates the values and raises a
`ValueError` naming the offending key and value.
"""
from __future__ import annotations

from typing import Sequence

from yacs.config import CfgNode as CN

PRECISIONS = ("fp16", "fp32", "amp")
PIPELINES = ("fast", "reference")
DECODED_ON = ("device", "cpu")
CLASS_TOKEN_POSITIONS = ("end", "middle", "front")
HEAD_INPUTS = ("image_text", "image", "text")
HEADS = ("mlp", "similarity")
ENCODER_MODES = ("none", "last_k", "lora")
# Tokens of a prompt besides the context and the level name: SOT, the final "." and EOT.
EXTRA_PROMPT_TOKENS = 3


# key -> (default, meaning); the meaning doubles as the one-line comment of each key.
_KEYS = {
    "N_CTX": (16, "number of learnable context tokens (CTX_INIT's token count wins when set)"),
    "CSC": (False, "class-specific contexts: one context per quality level instead of a shared one"),
    "CTX_INIT": ("", "words initialising the shared context, e.g. 'a photo of a'; '' = random init"),
    "PREC": ("fp16", "precision: fp16 (CLIP and ctx in half, as upstream; fp32 on CPU), fp32, amp"),
    "CLASS_TOKEN_POSITION": ("end", "level name position relative to the context: end/middle/front"),
    "PIPELINE": ("fast", "fast: decode once, batch/cache the frozen image features; "
                         "reference: per-batch decode + encode (same updates; parity checks)"),
    "ENCODE_BATCH_SIZE": (256, "fast pipeline: images per no-grad image-encoder call"),
    "DECODED_ON": ("device", "fast pipeline: hold the decoded uint8 images on 'device' or 'cpu'"),
    "HEAD_INPUT": ("image_text", "head input: image_text (upstream), image, or text (level-prompt "
                                 "features scaled by their cosine similarity to the image)"),
    "STANDARDIZE_TARGET": (False, "regress (MOS - mean) / std of the training split (MSE on that "
                                  "scale); False = raw MOS (upstream); predictions stay in MOS"),
    "HEAD": ("mlp", "mlp: regression MLP (upstream); similarity: CLIP logit scale x cosine to each "
                    "level, softmax, expected level index, learned affine map to MOS"),
    "PROMPT_TEMPLATE": ("", "level prompt with the image's generation prompt, e.g. "
                            "'{level}, {prompt}'; '' = plain level prompts (upstream)"),
    "TRAIN_IMAGE_ENCODER": ("none", "image encoder: none (frozen, upstream), last_k (last "
                                    "ENCODER_LAST_K blocks train) or lora (rank LORA_RANK)"),
    "ENCODER_LAST_K": (1, "last_k: number of trained transformer blocks at the top of the ViT"),
    "LORA_RANK": (4, "lora: rank of the adapters on the attention and MLP projections"),
    "ENCODER_LR": (5e-6, "learning rate of the trained image-encoder parameters (OPTIM.LR is the "
                         "prompts' and head's)"),
}


def add_trainer_config(cfg: CN) -> CN:
    """Declare `TRAINER.CLIP_AGIQA.*` with their defaults and return `cfg`.

    Idempotent: keys that already exist keep their value. Raises `ValueError` if `cfg` is frozen
    and a key is missing.
    """
    if "CLIP_AGIQA" not in cfg.TRAINER:
        if cfg.is_frozen():
            raise ValueError("cannot add TRAINER.CLIP_AGIQA: the config is frozen; call "
                             "add_trainer_config(cfg) before cfg.freeze()")
        cfg.TRAINER.CLIP_AGIQA = CN()
    node = cfg.TRAINER.CLIP_AGIQA
    for key, (default, _meaning) in _KEYS.items():
        if key in node:
            continue
        if node.is_frozen():
            raise ValueError(f"cannot add TRAINER.CLIP_AGIQA.{key}: the config is frozen")
        setattr(node, key, default)
    return cfg


def count_bpe_tokens(text: str) -> int:
    """Number of BPE tokens of `text` (without SOT/EOT), counted with CLIP's own tokenizer."""
    from clip import clip

    # A generous context so counting never raises; the EOT id is the largest, so argmax finds it.
    ids = clip.tokenize(text, context_length=1024, truncate=True)[0]
    return int(ids.argmax().item()) - 1


def context_token_count(cfg: CN) -> int:
    """Effective number of context tokens: BPE tokens of CTX_INIT if set, else N_CTX."""
    ctx_init = cfg.TRAINER.CLIP_AGIQA.CTX_INIT.replace("_", " ").strip()
    if ctx_init:
        return count_bpe_tokens(ctx_init)
    return int(cfg.TRAINER.CLIP_AGIQA.N_CTX)


def _check_variant_keys(node: CN) -> None:
    """HEAD, PROMPT_TEMPLATE and the image-encoder keys (see `_KEYS`)."""
    from .prompt_template import check_template

    if node.HEAD not in HEADS:
        raise ValueError(f"TRAINER.CLIP_AGIQA.HEAD must be one of {HEADS}, got {node.HEAD!r}")
    if node.HEAD == "similarity" and (node.HEAD_INPUT != "image_text" or node.STANDARDIZE_TARGET):
        raise ValueError("TRAINER.CLIP_AGIQA.HEAD similarity has no MLP: leave HEAD_INPUT "
                         "image_text and STANDARDIZE_TARGET False")
    check_template(node.PROMPT_TEMPLATE)
    if node.PROMPT_TEMPLATE and node.CLASS_TOKEN_POSITION != "end":
        raise ValueError("TRAINER.CLIP_AGIQA.PROMPT_TEMPLATE places the level after the context: "
                         "it needs CLASS_TOKEN_POSITION end")
    if node.TRAIN_IMAGE_ENCODER not in ENCODER_MODES:
        raise ValueError(f"TRAINER.CLIP_AGIQA.TRAIN_IMAGE_ENCODER must be one of {ENCODER_MODES}, "
                         f"got {node.TRAIN_IMAGE_ENCODER!r}")
    for key in ("ENCODER_LAST_K", "LORA_RANK"):
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"TRAINER.CLIP_AGIQA.{key} must be a positive integer, got {value!r}")
    if isinstance(node.ENCODER_LR, bool) or not float(node.ENCODER_LR) > 0:
        raise ValueError(f"TRAINER.CLIP_AGIQA.ENCODER_LR must be positive, got {node.ENCODER_LR!r}")


def check_trainer_config(
    cfg: CN, classnames: Sequence[str] | None = None, context_length: int = 77
) -> None:
    """Validate `TRAINER.CLIP_AGIQA.*`; with `classnames`, also check that every prompt fits.

    A prompt is SOT + context + level-name tokens + "." + EOT, so it needs
    `n_ctx + len(longest name) + 3 <= context_length` tokens.
    """
    node = cfg.TRAINER.CLIP_AGIQA
    if node.PREC not in PRECISIONS:
        raise ValueError(
            f"TRAINER.CLIP_AGIQA.PREC must be one of {PRECISIONS}, got {node.PREC!r}"
        )
    if node.CLASS_TOKEN_POSITION not in CLASS_TOKEN_POSITIONS:
        raise ValueError(
            "TRAINER.CLIP_AGIQA.CLASS_TOKEN_POSITION must be one of "
            f"{CLASS_TOKEN_POSITIONS}, got {node.CLASS_TOKEN_POSITION!r}"
        )
    if node.PIPELINE not in PIPELINES:
        raise ValueError(
            f"TRAINER.CLIP_AGIQA.PIPELINE must be one of {PIPELINES}, got {node.PIPELINE!r}"
        )
    if node.DECODED_ON not in DECODED_ON:
        raise ValueError(
            f"TRAINER.CLIP_AGIQA.DECODED_ON must be one of {DECODED_ON}, got {node.DECODED_ON!r}"
        )
    if node.HEAD_INPUT not in HEAD_INPUTS:
        raise ValueError(
            f"TRAINER.CLIP_AGIQA.HEAD_INPUT must be one of {HEAD_INPUTS}, got {node.HEAD_INPUT!r}"
        )
    if not isinstance(node.STANDARDIZE_TARGET, bool):
        raise ValueError("TRAINER.CLIP_AGIQA.STANDARDIZE_TARGET must be True or False, got "
                         f"{node.STANDARDIZE_TARGET!r}")
    _check_variant_keys(node)
    if isinstance(node.ENCODE_BATCH_SIZE, bool) or int(node.ENCODE_BATCH_SIZE) < 1:
        raise ValueError("TRAINER.CLIP_AGIQA.ENCODE_BATCH_SIZE must be a positive integer, got "
                         f"{node.ENCODE_BATCH_SIZE!r}")
    if int(cfg.TEST.NUM_CROPS) < 1 or isinstance(cfg.TEST.NUM_CROPS, bool):
        raise ValueError(f"TEST.NUM_CROPS must be a positive integer, got {cfg.TEST.NUM_CROPS!r}")
    if int(cfg.TEST.NUM_CROPS) > 1 and node.PIPELINE != "fast":
        raise ValueError("TEST.NUM_CROPS > 1 needs TRAINER.CLIP_AGIQA.PIPELINE fast (the crops "
                         "are cut from the decoded images)")
    ctx_init = node.CTX_INIT.replace("_", " ").strip()
    if not ctx_init and (isinstance(node.N_CTX, bool) or int(node.N_CTX) < 1):
        raise ValueError(f"TRAINER.CLIP_AGIQA.N_CTX must be a positive integer, got {node.N_CTX!r}")
    if not classnames:
        return
    n_ctx = context_token_count(cfg)
    if ctx_init and n_ctx < 1:
        raise ValueError(f"TRAINER.CLIP_AGIQA.CTX_INIT {node.CTX_INIT!r} contains no tokens")
    lengths = {name: count_bpe_tokens(name.replace("_", " ")) for name in classnames}
    longest = max(lengths, key=lengths.get)
    needed = n_ctx + lengths[longest] + EXTRA_PROMPT_TOKENS
    if needed > context_length:
        source = f"CTX_INIT {node.CTX_INIT!r} ({n_ctx} tokens)" if ctx_init else f"N_CTX={n_ctx}"
        raise ValueError(
            f"Prompt too long: {source} + level name {longest!r} ({lengths[longest]} tokens) + "
            f"{EXTRA_PROMPT_TOKENS} (SOT, '.', EOT) = {needed} tokens > context length "
            f"{context_length}; lower TRAINER.CLIP_AGIQA.N_CTX or shorten DATASET.LEVEL_NAMES"
        )

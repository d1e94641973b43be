"""Old home of the method's config keys; they now live with the model spec in
`trainers.method.model_spec` (the one reader of `TRAINER.CLIP_AGIQA.*`). These names stay importable
from here."""
from .method.model_spec import (CLASS_TOKEN_POSITIONS, CPU_PRECISIONS, DECODED_ON, ENCODER_MODES,
                         EXTRA_PROMPT_TOKENS, HEAD_INPUTS, HEADS, PIPELINES, PRECISIONS,
                         add_trainer_config, check_trainer_config, count_bpe_tokens)

__all__ = ["CLASS_TOKEN_POSITIONS", "CPU_PRECISIONS", "DECODED_ON", "ENCODER_MODES",
           "EXTRA_PROMPT_TOKENS", "HEAD_INPUTS", "HEADS", "PIPELINES", "PRECISIONS",
           "add_trainer_config", "check_trainer_config", "count_bpe_tokens"]

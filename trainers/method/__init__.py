"""The method: the model spec (`model_spec`, the one reader of `TRAINER.CLIP_AGIQA.*`), the model
(`custom_clip`, `prompt_learner`, `similarity_head`, `prompt_template`, `encoder_tuning`) and its
numeric precision (`precision`). Imports `clip` and `dassl` only."""

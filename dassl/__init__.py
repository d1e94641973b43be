"""Compact, API-compatible subset of Dassl.pytorch used by CoOp-style trainers.

Compatibility surface (module paths, names, config keys and defaults of Dassl.pytorch 0.6.3, so
that code and yaml files written for upstream Dassl keep working; `tests/test_dassl_compat.py`
imports a CoOp-style module written against it):
- `dassl.config`: `get_cfg_default`;
- `dassl.engine`: `TRAINER_REGISTRY`, `build_trainer`, `TrainerBase`, `SimpleTrainer`, `TrainerX`
  (hooks `check_cfg`, `build_model`, `forward_backward`, `parse_batch_train`/`_test`,
  `model_inference`, `register_model`, `model_backward_and_update`, `load_model`, `test`);
- `dassl.data`: `DataManager`, `dassl.data.datasets`: `DATASET_REGISTRY`, `DatasetBase`, `Datum`;
  `dassl.data.transforms.build_transform`;
- `dassl.optim`: `build_optimizer`, `build_lr_scheduler`; `dassl.metrics`: `compute_accuracy`;
  `dassl.evaluation`: `build_evaluator`;
- `dassl.utils`: `setup_logger`, `set_random_seed`, `collect_env_info`, `mkdir_if_missing`,
  `read_json`, `write_json`, `listdir_nohidden`, `save_checkpoint`, `load_checkpoint`,
  `resume_from_checkpoint`, `load_pretrained_weights`.
Everything else (IQA evaluation, `read_checkpoint` / `ModuleCheckpoints`, best-epoch
selection in `dassl.engine.selection`, run directories, Ctrl-C handling) is this project's own.
"""

__version__ = "0.6.3+compact"

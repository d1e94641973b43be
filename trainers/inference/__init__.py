"""Inference outside the trainer: `run_model` rebuilds a run directory's model from its
checkpoints (and saved model spec); `scorer.load_scorer(run_dir)` scores images with it."""

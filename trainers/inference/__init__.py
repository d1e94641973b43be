"""Inference outside the trainer: `run_model.TrainedRun` reads a run's checkpoints once (spec,
recorded precision, weights) and `run_model.load_run_model` rebuilds its model;
`scorer.load_scorer(run_dir)` scores images with it. Knows the model, not the trainer."""

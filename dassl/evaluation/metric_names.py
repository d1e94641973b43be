"""The IQA metrics' names, written once: the evaluator computes them in this order, and the
tables, plots and reports (`results.json` readers, `score.py`, the sweep, `scripts/demo.sh`)
take their columns from here."""
from __future__ import annotations

__all__ = ["IQA_METRICS", "RAW_METRICS", "CORRELATIONS"]

# name -> label, in the order results list them; the first is the model-selection metric.
# `*_fitted`: after the 4-parameter logistic map of the predictions to the MOS scale.
IQA_METRICS = {"srcc": "SRCC", "plcc": "PLCC", "krcc": "KRCC", "rmse": "RMSE",
               "plcc_fitted": "PLCC (fitted)", "rmse_fitted": "RMSE (fitted)"}
# The metrics of the predictions as they are: report lines, plot titles, summaries.
RAW_METRICS = tuple(name for name in IQA_METRICS if not name.endswith("_fitted"))
# The correlations (free of the MOS scale, so comparable between databases).
CORRELATIONS = tuple(name for name in RAW_METRICS if name != "rmse")

"""Evaluators selected by ``cfg.TEST.EVALUATOR``."""
from .build import EVALUATOR_REGISTRY, build_evaluator
from .evaluator import (IQA, Classification, EvaluatorBase, fit_logistic_4, iqa_metrics,
                        logistic_4)

__all__ = ["EVALUATOR_REGISTRY", "build_evaluator", "EvaluatorBase", "IQA", "Classification",
           "iqa_metrics", "logistic_4", "fit_logistic_4"]

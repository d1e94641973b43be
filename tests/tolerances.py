"""Numerical tolerances of the test suite and the precision bounds they come from.

A tolerance must let any CPU that computes correctly pass and a real difference fail. Two
results of the same maths differ by rounding only when they are computed in another order:
another batch size or thread count (GEMM blocking), a batched kernel instead of a loop, a fused
formula, another CPU's SIMD width. Rounding is bounded by the unit roundoff of the format:

- float32: 24-bit significand, ``FP32_EPS = 2**-23 = 1.19e-7``;
- float16: 11-bit significand, ``FP16_EPS = 2**-10 = 9.8e-4``;
- bfloat16: 8-bit significand, ``BF16_EPS = 2**-7 = 7.8e-3``;
- float64: ``FP64_EPS = 2**-52 = 2.2e-16``.

A dot product of K terms computed in two orders differs by about ``sqrt(K) * eps`` of the
terms' magnitude (rounding errors of random sign; the worst case K * eps needs every error
aligned, which blocked sums do not produce); a forward pass chains a few dozen such stages,
whose errors add in quadrature again. The bounds below take the widest sums in the suite
(K <= 512: the real ViT-B/16 feature width; the tiny test CLIP has width 64 and a head of
7 x 64 inputs) and the longest chains (<= 20 stages: 2 transformer blocks of the tiny CLIP,
projection, normalisation, 3 head layers), times a safety factor of 4.

What a real difference looks like, for comparison: another image, crop, weight, level prompt or
a swapped batch row moves a prediction of the tiny models by more than 1e-3 (their predictions
of distinct images differ by more than 1e-2), a feature component by more than 1e-3, a metric
(SRCC/PLCC over <= 100 images) by more than 1e-3.
"""
from __future__ import annotations

import math

FP64_EPS = 2.0 ** -52
FP32_EPS = 2.0 ** -23
FP16_EPS = 2.0 ** -10
BF16_EPS = 2.0 ** -7

SAFETY = 4.0
"""Margin over the statistical rounding estimate (a 4-sigma bound for errors of random sign)."""

WIDEST_SUM = 512
"""Terms of the widest dot product in the suite (ViT-B/16's 512-d features)."""

LONGEST_CHAIN = 20
"""Rounding stages of the longest computation compared (tiny-CLIP forward plus the head)."""


def reorder_atol(magnitude: float, eps: float = FP32_EPS, terms: int = WIDEST_SUM,
                 stages: int = LONGEST_CHAIN) -> float:
    """Absolute bound on the difference of two values of size ``magnitude`` computed by the
    same maths in another order: ``SAFETY * sqrt(stages * terms) * eps * magnitude``."""
    return SAFETY * math.sqrt(stages * terms) * eps * magnitude


EXACT = {"rtol": 0.0, "atol": 0.0}
"""Same inputs through the same kernels in the same order (a value copied, saved and loaded, or
recomputed by the same call): bit-identical on any CPU, since PyTorch's CPU kernels are
deterministic for a fixed shape and thread count."""

UNIT_ATOL = reorder_atol(1.0)  # 4.8e-5
"""Float32 values of order 1 (unit-norm features, cosine logits, normalised pixels, a norm that
should be 1) computed in another order. A real difference is > 1e-3."""

MOS_ATOL = reorder_atol(5.0)  # 2.4e-4
"""Float32 predictions on the MOS scales of the tests (|MOS| <= 5) computed in another order
(batch composition, threads, batched or looped kernels). A real difference is > 1e-3."""

MOS_CSV_ATOL = MOS_ATOL
"""A prediction written with ``repr(float)`` to a CSV and read back is exact; the bound is the
one of the computation that produced it (``MOS_ATOL``)."""

FP16_CTX_ATOL = 1e-2
"""Predictions of a model whose context vectors were rounded to float16 (the original code's
checkpoints) against the float32 ones: ctx components of size <= 0.5 (random init N(0, 0.02),
a few SGD steps) move by <= FP16_EPS/2 * 0.5 = 2.4e-4 each; through the frozen text tower (gain
of order 10 on the tiny CLIP) and the head that is a few 1e-3 on a MOS, so 1e-2. The same test
then loads the rounded ctx into the float32 model and compares with ``MOS_ATOL``."""

FP16_FORWARD_ATOL = SAFETY * math.sqrt(LONGEST_CHAIN) * FP16_EPS  # 1.75e-2
"""A forward pass of order-1 values in OpenAI's mixed float16 layout against the same weights in
float32: each stage's output is rounded to float16 (relative FP16_EPS / 2; kernels accumulate
in float32), and the roundings of <= LONGEST_CHAIN stages add in quadrature. A real difference
(another context, weight or input) is > 0.1 on these outputs."""

METRIC_REL = 1e-6
"""Relative bound (pytest.approx's default) for float64 metrics and statistics recomputed from
the same values, possibly in another order or by an equivalent formula: float64 rounding over
<= 1e4 terms is <= 1e4 * FP64_EPS = 2e-12, far below this; a real difference is far above it
(one adjacent rank swap among n = 100 images moves SRCC by 12 / (n (n^2 - 1)) = 1.2e-5)."""


FIT_REL = 1e-6
"""Relative bound for the logistic-fitted metrics (``plcc_fitted``, ``rmse_fitted``) of the same
predictions fitted twice. ``scipy.optimize.curve_fit`` stops when a step changes the parameters
or the residual by less than ``xtol = ftol = 1.49e-8`` (relative); NumPy's SIMD reductions round
differently with the arrays' memory alignment, so two fits of identical inputs can stop at
different iterates within that tolerance, moving the fitted metric by about ``xtol`` times the
fit's condition (<= 1e2 for the tests' <= 100 images): 1e-9 to 1e-7 observed at 8 images. A real
difference (another model or another prediction) moves it by more than 1e-3."""


def assert_same_metrics(actual: dict, expected: dict) -> None:
    """The IQA metrics of one set of predictions evaluated twice: the same keys; the rank and
    closed-form metrics within ``METRIC_REL``, the fitted ones within ``FIT_REL``; NaN/None (an
    undefined metric) only where the other is undefined too."""
    assert list(actual) == list(expected)
    for key, value in expected.items():
        other = actual[key]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            assert other is None or (isinstance(other, float) and math.isnan(other)), key
            continue
        rel = FIT_REL if key.endswith("_fitted") else METRIC_REL
        assert math.isclose(other, value, rel_tol=rel, abs_tol=0.0), (key, other, value)


def assert_same_outcome(actual, expected, where: str = "") -> None:
    """Two run records (nested dicts/lists of results.json blocks, prediction text) that must be
    the same: every ``metrics`` dict compared by ``assert_same_metrics``, everything else
    exactly (predictions are written with ``repr`` and must be bit-identical)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and list(actual) == list(expected), where
        for key, value in expected.items():
            if key == "metrics" and isinstance(value, dict):
                assert_same_metrics(actual[key], value)
            else:
                assert_same_outcome(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_same_outcome(a, e, f"{where}[{index}]")
    else:
        assert actual == expected, (where, actual, expected)

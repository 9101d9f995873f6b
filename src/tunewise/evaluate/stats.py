"""Scores, intervals and paired tests: the numbers behind every claim `tunewise eval` makes.

Every metric is computed from per-row values so that one set of bootstrap resamples (the same row
indices for every candidate) gives both each metric's interval (at EvalConfig.confidence) and the paired difference
against the baseline. Corpus metrics (BLEU, chrF, macro-F1) are resampled through their sufficient
statistics, so 1,000 resamples of 300 rows take milliseconds, not minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Interval:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict:
        return {"value": _round(self.value), "low": _round(self.low), "high": _round(self.high)}


def _round(x: float) -> float:
    return float(round(float(x), 6))


def resample_indices(n: int, samples: int, seed: int) -> np.ndarray:
    """`samples` x `n` row indices drawn with replacement; shared by all candidates of one evaluation."""
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def mean_interval(per_row: np.ndarray, indices: np.ndarray, confidence: float) -> Interval:
    """Mean of per-row values with a percentile bootstrap interval."""
    per_row = np.asarray(per_row, dtype=float)
    boot = per_row[indices].mean(axis=1)
    return Interval(float(per_row.mean()), *_percentiles(boot, confidence))


def ratio_interval(numer: np.ndarray, denom: np.ndarray, indices: np.ndarray, confidence: float) -> Interval:
    """sum(numer)/sum(denom) (a corpus score from per-row statistics) with a bootstrap interval."""
    numer, denom = np.asarray(numer, dtype=float), np.asarray(denom, dtype=float)
    total = denom.sum()
    value = numer.sum() / total if total else 0.0
    bn, bd = numer[indices].sum(axis=1), denom[indices].sum(axis=1)
    boot = np.divide(bn, bd, out=np.zeros_like(bn), where=bd > 0)
    return Interval(float(value), *_percentiles(boot, confidence))


def macro_f1_from_codes(truth: np.ndarray, pred: np.ndarray, n_labels: int) -> np.ndarray | float:
    """Macro-F1 over the reference labels (codes 0..n_labels-1; -1 = unparseable prediction).

    `truth`/`pred` may be 2-D (one resample per row) to score many resamples at once. Labels absent
    from a resample's references are left out of its average, as scikit-learn does with `labels=` unset.
    """
    truth2, pred2 = np.atleast_2d(truth), np.atleast_2d(pred)
    scores = np.zeros(truth2.shape[0])
    present_any = np.zeros(truth2.shape[0])
    for label in range(n_labels):
        t, p = truth2 == label, pred2 == label
        tp = (t & p).sum(axis=1)
        fp = (~t & p).sum(axis=1)
        fn = (t & ~p).sum(axis=1)
        denom = 2 * tp + fp + fn
        f1 = np.divide(2 * tp, denom, out=np.zeros(len(tp), dtype=float), where=denom > 0)
        # a label counts in the average when it is a reference or a prediction (sklearn's union of labels)
        counted = (t.sum(axis=1) + p.sum(axis=1)) > 0
        scores += np.where(counted, f1, 0.0)
        present_any += counted
    result = np.divide(scores, present_any, out=np.zeros_like(scores), where=present_any > 0)
    return result if np.ndim(truth) == 2 else float(result[0])


def macro_f1_interval(truth: np.ndarray, pred: np.ndarray, n_labels: int, indices: np.ndarray, confidence: float) -> Interval:
    value = macro_f1_from_codes(truth, pred, n_labels)
    boot = macro_f1_from_codes(truth[indices], pred[indices], n_labels)
    return Interval(float(value), *_percentiles(boot, confidence))


def mcnemar_exact(baseline_correct: np.ndarray, candidate_correct: np.ndarray) -> tuple[float, int, int]:
    """Exact (binomial) McNemar test on paired right/wrong outcomes: (two-sided p, b, c).

    b = rows the baseline got right and the candidate wrong; c = the reverse. Under the null the
    discordant rows split 50/50, so p = P(Binomial(b+c, 1/2) as extreme as min(b, c)).
    """
    from scipy.stats import binom

    base, cand = np.asarray(baseline_correct, dtype=bool), np.asarray(candidate_correct, dtype=bool)
    b = int((base & ~cand).sum())
    c = int((~base & cand).sum())
    n = b + c
    if n == 0:
        return 1.0, b, c
    p = min(1.0, 2.0 * float(binom.cdf(min(b, c), n, 0.5)))
    return p, b, c


def paired_bootstrap(base_boot: np.ndarray, cand_boot: np.ndarray, diff: float, confidence: float) -> tuple[float, float, float]:
    """Interval of the paired difference and a two-sided bootstrap p-value, from per-resample scores.

    Both arrays are scores over the *same* resampled rows, so their difference keeps the pairing.
    p is twice the share of resampled differences on the other side of zero (at least 1/samples).
    """
    deltas = np.asarray(cand_boot) - np.asarray(base_boot)
    low, high = _percentiles(deltas, confidence)
    if diff > 0:
        tail = float((deltas <= 0).mean())
    elif diff < 0:
        tail = float((deltas >= 0).mean())
    else:
        return 1.0, low, high
    p = min(1.0, max(2 * tail, 1.0 / len(deltas)))
    return p, low, high


def format_p(p: float | None) -> str:
    if p is None:
        return "p=n/a"
    if p < 0.001:
        return "p<0.001"
    return f"p={p:.3f}" if p < 0.01 else f"p={p:.2f}"


def points(x: float) -> str:
    """A 0-1 score difference in percentage points, one decimal."""
    return f"{x * 100:.1f}"


def verdict_line(candidate: str, baseline: str, diff: float, low: float, high: float, p: float, significant: bool, confidence: float = 0.95) -> str:
    """'the fine-tune beats few-shot by 7.1 points (95% CI 4.0–10.2, p<0.001)' or 'no significant difference ...'."""
    level = f"{confidence * 100:g}% CI"
    if not significant:
        sign = "+" if diff >= 0 else "−"
        return (
            f"no significant difference between {candidate} and {baseline}: {sign}{points(abs(diff))} points "
            f"({level} {points(low)}–{points(high)}, {format_p(p)})"
        )
    if diff > 0:
        return f"{candidate} beats {baseline} by {points(diff)} points ({level} {points(low)}–{points(high)}, {format_p(p)})"
    return f"{baseline} beats {candidate} by {points(-diff)} points ({level} {points(-high)}–{points(-low)}, {format_p(p)})"


__all__ = [
    "Interval",
    "resample_indices",
    "mean_interval",
    "ratio_interval",
    "macro_f1_from_codes",
    "macro_f1_interval",
    "mcnemar_exact",
    "paired_bootstrap",
    "format_p",
    "verdict_line",
]

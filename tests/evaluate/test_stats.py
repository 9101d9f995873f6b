"""Statistics on constructed predictions: intervals, McNemar, paired bootstrap, the verdict line, task metrics."""

from __future__ import annotations

import numpy as np
import pytest

from tunewise.evaluate import stats
from tunewise.evaluate.metrics import score
from tunewise.evaluate.tasks import Example, Task


def test_mcnemar_exact_matches_the_binomial_formula():
    # 10 rows only the baseline gets right, 2 only the candidate: p = 2 * P(Bin(12, 1/2) <= 2) = 2 * 79 / 4096.
    base = np.array([1] * 10 + [0] * 2 + [1] * 20 + [0] * 8, dtype=bool)
    cand = np.array([0] * 10 + [1] * 2 + [1] * 20 + [0] * 8, dtype=bool)
    p, b, c = stats.mcnemar_exact(base, cand)
    assert (b, c) == (10, 2)
    assert p == pytest.approx(2 * 79 / 4096)
    assert stats.mcnemar_exact(cand, base)[0] == pytest.approx(p)  # symmetric


def test_mcnemar_without_discordant_rows_or_balanced_is_not_significant():
    same = np.array([1, 0, 1, 1], dtype=bool)
    assert stats.mcnemar_exact(same, same)[0] == 1.0
    assert stats.mcnemar_exact(np.array([1, 0], dtype=bool), np.array([0, 1], dtype=bool))[0] == 1.0


def test_bootstrap_interval_contains_the_value_and_narrows_with_more_rows():
    rng = np.random.default_rng(1)
    small = (rng.random(50) < 0.7).astype(float)
    large = (rng.random(2000) < 0.7).astype(float)
    a = stats.mean_interval(small, stats.resample_indices(len(small), 1000, 0), 0.95)
    b = stats.mean_interval(large, stats.resample_indices(len(large), 1000, 0), 0.95)
    for interval in (a, b):
        assert interval.low <= interval.value <= interval.high
    assert (b.high - b.low) < (a.high - a.low)
    assert 0.6 < b.low < 0.7 < b.high < 0.73


def test_macro_f1_matches_scikit_learn_and_vectorizes_over_resamples():
    from sklearn.metrics import f1_score

    truth = np.array([0, 0, 1, 1, 2, 2, 2, 0, 1, 2])
    pred = np.array([0, 1, 1, 1, 2, 0, 2, 0, 2, 2])
    assert stats.macro_f1_from_codes(truth, pred, 3) == pytest.approx(f1_score(truth, pred, average="macro"))
    idx = stats.resample_indices(len(truth), 5, 0)
    many = stats.macro_f1_from_codes(truth[idx], pred[idx], 3)
    for row, value in zip(idx, many):
        assert value == pytest.approx(f1_score(truth[row], pred[row], average="macro"))


def test_paired_bootstrap_sees_a_consistent_gain():
    rng = np.random.default_rng(0)
    base = rng.random(300) * 0.5
    cand = base + 0.1 + rng.normal(0, 0.02, 300)
    idx = stats.resample_indices(300, 1000, 0)
    diff = float(cand.mean() - base.mean())
    p, low, high = stats.paired_bootstrap(base[idx].mean(axis=1), cand[idx].mean(axis=1), diff, 0.95)
    assert low <= diff <= high and low > 0.09
    assert p == pytest.approx(1 / 1000)


def test_verdict_lines():
    assert (
        stats.verdict_line("the fine-tune", "few-shot", 0.0712, 0.040, 0.102, 0.0002, True)
        == "the fine-tune beats few-shot by 7.1 points (95% CI 4.0–10.2, p<0.001)"
    )
    assert (
        stats.verdict_line("zero-shot", "few-shot", -0.05, -0.08, -0.02, 0.004, True)
        == "few-shot beats zero-shot by 5.0 points (95% CI 2.0–8.0, p=0.004)"
    )
    line = stats.verdict_line("the fine-tune", "few-shot", 0.012, -0.02, 0.044, 0.45, False)
    assert line.startswith("no significant difference between the fine-tune and few-shot")
    assert "p=0.45" in line


def _rows(refs):
    return [Example(i, i + 1, [{"role": "user", "content": f"q{i}"}], f"q{i}", ref) for i, ref in enumerate(refs)]


def test_classification_metrics_count_unparsed_empty_and_refused():
    task = Task("classification", ["billing", "refund"])
    rows = _rows(["billing", "refund", "billing", "refund"])
    outputs = ["Billing.", "I'm sorry, I cannot help", "", "refund"]
    scored = score(task, rows, outputs, stats.resample_indices(4, 200, 0), 0.95)
    assert scored.metrics["accuracy"]["value"] == 0.5
    assert scored.details["refused"] == 1 and scored.details["empty"] == 1 and scored.details["unparsed"] == 2
    assert scored.details["confusion"]["matrix"] == [[1, 0, 1], [0, 1, 1]]
    assert [r["prediction"] for r in scored.rows] == ["billing", None, None, "refund"]


def test_invalid_json_counts_as_a_failure_and_schema_is_checked():
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    task = Task("json", schema=schema)
    rows = _rows(['{"city": "Oslo"}'] * 4)
    outputs = ['{"city": "Oslo"}', '```json\n{"city": "Rome"}\n```', "{not json", '{"town": 3}']
    scored = score(task, rows, outputs, stats.resample_indices(4, 200, 0), 0.95)
    assert scored.metrics["json_validity"]["value"] == 0.75
    assert scored.metrics["schema_compliance"]["value"] == 0.5
    assert scored.metrics["field_accuracy"]["value"] == 0.25
    assert scored.details["invalid_json"] == 1


def test_text_metrics_are_one_for_identical_replies_and_lower_otherwise():
    task = Task("text")
    refs = ["the order ships on monday morning", "we refunded the duplicate charge today", "reset your password from the login page"]
    idx = stats.resample_indices(3, 200, 0)
    same = score(task, _rows(refs), refs, idx, 0.95)
    for metric in ("rouge_l", "bleu", "chrf"):
        assert same.metrics[metric]["value"] == pytest.approx(1.0)
    other = score(task, _rows(refs), ["the order ships soon", "no refund", "reset it"], idx, 0.95)
    for metric in ("rouge_l", "bleu", "chrf"):
        m = other.metrics[metric]
        assert m["value"] < 1.0 and m["low"] <= m["value"] <= m["high"]

"""Label checks (tunewise.data.labels): distribution, conflicts, confident learning, annotator agreement."""

from __future__ import annotations

import random

import pytest

from tunewise.data.labels import annotator_agreement, fleiss_kappa, is_classification, label_report

TOPICS = {
    "billing": ["invoice", "charged", "payment", "card", "receipt", "price"],
    "bug": ["crash", "error", "broken", "blank", "screen", "freezes"],
    "access": ["password", "login", "locked", "reset", "2fa", "account"],
}


def _dataset(n_per_class=60, flips=6, seed=0):
    rng = random.Random(seed)
    texts, labels = [], []
    for label, words in TOPICS.items():
        for i in range(n_per_class):
            texts.append(" ".join(rng.choice(words) for _ in range(6)) + f" ticket {rng.randrange(10**6)}")
            labels.append(label)
    flipped = rng.sample(range(len(labels)), flips)
    for i in flipped:
        labels[i] = next(label for label in TOPICS if label != labels[i])
    return texts, labels, set(flipped)


def test_confident_learning_finds_flipped_labels():
    texts, labels, flipped = _dataset()
    report = label_report(texts, labels, min_per_class=70)
    found = {s["row"] for s in report.suspected}
    assert len(found & flipped) / len(flipped) >= 0.8
    assert len(found - flipped) <= 3
    summary = report.summary()
    assert summary.is_classification and summary.n_classes == 3
    assert sorted(summary.small_classes) == sorted(TOPICS)  # ~60 rows each, under the bar of 70
    assert sum(summary.distribution.values()) == 180
    assert summary.imbalance_ratio >= 1.0 and summary.agreement is None and summary.kappa is None
    assert summary.agreement_meets_bar is None and summary.agreement_bar is None


def test_conflicts_come_from_duplicate_clusters():
    texts, labels, _ = _dataset(flips=0)
    labels[5] = "bug"
    report = label_report(texts, labels, clusters=[[0, 5], [1, 2]], mislabels=False)
    assert report.conflicts == [{"rows": [0, 5], "labels": ["billing", "bug"]}]


def test_free_text_replies_are_not_classification():
    assert not is_classification([f"Sure, here is answer number {i}." for i in range(100)])
    assert is_classification(["a", "b"] * 10)
    assert label_report(["x"] * 20, [f"long free text {i}" for i in range(20)]).summary().is_classification is False


def test_agreement_cohen_and_fleiss():
    two = annotator_agreement([["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"]])
    assert two.kappa_kind == "cohen" and two.mean_pairwise == 0.75 and two.kappa == pytest.approx(0.5)
    assert not two.meets_bar
    # Wikipedia's worked example of Fleiss' kappa: 10 subjects, 14 raters, 5 categories -> 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    rows = [[str(c) for c, n in enumerate(counts) for _ in range(n)] for counts in table]
    assert fleiss_kappa(rows) == pytest.approx(0.210, abs=1e-3)
    three = annotator_agreement([["x", "x", "x"]] * 9 + [["x", "y", None]])
    assert three.kappa_kind == "fleiss" and three.meets_bar and three.rows == 10


def test_agreement_is_judged_against_the_configured_bar():
    from tunewise.data.config import Thresholds

    rows = [["a", "a"]] * 8 + [["a", "b"]] * 2  # 80% agreement
    assert annotator_agreement(rows).bar == 0.85 and not annotator_agreement(rows).meets_bar
    lenient = annotator_agreement(rows, thresholds=Thresholds(agreement_bar=0.75))
    assert lenient.bar == 0.75 and lenient.meets_bar

"""Exact and near duplicates and contamination (tunewise.data.dedup), checked against exact Jaccard and datasketch."""

from __future__ import annotations

import random

import pytest

from tunewise.data import dedup
from tunewise.data.dedup import contamination, duplicate_clusters, find_duplicates, jaccard, shingles

WORDS = [f"w{i}" for i in range(3000)]


def _doc(rng: random.Random, n: int = 25) -> list[str]:
    return [rng.choice(WORDS) for _ in range(n)]


def _mutate(rng: random.Random, words: list[str], changes: int) -> list[str]:
    out = list(words)
    for _ in range(changes):
        out[rng.randrange(len(out))] = rng.choice(WORDS)
    return out


def test_threshold_reproduces_the_seeds_40_percent_rule():
    a = "my order 1234 never arrived and I would like a refund for the broken blender please help me today"
    b = "my order 5678 never arrived and I would like a refund for the broken toaster please help me now"
    c = "my order 5678 never came and I want a refund for the cracked toaster can you help me today"
    assert jaccard(a, b) >= 0.4 > jaccard(a, c)
    assert duplicate_clusters([a, c, b]) == [[0, 2]]
    assert shingles("Hi there") == {"hi there"}


def test_exact_duplicates_ignore_case_and_whitespace():
    texts = ["Reset my password", "where is my parcel", "reset   my PASSWORD\n", "RESET my password"]
    report = find_duplicates(texts)
    assert report.clusters == [[0, 2, 3]]
    assert report.kinds == ["exact"]
    assert report.removable == 2
    assert report.keep_mask().tolist() == [True, True, False, False]


def test_planted_near_duplicates_are_clustered_and_random_rows_are_not():
    rng = random.Random(0)
    base = [_doc(rng) for _ in range(600)]
    texts = [" ".join(w) for w in base]
    planted = []
    for i in range(0, 600, 6):
        texts.append(" ".join(_mutate(rng, base[i], 2)))  # 2 of 25 words changed: Jaccard ~0.6
        planted.append((i, len(texts) - 1))
    report = find_duplicates(texts)
    cluster_of = {row: n for n, c in enumerate(report.clusters) for row in c}
    found = sum(cluster_of.get(a) is not None and cluster_of.get(a) == cluster_of.get(b) for a, b in planted)
    assert found == len(planted)
    assert report.near_clusters == len(planted) and report.exact_clusters == 0
    # every pair inside a cluster really is over the threshold (no LSH false positives survive)
    for cluster in report.clusters:
        assert jaccard(texts[cluster[0]], texts[cluster[1]]) >= 0.4


def test_clusters_join_transitively_and_combine_exact_and_near():
    rng = random.Random(1)
    a = _doc(rng, 30)
    b = _mutate(rng, a, 3)
    texts = [" ".join(a), " ".join(x for x in _doc(rng)), " ".join(b), " ".join(a).upper()]
    assert duplicate_clusters(texts) == [[0, 2, 3]]
    assert find_duplicates(texts).kinds == ["near"]


def test_contamination_reports_exact_and_near_with_scores():
    rng = random.Random(2)
    train_words = [_doc(rng) for _ in range(300)]
    train = [" ".join(w) for w in train_words]
    eval_texts = [" ".join(_doc(rng)) for _ in range(50)]
    eval_texts[3] = train[10].upper()
    eval_texts[7] = " ".join(_mutate(rng, train_words[20], 2))
    hits = contamination(train, eval_texts)
    by_eval = {h.eval_index: h for h in hits}
    assert set(by_eval) == {3, 7}
    assert by_eval[3].kind == "exact" and by_eval[3].score == 1.0 and by_eval[3].train_index == 10
    assert by_eval[7].kind == "near" and by_eval[7].train_index == 20
    assert by_eval[7].score == pytest.approx(jaccard(train[20], eval_texts[7]), abs=1e-4)


def test_agrees_with_datasketch_reference():
    datasketch = pytest.importorskip("datasketch")
    rng = random.Random(3)
    base = [_doc(rng) for _ in range(400)]
    texts = [" ".join(w) for w in base] + [" ".join(_mutate(rng, base[i], 2)) for i in range(0, 400, 4)]
    ours = find_duplicates(texts).keep_mask()
    lsh = datasketch.MinHashLSH(threshold=0.4, num_perm=128, params=(dedup.BANDS, dedup.ROWS_PER_BAND))
    sketches = {}
    kept = []
    for i, text in enumerate(texts):
        m = datasketch.MinHash(num_perm=128)
        m.update_batch([s.encode() for s in shingles(text)])
        if not any(sketches[k].jaccard(m) >= 0.4 for k in lsh.query(m)):
            kept.append(i)
        lsh.insert(i, m)
        sketches[i] = m
    ours_kept = set(ours.nonzero()[0].tolist())
    agreement = len(ours_kept & set(kept)) / len(ours_kept | set(kept))
    assert agreement >= 0.98


def test_streaming_index_equals_one_shot():
    rng = random.Random(4)
    texts = [" ".join(_doc(rng)) for _ in range(200)]
    texts += [texts[5], texts[150].title()]
    index = dedup.DedupIndex()
    for start in range(0, len(texts), 37):
        index.add(texts[start : start + 37])
    assert index.report(texts).clusters == duplicate_clusters(texts) == [[5, 200], [150, 201]]


def test_empty_and_tiny_inputs():
    assert duplicate_clusters([]) == []
    assert duplicate_clusters(["", ""]) == [[0, 1]]
    assert contamination([], ["x"]) == []
    assert contamination(["a b"], []) == []

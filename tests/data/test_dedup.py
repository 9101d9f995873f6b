"""Exact and near duplicates and contamination (tunewise.data.dedup), checked against exact Jaccard and datasketch."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    import datasketch  # a dev dependency: missing, the test fails instead of skipping
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


_TEXT = st.text(alphabet=st.sampled_from(list("ab Σσς İi_1\t\n.é\u00a0\u2003-") + ["\ud800", "ﬁ", "Ǆ"]), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TEXT, min_size=1, max_size=6))
def test_bulk_hashes_see_the_same_shingles_and_normal_form_as_the_string_functions(texts):
    # The fast path (array passes over code points) must agree with `shingles` and `normalize`, which
    # define a duplicate, on Unicode case folding, odd whitespace and lone surrogates alike.
    texts = texts + [" ".join(t.split()) for t in texts] + [t.upper() for t in texts]
    exact, hashes, offsets = dedup.hash_rows(texts)
    for i, text in enumerate(texts):
        assert len(set(hashes[offsets[i] : offsets[i + 1]].tolist())) == max(1, len(shingles(text)))
        for j, other in enumerate(texts):
            assert (exact[i] == exact[j]) == (dedup.normalize(text) == dedup.normalize(other))
            left, right = (set(hashes[offsets[k] : offsets[k + 1]].tolist()) for k in (i, j))
            assert (left == right) == (shingles(text) == shingles(other))


def test_pair_jaccard_is_the_exact_jaccard():
    rng = random.Random(5)
    texts = [" ".join(_doc(rng, rng.randrange(0, 30))) for _ in range(60)]
    pairs = np.array([(i, j) for i in range(60) for j in range(i + 1, 60)])
    scores = dedup.pair_jaccard(pairs, texts, texts, block=97)
    assert scores.tolist() == pytest.approx([jaccard(texts[i], texts[j]) for i, j in pairs.tolist()])


def test_large_buckets_still_link_every_member():
    # 40 copies of a template with one word changed share most bands: the star-and-chain linking of
    # buckets over _ALL_PAIRS_MAX_BUCKET members must still put all of them in one cluster.
    template = "please reset the password of my account because i cannot log in since this morning at all".split()
    texts = [" ".join(template[:5] + [f"user{i}"] + template[6:]) for i in range(40)] + ["something else entirely here"]
    assert duplicate_clusters(texts) == [list(range(40))]



def _helper_corpus() -> list[str]:
    rng = random.Random(6)
    base = [_doc(rng) for _ in range(2_600)]
    texts = [" ".join(words) for words in base]
    texts += [" ".join(_mutate(rng, base[i], 2)) for i in range(0, 2_600, 13)]  # near duplicates
    texts += [texts[i].upper() for i in range(3, 2_600, 97)] + ["caf\u00e9 \ud800 lone surrogate", ""]
    return texts


def _share_small_chunks(monkeypatch) -> None:
    monkeypatch.setattr(dedup, "PARALLEL_FROM_ROWS", 1_000)
    monkeypatch.setattr(dedup, "HASH_BLOCK", 250)  # more, smaller blocks to share
    monkeypatch.setattr(dedup, "_usable_cpus", lambda: 2)


def test_a_helper_process_sketches_part_of_big_inputs_with_the_same_result(monkeypatch):
    from tunewise.data.helper_process import HelperProcess

    texts = _helper_corpus()
    index = dedup.DedupIndex(parallel=False)
    index.add(texts)
    alone = index.report(texts)
    jobs = []
    submit = HelperProcess.submit
    monkeypatch.setattr(HelperProcess, "submit", lambda self, task, *args: (jobs.append(task), submit(self, task, *args))[1])
    _share_small_chunks(monkeypatch)
    monkeypatch.setattr(dedup, "_SHARED_CHECKS_FROM", 1)
    index = dedup.DedupIndex()
    index.add(texts[:1_000])  # the helper starts here; a chunk under two blocks stays in-process
    index._helper._ready.wait(timeout=10)  # let it get ready, so that the next chunk is shared
    index.add(texts[1_000:])
    pair_scores: dict = {}
    shared = index.report(texts, pair_scores=pair_scores)
    assert {"sketch", "pairs", "jaccard"} <= set(jobs) and index._helper is None  # it shared all three, then stopped
    assert all(score >= 0.4 for score in pair_scores.values())
    assert shared.clusters == alone.clusters and shared.kinds == alone.kinds
    assert alone.near_clusters >= 190 and alone.exact_clusters >= 25


def test_a_helper_that_dies_midway_changes_nothing(monkeypatch):
    from tunewise.data.helper_process import HelperProcess

    texts = _helper_corpus()
    expected = dedup.DedupIndex(parallel=False)
    expected.add(texts)
    submit = HelperProcess.submit

    def submit_then_die(self, *args):
        future = submit(self, *args)
        self._proc.kill()
        return future

    monkeypatch.setattr(HelperProcess, "submit", submit_then_die)
    _share_small_chunks(monkeypatch)
    index = dedup.DedupIndex()
    index.add(texts[:1_000])
    index._helper._ready.wait(timeout=10)
    index.add(texts[1_000:])
    assert not index.parallel  # it gave up on the helper and sketched the rest itself
    assert index.report(texts).clusters == expected.report(texts).clusters


def test_the_helper_sketches_odd_text_exactly_as_we_do():
    from tunewise.data.helper_process import HelperProcess

    rows = ["a\ud83d", "\ude00b", "", "caf\u00e9\n\x00", "\U0001f600 x", "Stra\u00dfe  STRASSE"]
    helper = HelperProcess("tunewise.data.minhash:sketch_rows")
    try:
        keys, sigs = helper.submit(rows).result(timeout=60)
    finally:
        helper.close()
    local_keys, local_sigs = dedup.sketch_rows(rows)
    assert keys.tolist() == local_keys.tolist() and sigs.tolist() == local_sigs.tolist()

"""Holding out an eval set (tunewise.data.split): stratified, seeded, and duplicate clusters never straddle train and eval."""

from __future__ import annotations

import json
import random
from collections import Counter

import numpy as np
import pytest

from tunewise.data.dedup import duplicate_clusters
from tunewise.data.formats import example_label, example_text, load_examples
from tunewise.data.split import choose_eval, split
from tunewise.errors import DataError

WORDS = [f"word{i}" for i in range(2000)]


def _row(text: str, label: str) -> str:
    return json.dumps({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": label}]})


@pytest.fixture
def labeled(tmp_path):
    """200 rows, labels 60/30/10 %, with 10 clusters of 3 near-identical rows and one unreadable line."""
    rng = random.Random(7)
    labels = ["billing"] * 120 + ["bug"] * 60 + ["account"] * 20
    rng.shuffle(labels)
    lines = []
    for i, label in enumerate(labels):
        if i % 20 == 0 and i + 2 < len(labels):  # a cluster: this row and the next two share their words
            base = [rng.choice(WORDS) for _ in range(30)]
        elif i % 20 in (1, 2):
            base = list(base)
            base[rng.randrange(30)] = rng.choice(WORDS)
            labels[i] = labels[i - 1]  # a cluster has one label
        else:
            base = [rng.choice(WORDS) for _ in range(30)]
        lines.append(_row(" ".join(base), labels[i]))
    lines.insert(50, "{broken")
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _read(path):
    return load_examples(path).examples


def test_split_is_stratified_exact_in_size_and_loses_no_row(labeled, tmp_path):
    result = split(labeled, eval_size=50, seed=1, out_dir=tmp_path / "out", register=False)
    train, held = _read(result.train_path), _read(result.eval_path)
    assert (len(train), len(held), result.rejected) == (150, 50, 1)
    assert result.stratified
    everything = Counter(example_label(e) for e in train + held)
    eval_share = Counter(example_label(e) for e in held)
    for label, count in everything.items():
        assert abs(eval_share[label] - 50 * count / 200) <= 3, (label, eval_share)
    assert {label: sum(pair) for label, pair in result.label_counts.items()} == dict(everything)


def test_no_duplicate_cluster_straddles_train_and_eval(labeled, tmp_path):
    for seed in range(5):
        result = split(labeled, eval_size=0.3, seed=seed, out_dir=tmp_path / f"s{seed}", register=False)
        train, held = _read(result.train_path), _read(result.eval_path)
        texts = [example_text(e) for e in train + held]
        side = ["train"] * len(train) + ["eval"] * len(held)
        clusters = [c for c in duplicate_clusters(texts) if len(c) > 1]
        assert len(clusters) == 10 == result.clusters_kept_together
        for cluster in clusters:
            assert len({side[i] for i in cluster}) == 1


def test_same_seed_same_split_other_seed_other_split(labeled, tmp_path):
    a = split(labeled, eval_size=40, seed=3, out_dir=tmp_path / "a", register=False)
    b = split(labeled, eval_size=40, seed=3, out_dir=tmp_path / "b", register=False)
    c = split(labeled, eval_size=40, seed=4, out_dir=tmp_path / "c", register=False)
    assert a.eval_path.read_bytes() == b.eval_path.read_bytes() and a.train_path.read_bytes() == b.train_path.read_bytes()
    assert a.eval_path.read_bytes() != c.eval_path.read_bytes()


def test_free_text_replies_are_not_stratified(tmp_path):
    path = tmp_path / "gen.jsonl"
    path.write_text("\n".join(_row(f"question {i} " + " ".join(WORDS[i * 7:i * 7 + 12]), f"answer number {i}") for i in range(30)) + "\n")
    result = split(path, eval_size=6, out_dir=tmp_path, register=False)
    assert not result.stratified and (result.train_rows, result.eval_rows) == (24, 6)


def test_eval_size_must_leave_rows_on_both_sides(labeled, tmp_path):
    with pytest.raises(DataError, match="data.jsonl: --eval-size 500"):
        split(labeled, eval_size=500, out_dir=tmp_path, register=False)


def test_split_registers_both_sides(labeled, tmp_path, store):
    result = split(labeled, eval_size=20, out_dir=tmp_path / "reg")
    assert store.get_dataset(result.train_id).rows == 180
    assert store.get_dataset(result.eval_id).rows == 20


def test_choose_eval_keeps_groups_whole_and_fills_quotas():
    groups = np.array([0, 0, 0, 3, 4, 5, 6, 7, 8, 9])
    labels = ["a"] * 5 + ["b"] * 5
    for seed in range(10):
        mask = choose_eval(groups, labels, 4, seed)
        assert mask.sum() == 4
        assert len(set(mask[:3].tolist())) == 1

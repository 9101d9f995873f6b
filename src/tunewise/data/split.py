"""Hold out an eval set: stratified by label, never splitting a duplicate cluster, seeded.

    from tunewise.data.split import split
    result = split("tickets.chat.jsonl", eval_size=300, seed=0)
    result.train_path, result.eval_path  # tickets.chat.train.jsonl, tickets.chat.eval.jsonl

Rows are first grouped by `tunewise.data.dedup.duplicate_clusters` (exact and near duplicates of the
input text), so that no eval row has a near copy in train: that is the contamination the fine-tuning guide warns
makes fine-tunes look better in eval than in production. Groups are then drawn at random (seeded)
into the eval set up to each label's share of `eval_size` (largest-remainder quotas), so the eval
label distribution matches the whole file's. scikit-learn's splitters are not used because none of
them is both group-aware and exact about the eval size: `StratifiedGroupKFold` only gives folds of
about n/k rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tunewise.data.clean import _AtomicJsonl, _register, _str
from tunewise.data.formats import Problem, Record, example_label, example_text, iter_records
from tunewise.data.quarantine import QuarantineWriter
from tunewise.errors import DataError



@dataclass
class SplitResult:
    source: Path
    train_path: Path
    eval_path: Path
    train_rows: int
    eval_rows: int
    rejected: int
    stratified: bool
    seed: int
    clusters_kept_together: int  # duplicate clusters of 2+ rows, each placed wholly on one side
    label_counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # label -> (train, eval)
    quarantine: Path | None = None
    train_id: str | None = None
    eval_id: str | None = None


def split(
    path: str | Path,
    *,
    eval_size: int | float | None = None,
    stratify: bool = True,
    seed: int | None = None,
    out_dir: str | Path | None = None,
    threshold: float | None = None,
    format: str = "auto",
    max_line_bytes: int | None = None,
    register: bool = True,
) -> SplitResult:
    """Write `<stem>.train.jsonl` and `<stem>.eval.jsonl` (chat JSONL) and register both in the store.

    `eval_size` is a row count, or a fraction of the readable rows when below 1.
    """
    from tunewise.data.config import DataConfig

    defaults = DataConfig()
    path = Path(path)
    eval_size = defaults.eval_size if eval_size is None else eval_size
    seed = defaults.seed if seed is None else seed
    threshold = defaults.near_duplicate_threshold if threshold is None else threshold
    out_dir = Path(out_dir) if out_dir is not None else path.parent
    read = {"format": format, "max_line_bytes": max_line_bytes}

    texts: list[str] = []
    labels: list[str | None] = []
    for item in iter_records(path, **read):
        if type(item) is Record:
            texts.append(example_text(item.example))
            labels.append(example_label(item.example))
    n = len(texts)
    n_eval = int(round(eval_size * n)) if 0 < eval_size < 1 else int(eval_size)
    if n_eval < 1 or n_eval >= n:
        raise DataError(f"{path}: --eval-size {eval_size} must leave rows on both sides ({n} readable rows)")

    from tunewise.data.dedup import duplicate_clusters

    group_of = np.arange(n)
    clusters = [c for c in duplicate_clusters(texts, threshold) if len(c) > 1]
    for cluster in clusters:
        group_of[cluster] = cluster[0]
    del texts
    from tunewise.data.task import detect_task

    # Stratify when the replies are labels by the detector every stage uses (up to 1,000 classes).
    stratified = bool(stratify) and detect_task(labels).type == "classification"
    if stratified:
        labels = [label.strip() or None if label is not None else None for label in labels]
    in_eval = choose_eval(group_of, labels if stratified else [None] * n, n_eval, seed)

    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    train_path, eval_path = out_dir / f"{stem}.train.jsonl", out_dir / f"{stem}.eval.jsonl"
    for output in (train_path, eval_path):
        if output.resolve() == path.resolve():
            raise DataError(f"{output}: the output would overwrite the input; pass another -o")
    index = 0
    with (
        QuarantineWriter(out_dir / f"{stem}.split.quarantine.jsonl", source=path) as quarantine,
        _AtomicJsonl(train_path) as train_out,
        _AtomicJsonl(eval_path) as eval_out,
    ):
        for item in iter_records(path, **read):
            if type(item) is Problem:
                quarantine.add_problem(item)
                continue
            (eval_out if in_eval[index] else train_out).write(item.example)
            index += 1

    counts: dict[str, tuple[int, int]] = {}
    if stratified:
        for label, chosen in zip(labels, in_eval):
            train, held = counts.get(label, (0, 0))
            counts[label] = (train, held + 1) if chosen else (train + 1, held)
    n_held = int(in_eval.sum())
    result = SplitResult(
        source=path, train_path=train_path, eval_path=eval_path, train_rows=n - n_held, eval_rows=n_held,
        rejected=quarantine.count, stratified=stratified, seed=seed, clusters_kept_together=len(clusters),
        label_counts=counts, quarantine=quarantine.written,
    )
    if register:
        meta = {"split_from": str(path.resolve()), "seed": seed, "eval_size": eval_size, "stratified": stratified,
                "threshold": threshold, "quarantine": _str(quarantine.written)}
        result.train_id = _register(train_path, rows=result.train_rows, rejected=0, role="train", parent=path, meta=meta)
        result.eval_id = _register(eval_path, rows=result.eval_rows, rejected=0, role="eval", parent=path, meta=meta)
    return result


def choose_eval(group_of: np.ndarray, labels: list[str | None], n_eval: int, seed: int) -> np.ndarray:
    """A boolean mask of exactly-or-nearly `n_eval` rows: whole groups, each label up to its quota.

    `group_of[i]` names row i's group (rows of one group go to the same side); a group counts under
    the label of its first row. Quotas split `n_eval` by label share with the largest-remainder rule;
    rows still missing after the quotas are filled from any label, without exceeding `n_eval`.
    """
    n = len(group_of)
    members: dict[int, list[int]] = {}
    for row, group in enumerate(group_of.tolist()):
        members.setdefault(group, []).append(row)
    groups = list(members.values())
    share = Counter(labels)
    exact = {label: n_eval * count / n for label, count in share.items()}
    quota = {label: int(value) for label, value in exact.items()}
    for label in sorted(exact, key=lambda lab: (exact[lab] - quota[lab], share[lab]), reverse=True)[: n_eval - sum(quota.values())]:
        quota[label] += 1
    order = np.random.default_rng(seed).permutation(len(groups))
    mask = np.zeros(n, dtype=bool)
    taken: Counter = Counter()
    total = 0
    left = []
    for position in order.tolist():
        rows = groups[position]
        label = labels[rows[0]]
        if taken[label] + len(rows) <= quota[label] and total + len(rows) <= n_eval:
            mask[rows] = True
            taken[label] += len(rows)
            total += len(rows)
        else:
            left.append(rows)
    for rows in left:  # big clusters can leave a quota short: top up from any label
        if total >= n_eval:
            break
        if total + len(rows) <= n_eval:
            mask[rows] = True
            total += len(rows)
    return mask


__all__ = ["split", "choose_eval", "SplitResult"]

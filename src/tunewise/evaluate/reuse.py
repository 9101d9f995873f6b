"""`tunewise eval --reuse EVAL`: candidates an earlier evaluation already ran keep their replies, time and cost.

Adding one candidate to a comparison (a new adapter, a distilled student) should not pay again for the
prompt baselines: a retrieval few-shot baseline is minutes of prefill on a CPU, an endpoint is money. A
candidate is reused only where its replies would be the same: the same eval rows in the same order, the
same training file for candidates that take examples from it, and the same settings that shape a reply.
Its figures are the ones measured then, and its cost basis says where they come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tunewise.errors import EvaluationError
from tunewise.evaluate.candidates import Replies
from tunewise.evaluate.config import EvalConfig
from tunewise.evaluate.tasks import Example
from tunewise.records.evaluation import Operations

# Settings that change how results are counted or how requests are sent, never what a candidate replies.
_NOT_IN_REPLIES = frozenset({
    "batch_size", "bootstrap_samples", "confidence", "alpha", "contamination_threshold", "limit", "endpoint_timeout_s",
    "endpoint_retries", "endpoint_backoff_s", "endpoint_concurrency", "judge", "judge_rubric",
})


@dataclass
class Reused:
    """One candidate as the earlier evaluation measured it."""

    replies: Replies  # its run_id is the adapter candidate's training run
    operations: Operations


@dataclass
class Reusable:
    evaluation_id: str
    candidates: dict[str, Reused] = field(default_factory=dict)
    not_reused: dict[str, str] = field(default_factory=dict)  # candidate name -> why it runs again


def reusable(store, ref: str, *, names: list[str], needs_train: dict[str, bool], eval_path, train_path,
             rows: list[Example], config: EvalConfig) -> Reusable:
    """What of evaluation `ref` the candidates `names` can take, and why the others cannot.

    Raises `EvaluationError` when nothing could be: another eval file, other rows, or other reply settings.
    """
    from tunewise.evaluate.review import comparison_results, iter_outputs, load_evaluation
    from tunewise.store import file_hash

    record = load_evaluation(store, ref)
    results = comparison_results(record)
    where = f"--reuse {record.id}"
    earlier_eval = store.get_dataset(record.dataset_id) if record.dataset_id else None
    if earlier_eval is None or earlier_eval.content_hash != file_hash(eval_path):
        raise EvaluationError(f"{where}: it scored another eval file than {eval_path}, so none of its replies apply")
    if results.rows != len(rows):
        raise EvaluationError(f"{where}: it scored {results.rows} eval rows and this evaluation scores {len(rows)} "
                              "(set the same --limit)")
    changed = sorted(key for key, value in config.model_dump().items()
                     if key not in _NOT_IN_REPLIES and record.config.get(key, value) != value)
    if changed:
        raise EvaluationError(f"{where}: its {', '.join('eval.' + key for key in changed)} differ from this evaluation's, "
                              "and they shape every reply")
    earlier_train = store.get_dataset(record.train_dataset_id) if record.train_dataset_id else None
    same_train = (earlier_train.content_hash if earlier_train else None) == (file_hash(train_path) if train_path else None)

    found = Reusable(record.id)
    measured = {c.name: c for c in results.candidates if c.completed and c.operations is not None}
    wanted = []
    for name in names:
        if name not in measured:
            found.not_reused[name] = "not in that evaluation" if results.candidate(name) is None else "it failed there"
        elif needs_train.get(name) and not same_train:
            found.not_reused[name] = "that evaluation took its examples from another training file"
        else:
            wanted.append(name)
    if not wanted:
        return found
    outputs = list(iter_outputs(results))
    for output, row in zip(outputs, rows):
        if output.line != row.line or output.input != row.text:
            raise EvaluationError(f"{where}: its row {output.index} is line {output.line} of the eval file, "
                                  f"here line {row.line}: the rows differ")
    for name in wanted:
        entries = [output.candidates.get(name) for output in outputs]
        if any(entry is None for entry in entries):
            found.not_reused[name] = "its per-row outputs are incomplete"
            continue
        candidate = measured[name]
        operations = candidate.operations.model_copy(
            update={"cost_basis": f"{candidate.operations.cost_basis}; replies, time and cost measured in evaluation {record.id}"})
        timed = all(entry.latency_ms is not None for entry in entries)
        rate = operations.requests_per_second
        replies = Replies(
            texts=[entry.output for entry in entries],
            latency_s=[entry.latency_ms / 1000 for entry in entries] if timed else None,
            tokens_in=[entry.tokens_in for entry in entries], tokens_out=[entry.tokens_out for entry in entries],
            wall_seconds=len(entries) / rate if rate else 0.0, basis=operations.cost_basis, local=candidate.kind != "endpoint",
            run_id=candidate.run_id,
        )
        found.candidates[name] = Reused(replies, operations)
    return found


__all__ = ["Reusable", "Reused", "reusable"]

"""Read what other stages stored, as their typed records (`records.audit.AuditSummary`,
`records.evaluation.EvaluationResults` and `CurveResults`), into the facts the advice needs.

What a record did not measure reads as None, never as a guess.
"""

from __future__ import annotations

from typing import Any

from tunewise.errors import EvaluationError
from tunewise.records.audit import AuditSummary
from tunewise.records.evaluation import CandidateResult, CurveResults, EvaluationResults

# The candidate kinds of records.evaluation.CandidateResult, grouped as the ROI guide compares them.
GROUPS = {"zero-shot": "prompt", "few-shot": "prompt", "endpoint": "prompt", "knn-few-shot": "retrieval",
          "adapter": "finetuned", "classic": "classic"}


def candidate_model(candidate: CandidateResult) -> str | None:
    """The model a prompt or endpoint candidate ran (its tokenizer counted the tokens); None for adapters and classic."""
    from tunewise.evaluate.specs import parse_spec

    try:
        spec = parse_spec(candidate.name)
    except EvaluationError:
        return None
    return None if spec.kind in ("adapter", "classic") else spec.model


def compare_facts(results: EvaluationResults, *, classic_margin: float = 0.01) -> dict[str, Any]:
    """Baseline, best prompt, best fine-tune, classic classifier and retrieval figures of a compare evaluation."""
    metric = results.primary_metric
    candidates = []
    for raw in results.completed():
        value = raw.metric(metric)
        if value is None:
            continue
        ops = raw.operations
        candidates.append({
            "name": raw.name,
            "spec": raw.spec,
            "group": GROUPS[raw.kind],
            "value": value.value, "low": value.low, "high": value.high,
            "comparison": raw.comparison.model_dump() if raw.comparison else None,
            "run_id": raw.run_id,
            "model": candidate_model(raw),
            "tokens_in_mean": ops.tokens_in_mean if ops else None,
            "tokens_out_mean": ops.tokens_out_mean if ops else None,
            # Measured request by request (endpoints, classic); local models run batched and only have
            # an amortised time per request, which is throughput and says nothing of one user's wait.
            "latency_p50_ms": ops.latency_p50_ms if ops else None,
            "amortized_ms_per_request": ops.amortized_ms_per_request if ops else None,
            "cost_per_1k_usd": ops.cost_per_1k_usd if ops else None,
        })

    def best(groups: set[str]) -> dict[str, Any] | None:
        pool = [c for c in candidates if c["group"] in groups]
        return max(pool, key=lambda c: c["value"]) if pool else None

    by_name = {c["name"]: c for c in candidates}
    baseline = by_name.get(results.baseline) or best({"prompt", "retrieval"})
    best_prompt = best({"prompt", "retrieval"})
    best_plain = best({"prompt"})
    best_retrieval = best({"retrieval"})
    best_finetuned = best({"finetuned"})
    classic = best({"classic"})
    best_llm = best({"prompt", "retrieval", "finetuned"})
    out: dict[str, Any] = {
        "metric": metric,
        "task_type": results.task_type,
        "candidates": candidates,
        "baseline": baseline,
        "best_prompt": best_prompt,
        "best_finetuned": best_finetuned,
        "classic": classic,
        "best_llm": best_llm,
        "prompt_candidates": sum(1 for c in candidates if c["group"] in ("prompt", "retrieval")),
        "verdict_line": results.verdict,
    }
    out["classic_matches"] = (
        None if classic is None or best_llm is None else classic["value"] >= best_llm["value"] - classic_margin
    )
    out["retrieval_helps"] = (
        None if best_retrieval is None or best_plain is None else best_retrieval["value"] > best_plain["value"] + classic_margin
    )
    if best_finetuned is not None:
        comparison = best_finetuned.get("comparison") or {}
        reference = best_prompt or baseline
        out["finetune_gain"] = best_finetuned["value"] - reference["value"] if reference else None
        out["finetune_vs"] = reference["name"] if reference else None
        out["finetune_significant"] = comparison.get("significant")
        out["finetune_p_value"] = comparison.get("p_value")
        out["finetune_comparison_vs"] = comparison.get("vs")
    return out


def audit_facts(summary: AuditSummary) -> dict[str, Any]:
    """The figures of an audit the advice uses (None where the audit did not measure them)."""
    labels, readiness = summary.labels, summary.readiness
    return {
        "rows": summary.rows,
        "rows_rejected": summary.rows_rejected,
        "eval_rows": summary.eval_rows,
        # Unique rows after dedup and, with an eval set, after dropping the rows that leak into it.
        "unique_examples": readiness.examples,
        "decontaminated": summary.eval_rows is not None,
        "agreement": labels.agreement,
        "kappa": labels.kappa,
        "is_classification": labels.is_classification,
        "n_classes": labels.n_classes,
        "suspected_mislabeled": labels.suspected_mislabeled if labels.is_classification else None,
        "conflicts": labels.conflicts,
        "billable_per_epoch": summary.tokens.billable_per_epoch,
        "tokens_median": summary.tokens.median,
        "readiness_level": readiness.level,
        "readiness_verdict": readiness.verdict,
        "contaminated_eval_rows": summary.contamination.eval_rows_affected if summary.eval_rows is not None else None,
    }


def curve_facts(results: CurveResults) -> dict[str, Any]:
    largest = max(results.sizes) if results.sizes else None
    return {
        "metric": results.metric,
        "projected_gain_doubling": results.projected_gain_doubling,
        "largest_size": largest,
        "score_at_largest": results.scores[results.sizes.index(largest)] if largest is not None else None,
    }


def run_progress(metrics: dict[str, Any] | None, steps: list[tuple[int, dict[str, Any]]] = ()) -> dict[str, Any]:
    """Whether a training run was still improving at its last evaluation, and where its best evaluation was.

    From `run.metrics` (`still_improving`, `best_step`, `steps`) when training wrote them, else from
    the recorded steps `(step, values)`: still improving when the last periodic evaluation is strictly
    the best so far (`eval_accuracy` when recorded at two steps or more, else `eval_loss`). None when
    there are fewer than two evaluations to compare.

    Example: run_progress({}, [(10, {"eval_loss": 0.9}), (20, {"eval_loss": 0.7})])["still_improving"] is True
    """
    metrics = metrics or {}
    out: dict[str, Any] = {"still_improving": None, "best_step": metrics.get("best_step"),
                           "last_step": metrics.get("steps"), "metric": None, "source": None}
    if isinstance(metrics.get("still_improving"), bool):
        out.update(still_improving=metrics["still_improving"], source="run metrics")
        return out
    periodic = [(step, values) for step, values in steps if not values.get("final")] or list(steps)
    for key, sign in (("eval_accuracy", 1.0), ("eval_loss", -1.0)):
        points = [(step, sign * float(values[key])) for step, values in periodic if isinstance(values.get(key), (int, float))]
        if len(points) < 2:
            continue
        best_step, best = max(points, key=lambda p: (p[1], -p[0]))  # the first step that reached the best value
        last_step, last = points[-1]
        out.update(still_improving=last_step == best_step and all(v < last for _, v in points[:-1]),
                   best_step=best_step, last_step=last_step, metric=key, source="recorded steps")
        return out
    return out


__all__ = ["GROUPS", "candidate_model", "compare_facts", "audit_facts", "curve_facts", "run_progress"]

"""Read what other stages stored (Audit.summary, Evaluation.results) into the facts the advice needs.

The shapes are pinned in docs/CONTRACTS.md; anything missing reads as None, never as a guess.
"""

from __future__ import annotations

from typing import Any

from tunewise.errors import EvaluationError

PROMPT_KINDS = {"zero-shot", "few-shot", "prompt", "endpoint"}
RETRIEVAL_KINDS = {"knn-few-shot", "retrieval", "rag", "retrieval-few-shot"}
FINETUNED_KINDS = {"adapter", "lora", "qlora", "full", "finetune", "fine-tune", "finetuned", "provider", "run"}
CLASSIC_KINDS = {"classic", "tfidf"}


def candidate_group(candidate: dict[str, Any]) -> str:
    """prompt | retrieval | finetuned | classic | other, from the candidate's kind or its spec prefix."""
    kind = str(candidate.get("kind") or str(candidate.get("spec") or "").split(":", 1)[0]).lower()
    if kind in RETRIEVAL_KINDS:
        return "retrieval"
    if kind in PROMPT_KINDS:
        return "prompt"
    if kind in CLASSIC_KINDS:
        return "classic"
    if kind in FINETUNED_KINDS or candidate.get("run_id"):
        return "finetuned"
    return "other"


def candidate_model(candidate: dict[str, Any]) -> str | None:
    """The model a prompt or endpoint candidate ran (its tokenizer counted the tokens); None for adapters and classic."""
    from tunewise.evaluate.specs import parse_spec

    try:
        spec = parse_spec(str(candidate.get("spec") or candidate.get("name") or ""))
    except EvaluationError:
        return None
    return None if spec.kind in ("adapter", "classic") else spec.model


def _metric(candidate: dict[str, Any], metric: str | None) -> tuple[float | None, float | None, float | None]:
    metrics = candidate.get("metrics") or {}
    value = metrics.get(metric) if metric else None
    if value is None and metrics and not metric:
        value = next(iter(metrics.values()))
    if isinstance(value, dict):
        return value.get("value"), value.get("low"), value.get("high")
    if isinstance(value, (int, float)):
        return float(value), None, None
    return None, None, None


def compare_facts(results: dict[str, Any], *, classic_margin: float = 0.01) -> dict[str, Any]:
    """Baseline, best prompt, best fine-tune, classic classifier and retrieval figures of a compare evaluation."""
    metric = results.get("primary_metric")
    candidates = []
    for raw in results.get("candidates") or []:
        if str(raw.get("status") or "completed") not in ("completed", "ok"):
            continue
        value, low, high = _metric(raw, metric)
        if value is None:
            continue
        ops = raw.get("operations") or {}
        candidates.append({
            "name": raw.get("name") or raw.get("spec"),
            "spec": raw.get("spec"),
            "group": candidate_group(raw),
            "value": value, "low": low, "high": high,
            "comparison": raw.get("comparison") or None,
            "run_id": raw.get("run_id"),
            "model": candidate_model(raw),
            "tokens_in_mean": ops.get("tokens_in_mean"),
            "tokens_out_mean": ops.get("tokens_out_mean"),
            "latency_p50_ms": ops.get("latency_p50_ms"),
            "cost_per_1k_usd": ops.get("cost_per_1k_usd"),
        })

    def best(groups: set[str]) -> dict[str, Any] | None:
        pool = [c for c in candidates if c["group"] in groups]
        return max(pool, key=lambda c: c["value"]) if pool else None

    by_name = {c["name"]: c for c in candidates}
    baseline = by_name.get(results.get("baseline")) or best({"prompt", "retrieval"})
    best_prompt = best({"prompt", "retrieval"})
    best_plain = best({"prompt"})
    best_retrieval = best({"retrieval"})
    best_finetuned = best({"finetuned"})
    classic = best({"classic"})
    best_llm = best({"prompt", "retrieval", "finetuned"})
    out: dict[str, Any] = {
        "metric": metric,
        "task_type": results.get("task_type"),
        "candidates": candidates,
        "baseline": baseline,
        "best_prompt": best_prompt,
        "best_finetuned": best_finetuned,
        "classic": classic,
        "best_llm": best_llm,
        "prompt_candidates": sum(1 for c in candidates if c["group"] in ("prompt", "retrieval")),
        "verdict_line": results.get("verdict"),
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


def audit_facts(summary: dict[str, Any]) -> dict[str, Any]:
    """The figures of an Audit.summary the advice uses (None where the audit did not measure them)."""
    labels = summary.get("labels") or {}
    tokens = summary.get("tokens") or {}
    readiness = summary.get("readiness") or {}
    return {
        "rows": summary.get("rows"),
        "rows_rejected": summary.get("rows_rejected"),
        "eval_rows": summary.get("eval_rows"),
        # Unique rows after dedup (and, since readiness records `rows`, after decontamination too).
        "unique_examples": readiness.get("examples"),
        "decontaminated": "rows" in readiness,
        "agreement": labels.get("agreement"),
        "kappa": labels.get("kappa"),
        "is_classification": labels.get("is_classification"),
        "n_classes": labels.get("n_classes"),
        "suspected_mislabeled": _count(labels.get("suspected_mislabeled")),
        "conflicts": _count(labels.get("conflicts")),
        "billable_per_epoch": tokens.get("billable_per_epoch"),
        "tokens_median": tokens.get("median"),
        "readiness_level": readiness.get("level"),
        "readiness_verdict": readiness.get("verdict"),
        "contaminated_eval_rows": (summary.get("contamination") or {}).get("eval_rows_affected"),
    }


def curve_facts(results: dict[str, Any]) -> dict[str, Any]:
    sizes = results.get("sizes") or []
    scores = results.get("scores") or []
    return {
        "metric": results.get("metric"),
        "projected_gain_doubling": results.get("projected_gain_doubling"),
        "largest_size": max(sizes) if sizes else None,
        "score_at_largest": scores[sizes.index(max(sizes))] if sizes and len(scores) == len(sizes) else None,
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


def _count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return len(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


__all__ = ["candidate_group", "candidate_model", "compare_facts", "audit_facts", "curve_facts", "run_progress"]

"""Audit and evaluation records for the advise tests, built through their types (records.audit,
records.evaluation) so that every field is one production writes; `to_store()` gives the stored JSON."""

from __future__ import annotations

from tunewise.records.audit import AuditSummary
from tunewise.records.evaluation import CurveResults, EvaluationResults


def audit_summary(*, rows: int, examples: int | None = None, eval_rows: int | None = 300, billable: int = 180_000,
                  agreement: float | None = None, suspected: int = 14, classification: bool = True) -> dict:
    examples = rows if examples is None else examples
    no_eval = eval_rows is None
    return AuditSummary.model_validate({
        "rows": rows, "rows_rejected": 3, "format_problems": 3, "format_problems_by_reason": {"no reply": 3},
        "format": "chat-jsonl", "eval_rows": eval_rows, "eval_rows_rejected": None if no_eval else 0,
        "tokens": {"total": billable, "billable_per_epoch": billable, "min": 20, "median": 150, "p95": 300, "max": 600,
                   "over_limit": 0, "context_limit": 8192, "tokenizer": "smollm2", "estimate": False, "epochs": 3,
                   "billable_all_epochs": 3 * billable, "eval_total": None if no_eval else 45_000},
        "pii": {"rows": 0, "matches": 0, "by_type": {}, "eval_rows": None if no_eval else 0,
                "eval_by_type": None if no_eval else {}},
        "duplicates": {"exact_clusters": 0, "near_clusters": 0, "rows_in_clusters": 0, "removable": rows - examples,
                       "exact_duplicate_rows": 0, "threshold": 0.8, "method": "MinHash"},
        "contamination": {"hits": 0, "eval_rows_affected": 0, "train_rows_affected": 0, "exact": 0, "near": 0},
        "labels": {"is_classification": classification, "n_classes": 12 if classification else 0,
                   "task_type": "classification" if classification else "text", "task_reason": "a closed set of replies",
                   "distribution": {}, "imbalance_ratio": 2.0 if classification else None, "small_classes": [],
                   "conflicts": 2, "suspected_mislabeled": suspected, "agreement": agreement,
                   "kappa": None if agreement is None else agreement - 0.1},
        "readiness": {"level": "coin-flip" if examples < 5000 else "lora", "verdict": f"{examples:,} unique examples",
                      "examples": examples, "rows": rows, "eval_rows": eval_rows, "eval_ok": not no_eval},
        "cost_estimates": [], "notes": [],
    }).to_store()


def candidate(spec: str, value: float, *, comparison: dict | None = None, run_id: str | None = None,
              tokens_in: float = 150, endpoint: bool = False) -> dict:
    """A completed candidate; local ones (not `endpoint`) ran batched, so they have no per-request latency."""
    kind = spec.split(":", 1)[0]
    timing = ({"latency_p50_ms": 700.0, "latency_p95_ms": 900.0} if endpoint or kind == "classic"
              else {"amortized_ms_per_request": 35.0})
    return {
        "name": spec, "spec": spec, "kind": kind, "run_id": run_id, "status": "completed",
        "metrics": {"accuracy": {"value": value, "low": value - 0.05, "high": value + 0.05}},
        "operations": {**timing, "tokens_in_mean": tokens_in, "tokens_out_mean": 5, "requests_per_second": 1.4,
                       "cost_per_1k_usd": 0.02, "cost_basis": "measured"},
        "comparison": comparison,
    }


def versus(baseline: str, diff: float, *, significant: bool = True, low: float | None = None, high: float | None = None) -> dict:
    return {"vs": baseline, "metric": "accuracy", "diff": diff, "low": diff - 0.08 if low is None else low,
            "high": diff + 0.08 if high is None else high, "p_value": 0.0001 if significant else 0.4,
            "test": "mcnemar-exact", "significant": significant}


def comparison(candidates: list[dict], *, baseline: str) -> dict:
    return EvaluationResults.model_validate({
        "task_type": "classification", "primary_metric": "accuracy", "labels": ["billing", "refund"], "baseline": baseline,
        "verdict": "...", "candidates": candidates, "confidence": 0.95, "bootstrap_samples": 200,
        "eval_path": "eval.jsonl", "train_path": "train.jsonl", "rows": 300, "hardware": "cpu ($0/h)",
    }).to_store()


def curve(doubling: float) -> dict:
    sizes, scores = [50, 100, 250, 500], [0.2, 0.35, 0.5, 0.58]
    return CurveResults.model_validate({
        "metric": "accuracy", "sizes": sizes, "scores": scores, "low": [None] * 4, "high": [None] * 4, "confidence": 0.95,
        "fit": {"model": "power", "formula": "a - b n^-c", "params": {"a": 0.7, "b": 1.0, "c": 0.5}, "sse": 0.001},
        "projected_gain_doubling": doubling, "projected_score_doubling": 0.58 + doubling,
        "run_ids": ["r1", "r2", "r3", "r4"], "evaluation_ids": [None] * 4, "statement": "doubling the data adds ...",
    }).to_store()

"""A small store with one of everything the web app shows, built without models.

Datasets (imported, cleaned from it), a completed run with logged steps, a comparison of two candidates
with per-row outputs, a decision from `advise` (no model: it reads the store), and a deployment with
logged requests, feedback and an alert, made with the deploy library as `tunewise deploy` makes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tunewise.records.evaluation import (CandidateResult, Comparison, Details, EvaluationResults, MetricValue, Operations, OutputRow,
                                         RowOutput)

LABELS = ["billing", "refund", "shipping"]
BASELINE, TUNED = "zero-shot:smollm2-135m", "adapter:run-ui0000001"


@dataclass
class Built:
    root: Path
    train_id: str
    clean_id: str
    eval_id: str
    run_id: str
    other_run_id: str
    evaluation_id: str
    deployment: str


def _rows(path: Path, n: int, planted: bool = False) -> Path:
    """`n` tickets; `planted` adds what the audit flags: an e-mail address and an exact duplicate."""
    texts = [(f"ticket {i} about {LABELS[i % 3]}", LABELS[i % 3]) for i in range(n)]
    if planted:
        texts[3] = ("please refund me, write to jane.doe@example.com", "refund")
        texts[4] = texts[3]
    with path.open("w", encoding="utf-8") as handle:
        for text, label in texts:
            handle.write(json.dumps({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": label}]}) + "\n")
    return path


def build_store(store, root: Path) -> Built:
    from tunewise.deploy.state import create_deployment

    root.mkdir(parents=True, exist_ok=True)
    train = store.add_dataset(_rows(root / "train.jsonl", 30, planted=True), format="chat", rows=30, role="train", name="tickets-train",
                              meta={"source": "tickets.csv", "source_format": "csv"})
    clean = store.add_dataset(_rows(root / "train.clean.jsonl", 27), format="chat", rows=27, role="train", name="tickets-clean",
                              parent_id=train.id, meta={"cleaned_from": str(root / "train.jsonl")})
    evals = store.add_dataset(_rows(root / "eval.jsonl", 12), format="chat", rows=12, role="eval", name="tickets-eval")
    store.add_audit(train.id, _audit_summary(), passed=True, eval_dataset_id=evals.id)

    run = store.create_run("lora", base_model="smollm2-135m", config={"learning_rate": 0.002, "epochs": 3, "lora_r": 16},
                           dataset_id=clean.id, run_id="run-ui0000001")
    for step, loss in ((5, 2.5), (10, 1.25), (15, 0.75)):
        store.add_run_step(run.id, step, {"loss": loss, "learning_rate": 0.001})
    store.add_run_step(run.id, 16, {"eval_loss": 0.5, "eval_accuracy": 0.8})
    store.update_run(run.id, status="completed", metrics={"eval_accuracy": 0.8, "steps": 16}, cost_usd=0.0123, wall_seconds=61.0,
                     artifacts={"adapter": str(root / "adapter")})
    other = store.create_run("lora", base_model="smollm2-135m", config={"learning_rate": 0.004, "epochs": 3, "lora_r": 16},
                             dataset_id=clean.id, run_id="run-ui0000002")
    store.add_run_step(other.id, 5, {"loss": 3.0})
    store.update_run(other.id, status="completed", metrics={"eval_accuracy": 0.7}, cost_usd=0.02, wall_seconds=70.0)

    evaluation = _evaluation(store, root, evals.id, clean.id, run.id)

    from tunewise.advise.decide import advise

    advise(store, {"requests_per_month": 100000, "cost_per_error_usd": 0.05}, dataset_id=train.id, evaluation_id=evaluation)

    loaded = create_deployment("tickets-ab", baseline=BASELINE, candidates=[TUNED], share=10, store=store, reason="first split")
    start = datetime.now(timezone.utc) - timedelta(minutes=30)
    rows = []
    for i in range(40):
        variant = "candidate" if i % 4 == 0 else "baseline"
        rows.append({"id": f"req-ui-{i}", "deployment_id": loaded.record.id, "version": 1, "variant": variant,
                     "spec": TUNED if variant == "candidate" else BASELINE, "role": "served", "user_id": f"user-{i}", "sticky": True,
                     "messages": [{"role": "user", "content": "hi"}], "response": LABELS[i % 3], "status": 200,
                     "latency_ms": 80.0 + i, "prompt_tokens": 20, "completion_tokens": 2, "created_at": start + timedelta(minutes=i // 2)})
    store.log_requests(rows)
    for i, row in enumerate(rows):
        store.add_feedback(row["id"], correct=i % 5 != 0)
    store.add_alert(loaded.record.id, rule="error_rate>0.05", message="error rate 7.0% above 5.0%", variant="candidate", value=0.07,
                    threshold=0.05)
    return Built(root, train.id, clean.id, evals.id, run.id, other.id, evaluation, "tickets-ab")


def _evaluation(store, root: Path, eval_id: str, train_id: str, run_id: str) -> str:
    outputs = root / "evaluations" / "outputs.jsonl"
    outputs.parent.mkdir(parents=True, exist_ok=True)
    with outputs.open("w", encoding="utf-8") as handle:
        for i in range(12):
            reference = LABELS[i % 3]
            base_reply = reference if i % 2 == 0 else "refund"
            tuned_reply = reference if i != 5 else "billing"
            row = OutputRow(index=i, line=i + 1, input=f"ticket {i} about {reference}", reference=reference, candidates={
                BASELINE: RowOutput(output=base_reply, empty=False, refused=False, correct=base_reply == reference, prediction=base_reply),
                TUNED: RowOutput(output=tuned_reply, empty=False, refused=False, correct=tuned_reply == reference, prediction=tuned_reply),
            })
            handle.write(row.model_dump_json() + "\n")
    ops = Operations(cost_basis="hardware time at $0.10/h", amortized_ms_per_request=12.0, tokens_in_mean=40.0, tokens_out_mean=2.0)
    results = EvaluationResults(
        task_type="classification", primary_metric="accuracy", labels=LABELS, baseline=BASELINE,
        verdict="adapter:run-ui0000001 beats zero-shot:smollm2-135m by 25.0 points", candidates=[
            CandidateResult(name=BASELINE, spec=BASELINE, kind="zero-shot", status="completed",
                            metrics={"accuracy": MetricValue(value=0.667, low=0.417, high=0.917)},
                            details=Details(empty=0, refused=0), operations=ops),
            CandidateResult(name=TUNED, spec=TUNED, kind="adapter", run_id=run_id, status="completed",
                            metrics={"accuracy": MetricValue(value=0.917, low=0.75, high=1.0)}, details=Details(empty=0, refused=0),
                            operations=ops, comparison=Comparison(vs=BASELINE, metric="accuracy", diff=0.25, low=0.0, high=0.5,
                                                                  p_value=0.125, test="mcnemar-exact", significant=False)),
        ], confidence=0.95, bootstrap_samples=200, eval_path=str(root / "eval.jsonl"), rows=12, hardware="cpu at $0.10/h",
        outputs_path=str(outputs))
    record = store.add_evaluation(dataset_id=eval_id, train_dataset_id=train_id, task_type="classification", config={"seed": 0},
                                  results={}, verdict=results.verdict,
                                  candidates=[{"name": c.name, "spec": c.spec, "run_id": c.run_id, "status": c.status,
                                               "metrics": {k: v.model_dump() for k, v in c.metrics.items()}, "operations": {}}
                                              for c in results.candidates])
    results.evaluation_id = record.id
    store.update_evaluation(record.id, results=results.to_store())
    return record.id


def _audit_summary() -> dict:
    from tunewise.records.audit import AuditSummary

    return AuditSummary(
        rows=30, rows_rejected=1, format_problems=1, format_problems_by_reason={"no assistant turn": 1}, format="chat-jsonl",
        eval_rows=12, eval_rows_rejected=0,
        tokens={"total": 600, "billable_per_epoch": 600, "min": 15, "median": 20.0, "p95": 24.0, "max": 25, "over_limit": 0,
                "context_limit": 8192, "tokenizer": "smollm2", "estimate": False, "epochs": 3, "billable_all_epochs": 1800, "eval_total": 240},
        pii={"rows": 4, "matches": 5, "by_type": {"email": 3, "phone": 2}, "eval_rows": 1, "eval_by_type": {"email": 1}},
        duplicates={"exact_clusters": 2, "near_clusters": 1, "rows_in_clusters": 6, "removable": 3, "exact_duplicate_rows": 2,
                    "threshold": 0.4, "method": "MinHash LSH"},
        contamination={"hits": 1, "eval_rows_affected": 1, "train_rows_affected": 1, "exact": 1, "near": 0},
        labels={"is_classification": True, "n_classes": 3, "task_type": "classification", "task_reason": "3 labels",
                "distribution": {"billing": 10, "refund": 10, "shipping": 10}, "imbalance_ratio": 1.0, "small_classes": [],
                "conflicts": 0, "suspected_mislabeled": 2, "agreement": None, "kappa": None},
        readiness={"level": "coin-flip", "verdict": "27 unique examples: a fine-tune is a coin flip", "examples": 27, "rows": 30,
                   "eval_rows": 12, "eval_ok": False},
        cost_estimates=[], notes=[],
    ).to_store()


@pytest.fixture
def built(store, tmp_path) -> Built:
    return build_store(store, tmp_path / "data")

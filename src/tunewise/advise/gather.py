"""Gather what the store measured for the advice: the latest audit, compare and curve evaluations,
the prompt history, the fine-tune's run, the count of unique examples (with the sentence saying
how it was counted), the distillations in the store and a teacher and its distilled student compared in
the evaluation (`distill.verdict`), as `Fact`s with their sources.
"""

from __future__ import annotations

from typing import Any

from tunewise.advise.config import AdviseConfig
from tunewise.advise.facts import audit_facts, compare_facts, curve_facts, run_progress
from tunewise.data.config import Thresholds
from tunewise.errors import NotFoundError, StoreError
from tunewise.pricing import Catalog
from tunewise.records.audit import AuditSummary
from tunewise.records.decision import Fact
from tunewise.records.evaluation import CurveResults, EvaluationResults

__all__ = ["gather", "measured_facts", "mark_token_transfer"]


def gather(store, dataset_id, evaluation_id, config: AdviseConfig) -> dict[str, Any]:
    """Measured facts from the store: latest audit, compare and curve evaluations, prompt history, runs."""
    found: dict[str, Any] = {"audit": None, "compare": None, "curve": None, "training": None, "examples": None}
    audit = store.latest_audit(dataset_id) if dataset_id else store.latest_audit()
    if dataset_id and audit is None:
        raise NotFoundError(f"dataset {dataset_id}: no audit in the store (run `tunewise data audit` first)")
    if audit is not None:
        found["audit"] = {"id": audit.id, "dataset_id": audit.dataset_id, **audit_facts(_summary(audit))}
    evaluation = store.get_evaluation(evaluation_id) if evaluation_id else store.latest_evaluation("compare")
    if evaluation is not None:
        results = EvaluationResults.from_store(evaluation.results, where=f"evaluation {evaluation.id}")
        found["compare"] = {"id": evaluation.id, **compare_facts(results, classic_margin=config.classic_margin),
                            "distill": _teacher_student(store, evaluation, config)}
    curve = store.latest_evaluation("curve")
    if curve is not None:
        found["curve"] = {"id": curve.id, **curve_facts(CurveResults.from_store(curve.results, where=f"curve {curve.id}"))}
    # Prompt history: distinct prompt specs across every compare evaluation, and the days they span.
    specs, dates = set(), []
    for item in store.list_evaluations(limit=500):
        if item.kind != "compare":
            continue
        try:
            past = EvaluationResults.from_store(item.results, where=f"evaluation {item.id}")
        except StoreError:
            continue  # stored before results were typed: the history counts what it can read
        for c in compare_facts(past)["candidates"]:
            if c["group"] in ("prompt", "retrieval"):
                specs.add(c["spec"] or c["name"])
        dates.append(item.created_at)
    found["prompt_versions"] = len(specs) if specs else None
    found["eval_span_days"] = (max(dates) - min(dates)).days if len(dates) > 1 else None
    tuned = (found["compare"] or {}).get("best_finetuned") or {}
    run = _run(store, tuned.get("run_id"))
    if run is not None:
        steps = [(step.step, step.values or {}) for step in store.run_steps(run.id)]
        found["training"] = {"run_id": run.id, **run_progress(run.metrics, steps)}
        tuned["model"] = run.base_model  # the fine-tune's quality was measured on this model
    found["examples"] = _example_count(store, audit, run)
    found["lora_runs"] = sum(1 for r in store.list_runs(limit=500) if r.kind in ("lora", "qlora", "full") and r.status == "completed")
    found["distilled"] = [{"id": d.id, "name": d.name, "rows": d.rows, "teacher": d.meta["distilled"].get("teacher")}
                          for d in store.list_datasets(limit=500) if isinstance((d.meta or {}).get("distilled"), dict)]
    return found


def _teacher_student(store, evaluation, config: AdviseConfig) -> list[dict[str, Any]]:
    """Each teacher and distilled student of the evaluation as plain figures (`distill.verdict.teacher_student`)."""
    from tunewise.distill.verdict import teacher_student

    out = []
    for pair in teacher_student(store, evaluation, months=config.horizon_months):
        out.append({
            "teacher": pair.teacher.name, "student": pair.student.name, "run_id": pair.run_id, "metric": pair.metric,
            "teacher_value": pair.teacher.metric.value, "student_value": pair.student.metric.value, "kept_pct": pair.kept_pct,
            "kept_text": pair.kept_text, "teacher_cost_per_1k_usd": pair.teacher.cost_per_1k_usd,
            "student_cost_per_1k_usd": pair.student.cost_per_1k_usd, "training_usd": pair.training_usd,
            "labeling_usd": pair.data.labeling_cost_usd, "labeling_basis": pair.data.labeling_basis,
            "dataset_id": pair.data.dataset_id, "break_even_requests_per_month": pair.break_even.requests_per_month,
            "break_even_text": pair.break_even.text, "undertrained": pair.undertrained,
        })
    return out


def _run(store, run_id: str | None):
    if not run_id:
        return None
    try:
        return store.get_run(run_id)
    except NotFoundError:
        return None


def _cleaned_from(dataset) -> dict[str, Any] | None:
    """The `tunewise data clean` record of a dataset (its meta), when it removed duplicates."""
    meta = dataset.meta or {}
    return meta if meta.get("cleaned_from") and (meta.get("fixes") or {}).get("dedup") else None


def _example_count(store, audit, run) -> dict[str, Any] | None:
    """Unique examples and the sentence that says how they were counted: the training run's dataset,
    else the newest cleaned (deduplicated) child of the audited dataset, else the audit's own count."""
    candidates = []
    if run is not None and run.dataset_id:
        candidates.append((run.dataset_id, "the training run's dataset"))
    if audit is not None:
        audited = store.get_dataset(audit.dataset_id)
        children = [d for d in store.list_datasets(limit=500) if _cleaned_from(d)
                    and (d.parent_id == audited.id or d.meta.get("cleaned_from") == audited.path)]
        if children:
            candidates.append((children[0].id, "the cleaned dataset"))
    for dataset_id, what in candidates:
        try:
            dataset = store.get_dataset(dataset_id)
        except NotFoundError:
            continue
        own = store.latest_audit(dataset.id)
        if own is not None:
            return _audit_count(own, f"{what} {dataset.name}")
        cleaned, ancestor = _cleaned_from(dataset), dataset
        for _ in range(5):  # a split of a cleaned file: its train side is unique too
            if cleaned or not ancestor.parent_id:
                break
            ancestor = store.get_dataset(ancestor.parent_id)
            cleaned = _cleaned_from(ancestor)
        if cleaned:
            removed = sum(int(v or 0) for v in (cleaned.get("removed") or {}).values())
            raw = (ancestor.rows or 0) + removed
            text = f"{dataset.rows:,} unique examples after cleaning ({raw:,} rows in the file)"
            if ancestor is not dataset:
                text = f"{dataset.rows:,} unique examples after cleaning and splitting ({raw:,} rows in the cleaned file's source)"
            return {"value": dataset.rows, "rows": raw, "text": text, "detail": f"{what} {dataset.id}"}
        return {"value": dataset.rows, "rows": dataset.rows, "detail": f"{what} {dataset.id}",
                "text": f"{dataset.rows:,} examples in {what} (not deduplicated: run `tunewise data clean --dedup`)"}
    if audit is not None:
        return _audit_count(audit, f"audit {audit.id}")
    return None


def _summary(audit) -> AuditSummary:
    return AuditSummary.from_store(audit.summary, where=f"audit {audit.id}")


def _audit_count(audit, where: str) -> dict[str, Any]:
    facts = audit_facts(_summary(audit))
    rows, unique = facts["rows"], facts["unique_examples"]
    how = "after dedup and decontamination" if facts["decontaminated"] else "after dedup"
    return {"value": unique, "rows": rows, "detail": where,
            "text": f"{unique:,} unique examples {how}" + (f" ({rows:,} rows in the file)" if rows != unique else "")}


def measured_facts(found: dict[str, Any], config: AdviseConfig, bars: Thresholds) -> dict[str, Fact]:
    """The facts `gather` found, each labelled measured (the learning curve's gain: projected)."""
    audit, compare, curve = found["audit"], found["compare"], found["curve"]
    facts: dict[str, Fact] = {}

    def measured(key: str, value: Any, detail: str) -> None:
        if value is not None:
            facts[key] = Fact(value=value, source="measured", detail=detail)

    count = found["examples"]
    if count:
        measured("examples", count["value"], f"{count['text']}; {count['detail']}")
        measured("examples_basis", count["text"], count["detail"])
    if audit:
        where = f"audit {audit['id']}"
        agreement = audit["agreement"]
        measured("label_agreement", agreement, where + (f" (kappa {audit['kappa']:.2f})" if audit.get("kappa") is not None else ""))
        readiness_level, readiness_line = audit["readiness_level"], audit["readiness_verdict"]
        if count and count["value"] != audit["unique_examples"]:
            # The count came from a cleaned or training dataset: judge readiness on it, not on the raw file.
            from tunewise.data.readiness import readiness_verdict

            ready = readiness_verdict(count["value"], audit["eval_rows"], agreement=agreement, rows=count["rows"], thresholds=bars)
            readiness_level, readiness_line, where = ready.level, ready.verdict, count["detail"]
        measured("readiness", readiness_level, f"{where}: {readiness_line or ''}".strip())
        measured("billable_tokens_per_epoch", audit["billable_per_epoch"], where)
        measured("suspected_mislabeled", audit["suspected_mislabeled"], where)
    if compare:
        where = f"evaluation {compare['id']}"
        measured("task_type", compare["task_type"], where)
        base = compare["baseline"]
        if base:
            counted = f" counted by {base['model']}'s tokenizer" if base.get("model") else ""
            measured("input_tokens", base.get("tokens_in_mean"), f"{where}: {base['name']} mean input tokens{counted}")
            measured("output_tokens", base.get("tokens_out_mean"), f"{where}: {base['name']} mean output tokens{counted}")
            measured("baseline_latency_p50_ms", base.get("latency_p50_ms"), f"{where}: {base['name']}, request by request")
            measured("baseline_amortized_ms", base.get("amortized_ms_per_request"),
                     f"{where}: {base['name']} ran batched: wall time / requests, throughput rather than latency")
        for group in ("best_prompt", "best_finetuned", "classic"):
            if compare.get(group):
                best = compare[group]
                measured(group, f"{best['name']} {compare['metric']} {best['value']:.3f}", where)
        if compare.get("best_finetuned"):
            measured("finetune_gain", compare.get("finetune_gain"), f"{where}: vs {compare.get('finetune_vs')}")
            measured("finetune_significant", compare.get("finetune_significant"),
                     f"{where}: p={compare.get('finetune_p_value')} vs {compare.get('finetune_comparison_vs')}")
        if compare.get("classic"):
            measured("classic_matches", compare.get("classic_matches"), f"{where}: within {config.classic_margin:g} of the best LLM")
        measured("retrieval_helps", compare.get("retrieval_helps"), where)
        measured("prompt_candidates", compare.get("prompt_candidates"), where)
    if curve and curve["projected_gain_doubling"] is not None:
        largest = f" (fit up to {curve['largest_size']:,} examples)" if curve["largest_size"] else ""
        facts["projected_gain_doubling"] = Fact(value=curve["projected_gain_doubling"], source="projected",
                                                detail=f"curve {curve['id']}: extrapolated from the fit{largest}, not measured")
    training = found["training"]
    if training and training["still_improving"] is not None:
        at = (f"best evaluation at step {training['best_step']} of {training['last_step']}"
              if training["best_step"] is not None and training["last_step"] is not None else "")
        measured("finetune_still_improving", training["still_improving"],
                 f"run {training['run_id']} ({training['source']}{'; ' + at if at else ''})")
    measured("prompt_versions", found["prompt_versions"], "distinct prompt candidates across stored evaluations")
    measured("eval_span_days", found["eval_span_days"], "days between the first and last stored comparison")
    tuned = compare.get("best_finetuned") if compare else None
    facts["lora_tried"] = Fact(value=bool(found["lora_runs"]) or tuned is not None, source="measured",
                               detail=f"{found['lora_runs']} completed LoRA/full runs in the store"
                               + (f"; fine-tuned candidate {tuned['name']} evaluated" if tuned else ""))
    distilled = found.get("distilled") or []
    if distilled:
        teachers = sorted({d["teacher"] for d in distilled if d["teacher"]})
        measured("distill_tried", True, f"{len(distilled)} distilled dataset(s) in the store ({distilled[0]['id']}, "
                 f"{distilled[0]['rows']:,} rows, the newest), labelled by {', '.join(teachers)}")
    pairs = (compare or {}).get("distill") or []
    if pairs:
        pair = max(pairs, key=lambda p: p["student_value"])
        where = f"evaluation {compare['id']}: {pair['student']} vs its teacher {pair['teacher']}"
        measured("distill_kept_pct", pair["kept_pct"], f"{where} ({pair['kept_text']})")
        measured("distill_break_even_requests", pair["break_even_requests_per_month"], f"{where}: {pair['break_even_text']}")
        # The teacher was measured doing the task: it is available, and stronger when it scores at least the student.
        stronger = pair["teacher_value"] >= pair["student_value"]
        measured("teacher_available", stronger, f"{where}: teacher {pair['metric']} {pair['teacher_value']:.3f}, student "
                 f"{pair['student_value']:.3f}" + ("" if stronger else ": the student beats it, so it is no stronger model"))

    return facts


def mark_token_transfer(facts: dict[str, Fact], compare, catalog: Catalog, priced) -> None:
    """Tokens counted by another model's tokenizer on the evaluation's prompt that price `priced`: say so."""
    base = (compare or {}).get("baseline") or {}
    counted_by = base.get("model")
    if counted_by and catalog.find(counted_by) is priced:
        return  # an endpoint of the priced model reported them: measured for that model
    text = (f"counted by {counted_by or 'the evaluated model'}'s tokenizer on the {base.get('name')} prompt, used to price "
            f"{priced.name}: its tokenizer and today's prompt may count differently (answer input_tokens to replace them)")
    for key in ("input_tokens", "output_tokens"):
        if key in facts and facts[key].source == "measured":
            facts[key].transfer = text

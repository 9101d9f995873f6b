"""`evaluate()`: every candidate on the same held-out rows, scored, compared with the baseline, priced, stored.

    from tunewise.evaluate import evaluate
    results = evaluate("eval.jsonl", ["few-shot:smollm2-135m?k=8", "adapter:run-1a2b", "classic:tfidf"],
                       train_path="train.jsonl")
    print(results.verdict)

It returns, and stores as `Evaluation.results`, an `EvaluationResults` record (tunewise.records.evaluation);
the per-row replies are written as JSONL of `OutputRow` beside the evaluation (`results.outputs_path`)
for reports and human review.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from tunewise.errors import EvaluationError, TunewiseError
from tunewise.evaluate import stats
from tunewise.evaluate.candidates import CandidateFailed, ModelCache, Replies
from tunewise.evaluate.config import EvalConfig
from tunewise.evaluate.specs import CandidateSpec, parse_spec
from tunewise.evaluate.tasks import Example, Task, detect_task, load_rows
from tunewise.progress import ProgressLine
from tunewise.records.evaluation import CandidateResult, Comparison, Contamination, EvaluationResults, Operations, OutputRow, RowOutput

PROMPT_KINDS = ("few-shot", "zero-shot", "knn-few-shot", "endpoint")


def evaluate(
    eval_path,
    candidates: list[str],
    *,
    train_path=None,
    baseline: str | None = None,
    task_type="auto",
    schema_path=None,
    config: EvalConfig | None = None,
    store=None,
    allow_contamination=False,
    progress=True,
    reuse: str | None = None,
) -> EvaluationResults:
    """Score every candidate on the eval set, compare each with the baseline, store and return the results.

    Raises `EvaluationError` (one line) for bad specs, unknown runs, a contaminated eval set (unless
    `allow_contamination`), or candidates that need a training set when none is given. A candidate
    that fails while running (an endpoint that is down) is reported with status "failed". `reuse` names an
    earlier evaluation (id or "latest") whose candidates keep the replies, time and cost measured there when
    they would reply the same (see `tunewise.evaluate.reuse`); the others run.

    Example: evaluate("eval.jsonl", ["zero-shot:smollm2-135m", "classic:tfidf"], train_path="train.jsonl").verdict
    """
    from tunewise.config import load_config

    settings = load_config()
    config = config or settings.eval
    _parse_specs(candidates, baseline, config, None)  # a typo in a spec fails before any file is read
    rows = load_rows(eval_path)
    if config.limit:
        rows = rows[: config.limit]
    train = load_rows(train_path) if train_path else None
    schema = _load_schema(schema_path) if schema_path else None
    task = detect_task(train, rows, task_type=task_type, schema=schema)
    specs = _parse_specs(candidates, baseline, config, task)
    if train is None and (needing := [s.name for s in specs if s.needs_train]):
        raise EvaluationError(f"{', '.join(needing)}: need a training set (--train TRAIN) for their examples")
    contamination = _check_contamination(train, rows, config, allow_contamination, eval_path)

    from tunewise.store import Store

    with Store.borrow(store) as store:
        cache = ModelCache(store)
        _preflight(specs, cache)
        indices = stats.resample_indices(len(rows), config.bootstrap_samples, config.seed)
        hardware = f"{settings.hardware.name}, ${settings.hardware.hourly_usd:g}/hour (hardware.hourly_usd)"
        retriever = None
        if any(s.kind == "knn-few-shot" for s in specs):
            from tunewise.evaluate.tasks import Retriever

            retriever = Retriever(train or [])
        reused = _reusable(store, reuse, specs, eval_path, train_path, rows, config, progress) if reuse else None
        outcomes = []
        for spec in specs:
            if reused is not None and spec.name in reused.candidates:
                earlier = reused.candidates[spec.name]
                outcomes.append(_scored({"spec": spec, "run_id": earlier.replies.run_id, "status": "completed", "error": None},
                                        earlier.replies, earlier.operations, task, rows, config, indices))
                continue
            with ProgressLine(f"eval {spec.name}", total=len(rows), unit="rows", enabled=progress) as bar:
                outcomes.append(_run_one(spec, task, rows, train, config, cache, retriever, settings, hardware, indices, bar))
        results = _assemble(task, rows, specs, outcomes, config, baseline, indices)
        results = EvaluationResults(
            **results, json_schema=task.schema, eval_path=str(Path(eval_path)), train_path=str(Path(train_path)) if train_path else None,
            rows=len(rows), limit=config.limit, contamination=contamination, hardware=hardware,
        )
        return _save(store, results, outcomes, rows, config, eval_path, train_path)


# -- preparation -----------------------------------------------------------------------------------------


def _parse(text: str, config: EvalConfig, task: Task | None) -> CandidateSpec:
    """One spec with the evaluation's defaults; `eval.decoding` applies to classification only."""
    classify = task is None or task.type == "classification"
    spec = parse_spec(text, default_k=config.few_shot_k, default_decoding=config.decoding if classify else "free")
    if not classify and spec.decoding == "constrained":
        raise EvaluationError(
            f"candidate {text!r}: constrained decoding spells one of the labels, and this eval set is a {task.type} task, "
            "not classification: drop constrained=1"
        )
    return spec


def _parse_specs(candidates: list[str], baseline: str | None, config: EvalConfig, task: Task | None) -> list[CandidateSpec]:
    """The candidates (one per name) and the baseline; with `task` None only their spelling is checked."""
    if not candidates:
        raise EvaluationError("no candidates: pass at least one --candidate (e.g. zero-shot:smollm2-135m)")
    specs: list[CandidateSpec] = []
    for text in candidates:
        spec = _parse(text, config, task)
        if spec.name not in {s.name for s in specs}:
            specs.append(spec)
    if baseline:
        wanted = _match_baseline(baseline, specs, config, task)
        if wanted is None:
            # A baseline that is not among the candidates is evaluated too: a comparison needs its numbers.
            specs.append(_parse(baseline, config, task))
    return specs


def _match_baseline(baseline: str, specs: list[CandidateSpec], config: EvalConfig, task: Task | None) -> CandidateSpec | None:
    for spec in specs:
        if baseline in (spec.spec, spec.name):
            return spec
    try:
        name = _parse(baseline, config, task).name
    except EvaluationError as exc:
        raise EvaluationError(str(exc).replace("candidate", "baseline", 1)) from None
    return next((s for s in specs if s.name == name), None)


def _load_schema(path) -> dict:
    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvaluationError(f"{path}: schema file not found") from None
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"{path}: not a JSON Schema file ({exc})") from None
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise EvaluationError(f"{path}: invalid JSON Schema ({exc.message})") from None
    return schema


def _check_contamination(train, rows, config: EvalConfig, allow: bool, eval_path) -> Contamination | None:
    """Refuse an eval set that repeats training rows: its scores would measure memory, not skill."""
    if not train:
        return None
    from tunewise.data.dedup import contamination

    hits = contamination([r.text for r in train], [r.text for r in rows], threshold=config.contamination_threshold)
    if not hits:
        return Contamination(hits=0, eval_rows_affected=0)
    affected = sorted({h.eval_index for h in hits})
    first = hits[0]
    summary = Contamination(hits=len(hits), eval_rows_affected=len(affected), eval_lines=[rows[i].line for i in affected[:50]])
    if not allow:
        raise EvaluationError(
            f"{eval_path}: {len(affected)} of {len(rows)} eval rows duplicate training rows (e.g. eval line "
            f"{rows[first.eval_index].line} ~ train line {train[first.train_index].line}, {first.kind}); remove them with "
            "`tunewise data clean TRAIN --drop-contaminated --eval EVAL`, or pass --allow-contamination"
        )
    return summary


def _preflight(specs: list[CandidateSpec], cache: ModelCache) -> None:
    """Resolve every model and run before any generation, so a typo fails in a second, not after an hour."""
    from tunewise.models import resolve

    for spec in specs:
        if spec.kind in ("zero-shot", "few-shot", "knn-few-shot"):
            resolve(spec.target)
        elif spec.kind == "adapter" and not Path(spec.target).expanduser().is_dir():
            if cache.store is None:
                raise EvaluationError(f"{spec.name}: no store to find the run in")
            try:
                cache.store.get_run(spec.target)
            except TunewiseError:
                raise EvaluationError(f"{spec.name}: no run {spec.target!r} in the store and no such folder (list runs with `tunewise runs`)") from None


# -- running one candidate ---------------------------------------------------------------------------------


def _run_one(spec, task, rows, train, config, cache, retriever, settings, hardware, indices, bar) -> dict:
    from tunewise.evaluate import candidates as run_

    outcome: dict = {"spec": spec, "run_id": None, "status": "completed", "error": None}
    advance = bar.advance
    try:
        if spec.kind == "classic":
            replies = run_.run_classic(task, rows, train or [], hardware=hardware)
            advance(len(rows))
        elif spec.kind == "endpoint":
            prompts = run_.prompts_for(spec, task, rows, train, config, retriever)
            replies = run_.run_endpoint(spec, prompts, task, config, on_rows=advance)
        else:
            if spec.kind == "adapter":
                model, tokenizer, run_id = cache.adapter(spec.target)
                outcome["run_id"] = run_id
            else:
                model, tokenizer = cache.base(spec.target)
            prompts = run_.prompts_for(spec, task, rows, train, config, retriever)
            replies = run_.run_local(model, tokenizer, prompts, task, config, hardware=hardware, decoding=spec.decoding,
                                     on_rows=advance)
    except CandidateFailed as exc:
        outcome.update(status="failed", error=str(exc))
        return outcome
    return _scored(outcome, replies, _operations(replies, settings), task, rows, config, indices)


def _scored(outcome: dict, replies: Replies, operations: Operations, task, rows, config, indices) -> dict:
    from tunewise.evaluate import candidates as run_
    from tunewise.evaluate import metrics

    judge = None
    if config.judge and task.type != "classification":
        judge = run_.judge_scores(config.judge, config.judge_rubric, rows, replies.texts, config)
    outcome["replies"] = replies
    outcome["scored"] = metrics.score(task, rows, replies.texts, indices, config.confidence, judge=judge)
    outcome["operations"] = operations
    return outcome


def _reusable(store, ref, specs, eval_path, train_path, rows, config, progress):
    from tunewise.evaluate.reuse import reusable

    found = reusable(store, ref, names=[s.name for s in specs], needs_train={s.name: s.needs_train for s in specs},
                     eval_path=eval_path, train_path=train_path, rows=rows, config=config)
    if progress:
        from tunewise.console import console

        if found.candidates:
            console.print(f"reused from evaluation {found.evaluation_id} (replies, time and cost as measured there): "
                          f"{', '.join(found.candidates)}", highlight=False, soft_wrap=True)
        for name, why in found.not_reused.items():
            console.print(f"{name}: runs here ({why})", highlight=False, soft_wrap=True)
    return found


def _operations(replies: Replies, settings) -> Operations:
    n = len(replies.texts)
    tin = [t for t in replies.tokens_in if t is not None]
    tout = [t for t in replies.tokens_out if t is not None]
    measured = replies.latency_s is not None and n
    latency = np.array(replies.latency_s or []) * 1000
    ops = {
        "latency_p50_ms": round(float(np.percentile(latency, 50)), 2) if measured else None,
        "latency_p95_ms": round(float(np.percentile(latency, 95)), 2) if measured else None,
        # Batched requests share their time: their honest figure is throughput, not what one user waits.
        "amortized_ms_per_request": round(replies.wall_seconds * 1000 / n, 2) if n and not measured else None,
        "tokens_in_mean": round(float(np.mean(tin)), 1) if tin else None,
        "tokens_out_mean": round(float(np.mean(tout)), 1) if tout else None,
        "requests_per_second": round(n / replies.wall_seconds, 3) if replies.wall_seconds > 0 else None,
        "cost_per_1k_usd": None,
        "cost_basis": replies.basis,
    }
    if replies.local:
        hourly = settings.hardware.hourly_usd
        per_request_s = replies.wall_seconds / n if n else 0.0
        ops["cost_per_1k_usd"] = round(per_request_s * 1000 / 3600 * hourly, 6)
        ops["cost_basis"] += f"; cost = {per_request_s:.3f} s/request x 1,000 x ${hourly:g}/hour"
    else:
        ops["cost_per_1k_usd"], note = _api_cost(replies, settings, ops)
        ops["cost_basis"] += f"; {note}"
    return Operations(**ops)


def _api_cost(replies: Replies, settings, ops: dict) -> tuple[float | None, str]:
    """$ per 1,000 requests from the pricing catalog and the measured (or estimated) token counts."""
    from tunewise.pricing import load_catalog

    model = replies.model or ""
    fine_tuned = model.startswith("ft:")
    name = model.split(":")[1] if fine_tuned and model.count(":") >= 1 else model
    try:
        row = load_catalog(settings.advise.pricing_file).find(name)
    except TunewiseError as exc:
        return None, f"no price ({exc})"
    if row is None:
        return None, f"no price: {name!r} is not in the pricing catalog (add a row with a pricing file)"
    price_in, price_out = row.input_price(fine_tuned=fine_tuned), row.output_price(fine_tuned=fine_tuned)
    if price_in is None:
        return None, f"no price: the catalog row {row.name} has no input price"
    estimated = ops["tokens_in_mean"] is None
    tin = ops["tokens_in_mean"] or float(np.mean([_rough_tokens(t) for t in replies.texts] or [0]))
    tout = ops["tokens_out_mean"] or float(np.mean([_rough_tokens(t) for t in replies.texts] or [0]))
    usd = 1000 * (tin * price_in + tout * (price_out if price_out is not None else price_in)) / 1e6
    basis = f"catalog row {row.name} ({'fine-tuned' if fine_tuned else 'base'}): ${price_in:g}/M in"
    basis += f", ${price_out:g}/M out" if price_out is not None else " (no output price: input price used)"
    if estimated:
        basis += "; tokens estimated as characters / 4 (the endpoint reported no usage)"
    return round(usd, 6), basis


def _rough_tokens(text: str) -> int:
    return max(1, len(text) // 4)


# -- comparing --------------------------------------------------------------------------------------------


def _short(spec: CandidateSpec, specs: list[CandidateSpec]) -> str:
    plain = {
        "adapter": "the fine-tune",
        "zero-shot": "zero-shot",
        "few-shot": "few-shot",
        "knn-few-shot": "retrieval few-shot",
        "classic": "the TF-IDF classifier",
        "endpoint": spec.params.get("model", spec.target),
    }[spec.kind]
    same = [s for s in specs if s.kind == spec.kind and (s.kind != "endpoint" or s.params.get("model") == spec.params.get("model"))]
    return plain if len(same) == 1 else spec.name


def _pick_baseline(outcomes: list[dict], wanted: CandidateSpec | None, primary: str) -> dict | None:
    done = [o for o in outcomes if o["status"] == "completed"]
    if wanted is not None:
        return next((o for o in outcomes if o["spec"].name == wanted.name), None)
    value = lambda o: o["scored"].metrics[primary]["value"]  # noqa: E731
    # The fine-tune has to beat the best prompt a team could ship instead, not a convenient one; on a tie
    # the plainer few-shot prompt is the baseline (max keeps the first of equals).
    preference = ("few-shot", "knn-few-shot", "zero-shot", "endpoint")
    prompts = sorted((o for o in done if o["spec"].kind in PROMPT_KINDS), key=lambda o: preference.index(o["spec"].kind))
    pool = prompts or [o for o in done if o["spec"].kind == "classic"]
    if pool:
        return max(pool, key=value)
    return done[0] if done else None


def _assemble(task: Task, rows: list[Example], specs, outcomes: list[dict], config: EvalConfig, baseline_text, indices) -> dict:
    from tunewise.evaluate.metrics import primary_metric

    primary = primary_metric(task)
    wanted = _match_baseline(baseline_text, specs, config, task) if baseline_text else None
    base = _pick_baseline(outcomes, wanted, primary)
    verdicts: dict[str, str] = {}
    out = []
    for o in outcomes:
        spec = o["spec"]
        # The decoding is stored with the candidate, so that what is served later decodes as what was evaluated.
        entry = {"name": spec.name, "spec": spec.spec, "kind": spec.kind, "run_id": o["run_id"], "status": o["status"], "decoding": spec.decoding}
        if o["status"] != "completed":
            out.append(CandidateResult(**entry, error=o["error"]))
            continue
        comparison = None
        if base is not None and base["status"] == "completed" and o is not base:
            comparison = _compare(task, o, base, primary, config)
            verdicts[spec.name] = stats.verdict_line(
                _short(spec, specs), _short(base["spec"], specs), comparison.diff, comparison.low, comparison.high,
                comparison.p_value, comparison.significant, config.confidence,
            )
        scored = o["scored"]
        out.append(CandidateResult(**entry, metrics=scored.metrics, details=scored.details, operations=o["operations"], comparison=comparison))
    return {
        "task_type": task.type,
        "primary_metric": primary,
        "labels": task.labels,
        "baseline": base["spec"].name if base is not None else None,
        "verdict": _headline(outcomes, base, verdicts, primary, specs),
        "verdicts": verdicts,
        "candidates": out,
        "confidence": config.confidence,
        "bootstrap_samples": config.bootstrap_samples,
    }


def _compare(task: Task, cand: dict, base: dict, primary: str, config: EvalConfig) -> Comparison:
    c, b = cand["scored"], base["scored"]
    diff = float(c.primary_rows.mean() - b.primary_rows.mean())
    p_boot, low, high = stats.paired_bootstrap(b.primary_boot, c.primary_boot, diff, config.confidence)
    if task.type == "classification" or primary in ("json_validity", "schema_compliance"):
        # Right/wrong per row: the exact McNemar test is the textbook paired test for two classifiers.
        p, _, _ = stats.mcnemar_exact(b.primary_rows, c.primary_rows)
        test = "mcnemar-exact"
    else:
        p, test = p_boot, "paired-bootstrap"
    return Comparison(
        vs=base["spec"].name, metric=primary, diff=round(diff, 6), low=round(low, 6), high=round(high, 6),
        p_value=float(p), test=test, significant=bool(p < config.alpha),
    )


def _headline(outcomes, base, verdicts, primary, specs) -> str:
    done = [o for o in outcomes if o["status"] == "completed"]
    if base is None or base["status"] != "completed":
        name = base["spec"].name if base is not None else "the baseline"
        return f"no comparison: {name} did not complete"
    others = [o for o in done if o is not base]
    if not others:
        return f"only {_short(base['spec'], specs)} completed: nothing to compare it with"
    value = lambda o: o["scored"].metrics[primary]["value"]  # noqa: E731
    # The question users come with is "does the fine-tune pay off?", so a fine-tune leads the verdict.
    tuned = [o for o in others if o["spec"].kind == "adapter"]
    lead = max(tuned or others, key=value)
    return verdicts[lead["spec"].name]


# -- saving ------------------------------------------------------------------------------------------------


def _register(store, path, rows: int, role: str) -> str | None:
    from tunewise.store import file_hash

    found = store.find_dataset_by_hash(file_hash(path))
    if found is not None:
        return found.id
    return store.add_dataset(path, format="chat", rows=rows, role=role).id


def _save(store, results: EvaluationResults, outcomes: list[dict], rows: list[Example], config: EvalConfig, eval_path, train_path) -> EvaluationResults:
    from tunewise import workspace

    eval_ds = _register(store, eval_path, len(rows), "eval")
    train_ds = _register(store, train_path, 0, "train") if train_path else None
    scratch = workspace.find_root() / "evaluations" / f"pending-{time.time_ns()}"
    scratch.mkdir(parents=True, exist_ok=True)
    _write_outputs(scratch / "outputs.jsonl", outcomes, rows)
    (scratch / "config.json").write_text(json.dumps(config.model_dump(), indent=2), encoding="utf-8")
    record = store.add_evaluation(
        kind="compare", dataset_id=eval_ds, train_dataset_id=train_ds, task_type=results.task_type,
        config=config.model_dump(), results=results.to_store(), verdict=results.verdict,
        candidates=[
            {"name": c.name[:200], "spec": c.spec, "run_id": c.run_id, "status": c.status,
             "metrics": {k: v.model_dump() for k, v in c.metrics.items()}, "operations": c.operations.model_dump() if c.operations else {}}
            for c in results.candidates
        ],
    )
    folder = scratch.parent / record.id
    shutil.move(str(scratch), folder)
    results = results.model_copy(update={"evaluation_id": record.id, "outputs_path": str(folder / "outputs.jsonl")})
    store.update_evaluation(record.id, results=results.to_store())
    return results


def _write_outputs(path: Path, outcomes: list[dict], rows: list[Example]) -> None:
    """One `OutputRow` per eval row with every completed candidate's reply under `candidates`."""
    done = [o for o in outcomes if o["status"] == "completed"]
    with open(path, "w", encoding="utf-8") as handle:
        for i, row in enumerate(rows):
            entries = {}
            for o in done:
                replies, scored = o["replies"], o["scored"]
                # Only a request timed on its own has a latency; batched rows share their time (Operations has it amortised).
                timed = {"latency_ms": round(replies.latency_s[i] * 1000, 2)} if replies.latency_s is not None else {}
                entries[o["spec"].name] = RowOutput(
                    output=replies.texts[i], **scored.rows[i], **timed, tokens_in=replies.tokens_in[i], tokens_out=replies.tokens_out[i],
                )
            record = OutputRow(index=row.index, line=row.line, input=row.text, reference=row.reference, candidates=entries)
            handle.write(record.model_dump_json(exclude_unset=True) + "\n")  # each task's own fields, no empty others


__all__ = ["evaluate"]

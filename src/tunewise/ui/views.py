"""What each page of the web app shows, as data: one function per page, each a view of library functions.

    from tunewise.ui.views import dataset_view, deployment_view
    context = dataset_view(store, "ds-2caca7f8cf")   # the template ui/dataset.html renders it as is

The numbers come from the functions the CLI and the report use (`deploy.monitor.deployment_status`,
the report's section builders, `evaluate.review`, `advise.advise`), so a page cannot disagree with
`tunewise report` or `tunewise deploy status`. Tables are `render.sections.Table`s, sections are
`render.sections.Section`s; templates only lay them out.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tunewise.errors import EvaluationError, StoreError, TunewiseError
from tunewise.render import fmt_usd
from tunewise.render.sections import Section, Table
from tunewise.ui.svg import line_chart, stacked_bars

__all__ = [
    "overview", "datasets_view", "dataset_view", "runs_view", "run_view", "compare_runs_view", "evaluations_view",
    "evaluation_view", "rate_row", "decision_view", "roi_view", "deployments_view", "deployment_view", "change_deployment",
]

ROWS_PER_PAGE = 25


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _num(value: Any, fmt: str | None = None) -> str:
    """`render.fmt_number`, with a float shown in `fmt` where a page wants seconds or dollars."""
    from tunewise.render import fmt_number

    return fmt.format(value) if fmt is not None and isinstance(value, float) and not isinstance(value, bool) else fmt_number(value)


def _pairs(mapping: dict[str, Any] | None) -> Table:
    return Table(["setting", "value"], [[str(k), _num(v)] for k, v in (mapping or {}).items()])


# -- overview ----------------------------------------------------------------------------------------


def overview(store) -> dict[str, Any]:
    datasets, runs, evaluations = store.list_datasets(limit=1000), store.list_runs(limit=1000), store.list_evaluations(limit=1000)
    decision, deployments = store.latest_decision(), store.list_deployments()
    areas = [
        {"title": "Datasets", "href": "/datasets", "count": len(datasets),
         "line": f"newest: {datasets[0].name} ({datasets[0].rows:,} rows)" if datasets else "none yet: `tunewise data import`"},
        {"title": "Runs", "href": "/runs", "count": len(runs),
         "line": f"newest: {runs[0].id} ({runs[0].status})" if runs else "none yet: `tunewise train`"},
        {"title": "Evaluations", "href": "/evaluations", "count": len(evaluations),
         "line": f"newest: {evaluations[0].id} ({evaluations[0].kind})" if evaluations else "none yet: `tunewise eval`"},
        {"title": "Decision", "href": "/decision", "count": 1 if decision else 0,
         "line": f"{decision.verdict} ({_when(decision.created_at)})" if decision else "none yet: `tunewise advise`"},
        {"title": "Deployments", "href": "/deployments", "count": len(deployments),
         "line": ", ".join(f"{d.name} ({d.status})" for d in deployments) or "none yet: `tunewise deploy create`"},
    ]
    return {"areas": areas, "store": str(store.engine.url.render_as_string(hide_password=True))}


# -- datasets -----------------------------------------------------------------------------------------


def datasets_view(store) -> dict[str, Any]:
    rows = [{"id": d.id, "name": d.name, "role": d.role, "rows": _num(d.rows), "rejected": _num(d.rejected_rows),
             "parent": d.parent_id or "", "created": _when(d.created_at), "path": d.path} for d in store.list_datasets(limit=1000)]
    return {"datasets": rows}


def _lineage(store, dataset, everything) -> list[dict[str, Any]]:
    """Where the dataset came from and what was made of it: import source, clean parent, children, distillation."""
    meta = dataset.meta or {}
    lines: list[dict[str, Any]] = []
    if meta.get("source"):
        lines.append({"text": f"imported from {meta['source']} ({meta.get('source_format', '?')})", "href": None})
    if meta.get("cleaned_from"):
        lines.append({"text": f"cleaned from {meta['cleaned_from']}", "href": None})
    if dataset.parent_id:
        parent = next((d for d in everything if d.id == dataset.parent_id), None)
        word = "distilled from" if meta.get("distilled") else "derived from"
        lines.append({"text": f"{word} {parent.name if parent else ''} {dataset.parent_id}", "href": f"/datasets/{dataset.parent_id}"})
    distilled = meta.get("distilled")
    if isinstance(distilled, dict):
        lines.append({"text": "distillation: " + ", ".join(f"{k} {v}" for k, v in distilled.items() if not isinstance(v, (dict, list))),
                      "href": None})
    for child in everything:
        if child.parent_id == dataset.id:
            word = "distilled into" if (child.meta or {}).get("distilled") else "cleaned into"
            lines.append({"text": f"{word} {child.name} {child.id} ({child.rows:,} rows)", "href": f"/datasets/{child.id}"})
    return lines


def dataset_view(store, ref: str) -> dict[str, Any]:
    from tunewise.evaluate.report import audit_section
    from tunewise.records.audit import AuditSummary

    dataset = store.get_dataset(ref)
    everything = store.list_datasets(limit=10000)
    audit = store.latest_audit(dataset.id)
    summary, chart = None, None
    tables: list[tuple[str, Table]] = []
    if audit is not None:
        try:
            summary = AuditSummary.from_store(audit.summary, where=f"audit {audit.id}")
        except StoreError:
            summary = None
    if summary is not None:
        tables.append(("PII by type", Table(["type", "matches (train)", "matches (eval)"],
                                            [[k, _num(v), _num((summary.pii.eval_by_type or {}).get(k))] for k, v in summary.pii.by_type.items()],
                                            numeric=frozenset({1, 2}))))
        d = summary.duplicates
        tables.append(("Duplicates", Table(["exact clusters", "near clusters", "rows in clusters", "removable", "threshold"],
                                           [[_num(d.exact_clusters), _num(d.near_clusters), _num(d.rows_in_clusters), _num(d.removable), _num(d.threshold)]],
                                           numeric=frozenset({0, 1, 2, 3, 4}))))
        if summary.labels.is_classification:
            distribution = summary.labels.distribution
            chart = stacked_bars(list(distribution), {"rows": list(distribution.values())}, title="rows per label", y_label="rows")
        if summary.labels.is_classification:
            tables.append(("Labels", Table(["label", "rows"], [[k, _num(v)] for k, v in summary.labels.distribution.items()],
                                           numeric=frozenset({1}))))
    runs = [r for r in store.list_runs(limit=10000) if dataset.id in (r.dataset_id, r.eval_dataset_id)]
    evaluations = [e for e in store.list_evaluations(limit=10000) if dataset.id in (e.dataset_id, e.train_dataset_id)]
    return {
        "dataset": dataset, "created": _when(dataset.created_at), "lineage": _lineage(store, dataset, everything),
        "audit": audit, "audit_section": audit_section(audit) if audit is not None else None, "summary": summary,
        "mislabeled": summary.labels.suspected_mislabeled if summary else None, "tables": tables, "label_chart": chart,
        "runs": [{"id": r.id, "status": r.status, "kind": r.kind, "created": _when(r.created_at)} for r in runs],
        "evaluations": [{"id": e.id, "kind": e.kind, "verdict": e.verdict or "", "created": _when(e.created_at)} for e in evaluations],
        "meta": _pairs({k: v for k, v in (dataset.meta or {}).items() if not isinstance(v, (dict, list))}),
    }


def audit_details(store, ref: str) -> dict[str, Any]:
    """The rows behind the audit's counts (suspected label errors, PII, duplicate clusters): the audit re-run on the
    dataset's file without storing anything, since the store keeps only the counts."""
    from tunewise.data.audit import audit

    dataset = store.get_dataset(ref)
    if not Path(dataset.path).is_file():
        raise StoreError(f"{dataset.path}: the file of dataset {dataset.id} is gone, so its rows cannot be shown")
    result = audit(dataset.path, register=False, progress=False)
    mislabels = Table(["line", "given", "suggested", "confidence", "text"],
                      [[str(m.get("line")), str(m.get("given")), str(m.get("suggested")), _num(m.get("confidence")), str(m.get("text", ""))]
                       for m in result.mislabels[:50]], numeric=frozenset({0, 3}), pre=frozenset({4}))
    pii = Table(["line", "types", "matches"], [[str(p.get("line")), ", ".join(p.get("types", [])),
                                                ", ".join(f"{m['type']}: {m['text']}" for m in p.get("matches", []))]
                                               for p in result.pii[:50]], numeric=frozenset({0}))
    clusters = Table(["kind", "lines", "first text"], [[c.get("kind", ""), ", ".join(str(n) for n in c.get("lines", [])[:12]),
                                                       str((c.get("texts") or [""])[0])] for c in result.duplicate_clusters[:30]],
                     pre=frozenset({2}))
    return {"dataset": dataset, "mislabels": mislabels, "pii": pii, "clusters": clusters,
            "counts": {"mislabels": len(result.mislabels), "pii": len(result.pii), "clusters": len(result.duplicate_clusters)}}


# -- runs ---------------------------------------------------------------------------------------------


def runs_view(store) -> dict[str, Any]:
    rows = []
    for r in store.list_runs(limit=1000):
        metrics = r.metrics or {}
        rows.append({"id": r.id, "kind": r.kind, "status": r.status, "base_model": r.base_model, "dataset": r.dataset_id or "",
                     "eval_accuracy": _num(metrics.get("eval_accuracy")), "wall": _num(r.wall_seconds, "{:,.0f} s"),
                     "cost": _num(r.cost_usd, "${:,.4f}"), "created": _when(r.created_at)})
    return {"runs": rows}


def _curves(store, run_id: str) -> dict[str, list[tuple[float, float]]]:
    """Loss-like and score-like series from the run's logged steps, by name."""
    series: dict[str, list[tuple[float, float]]] = {}
    for step in store.run_steps(run_id):
        for key, value in (step.values or {}).items():
            if key in ("loss", "eval_loss", "eval_accuracy", "mean_token_accuracy") and isinstance(value, (int, float)):
                series.setdefault(key, []).append((float(step.step), float(value)))
    return series


def run_view(store, ref: str) -> dict[str, Any]:
    run = store.get_run(ref)
    series = _curves(store, run.id)
    losses = {k: v for k, v in series.items() if "loss" in k}
    scores = {k: v for k, v in series.items() if "loss" not in k}
    facts = Table(["", ""], [
        ["status", run.status], ["kind", run.kind], ["base model", run.base_model], ["dataset", run.dataset_id or "-"],
        ["created", _when(run.created_at)], ["started", _when(run.started_at)], ["finished", _when(run.finished_at)],
        ["wall time", _num(run.wall_seconds, "{:,.0f} s")], ["tokens seen", _num(run.tokens_seen)],
        ["peak memory", _num(run.peak_memory_mb, "{:,.0f} MB")], ["cost", _num(run.cost_usd, "${:,.4f}")],
        ["error", run.error or "-"],
    ])
    return {
        "run": run, "facts": facts, "config": _pairs(run.config), "metrics": _pairs({k: v for k, v in (run.metrics or {}).items()
                                                                                    if not isinstance(v, (dict, list))}),
        "artifacts": Table(["artifact", "path"], [[k, str(v)] for k, v in (run.artifacts or {}).items()]),
        "loss_chart": line_chart(losses, title=f"loss of {run.id}", x_label="step", y_label="loss"),
        "score_chart": line_chart(scores, title=f"accuracy of {run.id}", x_label="step", y_label="accuracy"),
        "steps": sum(len(v) for v in series.values()),
        "running": run.status == "running",
        "evaluations": [e.id for e in store.list_evaluations(limit=10000)
                        if any(c.run_id == run.id for c in store.evaluation_candidates(e.id))],
    }


def compare_runs_view(store, a: str, b: str) -> dict[str, Any]:
    first, second = store.get_run(a), store.get_run(b)
    keys = list(dict.fromkeys([*(first.config or {}), *(second.config or {})]))
    config = Table(["setting", first.id, second.id, "differs"],
                   [[k, _num((first.config or {}).get(k)), _num((second.config or {}).get(k)),
                     "yes" if (first.config or {}).get(k) != (second.config or {}).get(k) else ""] for k in keys])
    mkeys = [k for k in dict.fromkeys([*(first.metrics or {}), *(second.metrics or {})])
             if not isinstance((first.metrics or {}).get(k, (second.metrics or {}).get(k)), (dict, list))]
    metrics = Table(["metric", first.id, second.id], [[k, _num((first.metrics or {}).get(k)), _num((second.metrics or {}).get(k))] for k in mkeys])
    series = {}
    for run in (first, second):
        for key, values in _curves(store, run.id).items():
            if key == "loss":
                series[f"{run.id} loss"] = values
    return {"a": first, "b": second, "config": config, "metrics": metrics,
            "chart": line_chart(series, title="training loss", x_label="step", y_label="loss"),
            "facts": Table(["", first.id, second.id], [["status", first.status, second.status],
                                                        ["wall time", _num(first.wall_seconds, "{:,.0f} s"), _num(second.wall_seconds, "{:,.0f} s")],
                                                        ["cost", _num(first.cost_usd, "${:,.4f}"), _num(second.cost_usd, "${:,.4f}")]])}


# -- evaluations ----------------------------------------------------------------------------------------


def evaluations_view(store) -> dict[str, Any]:
    rows = [{"id": e.id, "kind": e.kind, "task": e.task_type or "", "dataset": e.dataset_id or "", "verdict": e.verdict or "",
             "created": _when(e.created_at)} for e in store.list_evaluations(limit=1000)]
    return {"evaluations": rows}


def _review_csv(results) -> Path:
    """Where the app keeps the ratings people enter: a review sheet beside the evaluation's per-row outputs."""
    return Path(results.outputs_path).parent / "ui-review" / f"review-{results.evaluation_id}.csv"


def _ratings(results) -> dict[tuple[str, str], str]:
    """{(row, candidate): rating} from the app's review sheet (empty when nobody rated yet)."""
    from tunewise.evaluate.review import RATING_PREFIX

    path = _review_csv(results) if results.outputs_path else None
    if path is None or not path.is_file():
        return {}
    found = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            for column, value in record.items():
                if column and column.startswith(RATING_PREFIX) and value:
                    found[(record["row"], column[len(RATING_PREFIX):])] = value
    return found


def evaluation_view(store, ref: str, *, show: str = "all", a: str | None = None, b: str | None = None, page: int = 0) -> dict[str, Any]:
    """The candidates table with intervals and tests (the report's own sections), then the per-row outputs side by
    side, filtered to `failures` of candidate `a` or `disagree`ments between `a` and `b`."""
    from tunewise.evaluate.report import metrics_section, candidates_section, confusion_section, human_review_section
    from tunewise.evaluate.review import comparison_results, iter_outputs

    evaluation = store.get_evaluation(ref)
    context: dict[str, Any] = {"evaluation": evaluation, "created": _when(evaluation.created_at), "sections": [], "rows": [],
                               "names": [], "show": show, "a": a, "b": b, "page": page, "pages": 0, "matched": 0,
                               "outputs_error": None, "filters": [], "curve": None}
    if evaluation.kind == "curve":
        from tunewise.evaluate.report import curve_section

        context["sections"] = [curve_section(evaluation)]
        return context
    results = comparison_results(evaluation)
    context["sections"] = [s for s in (candidates_section(results), metrics_section(results), confusion_section(results), human_review_section(results)) if s]
    names = [c.name for c in results.completed()]
    a = a if a in names else (names[-1] if names else None)
    b = b if b in names else (results.baseline if results.baseline in names and results.baseline != a else next((n for n in names if n != a), None))
    context.update(names=names, a=a, b=b, verdict=results.verdict)
    try:
        outputs = list(iter_outputs(results))
    except EvaluationError as exc:
        context["outputs_error"] = str(exc)
        return context
    ratings = _ratings(results)

    def keep(row) -> bool:
        entry_a, entry_b = row.candidates.get(a), row.candidates.get(b)
        if show == "failures":
            return entry_a is not None and (entry_a.row_score or 0.0) < 1.0
        if show == "disagree":
            if entry_a is None or entry_b is None:
                return False
            return (entry_a.prediction or entry_a.output).strip() != (entry_b.prediction or entry_b.output).strip()
        return True

    matched = [row for row in outputs if keep(row)]
    start = page * ROWS_PER_PAGE
    rows = []
    for row in matched[start:start + ROWS_PER_PAGE]:
        cells = []
        for name in names:
            entry = row.candidates.get(name)
            score = entry.row_score if entry is not None else None
            cells.append({"row": row.index, "name": name, "text": entry.output if entry is not None else "",
                          "prediction": entry.prediction if entry is not None and entry.prediction not in (None, entry.output) else None,
                          "css": "" if score is None else ("ok" if score >= 0.5 else "bad"),
                          "rating": ratings.get((str(row.index), name), "")})
        rows.append({"index": row.index, "input": row.input, "reference": row.reference or "", "cells": cells})
    context.update(rows=rows, matched=len(matched), total=len(outputs), pages=(len(matched) + ROWS_PER_PAGE - 1) // ROWS_PER_PAGE,
                   filters=[("all", "every row"), ("failures", f"failures of {a}"), ("disagree", f"{a} and {b} disagree")])
    return context


def rate_row(store, ref: str, row: int, candidate: str, rating: str):
    """Store one person's rating of one reply the way `tunewise eval import-review` stores a filled sheet.

    The app keeps a review sheet (`export_review`'s CSV) beside the per-row outputs, writes the rating into
    its cell, and imports the whole sheet with `import_review`: the evaluation's `human_review` is then exactly
    what an import of that file gives. An empty rating clears the cell.
    """
    from tunewise.evaluate.review import RATING_PREFIX, comparison_results, export_review, import_review

    evaluation = store.get_evaluation(ref)
    results = comparison_results(evaluation)
    if not results.outputs_path:
        raise EvaluationError(f"evaluation {evaluation.id} kept no per-row outputs to rate")
    sheet = _review_csv(results)
    if not sheet.is_file():
        export_review(evaluation.id, sheet.parent, store=store)
    with sheet.open(encoding="utf-8", newline="") as handle:
        records = list(csv.reader(handle))
    header = records[0]
    column = RATING_PREFIX + candidate
    if column not in header:
        raise EvaluationError(f"candidate {candidate!r} has no rating column in evaluation {evaluation.id}")
    target = next((r for r in records[1:] if r and r[0] == str(row)), None)
    if target is None:
        raise EvaluationError(f"evaluation {evaluation.id} has no row {row}")
    target[header.index(column)] = rating.strip()
    tmp = sheet.with_suffix(".csv.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(records)
    tmp.replace(sheet)
    if not any(r[header.index(c)].strip() for r in records[1:] if r for c in header if c.startswith(RATING_PREFIX)):
        return None  # the last rating was cleared: nothing to import
    return import_review(evaluation.id, sheet, store=store)


# -- decision -------------------------------------------------------------------------------------------


def decision_view(store) -> dict[str, Any]:
    from tunewise.advise.render import decision_section

    decision = store.latest_decision()
    from markupsafe import Markup

    _, html = decision_section(store)
    html = Markup(html)  # rendered by the advice's own template, which escaped its data (as the report places it)
    volume = None
    if decision is not None:
        fact = ((decision.facts or {}).get("facts") or {}).get("requests_per_month")
        volume = fact.get("value") if isinstance(fact, dict) else None
    return {"decision": decision, "html": html, "volume": volume, "created": _when(decision.created_at) if decision else "",
            "steps": _volume_steps(volume)}


def _volume_steps(volume: float | None) -> list[int]:
    """The slider's stops: the stored volume divided and multiplied by up to 100."""
    if not volume:
        return []
    return [int(volume * f) for f in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)]


def roi_view(store, volume: float) -> dict[str, Any]:
    """The ROI table at another monthly volume: `advise` again with the stored decision's answers and
    `requests_per_month=volume`, not saved."""
    from tunewise.advise.answers import Answers
    from tunewise.advise.decide import advise
    from tunewise.config import load_config
    from tunewise.records.decision import DecisionRecord

    decision = store.latest_decision()
    if decision is None:
        raise EvaluationError("no decision yet: run `tunewise advise`")
    record = DecisionRecord.from_store(decision.facts, where=f"decision {decision.id}")
    fields = set(Answers.model_fields)
    answers = {k: f.value for k, f in record.facts.items() if k in fields and "answered" in f.source}
    answers["requests_per_month"] = volume
    settings = load_config()
    advice = advise(store, answers, dataset_id=record.dataset_id, evaluation_id=record.evaluation_id, config=settings.advise,
                    thresholds=settings.data.thresholds, save=False)
    money = advice.roi
    table = None
    if money is not None:

        table = Table(["option", "$/month", "training/run", "year-1 cost", "year-1 benefit", "net", "break-even"],
                      [[o.name, fmt_usd(o.monthly_usd, 2), fmt_usd(o.training_usd), fmt_usd(o.incremental_year1_usd), fmt_usd(o.benefit_year1_usd),
                        fmt_usd(o.net_year1_usd), f"month {o.break_even_month}" if o.break_even_month else "never/unknown"]
                       for o in money.options], numeric=frozenset({1, 2, 3, 4, 5}))
    return {"volume": volume, "volume_text": f"{volume:,.0f}", "table": table, "decision_text": money.decision if money else
            "money unknown at this volume", "verdict": advice.verdict, "baseline": fmt_usd(money.baseline_monthly_usd, 2) if money else "-"}


# -- deployments ----------------------------------------------------------------------------------------


def deployments_view(store) -> dict[str, Any]:
    from tunewise.deploy.state import load

    rows = []
    for record in store.list_deployments():
        try:
            summary = load(record.name, store=store).state.summary()
        except TunewiseError as exc:
            summary = str(exc)
        rows.append({"name": record.name, "status": record.status, "version": record.version, "state": summary,
                     "requests": len(store.request_logs(record.id)), "updated": _when(record.updated_at)})
    return {"deployments": rows}


def _traffic(rows, names: list[str]) -> tuple[list[str], dict[str, list[int]]]:
    """Requests per variant per minute (per hour beyond two hours), the same buckets as the report's table."""
    if not rows:
        return [], {}
    first, last = rows[0].created_at, rows[-1].created_at
    fmt = "%H:%M" if (last - first).total_seconds() <= 7200 else "%m-%d %H:00"
    counts: dict[str, Counter] = {}
    for row in rows:
        counts.setdefault(row.created_at.strftime(fmt), Counter())[row.variant] += 1
    seen = [n for n in names if any(c[n] for c in counts.values())] + sorted({v for c in counts.values() for v in c} - set(names))
    buckets = list(counts)
    return buckets, {n: [counts[b][n] for b in buckets] for n in seen}


def deployment_view(store, name: str) -> dict[str, Any]:
    from tunewise.deploy.monitor import deployment_status
    from tunewise.deploy.report import traffic_table, variants_table
    from tunewise.deploy.state import load

    loaded = load(name, store=store)
    rows = store.request_logs(loaded.record.id)
    status = deployment_status(loaded.name, since=rows[0].created_at if rows else None, store=store)
    names = [v.name for v in loaded.state.variants()]
    buckets, counts = _traffic(rows, names)
    alerts = store.alerts(loaded.record.id)
    events = store.deployment_events(loaded.record.id)
    shares = Table(["variant", "spec", "share of users now"], [[v.name, v.spec, f"{v.share:g}%"] for v in status.variants],
                   numeric=frozenset({2}))
    return {
        "name": loaded.name, "version": loaded.version, "mode": loaded.state.mode, "state": loaded.state.summary(),
        "record": loaded.record, "shares": shares, "variants": variants_table(status) if rows else None, "verdicts": status.verdicts,
        "notes": status.notes, "candidates": [c.name for c in loaded.state.candidates],
        "traffic_chart": stacked_bars(buckets, counts, title=f"requests per variant, {loaded.name}", y_label="requests", x_label="time (UTC)"),
        "traffic_table": traffic_table(rows, names) if rows else None,
        "alerts": Table(["when", "rule", "variant", "value", "threshold", "message"],
                        [[_when(a.created_at), a.rule, a.variant or "", _num(a.value), _num(a.threshold), a.message] for a in alerts]),
        "alert_count": len(alerts),
        "events": Table(["version", "when", "who", "change", "why"],
                        [[str(e.version), _when(e.created_at), e.actor, e.action, e.reason or ""] for e in events], numeric=frozenset({0})),
        "requests": len(rows),
    }


def change_deployment(store, name: str, action: str, *, share: float | None = None, variant: str | None = None, reason: str = "",
                      who: str = ""):
    """Share, shadow, rollback or resume: `deploy.state.set_deployment`, the function `tunewise deploy` calls,
    so the change is a new deployment version with its event (actor, reason).

    The event names `who` (the person who filled the form) "via tunewise ui"; without it, the account the web
    app runs under. The web app has no accounts, so the name is what the person typed, as in a signed log book.
    """
    from tunewise.deploy.state import current_actor, set_deployment
    from tunewise.errors import ConfigError

    reason = reason.strip() or "from tunewise ui"
    actor = f"{' '.join(who.split())[:80] or current_actor()} via tunewise ui"
    changes = {"shadow-on": {"shadow": True}, "shadow-off": {"shadow": False}, "rollback": {"rollback": True}, "resume": {"resume": True}}
    if action == "share":
        if share is None:
            raise ConfigError("give the candidate's share of users, in percent")
        changes["share"] = {"share": share, "candidate": variant or None}
    if action not in changes:
        raise ConfigError(f"unknown change {action!r}: share, shadow-on, shadow-off, rollback or resume")
    return set_deployment(name, **changes[action], reason=reason, actor=actor, store=store)

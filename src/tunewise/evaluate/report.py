"""`tunewise report`: one self-contained HTML page and a Markdown summary of what the store knows.

    from tunewise.evaluate.report import write_report
    html_path, md_path = write_report("report/")

Sections: the verdict; candidates with metric, interval, difference from the baseline, p-value and
significance; every metric; the best candidate's confusion matrix; its worst errors with examples;
time and cost per 1,000 requests; how each fine-tune was trained; teacher vs student for a distilled
student (`distill.verdict`); human ratings; the learning curve; the data audit; the decision (`tunewise advise`). Each section is built once as data
(`tunewise.render.sections`) and rendered to HTML by the `report.html` template and to Markdown; the
HTML carries the one stylesheet and its plots as base64 PNG, so it opens offline and can be mailed as
one file; the Markdown links the same plots, written beside it. Intervals are labelled with the
confidence level the evaluation was run at (EvalConfig.confidence).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from tunewise.errors import EvaluationError, NotFoundError, StoreError, TunewiseError
from tunewise.evaluate.review import comparison_results, iter_outputs, load_evaluation
from tunewise.records.evaluation import CandidateResult, Confusion, CurveResults, EvaluationResults
from tunewise.render.sections import Section, Table, render_markdown

MAX_ERRORS = 8
CLIP = 300  # characters of an input or output shown in the error examples


def write_report(out_dir: str | Path = "report", *, store=None, evaluation_ref: str = "latest",
                 deployments: list[str] | None = None) -> tuple[Path, Path]:
    """Write `report.html` (self-contained) and `report.md` into `out_dir`; returns both paths.

    `evaluation_ref` is an evaluation id or `latest` (the newest comparison). The learning curve, audit
    and decision sections use the newest of each in the store. `deployments` names the deployments to add a
    section for (default: every deployment in the store).
    Example: html_path, md_path = write_report("report/", evaluation_ref="eval-3f2a9c1b7d")
    """
    from tunewise.render import render_page
    from tunewise.store import Store

    with Store.borrow(store) as store:
        evaluation = _evaluation(store, evaluation_ref)
        curve = store.latest_evaluation(kind="curve")
        audit = store.latest_audit()
        from tunewise.deploy.report import deployment_section

        names = deployments if deployments is not None else [d.name for d in store.list_deployments()]
        if not names and evaluation is None and curve is None and audit is None and store.latest_decision() is None:
            raise EvaluationError("nothing to report yet: run `tunewise data audit`, `tunewise eval` or `tunewise advise` first")
        facts, verdict, sections = _header(store, evaluation), None, []
        if evaluation is not None:
            results = comparison_results(evaluation)
            verdict = results.verdict
            sections += [candidates_section(results), metrics_section(results), confusion_section(results), _errors(results),
                         _operations(results), _training(store, results), _distillation_of(store, evaluation, results),
                         human_review_section(results)]
        else:
            sections.append(Section("Candidates").text("No comparison yet: run `tunewise eval`."))
        sections += [curve_section(curve), audit_section(audit), _decision(store), *(deployment_section(store, name) for name in names)]
        sections = [s for s in sections if s is not None]

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for section in sections:
            for name, png in section.images.items():
                (out / name).write_bytes(png)
        md_path = out / "report.md"
        head = "# tunewise report\n\n" + " · ".join(facts) + "\n\n" + (f"**Verdict:** {verdict}\n" if verdict else "")
        md_path.write_text(head + "\n" + render_markdown(sections), encoding="utf-8")
        html_path = out / "report.html"
        html_path.write_text(render_page("report.html", title="tunewise report", facts=facts, verdict=verdict, sections=sections), encoding="utf-8")
        if evaluation is not None:
            store.update_evaluation(evaluation.id, report_path=str(html_path.resolve()))
        return html_path, md_path


def _evaluation(store, ref: str):
    if ref in (None, "", "latest"):
        try:
            return load_evaluation(store, "latest")
        except EvaluationError:
            return None  # a report of the audit or the decision alone is still useful
    return load_evaluation(store, ref)


# -- formatting -----------------------------------------------------------------------------------


def _is_rate(values) -> bool:
    values = [v for v in values if isinstance(v, (int, float))]
    return bool(values) and all(0.0 <= v <= 1.0 for v in values)


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _diff(value, rate: bool) -> str:
    if value is None:
        return "–"
    return f"{value * 100:+.1f} pts" if rate else f"{value:+.3f}"


def _interval(low, high, rate: bool = False, diff: bool = False) -> str:
    if low is None or high is None:
        return "–"
    if diff:
        return f"{_diff(low, rate)} to {_diff(high, rate)}"
    return f"{low:.3f}–{high:.3f}"


def _p(value) -> str:
    if value is None:
        return "–"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _ci(confidence: float) -> str:
    """The interval's label at the level it was computed at, e.g. '95% CI'."""
    return f"{confidence * 100:g}% CI"


def _clip(text, limit: int = CLIP) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- sections -------------------------------------------------------------------------------------


def _header(store, evaluation) -> list[str]:
    facts = [f"generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}"]
    if evaluation is None:
        return facts
    results = comparison_results(evaluation)
    facts.append(f"evaluation {evaluation.id}")
    for label, dataset_id in (("eval set", evaluation.dataset_id), ("training set", evaluation.train_dataset_id)):
        if name := _dataset_name(store, dataset_id):
            facts.append(f"{label} {name}")
    facts += [f"task {results.task_type}", f"{results.rows} eval rows"]
    if results.limit:
        facts.append(f"limited to the first {results.limit} rows (a quick look, not the full set)")
    return facts


def _dataset_name(store, dataset_id) -> str | None:
    if not dataset_id:
        return None
    try:
        dataset = store.get_dataset(dataset_id)
    except NotFoundError:
        return dataset_id
    return f"{dataset.name} ({dataset.rows} rows, {dataset.id})"


def candidates_section(results: EvaluationResults) -> Section:
    metric, baseline, ci = results.primary_metric, results.baseline, _ci(results.confidence)
    rate = _is_rate([c.metrics[metric].value for c in results.completed() if metric in c.metrics])
    best = results.best_candidate()
    header = ["candidate", "kind", "decoding", metric, ci, f"diff vs {baseline or 'baseline'}", f"diff {ci}", "p-value", "significant"]
    rows = []
    for c in results.candidates:
        value, comparison = c.metric(metric), c.comparison
        if not c.completed:
            significant = c.status + (f": {c.error}" if c.error else "")
        elif c.name == baseline:
            significant = "baseline"
        elif comparison is None:
            significant = "–"
        else:
            significant = "yes" if comparison.significant else "no"
        rows.append([
            c.name, c.kind, c.decoding or "–", _num(value and value.value), _interval(value and value.low, value and value.high),
            _diff(comparison and comparison.diff, rate), _interval(comparison and comparison.low, comparison and comparison.high, rate, diff=True),
            _p(comparison and comparison.p_value), significant,
        ])
    tests = [c.comparison.test for c in results.candidates if c.comparison is not None]
    note = f"Paired test: {tests[0]}. " if tests else ""
    note += f"Intervals are bootstrap {results.confidence * 100:g}% intervals ({results.bootstrap_samples:,} resamples); the best candidate is in bold."
    if any(c.decoding == "constrained" for c in results.candidates):
        note += " Constrained decoding lets a local model spell nothing but a label; free decoding generates and stops when a label is complete."
    section = Section("Candidates").table(
        Table(header, rows, numeric=frozenset({3, 5, 7}), best=results.candidates.index(best) if best is not None else None)
    ).note(note)
    if len(results.verdicts) > 1:
        section.bullets(list(results.verdicts.values()))
    chart = _bar_chart(results)
    if chart:
        section.image("report-candidates.png", chart, f"{metric} per candidate with {ci}")
    return section


def _bar_chart(results: EvaluationResults) -> bytes | None:
    import numpy as np

    from tunewise.render import figure, png_bytes

    metric = results.primary_metric
    done = [c for c in results.completed() if metric in c.metrics]
    if not done:
        return None
    values = np.asarray([c.metrics[metric].value for c in done], dtype=float)
    lows = np.asarray([c.metrics[metric].low if c.metrics[metric].low is not None else v for c, v in zip(done, values)])
    highs = np.asarray([c.metrics[metric].high if c.metrics[metric].high is not None else v for c, v in zip(done, values)])
    fig = figure(6.4, 0.5 * len(done) + 1.4)
    ax = fig.add_subplot()
    positions = np.arange(len(done))
    ax.barh(positions, values, xerr=np.vstack([values - lows, highs - values]).clip(min=0), color="#7aa6d8", capsize=3)
    ax.set_yticks(positions, [c.name for c in done], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} ({_ci(results.confidence)})")
    ax.grid(True, axis="x", alpha=0.3)
    return png_bytes(fig)


def metrics_section(results: EvaluationResults) -> Section | None:
    candidates = results.completed()
    names = list(dict.fromkeys(name for c in candidates for name in c.metrics))
    if len(names) <= 1:
        return None
    rows = []
    for c in candidates:
        row = [c.name]
        for name in names:
            value = c.metric(name)
            text = _num(value and value.value)
            if value is not None and value.low is not None and value.high is not None:
                text += f" ({value.low:.3f}–{value.high:.3f})"
            row.append(text)
        rows.append(row)
    return Section("All metrics").table(Table(["candidate", *names], rows)).note(f"In brackets: the {_ci(results.confidence)}.")


def confusion_of(candidate: CandidateResult) -> Confusion | None:
    """The confusion matrix `evaluate()` stored for a classification candidate (None for other tasks)."""
    return candidate.details.confusion if candidate.details is not None else None


def confusion_section(results: EvaluationResults) -> Section | None:
    best = results.best_candidate()
    found = confusion_of(best) if best is not None else None
    if found is None:
        return None
    labels, columns, matrix = found.labels, found.columns, found.matrix
    pairs = sorted(
        ((matrix[i][j], labels[i], columns[j]) for i in range(len(labels)) for j in range(len(columns))
         if matrix[i][j] and labels[i] != columns[j]),
        reverse=True,
    )[:5]
    confused = "; ".join(f"{ref} → {pred} ({count})" for count, ref, pred in pairs) or "none"
    return (Section(f"Confusion matrix of the best candidate ({best.name})")
            .image("report-confusion.png", _heatmap(found, best.name), "confusion matrix")
            .note(f"Most frequent confusions (reference → prediction): {confused}."))


def _heatmap(confusion: Confusion, name: str) -> bytes:
    import numpy as np

    from tunewise.render import figure, png_bytes

    rows, columns = confusion.labels, confusion.columns
    data = np.asarray(confusion.matrix, dtype=float)
    fig = figure(max(4.0, 0.45 * len(columns) + 2.5) + 1.0, max(4.0, 0.45 * len(rows) + 2.5))
    ax = fig.add_subplot()
    # Row-normalised colours (recall per class) so that small classes are as visible as large ones; counts printed.
    totals = data.sum(axis=1, keepdims=True)
    shade = np.divide(data, totals, out=np.zeros_like(data), where=totals > 0)
    image = ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the reference row")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("reference")
    ax.set_title(name, fontsize=9)
    for i in range(len(rows)):
        for j in range(len(columns)):
            if data[i, j]:
                ax.text(j, i, f"{int(data[i, j])}", ha="center", va="center", fontsize=7, color="white" if shade[i, j] > 0.6 else "black")
    return png_bytes(fig)


def _errors(results: EvaluationResults) -> Section | None:
    best = results.best_candidate()
    if best is None:
        return None
    title = f"Worst errors of the best candidate ({best.name})"
    try:
        rows = list(iter_outputs(results))
    except EvaluationError as exc:
        return Section("Worst errors").note(str(exc))
    others = [c.name for c in results.completed() if c.name != best.name]
    wrong = []
    for row in rows:
        entry = row.candidates.get(best.name)
        score = entry.row_score if entry is not None else None
        if score is None or score >= 1.0:
            continue
        right = [o for o in others if o in row.candidates and (row.candidates[o].row_score or 0.0) >= 1.0]
        wrong.append((score, -len(right), row.index, row, entry, right))
    # Lowest score first; among equals, the rows other candidates got right: those are the fixable ones.
    wrong.sort(key=lambda item: item[:3])
    if not wrong:
        return Section(title).text("No errors in the per-row outputs.")
    table_rows = []
    for _, _, index, row, entry, right in wrong[:MAX_ERRORS]:
        output = entry.output
        if entry.prediction not in (None, "") and entry.prediction != output:
            output = f"{output}  [parsed: {entry.prediction}]"
        table_rows.append([str(index), _clip(row.input), _clip(row.reference), _clip(output), ", ".join(right) or "none"])
    shown = min(len(wrong), MAX_ERRORS)
    if results.task_type == "text":
        lead = f"The {shown} lowest-scoring of {len(rows)} rows:"
    else:
        lead = f"{len(wrong)} of {len(rows)} rows wrong; the {shown} worst:"
    header = ["row", "input", "reference", "output", "right instead"]
    return Section(title).text(lead).table(Table(header, table_rows, pre=frozenset({1, 2, 3})))


def _training(store, results: EvaluationResults) -> Section | None:
    """How each compared fine-tune was trained: its held-out score, whether it was still improving, its search."""
    runs = []
    for c in results.completed():
        if c.run_id:
            try:
                runs.append((c.name, store.get_run(c.run_id)))
            except TunewiseError:
                continue
    if not runs:
        return None
    header = ["candidate", "run", "steps", "held-out accuracy", "held-out loss", "best step", "still improving", "learning rate", "epochs"]
    rows, notes, trials = [], [], []
    for name, run in runs:
        m, cfg = run.metrics or {}, run.config or {}
        rows.append([name, run.id, str(m.get("steps", "–")), _num(m.get("eval_accuracy")), _num(m.get("eval_loss")),
                     str(m.get("best_step", "–")), {True: "yes", False: "no"}.get(m.get("still_improving"), "–"),
                     f"{cfg.get('learning_rate'):g}" if cfg.get("learning_rate") else "–", f"{cfg.get('epochs'):g}" if cfg.get("epochs") else "–"])
        if m.get("still_improving"):
            notes.append(f"{run.id} was still improving at its last evaluation: a longer run, `tunewise train --search` or more data may do better.")
        if m.get("search_id"):
            try:
                search = store.get_run(m["search_id"])
            except TunewiseError:
                continue
            for t in (search.metrics or {}).get("trials", []):
                trials.append([search.id, t["run_id"], str(t["rung"]), f"{t['learning_rate']:g}", f"{t['epochs']:g}",
                               str(t.get("steps")), _num(t.get("eval_accuracy")), _num(t.get("eval_loss")), "winner" if t.get("winner") else ""])
    section = Section("Training runs").table(Table(header, rows, numeric=frozenset({2, 3, 4, 5})))
    for note in notes:
        section.note(note)
    if trials:
        theader = ["search", "trial", "rung", "learning rate", "epochs", "steps", "held-out accuracy", "held-out loss", ""]
        section.subtitle("Search trials (ranked by the held-out score)").table(Table(theader, trials, numeric=frozenset({5, 6, 7})))
    return section


def _distillation_of(store, evaluation, results: EvaluationResults) -> Section | None:
    """The reported evaluation's teacher vs student; else the newest other comparison that holds a pair, named as such
    (a student is often scored against its teacher alone, apart from the main comparison)."""
    section = _distillation(store, evaluation, results)
    if section is not None:
        return section
    for other in store.list_evaluations(limit=50):
        if other.id == evaluation.id or other.kind != "compare":
            continue
        other_results = comparison_results(other)
        section = _distillation(store, other, other_results)
        if section is not None:
            return section.note(f"From evaluation {other.id} ({other_results.rows} rows of {other_results.eval_path}), "
                                "not the comparison above.")
    return None


def _distillation(store, evaluation, results: EvaluationResults) -> Section | None:
    """Teacher vs student, for each distilled student in the evaluation whose teacher is a candidate too."""
    from tunewise.distill.verdict import teacher_student
    from tunewise.evaluate.stats import format_p

    pairs = teacher_student(store, evaluation, months=_horizon_months())
    if not pairs:
        return None
    ci = _ci(results.confidence)
    header = ["role", "candidate", results.primary_metric, ci, "share of the teacher kept", "cost per 1k $", "latency p50"]
    section = Section("Distillation: teacher vs student")
    for pair in pairs:
        if len(pairs) > 1:
            section.subtitle(f"{pair.student.name} from {pair.teacher.name}")
        rows = []
        for role, side in (("teacher", pair.teacher), ("student", pair.student)):
            kept = "–" if role == "teacher" else ("teacher scored 0" if pair.kept_pct is None else f"{pair.kept_pct:.1f}%")
            rows.append([role, side.name, _num(side.metric.value), _interval(side.metric.low, side.metric.high), kept,
                         side.cost_text.removeprefix("$"), side.latency_text])
        section.table(Table(header, rows, numeric=frozenset({2})))
        if pair.undertrained:
            section.strong(_sentence(f"Not a verdict on distillation: the student {pair.undertrained.removeprefix('its ')}"))
        lines = [_sentence(pair.kept_text)]
        test = pair.test
        if test is not None:
            rate = _is_rate([pair.teacher.metric.value, pair.student.metric.value])
            lines.append(f"Student minus teacher: {_diff(test.diff, rate)} ({ci} {_interval(test.low, test.high, rate, diff=True)}, "
                         f"{test.test} {format_p(test.p_value)}, {'significant' if test.significant else 'not significant'}; "
                         f"{test.source}).")
        elif pair.test_note:
            lines.append(_sentence(pair.test_note))
        lines.append(_sentence(pair.break_even.text))
        data = pair.data
        labeling = "not measured" if data.labeling_cost_usd is None else f"${data.labeling_cost_usd:,.4f}"
        lines.append(f"Distilled data: teacher {data.teacher}; {_fact(data.accepted)} accepted rows, {_fact(data.reviewed)} reviewed "
                     f"by people; labeling cost {labeling} ({data.labeling_basis}); dataset {data.dataset_id}"
                     + (f", folder {data.dir}" if data.dir else "") + f"; student run {pair.run_id}"
                     + ("" if pair.training_usd is None else f" (training ${pair.training_usd:,.2f})") + ".")
        section.bullets(lines + [_sentence(n) for n in pair.notes])
    return section.note("Cost per 1k requests and latency are what the evaluation measured for each candidate; the break-even "
                        "volume is the student's fixed cost (training run plus labeling) over what it saves per request.")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _horizon_months() -> int:
    from tunewise.config import load_config

    try:
        return load_config().advise.horizon_months
    except TunewiseError:  # a broken workspace config is reported by the commands that need it
        return 12


def _operations(results: EvaluationResults) -> Section | None:
    candidates = [c for c in results.completed() if c.operations is not None]
    if not candidates:
        return None
    header = ["candidate", "latency p50 ms", "latency p95 ms", "amortised ms / request", "tokens in", "tokens out", "requests/s",
              "cost per 1k $", "cost basis"]
    rows = []
    for c in candidates:
        ops = c.operations
        rows.append([
            c.name, _num(ops.latency_p50_ms, 1), _num(ops.latency_p95_ms, 1), _num(ops.amortized_ms_per_request, 1),
            _num(ops.tokens_in_mean, 0), _num(ops.tokens_out_mean, 1), _num(ops.requests_per_second, 2),
            "–" if ops.cost_per_1k_usd is None else f"{ops.cost_per_1k_usd:,.4f}", ops.cost_basis,
        ])
    note = ("Latency is measured request by request (endpoints, the classic classifier). Local models run requests in batches: "
            "their figure is amortised time per request (wall time / requests), a throughput, not the wait of one user.")
    return Section("Latency and cost").table(Table(header, rows, numeric=frozenset({1, 2, 3, 4, 5, 6, 7}))).note(note)


def human_review_section(results: EvaluationResults) -> Section | None:
    review = results.human_review
    if review is None:
        return None
    header = ["candidate", "scale", "mean", _ci(review.confidence), "rated"]
    rows = [[name, s.scale, _num(s.mean, 2), _interval(s.low, s.high), str(s.n)] for name, s in review.candidates.items()]
    lead = f"{review.rows_rated} rows rated by people ({review.file}, imported {review.imported_at})."
    return Section("Human review").text(lead).table(Table(header, rows))


def curve_section(curve) -> Section:
    section = Section("Learning curve")
    if curve is None:
        return section.note("No learning curve yet: run `tunewise eval curve --data TRAIN --eval EVAL --sizes 50,100,250,500`.")
    from tunewise.evaluate.curve import plot_curve

    try:
        results = CurveResults.from_store(curve.results, where=f"learning curve {curve.id}")
    except StoreError as exc:
        return section.note(str(exc))
    fit = results.fit
    rows = [[f"{n:,}", _num(s), r] for n, s, r in zip(results.sizes, results.scores, results.run_ids)]
    fit_line = f"Fit: {fit.model} {fit.formula}" + (f", R² {fit.r2:.3f}" if fit.r2 is not None else "")
    if fit.note:
        fit_line += f" ({fit.note})"
    return (section.strong(results.statement).image("report-curve.png", plot_curve(results), "learning curve")
            .table(Table(["training examples", results.metric, "run"], rows, numeric=frozenset({0, 1}))).note(f"{fit_line}."))


def audit_section(audit) -> Section:
    section = Section("Data audit")
    if audit is None:
        return section.note("No data audit yet: run `tunewise data audit TRAIN --eval EVAL`.")
    from tunewise.records.audit import AuditSummary

    try:
        s = AuditSummary.from_store(audit.summary, where=f"audit {audit.id}")
    except StoreError as exc:
        return section.note(str(exc))
    f, tokens, pii, dup, labels = _fact, s.tokens, s.pii, s.duplicates, s.labels
    facts = [
        ("rows", f"{f(s.rows)} kept, {f(s.rows_rejected)} rejected (quarantined)"),
        ("tokens", f"{f(tokens.total)} total, median {f(tokens.median)}, p95 {f(tokens.p95)}, "
                   f"{f(tokens.over_limit)} over the {f(tokens.context_limit)}-token limit"),
        ("PII", f"{f(pii.rows)} rows, {f(pii.matches)} matches" + (f" ({_pairs(pii.by_type)})" if pii.by_type else "")),
        ("duplicates", f"{f(dup.exact_clusters)} exact and {f(dup.near_clusters)} near clusters, {f(dup.removable)} removable rows"),
        ("contamination", f"{f(s.contamination.hits)} hits, {f(s.contamination.eval_rows_affected)} eval rows affected"),
    ]
    if labels.is_classification:
        text = f"{f(labels.n_classes)} classes, imbalance ratio {f(labels.imbalance_ratio)}, {f(labels.suspected_mislabeled)} suspected mislabels"
        if labels.kappa is not None:
            text += f", kappa {f(labels.kappa)}"
        facts.append(("labels", text))
    facts.append(("readiness", f"{s.readiness.level}: {s.readiness.verdict}"))
    if s.cost_estimates:
        facts.append(("training cost", "; ".join(f"{c.model} ${c.usd:,.2f}" for c in s.cost_estimates[:5])))
    section.text(f"Audit {audit.id} ({'passed' if audit.passed else 'blocking problems found'}).")
    return section.table(Table(["check", "result"], [[k, v] for k, v in facts]))


def _fact(value) -> str:
    if value is None:
        return "?"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"


def _pairs(mapping) -> str:
    if isinstance(mapping, dict):
        return ", ".join(f"{k} {v}" for k, v in mapping.items())
    return str(mapping)


def _decision(store) -> Section:
    from tunewise.advise.decide import decision_section

    try:
        md, page = decision_section(store)
    except Exception as exc:  # the advice is another stage: its failure must not lose the evaluation report
        return Section("Decision").note(f"The decision section could not be rendered ({type(exc).__name__}: {exc}); run `tunewise advise`.")
    # Rendered by the advice's own template, which escaped its data: placed as is.
    return Section("Decision", markdown=md).html(page)


# -- the terminal ------------------------------------------------------------------------------------


def print_results(results: EvaluationResults, console) -> None:
    """The candidates table and the verdict on a rich `console` (`tunewise eval` and the demo print this)."""
    from rich.table import Table as RichTable

    from tunewise.evaluate.stats import format_p

    primary = results.primary_metric
    pct = lambda x: f"{x * 100:.1f}"  # noqa: E731
    table = RichTable(
        title=f"{results.rows} eval rows, {results.task_type}: {primary} (%) with {results.confidence * 100:g}% interval",
        caption=f"baseline: {results.baseline}; ms: latency p50 / p95 per request, or ~amortised per request (local models, batched)",
    )
    for column, justify in (("candidate", "left"), (primary, "right"), ("vs baseline", "right"), ("p", "right"),
                            ("ms", "right"), ("$ / 1k req", "right")):
        table.add_column(column, justify=justify, overflow="fold", no_wrap=column in (primary, "vs baseline"), min_width=18 if column == "candidate" else None)
    for c in results.candidates:
        if not c.completed:
            table.add_row(c.name, "[red]failed[/]", "", "", "", "")
            continue
        m, comp, ops = c.metrics[primary], c.comparison, c.operations
        diff = f"{comp.diff * 100:+.1f} ({pct(comp.low)}–{pct(comp.high)})" if comp else "[dim]baseline[/]"
        if comp and comp.significant:
            diff = f"[bold]{diff}[/]"
        p = format_p(comp.p_value).removeprefix("p=").removeprefix("p") if comp else ""
        if ops.latency_p50_ms is not None:
            ms = f"{ops.latency_p50_ms:.0f} / {ops.latency_p95_ms:.0f}"
        elif ops.amortized_ms_per_request is not None:
            ms = f"~{ops.amortized_ms_per_request:.0f}"
        else:
            ms = "-"
        cost = f"${ops.cost_per_1k_usd:.4f}" if ops.cost_per_1k_usd is not None else "-"
        table.add_row(c.name, f"{pct(m.value)} ({pct(m.low)}–{pct(m.high)})", diff, p, ms, cost)
    console.print(table)
    for c in results.candidates:
        if not c.completed:
            console.print(f"[red]{c.name} failed:[/] {c.error or ''}", highlight=False, soft_wrap=True)
    if results.contamination is not None and results.contamination.eval_rows_affected:
        console.print(f"[yellow]warning:[/] {results.contamination.eval_rows_affected} eval rows duplicate training rows (--allow-contamination)")
    if results.limit:
        console.print(f"[yellow]note:[/] only the first {results.limit} eval rows were scored (--limit)")
    console.print(f"[bold]{results.verdict}[/]", highlight=False, soft_wrap=True)  # one line: easy to grep and paste
    console.print(f"evaluation {results.evaluation_id}; per-row outputs {results.outputs_path}", highlight=False, soft_wrap=True)

"""`tunewise report`: one self-contained HTML page and a Markdown summary of what the store knows.

    from tunewise.evaluate.report import write_report
    html_path, md_path = write_report("report/")

Sections: the verdict; candidates with metric, 95% interval, difference from the baseline, p-value and
significance; every metric; the best candidate's confusion matrix; its worst errors with examples;
latency and cost per 1,000 requests; human ratings; the learning curve; the data audit; the decision
(`tunewise advise`). The HTML carries its CSS inline and its plots as base64 PNG, so it opens offline
and can be mailed as one file; the Markdown links the same plots, written beside it.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tunewise.errors import EvaluationError, NotFoundError, TunewiseError
from tunewise.evaluate.review import completed_candidates, iter_outputs, load_evaluation

MAX_ERRORS = 8
CLIP = 300  # characters of an input or output shown in the error examples

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2rem auto;padding:0 1rem;color:#1d2330;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #e3e7ee;padding-bottom:.2rem;margin-top:2.2rem}
.meta{color:#5b6473;font-size:.9rem}
.verdict{font-size:1.15rem;background:#f2f7ff;border-left:5px solid #1f5fa8;padding:.7rem 1rem;margin:1rem 0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem}
th,td{border:1px solid #d6dbe3;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f0f3f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{font-weight:600}
.yes{color:#17803d;font-weight:600}.no{color:#8a8f98}
pre{white-space:pre-wrap;word-wrap:break-word;margin:0;font-size:.82rem;max-width:420px}
img{max-width:100%;border:1px solid #e3e7ee}
.note{color:#5b6473;font-size:.88rem}
"""


@dataclass
class Section:
    md: str
    html: str
    images: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG, written beside the Markdown


def write_report(out_dir: str | Path = "report", *, store=None, evaluation_ref: str = "latest") -> tuple[Path, Path]:
    """Write `report.html` (self-contained) and `report.md` into `out_dir`; returns both paths.

    `evaluation_ref` is an evaluation id or `latest` (the newest comparison). The learning curve, audit
    and decision sections use the newest of each in the store.
    Example: html_path, md_path = write_report("report/", evaluation_ref="eval-3f2a9c1b7d")
    """
    from tunewise.store import Store

    own = store is None
    store = store or Store.open()
    try:
        evaluation = _evaluation(store, evaluation_ref)
        curve = store.latest_evaluation(kind="curve")
        audit = store.latest_audit()
        if evaluation is None and curve is None and audit is None and store.latest_decision() is None:
            raise EvaluationError("nothing to report yet: run `tunewise data audit`, `tunewise eval` or `tunewise advise` first")
        sections = [_header(store, evaluation)]
        if evaluation is not None:
            results = evaluation.results or {}
            sections += [_candidates(results), _all_metrics(results), _confusion(evaluation), _errors(evaluation),
                         _operations(results), _training(store, results), _human_review(results)]
        else:
            sections.append(Section("## Candidates\n\nNo comparison yet: run `tunewise eval`.\n",
                                    "<h2>Candidates</h2><p>No comparison yet: run <code>tunewise eval</code>.</p>"))
        sections += [_curve(curve), _audit(audit), _decision(store)]

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for section in sections:
            for name, png in section.images.items():
                (out / name).write_bytes(png)
        md_path = out / "report.md"
        md_path.write_text("\n".join(s.md for s in sections if s.md), encoding="utf-8")
        html_path = out / "report.html"
        body = "\n".join(s.html for s in sections if s.html)
        html_path.write_text(
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>tunewise report</title><style>{_CSS}</style></head><body>{body}</body></html>",
            encoding="utf-8",
        )
        if evaluation is not None:
            store.update_evaluation(evaluation.id, report_path=str(html_path.resolve()))
        return html_path, md_path
    finally:
        if own:
            store.close()


def _evaluation(store, ref: str):
    if ref in (None, "", "latest"):
        try:
            return load_evaluation(store, "latest")
        except EvaluationError:
            return None  # a report of the audit or the decision alone is still useful
    return load_evaluation(store, ref)


# -- formatting -----------------------------------------------------------------------------------

esc = html.escape


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


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(text) -> str:
        # Replies are data, not markup: a stray <b> in a model output must not restyle the summary.
        text = str(text).replace("|", "\\|").replace("\n", " ")
        return re.sub(r"<(?=[A-Za-z/!])", "&lt;", text)

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


_NUM = " class='num'"


def _html_table(header: list[str], rows: list[list[str]], *, numeric: set[int] = frozenset(), classes: list[str] | None = None, raw: bool = False) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        css = f" class='{classes[i]}'" if classes and classes[i] else ""
        cells = "".join(f"<td{_NUM if j in numeric else ''}>{c if raw else esc(str(c))}</td>" for j, c in enumerate(row))
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    return f"<img alt='{esc(alt)}' src='data:image/png;base64,{base64.b64encode(png).decode('ascii')}'>"


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    import io

    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# -- sections -------------------------------------------------------------------------------------


def _header(store, evaluation) -> Section:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    facts = [f"generated {now}"]
    verdict = None
    if evaluation is not None:
        results = evaluation.results or {}
        facts.append(f"evaluation {evaluation.id}")
        dataset = _dataset_name(store, evaluation.dataset_id)
        if dataset:
            facts.append(f"eval set {dataset}")
        train = _dataset_name(store, evaluation.train_dataset_id)
        if train:
            facts.append(f"training set {train}")
        task = results.get("task_type") or evaluation.task_type
        if task:
            facts.append(f"task {task}")
        rows = results.get("rows") or results.get("n_rows") or results.get("n")
        if rows:
            facts.append(f"{rows} eval rows")
        limit = (evaluation.config or {}).get("limit") or results.get("limit")
        if limit:
            facts.append(f"limited to the first {limit} rows (a quick look, not the full set)")
        verdict = results.get("verdict") or evaluation.verdict
    md = "# tunewise report\n\n" + " · ".join(facts) + "\n\n"
    page = "<h1>tunewise report</h1><p class='meta'>" + " · ".join(esc(f) for f in facts) + "</p>"
    if verdict:
        md += f"**Verdict:** {verdict}\n"
        page += f"<p class='verdict'><strong>Verdict:</strong> {esc(verdict)}</p>"
    return Section(md, page)


def _dataset_name(store, dataset_id) -> str | None:
    if not dataset_id:
        return None
    try:
        dataset = store.get_dataset(dataset_id)
    except NotFoundError:
        return dataset_id
    return f"{dataset.name} ({dataset.rows} rows, {dataset.id})"


def _primary(candidate: dict, metric: str | None) -> dict:
    return ((candidate.get("metrics") or {}).get(metric) or {}) if metric else {}


def best_candidate(results: dict) -> dict | None:
    """The completed candidate with the highest primary metric."""
    metric = results.get("primary_metric")
    scored = [c for c in completed_candidates(results) if _primary(c, metric).get("value") is not None]
    return max(scored, key=lambda c: _primary(c, metric)["value"]) if scored else None


def _candidates(results: dict) -> Section:
    metric = results.get("primary_metric") or "score"
    baseline = results.get("baseline")
    candidates = results.get("candidates") or []
    rate = _is_rate([_primary(c, metric).get("value") for c in candidates])
    best = best_candidate(results)
    header = ["candidate", "kind", "decoding", metric, "95% CI", f"diff vs {baseline or 'baseline'}", "diff 95% CI", "p-value", "significant"]
    rows, classes = [], []
    for c in candidates:
        value = _primary(c, metric)
        comparison = c.get("comparison") or {}
        status = c.get("status", "completed")
        if status != "completed":
            significant = status + (f": {c['error']}" if c.get("error") else "")
        elif c.get("name") == baseline or c.get("spec") == baseline:
            significant = "baseline"
        elif comparison.get("significant") is None:
            significant = "–"
        else:
            significant = "yes" if comparison["significant"] else "no"
        rows.append([
            c.get("name", "?"), c.get("kind", ""), c.get("decoding") or "–", _num(value.get("value")), _interval(value.get("low"), value.get("high")),
            _diff(comparison.get("diff"), rate), _interval(comparison.get("low"), comparison.get("high"), rate, diff=True),
            _p(comparison.get("p_value")), significant,
        ])
        classes.append("best" if best is not None and c is best else "")
    test = next((c["comparison"]["test"] for c in candidates if (c.get("comparison") or {}).get("test")), None)
    note = f"Paired test: {test}. " if test else ""
    note += "Intervals are bootstrap 95% intervals; the best candidate is in bold."
    if any(c.get("decoding") == "constrained" for c in candidates):
        note += " Constrained decoding lets a local model spell nothing but a label; free decoding generates and stops when a label is complete."
    lines = [v for v in (results.get("verdicts") or {}).values() if v]
    if len(lines) > 1:
        note_md = "\n".join(f"- {line}" for line in lines) + "\n\n"
        note_html = "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>"
    else:
        note_md = note_html = ""
    md_rows = [[f"**{row[0]}**", *row[1:]] if css == "best" else row for row, css in zip(rows, classes)]
    md = f"## Candidates\n\n{_md_table(header, md_rows)}\n{note}\n\n{note_md}"
    page = f"<h2>Candidates</h2>{_html_table(header, rows, numeric={3, 5, 7}, classes=classes)}<p class='note'>{esc(note)}</p>{note_html}"
    images = {}
    chart = _bar_chart(candidates, metric)
    if chart:
        images["report-candidates.png"] = chart
        md += "\n![candidates](report-candidates.png)\n"
        page += _img(chart, f"{metric} per candidate with 95% intervals")
    return Section(md, page, images)


def _bar_chart(candidates: list[dict], metric: str) -> bytes | None:
    import numpy as np

    done = [c for c in candidates if c.get("status", "completed") == "completed" and _primary(c, metric).get("value") is not None]
    if not done:
        return None
    values = np.asarray([_primary(c, metric)["value"] for c in done], dtype=float)
    lows = np.asarray([_primary(c, metric).get("low", v) if _primary(c, metric).get("low") is not None else v for c, v in zip(done, values)])
    highs = np.asarray([_primary(c, metric).get("high", v) if _primary(c, metric).get("high") is not None else v for c, v in zip(done, values)])
    figure = _figure()
    figure.set_size_inches(6.4, 0.5 * len(done) + 1.4)
    ax = figure.add_subplot()
    positions = np.arange(len(done))
    ax.barh(positions, values, xerr=np.vstack([values - lows, highs - values]).clip(min=0), color="#7aa6d8", capsize=3)
    ax.set_yticks(positions, [c.get("name", "?") for c in done], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} (95% CI)")
    ax.grid(True, axis="x", alpha=0.3)
    return _png(figure)


def _all_metrics(results: dict) -> Section:
    candidates = completed_candidates(results)
    names: list[str] = []
    for c in candidates:
        for metric, value in (c.get("metrics") or {}).items():
            if isinstance(value, dict) and metric not in names:
                names.append(metric)
    if len(names) <= 1:
        return Section("", "")
    rows = []
    for c in candidates:
        row = [c.get("name", "?")]
        for metric in names:
            value = (c.get("metrics") or {}).get(metric) or {}
            text = _num(value.get("value"))
            if value.get("low") is not None and value.get("high") is not None:
                text += f" ({value['low']:.3f}–{value['high']:.3f})"
            row.append(text)
        rows.append(row)
    header = ["candidate", *names]
    return Section(f"## All metrics\n\n{_md_table(header, rows)}", f"<h2>All metrics</h2>{_html_table(header, rows)}")


def confusion_of(evaluation, candidate: dict) -> tuple[list[str], list[str], list[list[int]]] | None:
    """(row labels = references, column labels = predictions, counts) of one candidate.

    Taken from the results when the evaluation stored it (`confusion` with `labels`, optional `columns`,
    `matrix`), else counted from the per-row outputs.
    """
    results = evaluation.results or {}
    name = candidate.get("name")
    stored = (
        candidate.get("confusion")
        or (candidate.get("details") or {}).get("confusion")
        or ((results.get("details") or {}).get(name) or {}).get("confusion")
        or (results.get("confusion") or {}).get(name)
    )
    if isinstance(stored, dict) and stored.get("labels") and stored.get("matrix"):
        rows = list(stored["labels"])
        return rows, list(stored.get("columns") or rows), [list(map(int, r)) for r in stored["matrix"]]
    try:
        outputs = list(iter_outputs(results, evaluation_id=evaluation.id))
    except EvaluationError:
        return None
    pairs = []
    for row in outputs:
        entry = row["candidates"].get(name)
        if entry is None or row["reference"] is None:
            continue
        prediction = entry.get("prediction")
        pairs.append((str(row["reference"]).strip(), "(no label)" if prediction in (None, "") else str(prediction).strip()))
    if not pairs:
        return None
    rows = sorted({r for r, _ in pairs})
    columns = rows + sorted({p for _, p in pairs} - set(rows))
    where = {label: i for i, label in enumerate(columns)}
    matrix = [[0] * len(columns) for _ in rows]
    for reference, prediction in pairs:
        matrix[rows.index(reference)][where[prediction]] += 1
    return rows, columns, matrix


def _confusion(evaluation) -> Section:
    results = evaluation.results or {}
    if (results.get("task_type") or evaluation.task_type) != "classification":
        return Section("", "")
    best = best_candidate(results)
    found = confusion_of(evaluation, best) if best else None
    if not found:
        return Section("", "")
    rows, columns, matrix = found
    png = _heatmap(rows, columns, matrix, best.get("name", "?"))
    pairs = sorted(
        ((matrix[i][j], rows[i], columns[j]) for i in range(len(rows)) for j in range(len(columns))
         if matrix[i][j] and rows[i] != columns[j]),
        reverse=True,
    )[:5]
    confused = "; ".join(f"{ref} → {pred} ({count})" for count, ref, pred in pairs) or "none"
    title = f"Confusion matrix of the best candidate ({best.get('name')})"
    md = f"## {title}\n\n![confusion matrix](report-confusion.png)\n\nMost frequent confusions (reference → prediction): {confused}.\n"
    page = f"<h2>{esc(title)}</h2>{_img(png, 'confusion matrix')}<p class='note'>Most frequent confusions (reference → prediction): {esc(confused)}.</p>"
    return Section(md, page, {"report-confusion.png": png})


def _heatmap(rows: list[str], columns: list[str], matrix: list[list[int]], name: str) -> bytes:
    import numpy as np

    data = np.asarray(matrix, dtype=float)
    height = max(4.0, 0.45 * len(rows) + 2.5)
    figure = _figure()
    figure.set_size_inches(max(4.0, 0.45 * len(columns) + 2.5) + 1.0, height)
    ax = figure.add_subplot()
    # Row-normalised colours (recall per class) so that small classes are as visible as large ones; counts printed.
    totals = data.sum(axis=1, keepdims=True)
    shade = np.divide(data, totals, out=np.zeros_like(data), where=totals > 0)
    image = ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the reference row")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("reference")
    ax.set_title(name, fontsize=9)
    for i in range(len(rows)):
        for j in range(len(columns)):
            if data[i, j]:
                ax.text(j, i, f"{int(data[i, j])}", ha="center", va="center", fontsize=7, color="white" if shade[i, j] > 0.6 else "black")
    return _png(figure)


def _score(correct) -> float | None:
    if correct is None:
        return None
    if isinstance(correct, bool):
        return 1.0 if correct else 0.0
    try:
        return float(correct)
    except (TypeError, ValueError):
        return None


def _clip(text, limit: int = CLIP) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _errors(evaluation) -> Section:
    results = evaluation.results or {}
    best = best_candidate(results)
    if best is None:
        return Section("", "")
    try:
        rows = list(iter_outputs(results, evaluation_id=evaluation.id))
    except EvaluationError as exc:
        return Section(f"## Worst errors\n\n{exc}\n", f"<h2>Worst errors</h2><p class='note'>{esc(str(exc))}</p>")
    name = best.get("name")
    others = [c.get("name") for c in completed_candidates(results) if c.get("name") != name]
    wrong = []
    for row in rows:
        entry = row["candidates"].get(name)
        score = _score(entry.get("correct")) if entry else None
        if score is None or score >= 1.0:
            continue
        right = [o for o in others if (_score((row["candidates"].get(o) or {}).get("correct")) or 0.0) >= 1.0]
        wrong.append((score, -len(right), row["index"], row, entry, right))
    # Lowest score first; among equals, the rows other candidates got right: those are the fixable ones.
    wrong.sort(key=lambda item: item[:3])
    title = f"Worst errors of the best candidate ({name})"
    if not wrong:
        return Section(f"## {title}\n\nNo errors in the per-row outputs.\n", f"<h2>{esc(title)}</h2><p>No errors in the per-row outputs.</p>")
    header = ["row", "input", "reference", "output", "right instead"]
    rows_out = []
    for score, _, index, row, entry, right in wrong[:MAX_ERRORS]:
        output = entry.get("output")
        if entry.get("prediction") not in (None, "") and str(entry.get("prediction")) != str(output):
            output = f"{output}  [parsed: {entry['prediction']}]"
        rows_out.append([str(index), _clip(row["input"]), _clip(row["reference"]), _clip(output), ", ".join(right) or "none"])
    graded = any(isinstance(item[4].get("correct"), float) for item in wrong)
    if graded:
        lead = f"The {min(len(wrong), MAX_ERRORS)} lowest-scoring of {len(rows)} rows:"
    else:
        lead = f"{len(wrong)} of {len(rows)} rows wrong; the {min(len(wrong), MAX_ERRORS)} worst:"
    md = f"## {title}\n\n{lead}\n\n{_md_table(header, rows_out)}"
    html_rows = [[esc(r[0]), *(f"<pre>{esc(c)}</pre>" for c in r[1:4]), esc(r[4])] for r in rows_out]
    page = f"<h2>{esc(title)}</h2><p>{esc(lead)}</p>{_html_table(header, html_rows, raw=True)}"
    return Section(md, page)


def _training(store, results: dict) -> Section:
    """How each compared fine-tune was trained: its held-out score, whether it was still improving, its search."""
    runs = []
    for c in completed_candidates(results):
        if c.get("run_id"):
            try:
                runs.append((c.get("name", "?"), store.get_run(c["run_id"])))
            except TunewiseError:
                continue
    if not runs:
        return Section("", "")
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
    md = f"## Training runs\n\n{_md_table(header, rows)}"
    html = f"<h2>Training runs</h2>{_html_table(header, rows, numeric={2, 3, 4, 5})}"
    for note in notes:
        md += f"\n{note}\n"
        html += f"<p class='note'>{esc(note)}</p>"
    if trials:
        theader = ["search", "trial", "rung", "learning rate", "epochs", "steps", "held-out accuracy", "held-out loss", ""]
        md += f"\n### Search trials (ranked by the held-out score)\n\n{_md_table(theader, trials)}"
        html += f"<h3>Search trials (ranked by the held-out score)</h3>{_html_table(theader, trials, numeric={5, 6, 7})}"
    return Section(md, html)


def _operations(results: dict) -> Section:
    candidates = completed_candidates(results)
    if not any(c.get("operations") for c in candidates):
        return Section("", "")
    header = ["candidate", "latency p50 ms", "latency p95 ms", "tokens in", "tokens out", "requests/s", "cost per 1k $", "cost basis"]
    rows = []
    for c in candidates:
        ops = c.get("operations") or {}
        cost = ops.get("cost_per_1k_usd")
        rows.append([
            c.get("name", "?"), _num(ops.get("latency_p50_ms"), 1), _num(ops.get("latency_p95_ms"), 1),
            _num(ops.get("tokens_in_mean"), 0), _num(ops.get("tokens_out_mean"), 1), _num(ops.get("requests_per_second"), 2),
            "–" if cost is None else f"{cost:,.4f}", ops.get("cost_basis") or "",
        ])
    md = f"## Latency and cost\n\n{_md_table(header, rows)}"
    return Section(md, f"<h2>Latency and cost</h2>{_html_table(header, rows, numeric={1, 2, 3, 4, 5, 6})}")


def _human_review(results: dict) -> Section:
    review = results.get("human_review")
    if not review:
        return Section("", "")
    header = ["candidate", "scale", "mean", "95% CI", "rated"]
    rows = [
        [name, s.get("scale") or "", _num(s.get("mean"), 2), _interval(s.get("low"), s.get("high")), str(s.get("n", 0))]
        for name, s in (review.get("candidates") or {}).items()
    ]
    lead = f"{review.get('rows_rated', 0)} rows rated by people ({review.get('file', '')}, imported {review.get('imported_at', '')})."
    return Section(f"## Human review\n\n{lead}\n\n{_md_table(header, rows)}", f"<h2>Human review</h2><p>{esc(lead)}</p>{_html_table(header, rows)}")


def _curve(curve) -> Section:
    if curve is None:
        text = "No learning curve yet: run `tunewise eval curve --data TRAIN --eval EVAL --sizes 50,100,250,500`."
        return Section(f"## Learning curve\n\n{text}\n", f"<h2>Learning curve</h2><p class='note'>{esc(text)}</p>")
    from tunewise.evaluate.curve import curve_statement, plot_curve

    results = curve.results or {}
    try:
        png = plot_curve(results)
        statement = results.get("statement") or curve_statement(results)
    except (KeyError, TypeError, ValueError) as exc:
        text = f"Learning curve {curve.id} cannot be drawn ({exc})."
        return Section(f"## Learning curve\n\n{text}\n", f"<h2>Learning curve</h2><p>{esc(text)}</p>")
    fit = results.get("fit") or {}
    header = ["training examples", results.get("metric") or "score", "run"]
    runs = results.get("run_ids") or [""] * len(results["sizes"])
    rows = [[f"{n:,}", _num(s), r] for n, s, r in zip(results["sizes"], results["scores"], runs)]
    fit_line = f"Fit: {fit.get('model')} {fit.get('formula', '')}" + (f", R² {fit['r2']:.3f}" if fit.get("r2") is not None else "")
    if fit.get("note"):
        fit_line += f" ({fit['note']})"
    md = f"## Learning curve\n\n{statement}\n\n![learning curve](report-curve.png)\n\n{_md_table(header, rows)}\n{fit_line}.\n"
    page = (f"<h2>Learning curve</h2><p><strong>{esc(statement)}</strong></p>{_img(png, 'learning curve')}"
            f"{_html_table(header, rows, numeric={0, 1})}<p class='note'>{esc(fit_line)}.</p>")
    return Section(md, page, {"report-curve.png": png})


def _audit(audit) -> Section:
    if audit is None:
        text = "No data audit yet: run `tunewise data audit TRAIN --eval EVAL`."
        return Section(f"## Data audit\n\n{text}\n", f"<h2>Data audit</h2><p class='note'>{esc(text)}</p>")
    s: dict[str, Any] = audit.summary or {}
    tokens, pii, dup = s.get("tokens") or {}, s.get("pii") or {}, s.get("duplicates") or {}
    contamination, labels = s.get("contamination") or {}, s.get("labels") or {}
    readiness = s.get("readiness") or {}
    f = _fact
    facts = [
        ("rows", f"{f(s.get('rows'))} kept, {f(s.get('rows_rejected', 0))} rejected (quarantined)"),
        ("tokens", f"{f(tokens.get('total'))} total, median {f(tokens.get('median'))}, p95 {f(tokens.get('p95'))}, "
                   f"{f(tokens.get('over_limit', 0))} over the {f(tokens.get('context_limit'))}-token limit"),
        ("PII", f"{f(pii.get('rows', 0))} rows, {f(pii.get('matches', 0))} matches" + (f" ({_pairs(pii.get('by_type'))})" if pii.get("by_type") else "")),
        ("duplicates", f"{f(dup.get('exact_clusters', 0))} exact and {f(dup.get('near_clusters', 0))} near clusters, "
                       f"{f(dup.get('removable', 0))} removable rows"),
        ("contamination", f"{f(contamination.get('hits', 0))} hits, {f(contamination.get('eval_rows_affected', 0))} eval rows affected"),
    ]
    if labels.get("is_classification"):
        mislabeled = labels.get("suspected_mislabeled", 0)
        mislabeled = len(mislabeled) if isinstance(mislabeled, list) else mislabeled
        text = f"{f(labels.get('n_classes'))} classes, imbalance ratio {f(labels.get('imbalance_ratio'))}, {f(mislabeled)} suspected mislabels"
        if labels.get("kappa") is not None:
            text += f", kappa {f(labels['kappa'])}"
        facts.append(("labels", text))
    if readiness:
        facts.append(("readiness", f"{readiness.get('level', '')}: {readiness.get('verdict', '')}"))
    costs = s.get("cost_estimates") or []
    if costs:
        facts.append(("training cost", "; ".join(f"{c.get('model')} ${c.get('usd') or 0:,.2f}" for c in costs[:5])))
    header = ["check", "result"]
    rows = [[k, v] for k, v in facts]
    lead = f"Audit {audit.id} ({'passed' if audit.passed else 'blocking problems found'})."
    return Section(f"## Data audit\n\n{lead}\n\n{_md_table(header, rows)}", f"<h2>Data audit</h2><p>{esc(lead)}</p>{_html_table(header, rows)}")


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
    try:
        from tunewise.advise import decision_section
    except ImportError:
        try:
            from tunewise.advise.decide import decision_section
        except ImportError:
            return Section("", "")
    try:
        md, page = decision_section(store)
    except Exception as exc:  # the advice is another stage: its failure must not lose the evaluation report
        text = f"The decision section could not be rendered ({type(exc).__name__}: {exc}); run `tunewise advise`."
        return Section(f"## Decision\n\n{text}\n", f"<h2>Decision</h2><p class='note'>{esc(text)}</p>")
    return Section(md, page)

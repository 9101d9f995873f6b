"""`tunewise distill`: a thin layer over `tunewise.distill` (a teacher labels, agreement filters)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tunewise.console import console

distill_app = typer.Typer(
    help="Distill: a strong teacher labels unlabeled inputs, agreement filters them, a small student trains on the rest.\n\n"
    "Example: `tunewise distill label unlabeled.csv --text-column body --teacher endpoint:https://api.example/v1#big-model --budget-usd 20 -o distilled/`",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


review_app = typer.Typer(
    help="The review queue: the rows the teacher was unsure of, out as CSV and HTML for people, back as decisions.\n\n"
    "Example: `tunewise distill review export distilled/ -o review/`",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
distill_app.add_typer(review_app, name="review")


def register(app: typer.Typer) -> None:
    app.add_typer(distill_app, name="distill", rich_help_panel="Prepare")


@distill_app.command("label")
def label_command(
    data: Path = typer.Argument(..., help="Unlabeled inputs: CSV, JSONL or chat JSONL without assistant turns, or deployment:NAME for a deployment's served requests."),
    teacher: str = typer.Option(..., "--teacher", help="endpoint:URL#MODEL, or a local candidate spec such as \"knn-few-shot:smollm2-135m?k=8\"."),
    teacher_data: Optional[Path] = typer.Option(None, "--teacher-data", help="Labelled training file a local teacher takes its shots (and the label set) from."),
    text_column: Optional[str] = typer.Option(None, "--text-column", help="Column (or JSON key) holding the input text."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Comma-separated label set (default: from --teacher-data or the file's own labels; none: free text)."),
    json_schema: Optional[Path] = typer.Option(None, "--json-schema", help="JSON Schema file: a JSON task, the majority of the schema-valid replies wins."),
    samples: int = typer.Option(3, "--samples", help="Replies asked per row (the first greedy, the others at --temperature)."),
    min_agreement: float = typer.Option(0.67, "--min-agreement", help="Rows whose samples agree at least this much are accepted; the others go to review."),
    temperature: float = typer.Option(0.7, "--temperature", help="Temperature of the samples after the first."),
    budget_usd: Optional[float] = typer.Option(None, "--budget-usd", help="Stop starting rows once this much would be spent."),
    max_requests: Optional[int] = typer.Option(None, "--max-requests", help="Stop starting rows once this many requests would be sent."),
    concurrency: int = typer.Option(4, "--concurrency", help="Rows asked in parallel."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask to confirm the estimated cost."),
    output: Path = typer.Option(Path("distilled"), "-o", "--output", help="Folder for rows.jsonl, accepted.jsonl and summary.json."),
) -> None:
    """Label every input with the teacher; a rerun resumes from the cached calls and pays only for what is missing.

    Example: `tunewise distill label unlabeled.csv --text-column body --teacher endpoint:https://api.example/v1#big-model --samples 3 --min-agreement 0.67 --budget-usd 20 -o distilled/`
    """
    from tunewise.distill.label import label_rows
    from tunewise.progress import ProgressLine

    with ProgressLine("distill label", unit="rows") as bar:
        result = label_rows(data, teacher=teacher, out_dir=output, samples=samples, min_agreement=min_agreement,
                            labels=labels.split(",") if labels else None, text_column=text_column, budget_usd=budget_usd,
                            max_requests=max_requests, concurrency=concurrency, temperature=temperature,
                            teacher_data=teacher_data, schema=json_schema, yes=yes, on_row=lambda _row: bar.advance())
    c = result.counts
    console.print(f"{c['rows']:,} rows: {c['accepted']:,} accepted, {c['queued']:,} queued for review, {c['failed']:,} failed, "
                  f"{c['not_started']:,} not started; {result.requests:,} requests, {result.cached:,} cached, ${result.cost_usd:.4f}",
                  highlight=False)
    unredacted = (result.summary.get("deployment") or {}).get("unredacted")
    if unredacted:
        console.print(f"[yellow]Note:[/] {unredacted:,} of the deployment's requests were logged raw (not PII-redacted): "
                      "check accepted.jsonl for personal data before training or sharing it.", highlight=False)
    if result.stopped:
        console.print(f"[yellow]Stopped:[/] {result.stopped}; rerun the same command with a larger cap to go on.", highlight=False)
    console.print(f"Wrote {output}/rows.jsonl, accepted.jsonl and summary.json"
                  + (f"; accepted.jsonl is dataset {result.dataset_id}" if result.dataset_id else ""), highlight=False)


@distill_app.command("vary")
def vary_command(
    data: Path = typer.Argument(..., help="Labelled chat JSONL (the last assistant turn is the label), such as distilled/accepted.jsonl."),
    teacher: str = typer.Option(..., "--teacher", help="endpoint:URL#MODEL, or a local candidate spec, that labels the new rows."),
    paraphraser: Optional[str] = typer.Option(None, "--paraphraser", help="endpoint:URL#MODEL or zero-shot:MODEL that rewrites the inputs (default: the teacher)."),
    min_per_label: Optional[int] = typer.Option(None, "--min-per-label", help="Rows each label should reach (default: the median count per label)."),
    per_row: int = typer.Option(1, "--per-row", help="New rows kept per source row at most (1: a label at most doubles)."),
    teacher_data: Optional[Path] = typer.Option(None, "--teacher-data", help="Labelled training file a local teacher takes its shots from."),
    samples: int = typer.Option(3, "--samples", help="Replies asked per new row when labelling it."),
    min_agreement: float = typer.Option(0.67, "--min-agreement", help="New rows whose samples agree at least this much are accepted; the others go to review."),
    temperature: float = typer.Option(0.9, "--temperature", help="Temperature of the paraphrases."),
    budget_usd: Optional[float] = typer.Option(None, "--budget-usd", help="Stop once this much would be spent, paraphrasing and labelling together."),
    max_requests: Optional[int] = typer.Option(None, "--max-requests", help="Stop once this many requests would be sent, paraphrasing and labelling together."),
    concurrency: int = typer.Option(4, "--concurrency", help="Requests in parallel."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask to confirm the estimated cost."),
    output: Path = typer.Option(Path("varied"), "-o", "--output", help="Folder for variations.jsonl, variations.dropped.jsonl, rows.jsonl, accepted.jsonl and summary.json."),
) -> None:
    """Paraphrase the inputs of under-represented labels, drop near duplicates, label the new rows with the teacher.

    Example: `tunewise distill vary distilled/accepted.jsonl --teacher endpoint:https://api.example/v1#big-model --min-per-label 50 --budget-usd 5 -o varied/`
    """
    from tunewise.distill.vary import vary_rows
    from tunewise.progress import ProgressLine

    with ProgressLine("distill vary", unit="rows") as bar:
        result = vary_rows(data, teacher=teacher, out_dir=output, paraphraser=paraphraser, min_per_label=min_per_label,
                           per_row=per_row, samples=samples, min_agreement=min_agreement, temperature=temperature,
                           budget_usd=budget_usd, max_requests=max_requests, concurrency=concurrency,
                           teacher_data=teacher_data, yes=yes, on_row=lambda _row: bar.advance())
    c = result.counts
    short = {label: info for label, info in result.labels.items() if info["new"] or info["short"]}
    if not short:
        console.print(f"No label is under {result.target:,} rows: nothing to paraphrase.", highlight=False, soft_wrap=True)
    for label, info in short.items():
        console.print(f"{label}: {info['rows']:,} rows, {info['new']:,} new"
                      + (f", {info['short']:,} short of {info['target']:,}" if info["short"] else ""), highlight=False, soft_wrap=True)
    console.print(f"{c['asked']:,} paraphrases: {c['kept']:,} kept, {c['near_duplicates']:,} near duplicates, "
                  f"{c['exact_duplicates']:,} exact duplicates, {c['empty']:,} empty, {c['failed']:,} failed; "
                  f"{result.requests:,} requests, {result.cached:,} cached, ${result.cost_usd:.4f}", highlight=False, soft_wrap=True)
    labeled = result.labeled
    if labeled is not None:
        n = labeled.counts
        console.print(f"Labelled {n['rows']:,} new rows: {n['accepted']:,} accepted, {n['queued']:,} queued for review, "
                      f"{n['failed']:,} failed, {n['not_started']:,} not started; {labeled.requests:,} requests, "
                      f"{labeled.cached:,} cached, ${labeled.cost_usd:.4f}", highlight=False, soft_wrap=True)
    if result.stopped:
        console.print(f"[yellow]Stopped:[/] {result.stopped}; rerun the same command with a larger cap to go on.", highlight=False, soft_wrap=True)
    console.print(f"Wrote {result.variations} and {result.dropped}"
                  + (f"; {output}/accepted.jsonl is dataset {labeled.dataset_id}" if labeled and labeled.dataset_id else ""),
                  highlight=False, soft_wrap=True)


@review_app.command("export")
def review_export_command(
    directory: Path = typer.Argument(..., help="Folder written by `tunewise distill label` (rows.jsonl, summary.json)."),
    output: Path = typer.Option(Path("review"), "-o", "--output", help="Folder for review.csv and review.html."),
    all_rows: bool = typer.Option(False, "--all", help="Export every row, not only the queued ones (accepted rows can then be rejected or corrected)."),
) -> None:
    """Write review.csv (fill decision: accept / reject / correct, and corrected_label) and review.html (the samples side by side).

    Example: `tunewise distill review export distilled/ -o review/`
    """
    from tunewise.distill.review import export_queue

    files = export_queue(directory, output, all_rows=all_rows)
    console.print(f"{files.rows:,} rows to review: wrote {files.csv} and {files.html}", highlight=False, soft_wrap=True)
    console.print(f"Then: tunewise distill review import {directory} {files.csv}", highlight=False, soft_wrap=True)


@review_app.command("import")
def review_import_command(
    directory: Path = typer.Argument(..., help="Folder written by `tunewise distill label`."),
    csv_path: Path = typer.Argument(..., help="The filled review.csv."),
) -> None:
    """Apply the decisions of a filled review.csv, rewrite accepted.jsonl and register it; a bad line changes nothing.

    Example: `tunewise distill review import distilled/ review/review.csv`
    """
    from tunewise.distill.review import import_decisions

    applied = import_decisions(directory, csv_path)
    d, c = applied.decisions, applied.counts
    console.print(f"{sum(d.values()):,} decisions applied ({d['accept']:,} accepted, {d['correct']:,} corrected, "
                  f"{d['reject']:,} rejected){f', {applied.unchanged:,} already applied' if applied.unchanged else ''}; "
                  f"now {c['accepted']:,} accepted, {c['rejected']:,} rejected, {c['queued']:,} still queued", highlight=False, soft_wrap=True)
    for note in applied.notes:
        console.print(note, highlight=False, soft_wrap=True)
    if applied.dataset_id and applied.dataset_id != applied.parent_id:
        console.print(f"Wrote {directory}/accepted.jsonl: dataset {applied.dataset_id} (after {applied.parent_id or 'no earlier accepted set'})",
                      highlight=False, soft_wrap=True)

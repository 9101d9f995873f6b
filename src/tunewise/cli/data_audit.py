"""`tunewise data audit`: every data check before training, as a Rich summary, JSON or an HTML page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from tunewise.console import console, err_console


def register(data_app: typer.Typer) -> None:
    data_app.command("audit")(audit_command)


def audit_command(
    file: Path = typer.Argument(..., help="Training data (chat JSONL or any format `tunewise data import` reads)."),
    eval_path: Optional[Path] = typer.Option(None, "--eval", help="Held-out eval set: checked for format, PII and contamination."),
    model: str = typer.Option("smollm2-135m", "--model", help="Target model whose tokenizer counts the tokens (name, path or OpenAI model)."),
    annotations: Optional[Path] = typer.Option(None, "--annotations", help="CSV with several annotators' labels (columns annotator_*): agreement and kappa."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write a self-contained HTML page with charts."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole result as JSON on stdout (no table)."),
) -> None:
    """Audit fine-tuning data: format, tokens and cost, PII, duplicates, contamination, labels, readiness.

    Exits 1 when a blocking problem is found (rows breaking a format rule, eval rows seen in training), so it can gate a pipeline.

    Example: `tunewise data audit train.jsonl --eval eval.jsonl --annotations annotations.csv --html audit.html`

    Example: `tunewise data audit train.jsonl --model gpt-4o-mini --json > audit.json`
    """
    from tunewise.config import load_config
    from tunewise.data.audit import audit

    result = audit(file, eval_path=eval_path, model=model, annotations_path=annotations, config=load_config().data,
                   progress=not as_json)
    if html is not None:
        from tunewise.data.audit_html import write_audit_html

        write_audit_html(result, html)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, default=str))
    else:
        show_summary(result)
        if html is not None:
            console.print(f"HTML: {html}")
    if result.blocking:
        raise typer.Exit(1)


def show_summary(result) -> None:
    """The audit as a Rich table: one line per check, blocking problems last."""
    s = result.record
    t, pii, dup, con, lab = s.tokens, s.pii, s.duplicates, s.contamination, s.labels
    table = Table(title=f"Audit of {result.path.name}" + (f" (audit {result.audit_id})" if result.audit_id else ""), show_header=False)
    table.add_column("check", style="bold")
    table.add_column("result")
    table.add_row("rows", f"{s.rows:,} readable, {s.rows_rejected:,} rejected"
                  + (f"; eval {s.eval_rows:,} readable, {s.eval_rows_rejected:,} rejected" if s.eval_rows is not None else ""))
    estimate = " (estimate)" if t.estimate else ""
    table.add_row("tokens", f"{t.total:,}{estimate} with {t.tokenizer}; per example min {t.min}, median {t.median:g}, "
                  f"p95 {t.p95:g}, max {t.max}; {t.over_limit:,} over the {t.context_limit or '?'}-token limit")
    if s.cost_estimates:
        cheapest = ", ".join(f"{c.model} ${c.usd:,.2f}{'*' if c.estimate else ''}" for c in s.cost_estimates[:4])
        table.add_row("training cost", f"{t.epochs} epochs x {t.billable_per_epoch:,} tokens: {cheapest} ... "
                      f"({len(s.cost_estimates)} catalog rows; * estimate)")
    kinds = ", ".join(f"{k} {v}" for k, v in pii.by_type.items()) or "none"
    table.add_row("PII", f"{pii.rows:,} rows ({kinds})" + (f"; eval {pii.eval_rows:,} rows" if pii.eval_rows is not None else ""))
    table.add_row("duplicates", f"{dup.exact_clusters:,} exact and {dup.near_clusters:,} near clusters "
                  f"(Jaccard >= {dup.threshold:g}); {dup.removable:,} rows removable")
    if s.eval_rows is not None:
        table.add_row("contamination", f"{con.eval_rows_affected:,} eval rows duplicate training rows ({con.exact} exact, {con.near} near)")
    if lab.is_classification:
        table.add_row("labels", f"{lab.n_classes} classes, imbalance {lab.imbalance_ratio:g}x, {lab.conflicts} conflicts, "
                      f"{lab.suspected_mislabeled} suspected wrong labels"
                      + (f"; small classes: {', '.join(lab.small_classes[:5])}" if lab.small_classes else ""))
    else:
        table.add_row("labels", f"not a closed set of labels ({lab.task_reason or 'free text'}): label checks skipped")
    if lab.agreement is not None:
        bar = "meets" if lab.agreement_meets_bar else "is below"
        table.add_row("agreement", f"{lab.agreement:.1%} mean pairwise ({bar} the {lab.agreement_bar:.0%} bar), {lab.kappa_kind} kappa {lab.kappa:.3f}")
    table.add_row("readiness", s.readiness.verdict)
    console.print(table)
    for problem in result.format_problems[:5]:
        err_console.print(f"  {problem['file']} line {problem['line']}: {problem['reason'][:200]}", markup=False, highlight=False)
    for line in result.blocking:
        err_console.print(f"[red]blocking:[/] {line}", highlight=False)
    if not result.blocking:
        console.print("[green]No blocking problems.[/]")

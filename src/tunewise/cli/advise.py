"""`tunewise prices`, `tunewise roi` and `tunewise advise`: the Decide stage."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from tunewise.console import console


def register(app: typer.Typer) -> None:
    app.command("prices", rich_help_panel="Decide")(prices)
    app.command("roi", rich_help_panel="Decide")(roi)
    app.command("advise", rich_help_panel="Decide")(advise)


def _money(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"-${-value:,.{digits}f}" if value < 0 else f"${value:,.{digits}f}"


def _pricing_file(file: Path | None) -> str | None:
    if file is not None:
        return str(file)
    from tunewise.config import load_config

    return load_config().advise.pricing_file


def prices(
    file: Path | None = typer.Option(None, "--file", "-f", help="A YAML file of rows that override or add to the catalog."),
    tokens: float | None = typer.Option(None, "--tokens", help="Also estimate one training run of this many billable tokens."),
) -> None:
    """Show the pricing catalog: training and inference prices per provider, with the as-of date and source.

    Example: `tunewise prices --file my-prices.yaml --tokens 16000000`
    """
    from tunewise.pricing import load_catalog

    catalog = load_catalog(_pricing_file(file))
    estimates = {e.row.name: e for e in catalog.training_estimates(tokens)} if tokens is not None else {}
    table = Table(title=f"Fine-tuning prices as of {catalog.as_of} (catalog v{catalog.version})")
    for column in ("name", "kind", "training $/M", "run min / range", "markup", "base in/out $/M", "FT in/out $/M", "GPU $/h", "source"):
        table.add_column(column)
    if tokens is not None:
        table.add_column(f"run of {tokens / 1e6:,.1f}M tok")
    for row in catalog.rows:
        run = _money(row.min_run_usd, 0) if row.run_usd_low is None else f"${row.run_usd_low:,.0f}-{row.run_usd_high:,.0f}"
        cells = [
            row.name + (" [dim](example)[/]" if row.example else ""),
            row.kind,
            _money(row.training_usd_per_m, 0),
            run,
            "-" if row.markup is None else f"{row.markup:g}x",
            f"{_money(row.input_price(fine_tuned=False), 3)} / {_money(row.output_price(fine_tuned=False), 2)}",
            f"{_money(row.input_price(fine_tuned=True), 3)} / {_money(row.output_price(fine_tuned=True), 2)}",
            _money(row.gpu_usd_per_hour),
            f"{row.source}" + (f" {row.as_of}" if row.as_of else " (undated)"),
        ]
        if tokens is not None:
            estimate = estimates.get(row.name)
            cells.append(_money(estimate.usd) if estimate else "-")
        table.add_row(*cells)
    console.print(table)
    for entry in catalog.availability:
        console.print(f"[yellow]availability[/] {entry.provider}: {entry.status} from {entry.from_}: {entry.what} ({entry.source})")
    console.print("[dim]Confirm live pricing before committing to a run; rows marked (example) are editable examples, not quotes.[/]")


def roi(
    file: Path | None = typer.Option(None, "--file", "-f", help="YAML file of ROI inputs (fields of tunewise.advise.RoiInputs); flags override it."),
    requests: float | None = typer.Option(None, "--requests", help="Requests per month."),
    input_tokens: float | None = typer.Option(None, "--input-tokens", help="Input tokens per request."),
    output_tokens: float | None = typer.Option(None, "--output-tokens", help="Output tokens per request."),
    base_model: str | None = typer.Option(None, "--base-model", help="Catalog row of the prompted baseline (e.g. gpt-5-mini)."),
    option: list[str] = typer.Option([], "--option", "-o", help="A fine-tune option: a catalog row (repeatable)."),
    training_tokens: float | None = typer.Option(None, "--training-tokens", help="Billable tokens of one run (all epochs) for --option rows."),
    baseline_quality: float | None = typer.Option(None, "--baseline-quality", help="Baseline fraction correct (0-1)."),
    finetuned_quality: float | None = typer.Option(None, "--finetuned-quality", help="Fine-tuned fraction correct (0-1)."),
    from_eval: str | None = typer.Option(None, "--from-eval", help="Take both qualities from a stored evaluation: ID or 'latest'."),
    value_per_correct: float | None = typer.Option(None, "--value-per-correct", help="USD value of one more correct answer."),
    cost_per_error: float | None = typer.Option(None, "--cost-per-error", help="USD cost of one wrong answer."),
    labeling_hours: float | None = typer.Option(None, "--labeling-hours", help="Hours of data preparation and labeling."),
    labeler_rate: float | None = typer.Option(None, "--labeler-rate", help="Labeler USD/hour (default 40)."),
    eval_set_usd: float | None = typer.Option(None, "--eval-set-usd", help="Cost of building the eval set."),
    iterations: int | None = typer.Option(None, "--iterations", help="Training runs across iteration (default 4)."),
    pricing_file: Path | None = typer.Option(None, "--pricing-file", help="Pricing rows that override the catalog."),
) -> None:
    """Price fine-tune options against the prompt baseline: monthly cost, all-in budget, year-1 net, break-even, sensitivity.

    Example: `tunewise roi --requests 5000000 --input-tokens 150 --output-tokens 5 --base-model gpt-5-mini --option gpt-5-mini --training-tokens 16000000 --baseline-quality 0.91 --finetuned-quality 0.95 --cost-per-error 0.05 --labeling-hours 200`
    """
    from tunewise.advise.roi import build_inputs, roi as compute
    from tunewise.pricing import load_catalog

    catalog = load_catalog(_pricing_file(pricing_file))
    store = None
    if from_eval is not None:
        from tunewise.store import Store

        store = Store.open()
    inputs = build_inputs(
        file, options=option, training_tokens=training_tokens, from_eval=from_eval, store=store, catalog=catalog,
        requests_per_month=requests, input_tokens=input_tokens, output_tokens=output_tokens, base_model=base_model,
        baseline_quality=baseline_quality, finetuned_quality=finetuned_quality, value_per_correct_usd=value_per_correct,
        cost_per_error_usd=cost_per_error, labeling_hours=labeling_hours, labeler_rate_usd=labeler_rate,
        eval_set_usd=eval_set_usd, iteration_runs=iterations,
    )
    print_roi(compute(inputs, catalog))


def print_roi(result) -> None:
    console.print(f"Baseline: [bold]{_money(result.baseline_monthly_usd)}[/]/month  [dim]{result.baseline_basis}[/]")
    table = Table(title=f"Fine-tune options, {result.months}-month horizon (prices as of {result.catalog_as_of})")
    for column in ("option", "$/month", "training/run", "all-in budget", "year-1 cost", "year-1 benefit", "net", "break-even"):
        table.add_column(column, justify="left" if column == "option" else "right")
    for o in result.options:
        table.add_row(o.name, _money(o.monthly_usd), _money(o.training_usd), _money(o.budget_usd, 0),
                      _money(o.incremental_year1_usd, 0), _money(o.benefit_year1_usd, 0), _money(o.net_year1_usd, 0),
                      f"month {o.break_even_month}" if o.break_even_month else "never/unknown")
    console.print(table)
    for o in result.options:
        console.print(f"[dim]{o.name}: {o.monthly_basis}; training {o.training_basis}; budget {o.budget_basis}[/]")
    if result.sensitivity:
        sens = Table(title="Sensitivity: each input alone over a plausible range")
        for column in ("input", "now", "range", "net at low", "net at high", "flips?", "break-even value"):
            sens.add_column(column)
        for s in result.sensitivity:
            sens.add_row(s.input, f"{s.now:,.4g}", f"{s.low:,.4g} - {s.high:,.4g}", _money(s.net_at_low, 0),
                         _money(s.net_at_high, 0), "[bold red]yes[/]" if s.flips else "no",
                         "-" if s.break_even_value is None else f"{s.break_even_value:,.4g}")
        console.print(sens)
    console.print(f"[bold]{result.decision}[/]")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    for o in result.options:
        for warning in o.warnings:
            console.print(f"[yellow]warning:[/] {warning}")


def advise(
    answers: Path | None = typer.Option(None, "--answers", "-a", help="YAML of answers (non-interactive); unanswered items stay 'unknown'."),
    dataset: str | None = typer.Option(None, "--dataset", help="Dataset id whose latest audit to use (default: the latest audit)."),
    evaluation: str | None = typer.Option(None, "--evaluation", help="Compare evaluation id (default: the latest)."),
    pricing_file: Path | None = typer.Option(None, "--pricing-file", help="Pricing rows that override the catalog."),
) -> None:
    """Should you fine-tune? Walks the ROI guide's checklist and signals from the store's facts, asks for the rest, prices it, stores the Decision.

    Example: `tunewise advise --answers answers.yaml`
    """
    import sys

    from tunewise.advise.decide import advise as decide
    from tunewise.config import load_config, override
    from tunewise.store import Store

    settings = load_config()
    config = override(settings.advise, pricing_file=str(pricing_file) if pricing_file else None)
    ask = _ask if answers is None and sys.stdin.isatty() else None
    advice = decide(Store.open(), answers, dataset_id=dataset, evaluation_id=evaluation, config=config,
                    thresholds=settings.data.thresholds, ask=ask)
    from rich.markdown import Markdown

    console.print(Markdown(advice.to_markdown()))
    console.print(f"[dim]Stored as decision {advice.decision_id}.[/]")


def _ask(key: str, question: str, kind: type):
    """Interactive answer; empty means unknown."""
    text = typer.prompt(f"{question} [{key}, empty = unknown]", default="", show_default=False).strip()
    if not text:
        return None
    if kind is bool:
        return text.lower() in ("y", "yes", "true", "1")
    return text

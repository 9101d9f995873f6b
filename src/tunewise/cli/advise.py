"""`tunewise prices`, `tunewise roi` and `tunewise advise`: the Decide stage."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from tunewise.console import console


def register(app: typer.Typer) -> None:
    app.command("prices", rich_help_panel="Decide")(prices)


def _money(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"${value:,.{digits}f}"


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

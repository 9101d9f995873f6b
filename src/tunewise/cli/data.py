"""`tunewise data import | clean | split` (and `audit`, registered by `tunewise.cli.data_audit`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from tunewise.config import override
from tunewise.console import console, err_console

FORMAT_HELP = "Input format: auto, chat (OpenAI JSONL), csv, tsv, jsonl-pairs, alpaca or sharegpt."


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(
        help="Prepare fine-tuning data: import any format as OpenAI chat JSONL, audit it, clean it, split it.\n\n"
        "Examples:\n\n"
        "`tunewise data import tickets.csv --text-column body --label-column queue`\n\n"
        "`tunewise data audit tickets.chat.jsonl --eval eval.jsonl`\n\n"
        "`tunewise data clean tickets.chat.jsonl --dedup --redact-pii -o clean.jsonl`\n\n"
        "`tunewise data split clean.jsonl --eval-size 500 --stratify`",
        no_args_is_help=True,
        rich_markup_mode="markdown",
    )
    data_app.command("import")(import_command)
    data_app.command("clean")(clean_command)
    data_app.command("split")(split_command)
    from tunewise.cli import data_audit

    data_audit.register(data_app)
    app.add_typer(data_app, name="data", rich_help_panel="Prepare")


def _config():
    from tunewise.config import load_config

    return load_config().data


def import_command(
    source: Path = typer.Argument(..., help="Data file: OpenAI chat JSONL, CSV/TSV, JSONL of (text, label), Alpaca or ShareGPT JSON."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Where to write chat JSONL (default: <stem>.chat.jsonl beside SOURCE)."),
    format: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    text_column: Optional[str] = typer.Option(None, "--text-column", help="Column (or JSON key) holding the input text."),
    label_column: Optional[str] = typer.Option(None, "--label-column", help="Column (or JSON key) holding the label; it becomes the assistant reply."),
    system_prompt: Optional[str] = typer.Option(None, "--system-prompt", help="System message added to examples that have none."),
    annotator_columns: Optional[str] = typer.Option(None, "--annotator-columns", help="Comma-separated columns of individual annotators' labels (default: columns named annotator_*, rater_*, label_*)."),
    role: str = typer.Option("train", "--role", help="Register the dataset as train or eval data."),
) -> None:
    """Import a data file as normalized OpenAI chat JSONL; rejected rows go to a quarantine file.

    Example: `tunewise data import tickets.csv --text-column body --label-column queue --system-prompt "Route the ticket."`
    """
    from tunewise.data.clean import import_dataset

    config = _config()
    with _progress(f"Reading {source.name}") as on_row:
        result = import_dataset(
            source, output, format=format, text_column=text_column, label_column=label_column,
            system_prompt=system_prompt, annotator_columns=_columns(annotator_columns), role=_role(role),
            max_line_bytes=config.max_line_bytes, on_row=on_row,
        )
    _notes(result.notes)
    console.print(
        f"Imported [bold]{result.kept:,}[/] of {result.rows_in:,} rows ({result.format}) -> {result.output}"
        + (f"  dataset [bold]{result.dataset_id}[/]" if result.dataset_id else "")
    )
    _problems(result.problems, result.rejected, result.quarantine, config.problems_shown)


def clean_command(
    file: Path = typer.Argument(..., help="Data file to clean (any supported format)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Where to write the cleaned chat JSONL (default: <stem>.clean.jsonl)."),
    dedup: bool = typer.Option(False, "--dedup", help="Keep one row of each exact or near duplicate cluster."),
    redact_pii: bool = typer.Option(False, "--redact-pii", help="Replace emails, phones, card numbers, ... with typed placeholders such as [EMAIL]."),
    drop_contaminated: bool = typer.Option(False, "--drop-contaminated", help="Remove training rows that duplicate a row of --eval."),
    eval_path: Optional[Path] = typer.Option(None, "--eval", help="Eval set to check contamination against."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Near-duplicate Jaccard threshold (default: data.near_duplicate_threshold, 0.4)."),
    format: str = typer.Option("auto", "--format", help=FORMAT_HELP),
) -> None:
    """Apply fixes: dedup, PII redaction, decontamination; removed rows go to a quarantine file with the reason.

    Example: `tunewise data clean train.jsonl --dedup --redact-pii --drop-contaminated --eval eval.jsonl -o train.clean.jsonl`
    """
    from tunewise.data.clean import clean

    config = override(_config(), near_duplicate_threshold=threshold)
    if not (dedup or redact_pii or drop_contaminated):
        err_console.print("No fix asked (--dedup, --redact-pii, --drop-contaminated): only normalizing and quarantining bad rows.")
    result = clean(
        file, output, dedup=dedup, redact_pii=redact_pii, drop_contaminated=drop_contaminated, eval_path=eval_path,
        threshold=config.near_duplicate_threshold, format=format, max_line_bytes=config.max_line_bytes,
    )
    _notes(result.notes)
    table = Table(show_header=False, box=None)
    table.add_row("rows read", f"{result.rows_in:,}")
    table.add_row("kept", f"[bold]{result.kept:,}[/] -> {result.output}")
    table.add_row("unreadable (format)", f"{result.rejected:,}")
    if dedup:
        table.add_row("duplicates removed", f"{result.duplicates_removed:,}")
    if drop_contaminated:
        table.add_row("contaminated removed", f"{result.contaminated_removed:,}")
    if redact_pii:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(result.redactions.items())) or "none"
        table.add_row("PII redacted", f"{result.redacted_rows:,} rows ({kinds})")
    if result.dataset_id:
        table.add_row("dataset", result.dataset_id)
    console.print(table)
    _problems(result.problems, result.quarantined, result.quarantine, config.problems_shown)


def split_command(
    file: Path = typer.Argument(..., help="Chat JSONL (or any supported format) to split."),
    eval_size: Optional[float] = typer.Option(None, "--eval-size", help="Rows to hold out (a fraction when below 1; default: data.eval_size)."),
    stratify: bool = typer.Option(True, "--stratify/--no-stratify", help="Keep each label's share the same in train and eval (when the replies are a closed set of labels)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default: data.seed)."),
    out_dir: Optional[Path] = typer.Option(None, "-o", "--output-dir", help="Folder for <stem>.train.jsonl and <stem>.eval.jsonl (default: beside FILE)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Near-duplicate Jaccard threshold for keeping clusters together."),
) -> None:
    """Hold out an eval set: stratified by label, duplicate clusters never straddle train and eval, seeded.

    Example: `tunewise data split tickets.chat.jsonl --eval-size 500 --stratify --seed 1`
    """
    from tunewise.data.split import split

    config = override(_config(), seed=seed, near_duplicate_threshold=threshold)
    # Not an override of data.eval_size: the flag also takes a fraction, which the row-count setting does not.
    size = config.eval_size if eval_size is None else (int(eval_size) if eval_size >= 1 else eval_size)
    result = split(
        file, eval_size=size, stratify=stratify, seed=config.seed, out_dir=out_dir,
        threshold=config.near_duplicate_threshold, max_line_bytes=config.max_line_bytes,
    )
    console.print(f"train: [bold]{result.train_rows:,}[/] rows -> {result.train_path}" + (f"  dataset {result.train_id}" if result.train_id else ""))
    console.print(f"eval:  [bold]{result.eval_rows:,}[/] rows -> {result.eval_path}" + (f"  dataset {result.eval_id}" if result.eval_id else ""))
    how = "stratified by label" if result.stratified else "not stratified (no closed set of labels)" if stratify else "not stratified"
    console.print(f"{how}; {result.clusters_kept_together:,} duplicate clusters kept on one side; seed {result.seed}")
    if result.label_counts:
        table = Table("label", "train", "eval", "eval share")
        for label, (train, held) in sorted(result.label_counts.items(), key=lambda kv: -sum(kv[1])):
            table.add_row(label[:40], f"{train:,}", f"{held:,}", f"{held / max(1, result.eval_rows):.1%}")
        console.print(table)
    if result.rejected:
        err_console.print(f"{result.rejected:,} unreadable rows quarantined in {result.quarantine}")


# -- shared output -----------------------------------------------------------------------------------


def _columns(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def _role(role: str) -> str:
    from tunewise.errors import ConfigError

    if role not in ("train", "eval"):
        raise ConfigError(f"--role must be train or eval, got {role!r}")
    return role


def _notes(notes: list[str]) -> None:
    for note in notes:
        err_console.print(f"[dim]note:[/] {note}", highlight=False)


def _problems(problems, count: int, quarantine: Path | None, shown: int) -> None:
    if not count:
        return
    err_console.print(f"[yellow]{count:,} rows quarantined[/] in {quarantine} (line and reason for each)", highlight=False)
    for problem in problems[:shown]:
        err_console.print(f"  line {problem.line}: {problem.reason}", highlight=False, markup=False, soft_wrap=True)
    if count > min(len(problems), shown):
        err_console.print(f"  ... see {quarantine} for the rest", highlight=False)


class _progress:
    """A rows counter on stderr, fed every 10,000 rows (plain lines outside a terminal; `tunewise.progress`)."""

    def __init__(self, description: str):
        from tunewise.progress import ProgressLine

        self._line = ProgressLine(description, unit="rows", transient=True)

    def __enter__(self):
        return lambda rows: self._line.update(rows)

    def __exit__(self, *exc_info):
        self._line.close()

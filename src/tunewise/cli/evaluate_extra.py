"""`tunewise eval curve | export-review | import-review` and the top-level `tunewise report`.

`tunewise.cli.evaluate` calls `register(eval_app, app)` so that these commands join the `eval` group.
Each command parses its flags, calls one library function and prints the result.
"""

from __future__ import annotations

from pathlib import Path

from typing import Optional

import typer

from tunewise.console import console
from tunewise.errors import EvaluationError


def register(eval_app: typer.Typer, app: typer.Typer) -> None:
    eval_app.command("curve")(curve_command)
    eval_app.command("export-review")(export_review_command)
    eval_app.command("import-review")(import_review_command)
    app.command("report", rich_help_panel="Decide")(report_command)


def _sizes(text: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise EvaluationError(f"--sizes {text!r}: use comma-separated whole numbers such as 50,100,250,500") from None


def curve_command(
    data: Path = typer.Option(..., "--data", help="Training data (chat JSONL or a registered dataset id)."),
    eval_path: Path = typer.Option(..., "--eval", help="Held-out eval set, the same for every size."),
    sizes: str = typer.Option("50,100,250,500", "--sizes", help="Training-set sizes, comma-separated (at least two; four or more for a saturating fit)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Evaluate only the first N eval rows (a quick look)."),
    allow_contamination: bool = typer.Option(False, "--allow-contamination", help="Evaluate even when eval rows also appear in the training data."),
    epochs: Optional[float] = typer.Option(None, "--epochs", min=0.01, help="Epochs per point (empty: the training recipe picks them from each point's size)."),
) -> None:
    """Train a LoRA at each training-set size, evaluate each, fit a saturating curve and project the gain from doubling the data.

    Example: `tunewise eval curve --data train.jsonl --eval eval.jsonl --sizes 50,100,250,500`
    """
    from tunewise.config import load_config, override
    from tunewise.evaluate.curve import learning_curve

    config = load_config()
    # The workspace's train settings, nothing held out (the curve scores each point on --eval itself).
    base = override(config.train, dataset=str(data), holdout=0, epochs=epochs)
    results = learning_curve(
        data, eval_path, _sizes(sizes), base_config=base, eval_config=config.eval, limit=limit, allow_contamination=allow_contamination
    )
    for size, score in zip(results.sizes, results.scores):
        console.print(f"{size:>7,} examples  {results.metric} {score:.3f}")
    console.print(f"[bold]{results.statement}[/]", highlight=False)
    console.print(f"curve {results.evaluation_id}: plot {results.plot_path}", highlight=False)


def export_review_command(
    evaluation: str = typer.Argument("latest", help="Evaluation id (default: the latest comparison)."),
    out: Path = typer.Option(Path("review"), "--out", "-o", help="Folder for the CSV and the HTML page."),
    candidate: list[str] = typer.Option([], "--candidate", "-c", help="Only these candidates (name or spec; repeatable)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N rows."),
) -> None:
    """Write an evaluation's outputs side by side, as a CSV with blank rating columns and an HTML page, for people to rate.

    Example: `tunewise eval export-review -o review/ --limit 50`
    """
    from tunewise.evaluate.review import export_review

    files = export_review(evaluation, out, candidates=candidate or None, limit=limit)
    console.print(f"review sheet {files.csv}\nside-by-side page {files.html}", highlight=False)
    console.print("Fill the 'rating: …' columns with 1-5 or win / lose / tie, then run `tunewise eval import-review FILE`.", highlight=False)


def import_review_command(
    first: str = typer.Argument(..., metavar="EVAL_ID_OR_FILE", help="The filled CSV (rated against the latest comparison), or an evaluation id followed by the CSV."),
    second: str | None = typer.Argument(None, metavar="FILE", help="The filled CSV when an evaluation id comes first."),
) -> None:
    """Fold people's ratings (1-5 or win / lose / tie) from a review CSV into the evaluation: mean per candidate with an interval at the evaluation's confidence.

    Example: `tunewise eval import-review eval-3f2a9c1b7d review/review-eval-3f2a9c1b7d.csv`
    """
    from rich.table import Table

    from tunewise.evaluate.review import import_review

    evaluation, file = ("latest", first) if second is None else (first, second)
    review = import_review(evaluation, file)
    table = Table(title=f"Human review: {review.rows_rated} rows rated")
    for column in ("candidate", "scale", "mean", f"{review.confidence * 100:g}% CI", "rated"):
        table.add_column(column)
    for name, s in review.candidates.items():
        table.add_row(name, s.scale, f"{s.mean:.2f}", f"{s.low:.2f}–{s.high:.2f}", str(s.n))
    console.print(table)


def report_command(
    out: Path = typer.Option(Path("report"), "--out", "-o", help="Folder for report.html, report.md and the plots."),
    evaluation: str = typer.Option("latest", "--evaluation", "-e", help="Evaluation id (default: the latest comparison)."),
    deployment: list[str] = typer.Option([], "--deployment", help="Repeatable: the deployments to report on (default: every deployment in the store)."),
) -> None:
    """Write one self-contained HTML report (plots embedded) and a Markdown summary: candidates, intervals, significance, errors, cost, learning curve, audit, decision and deployments (traffic, quality per variant, alerts, decision trail).

    Example: `tunewise report -o report/`
    """
    from tunewise.evaluate.report import write_report

    html_path, md_path = write_report(out, evaluation_ref=evaluation, deployments=deployment or None)
    console.print(f"report {html_path}\nsummary {md_path}", highlight=False)

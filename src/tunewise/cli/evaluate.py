"""`tunewise eval`: score candidates on a held-out set (and, from `evaluate_extra`, curve and human review).

`eval` is a group that also runs on its own: `tunewise eval --data ...` evaluates, `tunewise eval curve`
and friends are subcommands added by `tunewise.cli.evaluate_extra`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

eval_app = typer.Typer(
    help="Prove or refute a fine-tune against prompt baselines on your own held-out set.\n\n"
    "Example: `tunewise eval --data eval.jsonl --train train.jsonl --candidate few-shot:smollm2-135m?k=8 "
    "--candidate adapter:run-1a2b --candidate classic:tfidf`",
    invoke_without_command=True,
    rich_markup_mode="markdown",
)


def register(app: typer.Typer) -> None:
    try:
        from tunewise.cli import evaluate_extra
    except ImportError:
        evaluate_extra = None
    if evaluate_extra is not None:
        evaluate_extra.register(eval_app, app)
    app.add_typer(eval_app, name="eval", rich_help_panel="Evaluate")


@eval_app.callback()
def eval_command(
    ctx: typer.Context,
    data: Optional[Path] = typer.Option(None, "--data", help="Held-out eval set (chat JSONL; the final assistant turn is the reference)."),
    train: Optional[Path] = typer.Option(None, "--train", help="Training set: few-shot examples, retrieval, classic:tfidf and the contamination check."),
    candidate: list[str] = typer.Option(
        [], "--candidate", "-c",
        help="Repeatable: zero-shot:MODEL, few-shot:MODEL?k=8, knn-few-shot:MODEL?k=8, adapter:RUN, endpoint:URL#MODEL, classic:tfidf. "
        "A local model of a classification task also takes ?constrained=1 (only labels can be spelled), e.g. adapter:RUN?constrained=1; "
        "without it eval.decoding decides.",
    ),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Candidate every other is compared with (default: the best-scoring prompt candidate; few-shot on a tie)."),
    task: str = typer.Option("auto", "--task", help="Task type: auto, classification, json or text."),
    schema: Optional[Path] = typer.Option(None, "--schema", help="JSON Schema file that replies must satisfy (structured-output tasks)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate only the first N eval rows (a quick look; the results say so)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="Prompts prefilled together by local models (eval.batch_size); decoding takes as many rows as fit a 1 GiB KV cache."),
    judge: Optional[str] = typer.Option(None, "--judge", help="LLM judge for free-text tasks as URL#MODEL (OpenAI-compatible)."),
    allow_contamination: bool = typer.Option(False, "--allow-contamination", help="Evaluate even when eval rows duplicate training rows."),
    reuse: Optional[str] = typer.Option(
        None, "--reuse", help="An earlier evaluation (id or `latest`): its candidates keep the replies, time and cost measured there "
        "where they would reply the same (same eval rows, training file and eval settings); the others run.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of a table."),
) -> None:
    """Score every candidate on the same eval set: metric with interval (eval.confidence), difference vs the baseline with p-value, latency (or amortised time per request) and $ per 1,000 requests.

    Example: `tunewise eval --data eval.jsonl --train train.jsonl -c zero-shot:smollm2-135m -c few-shot:smollm2-135m?k=8 -c knn-few-shot:smollm2-135m?k=8 -c classic:tfidf -c adapter:run-1a2b`
    """
    if ctx.invoked_subcommand is not None:
        return
    from tunewise.errors import EvaluationError

    if data is None or not candidate:
        raise EvaluationError("tunewise eval needs --data EVAL and at least one --candidate (see `tunewise eval --help`)")
    from tunewise.config import load_config, override
    from tunewise.evaluate import evaluate

    config = override(load_config().eval, limit=limit, batch_size=batch_size, judge=judge)
    results = evaluate(
        data, candidate, train_path=train, baseline=baseline, task_type=task, schema_path=schema, config=config,
        allow_contamination=allow_contamination, progress=not as_json, reuse=reuse,
    )
    if as_json:
        import json

        typer.echo(json.dumps(results.to_store(), indent=2, ensure_ascii=False))
        return
    from tunewise.console import console
    from tunewise.evaluate.report import print_results

    print_results(results, console)

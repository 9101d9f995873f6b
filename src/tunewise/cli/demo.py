"""`tunewise demo`: the whole lifecycle on the embedded model and the bundled sample task."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    app.command("demo", rich_help_panel="Start")(demo_command)


def demo_command(
    out: Path = typer.Option(Path("tunewise-demo"), "--out", help="Folder for the demo's workspace, data, runs and report (rewritten on each run)."),
    model: str = typer.Option("smollm2-135m", "--model", help="Base model: the embedded smollm2-135m, a local Hugging Face folder or a .gguf file."),
    train_examples: int = typer.Option(320, "--train-examples", min=10, help="Training examples of the LoRA run (also the learning curve's largest point)."),
    curve_sizes: str = typer.Option("25,50,100,320", "--curve-sizes", help="Training sizes of the learning curve (comma-separated, at least 4 for a fit)."),
    eval_limit: Optional[int] = typer.Option(None, "--eval-limit", min=1, help="Evaluate only the first N eval rows (default: all 300)."),
) -> None:
    """Run every stage end to end on the bundled sample task: import, audit, clean, train LoRA, evaluate against prompt baselines, learning curve, advice, report.

    Takes 14-16 minutes on 2 CPU cores (bench/RESULTS.md, "Demo"); every number it prints is measured in the run.

    Example: `tunewise demo`

    Example: `tunewise demo --out /tmp/demo --curve-sizes 50,100,200,320`
    """
    from tunewise.demo import DemoPlan, run_demo
    from tunewise.errors import ConfigError

    try:
        sizes = tuple(int(part) for part in curve_sizes.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--curve-sizes {curve_sizes!r}: expected whole numbers separated by commas, e.g. 40,80,160,320") from None
    run_demo(out, plan=DemoPlan(model=model, train_examples=train_examples, curve_sizes=sizes, eval_limit=eval_limit))

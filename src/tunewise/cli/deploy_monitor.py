"""`tunewise deploy status` and `tunewise monitor`: a thin layer over `tunewise.deploy.monitor` and `.alerts`."""

from __future__ import annotations

import json
import time
from typing import Optional

import typer

from tunewise.console import console, err_console


def register(deploy_app: typer.Typer, app: typer.Typer) -> None:
    """Add this module's commands to the `deploy` group (and top-level commands to `app`)."""
    deploy_app.command("status")(status_command)
    app.command("monitor", rich_help_panel="Serve")(monitor_command)


def status_command(
    name: str = typer.Argument(..., help="Deployment name or id."),
    window_hours: Optional[float] = typer.Option(None, "--window-hours", min=0.001, help="How far back to look, in hours (default deploy.window_hours)."),
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON on stdout (no table)."),
    judge: Optional[str] = typer.Option(None, "--judge", help="OpenAI-compatible judge URL#MODEL that grades a sample of each variant's replies 1-5 (judged quality)."),
    judge_sample: int = typer.Option(50, "--judge-sample", min=1, help="With --judge: successful replies graded per variant, at most (a seeded random sample)."),
) -> None:
    """Per variant over the window: requests, errors, latency, tokens, cost, feedback quality with its interval, drift,
    and the candidate-vs-baseline verdict; then the last changes and the alerts. With --judge, an LLM judge also
    grades a sample of each variant's replies (judged quality: the share graded 4 or 5, with its interval).

    Example: `tunewise deploy status tickets --window-hours 6`
    Example: `tunewise deploy status tickets --judge http://localhost:8000/v1#gpt-4o-mini --judge-sample 50`
    """
    from tunewise.deploy.monitor import deployment_status, render_status

    status = deployment_status(name, window_hours=window_hours, judge=judge, judge_sample=judge_sample)
    if as_json:
        typer.echo(json.dumps(status.to_dict(), ensure_ascii=False))
    else:
        console.print(render_status(status))


def monitor_command(
    name: str = typer.Argument(..., help="Deployment name or id."),
    once: bool = typer.Option(False, "--once", help="Evaluate the alert rules once and exit: 1 when a rule fired, 0 otherwise (for cron and CI)."),
    window_hours: Optional[float] = typer.Option(None, "--window-hours", min=0.001, help="The window the rules look at, in hours (default deploy.window_hours)."),
    webhook: Optional[str] = typer.Option(None, "--webhook", help="URL a firing rule POSTs its JSON payload to (default deploy.webhook_url)."),
    interval: float = typer.Option(300.0, "--interval", min=1.0, help="Without --once: seconds between evaluations."),
) -> None:
    """Evaluate the alert rules of tunewise.yaml `deploy.alerts` on a deployment; every firing rule is recorded
    and sent to the webhook, one line each.

    Example: `tunewise monitor tickets --once --webhook https://hooks.example.com/tunewise`
    """
    from tunewise.deploy.alerts import evaluate_rules

    while True:
        fired = evaluate_rules(name, window_hours=window_hours, webhook_url=webhook)
        for item in fired:
            console.print(item.line(), highlight=False, soft_wrap=True, markup=False)
        if once:
            if not fired:
                console.print(f"ok: no alert rule fired on {name}", highlight=False)
            raise typer.Exit(1 if fired else 0)
        if not fired:
            err_console.print(f"ok: no alert rule fired on {name}; next check in {interval:g} s", highlight=False)
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            raise typer.Exit(0) from None

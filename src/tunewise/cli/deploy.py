"""`tunewise deploy`: a thin layer over `tunewise.deploy` (deployments, their changes and their trail).

`status` and the top-level `monitor` live in `cli/deploy_monitor.py`; `export-logs` and `promote` in
`cli/deploy_logs.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from tunewise.console import console

deploy_app = typer.Typer(
    help="Put a fine-tune behind a sticky traffic split, shadow it, roll it back, and follow what served which request.\n\n"
    "Example: `tunewise deploy create tickets --baseline \"knn-few-shot:smollm2-135m?k=8\" --candidate adapter:run-3f2a --share 10`",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


def register(app: typer.Typer) -> None:
    from tunewise.cli import deploy_logs, deploy_monitor

    deploy_monitor.register(deploy_app, app)
    deploy_logs.register(deploy_app, app)
    app.add_typer(deploy_app, name="deploy", rich_help_panel="Serve")


@deploy_app.command("create")
def create_command(
    name: str = typer.Argument(..., help="The deployment's name: the model name the application calls."),
    baseline: str = typer.Option(..., "--baseline", help="What answers users by default: a candidate spec (prompt recipe, adapter:RUN, endpoint:URL#MODEL) or served:NAME."),
    candidate: list[str] = typer.Option([], "--candidate", help="Repeatable: a variant that gets --share percent of users."),
    share: list[float] = typer.Option([], "--share", help="Percent of users each candidate gets (one for all, or one per --candidate; default 10)."),
    model: Optional[str] = typer.Option(None, "--model", help="Base model local variants run on (default: the workspace's model)."),
    recipe_data: Optional[Path] = typer.Option(None, "--recipe-data", help="Training file prompt recipes take their examples from."),
    eval_data: Optional[Path] = typer.Option(None, "--eval-data", help="Held-out set: output drift is measured against its labels."),
    shadow: bool = typer.Option(False, "--shadow", help="Start in shadow mode: the baseline answers everyone, candidates answer copies in the background."),
    shadow_sample: Optional[float] = typer.Option(None, "--shadow-sample", help="Share of requests (0-1) shadow candidates answer (default deploy.shadow_sample)."),
    log_raw: bool = typer.Option(False, "--log-raw", help="Log prompts and replies unredacted (default: PII redacted before it is written)."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why, for the decision trail."),
) -> None:
    """Create a deployment; `tunewise serve --deployment NAME` then serves it as model NAME.

    Example: `tunewise deploy create tickets --baseline "knn-few-shot:smollm2-135m?k=8" --recipe-data train.jsonl --candidate adapter:run-3f2a --share 10`
    """
    from tunewise.deploy.state import create_deployment

    loaded = create_deployment(name, baseline=baseline, candidates=candidate, share=(share if len(share) > 1 else (share[0] if share else 10.0)),
                               model=model, recipe_data=str(recipe_data) if recipe_data else None,
                               eval_data=str(eval_data) if eval_data else None, shadow=shadow, shadow_sample=shadow_sample,
                               log_raw=log_raw or None, reason=reason)
    console.print(f"Created deployment [bold]{loaded.name}[/] ({loaded.record.id}, version {loaded.version}): {loaded.state.summary()}")
    console.print(f"Serve it with: tunewise serve --deployment {loaded.name}", highlight=False)


@deploy_app.command("set")
def set_command(
    name: str = typer.Argument(..., help="Deployment name or id."),
    share: Optional[float] = typer.Option(None, "--share", help="The candidate's new share of users, in percent (users already in it stay)."),
    variant: Optional[str] = typer.Option(None, "--variant", help="Which candidate --share applies to (default: the only one)."),
    shadow: Optional[bool] = typer.Option(None, "--shadow/--no-shadow", help="Shadow mode on (candidates answer copies in the background) or off (back to the split)."),
    shadow_sample: Optional[float] = typer.Option(None, "--shadow-sample", help="Share of requests (0-1) shadow candidates answer."),
    rollback: bool = typer.Option(False, "--rollback", help="Kill switch: everyone to the baseline now; running servers follow within a second."),
    resume: bool = typer.Option(False, "--resume", help="Back to the split after a rollback, at the shares it had."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why, for the decision trail."),
) -> None:
    """Change a deployment's shares or mode; every change is recorded as an event with who, when and why.

    Example: `tunewise deploy set tickets --share 50`

    Example: `tunewise deploy set tickets --rollback --reason "complaints about refunds"`
    """
    from tunewise.deploy.state import set_deployment

    loaded = set_deployment(name, share=share, candidate=variant, shadow=shadow, shadow_sample=shadow_sample,
                            rollback=rollback, resume=resume, reason=reason)
    console.print(f"[bold]{loaded.name}[/] version {loaded.version}: {loaded.state.summary()}")


@deploy_app.command("list")
def list_command() -> None:
    """The deployments in the store, with their current split.

    Example: `tunewise deploy list`
    """
    from tunewise.deploy.state import load
    from tunewise.store import Store

    with Store.borrow(None) as store:
        records = store.list_deployments()
        if not records:
            console.print("No deployments yet: create one with `tunewise deploy create`.")
            return
        table = Table(show_edge=False)
        for column in ("name", "id", "version", "state"):
            table.add_column(column)
        for record in records:
            table.add_row(record.name, record.id, str(record.version), load(record.id, store=store).state.summary())
    console.print(table)


@deploy_app.command("history")
def history_command(name: str = typer.Argument(..., help="Deployment name or id.")) -> None:
    """Every change of a deployment: version, when, who, what, why and the evaluation behind it.

    Example: `tunewise deploy history tickets`
    """
    from tunewise.records.deployment import DeploymentState
    from tunewise.store import Store

    with Store.borrow(None) as store:
        record = store.get_deployment(name)
        events = store.deployment_events(record.id)
    # One event per line pair rather than a table: the state and the reason are long and a table wraps them unreadably.
    for event in events:
        state = DeploymentState.from_store(event.state, where=f"deployment {record.name} version {event.version}")
        why = f"  why: {event.reason}" if event.reason else ""
        gate = f"  evaluation: {event.evaluation_id}" if event.evaluation_id else ""
        console.print(f"[bold]v{event.version}[/] {event.created_at:%Y-%m-%d %H:%M:%S} UTC  {event.actor}  [bold]{event.action}[/]{why}{gate}",
                      highlight=False, soft_wrap=True)
        console.print(f"    {state.summary()}", highlight=False, soft_wrap=True)

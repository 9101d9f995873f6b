"""`tunewise init` and `tunewise store`: the workspace and its store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from tunewise.console import console


def register(app: typer.Typer) -> None:
    app.command("init", rich_help_panel="Workspace")(init)
    app.command("status", rich_help_panel="Workspace")(status)


def init(
    path: Path = typer.Argument(Path("."), help="Folder to make a workspace (created if missing)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing tunewise.yaml."),
) -> None:
    """Create a workspace: a commented `tunewise.yaml` and an empty store.

    Example: `tunewise init my-project && cd my-project && tunewise status`
    """
    from tunewise.workspace_init import init_workspace

    result = init_workspace(path, force=force)
    console.print(f"Workspace ready in [bold]{result.root}[/]")
    console.print(f"  config: {result.config_path}")
    console.print(f"  store:  {result.store_url}")


def status() -> None:
    """Show the workspace, its store and what it holds.

    Example: `tunewise status`
    """
    from tunewise.workspace_init import describe_workspace

    info = describe_workspace()
    table = Table(show_header=False, box=None)
    for key, value in info.items():
        table.add_row(f"[bold]{key}[/]", str(value))
    console.print(table)

"""`tunewise ui`: the local web app over the store (a thin layer over `tunewise.ui.server.serve_ui`)."""

from __future__ import annotations

from typing import Optional

import typer

from tunewise.console import console


def register(app: typer.Typer) -> None:
    app.command("ui", rich_help_panel="Workspace")(ui)


def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; anything beyond loopback needs --token."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
    allow_changes: bool = typer.Option(False, "--allow-changes", help="Turn on the forms that write: ratings and deployment share / shadow / rollback."),
    token: Optional[str] = typer.Option(None, "--token", help="Require this token on every request (the printed URL carries it once, then a cookie)."),
) -> None:
    """Browse the store in a web browser: datasets, runs, evaluations, the decision and deployments.

    Prints the URL and opens nothing; read-only unless --allow-changes. Ctrl-C stops it.

    Example: `tunewise ui --allow-changes --port 8765`
    """
    from tunewise.ui.server import serve_ui

    mode = "changes allowed" if allow_changes else "read-only"
    serve_ui(host=host, port=port, allow_changes=allow_changes, token=token,
             announce=lambda url: console.print(f"tunewise ui ({mode}) at [bold]{url}[/]  (Ctrl-C stops it)", highlight=False, soft_wrap=True))

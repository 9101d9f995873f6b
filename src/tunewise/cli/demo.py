"""CLI commands of this group (filled in by its stage)."""

import typer


def register(app: typer.Typer) -> None:
    pass

"""`tunewise data audit` (filled in by the data-audit stage)."""

import typer


def register(data_app: typer.Typer) -> None:
    pass

"""Placeholder: filled in by its own change."""

from __future__ import annotations

import typer


def register(deploy_app: typer.Typer, app: typer.Typer) -> None:
    """Add this module's commands to the `deploy` group (and top-level commands to `app`)."""

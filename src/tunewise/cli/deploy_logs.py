"""`tunewise deploy export-logs` and `deploy promote`: the retrain loop, over `tunewise.deploy.logs` and `.promote`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tunewise.console import console


def register(deploy_app: typer.Typer, app: typer.Typer) -> None:
    """Add this module's commands to the `deploy` group (and top-level commands to `app`)."""
    deploy_app.command("export-logs")(export_logs_command)
    deploy_app.command("promote")(promote_command)


def export_logs_command(
    name: str = typer.Argument(..., help="Deployment name or id."),
    out: Path = typer.Option(..., "-o", "--out", help="The chat JSONL to write; requests that need a label go to OUT-STEM.needs-label.jsonl beside it."),
    labeled_only: bool = typer.Option(False, "--labeled-only", help="Only requests whose feedback gave a label or confirmed the reply; unreviewed ones go to the needs-label file."),
    since: Optional[str] = typer.Option(None, "--since", help="Only requests logged from this ISO 8601 date or time on (UTC unless it names a zone)."),
) -> None:
    """Turn a deployment's served requests and their feedback into training data, registered as a dataset.

    The assistant turn is the feedback's label, else the logged reply when feedback confirmed it (or, without
    --labeled-only, when no feedback came); failed and shadow requests are counted and left out.

    Example: `tunewise deploy export-logs tickets -o retrain.jsonl --labeled-only --since 2026-03-01`
    """
    from tunewise.deploy.logs import export_logs

    exported = export_logs(name, out, labeled_only=labeled_only, since=since)
    console.print(exported.line(), highlight=False, soft_wrap=True, markup=False)
    if exported.dataset_id:
        console.print(f"Wrote {exported.path} ({exported.exported} rows), registered as dataset {exported.dataset_id} "
                      f"of deployment {exported.deployment}", highlight=False, soft_wrap=True, markup=False)
    for note in exported.notes:
        console.print(f"Note: {note}", highlight=False, markup=False)
    if exported.needs_label_path:
        console.print(f"{exported.needs_label} requests need a label: {exported.needs_label_path}", highlight=False, soft_wrap=True, markup=False)
    console.print(exported.privacy_line(), highlight=False, soft_wrap=True, markup=False)


def promote_command(
    name: str = typer.Argument(..., help="Deployment name or id."),
    candidate: str = typer.Option(..., "--candidate", help="The spec to promote (adapter:RUN, a prompt recipe, endpoint:URL#MODEL)."),
    gate: str = typer.Option(..., "--gate", help="Evaluation id of a held-out comparison that scored this spec and the one it replaces."),
    margin: float = typer.Option(0.0, "--margin", min=0.0, max=0.99, help="Also pass when not worse by more than this accuracy (0.02 = 2 points); 0: it must be significantly better."),
    variant: Optional[str] = typer.Option(None, "--variant", help="Which candidate variant to promote (default: the only one)."),
) -> None:
    """Promote a retrained candidate one step of deploy.promote_steps, if the gate evaluation shows it better
    (McNemar's exact test per row) or, with --margin, not worse; a refusal exits 1 with the figures.

    Example: `tunewise deploy promote tickets --candidate adapter:run-9c1d --gate eval-5e2f --margin 0.02`
    """
    from tunewise.deploy.promote import promote

    promoted = promote(name, candidate, gate_evaluation=gate, margin=margin, variant=variant)
    console.print(f"{promoted.deployment} version {promoted.version}: {promoted.reason}", highlight=False, soft_wrap=True, markup=False)
    console.print(f"    {promoted.summary}", highlight=False, soft_wrap=True, markup=False)

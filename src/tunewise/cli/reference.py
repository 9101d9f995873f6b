"""The Markdown command reference (docs/CLI.md), generated from the Typer app so that it cannot drift.

Regenerate with `python -m tunewise.cli.reference > docs/CLI.md`; a test fails when the file is stale.
"""

from __future__ import annotations

import typer.main


def cli_reference() -> str:
    """Every command and option of `tunewise`, as Markdown."""
    from tunewise.cli import app

    root = typer.main.get_command(app)
    lines = ["# Command reference", "", "Generated from the code by `python -m tunewise.cli.reference`; do not edit.", ""]
    for path, command in _walk(root, ["tunewise"]):
        lines += [f"## `{' '.join(path)}`", "", (command.help or "").strip(), ""]
        params = [p for p in command.params if not getattr(p, "hidden", False)]
        if params:
            lines += ["| argument or option | help | default |", "|---|---|---|"]
            for param in params:
                names = ", ".join([*param.opts, *param.secondary_opts]) if param.param_type_name == "option" else param.name.upper()
                help_text = (getattr(param, "help", None) or "").replace("|", "\\|").replace("\n", " ")
                default = param.default if param.param_type_name == "option" and not callable(param.default) else None
                # Options generated from a config default to None ("not given") and show the field's default instead.
                described = getattr(param, "show_default", None)
                shown = f"`{described}`" if isinstance(described, str) else "" if default in (None, False, ()) else f"`{default}`"
                lines.append(f"| `{names}` | {help_text} | {shown} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _walk(command, path):
    subcommands = getattr(command, "commands", None)
    if path != ["tunewise"] and (not subcommands or command.callback is not None and command.invoke_without_command):
        yield path, command
    for name in sorted(subcommands or {}):
        yield from _walk(subcommands[name], path + [name])


if __name__ == "__main__":
    print(cli_reference(), end="")

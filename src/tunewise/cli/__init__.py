"""The `tunewise` command: a thin Typer layer over the library, one module per command group.

Errors from the library (`tunewise.errors.TunewiseError`) become one red line and exit code 2
(1 for failed gates); `--debug` anywhere on the command line shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
import warnings

# The command is tunewise's own process: make the Hugging Face libraries fail fast instead of trying the
# network (set before they are imported; the library passes local_files_only on each load instead).
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the CLI forks helper processes after tokenizing

import typer
# Typer vendors its own click; its usage errors derive from this class.
from typer._click.exceptions import ClickException

from tunewise.errors import SettingMovedWarning, TunewiseError

app = typer.Typer(
    name="tunewise",
    help="Decide whether to fine-tune a language model, then do it well: audit the data, train LoRA or full "
    "fine-tunes, prove the gain against prompt baselines on a held-out set, and price it.\n\n"
    "Start with `tunewise init`, or see everything end to end with `tunewise demo`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks instead of one-line errors."),
) -> None:
    """Root options (parsed before any command)."""


def _register() -> None:
    # Imported here so that `tunewise --help` stays one import deep per group and each group lives in its own module.
    from tunewise.cli import advise as advise_cli
    from tunewise.cli import data as data_cli
    from tunewise.cli import demo as demo_cli
    from tunewise.cli import deploy as deploy_cli
    from tunewise.cli import distill as distill_cli
    from tunewise.cli import evaluate as evaluate_cli
    from tunewise.cli import serve as serve_cli
    from tunewise.cli import train as train_cli
    from tunewise.cli import ui as ui_cli
    from tunewise.cli import workspace as workspace_cli

    for module in (demo_cli, workspace_cli, data_cli, train_cli, evaluate_cli, advise_cli, serve_cli, deploy_cli, distill_cli, ui_cli):
        module.register(app)


_register()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # tunewise's own warnings are for the user (a setting to move), so one line without the source location.
    if issubclass(category, SettingMovedWarning):
        from tunewise.console import err_console

        err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
        return
    _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `tunewise` script."""
    args = list(sys.argv[1:] if argv is None else argv)
    warnings.showwarning = _show_warning
    debug = "--debug" in args or os.environ.get("TUNEWISE_DEBUG") == "1"
    try:
        app(args=args, prog_name="tunewise", standalone_mode=False)
    except TunewiseError as exc:
        if debug:
            raise
        from tunewise.console import err_console

        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("Aborted.", file=sys.stderr)
        sys.exit(130)
    except ClickException as exc:
        if debug:
            raise
        exc.show()
        sys.exit(2)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        sys.exit(130)
    sys.exit(0)

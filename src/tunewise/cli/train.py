"""`tunewise train | runs | export`: a thin layer over `tunewise.train`.

The settings are the `train:` section of tunewise.yaml, then `--config train.yaml`, then the flags
the user passed; the merged result is saved beside the run (`runs/<run id>/config.yaml`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from tunewise.cli.options import config_options
from tunewise.console import console, err_console
from tunewise.train.config import TrainConfig


def register(app: typer.Typer) -> None:
    app.command("train", rich_help_panel="Train")(train_command)
    app.command("runs", rich_help_panel="Train")(runs_command)
    app.command("export", rich_help_panel="Train")(export_command)


# Flags users and the docs know; the generated `--kebab-name` of each field works beside them.
TRAIN_ALIASES = {
    "dataset": ("--data",),
    "eval_dataset": ("--eval-data",),
    "time_budget_minutes": ("--time-budget",),
    "learning_rate": ("--lr",),
    "gradient_accumulation": ("--grad-accum",),
    "use_liger": ("--liger",),
}


def _target_modules(text: str) -> list[str] | str:
    """`q_proj,v_proj` -> a list; `all-linear` stays PEFT's keyword (one module name is still a list, not a regex)."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    return parts[0] if parts == ["all-linear"] else parts


@config_options(TrainConfig, aliases=TRAIN_ALIASES, parsers={"target_modules": _target_modules},
                panel="Training settings (tunewise.yaml `train:`; left out: the YAML, else the recipe, chooses)")
def train_command(
    config_file: Optional[Path] = typer.Option(None, "--config", help="YAML with TrainConfig settings (a bare mapping or a `train:` section); applied before the flags."),
    search: bool = typer.Option(False, "--search", help="Try the recipe's learning rate x 0.5, 1, 2 (and epochs x 1, 2 without --time-budget), rank the trials by the held-out score, keep the winner; with --time-budget, successive halving inside it."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue a killed or failed run (its id) from its last checkpoint; other settings are the run's own."),
    provider: Optional[str] = typer.Option(None, "--provider", help="Train at a managed provider (openai, together) instead of locally; key and base URL from the environment."),
    hp: Optional[list[str]] = typer.Option(None, "--hp", help="Provider hyperparameter KEY=VALUE (repeatable), e.g. --hp learning_rate_multiplier=2"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before starting a paid provider job."),
    launcher: Optional[str] = typer.Option(None, "--launcher", help="'accelerate': many processes (GPUs) through accelerate launch."),
    fsdp: bool = typer.Option(False, "--fsdp", help="With --launcher accelerate: shard with FSDP (default when several GPUs)."),
    deepspeed: bool = typer.Option(False, "--deepspeed", help="With --launcher accelerate: DeepSpeed ZeRO (needs the deepspeed package)."),
    zero_stage: int = typer.Option(3, "--zero-stage", help="DeepSpeed ZeRO stage (2 or 3)."),
    num_processes: Optional[int] = typer.Option(None, "--num-processes", help="With --launcher accelerate: processes (default: the visible GPUs, else 2)."),
    *,
    settings: dict,
) -> None:
    """Fine-tune a model: local LoRA / QLoRA / full SFT (TRL + PEFT), a managed provider job, or many GPUs via accelerate.

    Settings you leave out are chosen by the training recipe from the model, the data and the hardware;
    the run prints them with the reason for each, and saves them in its config.yaml and recipe.json.

    Example: `tunewise train --data train.jsonl --max-train-examples 1000 --time-budget 15`

    Example: `tunewise train --data train.jsonl --eval-data dev.jsonl --epochs 2 --lr 5e-4`

    Example: `tunewise train --data train.jsonl --search --time-budget 15`

    Example: `tunewise train --config train.yaml --lora-r 8 --lr 1e-3`

    Example: `tunewise train --resume run-3f2a9c1b7d`

    Example: `tunewise train --provider openai --model gpt-4.1-mini-2025-04-14 --data train.jsonl --epochs 3 --yes`

    Example: `tunewise train --launcher accelerate --fsdp --num-processes 8 --model ./llama-3.2-1b --data train.jsonl`
    """
    from tunewise.config import override
    from tunewise.errors import TrainingError

    if resume:
        from tunewise.train import resume as resume_run

        err_console.print(f"Resuming [bold]{resume}[/] from its last checkpoint", highlight=False)
        _print_run(resume_run(resume))
        return
    config = override(_base_config(config_file), **settings)
    if provider:
        from tunewise.train.providers import train_with_provider

        # Only what the user passed: the provider's own defaults apply otherwise.
        params = {"n_epochs": settings["epochs"], "batch_size": settings["batch_size"], "seed": settings["seed"]}
        params.update(_key_values(hp or []))
        run = train_with_provider(
            provider, model=config.model, dataset=config.dataset or _missing_data(), eval_dataset=config.eval_dataset,
            hyperparameters={k: v for k, v in params.items() if v is not None}, yes=yes,
        )
        _print_run(run)
        return
    if launcher or fsdp or deepspeed or num_processes:
        if launcher not in (None, "accelerate"):
            raise TrainingError(f"--launcher {launcher!r}: only 'accelerate' is supported")
        if fsdp and deepspeed:
            raise TrainingError("choose one of --fsdp and --deepspeed")
        from tunewise.train.launch import launch

        strategy = "fsdp" if fsdp else "deepspeed" if deepspeed else "ddp"
        run = launch(config, strategy=strategy, num_processes=num_processes or _default_processes(), zero_stage=zero_stage)
        _print_run(run)
        return
    if search:
        from tunewise.train.search import search as run_search

        result = run_search(config)
        _print_search(result)
        _print_run(result.winner)
        return
    from tunewise.train import train

    _print_run(train(config))


def _print_search(result) -> None:
    table = Table(title=f"Search {result.search_id}: trials ranked by the held-out score", title_justify="left")
    for name in ("run", "rung", "lr", "epochs", "minutes", "steps", "held-out accuracy", "held-out loss", ""):
        table.add_column(name)
    for t in result.trials:
        table.add_row(t["run_id"], str(t["rung"]), f"{t['learning_rate']:g}", f"{t['epochs']:g}", f"{t['minutes']:.1f}" if t["minutes"] else "-",
                      str(t["steps"]), "-" if t["eval_accuracy"] is None else f"{t['eval_accuracy']:.3f}",
                      "-" if t["eval_loss"] is None else f"{t['eval_loss']:.4f}", "winner" if t["winner"] else "")
    console.print(table)


def runs_command(
    run_id: Optional[str] = typer.Argument(None, help="Show this run in full (config, metrics, artifacts, steps); omit to list runs."),
    limit: int = typer.Option(50, "--limit", help="List at most this many runs, newest first."),
    status: Optional[str] = typer.Option(None, "--status", help="List only runs with this status (completed, failed, running, ...)."),
    steps: int = typer.Option(20, "--steps", help="With RUN: show the last N logged steps."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """List training runs, or show one run's config, metrics, artifacts and logged steps.

    Example: `tunewise runs`

    Example: `tunewise runs run-3f2a9c1b7d --steps 50`
    """
    from tunewise.store import Store

    store = Store.open()
    try:
        if run_id:
            run = store.get_run(run_id)
            logged = store.run_steps(run.id)
            if as_json:
                console.print_json(json.dumps({**_run_dict(run), "steps": [{"step": s.step, **s.values} for s in logged]}, default=str))
                return
            _show_run(run, logged[-steps:] if steps else [])
            return
        found = store.list_runs(limit, status=status)
        if as_json:
            console.print_json(json.dumps([_run_dict(r) for r in found], default=str))
            return
        if not found:
            err_console.print("No runs yet: start one with `tunewise train --data train.jsonl`.")
            return
        table = Table()
        for name in ("id", "kind", "model", "dataset", "status", "metrics", "wall", "cost"):
            table.add_column(name, no_wrap=name in {"id", "kind", "status", "wall", "cost"})
        for run in found:
            table.add_row(
                run.id, run.kind + (f" @{run.provider}" if run.provider else ""), _short(run.base_model, 28),
                _short(run.dataset_id or Path(str(run.config.get("dataset") or "-")).name, 24), _status(run.status),
                _metrics_line(run.metrics or {}), _duration(run.wall_seconds), _money(run.cost_usd),
            )
        console.print(table)
    finally:
        store.close()


def export_command(
    run_id: str = typer.Argument(..., help="Run id (or an adapter / model folder) to export."),
    merge: bool = typer.Option(True, "--merge/--no-merge", help="Fold the LoRA adapter into the base weights (GGUF always merges)."),
    fmt: str = typer.Option("safetensors", "--format", help="safetensors (a Hugging Face folder) or gguf (one file for llama.cpp / Ollama)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Folder (safetensors) or .gguf file (default: inside the run folder)."),
    gguf_type: str = typer.Option("f16", "--gguf-type", help="GGUF tensor type: f16 or f32."),
    dtype: str = typer.Option("float32", "--dtype", help="safetensors weights dtype: float32, bfloat16 or float16."),
) -> None:
    """Merge a run's adapter into its base and write safetensors (with tokenizer and chat template) or GGUF.

    Example: `tunewise export run-3f2a9c1b7d --merge --format safetensors -o merged/`

    Example: `tunewise export run-3f2a9c1b7d --format gguf -o tickets.gguf` then `llama-cli -m tickets.gguf`
    """
    from tunewise.train.export import export

    target = output or _default_export_path(run_id, fmt, merge)
    with err_console.status(f"Exporting {run_id} as {fmt}"):
        result = export(run_id, target, fmt=fmt, merge=merge, gguf_type=gguf_type, dtype=dtype)
    what = "merged model" if result.merged else ("adapter" if fmt == "safetensors" else "model")
    console.print(f"Wrote {what} ({fmt}, {result.bytes / 2**20:,.1f} MiB) -> [bold]{result.path}[/]", highlight=False)


# -- helpers ---------------------------------------------------------------------------------------


def _base_config(config_file: Optional[Path]) -> TrainConfig:
    """tunewise.yaml's `train:` section, with the keys a --config file sets laid over it."""
    from tunewise.config import load_config, load_yaml_model, override

    base = load_config().train
    if config_file is None:
        return base
    given = load_yaml_model(config_file, TrainConfig, section="train")
    values = {key: getattr(given, key) for key in given.model_fields_set}
    return override(base, clear=[key for key, value in values.items() if value is None], **values)


def _key_values(items: list[str]) -> dict:
    import yaml

    from tunewise.errors import ConfigError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--hp {item!r}: write KEY=VALUE, e.g. --hp learning_rate_multiplier=2")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _missing_data() -> str:
    from tunewise.errors import TrainingError

    raise TrainingError("no training data: pass --data (a dataset id or a chat JSONL path) or set train.dataset")


def _default_processes() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.device_count() > 1 else 2


def _default_export_path(ref: str, fmt: str, merge: bool) -> Path:
    from tunewise.train.local import _artifact_folder

    folder = _artifact_folder(ref, None)
    base = folder.parent
    name = Path(ref).name
    if fmt == "gguf":
        return base / f"{name}.gguf"
    return base / ("merged" if merge else "adapter-copy")


def _print_run(run) -> None:
    metrics = run.metrics or {}
    table = Table(show_header=False, box=None)
    table.add_row("run", f"[bold]{run.id}[/] ({run.kind}, {_status(run.status)})")
    table.add_row("model", str(run.provider_model_id or run.base_model))
    table.add_row("metrics", _metrics_line(metrics))
    table.add_row("wall time", _duration(run.wall_seconds))
    table.add_row("cost", _money(run.cost_usd))
    for key, value in (run.artifacts or {}).items():
        table.add_row(key, str(value))
    console.print(table)
    if run.artifacts and run.artifacts.get("adapter"):
        err_console.print(
            f"next: `tunewise eval --candidate adapter:{run.id}` or `tunewise export {run.id} --format gguf`", highlight=False
        )


def _show_run(run, steps) -> None:
    _print_run(run)
    if run.error:
        console.print(f"[red]error:[/] {run.error}", highlight=False)
    details = Table(show_header=False, box=None, title="details", title_justify="left")
    for key in ("dataset_id", "eval_dataset_id", "dataset_hash", "output_dir", "provider_job_id", "tokens_seen", "billed_tokens",
                "peak_memory_mb", "created_at", "started_at", "finished_at"):
        value = getattr(run, key, None)
        if value is not None:
            details.add_row(key, str(value))
    console.print(details)
    config = Table("setting", "value", title="config", title_justify="left")
    for key, value in sorted((run.config or {}).items()):
        if value is not None:
            config.add_row(key, json.dumps(value) if not isinstance(value, str) else value)
    console.print(config)
    if steps:
        keys = [k for k in ("loss", "eval_loss", "learning_rate", "grad_norm", "tokens_per_second", "epoch") if any(k in s.values for s in steps)]
        table = Table("step", *keys, title=f"last {len(steps)} logged steps", title_justify="left")
        for step in steps:
            table.add_row(str(step.step), *(_fmt(step.values.get(k)) for k in keys))
        console.print(table)


def _run_dict(run) -> dict:
    keys = ("id", "kind", "status", "base_model", "dataset_id", "eval_dataset_id", "dataset_hash", "config", "metrics", "artifacts",
            "output_dir", "provider", "provider_job_id", "provider_model_id", "tokens_seen", "billed_tokens", "peak_memory_mb",
            "wall_seconds", "cost_usd", "error", "created_at", "started_at", "finished_at")
    return {key: getattr(run, key, None) for key in keys}


def _metrics_line(metrics: dict) -> str:
    parts = []
    for key, label in (("train_loss", "loss"), ("eval_loss", "eval"), ("tokens_per_second", "tok/s"), ("train_examples", "examples")):
        if metrics.get(key) is not None:
            parts.append(f"{label} {_fmt(metrics[key])}")
    return "  ".join(parts) or "-"


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.4g}"
    return str(value)


def _duration(seconds) -> str:
    if not seconds:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _money(usd) -> str:
    return "-" if usd is None else f"${usd:,.4f}" if usd < 1 else f"${usd:,.2f}"


def _status(status: str) -> str:
    colour = {"completed": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}.get(status, "white")
    return f"[{colour}]{status}[/]"


def _short(text: str, width: int) -> str:
    text = str(text)
    return text if len(text) <= width else "…" + text[-(width - 1):]

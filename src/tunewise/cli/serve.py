"""`tunewise serve`: a thin layer over `tunewise.serve` (the OpenAI-compatible server) and `serve add-key`.

The settings are the `serve:` section of tunewise.yaml, then the flags the user passed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from tunewise.cli.options import config_options
from tunewise.console import console, err_console
from tunewise.serve.config import ServeConfig

serve_app = typer.Typer(
    help="Serve a base model, its LoRA adapters, prompt recipes and upstream models behind one OpenAI-compatible API.\n\n"
    "Example: `tunewise serve --model smollm2-135m --adapter tickets=run-3f2a --port 8000`",
    invoke_without_command=True,
    rich_markup_mode="markdown",
)


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve", rich_help_panel="Serve")


@serve_app.callback()
@config_options(ServeConfig, exclude=("api_key_file",), panel="Server settings (tunewise.yaml `serve:`)")
def serve_command(
    ctx: typer.Context,
    model: Optional[str] = typer.Option(None, "--model", help="Base model: 'smollm2-135m' (embedded), a Hugging Face folder or a .gguf file (default: the workspace's model)."),
    adapter: list[str] = typer.Option([], "--adapter", help="Repeatable NAME=REF: a LoRA adapter served as model NAME; REF is a run id, an adapter folder, or a run's GGUF export."),
    recipe: list[str] = typer.Option([], "--recipe", help="Repeatable NAME=SPEC: a prompt recipe served as model NAME, an eval candidate spec over the base, e.g. tickets-knn=knn-few-shot:smollm2-135m?k=8."),
    recipe_data: Optional[Path] = typer.Option(None, "--recipe-data", help="Training file the recipes take their examples, labels and retrieval from."),
    upstream: list[str] = typer.Option([], "--upstream", help="Repeatable NAME=URL#MODEL: an OpenAI-compatible model (a provider, vLLM, another tunewise) served as NAME."),
    backend: str = typer.Option("local", "--backend", help="'local' (transformers + PEFT in this process) or 'vllm' (a vLLM server with --enable-lora)."),
    vllm_url: Optional[str] = typer.Option(None, "--vllm-url", help="With --backend vllm: attach to this running vLLM server instead of launching one."),
    engine: str = typer.Option("stacked", "--engine", help="Local mixed-adapter engine: 'stacked' (fast, plain LoRA) or 'peft' (PEFT's adapter_names: DoRA and every type PEFT loads)."),
    deployment: list[str] = typer.Option([], "--deployment", help="Repeatable: serve a deployment (`tunewise deploy create`) as a model of its name; each request goes to a variant by the sticky split, is logged and takes feedback at POST /v1/feedback."),
    api_key_file: Optional[Path] = typer.Option(None, "--api-key-file", help="Require an API key: the file of hashed keys that `tunewise serve add-key` writes."),
    *,
    settings: dict,
) -> None:
    """Start an OpenAI-compatible server (chat completions with streaming, models, LoRA load/unload, health, Prometheus metrics).

    Rows of different adapters share one forward pass; adapters load and unload at run time with
    POST /v1/load_lora_adapter and /v1/unload_lora_adapter. It listens on loopback unless --host says otherwise.

    Example: `tunewise serve --model smollm2-135m --adapter tickets=run-3f2a --adapter billing=./adapters/billing --port 8000`

    Example: `tunewise serve --recipe tickets-knn=knn-few-shot:smollm2-135m?k=8 --recipe-data train.jsonl`

    Example: `tunewise serve --upstream gpt=https://api.example.com/v1#gpt-4o-mini --adapter tickets=run-3f2a`

    Example: `tunewise serve --backend vllm --model ./llama-3.2-1b --adapter tickets=run-3f2a`

    Example: `tunewise serve --deployment tickets` (the app calls model "tickets"; the response header x-tunewise-variant says who answered)

    Example: `tunewise serve --deployment tickets --ui --ui-allow-changes` (the web app at /ui/ controls the split of the traffic it serves)
    """
    if ctx.invoked_subcommand is not None:
        return
    from tunewise.config import load_config, override
    from tunewise.serve import parse_pairs, serve

    config = override(load_config().serve, **settings)
    if api_key_file is not None:
        config = override(config, api_key_file=str(api_key_file))
    adapters, recipes = parse_pairs(adapter, "--adapter"), parse_pairs(recipe, "--recipe")
    local = backend == "local" and (model or adapters or recipes or not upstream)
    what = ", ".join(filter(None, [f"deployment {', '.join(deployment)}" if deployment else "",
                                   model or (load_config().model if local and not deployment else None),
                                   f"{len(adapters)} adapter(s)" if adapters else "", f"{len(recipes)} recipe(s)" if recipes else "",
                                   f"{len(upstream)} upstream(s)" if upstream else ""]))
    err_console.print(f"Loading {what}...", highlight=False)
    serve(model, config=config, adapters=adapters, recipes=recipes, recipe_data=str(recipe_data) if recipe_data else None,
          upstreams=upstream, backend=backend, vllm_url=vllm_url, engine=engine, deployment=deployment or None, on_ready=_announce)


def _announce(app, port: int) -> None:
    config = app.state.config
    table = Table(title=None, show_edge=False)
    for column in ("model", "kind", "parent", "source"):
        table.add_column(column)
    for name, gateway in app.state.deployments.items():
        table.add_row(name, "deployment", "", gateway.state.summary())
    for name, (_, card) in app.state.router.table().items():
        table.add_row(name, card.kind, card.parent or "", card.source or "")
    console.print(table)
    for backend in app.state.router.backends:
        for name, why in getattr(backend, "failed", {}).items():
            err_console.print(f"[yellow]not served:[/] {name}: {why}", highlight=False, soft_wrap=True)
    host = "localhost" if config.host in ("127.0.0.1", "::1") else config.host
    keys = " (an API key is required)" if config.api_key_file else ""
    console.print(f"Serving at [bold]http://{host}:{port}/v1[/]{keys}; metrics at /metrics. Ctrl-C stops.", highlight=False)
    if config.ui:
        from tunewise.ui.server import ui_url

        console.print(f"Web app at [bold]{ui_url(host, port, config.ui_token).replace(f':{port}/', f':{port}/ui/', 1)}[/]", highlight=False)


@serve_app.command("add-key")
def add_key_command(
    key_file: Path = typer.Option(Path(".tunewise/serve-keys.txt"), "--api-key-file", help="Key file to append to (created with mode 0600)."),
    label: Optional[str] = typer.Option(None, "--label", help="A note stored beside the hash, e.g. who the key is for."),
) -> None:
    """Create an API key: its hash is appended to the key file, the key itself is printed once and stored nowhere.

    Example: `tunewise serve add-key --api-key-file keys.txt --label billing-app`, then `tunewise serve --api-key-file keys.txt`
    """
    from tunewise.serve.keys import add_key

    key = add_key(key_file, label=label)
    err_console.print(f"Added a key to {key_file} (only its hash is stored; this is the one time it is shown):", highlight=False)
    console.print(key, highlight=False)


@serve_app.command("replay")
def replay_command(
    url: str = typer.Option(..., "--url", help="The server's API base, e.g. http://localhost:8000/v1."),
    model: str = typer.Option(..., "--model", help="The served name to send the rows to."),
    candidate: str = typer.Option(..., "--candidate", "-c", help="The evaluation's candidate whose prompts are replayed, e.g. adapter:run-3f2a."),
    evaluation: str = typer.Option("latest", "--evaluation", help="Evaluation id (default: the latest comparison)."),
    concurrency: int = typer.Option(16, "--concurrency", min=1, help="Requests in flight at once."),
) -> None:
    """Replay an evaluation's rows through a served model: its score over HTTP, the evaluated score, and how many replies are identical.

    Example: `tunewise serve replay --url http://localhost:8000/v1 --model tickets -c adapter:run-3f2a9c1b7d`
    """
    from tunewise.serve.replay import replay_evaluation

    console.print(replay_evaluation(url, model, evaluation, candidate, concurrency=concurrency).summary(), highlight=False)

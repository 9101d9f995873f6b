"""`tunewise serve`: an OpenAI-compatible server for a base model, its LoRA adapters (many in one batch),
prompt recipes, vLLM and any OpenAI-compatible upstream, behind one gateway.

    from tunewise.serve import create_server, serve
    app = create_server("smollm2-135m", adapters={"tickets": "run-3f2a"})   # an ASGI app (tests, notebooks)
    serve("smollm2-135m", adapters={"tickets": "run-3f2a"}, port=8000)      # blocks until Ctrl-C

Pieces: `protocol` (the wire format), `backend` (what a backend does), `api` (the FastAPI gateway: routes,
keys, limits, metrics), `local` (transformers + PEFT with a batching scheduler), `mixed_lora` (many
adapters in one forward pass), `recipes` (eval candidate specs as served names), `upstream` and `vllm`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tunewise.errors import ConfigError, TunewiseError
from tunewise.serve.config import ServeConfig

BACKENDS = ("local", "vllm")


def parse_pairs(values: list[str] | tuple[str, ...], flag: str) -> dict[str, str]:
    """`NAME=VALUE` options into a dict, refusing a missing `=` or a name given twice."""
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, target = value.partition("=")
        name, target = name.strip(), target.strip()
        if not sep or not name or not target:
            raise ConfigError(f"{flag} {value!r}: expected NAME=VALUE, e.g. {flag} tickets=run-3f2a")
        if name in pairs:
            raise ConfigError(f"{flag} {name}: given twice")
        pairs[name] = target
    return pairs


def build_backends(model: str | None = None, *, adapters: dict[str, str] | None = None, recipes: dict[str, str] | None = None,
                   recipe_data: str | None = None, upstreams: list[str] | tuple[str, ...] = (), backend: str = "local",
                   vllm_url: str | None = None, engine: str = "stacked", config: ServeConfig | None = None, store=None) -> list:
    """The backends a server is made of; checks names and flags before anything loads."""
    from tunewise.serve.local import LocalBackend
    from tunewise.serve.protocol import APIError, check_served_name

    config = config or ServeConfig()
    adapters, recipes = dict(adapters or {}), dict(recipes or {})
    if backend not in BACKENDS:
        raise ConfigError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    try:
        for name in [*adapters, *recipes]:
            check_served_name(name)
    except APIError as exc:
        raise ConfigError(exc.message) from exc
    if clash := set(adapters) & set(recipes):
        raise ConfigError(f"{', '.join(sorted(clash))}: served both as an adapter and as a recipe")
    backends = []
    if backend == "vllm":
        if recipes:
            raise ConfigError("--recipe runs on the local backend: serve recipes from a second `tunewise serve` and add it with --upstream")
        from tunewise.serve.vllm import VLLMBackend

        if model is None and vllm_url is None:
            raise ConfigError("--backend vllm needs --model (to launch vLLM) or --vllm-url (a running vLLM server)")
        folders = {name: str(_adapter_folder(ref, store)) for name, ref in adapters.items()}
        backends.append(VLLMBackend(model, folders, url=vllm_url))
    elif model is not None or adapters or recipes or not upstreams:
        from tunewise.config import load_config

        backends.append(LocalBackend(model or load_config().model, adapters=adapters, recipes=recipes, recipe_data=recipe_data,
                                     engine=engine, config=config, store=store))
    if upstreams:
        from tunewise.serve.upstream import UpstreamBackend, parse_upstream

        backends.append(UpstreamBackend(dict(parse_upstream(value) for value in upstreams)))
    return backends


def _adapter_folder(ref: str, store):
    from tunewise.serve.local import resolve_adapter
    from tunewise.serve.mixed_lora import AdapterLoadError

    try:
        return resolve_adapter(ref, store)[0]
    except AdapterLoadError as exc:
        raise ConfigError(str(exc)) from exc


def create_server(model: str | None = None, *, config: ServeConfig | None = None, deployment: str | list[str] | None = None,
                  store=None, **options):
    """The ASGI app of `tunewise serve` (options as `build_backends`); weights load when the app starts.

    `deployment` (a name, or several sharing one base model) serves each deployment as a model of its name,
    with its variants, traffic split, request log and feedback route (`tunewise.deploy.gateway`).
    """
    from tunewise.serve.api import create_app
    from tunewise.serve.keys import KeyRing

    config = config or ServeConfig()
    gateways = []
    if deployment:
        from tunewise.deploy.gateway import DeploymentGateway, merge_options

        for name in [deployment] if isinstance(deployment, str) else list(deployment):
            gateways.append(DeploymentGateway.open(name, store=store))
        model, options = merge_options(model, options, gateways)
    backends = build_backends(model, config=config, store=store, **options)
    keys = KeyRing.load(config.api_key_file) if config.api_key_file else None
    try:
        app = create_app(backends, config, keys=keys, deployments=gateways)
    except ValueError as exc:  # two backends serving one name
        raise ConfigError(str(exc)) from exc
    if config.ui:
        mount_ui(app, config, store)
    return app


def mount_ui(app, config: ServeConfig, store=None) -> None:
    """The web app (`tunewise ui`) at /ui/ of a serving app, over `store` (default: the workspace's).

    Its own guards (host, token, CSRF, read-only unless `ui_allow_changes`) apply under /ui; API keys guard /v1 only.
    """
    from tunewise.ui import create_ui_app
    from tunewise.ui.server import check_binding

    check_binding(config.host, config.ui_token, flag="--ui-token")
    app.mount("/ui", create_ui_app(store, allow_changes=config.ui_allow_changes, token=config.ui_token, allowed_hosts={config.host}))


def serve(model: str | None = None, *, config: ServeConfig | None = None, on_ready: Callable[[object, int], None] | None = None,
          **options) -> None:
    """Serve until Ctrl-C or SIGTERM; `on_ready(app, port)` is called once the server listens and every model is loaded."""
    from tunewise.serve.api import bound_port, make_server

    config = config or ServeConfig()
    app = create_server(model, config=config, **options)
    ready = threading.Event()
    server = make_server(app, config.host, config.port, ready=ready)
    quiet = _QuietStartupFailure(app)
    logging.getLogger("uvicorn.error").addFilter(quiet)
    if on_ready is not None:
        def announce():
            ready.wait()
            if server.started:
                on_ready(app, bound_port(server))

        threading.Thread(target=announce, daemon=True).start()
    try:
        server.run()
    except SystemExit:
        if server.started:
            raise
        # uvicorn exits the process when the app fails to start; the cause is raised below instead
    finally:
        logging.getLogger("uvicorn.error").removeFilter(quiet)
    failure = app.state.startup_error
    if isinstance(failure, TunewiseError):
        raise failure
    if failure is not None:
        raise ConfigError(f"the server could not start: {type(failure).__name__}: {failure}") from failure
    if not server.started:
        raise ConfigError(f"the server did not start on {config.host}:{config.port} (is the port in use? try --port 0)")


class _QuietStartupFailure(logging.Filter):
    """uvicorn logs a failed start with a traceback; `serve` raises the error as one line instead."""

    def __init__(self, app):
        super().__init__()
        self.app = app

    def filter(self, record: logging.LogRecord) -> bool:
        return self.app.state.startup_error is None


__all__ = ["ServeConfig", "build_backends", "create_server", "serve", "parse_pairs", "mount_ui"]

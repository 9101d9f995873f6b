"""Create and describe workspaces (the library side of `tunewise init` and `tunewise status`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tunewise import workspace
from tunewise.config import TunewiseConfig, load_config, render_yaml
from tunewise.errors import ConfigError
from tunewise.store import Store, resolve_url

_HEADER = """\
# tunewise workspace configuration.
# Every command reads this file; command-line flags override it; each run saves its merged copy
# beside its artifacts so that it can be reproduced. Delete a line to get the default back.
"""


@dataclass
class Workspace:
    root: Path
    config_path: Path
    store_url: str


def init_workspace(path: str | Path = ".", *, force: bool = False) -> Workspace:
    root = Path(path).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    config_path = root / workspace.CONFIG_NAME
    if config_path.exists() and not force:
        load_config(config_path)  # an existing file must at least be valid
    else:
        config_path.write_text(_HEADER + render_yaml(TunewiseConfig()) + "\n", encoding="utf-8")
    url, _ = resolve_url(root)
    Store.open(url).close()
    return Workspace(root, config_path, url)


def describe_workspace() -> dict[str, object]:
    root = workspace.find_root()
    config_path = workspace.config_path(root)
    config = load_config(config_path if config_path.exists() else None)
    url, source = resolve_url(root)
    store = Store.open(url)
    try:
        return {
            "workspace": root,
            "config": config_path if config_path.exists() else "(none: defaults; run `tunewise init`)",
            "store": f"{store.engine.url.render_as_string(hide_password=True)}  ({source})",
            "schema revision": store.revision(),
            "datasets": len(store.list_datasets(limit=10_000)),
            "runs": len(store.list_runs(limit=10_000)),
            "evaluations": len(store.list_evaluations(limit=10_000)),
            "model": config.model,
        }
    finally:
        store.close()


__all__ = ["init_workspace", "describe_workspace", "Workspace", "ConfigError"]

"""Where tunewise keeps things: the workspace (a folder with `tunewise.yaml`), its store and run artifacts.

Resolution order, so that tests and CI can move everything with one variable:
1. `TUNEWISE_HOME` if set: that folder is the workspace, whether or not it has a `tunewise.yaml`.
2. The nearest folder at or above the current directory that holds a `tunewise.yaml`.
3. `~/.local/share/tunewise` (created on first use).
"""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_NAME = "tunewise.yaml"


def find_root(start: Path | None = None) -> Path:
    explicit = os.environ.get("TUNEWISE_HOME")
    if explicit:
        return Path(explicit).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "tunewise"


def state_dir(root: Path | None = None) -> Path:
    """The hidden folder beside `tunewise.yaml` that holds the SQLite store."""
    folder = (root or find_root()) / ".tunewise"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def runs_dir(root: Path | None = None) -> Path:
    """Where training runs write their checkpoints and artifacts (one sub-folder per run id)."""
    folder = (root or find_root()) / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def config_path(root: Path | None = None) -> Path:
    return (root or find_root()) / CONFIG_NAME

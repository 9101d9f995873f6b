"""Running the web app: the loopback rule, the printed URL, uvicorn.

    from tunewise.ui.server import serve_ui
    serve_ui(port=8765, allow_changes=True, announce=print)    # blocks until Ctrl-C
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from urllib.parse import quote

from tunewise.errors import ConfigError

__all__ = ["is_loopback", "check_binding", "ui_url", "serve_ui"]


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None, *, flag: str = "--token") -> None:
    """Binding beyond loopback lets other machines in: only with a token (`flag` is the option that gives it)."""
    if not is_loopback(host) and not token:
        raise ConfigError(f"--host {host} is reachable from other machines: give {flag} T (every request must carry it), or bind 127.0.0.1")


def ui_url(host: str, port: int, token: str | None = None) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/" + (f"?token={quote(token)}" if token else "")


def serve_ui(*, host: str = "127.0.0.1", port: int = 8765, allow_changes: bool = False, token: str | None = None,
             announce: Callable[[str], None] = print) -> None:
    """Serve `create_ui_app` over the workspace's store until interrupted; `announce` gets the URL (nothing is opened)."""
    import uvicorn

    from tunewise.ui.app import create_ui_app

    check_binding(host, token)
    app = create_ui_app(allow_changes=allow_changes, token=token, allowed_hosts={host})
    announce(ui_url(host, port, token))
    uvicorn.run(app, host=host.strip("[]"), port=port, log_level="warning")

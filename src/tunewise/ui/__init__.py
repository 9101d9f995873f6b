"""`tunewise ui`: a local web app over the store (datasets, runs, evaluations, the decision, deployments).

    from tunewise.ui import create_ui_app
    import uvicorn
    uvicorn.run(create_ui_app(allow_changes=True), host="127.0.0.1", port=8765)

Run it with `tunewise ui` (loopback, read-only) or `tunewise ui --allow-changes` (ratings and deployment
changes). Pages are views of library functions (`tunewise.ui.views`); routes and their safety checks
are in `tunewise.ui.app`; charts are inline SVG (`tunewise.ui.svg`); htmx is vendored in `static/`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_ui_app"]


def create_ui_app(store=None, *, allow_changes: bool = False, token: str | None = None, **kwargs: Any):
    """The FastAPI app (imported lazily so that `import tunewise.ui` stays light)."""
    from tunewise.ui.app import create_ui_app as create

    return create(store, allow_changes=allow_changes, token=token, **kwargs)

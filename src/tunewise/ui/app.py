"""The web app's routes: FastAPI over `tunewise.ui.views`, pages rendered by the templates under `render/templates/ui/`.

    from tunewise.ui import create_ui_app
    app = create_ui_app(store, allow_changes=True)     # an ASGI app: uvicorn.run(app) or httpx's ASGITransport

Safety, in this order on every request:
- with a `token`, every request must carry it (`?token=` once, which sets a cookie, or `Authorization: Bearer`);
- the Host header must name this server (a loopback name when no token is set), against DNS rebinding;
- a POST is refused (403) unless the app was made with `allow_changes=True`, when its Origin (if sent) is another
  site's, or when its form's `csrf` field is not this process's token.
"""

from __future__ import annotations

import hmac
import secrets
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from tunewise.errors import NotFoundError, TunewiseError
from tunewise.render import render_page
from tunewise.ui import views

__all__ = ["create_ui_app", "LOOPBACK_HOSTS"]

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]", "testserver"}  # testserver: Starlette's TestClient
TOKEN_COOKIE = "tunewise_ui_token"
NAV = [("/datasets", "Datasets"), ("/runs", "Runs"), ("/evaluations", "Evaluations"), ("/decision", "Decision"), ("/deployments", "Deployments")]


def _host_name(value: str) -> str:
    if value.startswith("["):
        return value.split("]")[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def create_ui_app(store=None, *, allow_changes: bool = False, token: str | None = None, allowed_hosts: set[str] | None = None) -> FastAPI:
    """The ASGI app of `tunewise ui` over `store` (default: the workspace's, opened once for the app's life).

    `allow_changes` turns on the forms that write (ratings, deployment changes); `token` requires every request
    to carry it; `allowed_hosts` adds the names the server may be reached by (beyond loopback names).
    """
    from tunewise.store import Store

    opened = store if store is not None else Store.open()
    csrf = secrets.token_urlsafe(32)  # per process: a page rendered by another server run cannot post here
    hosts = set(LOOPBACK_HOSTS) | {h.lower() for h in (allowed_hosts or set())}
    app = FastAPI(title="tunewise", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store, app.state.csrf, app.state.allow_changes = opened, csrf, allow_changes
    static = resources.files("tunewise.ui").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = _host_name(request.headers.get("host", "").lower())
        if token is None and host not in hosts:
            return PlainTextResponse(f"host {host!r} is not this server's (tunewise ui answers on loopback only)", status_code=403)
        query_token = request.query_params.get("token")
        if token is not None:
            given = query_token or request.cookies.get(TOKEN_COOKIE) or request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not given or not hmac.compare_digest(given, token):
                return PlainTextResponse("this tunewise ui needs its token: open the URL it printed (…?token=…)", status_code=401)
        if request.method == "POST":
            if not allow_changes:
                return PlainTextResponse("read-only: start `tunewise ui --allow-changes` to make changes", status_code=403)
            origin = request.headers.get("origin")
            if origin and origin != "null" and urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
                return PlainTextResponse(f"cross-site request refused (origin {origin})", status_code=403)
            if origin == "null":
                return PlainTextResponse("cross-site request refused (opaque origin)", status_code=403)
        response = await call_next(request)
        if token is not None and query_token:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")  # no-referrer would make browsers send Origin: null
        return response

    def base(request: Request) -> str:
        # Mounted under a prefix (`tunewise serve --ui` puts the app at /ui), every link starts with it.
        return request.scope.get("root_path", "").rstrip("/")

    def page(template: str, request: Request, title: str, **context: Any) -> HTMLResponse:
        prefix = base(request)
        html = render_page(f"ui/{template}", title=f"{title} · tunewise", heading=title, nav=NAV,
                           path=request.url.path.removeprefix(prefix) or "/", base=prefix, csrf=csrf,
                           allow_changes=allow_changes, **context)
        return HTMLResponse(html)

    def fragment(template: str, request: Request, **context: Any) -> HTMLResponse:
        return HTMLResponse(render_page(f"ui/{template}", base=base(request), csrf=csrf, allow_changes=allow_changes, **context))

    def error_page(request: Request, heading: str, message: str, status: int) -> HTMLResponse:
        html = render_page("ui/error.html", title=f"{heading} · tunewise", heading=heading, nav=NAV, path="", base=base(request),
                           csrf=csrf, allow_changes=allow_changes, message=message)
        return HTMLResponse(html, status_code=status)

    def check_csrf(value: str | None) -> None:
        if not value or not hmac.compare_digest(value, csrf):
            raise _Forbidden("the form's CSRF token is missing or stale: reload the page and try again")

    @app.exception_handler(_Forbidden)
    async def forbidden(request: Request, exc: _Forbidden):
        return PlainTextResponse(str(exc), status_code=403)

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, exc: NotFoundError):
        return error_page(request, "Not found", str(exc), 404)

    @app.exception_handler(TunewiseError)
    async def failed(request: Request, exc: TunewiseError):
        return error_page(request, "Error", str(exc), 400)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request):
        return page("index.html", request, "tunewise", **views.overview(opened))

    @app.get("/datasets", response_class=HTMLResponse)
    def datasets(request: Request):
        return page("datasets.html", request, "Datasets", **views.datasets_view(opened))

    @app.get("/datasets/{ref}", response_class=HTMLResponse)
    def dataset(request: Request, ref: str):
        context = views.dataset_view(opened, ref)
        return page("dataset.html", request, f"Dataset {context['dataset'].name}", **context)

    @app.get("/datasets/{ref}/rows", response_class=HTMLResponse)
    def dataset_rows(request: Request, ref: str):
        return fragment("dataset_rows.html", request, **views.audit_details(opened, ref))

    @app.get("/runs", response_class=HTMLResponse)
    def runs(request: Request):
        return page("runs.html", request, "Runs", **views.runs_view(opened))

    @app.get("/runs/compare", response_class=HTMLResponse)
    def compare(request: Request, a: str, b: str):
        return page("compare.html", request, f"Runs {a} and {b}", **views.compare_runs_view(opened, a, b))

    @app.get("/runs/{ref}", response_class=HTMLResponse)
    def run(request: Request, ref: str):
        context = views.run_view(opened, ref)
        others = [r.id for r in opened.list_runs(limit=1000) if r.id != context["run"].id]
        return page("run.html", request, f"Run {context['run'].id}", others=others, **context)

    @app.get("/evaluations", response_class=HTMLResponse)
    def evaluations(request: Request):
        return page("evaluations.html", request, "Evaluations", **views.evaluations_view(opened))

    @app.get("/evaluations/{ref}", response_class=HTMLResponse)
    def evaluation(request: Request, ref: str, show: str = "all", a: str | None = None, b: str | None = None, page_number: int = 0):
        context = views.evaluation_view(opened, ref, show=show, a=a, b=b, page=max(page_number, 0))
        return page("evaluation.html", request, f"Evaluation {context['evaluation'].id}", **context)

    @app.post("/evaluations/{ref}/rate", response_class=HTMLResponse)
    def rate(request: Request, ref: str, row: int = Form(...), candidate: str = Form(...), rating: str = Form(""), csrf: str | None = Form(None)):
        check_csrf(csrf)
        review = views.rate_row(opened, ref, row, candidate, rating)
        summary = review.candidates.get(candidate) if review is not None else None
        cell = {"row": row, "name": candidate, "rating": rating.strip()}
        return fragment("rating.html", request, evaluation_id=ref, cell=cell, summary=summary)

    @app.get("/decision", response_class=HTMLResponse)
    def decision(request: Request):
        return page("decision.html", request, "Decision", **views.decision_view(opened))

    @app.get("/decision/roi", response_class=HTMLResponse)
    def roi(request: Request, volume: float):
        return fragment("roi.html", request, **views.roi_view(opened, volume))

    @app.get("/deployments", response_class=HTMLResponse)
    def deployments(request: Request):
        return page("deployments.html", request, "Deployments", **views.deployments_view(opened))

    @app.get("/deployments/{name}", response_class=HTMLResponse)
    def deployment(request: Request, name: str, changed: str | None = None):
        return page("deployment.html", request, f"Deployment {name}", changed=changed, **views.deployment_view(opened, name))

    @app.post("/deployments/{name}/change")
    def change(request: Request, name: str, action: str = Form(...), share: str = Form(""), variant: str = Form(""), reason: str = Form(""),
               who: str = Form(""), confirm: str = Form(""), csrf: str | None = Form(None)) -> Response:
        check_csrf(csrf)
        if confirm != "yes":
            return error_page(request, "Not changed", "tick the box that confirms the change: nothing was changed", 400)
        loaded = views.change_deployment(opened, name, action, share=float(share) if share.strip() else None, variant=variant, reason=reason, who=who)
        return RedirectResponse(f"{base(request)}/deployments/{loaded.name}?changed={loaded.version}", status_code=303)

    if store is None:
        @app.on_event("shutdown")
        def _close() -> None:
            opened.close()

    return app


class _Forbidden(Exception):
    """A POST that may not change anything: answered 403 with the reason."""

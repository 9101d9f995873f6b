"""The HTTP gateway of `tunewise serve`: an OpenAI-compatible API in front of one or more backends.

The gateway owns what every backend would otherwise repeat: API keys, body and prompt limits, queue
back-pressure (429), the error object, server-sent events and metrics. Backends (`tunewise.serve.backend`)
only see validated requests for names they serve.

Every error, from a bad field to an unexpected exception, reaches the client as the OpenAI error object;
a traceback never does (it goes to the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager

import orjson
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from tunewise.serve.backend import Backend, ModelCard
from tunewise.serve.config import ServeConfig
from tunewise.serve.keys import KeyRing
from tunewise.serve.metrics import UNKNOWN_MODEL, ServeMetrics
from tunewise.serve.protocol import APIError, ChatCompletionRequest, check_served_name, model_not_found

log = logging.getLogger(__name__)

# Union members and validator wrappers that pydantic adds to an error's location: not part of the field path.
_LOC_TAGS = re.compile(r"^(str|int|float|bool|none|[a-z-]+\[.*\])$")
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # proxies must not buffer a token stream


class RateLimited(APIError):
    """A 429 that tells the client when to retry."""

    def __init__(self, message: str, *, retry_after: int = 1):
        super().__init__(429, message, code="rate_limit_exceeded")
        self.headers = {"Retry-After": str(retry_after)}


class Router:
    """Served name → backend, read from each backend's `models()` on every lookup (adapters come and go)."""

    def __init__(self, backends: Iterable[Backend]):
        self.backends = list(backends)
        self._first_seen: dict[str, int] = {}
        self._warned: set[str] = set()
        self.table(strict=True)

    def table(self, *, strict: bool = False) -> dict[str, tuple[Backend, ModelCard]]:
        table: dict[str, tuple[Backend, ModelCard]] = {}
        for backend in self.backends:
            for card in backend.models():
                if card.id in table:
                    other = table[card.id][0]
                    message = f"the model name {card.id!r} is served by two backends ({other.name} and {backend.name}); rename one"
                    if strict:
                        raise ValueError(message)
                    # At run time the load route refuses such names; if a backend made one anyway, the first wins.
                    if card.id not in self._warned:
                        self._warned.add(card.id)
                        log.warning("%s; %s answers it", message, other.name)
                    continue
                table[card.id] = (backend, card)
        return table

    def resolve(self, name: str) -> tuple[Backend, ModelCard]:
        found = self.table().get(name)
        if found is None:
            for backend in self.backends:
                if (why := backend.missing(name)) is not None:
                    raise why
            raise model_not_found(name)
        return found

    def created(self, name: str) -> int:
        """When a name was first served: the start for the configured ones, the load time for adapters."""
        return self._first_seen.setdefault(name, int(time.time()))

    def forget(self, name: str) -> None:
        self._first_seen.pop(name, None)  # a later load of the same name is a new model

    def cards(self) -> list[dict]:
        return [card.to_openai(self.created(name)) for name, (_, card) in self.table().items()]

    def adapter_loader(self) -> Backend:
        for backend in self.backends:
            if backend.loads_adapters:
                return backend
        raise APIError(400, "no backend of this server loads adapters at run time (serve a local base model)", param="lora_name")


class FeedbackBody(BaseModel):
    """`POST /v1/feedback`: ground truth for a deployment's answer, by the `x-request-id` it came with."""

    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(min_length=1, max_length=64)
    label: str | None = Field(None, max_length=10_000)
    correct: bool | None = None
    score: int | None = Field(None, ge=1, le=5)
    comment: str | None = Field(None, max_length=10_000)


class LoadAdapterBody(BaseModel):
    model_config = ConfigDict(extra="allow")  # vLLM clients may send load_inplace and the like
    lora_name: str
    lora_path: str


class UnloadAdapterBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    lora_name: str
    lora_int_id: int | None = None


class _GuardedRoute(APIRoute):
    """Turns an unexpected exception into the 500 error object here, where the exception handlers answer it,
    instead of in Starlette's outermost middleware, which answers and then re-raises it into the server."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (APIError, StarletteHTTPException, RequestValidationError):
                raise
            except Exception as exc:
                return _error_response(_internal(exc))

        return guarded


class _ClosingStreamingResponse(StreamingResponse):
    """Closes its iterator however the response ends, so that a client that hangs up frees the backend's row
    now instead of whenever the garbage collector finalizes the generator."""

    async def stream_response(self, send) -> None:
        try:
            await super().stream_response(send)
        finally:
            await self.body_iterator.aclose()

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ClientDisconnect:
            pass  # a hang-up mid-stream is the client's choice, not a server error to log with a traceback


def create_app(backends: list[Backend], config: ServeConfig | None = None, *, keys: KeyRing | None = None,
               deployments: list | None = None) -> FastAPI:
    """The ASGI app serving `backends`; `keys` set means every /v1 route needs `Authorization: Bearer <key>`.

    `deployments` (`tunewise.deploy.gateway.DeploymentGateway`s) are served as models of their own name: each
    request is routed to a variant, logged, and answered with the variant in a header.
    """
    config = config or ServeConfig()
    router = Router(backends)
    gateways = {gateway.name: gateway for gateway in deployments or ()}
    if clash := set(gateways) & set(router.table()):
        raise ValueError(f"the model name {sorted(clash)[0]!r} is both a deployment and a served model; rename one")
    for name in router.table():
        router.created(name)

    def queue_depths():
        for name, (backend, _) in router.table().items():
            yield name, backend.queue_depth()

    metrics = ServeMetrics(queue_depths=queue_depths)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        started: list[Backend] = []
        started_gateways: list = []
        try:
            for backend in router.backends:
                try:
                    await backend.start()
                except BaseException as exc:
                    app.state.startup_error = exc  # `tunewise.serve.serve` turns it into the command's one-line error
                    raise
                started.append(backend)
            for gateway in gateways.values():
                try:
                    await gateway.start(router, metrics)
                except BaseException as exc:
                    app.state.startup_error = exc
                    raise
                started_gateways.append(gateway)
            yield
        finally:
            for gateway in reversed(started_gateways):
                try:
                    await gateway.close()
                except Exception:
                    log.exception("closing deployment %s failed", gateway.name)
            for backend in reversed(started):
                try:
                    await backend.close()
                except Exception:
                    log.exception("closing the %s backend failed", backend.name)

    app = FastAPI(title="tunewise serve", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.router.route_class = _GuardedRoute
    app.state.router, app.state.metrics, app.state.config = router, metrics, config
    app.state.deployments = gateways
    app.state.startup_error = None
    _install_error_handlers(app)

    async def require_key(request: Request) -> None:
        if keys is None:
            return
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise APIError(401, "Missing API key: send the header 'Authorization: Bearer <key>'", code="invalid_api_key")
        if not keys.check(presented.strip()):
            raise APIError(401, "Incorrect API key provided", code="invalid_api_key")

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], route_class=_GuardedRoute)

    @v1.get("/models")
    async def list_models():
        deployed = [gateway.card().to_openai(router.created(name)) for name, gateway in gateways.items()]
        return {"object": "list", "data": [*deployed, *router.cards()]}

    @v1.get("/models/{model:path}")
    async def get_model(model: str):
        if model in gateways:
            return gateways[model].card().to_openai(router.created(model))
        _, card = router.resolve(model)
        return card.to_openai(router.created(model))

    @v1.post("/chat/completions")
    async def chat_completions(request: Request):
        started = time.perf_counter()
        label, route = UNKNOWN_MODEL, None
        try:
            req = _validate(ChatCompletionRequest, await _read_json(request, config.max_body_bytes))
            if req.model in gateways:
                route = gateways[req.model].route(req, request.headers)
                req = req.model_copy(update={"model": route.served})
            backend, _ = router.resolve(req.model)
            label = req.model
            _check_limits(req, config)
            if backend.queue_depth() >= config.max_queue:
                raise RateLimited(f"the server is busy: {config.max_queue} requests are queued for {req.model!r}; retry shortly")
            if req.stream:
                return await _open_stream(backend, req, label, started, config, metrics, route=route)
            try:
                async with asyncio.timeout(config.request_timeout_s):
                    result = await backend.complete(req)
            except TimeoutError:
                raise _timed_out(config) from None
        except APIError as err:
            metrics.observe(label, err.status, time.perf_counter() - started, error_type=err.type)
            if route is not None:
                await route.failed(err, started)
            raise
        except Exception as exc:
            metrics.observe(label, 500, time.perf_counter() - started, error_type="server_error")
            err = _internal(exc)
            if route is not None:
                await route.failed(err, started)
            raise err from exc
        metrics.observe(label, 200, time.perf_counter() - started, usage=result.get("usage"))
        if route is not None:
            result = await route.answered(result, started)
            return JSONResponse(result, headers=route.headers)
        return JSONResponse(result, headers={"x-request-id": str(result["id"])} if result.get("id") else None)

    @v1.post("/feedback")
    async def feedback(request: Request):
        body = _validate(FeedbackBody, await _read_json(request, config.max_body_bytes))
        if body.label is None and body.correct is None and body.score is None:
            raise APIError(400, "feedback needs a label, correct (true/false) or a score (1-5)", param="label")
        gateway = next(iter(gateways.values()), None)
        if gateway is None:
            raise APIError(400, "this server serves no deployment: start it with `tunewise serve --deployment NAME`")
        return await asyncio.to_thread(_record_feedback, gateway.store, body, gateways, metrics)

    @v1.post("/load_lora_adapter")
    async def load_lora_adapter(request: Request):
        body = _validate(LoadAdapterBody, await _read_json(request, config.max_body_bytes))
        name = check_served_name(body.lora_name)
        loader = router.adapter_loader()
        owner = router.table().get(name)
        if owner is not None and owner[0] is not loader:
            raise APIError(400, f"the name {name!r} is already served by the {owner[0].name} backend; choose another lora_name",
                           param="lora_name")
        card = await loader.load_adapter(name, body.lora_path)
        return {"status": "ok", "message": f"Success: LoRA adapter '{name}' added successfully.",
                "model": card.to_openai(router.created(card.id))}

    @v1.post("/unload_lora_adapter")
    async def unload_lora_adapter(request: Request):
        body = _validate(UnloadAdapterBody, await _read_json(request, config.max_body_bytes))
        name = check_served_name(body.lora_name)
        owner = router.table().get(name)
        if owner is None:
            raise APIError(404, f"no adapter named {name!r} is loaded", param="lora_name", code="model_not_found")
        if not owner[0].loads_adapters:
            raise APIError(400, f"{name!r} is not an adapter loaded at run time: it cannot be unloaded", param="lora_name")
        await owner[0].unload_adapter(name)
        router.forget(name)
        return {"status": "ok", "message": f"Success: LoRA adapter '{name}' removed successfully."}

    app.include_router(v1)

    @app.get("/health")
    async def health():
        reports = []
        for backend in router.backends:
            try:
                report = dict(backend.health())
            except Exception as exc:
                log.exception("the health check of the %s backend failed", backend.name)
                report = {"status": "error", "error": type(exc).__name__}
            reports.append({"backend": backend.name, **report})
        if all(r.get("status") == "ok" for r in reports):
            return {"status": "ok", "models": len(router.table())}
        return JSONResponse({"status": "unavailable", "backends": reports}, status_code=503)

    @app.get("/metrics")
    async def scrape():
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    return app


def _record_feedback(store, body: FeedbackBody, gateways: dict, metrics: ServeMetrics) -> dict:
    from tunewise.errors import NotFoundError

    logged = store.get_request_log(body.request_id)
    known = {gateway.id: gateway.name for gateway in gateways.values()}
    if logged is None or logged.deployment_id not in known:
        raise APIError(404, f"no request {body.request_id!r} was logged by a deployment of this server "
                            "(send the x-request-id header of the response)", param="request_id", code="request_not_found")
    try:
        stored = store.add_feedback(body.request_id, label=body.label, correct=body.correct, score=body.score, comment=body.comment)
    except NotFoundError as exc:
        raise APIError(404, str(exc), param="request_id", code="request_not_found") from None
    verdict = "none" if body.correct is None else "correct" if body.correct else "incorrect"
    metrics.feedback.labels(deployment=known[logged.deployment_id], variant=logged.variant, verdict=verdict).inc()
    return {"object": "feedback", "id": stored.id, "request_id": body.request_id, "variant": logged.variant}


async def _open_stream(backend: Backend, req: ChatCompletionRequest, label: str, started: float,
                       config: ServeConfig, metrics: ServeMetrics, *, route=None) -> StreamingResponse:
    """Pulls the first chunk before answering, so that an error the backend raises up front is a plain
    JSON error with its status; later errors can only be one last `error` event.

    For a deployment (`route`), chunks carry the deployment's name and the request's id, and the log row is
    committed before `[DONE]`: a client that saw the end of the stream has its row."""
    deadline = asyncio.get_running_loop().time() + config.request_timeout_s
    chunks = aiter(backend.stream(req))

    async def pull() -> dict | None:
        try:
            async with asyncio.timeout_at(deadline):
                return await anext(chunks)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise _timed_out(config) from None

    try:
        first = await pull()
    except BaseException:
        await _aclose(chunks)
        raise

    async def events() -> AsyncIterator[bytes]:
        status, error_type, usage, first_token = 200, None, None, False
        text: list[str] = []  # choice 0's text, for the deployment's log row
        logged = False
        chunk = first
        try:
            while chunk is not None:
                if route is not None:
                    route.rename(chunk)
                    for choice in chunk.get("choices") or ():
                        if choice.get("index", 0) == 0 and (piece := (choice.get("delta") or {}).get("content")):
                            text.append(piece)
                if chunk.get("usage") is not None and not chunk.get("choices"):
                    usage = chunk["usage"]
                    if req.include_usage:
                        yield _sse(chunk)
                else:
                    if not first_token and any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or ()):
                        first_token = True
                        metrics.first_token(label, time.perf_counter() - started)
                    yield _sse(chunk)
                chunk = await pull()
            if route is not None:
                logged = True
                await route.streamed("".join(text), usage, started)
            yield b"data: [DONE]\n\n"
        except APIError as err:
            status, error_type = err.status, err.type
            if route is not None and not logged:
                logged = True
                await route.streamed("".join(text), usage, started, status=err.status, error=err.message)
            yield _sse(err.body())
        except Exception as exc:
            status, error_type = 500, "server_error"
            if route is not None and not logged:
                logged = True
                await route.streamed("".join(text), usage, started, status=500, error=f"{type(exc).__name__}: {exc}")
            yield _sse(_internal(exc).body())
        except BaseException:
            # The client went away (cancelled) or the response is being closed: count it, as nginx does, as 499.
            status, error_type = 499, "client_closed"
            if route is not None and not logged:
                logged = True
                route.gateway.spawn_log(route.streamed("".join(text), usage, started, status=499, error="the client closed the stream"))
            raise
        finally:
            await _aclose(chunks)
            metrics.observe(label, status, time.perf_counter() - started, error_type=error_type, usage=usage)

    headers = dict(_SSE_HEADERS)
    if route is not None:
        headers.update(route.headers)
    elif first and first.get("id"):
        headers["x-request-id"] = str(first["id"])
    return _ClosingStreamingResponse(events(), media_type="text/event-stream", headers=headers)


async def _aclose(chunks) -> None:
    close = getattr(chunks, "aclose", None)
    if close is None:
        return
    try:
        await close()
    except Exception:
        log.exception("closing a backend stream failed")


def _timed_out(config: ServeConfig) -> APIError:
    return APIError(504, f"the completion took longer than request_timeout_s ({config.request_timeout_s:g} s)", code="timeout")


def _sse(payload: dict) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _internal(exc: BaseException) -> APIError:
    log.error("internal error", exc_info=exc)
    return APIError(500, "internal error")


async def _read_json(request: Request, limit: int):
    """The JSON body, refused with 413 past `limit` bytes, whether announced (Content-Length) or sent anyway."""
    too_large = APIError(413, f"the request body is larger than the server's limit of {limit} bytes (max_body_bytes)")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise APIError(400, "the Content-Length header is not a number")
        if int(declared) > limit:
            raise too_large
    body = bytearray()
    try:
        async for part in request.stream():
            body += part
            if len(body) > limit:
                raise too_large
    except ClientDisconnect:
        raise APIError(400, "the client closed the connection before sending the whole body") from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise APIError(400, "could not parse the JSON body: send a JSON object (Content-Type: application/json)") from None


def _validate(model: type[BaseModel], data):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        param = _param(first.get("loc", ()))
        message = first.get("msg", "invalid value")
        raise APIError(400, f"{param}: {message}" if param else message, param=param) from None


def _param(loc: Iterable) -> str | None:
    """A pydantic location as OpenAI writes a param: `messages[0].content`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _LOC_TAGS.match(str(part)):
            path += ("." if path else "") + str(part)
    return path or None


def _check_limits(req: ChatCompletionRequest, config: ServeConfig) -> None:
    chars = sum(len(m.text()) for m in req.messages)
    if chars > config.max_prompt_chars:
        raise APIError(400, f"the messages hold {chars} characters, more than this server's limit of "
                       f"{config.max_prompt_chars} (max_prompt_chars)", param="messages", code="context_length_exceeded")
    for field in ("max_tokens", "max_completion_tokens"):
        asked = getattr(req, field)
        if asked is not None and asked > config.max_tokens_cap:
            raise APIError(400, f"{field} is {asked}, more than this server's limit of {config.max_tokens_cap} (max_tokens_cap)",
                           param=field)


def _error_response(err: APIError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=getattr(err, "headers", None))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError):
        return _error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            message, code = f"Unknown route: {request.method} {request.url.path}", "unknown_url"
        else:
            message, code = str(exc.detail), None
        err = APIError(exc.status_code, message, code=code)
        return JSONResponse(err.body(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = (exc.errors() or [{}])[0]
        param = _param(first.get("loc", ()))
        return _error_response(APIError(400, first.get("msg", "invalid request"), param=param))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        return _error_response(_internal(exc))


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, ready: threading.Event | None):
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started and self._ready is not None:
            self._ready.set()


def make_server(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, *, ready: threading.Event | None = None,
                log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for `app`; `ready` is set once it listens (see `bound_port` for port 0)."""
    # log_config=None: uvicorn would otherwise run logging.config.dictConfig, which closes every handler the host
    # process has (a notebook's, pytest's); its loggers then use the application's logging setup
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, log_config=None, lifespan="on", timeout_graceful_shutdown=10)
    return _Server(config, ready)


def bound_port(server: uvicorn.Server) -> int:
    """The port a started server listens on (the one the OS picked when asked for port 0)."""
    return server.servers[0].sockets[0].getsockname()[1]


@contextlib.contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0, *, timeout_s: float = 300) -> Iterator[int]:
    """Serve `app` from a background thread while the block runs (loopback and a free port by default); yields the
    port. Raises the app's startup error, or TimeoutError, when it does not start within `timeout_s`. Any FastAPI app
    runs here (the web app too); only `tunewise serve`'s records a startup error."""
    ready = threading.Event()
    server = make_server(app, host, port, ready=ready)
    thread = threading.Thread(target=server.run, name="tunewise-serve", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not ready.wait(0.2):
            failure = getattr(app.state, "startup_error", None)
            if failure is not None:
                raise failure
            if not thread.is_alive() or time.monotonic() > deadline:
                raise TimeoutError(f"the server on {host}:{port} did not start within {timeout_s:g} s")
        yield bound_port(server)
    finally:
        server.should_exit = True
        thread.join(60)


def run_server(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, *, ready: threading.Event | None = None,
               log_level: str = "warning") -> None:
    """Serve `app` until interrupted (Ctrl-C, SIGTERM); blocks the calling thread."""
    make_server(app, host, port, ready=ready, log_level=log_level).run()


__all__ = ["Router", "create_app", "make_server", "bound_port", "running", "run_server", "RateLimited"]

"""A deployment behind `tunewise serve --deployment NAME`: the app calls model NAME, the gateway picks the variant.

Per request: the user id (the body's `user` or `safety_identifier`, else the `X-User-Id` header) picks a
variant through the sticky split of the deployment's current state; the variant's served name answers;
the response says `model: NAME` and carries `x-tunewise-variant` and `x-request-id`; one request-log row
(PII redacted unless the deployment logs raw) is committed before the response leaves, so a client never
holds an answer the log lacks. In shadow mode the baseline answers and sampled copies go to the
candidates in the background, logged as `role="shadow"` rows; nothing they do reaches the client.

The server polls the deployment's version in the store (`deploy.watch_interval_s`), so `tunewise deploy
set --rollback` takes effect without a restart. A variant whose spec changed (a promotion) is loaded while
serving when the server can (prompt recipes and adapters on the local backend, endpoints on the upstream one).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tunewise.deploy.state import SERVED_KIND, Loaded, load
from tunewise.errors import ConfigError
from tunewise.records.deployment import DeploymentState
from tunewise.serve.backend import ModelCard
from tunewise.serve.protocol import APIError, ChatCompletionRequest, completion_id
from tunewise.store.models import utcnow

log = logging.getLogger(__name__)

MAX_SHADOW_IN_FLIGHT = 64  # shadow copies beyond this are skipped (and counted) rather than queued without bound
_BATCH_ROWS = 256


class RequestLogWriter:
    """Commits request-log rows from one thread, many rows per transaction (group commit).

    A request awaits its own row's commit, so durability holds per response; rows that arrive while a
    commit runs share the next one, so 16 concurrent clients cost about one commit per batch instead of
    sixteen serialised ones (SQLite takes one writer at a time).
    """

    def __init__(self, store):
        self.store = store
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="tunewise-request-log", daemon=True)
        self._thread.start()
        self.commits = 0
        self.rows = 0

    async def write(self, row: dict) -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._queue.put((row, done, loop))
        await asyncio.shield(done)  # a client hanging up must not abandon a row half-way

    def close(self, timeout: float = 30) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < _BATCH_ROWS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            try:
                self.store.log_requests([row for row, _, _ in batch])
                self.commits += 1
                self.rows += len(batch)
                outcome = None
            except Exception as exc:  # answered to each waiting request as a 503; the server keeps running
                log.error("writing %d request-log rows failed: %s", len(batch), exc)
                outcome = exc
            for _, done, loop in batch:
                loop.call_soon_threadsafe(_settle, done, outcome)
            if stop:
                return


def _settle(done: asyncio.Future, error: Exception | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


@dataclass
class Route:
    """One request's path through a deployment: who asked, which variant answers under which state."""

    gateway: "DeploymentGateway"
    request: ChatCompletionRequest  # as the client sent it (model = the deployment's name)
    id: str
    variant: str
    spec: str
    served: str
    version: int
    user: str | None
    sticky: bool
    bucket: int
    shadow_candidates: list[tuple[str, str, str]] = field(default_factory=list)  # (variant, spec, served)

    @property
    def headers(self) -> dict[str, str]:
        return {"x-request-id": self.id, "x-tunewise-variant": self.variant, "x-tunewise-deployment-version": str(self.version)}

    def rename(self, body: dict) -> dict:
        """A backend's completion or chunk as the client should see it: the deployment's name and this request's id."""
        body["id"], body["model"] = self.id, self.gateway.name
        return body

    async def answered(self, result: dict, started: float) -> dict:
        """Log the answer (committed before this returns), start the shadow copies; the client's body."""
        self.rename(result)
        text = _first_text(result)
        await self._log(status=200, text=text, usage=result.get("usage"), started=started)
        self.gateway.spawn_shadows(self)
        return result

    async def streamed(self, text: str, usage: dict | None, started: float, *, status: int = 200, error: str | None = None) -> None:
        await self._log(status=status, text=text, usage=usage, started=started, error=error)
        if status == 200:
            self.gateway.spawn_shadows(self)

    async def failed(self, err: APIError, started: float) -> None:
        """Log an error answer; the error then carries the variant and request id headers too."""
        err.headers = {**(getattr(err, "headers", None) or {}), **self.headers}
        await self._log(status=err.status, text=None, usage=None, started=started, error=err.message)

    async def _log(self, *, status: int, text: str | None, usage: dict | None, started: float, error: str | None = None) -> None:
        latency_s = time.perf_counter() - started
        row = self.gateway.row(self, role="served", status=status, text=text, usage=usage, latency_s=latency_s, error=error)
        try:
            await self.gateway.writer.write(row)
        except Exception as exc:
            # The answer exists but its record does not: the client gets an error rather than an unlogged answer.
            raise APIError(503, f"the request log could not be written ({type(exc).__name__}); retry shortly",
                           code="log_unavailable") from exc
        self.gateway.observe(self.variant, "served", status, latency_s)


def _first_text(result: dict) -> str | None:
    choices = result.get("choices") or []
    if not choices:
        return None
    return (choices[0].get("message") or {}).get("content")


class DeploymentGateway:
    """Serves one deployment: routing, request log, shadow copies and the store watcher.

    Example:
        gateway = DeploymentGateway.open("tickets", store=store)
        app = create_app(build_backends(model, **gateway.backend_options()), deployments=[gateway])
    """

    def __init__(self, loaded: Loaded, *, store, owns_store: bool = False, settings=None, hourly_usd: float | None = None,
                 seed: int | None = None):
        from tunewise.config import load_config

        workspace = load_config()
        self.settings = settings or workspace.deploy
        self.hourly_usd = workspace.hardware.hourly_usd if hourly_usd is None else hourly_usd
        self.pricing_file = workspace.advise.pricing_file
        self.store, self.owns_store = store, owns_store
        self.id, self.name = loaded.record.id, loaded.record.name
        self.version, self.state = loaded.record.version, loaded.state
        self._split = self.state.split()
        self.served: dict[str, str] = {}  # variant spec -> served name in this server
        self.unavailable: dict[str, str] = {}  # variant spec -> why this server cannot answer it
        self._recipes: dict[str, str] = {}
        self._upstreams: list[str] = []
        for variant in self.state.variants():
            self._plan(variant.spec, f"{self.name}.{variant.name}")
        self.router = None
        self.writer: RequestLogWriter | None = None
        self.metrics = None
        self._rng = random.Random(seed)
        self._watcher: asyncio.Task | None = None
        self._shadows: set[asyncio.Task] = set()
        self.shadow_skipped = 0
        self._prices: dict[str, tuple[float, float] | None] = {}

    @classmethod
    def open(cls, name: str, *, store=None, **options) -> "DeploymentGateway":
        """The gateway of deployment `name` (by name, id or prefix); opens the workspace's store when none is given."""
        from tunewise.store import Store

        owns = store is None
        store = store or Store.open()
        try:
            return cls(load(name, store=store), store=store, owns_store=owns, **options)
        except BaseException:
            if owns:
                store.close()
            raise

    # -- what the server must serve ------------------------------------------------------------
    def _plan(self, spec: str, served: str) -> None:
        if spec in self.served:
            return
        if spec.startswith(f"{SERVED_KIND}:"):
            self.served[spec] = spec.partition(":")[2]
        elif spec.startswith("endpoint:"):
            self.served[spec] = served
            self._upstreams.append(f"{served}={spec[len('endpoint:'):]}")
        else:
            self.served[spec] = served
            self._recipes[served] = spec

    def backend_options(self) -> dict[str, Any]:
        """What `build_backends` needs so that every variant has a served name (recipes, upstreams, model, data)."""
        return {"recipes": dict(self._recipes), "upstreams": list(self._upstreams), "model": self.state.model,
                "recipe_data": self.state.recipe_data}

    def card(self) -> ModelCard:
        return ModelCard(self.name, "deployment", None, source=self.state.summary())

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self, router, metrics=None) -> None:
        """Called once the backends started: checks every variant is served, starts the log writer and the watcher."""
        self.router, self.metrics = router, metrics
        table = router.table()
        for spec, served in self.served.items():
            if served not in table:
                why = router_missing(router, served)
                if spec == self.state.baseline.spec:
                    raise ConfigError(f"deployment {self.name}: the baseline {spec} cannot be served: {why}")
                self.unavailable[spec] = why
                log.warning("deployment %s: %s is not served (%s); its users get the baseline", self.name, spec, why)
        self.writer = RequestLogWriter(self.store)
        self._watcher = asyncio.create_task(self._watch(), name=f"watch-{self.name}")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        if self._shadows:
            # Shadow copies in flight get a short grace to log their row; a shutdown does not wait on a slow candidate.
            await asyncio.wait(list(self._shadows), timeout=5)
            for task in list(self._shadows):
                task.cancel()
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)
        if self.owns_store:
            self.store.close()

    async def _watch(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.settings.watch_interval_s)
            try:
                version = await asyncio.to_thread(self.store.deployment_version, self.id)
                if version is not None and version != self.version:
                    await self.reload()
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:  # once per outage, not four times a second
                    log.warning("deployment %s: checking the store for changes failed: %s", self.name, exc)
                failing = True

    async def reload(self) -> None:
        """Take the deployment's current state from the store, loading any variant this server does not serve yet."""
        loaded = await asyncio.to_thread(load, self.id, store=self.store)
        state, version = loaded.state, loaded.record.version
        for variant in state.variants():
            if variant.spec not in self.served and variant.spec not in self.unavailable:
                await self._add(variant.spec, f"{self.name}.{variant.name}-v{version}")
        # One assignment each, in the loop's thread: a request sees the old state or the new one, never a mix.
        self._split, self.state, self.version = state.split(), state, version
        log.info("deployment %s: version %d: %s", self.name, version, state.summary())

    async def _add(self, spec: str, served: str) -> None:
        try:
            if spec.startswith(f"{SERVED_KIND}:"):
                name = spec.partition(":")[2]
                if name not in self.router.table():
                    raise ConfigError(router_missing(self.router, name))
                self.served[spec] = name
                return
            if spec.startswith("endpoint:"):
                from tunewise.serve.upstream import UpstreamBackend, parse_upstream

                upstream = next((b for b in self.router.backends if isinstance(b, UpstreamBackend)), None)
                if upstream is None:
                    raise ConfigError("this server has no upstream backend: restart it to serve an endpoint variant")
                name, target = parse_upstream(f"{served}={spec[len('endpoint:'):]}")
                upstream.routes[name] = target
                self.served[spec] = name
                return
            local = next((b for b in self.router.backends if hasattr(b, "add_recipe")), None)
            if local is None:
                raise ConfigError("this server has no local backend: restart it to serve a local variant")
            await local.add_recipe(served, spec)
            self.served[spec] = served
        except Exception as exc:
            why = getattr(exc, "message", None) or str(exc)
            self.unavailable[spec] = why
            log.warning("deployment %s: cannot serve %s while running (%s); its users get the baseline until a restart",
                        self.name, spec, why)

    # -- routing -------------------------------------------------------------------------------
    def route(self, request: ChatCompletionRequest, headers) -> Route:
        user = request.user or (request.model_extra or {}).get("safety_identifier") or headers.get("x-user-id") or None
        user = str(user) if user is not None else None
        state, version, split = self.state, self.version, self._split
        pick = split.pick(user, rng=self._rng)
        variant = state.variant(pick.variant)
        if variant.spec in self.unavailable:
            variant = state.baseline  # logged as the baseline: the row says who really answered
        served = self.served.get(variant.spec)
        if served is None:
            raise APIError(503, f"deployment {self.name}: the variant {variant.name} is not served yet; retry shortly")
        shadows = []
        if state.mode == "shadow":
            shadows = [(c.name, c.spec, self.served[c.spec]) for c in state.candidates
                       if c.spec in self.served and c.spec not in self.unavailable]
        return Route(self, request, completion_id(), variant.name, variant.spec, served, version, user, pick.sticky, pick.bucket, shadows)

    def spawn_log(self, coroutine) -> None:
        """Finish logging in the background (a stream whose client hung up can no longer await it)."""
        task = asyncio.create_task(coroutine)
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    # -- shadow --------------------------------------------------------------------------------
    def spawn_shadows(self, route: Route) -> None:
        for name, spec, served in route.shadow_candidates:
            if self._rng.random() >= self.state.shadow_sample:
                continue
            if len(self._shadows) >= MAX_SHADOW_IN_FLIGHT:
                self.shadow_skipped += 1
                continue
            task = asyncio.create_task(self._shadow(route, name, spec, served))
            self._shadows.add(task)
            task.add_done_callback(self._shadows.discard)

    async def _shadow(self, route: Route, name: str, spec: str, served: str) -> None:
        started = time.perf_counter()
        request = route.request.model_copy(update={"model": served, "stream": False, "stream_options": None})
        text, usage, status, error = None, None, 200, None
        try:
            backend, _ = self.router.resolve(served)
            result = await backend.complete(request)
            text, usage = _first_text(result), result.get("usage")
        except asyncio.CancelledError:
            status, error = 499, "cancelled when the server stopped"
        except APIError as err:
            status, error = err.status, err.message
        except Exception as exc:  # a shadow failure is recorded, never raised: the client has its answer already
            status, error = 500, f"{type(exc).__name__}: {exc}"
        latency_s = time.perf_counter() - started
        shadow = Route(self, route.request, completion_id(), name, spec, served, route.version, route.user, route.sticky, route.bucket)
        row = self.row(shadow, role="shadow", status=status, text=text, usage=usage, latency_s=latency_s, error=error)
        row["shadow_of"] = route.id
        try:
            await self.writer.write(row)
        except Exception as exc:
            log.warning("deployment %s: a shadow row could not be written: %s", self.name, exc)
        self.observe(name, "shadow", status, latency_s)

    # -- the log row ---------------------------------------------------------------------------
    def row(self, route: Route, *, role: str, status: int, text: str | None, usage: dict | None, latency_s: float,
            error: str | None = None) -> dict:
        from tunewise.data.pii import find_pii, redact

        raw = self.state.log_raw
        messages = route.request.chat()
        found = 0
        if not raw:
            redacted = []
            for message in messages:
                content, matches = redact(message["content"])
                found += len(matches)
                redacted.append({**message, "content": content})
            messages = redacted
            if text:
                text, matches = redact(text)
                found += len(matches)
        user = route.user
        if user and not raw and find_pii(user):
            # An app that sends an email as the user id: keep stickiness countable without writing the address.
            user = "user-" + hashlib.blake2b(user.encode(), digest_size=8).hexdigest()
            found += 1
        usage = usage or {}
        return {
            "id": route.id, "deployment_id": self.id, "version": route.version, "variant": route.variant, "spec": route.spec,
            "role": role, "shadow_of": None, "user_id": user, "sticky": route.sticky, "bucket": route.bucket,
            "stream": bool(route.request.stream) and role == "served", "messages": messages, "response": text,
            "redacted": not raw, "pii_found": found, "status": status, "error": error, "latency_ms": latency_s * 1000,
            "prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": usage.get("completion_tokens"),
            "cost_usd": self.cost(route.spec, latency_s, usage) if status < 400 else None, "created_at": utcnow(),
        }

    def cost(self, spec: str, latency_s: float, usage: dict) -> float | None:
        """What one answer cost: an endpoint's tokens at the pricing catalog's rates; a local variant's latency at
        `hardware.hourly_usd` (an upper bound when requests share a batch, which they do under load)."""
        if not spec.startswith("endpoint:"):
            return latency_s * self.hourly_usd / 3600
        from tunewise.evaluate.specs import parse_spec
        from tunewise.pricing import token_prices

        if spec not in self._prices:
            self._prices[spec] = token_prices(parse_spec(spec).params.get("model") or "", self.pricing_file)
        price = self._prices[spec]
        if price is None:
            return None
        price_in, price_out = price
        return ((usage.get("prompt_tokens") or 0) * price_in + (usage.get("completion_tokens") or 0) * price_out) / 1e6

    def observe(self, variant: str, role: str, status: int, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.deployment(self.name, variant, role, status, seconds)


def router_missing(router, name: str) -> str:
    for backend in router.backends:
        if (why := backend.missing(name)) is not None:
            return why.message
    return f"no backend serves {name!r}"


def merge_options(model: str | None, options: dict, gateways: list[DeploymentGateway]) -> tuple[str | None, dict]:
    """`build_backends` options with every deployment's variants added; refuses deployments that need two base models."""
    options = dict(options)
    recipes = dict(options.get("recipes") or {})
    upstreams = list(options.get("upstreams") or ())
    for gateway in gateways:
        wanted = gateway.backend_options()
        if wanted["model"] and model and wanted["model"] != model:
            raise ConfigError(f"deployment {gateway.name} runs on {wanted['model']} but this server serves {model}; "
                              "start one server per base model")
        model = model or wanted["model"]
        data = options.get("recipe_data")
        if wanted["recipe_data"] and data and wanted["recipe_data"] != data:
            raise ConfigError(f"deployment {gateway.name} takes its recipe examples from {wanted['recipe_data']}, "
                              f"not --recipe-data {data}")
        options["recipe_data"] = data or wanted["recipe_data"]
        for name, spec in wanted["recipes"].items():
            if name in recipes:
                raise ConfigError(f"--recipe {name}: the name is taken by deployment {gateway.name}")
            recipes[name] = spec
        upstreams += wanted["upstreams"]
    options["recipes"], options["upstreams"] = recipes, upstreams
    return model, options


__all__ = ["DeploymentGateway", "RequestLogWriter", "Route", "merge_options"]

"""A backend that forwards to OpenAI-compatible servers: `tunewise serve --upstream NAME=URL#MODEL`.

Each served name maps to an `Upstream`: a base URL, the model name to ask it for, and an API key.

URL convention (the same as `endpoint:URL#MODEL` candidates and the OpenAI client's `base_url`): the
URL is the API base, ending in `/v1`; requests go to `{url}/chat/completions`.

How upstream answers reach the client:

- a completion or chunk comes back with `model` set to the local name;
- a completion without `usage` gets zeros (an upstream that does not count is not charged for);
- a stream always ends with one usage-only chunk, as `Backend.stream` promises: `stream_options.include_usage`
  is forced on upstream, and if the upstream still sends no usage chunk, the last usage seen in a chunk,
  or zeros, is sent;
- upstream 4xx keep their status and message (the client's request is at fault), except 401/403, which
  mean tunewise's own key for the upstream is wrong: 502;
- upstream 503 and 504 keep their status (clients retry those); any other 5xx is a 502 naming the
  upstream; unreachable (connect error or connect timeout) is 503, no answer in time is 504, a connection
  broken mid-answer is 502.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from tunewise.errors import ConfigError, EvaluationError
from tunewise.serve.backend import Backend, ModelCard
from tunewise.serve.protocol import APIError, ChatCompletionRequest, completion_id, model_not_found, usage
from tunewise.serve.protocol import chunk as make_chunk


@dataclass(frozen=True)
class Upstream:
    """Where one served name goes."""

    url: str  # the API base, ending in /v1
    model: str  # the model name the upstream knows
    api_key: str | None = None
    kind: str = "upstream"
    parent: str | None = None  # for the model list; None: the upstream model, when it differs from the served name
    source: str | None = None  # for the model list; None: the URL

    def card(self, name: str) -> ModelCard:
        parent = self.parent if self.parent is not None else (self.model if self.model != name else None)
        return ModelCard(id=name, kind=self.kind, parent=parent, source=self.source or self.url)


def api_key_for(url: str) -> str | None:
    """The key sent to `url`: the same environment variables, and the same care, as `endpoint:` candidates."""
    from tunewise.evaluate.candidates import endpoint_headers

    return endpoint_headers(url).get("Authorization", "").removeprefix("Bearer ") or None


def api_base(url: str) -> str:
    """`url` without a trailing slash or `/chat/completions`, so that either spelling works."""
    return url.rstrip("/").removesuffix("/chat/completions").rstrip("/")


def parse_upstream(value: str) -> tuple[str, Upstream]:
    """`NAME=URL#MODEL` (or `URL#MODEL`, served as MODEL) -> (name, Upstream); raises ConfigError naming the value.

    Example: parse_upstream("mini=http://localhost:8000/v1#gpt-4o-mini")
             -> ("mini", Upstream(url="http://localhost:8000/v1", model="gpt-4o-mini"))
    """
    from tunewise.evaluate.specs import parse_spec

    text = value.strip()
    name, eq, rest = text.partition("=")
    # A URL can hold "=" (a query string); a name cannot hold ":" or "/", so that tells them apart.
    if not eq or ":" in name or "/" in name:
        name, rest = "", text
    try:
        spec = parse_spec("endpoint:" + rest)
    except EvaluationError as exc:
        reason = (str(exc).partition("': ")[2] or str(exc)).split(", e.g.")[0]  # parse_spec speaks of candidates
        raise ConfigError(f"upstream {value!r}: {reason} (expected NAME=URL#MODEL, e.g. mini=http://localhost:8000/v1#gpt-4o-mini)") from None
    url, model = api_base(spec.target), spec.params["model"]
    name = name.strip() or model
    return name, Upstream(url=url, model=model, api_key=api_key_for(url))


def upstream_error(url: str, status: int, content: bytes | str) -> APIError:
    """An upstream's error answer as the APIError the client sees (the status mapping is in the module docstring)."""
    message, type_, param, code = _error_fields(content)
    if status in (401, 403):
        return APIError(502, f"upstream {url} refused tunewise's API key ({status}: {message}); set TUNEWISE_ENDPOINT_API_KEY", code="upstream_auth")
    if status < 500:
        # OpenAI's types are snake_case; vLLM's are exception class names, which OpenAI clients do not know
        return APIError(status, message, type=type_ if type_ and type_.islower() else None, param=param, code=code)
    return APIError(status if status in (503, 504) else 502, f"upstream {url} answered {status}: {message}", code="upstream_error")


def _error_fields(content: bytes | str) -> tuple[str, str | None, str | None, str | None]:
    """(message, type, param, code) from `{"error": {...}}` (OpenAI, vLLM), `{"message"}` (older vLLM),
    `{"detail"}` (FastAPI) or plain text."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    try:
        body = json.loads(text)
    except ValueError:
        return (text.strip()[:500] or "no message"), None, None, None
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail") or json.dumps(error)[:500]
        code = error.get("code")
        # OpenAI's code is a string identifier; vLLM's is the HTTP status again, which says nothing new.
        return str(message), _str_or_none(error.get("type")), _str_or_none(error.get("param")), code if isinstance(code, str) else None
    return str(error)[:500], None, None, None


def _str_or_none(value) -> str | None:
    return value if isinstance(value, str) else None


def transport_error(url: str, exc: httpx.TransportError, timeout_s: float) -> APIError:
    """A failure to talk to `url` as the APIError the client sees."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return APIError(503, f"upstream {url} unreachable: {str(exc) or type(exc).__name__}", code="upstream_unreachable")
    if isinstance(exc, httpx.TimeoutException):
        return APIError(504, f"upstream {url} did not answer within {timeout_s:g} s", code="upstream_timeout")
    return APIError(502, f"upstream {url} broke the connection: {str(exc) or type(exc).__name__}", code="upstream_error")


class UpstreamBackend(Backend):
    """Serves each name in `routes` by forwarding to its upstream.

    `transport` replaces the network (tests pass `httpx.ASGITransport(app)`); `timeout_s` bounds each read,
    so a long stream may take longer in total.
    """

    name = "upstream"

    def __init__(self, routes: dict[str, Upstream], *, timeout_s: float = 600.0, connect_timeout_s: float = 10.0,
                 max_connections: int = 256, transport: httpx.AsyncBaseTransport | None = None):
        self.routes = dict(routes)
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self.max_connections, self.transport = max_connections, transport
        self.client: httpx.AsyncClient | None = None
        self.in_flight = 0
        self.last_error: str | None = None

    # -- lifecycle --

    async def start(self) -> None:
        if self.client is None:
            self.client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s),
                limits=httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=32),
                transport=self.transport,
            )

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def health(self) -> dict:
        if self.client is None:
            return {"status": "stopped"}
        report: dict = {"status": "ok", "upstreams": sorted({u.url for u in self.routes.values()})}
        if self.last_error:
            report["last_error"] = self.last_error  # informative only: one failed request must not take the server out
        return report

    def queue_depth(self) -> int:
        return self.in_flight

    def models(self) -> list[ModelCard]:
        return [upstream.card(name) for name, upstream in self.routes.items()]

    # -- requests --

    def _route(self, request: ChatCompletionRequest) -> tuple[Upstream, dict, dict]:
        upstream = self.routes.get(request.model)
        if upstream is None:
            raise model_not_found(request.model)
        if self.client is None:
            raise APIError(503, f"the {self.name} backend is not started")
        body = request.model_dump(exclude_none=True)
        body["model"] = upstream.model
        headers = {"Authorization": f"Bearer {upstream.api_key}"} if upstream.api_key else {}
        return upstream, body, headers

    def _failed(self, error: APIError) -> APIError:
        if error.status >= 500:
            self.last_error = error.message
        return error

    async def complete(self, request: ChatCompletionRequest) -> dict:
        upstream, body, headers = self._route(request)
        body["stream"] = False
        body.pop("stream_options", None)  # OpenAI refuses stream_options without stream
        self.in_flight += 1
        try:
            try:
                response = await self.client.post(f"{upstream.url}/chat/completions", json=body, headers=headers)
            except httpx.TransportError as exc:
                raise self._failed(transport_error(upstream.url, exc, self.timeout_s)) from None
            if response.status_code != 200:
                raise self._failed(upstream_error(upstream.url, response.status_code, response.content))
            try:
                data = response.json()
            except ValueError:
                data = None
            if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
                raise self._failed(APIError(502, f"upstream {upstream.url} answered something that is not a chat completion", code="upstream_error"))
            data["model"] = request.model
            if not isinstance(data.get("usage"), dict):
                data["usage"] = usage(0, 0)
            self.last_error = None
            return data
        finally:
            self.in_flight -= 1

    async def stream(self, request: ChatCompletionRequest) -> AsyncIterator[dict]:
        upstream, body, headers = self._route(request)
        body["stream"] = True
        body["stream_options"] = {**body.get("stream_options", {}), "include_usage": True}
        self.in_flight += 1
        try:
            async with self.client.stream("POST", f"{upstream.url}/chat/completions", json=body, headers=headers) as response:
                if response.status_code != 200:
                    raise self._failed(upstream_error(upstream.url, response.status_code, await response.aread()))
                final = None
                seen_usage, last = None, {}
                async for chunk in _sse_json(response, upstream.url):
                    if "choices" not in chunk and ("error" in chunk or chunk.get("object") == "error"):
                        # vLLM reports a failure after the stream began as an error event, nested or (older) flat
                        error = chunk.get("error", chunk)
                        status = error.get("code") if isinstance(error, dict) else None
                        raise self._failed(upstream_error(upstream.url, _status(status), json.dumps(chunk)))
                    chunk["model"] = request.model
                    last = chunk
                    if isinstance(chunk.get("usage"), dict):
                        seen_usage = chunk["usage"]
                    if not chunk.get("choices"):
                        # the usage chunk is held back so that it is the last one; an empty keep-alive carries nothing
                        if isinstance(chunk.get("usage"), dict):
                            final = chunk
                        continue
                    yield chunk
            self.last_error = None
            if final is None:
                final = make_chunk(last.get("id") or completion_id(), request.model, usage_=seen_usage or usage(0, 0), created=last.get("created"))
            yield final
        except httpx.TransportError as exc:
            raise self._failed(transport_error(upstream.url, exc, self.timeout_s)) from None
        finally:
            self.in_flight -= 1


async def _sse_json(response: httpx.Response, url: str) -> AsyncIterator[dict]:
    """The JSON objects of a server-sent event stream, `[DONE]` skipped (the gateway writes its own)."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line:
            field, _, value = line.partition(":")
            if field == "data":
                data.append(value.removeprefix(" "))
            continue
        if not data:
            continue  # a blank line after a comment or an event without data
        payload, data = "\n".join(data), []
        if payload.strip() == "[DONE]":
            continue
        try:
            event = json.loads(payload)
        except ValueError:
            raise APIError(502, f"upstream {url} sent an event that is not JSON: {payload[:200]!r}", code="upstream_error") from None
        if isinstance(event, dict):
            yield event
    if data and "\n".join(data).strip() != "[DONE]":
        # a last event without its blank line: still one event
        try:
            event = json.loads("\n".join(data))
        except ValueError:
            return
        if isinstance(event, dict):
            yield event


def _status(value) -> int:
    return value if isinstance(value, int) and 400 <= value < 600 else 500


__all__ = ["Upstream", "UpstreamBackend", "parse_upstream", "api_key_for", "api_base", "upstream_error", "transport_error"]

"""The HTTP gateway of `tunewise serve`, driven by the official `openai` client against a fake backend.

Everything runs in-process over httpx's ASGI transport (no socket), except one test over real loopback
uvicorn; the disconnect test speaks ASGI directly, because the in-process transport buffers responses.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import openai
import pytest

from tunewise.errors import ConfigError
from tunewise.serve import protocol
from tunewise.serve.api import bound_port, create_app, make_server
from tunewise.serve.backend import Backend, ModelCard
from tunewise.serve.config import ServeConfig
from tunewise.serve.keys import KeyRing, add_key, hash_key
from tunewise.serve.protocol import APIError, ChatCompletionRequest

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


@pytest.fixture
def anyio_backend():
    return "asyncio"


class FakeBackend(Backend):
    """Replies with the last user message's words reversed (choice i > 0 gets ' #i'); a token is a word.

    Special names: "vanishing" raises model_not_found (an adapter unloaded between routing and running),
    "exploding" raises RuntimeError, "midway" fails after its first content chunk."""

    name = "fake"

    def __init__(self, names=("fake-base",), *, delay: float = 0.0, depth: int = 0, healthy: bool = True, loads: bool = False,
                 name: str = "fake"):
        self.name = name
        self.cards = {n: ModelCard(n, "base", source=f"/models/{n}") for n in names}
        self.delay, self.depth, self.healthy, self.loads = delay, depth, healthy, loads
        self.started = self.closed = False
        self.streams_opened = self.streams_closed = 0
        self.stream_finished = False
        self.stream_tokens_sent = 0

    def models(self):
        return list(self.cards.values())

    @property
    def loads_adapters(self):
        return self.loads

    async def load_adapter(self, name, path):
        if not Path(path).exists():
            raise APIError(400, f"no adapter at {path}", param="lora_path")
        self.cards[name] = ModelCard(name, "adapter", parent="fake-base", source=path)
        return self.cards[name]

    async def unload_adapter(self, name):
        del self.cards[name]

    def queue_depth(self):
        return self.depth

    def health(self):
        return {"status": "ok"} if self.healthy else {"status": "loading", "detail": "weights not loaded"}

    async def start(self):
        self.started = True

    async def close(self):
        self.closed = True

    def _choices(self, req: ChatCompletionRequest) -> list[tuple[list[str], str]]:
        if req.model == "vanishing":
            raise protocol.model_not_found(req.model)
        if req.model == "exploding":
            raise RuntimeError("secret internal detail")
        last = [m.text() for m in req.messages if m.role == "user"][-1]
        choices = []
        for i in range(req.n):
            text, reason = " ".join(reversed(last.split())) + (f" #{i}" if i else ""), "stop"
            for stop in req.stop_sequences():
                if stop in text:
                    text = text[: text.index(stop)]
            words = text.split()
            limit = req.token_limit(16)
            if len(words) > limit:
                words, reason = words[:limit], "length"
            choices.append((words, reason))
        return choices

    def _prompt_tokens(self, req):
        return sum(len(m.text().split()) for m in req.messages)

    async def complete(self, req):
        choices = self._choices(req)
        await asyncio.sleep(self.delay)
        texts = [(" ".join(words), reason) for words, reason in choices]
        return protocol.completion(req.model, texts, self._prompt_tokens(req), sum(len(w) for w, _ in choices))

    async def stream(self, req):
        self.streams_opened += 1
        try:
            choices = self._choices(req)
            cid = protocol.completion_id()
            for index, (words, reason) in enumerate(choices):
                yield protocol.chunk(cid, req.model, index=index, delta={"role": "assistant", "content": ""})
                for k, word in enumerate(words):
                    await asyncio.sleep(self.delay)
                    yield protocol.chunk(cid, req.model, index=index, delta={"content": word if k == 0 else " " + word})
                    self.stream_tokens_sent += 1
                    if req.model == "midway":
                        raise APIError(500, "the model ran out of memory")
                yield protocol.chunk(cid, req.model, index=index, finish_reason=reason)
            yield protocol.chunk(cid, req.model, usage_=protocol.usage(self._prompt_tokens(req), sum(len(w) for w, _ in choices)))
            self.stream_finished = True
        finally:
            self.streams_closed += 1


@asynccontextmanager
async def served(*backends: Backend, config: ServeConfig | None = None, keys: KeyRing | None = None, api_key: str = "x"):
    app = create_app(list(backends), config, keys=keys)
    # ASGITransport does not run the lifespan: enter it here, as uvicorn would.
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            # max_retries=0: the client would otherwise retry 429s and 5xx and hide what the server answered.
            client = openai.AsyncOpenAI(base_url="http://test/v1", api_key=api_key, http_client=http, max_retries=0)
            yield client, http


def user(text: str) -> list[dict]:
    return [{"role": "system", "content": "be terse"}, {"role": "user", "content": text}]


def sse_events(text: str) -> list[str]:
    assert text.endswith("\n\n")
    events = text.split("\n\n")[:-1]
    assert all(e.startswith("data: ") for e in events), events
    return [e[len("data: "):] for e in events]


async def test_chat_completion_text_usage_and_request_id():
    backend = FakeBackend()
    async with served(backend) as (client, _):
        raw = await client.chat.completions.with_raw_response.create(model="fake-base", messages=user("hello big world"))
        reply = raw.parse()
    assert backend.started and backend.closed  # the lifespan started and closed the backend
    assert reply.object == "chat.completion" and reply.model == "fake-base"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "world big hello"
    assert reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (5, 3, 8)
    assert raw.headers["x-request-id"] == reply.id


async def test_stream_matches_the_completion_and_usage_comes_only_when_asked():
    async with served(FakeBackend()) as (client, http):
        plain = await client.chat.completions.create(model="fake-base", messages=user("one two three four"))
        stream = await client.chat.completions.create(model="fake-base", messages=user("one two three four"), stream=True,
                                                      stream_options={"include_usage": True})
        chunks = [c async for c in stream]
        quiet = [c async for c in await client.chat.completions.create(model="fake-base", messages=user("one two three four"), stream=True)]
        raw = await http.post("/v1/chat/completions", json={"model": "fake-base", "messages": user("a b"), "stream": True})

    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in with_choices) == plain.choices[0].message.content == "four three two one"
    assert with_choices[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    assert len({c.id for c in chunks}) == 1
    # The usage chunk is the last one, has no choices, and counts what the plain completion counted.
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump() == plain.usage.model_dump()
    assert all(c.choices and c.usage is None for c in quiet)
    assert "".join(c.choices[0].delta.content or "" for c in quiet) == "four three two one"

    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/event-stream")
    events = sse_events(raw.text)
    assert events[-1] == "[DONE]"
    bodies = [json.loads(e) for e in events[:-1]]
    assert [b["object"] for b in bodies] == ["chat.completion.chunk"] * len(bodies)
    assert all(b["choices"] for b in bodies)  # no usage chunk: the client did not ask
    assert raw.headers["x-request-id"] == bodies[0]["id"]


async def test_n_choices_stop_sequences_and_max_tokens():
    async with served(FakeBackend()) as (client, _):
        two = await client.chat.completions.create(model="fake-base", messages=user("red green blue"), n=2)
        stopped = await client.chat.completions.create(model="fake-base", messages=user("red green blue"), stop=["green"])
        short = await client.chat.completions.create(model="fake-base", messages=user("red green blue"), max_tokens=2)
        stream = await client.chat.completions.create(model="fake-base", messages=user("red green blue"), n=2, stream=True)
        texts = {0: "", 1: ""}
        async for c in stream:
            for choice in c.choices:
                texts[choice.index] += choice.delta.content or ""
    assert [(c.index, c.message.content) for c in two.choices] == [(0, "blue green red"), (1, "blue green red #1")]
    assert two.usage.completion_tokens == 7
    assert (stopped.choices[0].message.content, stopped.choices[0].finish_reason) == ("blue", "stop")
    assert (short.choices[0].message.content, short.choices[0].finish_reason) == ("blue green", "length")
    assert texts == {0: "blue green red", 1: "blue green red #1"}


async def test_errors_become_openai_exceptions():
    config = ServeConfig(max_prompt_chars=100, max_tokens_cap=64)
    async with served(FakeBackend(["fake-base", "vanishing", "exploding", "midway"]), config=config) as (client, _):
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model="nope", messages=user("hi"))
        with pytest.raises(openai.BadRequestError) as hot:
            await client.chat.completions.create(model="fake-base", messages=user("hi"), temperature=5)
        with pytest.raises(openai.BadRequestError) as role:
            await client.chat.completions.create(model="fake-base", messages=[{"role": "robot", "content": "hi"}])
        with pytest.raises(openai.BadRequestError) as long_prompt:
            await client.chat.completions.create(model="fake-base", messages=user("x" * 101))
        with pytest.raises(openai.BadRequestError) as greedy:
            await client.chat.completions.create(model="fake-base", messages=user("hi"), max_tokens=65)
        with pytest.raises(openai.BadRequestError) as greedy_new:
            await client.chat.completions.create(model="fake-base", messages=user("hi"), max_completion_tokens=65)
        # An error the backend raises before its first chunk is a plain error response, not a broken stream.
        with pytest.raises(openai.NotFoundError) as vanished:
            await client.chat.completions.create(model="vanishing", messages=user("hi"), stream=True)
        with pytest.raises(openai.InternalServerError) as boom:
            await client.chat.completions.create(model="exploding", messages=user("hi"))
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="exploding", messages=user("hi"), stream=True)
        # After the stream started the status is already 200: the error is the last event.
        seen = []
        with pytest.raises(openai.APIError) as midway:
            async for c in await client.chat.completions.create(model="midway", messages=user("a b c"), stream=True):
                seen.append(c)

    assert missing.value.status_code == 404 and missing.value.code == "model_not_found" and missing.value.param == "model"
    assert hot.value.param == "temperature" and "less than or equal to 2" in hot.value.message
    assert role.value.param == "messages[0].role"
    assert long_prompt.value.code == "context_length_exceeded" and long_prompt.value.param == "messages"
    assert greedy.value.param == "max_tokens" and "64" in greedy.value.message
    assert greedy_new.value.param == "max_completion_tokens"
    assert vanished.value.code == "model_not_found"
    assert boom.value.status_code == 500 and boom.value.body["message"] == "internal error"
    assert "secret" not in json.dumps(boom.value.body) and "Traceback" not in boom.value.response.text
    assert "ran out of memory" in midway.value.message and len(seen) == 2


async def test_raw_http_errors_body_limits_json_routes_and_timeout():
    config = ServeConfig(max_body_bytes=2048, request_timeout_s=0.05)
    async with served(FakeBackend(), FakeBackend(["slow"], delay=1.0, name="slow"), config=config) as (client, http):
        big = {"model": "fake-base", "messages": user("word " * 1000)}
        announced = await http.post("/v1/chat/completions", json=big)

        async def chunked():  # no Content-Length: the limit must hold on the bytes actually read
            for _ in range(10):
                yield b" " * 1024

        unannounced = await http.post("/v1/chat/completions", content=chunked(), headers={"content-type": "application/json"})
        bad_json = await http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
        not_object = await http.post("/v1/chat/completions", json=["a"])
        unknown_route = await http.get("/v1/nothing-here")
        wrong_method = await http.get("/v1/chat/completions")
        with pytest.raises(openai.InternalServerError) as slow:
            await client.chat.completions.create(model="slow", messages=user("hi"))

    assert announced.status_code == unannounced.status_code == 413
    assert announced.json()["error"]["type"] == "invalid_request_error" and "2048" in announced.json()["error"]["message"]
    assert bad_json.status_code == 400 and "could not parse the JSON body" in bad_json.json()["error"]["message"]
    assert not_object.status_code == 400 and set(not_object.json()["error"]) == {"message", "type", "param", "code"}
    assert unknown_route.status_code == 404 and unknown_route.json()["error"]["code"] == "unknown_url"
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()
    assert slow.value.status_code == 504 and slow.value.code == "timeout"


async def test_api_keys_guard_the_v1_routes_only(tmp_path):
    key = add_key(tmp_path / "keys")
    keys = KeyRing.load(tmp_path / "keys")
    async with served(FakeBackend(), keys=keys, api_key="wrong") as (bad, http):
        with pytest.raises(openai.AuthenticationError) as refused:
            await bad.chat.completions.create(model="fake-base", messages=user("hi"))
        with pytest.raises(openai.AuthenticationError):
            await bad.models.list()
        no_header = await http.get("/v1/models")
        good = openai.AsyncOpenAI(base_url="http://test/v1", api_key=key, http_client=http, max_retries=0)
        reply = await good.chat.completions.create(model="fake-base", messages=user("hi there"))
        health, scrape = await http.get("/health"), await http.get("/metrics")
    assert refused.value.code == "invalid_api_key"
    assert no_header.status_code == 401 and no_header.json()["error"]["code"] == "invalid_api_key"
    assert reply.choices[0].message.content == "there hi"
    assert health.status_code == 200 and scrape.status_code == 200


async def test_queue_full_answers_429_with_retry_after():
    async with served(FakeBackend(depth=4), config=ServeConfig(max_queue=4)) as (client, _):
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="fake-base", messages=user("hi"))
    assert limited.value.status_code == 429 and limited.value.response.headers["retry-after"] == "1"


async def test_models_list_and_retrieve():
    backend = FakeBackend(["fake-base"])
    backend.cards["fake-lora"] = ModelCard("fake-lora", "adapter", parent="fake-base", source="/runs/7/adapter")
    async with served(backend, FakeBackend(["other/model"], name="other")) as (client, _):
        listed = await client.models.list()
        lora = await client.models.retrieve("fake-lora")
        slashed = await client.models.retrieve("other/model")
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("nope")
    by_id = {m.id: m.model_dump() for m in listed.data}
    assert set(by_id) == {"fake-base", "fake-lora", "other/model"}
    assert by_id["fake-lora"]["parent"] == "fake-base" and by_id["fake-lora"]["root"] == "/runs/7/adapter"
    assert by_id["fake-base"]["parent"] is None and by_id["fake-base"]["object"] == "model"
    assert lora.id == "fake-lora" and slashed.id == "other/model"


def test_duplicate_names_across_backends_are_refused():
    with pytest.raises(ValueError, match="fake-base"):
        create_app([FakeBackend(), FakeBackend(name="second")])


async def test_load_and_unload_adapters(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    loader, upstream = FakeBackend(loads=True), FakeBackend(["gpt-upstream"], name="upstream")
    async with served(upstream, loader) as (client, http):
        loaded = await http.post("/v1/load_lora_adapter", json={"lora_name": "support-v2", "lora_path": str(adapter)})
        listed = {m.id: m for m in (await client.models.list()).data}
        reply = await client.chat.completions.create(model="support-v2", messages=user("to the adapter"))
        bad_name = await http.post("/v1/load_lora_adapter", json={"lora_name": "../etc", "lora_path": str(adapter)})
        taken = await http.post("/v1/load_lora_adapter", json={"lora_name": "gpt-upstream", "lora_path": str(adapter)})
        missing_path = await http.post("/v1/load_lora_adapter", json={"lora_name": "ghost", "lora_path": str(tmp_path / "nope")})
        missing_field = await http.post("/v1/load_lora_adapter", json={"lora_name": "x"})
        unloaded = await http.post("/v1/unload_lora_adapter", json={"lora_name": "support-v2"})
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="support-v2", messages=user("hi"))
        unload_unknown = await http.post("/v1/unload_lora_adapter", json={"lora_name": "support-v2"})
        unload_upstream = await http.post("/v1/unload_lora_adapter", json={"lora_name": "gpt-upstream"})
    async with served(FakeBackend()) as (_, http):
        no_loader = await http.post("/v1/load_lora_adapter", json={"lora_name": "a", "lora_path": str(adapter)})

    assert loaded.status_code == 200 and loaded.json()["model"]["parent"] == "fake-base"
    assert listed["support-v2"].model_dump()["parent"] == "fake-base"
    assert reply.model == "support-v2" and reply.choices[0].message.content == "adapter the to"
    assert bad_name.status_code == 400 and bad_name.json()["error"]["param"] == "lora_name"
    assert taken.status_code == 400 and "upstream" in taken.json()["error"]["message"]
    assert missing_path.status_code == 400 and missing_path.json()["error"]["param"] == "lora_path"
    assert missing_field.status_code == 400 and missing_field.json()["error"]["param"] == "lora_path"
    assert unloaded.status_code == 200 and "support-v2" not in loader.cards
    assert unload_unknown.status_code == 404
    assert unload_upstream.status_code == 400
    assert no_loader.status_code == 400 and no_loader.json()["error"]["param"] == "lora_name"


async def test_health_is_503_while_a_backend_is_not_ready():
    async with served(FakeBackend(), FakeBackend(["b"], name="b")) as (_, http):
        ok = await http.get("/health")
    async with served(FakeBackend(), FakeBackend(["b"], healthy=False, name="b")) as (_, http):
        down = await http.get("/health")
    assert ok.status_code == 200 and ok.json() == {"status": "ok", "models": 2}
    assert down.status_code == 503
    assert {r["backend"]: r["status"] for r in down.json()["backends"]} == {"fake": "ok", "b": "loading"}


async def test_metrics_count_requests_tokens_and_queue_by_model():
    async with served(FakeBackend(depth=3)) as (client, http):
        for _ in range(2):
            await client.chat.completions.create(model="fake-base", messages=user("one two three"))
        async for _ in await client.chat.completions.create(model="fake-base", messages=user("one two"), stream=True):
            pass
        for name in ("nope-1", "nope-2"):
            with pytest.raises(openai.NotFoundError):
                await client.chat.completions.create(model=name, messages=user("hi"))
        scrape = await http.get("/metrics")
    text = scrape.text
    assert scrape.headers["content-type"].startswith("text/plain")
    assert 'tunewise_requests_total{model="fake-base",status="200"} 3.0' in text
    assert 'tunewise_requests_total{model="unknown",status="404"} 2.0' in text
    assert "nope-1" not in text  # a client cannot mint label values
    assert 'tunewise_errors_total{model="unknown",type="invalid_request_error"} 2.0' in text
    assert 'tunewise_completion_tokens_total{model="fake-base"} 8.0' in text
    assert 'tunewise_prompt_tokens_total{model="fake-base"} 14.0' in text
    assert 'tunewise_time_to_first_token_seconds_count{model="fake-base"} 1.0' in text
    assert 'tunewise_request_seconds_count{model="fake-base"} 3.0' in text
    assert 'tunewise_queue_depth{model="fake-base"} 3.0' in text


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_client_disconnect_closes_the_backend_stream(spec_version):
    # Spoken as raw ASGI: uvicorn (spec 2.3) reports a hang-up through receive(); servers on spec 2.4 make send() raise.
    backend = FakeBackend(delay=0.01)
    app = create_app([backend])
    body = json.dumps({"model": "fake-base", "messages": user(" ".join(f"w{i}" for i in range(200))), "stream": True}).encode()
    gone = asyncio.Event()
    sent: list[dict] = []
    delivered = False

    async def receive():
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if gone.is_set() and spec_version == "2.4":
            raise OSError("connection reset by peer")
        sent.append(message)
        if message["type"] == "http.response.body" and b"w197" in message.get("body", b""):
            gone.set()  # the client read a couple of tokens and hung up

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": spec_version}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions", "query_string": b"",
             "root_path": "", "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("test", 80)}
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(app(scope, receive, send), timeout=5)
        scrape = await asyncio.wait_for(_scrape(app), 5)
    assert sent[0]["status"] == 200
    assert backend.streams_opened == backend.streams_closed == 1  # the generator's finally ran
    assert not backend.stream_finished and backend.stream_tokens_sent < 20
    assert 'tunewise_requests_total{model="fake-base",status="499"} 1.0' in scrape


async def _scrape(app) -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        return (await http.get("/metrics")).text


def test_real_loopback_server_with_the_sync_client():
    backend = FakeBackend(delay=0.005)
    ready = threading.Event()
    server = make_server(create_app([backend]), "127.0.0.1", 0, ready=ready)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert ready.wait(10), "uvicorn did not start"
        assert backend.started
        base = f"http://127.0.0.1:{bound_port(server)}"
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0, timeout=10)
        reply = client.chat.completions.create(model="fake-base", messages=user("over a real socket"))
        stream = client.chat.completions.create(model="fake-base", messages=user("over a real socket"), stream=True,
                                                stream_options={"include_usage": True})
        chunks = list(stream)
        # A client that hangs up mid-stream over TCP: the backend's generator is closed soon after.
        with httpx.Client(base_url=base, timeout=10) as http:
            long = {"model": "fake-base", "messages": user(" ".join(["w"] * 2000)), "stream": True}
            with http.stream("POST", "/v1/chat/completions", json=long) as response:
                next(response.iter_lines())
        for _ in range(200):
            if backend.streams_closed == 2:
                break
            threading.Event().wait(0.01)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive() and backend.closed
    assert reply.choices[0].message.content == "socket real a over"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "socket real a over"
    assert chunks[-1].usage.completion_tokens == 4
    assert backend.streams_opened == backend.streams_closed == 2 and backend.stream_tokens_sent < 4 + 2000


def test_keys_file_is_hashed_private_and_parsed_strictly(tmp_path):
    path = tmp_path / "sub" / "api-keys"
    key = add_key(path, label="ci runner")
    second = add_key(path)
    text = path.read_text()
    assert key.startswith("tw-") and key != second
    assert key not in text and second not in text and hash_key(key) in text and "ci runner" in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    ring = KeyRing.load(path)
    assert ring.check(key) and ring.check(second) and not ring.check("tw-guess") and not ring.check("")

    hand = tmp_path / "hand"
    hand.write_text(f"# keys for the demo\n\n{hash_key('k1')}   laptop\n  {hash_key('k2')}\n")
    assert KeyRing.load(hand).check("k1") and KeyRing.load(hand).check("k2")

    hand.write_text(f"# ok\n{hash_key('k1')}\nsha256:nothex\n")
    with pytest.raises(ConfigError, match=rf"{hand}:3: expected 'sha256:"):
        KeyRing.load(hand)
    hand.write_text(f"{key}\n")
    with pytest.raises(ConfigError, match=rf"{hand}:1: looks like a plaintext key") as pasted:
        KeyRing.load(hand)
    assert key not in str(pasted.value)
    with pytest.raises(ConfigError, match="not found"):
        KeyRing.load(tmp_path / "absent")

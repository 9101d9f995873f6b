"""The upstream and vLLM backends against a fake vLLM server (in-process, over loopback, and launched as `vllm`)."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tunewise.errors import ConfigError, TunewiseError
from tunewise.serve.protocol import APIError, ChatCompletionRequest
from tunewise.serve.upstream import Upstream, UpstreamBackend, parse_upstream
from tunewise.serve.vllm import NOT_INSTALLED, VLLMBackend, free_port, vllm_command

from .fake_vllm import create_app

pytestmark = pytest.mark.timeout(60)

FAKE = "http://fake-vllm"  # never resolved: an ASGI transport answers


def run(coro):
    return asyncio.run(coro)


def request(model: str, text: str = "hello there", **fields) -> ChatCompletionRequest:
    return ChatCompletionRequest(model=model, messages=[{"role": "user", "content": text}], **fields)


def adapter(folder: Path, r: int, **config) -> str:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": r, "lora_alpha": 2 * r, **config}))
    return str(folder)


async def collect(backend, req) -> list[dict]:
    return [chunk async for chunk in backend.stream(req)]


def text_of(chunks: list[dict]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


@contextmanager
def served(app):
    """`app` on a real loopback socket, in a thread."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def upstream_backend(app, **routes) -> UpstreamBackend:
    routes = routes or {"mini": Upstream(f"{FAKE}/v1", "base-model", api_key="sk-test")}
    return UpstreamBackend(routes, transport=httpx.ASGITransport(app))


# -- the vllm command line --


def test_vllm_command_rounds_the_adapters_rank_up_to_one_vllm_accepts(tmp_path):
    adapters = {"a": adapter(tmp_path / "a", 8), "b": adapter(tmp_path / "b", 12, rank_pattern={"q_proj": 24})}
    command = vllm_command("/models/Qwen2.5-0.5B", adapters, port=8123)
    assert command[:3] == ["vllm", "serve", "/models/Qwen2.5-0.5B"]
    flags = " ".join(command[3:])
    assert "--host 127.0.0.1 --port 8123 --served-model-name Qwen2.5-0.5B" in flags
    assert f"--enable-lora --lora-modules a={adapters['a']} b={adapters['b']} --max-loras 2 --max-lora-rank 32" in flags

    assert vllm_command("m", {"a": adapter(tmp_path / "r1", 1)}, port=1)[-1] == "1"
    assert vllm_command("m", {"a": adapter(tmp_path / "r300", 300)}, port=1)[-1] == "320"
    assert vllm_command("m", adapters, port=1, max_lora_rank=64, max_loras=4, extra_args=["--dtype", "half"])[-6:] == [
        "--max-loras", "4", "--max-lora-rank", "64", "--dtype", "half"]


def test_vllm_command_without_adapters_has_no_lora_flags(tmp_path):
    command = vllm_command("org/base", {}, port=9000, host="0.0.0.0", served_name="base")
    assert command == ["vllm", "serve", "org/base", "--host", "0.0.0.0", "--port", "9000", "--served-model-name", "base"]
    # asking for a rank enables LoRA for adapters loaded at run time
    assert vllm_command("org/base", {}, port=9000, max_lora_rank=16)[-5:] == ["--enable-lora", "--max-loras", "1", "--max-lora-rank", "16"]


def test_vllm_command_refuses_ranks_vllm_cannot_serve(tmp_path):
    adapters = {"a": adapter(tmp_path / "a", 20)}
    with pytest.raises(ConfigError, match="vLLM accepts 1, 8, 16"):
        vllm_command("m", adapters, port=1, max_lora_rank=24)
    with pytest.raises(ConfigError, match="below the adapters' rank"):
        vllm_command("m", adapters, port=1, max_lora_rank=16)
    with pytest.raises(ConfigError, match="above the largest"):
        vllm_command("m", {"big": adapter(tmp_path / "big", 600)}, port=1)
    with pytest.raises(ConfigError, match="no adapter_config.json"):
        vllm_command("m", {"gone": str(tmp_path / "gone")}, port=1)


# -- parsing --


def test_parse_upstream(monkeypatch):
    monkeypatch.delenv("TUNEWISE_ENDPOINT_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    assert parse_upstream("mini=http://localhost:8000/v1/#gpt-4o-mini") == ("mini", Upstream("http://localhost:8000/v1", "gpt-4o-mini"))
    # the OpenAI key goes to OpenAI only; a bare URL#MODEL is served under the model's name
    openai = Upstream("https://api.openai.com/v1", "gpt-4o-mini", "sk-openai")
    assert parse_upstream("https://api.openai.com/v1#gpt-4o-mini") == ("gpt-4o-mini", openai)
    monkeypatch.setenv("TUNEWISE_ENDPOINT_API_KEY", "sk-mine")
    assert parse_upstream("x=http://h:1/v1/chat/completions#m")[1] == Upstream("http://h:1/v1", "m", "sk-mine")
    bad_values = {"mini=localhost:8000#m": "must start with http", "mini=http://h/v1": "needs URL#MODEL", "mini=http://h/v1#": "needs URL#MODEL"}
    for bad, why in bad_values.items():
        with pytest.raises(ConfigError, match=why) as caught:
            parse_upstream(bad)
        assert repr(bad) in str(caught.value)


# -- forwarding --


def test_complete_renames_the_model_keeps_usage_and_passes_extra_fields_through():
    app = create_app()

    async def main():
        backend = upstream_backend(app)
        assert backend.health()["status"] == "stopped"
        await backend.start()
        try:
            reply = await backend.complete(request("mini", temperature=0, top_k=5, n=2))
            assert backend.queue_depth() == 0 and backend.health()["status"] == "ok"
        finally:
            await backend.close()
        return reply

    reply = run(main())
    assert reply["model"] == "mini"
    assert [c["message"]["content"] for c in reply["choices"]] == ["base-model: hello there"] * 2
    assert reply["usage"] == {"prompt_tokens": 2, "completion_tokens": 6, "total_tokens": 8}
    sent = app.state.fake.requests[-1]
    assert sent["model"] == "base-model" and sent["top_k"] == 5 and sent["stream"] is False and "stream_options" not in sent
    assert sent["_authorization"] == "Bearer sk-test"


def test_stream_renames_the_model_and_always_ends_with_a_usage_chunk():
    app = create_app()

    async def main():
        backend = upstream_backend(app)
        await backend.start()
        try:
            plain = await collect(backend, request("mini", stream=True))
            app.state.fake.omit_usage = True  # a server that ignores stream_options
            bare = await collect(backend, request("mini", stream=True))
            counted = await backend.complete(request("mini"))
        finally:
            await backend.close()
        return plain, bare, counted

    plain, bare, counted = run(main())
    assert app.state.fake.requests[0]["stream_options"] == {"include_usage": True}  # forced, though the client did not ask
    assert {c["model"] for c in plain} == {"mini"}
    assert plain[0]["choices"][0]["delta"]["role"] == "assistant"
    assert text_of(plain) == "base-model: hello there"
    assert plain[-2]["choices"][0]["finish_reason"] == "stop"
    assert plain[-1]["choices"] == [] and plain[-1]["usage"]["completion_tokens"] == 3
    assert all(c["choices"] for c in plain[:-1])
    assert text_of(bare) == "base-model: hello there"
    assert bare[-1]["choices"] == [] and bare[-1]["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert bare[-1]["model"] == "mini" and bare[-1]["id"] == bare[0]["id"]
    assert counted["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_upstream_errors_become_api_errors():
    app = create_app()

    async def main():
        backend = upstream_backend(app, mini=Upstream(f"{FAKE}/v1", "base-model"), ghost=Upstream(f"{FAKE}/v1", "no-such-model"))
        await backend.start()
        statuses = {}
        try:
            for label, fail in [("404", None), ("429", 429), ("500", 500), ("503", 503), ("401", 401)]:
                app.state.fake.fail = [fail] if fail else []
                try:
                    await backend.complete(request("ghost" if fail is None else "mini"))
                except APIError as exc:
                    statuses[label] = exc
            app.state.fake.fail = [500]
            with pytest.raises(APIError) as streamed:
                await collect(backend, request("mini", stream=True))
            with pytest.raises(APIError) as unknown:
                await backend.complete(request("nobody"))
            app.state.fake.fail_midstream = True
            chunks = []
            with pytest.raises(APIError) as midstream:
                async for chunk in backend.stream(request("mini", stream=True)):
                    chunks.append(chunk)
            assert backend.queue_depth() == 0
            assert "fake engine failure" in backend.health()["last_error"]
        finally:
            await backend.close()
        return statuses, streamed.value, unknown.value, midstream.value, chunks

    statuses, streamed, unknown, midstream, chunks = run(main())
    assert statuses["404"].status == 404 and "`no-such-model` does not exist" in statuses["404"].message
    assert statuses["404"].body()["error"]["type"] == "invalid_request_error"  # OpenAI's type, not vLLM's NotFoundError
    assert statuses["429"].status == 429 and statuses["429"].type == "rate_limit_error"
    assert statuses["500"].status == 502 and "fake internal failure" in statuses["500"].message and FAKE in statuses["500"].message
    assert statuses["503"].status == 503
    assert statuses["401"].status == 502 and "TUNEWISE_ENDPOINT_API_KEY" in statuses["401"].message
    assert streamed.status == 502
    assert unknown.status == 404 and unknown.code == "model_not_found"
    assert midstream.status == 502 and "fake engine failure" in midstream.message
    assert text_of(chunks) == "base-model:"


def test_an_unreachable_upstream_is_503():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there

    async def main():
        backend = UpstreamBackend({"m": Upstream(url, "m")}, connect_timeout_s=2)
        await backend.start()
        try:
            with pytest.raises(APIError) as plain:
                await backend.complete(request("m"))
            with pytest.raises(APIError) as streamed:
                await collect(backend, request("m", stream=True))
            assert backend.queue_depth() == 0
        finally:
            await backend.close()
        return plain.value, streamed.value

    for error in run(main()):
        assert error.status == 503 and f"upstream {url} unreachable" in error.message


def test_a_silent_or_broken_upstream_is_504_or_502_and_an_abandoned_stream_frees_its_slot():
    def answer(request: httpx.Request) -> httpx.Response:
        if b"slow" in request.content:
            raise httpx.ReadTimeout("timed out", request=request)
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    app = create_app()

    async def main():
        broken = UpstreamBackend({"m": Upstream(f"{FAKE}/v1", "m")}, timeout_s=7, transport=httpx.MockTransport(answer))
        await broken.start()
        try:
            with pytest.raises(APIError) as slow:
                await broken.complete(request("m", "slow"))
            with pytest.raises(APIError) as cut:
                await collect(broken, request("m", "fast", stream=True))
        finally:
            await broken.close()
        backend = upstream_backend(app)
        await backend.start()
        try:
            chunks = backend.stream(request("mini", stream=True))
            await anext(chunks)
            assert backend.queue_depth() == 1
            await chunks.aclose()  # the client went away
            assert backend.queue_depth() == 0
        finally:
            await backend.close()
        return slow.value, cut.value

    slow, cut = run(main())
    assert slow.status == 504 and "within 7 s" in slow.message
    assert cut.status == 502 and "broke the connection" in cut.message


# -- vLLM: attach --


def test_attach_over_loopback_lists_loads_and_unloads_adapters(tmp_path):
    app = create_app("base-model", {"a": adapter(tmp_path / "a", 8)}, base_root="/models/base-model")
    new = adapter(tmp_path / "new", 16)

    async def main(root):
        backend = VLLMBackend(url=root + "/v1/")
        assert backend.url == root + "/v1" and backend.loads_adapters
        await backend.start()
        try:
            cards = {c.id: c for c in backend.models()}
            assert cards["base-model"].parent is None and cards["base-model"].source == "/models/base-model"
            assert cards["a"].parent == "base-model" and cards["a"].kind == "vllm"
            card = await backend.load_adapter("new", new)
            assert (card.id, card.parent, card.source) == ("new", "base-model", new)
            reply = await backend.complete(request("new", "hi"))
            chunks = await collect(backend, request("a", "yo", stream=True))
            errors = {}
            attempts = {"again": ("new", new), "missing": ("m", str(tmp_path / "nope")),
                        "too big": ("big", adapter(tmp_path / "big", 64)), "base": ("base-model", new)}
            for label, (name, path) in attempts.items():
                with pytest.raises(APIError) as caught:
                    await backend.load_adapter(name, path)
                errors[label] = caught.value
            await backend.unload_adapter("new")
            assert "new" not in {c.id for c in backend.models()} and "new" not in app.state.fake.adapters
            with pytest.raises(APIError) as unloaded:
                await backend.complete(request("new"))
            with pytest.raises(APIError) as twice:
                await backend.unload_adapter("new")
            with pytest.raises(APIError) as base:
                await backend.unload_adapter("base-model")
            assert {c.id for c in await backend.refresh()} == {"base-model", "a"}
        finally:
            await backend.close()
        return reply, chunks, errors, unloaded.value, twice.value, base.value

    with served(app) as root:
        reply, chunks, errors, unloaded, twice, base = run(main(root))
    assert reply["model"] == "new" and reply["choices"][0]["message"]["content"] == "new: hi"
    assert text_of(chunks) == "a: yo" and chunks[-1]["usage"]["total_tokens"] == 3
    assert errors["again"].status == 400 and "has already been loaded" in errors["again"].message
    assert errors["missing"].status == 404 and "No adapter found" in errors["missing"].message
    assert errors["too big"].status == 400 and "max_lora_rank" in errors["too big"].message
    assert errors["base"].status == 400
    assert unloaded.status == 404 and twice.status == 404 and "cannot be found" in twice.message
    assert base.status == 400


def test_attach_loads_the_given_adapters_and_explains_a_server_without_runtime_loading(tmp_path):
    loading, fixed = create_app(), create_app(runtime_lora_updating=False)
    extra = adapter(tmp_path / "extra", 8)

    async def main():
        backend = VLLMBackend(url=FAKE, adapters={"extra": extra}, transport=httpx.ASGITransport(loading))
        await backend.start()
        names = {c.id for c in backend.models()}
        await backend.close()
        frozen = VLLMBackend(url=FAKE, transport=httpx.ASGITransport(fixed))
        await frozen.start()
        try:
            with pytest.raises(APIError) as refused:
                await frozen.load_adapter("extra", extra)
        finally:
            await frozen.close()
        return names, refused.value

    names, refused = run(main())
    assert names == {"base-model", "extra"}
    assert refused.status == 400 and "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in refused.message


def test_attach_to_nothing_fails_clearly():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TunewiseError, match=f"no vLLM server answers at {url}"):
        run(VLLMBackend(url=url).start())


# -- vLLM: launch --


def fake_vllm_on_path(tmp_path, monkeypatch) -> Path:
    """A `vllm` executable that runs fake_vllm.main, first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "vllm"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import fake_vllm\nfake_vllm.main(sys.argv[1:])\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    return script


def test_launch_starts_vllm_serves_loads_an_adapter_and_stops_it(tmp_path, monkeypatch):
    fake_vllm_on_path(tmp_path, monkeypatch)
    monkeypatch.delenv("VLLM_ALLOW_RUNTIME_LORA_UPDATING", raising=False)
    base = tmp_path / "models" / "tiny-base"
    base.mkdir(parents=True)
    first, second = adapter(tmp_path / "first", 8), adapter(tmp_path / "second", 4)

    async def main():
        backend = VLLMBackend(str(base), {"first": first}, startup_timeout_s=30, stop_timeout_s=10, log_path=tmp_path / "vllm.log")
        assert "--max-lora-rank" in backend.command and backend.loads_adapters
        await backend.start()
        process = backend.process
        try:
            assert process.poll() is None and backend.health()["status"] == "ok"
            assert {(c.id, c.parent) for c in backend.models()} == {("tiny-base", None), ("first", "tiny-base")}
            reply = await backend.complete(request("first", "ping"))
            await backend.load_adapter("second", second)  # only works with VLLM_ALLOW_RUNTIME_LORA_UPDATING set for it
            chunks = await collect(backend, request("second", "pong", stream=True))
        finally:
            await backend.close()
        return process, reply, chunks

    process, reply, chunks = run(main())
    assert reply["choices"][0]["message"]["content"] == "first: ping"
    assert text_of(chunks) == "second: pong"
    assert process.poll() is not None  # stopped by close()


def test_launch_reports_the_end_of_the_log_when_vllm_exits(tmp_path, monkeypatch):
    fake_vllm_on_path(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_VLLM_FAIL", "CUDA out of memory")
    backend = VLLMBackend("some/model", startup_timeout_s=30)
    assert not backend.loads_adapters  # no adapters and no rank: launched without LoRA
    with pytest.raises(TunewiseError, match="vLLM exited with code 1") as caught:
        run(backend.start())
    assert "RuntimeError: CUDA out of memory" in str(caught.value)
    assert backend.process is None


def test_launch_without_vllm_installed_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError) as caught:
        VLLMBackend("some/model")
    assert str(caught.value) == NOT_INSTALLED
    assert "pip install vllm" in NOT_INSTALLED and "--vllm-url" in NOT_INSTALLED
    with pytest.raises(ConfigError, match="a model to launch vLLM with, or the url"):
        VLLMBackend()

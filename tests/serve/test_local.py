"""`tunewise serve`'s local backend through the gateway, with the official `openai` client: a tiny base model,
random LoRA adapters served in shared batches, adapters loaded and unloaded at run time, recipes, disconnects."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest

from tunewise.evaluate.generation import RowOptions, generate_batched
from tunewise.serve.api import create_app, running
from tunewise.serve.config import ServeConfig
from tunewise.serve.local import LocalBackend
from tunewise.serve.mixed_lora import BASE

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

QUESTION = [{"role": "user", "content": "tell me about item 3 and more"}]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def single_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only contend
    yield
    torch.set_num_threads(previous)


def _backend(served_base_dir, adapters, **kwargs):
    config = ServeConfig(batch_wait_ms=20, default_max_tokens=8)
    return LocalBackend(str(served_base_dir), adapters={k: str(v) for k, v in adapters.items()}, served_name="tiny", config=config, **kwargs)


async def _served(backend):
    """A started app and an AsyncOpenAI client talking to it in-process."""
    app = create_app([backend], backend.config)
    await backend.start()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    return app, openai.AsyncOpenAI(base_url="http://test/v1", api_key="unused", http_client=http, max_retries=0)


def _alone(served_base_dir, adapter_dirs, name, messages, max_new_tokens=8):
    """The reply of one adapter (or the base) alone with PEFT, greedy: the reference."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(served_base_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(served_base_dir)
    if name != BASE:
        model = PeftModel.from_pretrained(model, str(adapter_dirs[name])).eval()
    return generate_batched(model, tokenizer, [messages], max_new_tokens=max_new_tokens)[0].text


async def test_concurrent_requests_to_different_adapters_share_batches_and_match_each_adapter_alone(served_base_dir, adapter_dirs, single_thread):
    backend = _backend(served_base_dir, adapter_dirs)
    app, client = await _served(backend)
    try:
        listed = {m.id: m for m in (await client.models.list()).data}
        assert set(listed) == {"tiny", "alpha", "beta", "gamma"}
        assert listed["alpha"].model_extra["parent"] == "tiny"
        names = ["alpha", "beta", "tiny", "gamma"] * 2
        prompts = [[{"role": "user", "content": f"tell me about item {i}"}] for i in range(len(names))]
        batches_before = backend.scheduler.batches
        replies = await asyncio.gather(*(
            client.chat.completions.create(model=name, messages=p, temperature=0, max_tokens=8) for name, p in zip(names, prompts)
        ))
        assert backend.scheduler.batches - batches_before < len(names)  # requests were served together
        for name, prompt, reply in zip(names, prompts, replies):
            expected = _alone(served_base_dir, adapter_dirs, BASE if name == "tiny" else name, prompt)
            assert reply.choices[0].message.content == expected, name
            assert reply.model == name and reply.usage.completion_tokens > 0 and reply.usage.prompt_tokens > 0
    finally:
        await backend.close()


async def test_streaming_n_choices_stop_and_usage(served_base_dir, adapter_dirs, single_thread):
    backend = _backend(served_base_dir, adapter_dirs)
    app, client = await _served(backend)
    try:
        whole = await client.chat.completions.create(model="alpha", messages=QUESTION, temperature=0, max_tokens=8)
        text = whole.choices[0].message.content
        stream = await client.chat.completions.create(model="alpha", messages=QUESTION, temperature=0, max_tokens=8, stream=True,
                                                      stream_options={"include_usage": True})
        parts, roles, finishes, usage = [], [], [], None
        async for part in stream:
            if part.usage:
                usage = part.usage
            for choice in part.choices:
                roles += [choice.delta.role] if choice.delta.role else []
                parts.append(choice.delta.content or "")
                finishes += [choice.finish_reason] if choice.finish_reason else []
        assert roles == ["assistant"] and "".join(parts) == text and finishes == [whole.choices[0].finish_reason]
        assert usage.completion_tokens == whole.usage.completion_tokens

        stop = text[2:4]
        cut = await client.chat.completions.create(model="alpha", messages=QUESTION, temperature=0, max_tokens=8, stop=[stop])
        assert cut.choices[0].message.content == text[: text.find(stop)].strip() and cut.choices[0].finish_reason == "stop"

        sampled = await client.chat.completions.create(model="beta", messages=QUESTION, n=3, seed=5, temperature=1.2, max_tokens=8)
        again = await client.chat.completions.create(model="beta", messages=QUESTION, n=3, seed=5, temperature=1.2, max_tokens=8)
        assert [c.index for c in sampled.choices] == [0, 1, 2]
        assert [c.message.content for c in sampled.choices] == [c.message.content for c in again.choices]
        assert len({c.message.content for c in sampled.choices}) > 1

        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(model="alpha", messages=QUESTION, response_format={"type": "json_object"})
        assert "--backend vllm" in bad.value.message
        with pytest.raises(openai.BadRequestError) as long:
            await client.chat.completions.create(model="alpha", messages=[{"role": "user", "content": "word " * 600}], max_tokens=600)
        assert long.value.code == "context_length_exceeded"
    finally:
        await backend.close()


async def test_adapters_load_and_unload_while_requests_run_and_a_broken_one_is_a_404(served_base_dir, adapter_dirs, tmp_path, single_thread):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    backend = _backend(served_base_dir, {"alpha": adapter_dirs["alpha"], "broken": broken})
    app, client = await _served(backend)
    http = client._client
    try:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model="broken", messages=QUESTION)
        assert missing.value.code == "model_not_found" and "could not be loaded" in missing.value.message

        in_flight = [asyncio.ensure_future(client.chat.completions.create(model="alpha", messages=QUESTION, temperature=0, max_tokens=8))
                     for _ in range(4)]
        loaded = await http.post("/v1/load_lora_adapter", json={"lora_name": "beta", "lora_path": str(adapter_dirs["beta"])})
        assert loaded.status_code == 200
        beta = await client.chat.completions.create(model="beta", messages=QUESTION, temperature=0, max_tokens=8)
        assert beta.choices[0].message.content == _alone(served_base_dir, adapter_dirs, "beta", QUESTION)
        unloaded = await http.post("/v1/unload_lora_adapter", json={"lora_name": "alpha"})
        assert unloaded.status_code == 200
        alpha_replies = await asyncio.gather(*in_flight)  # requests already in flight finish with the adapter they asked for
        expected = _alone(served_base_dir, adapter_dirs, "alpha", QUESTION)
        assert [r.choices[0].message.content for r in alpha_replies] == [expected] * 4
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="alpha", messages=QUESTION)
        outside = await http.post("/v1/load_lora_adapter", json={"lora_name": "../../etc", "lora_path": str(adapter_dirs["beta"])})
        assert outside.status_code == 400
        bad = await http.post("/v1/load_lora_adapter", json={"lora_name": "gamma", "lora_path": str(tmp_path / "none")})
        assert bad.status_code in (400, 404) and "error" in bad.json()
        assert {m.id for m in (await client.models.list()).data} == {"tiny", "beta"}
    finally:
        await backend.close()


async def test_a_client_that_leaves_mid_stream_frees_its_row(served_base_dir, adapter_dirs, single_thread):
    backend = _backend(served_base_dir, adapter_dirs)
    backend.config.max_tokens_cap = 400
    await backend.start()
    try:
        from tunewise.serve.protocol import ChatCompletionRequest

        request = ChatCompletionRequest(model="alpha", messages=QUESTION, max_tokens=400, temperature=0, stream=True)
        stream = backend.stream(request)
        await stream.__anext__()  # the role chunk
        await stream.__anext__()  # some text
        await stream.aclose()  # the client hung up
        started = time.perf_counter()
        while backend.queue_depth() and time.perf_counter() - started < 10:
            await asyncio.sleep(0.01)
        assert backend.queue_depth() == 0
        reply = await backend.complete(ChatCompletionRequest(model="beta", messages=QUESTION, max_tokens=4))
        assert reply["choices"][0]["message"]["content"] is not None
    finally:
        await backend.close()


def test_over_a_real_socket_with_a_bounded_load_nothing_fails(served_base_dir, adapter_dirs, single_thread):
    """Loopback only, a fixed number of requests at a fixed concurrency: no 5xx."""
    backend = _backend(served_base_dir, adapter_dirs)
    with running(create_app([backend], backend.config)) as port:
        base_url = f"http://127.0.0.1:{port}/v1"
        client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
        streamed = "".join(
            part.choices[0].delta.content or "" for part in client.chat.completions.create(
                model="gamma", messages=QUESTION, temperature=0, max_tokens=6, stream=True) if part.choices
        )
        assert streamed == client.chat.completions.create(model="gamma", messages=QUESTION, temperature=0, max_tokens=6).choices[0].message.content

        statuses = []

        def one(i):
            with httpx.Client(timeout=60) as http:
                response = http.post(f"{base_url}/chat/completions", json={
                    "model": ["tiny", "alpha", "beta", "gamma"][i % 4], "max_tokens": 6,
                    "messages": [{"role": "user", "content": f"request {i}"}]})
                statuses.append(response.status_code)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(48)))
        assert len(statuses) == 48 and all(s == 200 for s in statuses), statuses
        metrics = httpx.get(base_url.removesuffix("/v1") + "/metrics").text
        assert 'tunewise_requests_total{model="alpha",status="200"}' in metrics

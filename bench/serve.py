"""Serving benchmark: `tunewise serve` (the local backend) against a naive one-`generate`-per-request server, in one run.

Both servers answer OpenAI-compatible `/v1/chat/completions` over a real loopback socket (uvicorn on
127.0.0.1, a port the OS picks), each in a process of its own (as a deployed server is, so that the
client's work and the server's share no interpreter lock), both loaded before the first measurement and
measured one at a time, interleaved cell by cell (tunewise, naive, tunewise, ...) so that the load other
jobs put on the machine falls on both alike:

- `tunewise`: `LocalBackend(model, adapters={a0..a7}, engine=stacked)` behind `create_app`: dynamic batching
  over `generate_batched`, rows of different adapters in one forward pass;
- `naive`: a minimal FastAPI app in this file: a PeftModel with the 8 adapters loaded, one lock, and per
  request `set_adapter(name)` (or `disable_adapter()` for the base) and one greedy `model.generate(...)`,
  run with `asyncio.to_thread` (the event loop stays free); streaming through transformers'
  `AsyncTextIteratorStreamer` (the asyncio form of `TextIteratorStreamer`), so its first token is timed as
  fairly as tunewise's.

The 8 adapters are LoRA over the base with tunewise train's default recipe (`tunewise.train.recipe`: rank 16,
alpha 32, all linear modules, LoRA on the top third of the blocks on a CPU and on all of them on a GPU;
`--lora-layers all` puts it everywhere on a CPU too), with random small non-zero lora_B so that they differ,
saved once under `--work` (reruns reuse them).

Scenarios: `base` (every request to the base model), `one-adapter` (every request to a0), `mixed-8`
(request i to adapter i % 8); at each concurrency (closed loop: that many clients, each sending its next
request when its last one ends) a fixed number of requests, stopped early at `--cell-timeout` seconds.
Every request streams (`stream_options.include_usage`), greedy (`temperature: 0`), `max_tokens` fixed: the
time to the first content delta is its TTFT, the time to the end of the stream its latency, and tokens/s
is the sum of the completion tokens the server reports in `usage` over the cell's wall time (a reply can
end at EOS before max_tokens: the mean tokens per request is printed beside it). Prompts are the user
messages of the bundled sample task's eval set, asked for a written reply.

Goals (issue: serving benchmark): 8 mixed adapters at least 0.8x the base model's tokens/s (tunewise, c=16);
tunewise at least 4x the naive server's tokens/s at c=16 (mixed-8; base shown too); tunewise's time to first
token p50 under 300 ms at c=1 (the worst of the scenarios).

    .venv/bin/python bench/serve.py                                         # embedded model, c=1,4,16, 16/32/64 requests
    .venv/bin/python bench/serve.py --requests-scale 0.1 --max-tokens 8 --concurrency 1,4   # a smoke run
    .venv/bin/python bench/serve.py --random-shape 1b --json bench/out/serve-gpu.json      # on a GPU: a random Llama of 1B shape

Only loopback is used, and the script stops by itself: the servers are children that exit when their
stdin closes (the parent closes it when done, or the system does if the parent dies).
"""

# No `from __future__ import annotations`: FastAPI reads the naive app's `request: Request` annotation at run time,
# and a string annotation would not resolve to the locally imported Request (the route would answer 422).

import argparse
import asyncio
import datetime
import gc
import json
import math
import os
import platform
import queue
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SERVERS = ("tunewise", "naive")
SCENARIOS = ("base", "one-adapter", "mixed-8")
ADAPTERS = 8
BASE_NAME = "base"  # the served name of the base model, on both servers
DEFAULT_REQUESTS = {1: 16, 4: 32, 16: 64}  # requests per cell at these concurrencies (others: 4 per client, at least 16)
LORA_RANK, LORA_ALPHA, LORA_DROPOUT = 16, 32, 0.05  # tunewise train's defaults (recipe.py: rank 16, alpha 2 x rank; config.py)
LORA_B_STD = 0.005  # lora_B ~ N(0, this): non-zero so the adapters differ, small so that replies stay text
# Llama-3.2-1B's shape, except the vocabulary: the embedded tokenizer's (49,152 ids, not 128,256), so that the
# prompts are real text and every id the model can emit decodes.
RANDOM_SHAPES = {
    "1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, intermediate_size=8192,
               head_dim=64, rope_theta=500000.0, max_position_embeddings=8192),
    # a plumbing check of the --random-shape path on a CPU (not a benchmark)
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=256,
                 head_dim=32, rope_theta=10000.0, max_position_embeddings=2048),
}
REPLY_PROMPT = "Write a helpful, detailed reply to this customer's support ticket.\n\nTicket: "


# ---------------------------------------------------------------------------------------------------------------
# the naive server (runs in a child process)


def naive_app(spec: dict):
    """One lock, per request `set_adapter` (or `disable_adapter`) and one `generate`: what one writes first."""
    import torch
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, StreamingResponse
    from peft import PeftModel
    from transformers import AsyncTextIteratorStreamer

    from tunewise.evaluate.generation import _generation_config, render_prompts
    from tunewise.models import load_model

    base, tokenizer = load_model(spec["model"], device=spec["device"])
    names = list(spec["adapters"])
    model = PeftModel.from_pretrained(base, spec["adapters"][names[0]], adapter_name=names[0])
    for name in names[1:]:
        model.load_adapter(spec["adapters"][name], adapter_name=name)
    model.eval()
    device = next(model.parameters()).device
    served = {BASE_NAME, *names}
    queue_lock = asyncio.Lock()  # requests wait here, in the event loop, not in executor threads
    model_lock = threading.Lock()  # and the model is used by one thread at a time whatever happens to a request

    def generate(name: str, ids: list[int], max_new: int, streamer=None):
        config = _generation_config(model, tokenizer, max_new)
        input_ids = torch.tensor([ids], device=device)
        try:
            with model_lock, torch.inference_mode():
                kwargs = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), generation_config=config, streamer=streamer)
                if name == BASE_NAME:
                    with model.disable_adapter():
                        out = model.generate(**kwargs)
                else:
                    model.set_adapter(name)
                    out = model.generate(**kwargs)
        except BaseException:
            if streamer is not None:
                streamer.end()
            raise
        new = out[0, len(ids):].tolist()
        stop = set(config.eos_token_id) | {config.pad_token_id}
        n = next((i for i, t in enumerate(new) if t in stop), len(new))
        return tokenizer.decode(new[:n], skip_special_tokens=True).strip(), n, "length" if n >= max_new else "stop"

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        name = body.get("model")
        if name not in served:
            return JSONResponse({"error": {"message": f"The model '{name}' does not exist", "type": "invalid_request_error",
                                           "param": "model", "code": "model_not_found"}}, status_code=404)
        ids = render_prompts(tokenizer, [body["messages"]])[0]
        max_new = int(body.get("max_completion_tokens") or body.get("max_tokens") or 256)
        id_, created = f"chatcmpl-naive-{time.perf_counter_ns()}", int(time.time())

        def usage(n):
            return {"prompt_tokens": len(ids), "completion_tokens": n, "total_tokens": len(ids) + n}

        if not body.get("stream"):
            async with queue_lock:
                text, n, finish = await asyncio.to_thread(generate, name, ids, max_new)
            return {"id": id_, "object": "chat.completion", "created": created, "model": name,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                    "usage": usage(n)}

        def sse(choice_delta=None, finish=None, usage_=None):
            chunk = {"id": id_, "object": "chat.completion.chunk", "created": created, "model": name,
                     "choices": [] if usage_ else [{"index": 0, "delta": choice_delta or {}, "finish_reason": finish}]}
            if usage_:
                chunk["usage"] = usage_
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def events():
            yield sse({"role": "assistant", "content": ""})
            async with queue_lock:
                streamer = AsyncTextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
                job = asyncio.ensure_future(asyncio.to_thread(generate, name, ids, max_new, streamer))
                async for text in streamer:
                    if text:
                        yield sse({"content": text})
                _, n, finish = await job
            yield sse({}, finish)
            if include_usage:
                yield sse(usage_=usage(n))
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def child_main(spec: dict) -> None:
    """A server process: loads its model, prints `READY <port>` once it listens, exits when stdin closes."""
    import torch

    torch.set_num_threads(spec["threads"])
    from tunewise.serve.api import bound_port, create_app, make_server

    if spec["kind"] == "tunewise":
        from tunewise.serve.config import ServeConfig
        from tunewise.serve.local import LocalBackend

        config = ServeConfig(max_batch_size=spec["max_batch_size"], batch_wait_ms=spec["batch_wait_ms"])
        backend = LocalBackend(spec["model"], adapters=spec["adapters"], served_name=BASE_NAME, config=config,
                               engine=spec["engine"], device=spec["device"])
        app = create_app([backend], config)
    else:
        app = naive_app(spec)
    ready = threading.Event()
    server = make_server(app, "127.0.0.1", 0, ready=ready)

    def announce():
        ready.wait()
        print(f"READY {bound_port(server)}", flush=True)

    def watch_stdin():
        sys.stdin.buffer.read()  # EOF: the parent is done (or gone)
        server.should_exit = True

    threading.Thread(target=announce, daemon=True).start()
    threading.Thread(target=watch_stdin, daemon=True).start()
    server.run()


class Child:
    """A server child process, started and stopped by the parent (only through its own pid and pipes)."""

    def __init__(self, spec: dict, load_timeout: float):
        env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]), MKL_NUM_THREADS=str(spec["threads"]))
        started = time.perf_counter()
        self.kind = spec["kind"]
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        lines: queue.Queue = queue.Queue()

        def read():
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = started + load_timeout
        self.port = None
        while self.port is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.perf_counter()))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"the {self.kind} server did not start within {load_timeout:g} s") from None
            if line is None:
                self.stop()
                raise RuntimeError(f"the {self.kind} server exited before listening (exit code {self.proc.poll()}; its log is above)")
            if line.startswith("READY "):
                self.port = int(line.split()[1])
            else:
                sys.stderr.write(f"[{self.kind}] {line}")
        self.load_s = time.perf_counter() - started

        def drain():
            while (line := lines.get()) is not None:
                sys.stderr.write(f"[{self.kind}] {line}")

        threading.Thread(target=drain, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(60)
        except (subprocess.TimeoutExpired, OSError):
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------------------------------------------
# models and adapters (built once under --work)


def _linear_names(model) -> list[str]:
    """The leaf names of the linear modules LoRA targets as "all-linear" (PEFT's layers_to_transform wants a list)."""
    import torch

    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head")})


def build_random_base(shape: str, work: Path, seed: int) -> Path:
    """A random-init Llama of RANDOM_SHAPES[shape] with the embedded tokenizer, saved once as safetensors."""
    folder = work / "models" / f"random-{shape}-untied-seed{seed}"
    if (folder / "model.safetensors").exists() or (folder / "model.safetensors.index.json").exists():
        return folder
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from tunewise.models import load_tokenizer

    started = time.perf_counter()
    tokenizer = load_tokenizer("smollm2-135m")
    dims = dict(RANDOM_SHAPES[shape])
    rope_theta = dims.pop("rope_theta")
    # Untied output layer (Llama-3.2-1B ties it; the compute per token is the same): with tied random weights the
    # model's greedy choice is the token it was given, so every reply would repeat the prompt's last token, "\n",
    # which a server that strips replies never streams (no first token to time).
    config = LlamaConfig(vocab_size=len(tokenizer), tie_word_embeddings=False, rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **dims)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    tmp = folder.with_name(folder.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    params = sum(p.numel() for p in model.parameters())
    print(f"built a random {shape} Llama ({params / 1e9:.2f} B parameters, vocab {len(tokenizer)}) in {time.perf_counter() - started:.0f} s: {folder}",
          file=sys.stderr, flush=True)
    return folder


def resolve_lora_layers(choice: str, total: int, device: str) -> int:
    """tunewise train's choice (recipe.py): all blocks on a GPU, the top third on a CPU; or `all`, or a number."""
    if choice == "recipe":
        return total if device == "cuda" else max(1, math.ceil(total / 3))
    if choice == "all":
        return total
    return max(1, min(total, int(choice)))


def build_adapters(model_ref: str, key: str, work: Path, lora_layers: str, device: str, seed: int) -> tuple[dict[str, str], dict]:
    """8 LoRA adapters (a0..a7) over the base, saved once; returns ({name: folder}, what they are)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from tunewise.models import load_model, materialize

    base_folder = materialize(model_ref)
    config = json.loads((base_folder / "config.json").read_text())
    text = config.get("text_config") or config
    total = int(text["num_hidden_layers"])
    layers = resolve_lora_layers(lora_layers, total, device)
    folder = work / "adapters" / f"{key}-r{LORA_RANK}-a{LORA_ALPHA}-top{layers}of{total}-seed{seed}"
    names = [f"a{i}" for i in range(ADAPTERS)]
    paths = {name: str(folder / name) for name in names}
    info = {"rank": LORA_RANK, "alpha": LORA_ALPHA, "targets": "all-linear", "layers": f"top {layers} of {total}",
            "lora_b_std": LORA_B_STD, "folder": str(folder)}
    if (folder / "done").exists():
        return paths, info
    started = time.perf_counter()
    model, _ = load_model(model_ref)
    targets = _linear_names(model)
    lora = LoraConfig(r=LORA_RANK, lora_alpha=LORA_ALPHA, lora_dropout=LORA_DROPOUT, target_modules=targets,
                      layers_to_transform=list(range(total - layers, total)), task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    modules = [m for m in peft_model.modules() if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {})]
    for i, name in enumerate(names):
        generator = torch.Generator().manual_seed(seed * 1000 + i)
        with torch.no_grad():
            for module in modules:
                a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
                bound = 1 / math.sqrt(a.shape[1])  # PEFT's own init of A (kaiming uniform, a=sqrt(5))
                a.copy_(torch.rand(a.shape, generator=generator) * 2 * bound - bound)
                b.copy_(torch.randn(b.shape, generator=generator) * LORA_B_STD)
        peft_model.save_pretrained(paths[name])
    (folder / "done").write_text(json.dumps(info))
    print(f"built {ADAPTERS} adapters ({len(modules)} LoRA layers each) in {time.perf_counter() - started:.0f} s: {folder}",
          file=sys.stderr, flush=True)
    del peft_model, model
    gc.collect()
    return paths, info


def prompts() -> list[str]:
    from tunewise.sample import sample_paths

    texts = []
    with sample_paths()["eval"].open(encoding="utf-8") as handle:
        for line in handle:
            user = [m["content"] for m in json.loads(line)["messages"] if m["role"] == "user"]
            if user:
                texts.append(REPLY_PROMPT + user[0])
    return texts[:64]


# ---------------------------------------------------------------------------------------------------------------
# the client


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    low, high = math.floor(k), math.ceil(k)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def model_for(scenario: str, i: int) -> str:
    return {"base": BASE_NAME, "one-adapter": "a0"}.get(scenario) or f"a{i % ADAPTERS}"


async def one_request(client, model: str, prompt: str, max_tokens: int) -> dict:
    started = time.perf_counter()
    ttft = tokens = finish = None
    text = []
    try:
        stream = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0,
            stream=True, stream_options={"include_usage": True},
        )
        async for part in stream:
            for choice in part.choices or ():
                if choice.delta and choice.delta.content:
                    if ttft is None:
                        ttft = time.perf_counter() - started
                    text.append(choice.delta.content)
                if choice.finish_reason:
                    finish = choice.finish_reason
            if part.usage is not None:
                tokens = part.usage.completion_tokens
        error = None if tokens is not None else "no usage chunk"
    except Exception as exc:  # a non-2xx answer (openai.APIStatusError), an error event, a timeout, a reset connection
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    return {"model": model, "latency_s": time.perf_counter() - started, "ttft_s": ttft, "tokens": tokens, "finish": finish,
            "text": "".join(text), "error": error}


async def run_cell(base_url: str, scenario: str, concurrency: int, requests: int, texts: list[str], max_tokens: int,
                   cell_timeout: float, request_timeout: float) -> dict:
    """`concurrency` clients in a closed loop over `requests` requests (none started after `cell_timeout` s)."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=request_timeout)
    results: list[dict] = []
    issued = 0
    started = time.perf_counter()
    deadline = started + cell_timeout

    async def worker():
        nonlocal issued
        while issued < requests and time.perf_counter() < deadline:
            i = issued
            issued += 1
            results.append({"index": i, **await one_request(client, model_for(scenario, i), texts[i % len(texts)], max_tokens)})

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    finally:
        await client.close()
    ok = [r for r in results if r["error"] is None]
    tokens = sum(r["tokens"] for r in ok)
    ttfts = [r["ttft_s"] for r in ok if r["ttft_s"] is not None]
    latencies = [r["latency_s"] for r in ok]
    errors = [r["error"] for r in results if r["error"] is not None]
    return {
        "scenario": scenario, "concurrency": concurrency, "requests": len(results), "planned": requests,
        "capped": len(results) < requests, "wall_s": wall, "completion_tokens": tokens,
        "tokens_per_s": tokens / wall if wall > 0 else None, "tokens_mean": tokens / len(ok) if ok else None,
        "finished_by_length": sum(r["finish"] == "length" for r in ok),
        "latency_p50_s": percentile(latencies, 50), "latency_p95_s": percentile(latencies, 95),
        "ttft_p50_s": percentile(ttfts, 50), "ttft_p95_s": percentile(ttfts, 95),
        "errors": len(errors), "error_samples": sorted(set(errors))[:3],
        "sample_reply": {r["model"]: r["text"][:120] for r in reversed(ok)},
        "replies": {r["index"]: r["text"].strip() for r in ok},
    }


async def warm_up(base_url: str, concurrency: int, texts: list[str], max_tokens: int, timeout: float) -> int:
    """Unmeasured: one request to the base and to a0, then one mixed burst at the highest concurrency; returns errors."""
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=timeout)
    try:
        first = [await one_request(client, name, texts[0], max_tokens) for name in (BASE_NAME, "a0")]
        burst = await asyncio.gather(*(one_request(client, f"a{i % ADAPTERS}", texts[i % len(texts)], max_tokens) for i in range(concurrency)))
    finally:
        await client.close()
    return sum(r["error"] is not None for r in first + list(burst))


# ---------------------------------------------------------------------------------------------------------------
# report


def machine(threads: int, device: str) -> dict:
    import peft
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if device == "cuda" and torch.cuda.is_available() else None
    try:
        memory = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError):
        memory = "?"
    return {"cores": len(os.sched_getaffinity(0)), "cpu": cpu, "memory": memory, "torch_threads": threads, "gpu": gpu,
            "device": device, "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "python": platform.python_version(), "load_1min_start": round(os.getloadavg()[0], 2)}


def _ms(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def table(cells: list[dict]) -> str:
    lines = ["| server | scenario | concurrency | requests | completion tokens (mean) | tokens/s | latency p50 ms | latency p95 ms "
             "| TTFT p50 ms | TTFT p95 ms | errors | same reply as naive | load 1m |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for c in cells:
        requests = f"{c['requests']}" + (f" of {c['planned']} (capped)" if c["capped"] else "")
        mean = "-" if c["tokens_mean"] is None else f"{c['tokens_mean']:.1f}"
        rate = "-" if c["tokens_per_s"] is None else f"{c['tokens_per_s']:.1f}"
        lines.append(f"| {c['server']} | {c['scenario']} | {c['concurrency']} | {requests} | {c['completion_tokens']} ({mean}) | {rate} "
                     f"| {_ms(c['latency_p50_s'])} | {_ms(c['latency_p95_s'])} | {_ms(c['ttft_p50_s'])} | {_ms(c['ttft_p95_s'])} | {c['errors']} | {c.get('same_as_naive') or ''} "
                     f"| {c['load_1min'][0]:g} → {c['load_1min'][1]:g} |")
    return "\n".join(lines)


def agree(cells: list[dict]) -> None:
    """Greedy replies should match: per tunewise cell, how many replies equal the naive server's to the same request."""
    for ours in (c for c in cells if c["server"] == "tunewise"):
        theirs = next((c for c in cells if c["server"] == "naive" and c["scenario"] == ours["scenario"]
                       and c["concurrency"] == ours["concurrency"]), None)
        if theirs is not None:
            common = set(ours["replies"]) & set(theirs["replies"])
            ours["same_as_naive"] = f"{sum(ours['replies'][i] == theirs['replies'][i] for i in common)}/{len(common)}"


def goals(cells: list[dict], concurrencies: list[int]) -> list[dict]:
    def cell(server, scenario, c):
        return next((x for x in cells if x["server"] == server and x["scenario"] == scenario and x["concurrency"] == c), None)

    def rate(server, scenario, c):
        found = cell(server, scenario, c)
        return found["tokens_per_s"] if found and found["tokens_per_s"] else None

    top, low = max(concurrencies), min(concurrencies)
    at = "" if top == 16 else f" (measured at c={top}: c=16 was not run)"
    out = []
    mixed, base = rate("tunewise", "mixed-8", top), rate("tunewise", "base", top)
    if mixed and base:
        ratio = mixed / base
        out.append({"goal": f"tunewise mixed-8 / base tokens/s at c={top} >= 0.8{at}", "value": round(ratio, 3),
                    "detail": f"{mixed:.1f} / {base:.1f}", "pass": ratio >= 0.8})
    for scenario in ("mixed-8", "base"):
        ours, theirs = rate("tunewise", scenario, top), rate("naive", scenario, top)
        if ours and theirs:
            ratio = ours / theirs
            out.append({"goal": f"tunewise / naive tokens/s, {scenario}, at c={top} >= 4{at}", "value": round(ratio, 3),
                        "detail": f"{ours:.1f} / {theirs:.1f}", "pass": ratio >= 4})
    ttfts = {s: cell("tunewise", s, low)["ttft_p50_s"] for s in SCENARIOS if cell("tunewise", s, low) and cell("tunewise", s, low)["ttft_p50_s"] is not None}
    if ttfts and low == 1:
        worst = max(ttfts.values())
        out.append({"goal": "tunewise TTFT p50 at c=1 < 300 ms (worst scenario)", "value": round(worst * 1000, 1),
                    "detail": ", ".join(f"{s} {v * 1000:.0f} ms" for s, v in ttfts.items()), "pass": worst < 0.3})
    errors = sum(c["errors"] for c in cells)
    out.append({"goal": "no failed requests (non-2xx, error events, exceptions)", "value": errors, "detail": f"{errors} in {sum(c['requests'] for c in cells)}",
                "pass": errors == 0})
    return out


# ---------------------------------------------------------------------------------------------------------------


def requests_for(concurrency: int, scale: float, fixed: int | None) -> int:
    planned = fixed if fixed else DEFAULT_REQUESTS.get(concurrency, max(16, 4 * concurrency))
    return max(concurrency, math.ceil(planned * scale))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child_main(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="base model: a name tunewise resolves or a local folder (default: the embedded one)")
    parser.add_argument("--random-shape", choices=sorted(RANDOM_SHAPES), help="instead of --model, a random-init Llama of this shape "
                        "(1b: Llama-3.2-1B's, with the embedded tokenizer's 49,152-id vocabulary); for GPU runs")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when a GPU is visible, else cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of each server (default: the cores this process may use)")
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"comma-separated, from {SERVERS}")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, from {SCENARIOS}")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated client counts")
    parser.add_argument("--requests", type=int, default=None, help=f"requests per cell at every concurrency (default {DEFAULT_REQUESTS})")
    parser.add_argument("--requests-scale", type=float, default=1.0, help="multiply the requests per cell (at least one per client)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--cell-timeout", type=float, default=300, help="no new request in a cell after this many seconds")
    parser.add_argument("--request-timeout", type=float, default=300)
    parser.add_argument("--engine", choices=["stacked", "peft"], default="stacked", help="tunewise's adapter engine")
    parser.add_argument("--max-batch-size", type=int, default=None, help="tunewise's serve.max_batch_size (default: ServeConfig's)")
    parser.add_argument("--batch-wait-ms", type=float, default=None, help="tunewise's serve.batch_wait_ms (default: ServeConfig's)")
    parser.add_argument("--lora-layers", default="recipe", help="recipe (tunewise train's choice for the device), all, or a number of top blocks")
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default=str(Path(__file__).resolve().parent / "out" / "serve"), help="cache of built models and adapters")
    parser.add_argument("--json", help="also write the raw numbers here")
    args = parser.parse_args()
    servers, scenarios = args.servers.split(","), args.scenarios.split(",")
    if set(servers) - set(SERVERS) or set(scenarios) - set(SCENARIOS):
        parser.error(f"servers from {SERVERS}, scenarios from {SCENARIOS}")
    concurrencies = sorted({int(c) for c in args.concurrency.split(",")})
    if args.lora_layers not in ("recipe", "all") and not args.lora_layers.isdigit():
        parser.error("--lora-layers: recipe, all or a number")

    import torch

    from tunewise.serve.config import ServeConfig

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    threads = args.threads or len(os.sched_getaffinity(0))
    serve_defaults = ServeConfig()
    work = Path(args.work).expanduser()
    command = shlex.join([os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) else sys.executable, *sys.argv])
    header = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "command": command, **machine(threads, device)}

    if args.random_shape:
        model_ref = str(build_random_base(args.random_shape, work, args.seed))
        key = f"random-{args.random_shape}-untied-seed{args.seed}"
        header["model"] = f"random-init Llama, {args.random_shape} shape {RANDOM_SHAPES[args.random_shape]}, untied output layer, embedded tokenizer (vocab 49,152), fp32"
    else:
        model_ref = args.model
        key = Path(args.model).name if Path(args.model).expanduser().exists() else args.model.replace("/", "--")
        header["model"] = f"{args.model} (fp32)"
    adapters, adapter_info = build_adapters(model_ref, key, work, args.lora_layers, device, args.seed)
    header["adapters"] = adapter_info
    header["serve"] = {"engine": args.engine, "max_batch_size": args.max_batch_size or serve_defaults.max_batch_size,
                       "batch_wait_ms": serve_defaults.batch_wait_ms if args.batch_wait_ms is None else args.batch_wait_ms}
    header["max_tokens"] = args.max_tokens
    texts = prompts()
    spec = {"model": model_ref, "adapters": adapters, "threads": threads, "device": device if device == "cuda" else None,
            "engine": args.engine, **header["serve"]}

    children: dict[str, Child] = {}
    cells: list[dict] = []
    try:
        for kind in servers:  # both loaded before any measurement; each measured alone
            children[kind] = Child({**spec, "kind": kind}, load_timeout=1800)
            header[f"{kind}_load_s"] = round(children[kind].load_s, 1)
            print(f"{kind} server listening on {children[kind].base_url} (loaded in {children[kind].load_s:.1f} s)", file=sys.stderr, flush=True)
        if not args.no_warmup:
            for kind, child in children.items():
                started = time.perf_counter()
                failed = asyncio.run(warm_up(child.base_url, max(concurrencies), texts, min(8, args.max_tokens), args.request_timeout))
                print(f"{kind} warmed up in {time.perf_counter() - started:.1f} s ({failed} failed)", file=sys.stderr, flush=True)
        for scenario in scenarios:
            for concurrency in concurrencies:
                count = requests_for(concurrency, args.requests_scale, args.requests)
                for kind, child in children.items():
                    load_before = os.getloadavg()[0]
                    cell = asyncio.run(run_cell(child.base_url, scenario, concurrency, count, texts, args.max_tokens,
                                                args.cell_timeout, args.request_timeout))
                    cell = {"server": kind, **cell, "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
                    cells.append(cell)
                    print(f"{kind} {scenario} c={concurrency}: {cell['requests']} requests in {cell['wall_s']:.1f} s, "
                          f"{cell['tokens_per_s'] or 0:.1f} tokens/s, {cell['errors']} errors, load {load_before:.2f}", file=sys.stderr, flush=True)
    finally:
        for child in children.values():
            child.stop()

    header["load_1min_end"] = round(os.getloadavg()[0], 2)
    agree(cells)
    results = goals(cells, concurrencies)
    gpu = f", GPU {header['gpu']}" if header["gpu"] else ""
    print(f"Machine: {header['cores']} cores ({header['cpu']}), {header['memory']}, torch threads {threads}{gpu}, device {device}; "
          f"load {header['load_1min_start']} at start, {header['load_1min_end']} at end")
    print(f"Date: {header['date']}; torch {header['torch']}, transformers {header['transformers']}, peft {header['peft']}, Python {header['python']}")
    print(f"Command: `{command}`")
    print(f"Model: {header['model']}; adapters: {ADAPTERS} x LoRA r{LORA_RANK} alpha {LORA_ALPHA} all-linear, {adapter_info['layers']} blocks; "
          f"tunewise engine {args.engine}, max_batch_size {header['serve']['max_batch_size']}, batch_wait_ms {header['serve']['batch_wait_ms']:g}; "
          f"max_tokens {args.max_tokens}, temperature 0, streaming; servers loaded in "
          + ", ".join(f"{k} {header[f'{k}_load_s']} s" for k in children))
    print()
    print(table(cells))
    print()
    print("| goal | measured | detail | |")
    print("| --- | ---: | --- | --- |")
    for g in results:
        print(f"| {g['goal']} | {g['value']} | {g['detail']} | {'PASS' if g['pass'] else 'MISS'} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"header": header, "cells": cells, "goals": results}, indent=1))


if __name__ == "__main__":
    main()

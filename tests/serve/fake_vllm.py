"""A stand-in for vLLM's OpenAI server: the subset tunewise uses, with vLLM's status codes and messages.

    app = create_app("base-model", {"a": "/path/to/adapter"})   # in-process: httpx.ASGITransport(app)
    python fake_vllm.py serve MODEL --port 8123 --enable-lora --lora-modules a=/path ...   # as `vllm serve`

Replies are deterministic: "<model>: <last user message>", one token per word. Tests steer failures
through `app.state.fake` in-process, or `POST /fake/state` over a socket.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse


@dataclass
class FakeState:
    base: str
    base_root: str
    adapters: dict[str, str]
    max_lora_rank: int = 16
    fail: list[int] = field(default_factory=list)  # statuses the next chat requests answer with, one each
    omit_usage: bool = False  # a server that ignores stream_options and never counts
    fail_midstream: bool = False  # an error event after the first content chunk, as vLLM sends one
    requests: list[dict] = field(default_factory=list)  # chat bodies received, with their Authorization header


def error(status: int, message: str, type_: str) -> JSONResponse:
    # Current vLLM nests the error as OpenAI does; its code is the HTTP status again.
    return JSONResponse({"error": {"message": message, "type": type_, "param": None, "code": status}}, status_code=status)


FAILURES = {500: ("fake internal failure", "InternalServerError"), 503: ("fake overload", "ServiceUnavailableError"),
            429: ("Too many requests", "RateLimitError"), 401: ("Unauthorized", "AuthenticationError")}


def create_app(base: str = "base-model", adapters: dict[str, str] | None = None, *, base_root: str | None = None,
               max_lora_rank: int = 16, runtime_lora_updating: bool = True) -> FastAPI:
    app = FastAPI()
    state = app.state.fake = FakeState(base, base_root or base, dict(adapters or {}), max_lora_rank)

    @app.get("/health")
    async def health():
        return Response(status_code=200)

    @app.get("/v1/models")
    async def models():
        created = int(time.time())
        cards = [{"id": state.base, "object": "model", "created": created, "owned_by": "vllm", "root": state.base_root, "parent": None,
                  "max_model_len": 2048}]
        cards += [{"id": name, "object": "model", "created": created, "owned_by": "vllm", "root": path, "parent": state.base}
                  for name, path in state.adapters.items()]
        return {"object": "list", "data": cards}

    @app.post("/fake/state")
    async def set_state(request: Request):
        for key, value in (await request.json()).items():
            setattr(state, key, value)
        return {"ok": True}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        body = await request.json()
        state.requests.append({**body, "_authorization": request.headers.get("authorization")})
        if state.fail:
            status = state.fail.pop(0)
            return error(status, *FAILURES.get(status, ("fake failure", "BadRequestError")))
        model = body.get("model")
        if model != state.base and model not in state.adapters:
            return error(404, f"The model `{model}` does not exist.", "NotFoundError")
        users = [m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user"]
        words = f"{model}: {users[-1] if users else ''}".split()
        limit = body.get("max_tokens") or body.get("max_completion_tokens") or len(words)
        text, finish = " ".join(words[:limit]), "length" if limit < len(words) else "stop"
        prompt_tokens = sum(len(str(m.get("content") or "").split()) for m in body.get("messages", []))
        n = body.get("n") or 1
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": n * min(limit, len(words)),
                 "total_tokens": prompt_tokens + n * min(limit, len(words))}
        id_, created = "chatcmpl-" + uuid.uuid4().hex, int(time.time())
        if not body.get("stream"):
            reply = {"id": id_, "object": "chat.completion", "created": created, "model": model,
                     "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "logprobs": None,
                                  "finish_reason": finish, "stop_reason": None} for i in range(n)]}
            if not state.omit_usage:
                reply["usage"] = usage
            return reply
        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) and not state.omit_usage

        def events():
            def chunk(choices, **extra):
                body = {"id": id_, "object": "chat.completion.chunk", "created": created, "model": model, "choices": choices, **extra}
                return f"data: {json.dumps(body)}\n\n"

            for i in range(n):
                yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}])
                for k, word in enumerate(text.split()):
                    yield chunk([{"index": i, "delta": {"content": word if k == 0 else " " + word}, "logprobs": None, "finish_reason": None}])
                    if state.fail_midstream:
                        failure = {"message": "fake engine failure", "type": "InternalServerError", "param": None, "code": 500}
                        yield f"data: {json.dumps({'error': failure})}\n\n"
                        yield "data: [DONE]\n\n"
                        return
                yield chunk([{"index": i, "delta": {}, "logprobs": None, "finish_reason": finish, "stop_reason": None}])
            if include_usage:
                yield chunk([], usage=usage)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    if runtime_lora_updating:  # vLLM only adds these routes with VLLM_ALLOW_RUNTIME_LORA_UPDATING set

        @app.post("/v1/load_lora_adapter")
        async def load(request: Request):
            body = await request.json()
            name, path = body.get("lora_name"), body.get("lora_path")
            if not name or not path:
                return error(400, "Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput")
            if name in state.adapters:
                return error(400, f"The lora adapter '{name}' has already been loaded.", "InvalidUserInput")
            config = Path(path) / "adapter_config.json"
            if not config.is_file():
                return error(404, f"Loading lora {name} failed: No adapter found for {path}", "NotFoundError")
            rank = json.loads(config.read_text()).get("r", 0)
            if rank > state.max_lora_rank:
                return error(400, f"LoRA rank {rank} is greater than max_lora_rank {state.max_lora_rank}.", "BadRequestError")
            state.adapters[name] = path
            return PlainTextResponse(f"Success: LoRA adapter '{name}' added successfully.")

        @app.post("/v1/unload_lora_adapter")
        async def unload(request: Request):
            body = await request.json()
            name = body.get("lora_name")
            if not name and not body.get("lora_int_id"):
                return error(400, "either 'lora_name' and 'lora_int_id' needs to be provided.", "InvalidUserInput")
            if name not in state.adapters:
                return error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
            del state.adapters[name]
            return PlainTextResponse(f"Success: LoRA adapter '{name}' removed successfully.")

    return app


def main(argv: list[str] | None = None) -> None:
    """`vllm serve MODEL ...`: the flags tunewise passes; FAKE_VLLM_FAIL=message makes it exit 1 at start."""
    import sys

    import uvicorn

    parser = argparse.ArgumentParser(prog="vllm")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name")
    parser.add_argument("--enable-lora", action="store_true")
    parser.add_argument("--lora-modules", nargs="+", default=[])
    parser.add_argument("--max-loras", type=int, default=1)
    parser.add_argument("--max-lora-rank", type=int, default=16)
    args, _ = parser.parse_known_args(argv)
    if os.environ.get("FAKE_VLLM_FAIL"):
        print(f"RuntimeError: {os.environ['FAKE_VLLM_FAIL']}", file=sys.stderr)
        raise SystemExit(1)
    adapters = dict(module.split("=", 1) for module in args.lora_modules)
    if adapters and not args.enable_lora:
        raise SystemExit("--lora-modules needs --enable-lora")
    runtime = os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "0").strip().lower() in ("1", "true")
    app = create_app(args.served_model_name or args.model, adapters, base_root=args.model, max_lora_rank=args.max_lora_rank,
                     runtime_lora_updating=runtime and args.enable_lora)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

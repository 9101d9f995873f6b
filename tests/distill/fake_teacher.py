"""A deterministic fake teacher: an OpenAI-compatible chat endpoint for the distill tests, served on loopback.

    with serve_fake() as (url, fake):
        label_rows(..., teacher=f"endpoint:{url}#gpt-5-mini")
        fake.calls  # requests answered (200s), fake.attempts every request including refused ones

The label is a function of the input text: "refund" -> refund, "charge" -> billing, else other. Words in the
text change the behaviour: "unsure" answers differently for samples after the first (seed > 0), "busy"
answers 429 with Retry-After: 0 once per prompt and sample, "broken" always 500 (Retry-After: 0, so retries
are instant). Each reply carries usage: 100 prompt tokens, 2 completion tokens.

"json" in the text answers a JSON object instead, `{"label": ..., "urgent": ...}` with its keys in another
order on odd seeds (the same object, written differently); with "garbled" the reply is not JSON at all, with
"badtype" the label is a number (valid JSON that a schema wanting a string refuses).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def label_for(text: str) -> str:
    low = text.lower()
    return "refund" if "refund" in low else "billing" if "charge" in low else "other"


def json_reply(text: str, label: str, seed: int) -> str:
    if "garbled" in text:
        return "Sure! The label is " + label
    value = {"label": 3 if "badtype" in text else label, "urgent": "urgent" in text}
    return json.dumps(dict(reversed(value.items())) if seed % 2 else value)


class FakeTeacher:
    def __init__(self):
        self.calls = 0
        self.attempts = 0
        self.seen: Counter = Counter()
        self.lock = threading.Lock()
        self.app = FastAPI()
        self.app.state.startup_error = None  # what `tunewise.serve.api.running` checks
        self.app.post("/v1/chat/completions")(self.chat)

    async def chat(self, request: Request):
        body = await request.json()
        text = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
        seed = int(body.get("seed") or 0)
        with self.lock:
            self.attempts += 1
            self.seen[(text, seed)] += 1
            first_try = self.seen[(text, seed)] == 1
        if "broken" in text:
            return JSONResponse({"error": {"message": "teacher crashed"}}, status_code=500, headers={"Retry-After": "0"})
        if "busy" in text and first_try:
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429, headers={"Retry-After": "0"})
        label = label_for(text)
        if "unsure" in text and seed > 0:
            label = ["other", "billing", "refund"][seed % 3]
        with self.lock:
            self.calls += 1
        content = json_reply(text, label, seed) if "json" in text else f"Label: {label}"
        return {"id": "fake", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 2, "total_tokens": 102}}


@contextlib.contextmanager
def serve_fake():
    from tunewise.serve.api import running

    fake = FakeTeacher()
    with running(fake.app, timeout_s=30) as port:
        yield f"http://127.0.0.1:{port}/v1", fake

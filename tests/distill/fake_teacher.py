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

A request whose system message asks to rewrite the message (`tunewise.distill.vary`) answers a paraphrase: the
words shuffled by the seed behind a seed-chosen opener. "verbatim" answers the text unchanged (an exact
duplicate), "nearly" the text plus one word (a near duplicate), "blank" nothing, and "drift" swaps "refund" for
"charge", so that the teacher labels the paraphrase billing whatever its source row said.
"""

from __future__ import annotations

import contextlib
import json
import random
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


OPENERS = ["Hello,", "Hi team,", "Quick question:", "Good morning,", "Hey,", "Dear support,"]


def paraphrase(text: str, seed: int) -> str:
    if "blank" in text:
        return ""
    if "verbatim" in text:
        return text
    if "nearly" in text:
        return text + " thanks"
    words = text.replace("refund", "charge").split() if "drift" in text else text.split()
    random.Random(f"{text}|{seed}").shuffle(words)  # a str seed is hashed with sha512: the same in every process
    return f"{OPENERS[seed % len(OPENERS)]} {' '.join(words)}"


class FakeTeacher:
    def __init__(self):
        self.calls = 0
        self.paraphrases = 0  # of the calls, those that answered a paraphrase
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
        system = " ".join(m["content"] for m in body["messages"] if m["role"] == "system")
        if "rewrite" in system.lower():
            with self.lock:
                self.calls += 1
                self.paraphrases += 1
            return self.reply(body, paraphrase(text, seed))
        label = label_for(text)
        if "unsure" in text and seed > 0:
            label = ["other", "billing", "refund"][seed % 3]
        with self.lock:
            self.calls += 1
        content = json_reply(text, label, seed) if "json" in text else f"Label: {label}"
        return self.reply(body, content)

    @staticmethod
    def reply(body: dict, content: str) -> dict:
        return {"id": "fake", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 2, "total_tokens": 102}}


@contextlib.contextmanager
def serve_fake():
    from tunewise.serve.api import running

    fake = FakeTeacher()
    with running(fake.app, timeout_s=30) as port:
        yield f"http://127.0.0.1:{port}/v1", fake

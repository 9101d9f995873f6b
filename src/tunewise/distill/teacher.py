"""The teacher of a distillation: one HTTP code path for endpoints and for local candidate specs.

    with open_teacher("endpoint:https://api.example/v1#big-model") as teacher:
        call = teacher.ask([{"role": "user", "content": "my card was charged twice"}], temperature=0.7, sample=1)

A local spec (`"knn-few-shot:smollm2-135m?k=8"`, with `teacher_data` for its shots) is served in-process
by `tunewise.serve.create_server` on a loopback port, so it is asked exactly like an endpoint. Each call
is retried on timeouts, 429 and 5xx with exponential backoff that honours Retry-After, within a bounded
number of attempts and a bounded total wait; a call that still fails raises `TeacherFailed`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tunewise.evaluate.candidates import CandidateFailed, EndpointClient
from tunewise.evaluate.config import EvalConfig
from tunewise.evaluate.specs import parse_spec
from tunewise.pricing import token_prices


class TeacherFailed(Exception):
    """One teacher call that failed after its retries: the row records the message, the run goes on."""


@dataclass
class Call:
    """One teacher reply with what it cost."""

    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None  # None: no price known for this teacher
    latency_ms: float
    cached: bool = False


class Teacher:
    """Asks an OpenAI-compatible chat endpoint; prices each reply from its usage (endpoint) or its time (local)."""

    def __init__(self, key: str, url: str, model: str, *, local: bool, price: tuple[float, float] | None = None,
                 hourly_usd: float | None = None, config: EvalConfig | None = None, max_tokens: int = 256):
        self.key, self.model, self.local = key, model, local
        self.price, self.hourly_usd, self.max_tokens = price, hourly_usd, max_tokens
        self.config = config or EvalConfig()
        # The evaluation's client gives the URL, headers and timeouts; its own chat() is greedy-only and does
        # not read Retry-After, so the request loop below is the teacher's.
        self._endpoint = EndpointClient(url, model, self.config)
        self.url = self._endpoint.url

    @property
    def priced(self) -> bool:
        return self.price is not None or (self.local and bool(self.hourly_usd))

    def close(self) -> None:
        self._endpoint.close()

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None, seconds: float) -> float | None:
        if self.local:
            return seconds * self.hourly_usd / 3600 if self.hourly_usd else None
        if self.price is None or (prompt_tokens is None and completion_tokens is None):
            return None
        return ((prompt_tokens or 0) * self.price[0] + (completion_tokens or 0) * self.price[1]) / 1e6

    def ask(self, messages: list[dict], *, temperature: float, sample: int = 0, max_tokens: int | None = None,
            stop: threading.Event | None = None) -> Call:
        """One reply; raises TeacherFailed after the last retry (or at once on a 4xx that retrying cannot heal)."""
        try:
            text, seconds, tokens_in, tokens_out = self._endpoint.chat(
                messages, max_tokens=max_tokens or self.max_tokens, stop=stop, temperature=temperature, seed=sample)
        except CandidateFailed as exc:
            raise TeacherFailed(str(exc)) from None
        return Call(text, tokens_in, tokens_out, self.cost(tokens_in, tokens_out, seconds), seconds * 1000)


@contextmanager
def open_teacher(spec: str, *, teacher_data: str | None = None, pricing_file: str | None = None,
                 hourly_usd: float | None = None, config: EvalConfig | None = None) -> Iterator[Teacher]:
    """The teacher named by `spec`: `endpoint:URL#MODEL` (or `URL#MODEL`), or a local candidate spec served on loopback."""
    text = spec.strip()
    if text.startswith(("http://", "https://")):
        text = "endpoint:" + text
    parsed = parse_spec(text)
    if parsed.kind == "endpoint":
        teacher = Teacher(text, parsed.target, parsed.params["model"], local=False,
                          price=token_prices(parsed.params["model"], pricing_file), config=config)
        try:
            yield teacher
        finally:
            teacher.close()
        return
    from tunewise.serve import create_server
    from tunewise.serve.api import running

    key = text
    if teacher_data:
        from tunewise.store import file_hash

        key += f"@{file_hash(teacher_data)[:12]}"  # other shots, other answers: a separate cache
    # A prompt recipe runs on its own base model; an adapter's base comes from its run (the workspace's model).
    base = parsed.target if parsed.kind in ("zero-shot", "few-shot", "knn-few-shot") else None
    app = create_server(base, recipes={"teacher": text}, recipe_data=str(teacher_data) if teacher_data else None)
    with running(app) as port:
        teacher = Teacher(key, f"http://127.0.0.1:{port}/v1", "teacher", local=True, hourly_usd=hourly_usd, config=config)
        try:
            yield teacher
        finally:
            teacher.close()

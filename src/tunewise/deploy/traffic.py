"""Replay a labelled file as traffic to a deployment: simulated users, the application's client, feedback.

`simulate_traffic(url, "tickets", "eval.jsonl", users=200)` sends each row's prompt turns to the deployment
through the `openai` client (as an application would, with a user id so the split is sticky), reads which
variant answered from the `x-tunewise-variant` header and, with `feedback=True`, posts the row's reference
as ground truth to `POST /v1/feedback`. It is how the demo exercises a deployment, and a way to check a new
deployment on a held-out set before real users reach it.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tunewise.errors import EvaluationError


@dataclass
class Traffic:
    requests: int
    users: int
    errors: int
    by_variant: Counter = field(default_factory=Counter)
    correct_by_variant: Counter = field(default_factory=Counter)
    feedback_sent: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        parts = [f"{name} {count} ({self.correct_by_variant[name] / count:.0%} correct)"
                 for name, count in sorted(self.by_variant.items()) if count]
        return (f"{self.requests} requests from {self.users} users in {self.seconds:.0f} s: " + ", ".join(parts)
                + f"; {self.errors} errors, {self.feedback_sent} feedback labels")


def simulate_traffic(url: str, deployment: str, data: str | Path, *, users: int = 200, concurrency: int = 8,
                     feedback: bool = True, limit: int | None = None, max_tokens: int = 32, seed: int = 0,
                     api_key: str = "tunewise") -> Traffic:
    """Send the rows of `data` (any format `tunewise eval` reads) to model `deployment` at `url` (its /v1 base)."""
    import httpx
    import openai

    from tunewise.evaluate.tasks import detect_task, load_rows, parse_label

    rows = load_rows(data)[:limit] if limit else load_rows(data)
    if not rows:
        raise EvaluationError(f"{data}: no rows to send")
    task = detect_task(None, rows)
    labels = list(task.labels) if task.type == "classification" else None
    rng = random.Random(seed)
    # Each simulated user sends one or more rows: the same user twice must land on the same variant.
    user_of = [f"user-{rng.randrange(users):04d}" for _ in rows]
    client = openai.OpenAI(base_url=url, api_key=api_key, max_retries=2, timeout=600)
    http = httpx.Client(timeout=30)

    def send(position: int) -> tuple[str | None, bool, bool]:
        row = rows[position]
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=deployment, messages=row.messages, user=user_of[position], temperature=0, max_tokens=max_tokens)
        except openai.APIError:
            return None, False, False
        reply = raw.parse().choices[0].message.content or ""
        variant, request_id = raw.headers.get("x-tunewise-variant"), raw.headers.get("x-request-id")
        # Scored as the evaluation scores it: a classification reply counts when it parses to the reference label.
        answer_label = parse_label(reply, labels) if labels else reply.strip()
        correct = row.reference is not None and (answer_label or "").casefold() == row.reference.strip().casefold()
        sent = False
        if feedback and request_id and row.reference is not None:
            answer = http.post(f"{url.rstrip('/')}/feedback", json={"request_id": request_id, "label": row.reference, "correct": correct},
                               headers={"Authorization": f"Bearer {api_key}"})
            sent = answer.status_code == 200
        return variant, correct, sent

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            outcomes = list(pool.map(send, range(len(rows))))
    finally:
        http.close()
        client.close()
    traffic = Traffic(requests=len(rows), users=len(set(user_of)), errors=sum(1 for v, _, _ in outcomes if v is None),
                      seconds=time.perf_counter() - started)
    for variant, correct, sent in outcomes:
        if variant is None:
            continue
        traffic.by_variant[variant] += 1
        traffic.correct_by_variant[variant] += int(correct)
        traffic.feedback_sent += int(sent)
    return traffic


__all__ = ["Traffic", "simulate_traffic"]

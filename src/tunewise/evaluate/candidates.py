"""How each kind of candidate produces its replies: local models, endpoints, the classic classifier.

Each runner returns a `Replies`: one text per eval row plus token counts, per-row latency where each
request is timed on its own (endpoints, the classic classifier; not batched local generation), and
how time and cost were measured. Local models are loaded once per model name (or run) in a `ModelCache`
shared by all candidates of an evaluation.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tunewise.errors import EvaluationError, TunewiseError
from tunewise.evaluate.config import EvalConfig
from tunewise.evaluate.specs import CandidateSpec
from tunewise.evaluate.tasks import Example, Task, build_prompt, row_system, task_system_prompt


@dataclass
class Replies:
    texts: list[str]
    latency_s: list[float] | None  # measured request by request; None where requests ran batched (their time is shared)
    tokens_in: list[int | None]
    tokens_out: list[int | None]
    wall_seconds: float  # total time spent producing all replies
    basis: str  # how latency and cost were measured, for the report
    local: bool = True
    model: str | None = None
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)


class CandidateFailed(Exception):
    """A candidate that could not produce replies (endpoint down, model missing): reported, the others go on."""


# -- local models -----------------------------------------------------------------------------------


class ModelCache:
    """Loaded (model, tokenizer) pairs keyed by model name or run, so candidates share one copy."""

    def __init__(self, store=None):
        self.store = store
        self._models: dict[str, tuple] = {}

    def base(self, name: str):
        key = f"model:{name}"
        if key not in self._models:
            from tunewise.models import load_model

            self._models[key] = load_model(name)
        return self._models[key]

    def adapter(self, ref: str):
        """(model, tokenizer, run_id) for `adapter:RUN` (a run id or prefix in the store, or a folder)."""
        key = f"run:{ref}"
        if key not in self._models:
            from tunewise.train import load_trained

            run_id = None
            target = ref
            if not Path(ref).expanduser().is_dir():
                if self.store is None:
                    raise EvaluationError(f"adapter:{ref}: not a folder and no store to look the run up in")
                try:
                    run = self.store.get_run(ref)
                except TunewiseError as exc:
                    raise EvaluationError(f"adapter:{ref}: no such run in the store or folder (list runs with `tunewise runs`)") from exc
                run_id, target = run.id, run
            try:
                model, tokenizer = load_trained(target, store=self.store)
            except TunewiseError as exc:
                raise EvaluationError(f"adapter:{ref}: {exc}") from exc
            self._models[key] = (model, tokenizer, run_id)
        return self._models[key]


def prompts_for(spec: CandidateSpec, task: Task, rows: list[Example], train: list[Example] | None, config: EvalConfig, retriever=None) -> list[list[dict]]:
    """Chat prompts of a prompt candidate (zero-, few-, knn-few-shot, endpoint) or an adapter (the rows as trained)."""
    if spec.kind == "adapter":
        # A fine-tune saw the rows' own turns in training; extra instructions would be out of distribution.
        return [list(r.messages) for r in rows]
    from tunewise.evaluate.tasks import balanced_shots

    shots_fixed = []
    if spec.kind == "few-shot":
        shots_fixed = balanced_shots(train or [], spec.params["k"], task, seed=config.seed)
    neighbours = retriever.nearest([r.text for r in rows], spec.params["k"]) if spec.kind == "knn-few-shot" else None
    prompts = []
    for i, row in enumerate(rows):
        system = task_system_prompt(task, row_system(row) or config.system_prompt)
        shots = neighbours[i] if neighbours is not None else shots_fixed
        prompts.append(build_prompt(system, shots, row, shot_max_chars=config.shot_max_chars))
    return prompts


def run_local(model, tokenizer, prompts: list[list[dict]], task: Task, config: EvalConfig, *, hardware: str,
              decoding: str | None = None, on_rows=None) -> Replies:
    """Batched greedy generation; classification stops as soon as a label is complete.

    `decoding` ('free' or 'constrained', the candidate's own; default `config.decoding`) only matters for
    classification: constrained lets the model spell nothing but a label.
    """
    from tunewise.evaluate.generation import generate_batched, label_token_budget

    labels = task.labels if task.type == "classification" else None
    budget = label_token_budget(tokenizer, task.labels, config.label_slack_tokens) if labels else config.max_new_tokens
    started = time.perf_counter()
    gens = generate_batched(
        model, tokenizer, prompts, max_new_tokens=budget, batch_size=config.batch_size, labels=labels,
        decoding=decoding or config.decoding, on_batch=on_rows,
    )
    wall = time.perf_counter() - started
    basis = (
        f"measured on this machine ({hardware}): {len(prompts)} requests in {wall:.1f} s, prefilled {config.batch_size} "
        f"at a time and decoded in groups of up to {max((g.batch_size for g in gens), default=0)}; time per request is "
        f"amortised (wall time / requests), not a per-request latency"
    )
    return Replies(
        [g.text for g in gens], None, [g.tokens_in for g in gens],
        [g.tokens_out for g in gens], wall, basis,
    )


# -- endpoints ----------------------------------------------------------------------------------------


def chat_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else url + "/chat/completions"


def endpoint_headers(url: str) -> dict:
    import os

    key = os.environ.get("TUNEWISE_ENDPOINT_API_KEY")
    # The OpenAI key only ever goes to OpenAI, never to an arbitrary URL given on the command line.
    if not key and "api.openai.com" in url:
        key = os.environ.get("OPENAI_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


MAX_RETRY_WAIT_S = 120.0  # the most one call waits in backoff, all retries together
MAX_RETRY_AFTER_S = 60.0  # a longer Retry-After is cut to this (and counts against the total)


def retry_after(value: str | None) -> float | None:
    """Seconds of a Retry-After header (delta-seconds form; an HTTP date is treated as absent)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class EndpointClient:
    """OpenAI chat completions with retries on timeouts, 429 and 5xx: exponential backoff, or the server's
    Retry-After when it sends one, with a bounded number of attempts and a bounded total wait."""

    def __init__(self, url: str, model: str, config: EvalConfig):
        import httpx

        self.url, self.model, self.config = chat_url(url), model, config
        self.client = httpx.Client(timeout=config.endpoint_timeout_s, headers=endpoint_headers(url))

    def close(self) -> None:
        self.client.close()

    def chat(self, messages: list[dict], *, max_tokens: int, stop: threading.Event | None = None, temperature: float = 0.0,
             seed: int | None = None) -> tuple[str, float, int | None, int | None]:
        """(reply, seconds, prompt tokens, completion tokens); raises CandidateFailed after the last retry."""
        import httpx

        body = {"model": self.model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
        if seed is not None:
            body["seed"] = seed
        delay = self.config.endpoint_backoff_s
        waited = 0.0
        attempts = self.config.endpoint_retries + 1
        problem = "no attempt"
        for attempt in range(attempts):
            if stop is not None and stop.is_set():
                raise CandidateFailed("stopped after another request failed")
            started = time.perf_counter()
            wait = delay
            try:
                response = self.client.post(self.url, json=body)
            except httpx.TimeoutException:
                problem = f"timed out after {self.config.endpoint_timeout_s:g} s"
            except httpx.TransportError as exc:
                problem = f"cannot connect ({type(exc).__name__})"
            else:
                seconds = time.perf_counter() - started
                if response.status_code == 200:
                    try:
                        data = response.json()
                        text = data["choices"][0]["message"].get("content") or ""
                    except (ValueError, KeyError, IndexError, TypeError):
                        raise CandidateFailed(f"{self.url}: the reply is not an OpenAI chat completion") from None
                    usage = data.get("usage") or {}
                    return text.strip(), seconds, usage.get("prompt_tokens"), usage.get("completion_tokens")
                problem = f"HTTP {response.status_code}: {response.text[:120].strip()}"
                if response.status_code not in (408, 409, 429) and response.status_code < 500:
                    raise CandidateFailed(f"{self.url}: {problem}")  # a client error will not heal by retrying
                hinted = retry_after(response.headers.get("retry-after"))
                if hinted is not None:
                    wait = min(hinted, MAX_RETRY_AFTER_S)
            if attempt == attempts - 1 or waited + wait > MAX_RETRY_WAIT_S:
                break
            time.sleep(wait)
            waited += wait
            delay *= 2
        raise CandidateFailed(f"{self.url}: {problem} ({attempt + 1} attempts)")


def run_endpoint(spec: CandidateSpec, prompts: list[list[dict]], task: Task, config: EvalConfig, *, on_rows=None) -> Replies:
    """Every prompt through the endpoint, a few in parallel; the first request that fails for good fails the candidate."""
    client = EndpointClient(spec.target, spec.params["model"], config)
    max_tokens = 32 if task.type == "classification" else config.max_new_tokens
    stop = threading.Event()
    errors: list[str] = []

    def one(messages):
        try:
            result = client.chat(messages, max_tokens=max_tokens, stop=stop)
        except CandidateFailed as exc:
            if not stop.is_set():
                errors.append(str(exc))  # the real cause, not the "stopped" of requests cancelled after it
            stop.set()
            raise
        if on_rows:
            on_rows(1)
        return result

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=config.endpoint_concurrency) as pool:
            results = list(pool.map(one, prompts))
    except CandidateFailed as exc:
        raise CandidateFailed(errors[0] if errors else str(exc)) from None
    finally:
        client.close()
    wall = time.perf_counter() - started
    return Replies(
        [r[0] for r in results], [r[1] for r in results], [r[2] for r in results], [r[3] for r in results], wall,
        f"measured per request against {spec.target} ({config.endpoint_concurrency} in parallel)", local=False,
        model=spec.params["model"],
    )


# -- the classic classifier ------------------------------------------------------------------------------


def run_classic(task: Task, rows: list[Example], train: list[Example], *, hardware: str) -> Replies:
    """TF-IDF (word 1-2 grams + char 3-5 grams) and logistic regression trained on the training set."""
    if task.type != "classification":
        raise CandidateFailed("classic:tfidf only applies to classification tasks")
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    labelled = [r for r in train if r.reference is not None and r.reference.strip() in set(task.labels)]
    if len({r.reference.strip() for r in labelled}) < 2:
        raise CandidateFailed("classic:tfidf needs training rows of at least two labels")
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=1)
    texts = [r.text for r in labelled]
    x = hstack([words.fit_transform(texts), chars.fit_transform(texts)]).tocsr()
    clf = LogisticRegression(max_iter=2000, C=10.0)
    clf.fit(x, [r.reference.strip() for r in labelled])
    latencies = []
    predictions = []
    started = time.perf_counter()
    for row in rows:
        # One request at a time, as a service would answer it, so latency is per request.
        t0 = time.perf_counter()
        features = hstack([words.transform([row.text]), chars.transform([row.text])]).tocsr()
        predictions.append(str(clf.predict(features)[0]))
        latencies.append(time.perf_counter() - t0)
    wall = time.perf_counter() - started
    basis = f"measured on this machine ({hardware}): one request at a time, {len(rows)} requests in {wall:.2f} s"
    return Replies(predictions, latencies, [None] * len(rows), [None] * len(rows), wall, basis)


# -- the LLM judge ---------------------------------------------------------------------------------------


def judge_scores(judge: str, rubric: str, rows: list[Example], outputs: list[str], config: EvalConfig) -> list[float | None]:
    """1-5 per row from an OpenAI-compatible judge (`URL#MODEL`); None where it gave no number.

    A row without a reference (live traffic nobody labelled) is graded against its request alone, and the prompt
    says so rather than showing the judge an empty reference.
    """
    import re

    url, _, model = judge.rpartition("#")
    if not url or not model:
        raise EvaluationError(f"judge {judge!r}: expected URL#MODEL, e.g. http://localhost:8000/v1#gpt-4o-mini")
    client = EndpointClient(url, model, config)

    def one(pair):
        row, out = pair
        messages = [
            {"role": "system", "content": f"You are a strict grader. {rubric} Answer with one digit from 1 to 5."},
            {"role": "user", "content": f"Request:\n{row.text}\n\nReference answer:\n{row.reference}\n\nReply to grade:\n{out}"},
        ]
        if row.reference is None:
            messages[1]["content"] = (f"Request:\n{row.text}\n\nThere is no reference answer: grade the reply against "
                                      f"the request alone.\n\nReply to grade:\n{out}")
        try:
            text = client.chat(messages, max_tokens=4)[0]
        except CandidateFailed:
            return None
        match = re.search(r"[1-5]", text)
        return float(match.group()) if match else None

    try:
        with ThreadPoolExecutor(max_workers=config.endpoint_concurrency) as pool:
            return list(pool.map(one, zip(rows, outputs)))
    finally:
        client.close()


__all__ = ["Replies", "CandidateFailed", "ModelCache", "prompts_for", "run_local", "run_endpoint", "run_classic", "judge_scores"]

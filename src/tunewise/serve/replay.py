"""Replay an evaluation's rows through a served model: is what is served what was evaluated?

`replay_evaluation(url, model, evaluation, candidate)` rebuilds the prompts the evaluation sent to one of
its candidates (with the evaluation's own settings; to a served recipe of the same spec, the rows' own
messages, since the recipe builds that prompt itself), sends them over HTTP to a served name (`tunewise
serve`, vLLM, any OpenAI-compatible server) through the evaluation's endpoint client, scores the replies
with the evaluation's metric and counts how many replies are identical to the ones it recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tunewise.errors import EvaluationError


@dataclass
class Replay:
    url: str
    model: str
    candidate: str
    requests: int
    same_replies: int  # identical to the evaluation's recorded reply
    metric: str
    served: float  # the metric over the served replies
    evaluated: float | None  # the metric the evaluation recorded for the candidate
    p50_ms: float
    p95_ms: float
    seconds: float

    def summary(self) -> str:
        evaluated = f"{self.evaluated:.3f}" if self.evaluated is not None else "n/a"
        return (f"{self.requests} requests to {self.model} at {self.url}: {self.metric} {self.served:.3f} served vs {evaluated} "
                f"evaluated, {self.same_replies}/{self.requests} replies identical, latency p50 {self.p50_ms:.0f} ms, "
                f"p95 {self.p95_ms:.0f} ms, {self.requests / self.seconds:.1f} requests/s")


def replay_evaluation(url: str, model: str, evaluation: str, candidate: str, *, store=None, concurrency: int = 16) -> Replay:
    """Send the prompts `evaluation` gave `candidate` (a name as its results list it) to `model` at `url`.

    Example: replay_evaluation("http://localhost:8000/v1", "tickets", "latest", "adapter:run-3f2a9c1b7d").summary()
    """
    import numpy as np

    from tunewise.evaluate import metrics, stats
    from tunewise.evaluate.candidates import prompts_for, run_endpoint
    from tunewise.evaluate.config import EvalConfig
    from tunewise.evaluate.review import comparison_results
    from tunewise.evaluate.run import _parse
    from tunewise.evaluate.tasks import Retriever, detect_task, load_rows
    from tunewise.store import Store

    with Store.borrow(store) as opened:
        record = opened.latest_evaluation(kind="compare") if evaluation == "latest" else opened.get_evaluation(evaluation)
        if record is None:
            raise EvaluationError("no evaluation in the store to replay (run `tunewise eval` first)")
        results = comparison_results(record)
        config = EvalConfig(**{**(record.config or {}), "endpoint_concurrency": concurrency})
    found = next((c for c in results.candidates if c.name == candidate or c.spec == candidate), None)
    if found is None or not found.completed:
        names = ", ".join(c.name for c in results.candidates if c.completed)
        raise EvaluationError(f"evaluation {record.id} has no completed candidate {candidate!r} (it has: {names})")
    rows = load_rows(results.eval_path)[: results.rows]
    train = load_rows(results.train_path) if results.train_path else None
    task = detect_task(train, rows, task_type=results.task_type, schema=results.json_schema)
    spec = _parse(found.spec, config, task)
    if spec.kind in ("classic", "endpoint"):
        raise EvaluationError(f"{found.name}: only a local model's prompts can be replayed (an adapter or a prompt candidate)")
    if _serves_recipe(url, model, spec.name):
        prompts = [list(row.messages) for row in rows]  # a served recipe builds the prompt itself, as the evaluation did
    else:
        retriever = Retriever(train or []) if spec.kind == "knn-few-shot" else None
        prompts = prompts_for(spec, task, rows, train, config, retriever)
    served = _parse(f"endpoint:{url}#{model}", config, task)
    replies = run_endpoint(served, prompts, task, config)
    scored = metrics.score(task, rows, replies.texts, stats.resample_indices(len(rows), 200, config.seed), config.confidence)
    primary = results.primary_metric
    recorded = _recorded_outputs(results, found.name)
    same = sum(1 for i, text in enumerate(replies.texts) if recorded.get(i) == text)
    latencies = np.array(replies.latency_s or [0.0]) * 1000
    evaluated = found.metric(primary)
    return Replay(url, model, found.name, len(rows), same, primary, float(scored.metrics[primary]["value"]),
                  evaluated.value if evaluated else None, float(np.percentile(latencies, 50)), float(np.percentile(latencies, 95)),
                  replies.wall_seconds)


def _serves_recipe(url: str, model: str, spec_name: str) -> bool:
    """Whether `model` at `url` is a `tunewise serve` recipe of this very spec (its card's `root`)."""
    import httpx

    from tunewise.evaluate.candidates import chat_url, endpoint_headers

    try:
        response = httpx.get(chat_url(url).removesuffix("/chat/completions") + f"/models/{model}", headers=endpoint_headers(url), timeout=10)
        return response.status_code == 200 and response.json().get("root") == spec_name
    except (httpx.HTTPError, ValueError):
        return False  # a server that cannot say is sent the evaluation's prompts


def _recorded_outputs(results, name: str) -> dict[int, str]:
    """Row position -> the reply the evaluation recorded for candidate `name` (none when it kept no outputs)."""
    from tunewise.evaluate.review import iter_outputs

    if not results.outputs_path or not Path(results.outputs_path).exists():
        return {}
    return {position: row.candidates[name].output for position, row in enumerate(iter_outputs(results)) if name in row.candidates}


__all__ = ["Replay", "replay_evaluation"]

"""Judged quality of live traffic: an LLM judge grades a seeded sample of each variant's replies from 1 to 5.

Most live requests get no feedback, so `tunewise deploy status NAME --judge URL#MODEL` asks an OpenAI-compatible
judge to grade a sample of the served replies in the window. The sample is drawn per variant (a 10% candidate gets
as many graded rows as the baseline, not a tenth of them), reproducibly from the seed. Where feedback gave a label,
it is the reference the judge compares with; elsewhere the judge grades the reply against the request alone.

    from tunewise.deploy.judge import judge_sample
    judged = judge_sample(rows, "http://localhost:8000/v1#gpt-4o-mini", sample=50)
    judged["candidate"].quality, judged["candidate"].failures
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Judged", "judge_sample", "LIVE_RUBRIC", "GOOD_SCORE"]

GOOD_SCORE = 4  # a reply graded at least this is "good"
LIVE_RUBRIC = (
    "Score how well the reply fulfils the request (compared with the reference answer where one is given): "
    "5 = fully right and helpful, 3 = partly right, 1 = wrong, empty or refused."
)


@dataclass
class Judged:
    """One variant's judged sample: `n` replies got a grade, `failures` got none (counted, not dropped)."""

    variant: str
    available: int  # successful served rows the sample was drawn from
    sampled: int  # rows sent to the judge: n + failures
    n: int = 0
    failures: int = 0
    mean: float | None = None  # mean grade, 1-5
    good: int = 0  # grades >= GOOD_SCORE
    quality: float | None = None  # good / n
    low: float | None = None  # Wilson interval of quality
    high: float | None = None


def judge_sample(rows, judge: str, *, sample: int = 50, seed: int = 0, rubric: str | None = None,
                 references: dict[str, str] | None = None, config=None) -> dict[str, Judged]:
    """Grade up to `sample` successful served rows per variant with the judge (`URL#MODEL`).

    `rows` are request-log rows (shadow and failed rows are skipped); `references` maps a request id to its
    reference reply (a feedback label); `config` is an EvalConfig (timeouts, retries, concurrency; default its
    defaults). A row the judge gives no number for, or that it cannot be asked about, counts in `failures`.
    """
    from tunewise.deploy.monitor import wilson_interval
    from tunewise.evaluate.candidates import judge_scores
    from tunewise.evaluate.config import EvalConfig
    from tunewise.evaluate.tasks import Example

    url, _, model = judge.rpartition("#")
    if not url or not model:
        from tunewise.errors import EvaluationError

        raise EvaluationError(f"--judge {judge!r}: expected URL#MODEL, e.g. http://localhost:8000/v1#gpt-4o-mini")
    references = references or {}
    by_variant: dict[str, list] = {}
    for row in rows:
        if row.role == "served" and (row.status or 0) < 400 and row.response is not None:
            by_variant.setdefault(row.variant, []).append(row)

    picked: list[tuple[str, object]] = []
    results: dict[str, Judged] = {}
    for variant in sorted(by_variant):
        # Sorted by id and seeded per variant: the same window gives the same sample whatever order the store used.
        pool = sorted(by_variant[variant], key=lambda r: r.id)
        chosen = random.Random(f"{seed}:{variant}").sample(pool, min(max(sample, 0), len(pool)))
        results[variant] = Judged(variant=variant, available=len(pool), sampled=len(chosen))
        picked.extend((variant, row) for row in chosen)
    if not picked:
        return results

    examples = [Example(index=i, line=i + 1, messages=list(row.messages or []), text=_request_text(row.messages),
                        reference=references.get(row.id)) for i, (_, row) in enumerate(picked)]
    scores = judge_scores(judge, rubric or LIVE_RUBRIC, examples, [row.response for _, row in picked],
                          config or EvalConfig())
    grades: dict[str, list[float]] = {}
    for (variant, _), score in zip(picked, scores):
        if score is None:
            results[variant].failures += 1
        else:
            grades.setdefault(variant, []).append(score)
    for variant, scored in grades.items():
        result = results[variant]
        result.n = len(scored)
        result.mean = sum(scored) / len(scored)
        result.good = sum(1 for s in scored if s >= GOOD_SCORE)
        interval = wilson_interval(result.good, result.n)
        result.quality, result.low, result.high = interval.value, interval.low, interval.high
    return results


def _request_text(messages) -> str:
    """The request as the judge reads it: a lone user turn as is, a conversation one `role: content` line per turn."""
    turns = [m for m in (messages or []) if isinstance(m, dict)]
    if len(turns) == 1 and turns[0].get("role") == "user":
        return str(turns[0].get("content") or "")
    return "\n".join(f"{m.get('role', 'user')}: {m.get('content') or ''}" for m in turns)

"""What a deployment's variants did over a window: traffic, errors, latency, tokens, cost, feedback quality, drift,
and (with a judge) judged quality on a sample.

Everything comes from the request log and the feedback in the store (a server logs every request; users or a
labelling job send feedback with the request id), so `tunewise deploy status` and `tunewise monitor` can run
anywhere the store is reachable.

    from tunewise.deploy.monitor import deployment_status, render_status
    status = deployment_status("tickets", window_hours=6)
    status.variant("candidate").quality          # share of feedback that was correct
    status.verdicts                               # ["candidate is better than baseline by 4.1 points (...)"]
    deployment_status("tickets", judge="http://localhost:8000/v1#gpt-4o-mini").variant("candidate").judged_quality
    console.print(render_status(status))
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from tunewise.evaluate.stats import Interval, format_p, points

__all__ = [
    "VariantStatus",
    "Comparison",
    "Status",
    "deployment_status",
    "render_status",
    "latency_interval",
    "median_interval",
    "judge_feedback",
    "wilson_interval",
    "compare_quality",
]

CONFIDENCE = 0.95
OTHER_LABEL = "(other)"  # outputs that parse to none of the eval set's labels
MIN_LABEL_SHARE = 0.5  # outputs "look like labels" when at least this share of them parse to one
LAST_EVENTS = 5


# ---------------------------------------------------------------------------------------------------------------
# the result


@dataclass
class VariantStatus:
    """One variant over the window (served rows only; shadow answers are counted in `shadow_requests`)."""

    name: str
    spec: str
    role: str  # baseline | candidate
    share: float  # percent of users the current state routes to it
    requests: int = 0
    sticky_requests: int = 0  # routed by a user id (the same user always gets this variant)
    per_request: int = 0  # routed per request (no user id)
    users: int = 0
    shadow_requests: int = 0
    errors: int = 0
    error_rate: float = 0.0
    p50_ms: float | None = None
    p50_low_ms: float | None = None  # distribution-free 95% interval of the median (None with too few requests)
    p50_high_ms: float | None = None
    p95_ms: float | None = None
    mean_prompt_tokens: float | None = None
    mean_completion_tokens: float | None = None
    tokens_per_1k: float | None = None  # prompt + completion tokens per 1,000 requests
    cost_per_1k_usd: float | None = None  # None when no row carries a cost
    feedback: int = 0  # requests with a usable judgement (the last feedback of each counts)
    correct: int = 0
    quality: float | None = None
    quality_low: float | None = None
    quality_high: float | None = None
    drift: float | None = None  # Jensen-Shannon distance (base 2, 0-1) of output labels against the eval set's
    drift_note: str | None = None  # why drift is None, or what it was measured on
    label_counts: dict[str, int] = field(default_factory=dict)
    # With a judge (deployment_status(judge=...)): share of sampled replies graded >= 4 of 5, its Wilson interval,
    # the mean grade, how many got a grade and how many got none. None without a judge.
    judged_quality: float | None = None
    judged_low: float | None = None
    judged_high: float | None = None
    judged_mean: float | None = None
    judged_n: int | None = None
    judged_failures: int | None = None

    @property
    def quality_interval(self) -> Interval | None:
        if self.quality is None:
            return None
        return Interval(self.quality, self.quality_low, self.quality_high)


@dataclass
class Comparison:
    """A candidate against the baseline on feedback quality: Fisher's exact test and a Newcombe interval."""

    candidate: str
    baseline: str
    candidate_feedback: int
    baseline_feedback: int
    candidate_quality: float | None
    baseline_quality: float | None
    diff: float | None  # candidate minus baseline, 0-1
    low: float | None
    high: float | None
    p: float | None  # two-sided
    p_worse: float | None  # one-sided: the candidate is worse than the baseline
    p_better: float | None  # one-sided: the candidate is better
    significant: bool
    verdict: str


@dataclass
class Status:
    name: str
    deployment_id: str
    version: int
    mode: str
    state: str  # DeploymentState.summary()
    since: datetime
    until: datetime
    window_hours: float
    variants: list[VariantStatus]
    comparisons: list[Comparison]
    verdicts: list[str]
    events: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    eval_data: str | None = None
    eval_labels: dict[str, float] = field(default_factory=dict)  # the eval set's reference label distribution
    notes: list[str] = field(default_factory=list)
    judge: str | None = None  # URL#MODEL that graded a sample, if any
    judge_sample: int | None = None  # replies graded per variant, at most

    def variant(self, name: str) -> VariantStatus:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(name)

    def comparison(self, candidate: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.candidate == candidate), None)

    @property
    def requests(self) -> int:
        return sum(v.requests for v in self.variants)

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self)


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return _aware(value).isoformat()
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else round(value, 6)
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


# ---------------------------------------------------------------------------------------------------------------
# statistics


def latency_interval(variant: VariantStatus) -> str:
    """'380–450 ms' for a variant's median latency, or why there is none."""
    if variant.p50_ms is None:
        return "-"
    if variant.p50_low_ms is None or variant.p50_high_ms is None:
        return "too few requests"
    return f"{variant.p50_low_ms:.0f}–{variant.p50_high_ms:.0f}"


def median_interval(values, confidence: float = CONFIDENCE) -> tuple[float | None, float | None]:
    """The median's interval from order statistics (SciPy's exact binomial quantile test): no assumption about
    the shape of the latencies, which are skewed. (None, None) where too few values bound it on a side."""
    from scipy.stats import quantile_test

    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return None, None
    bounds = quantile_test(values, q=float(np.median(values)), p=0.5).confidence_interval(confidence)
    low, high = float(bounds.low), float(bounds.high)
    return (None if np.isnan(low) else low), (None if np.isnan(high) else high)


def wilson_interval(correct: int, total: int, confidence: float = CONFIDENCE) -> Interval | None:
    """The share correct with its Wilson score interval (None without judgements)."""
    if total <= 0:
        return None
    from scipy.stats import binomtest

    ci = binomtest(int(correct), int(total)).proportion_ci(confidence_level=confidence, method="wilson")
    return Interval(correct / total, float(ci.low), float(ci.high))


def compare_quality(candidate: VariantStatus, baseline: VariantStatus, confidence: float = CONFIDENCE) -> Comparison:
    """Fisher's exact test of two shares correct, the difference with Newcombe's hybrid score interval, and a verdict."""
    n1, n0 = candidate.feedback, baseline.feedback
    if n1 == 0 or n0 == 0:
        missing = " and ".join(v.name for v in (candidate, baseline) if v.feedback == 0)
        verdict = (f"no significant difference yet: no feedback on {missing} in the window; need more feedback "
                   f"({candidate.name} n={n1}, {baseline.name} n={n0})")
        return Comparison(candidate.name, baseline.name, n1, n0, candidate.quality, baseline.quality,
                          None, None, None, None, None, None, False, verdict)
    from scipy.stats import fisher_exact

    table = [[candidate.correct, n1 - candidate.correct], [baseline.correct, n0 - baseline.correct]]
    p = float(fisher_exact(table, alternative="two-sided")[1])
    p_worse = float(fisher_exact(table, alternative="less")[1])
    p_better = float(fisher_exact(table, alternative="greater")[1])
    q1, q0 = candidate.correct / n1, baseline.correct / n0
    w1, w0 = wilson_interval(candidate.correct, n1, confidence), wilson_interval(baseline.correct, n0, confidence)
    diff = q1 - q0
    low = diff - math.sqrt((q1 - w1.low) ** 2 + (w0.high - q0) ** 2)
    high = diff + math.sqrt((w1.high - q1) ** 2 + (q0 - w0.low) ** 2)
    alpha = 1 - confidence
    significant = p < alpha
    level = f"{confidence * 100:g}% CI"
    if significant:
        word = "better" if diff > 0 else "worse"
        verdict = (f"{candidate.name} is {word} than {baseline.name} by {points(abs(diff))} points "
                   f"({level} {points(low)} to {points(high)}, {format_p(p)}; n={n1} and {n0})")
    else:
        sign = "+" if diff >= 0 else "-"
        verdict = (f"no significant difference yet: {candidate.name} {q1:.1%} vs {baseline.name} {q0:.1%}, "
                   f"{sign}{points(abs(diff))} points ({level} {points(low)} to {points(high)}, {format_p(p)}); "
                   f"need more feedback{_needed(q1, q0, n1, n0, alpha)}")
    return Comparison(candidate.name, baseline.name, n1, n0, q1, q0, diff, low, high, p, p_worse, p_better, significant, verdict)


def _needed(q1: float, q0: float, n1: int, n0: int, alpha: float, power: float = 0.8) -> str:
    """' (about N judged requests per variant to detect a difference this size)' from the normal approximation."""
    diff = abs(q1 - q0)
    if diff < 1e-9:
        return f" (n={n1} and {n0})"
    from scipy.stats import norm

    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    variance = q1 * (1 - q1) + q0 * (1 - q0)
    if variance <= 0:
        return f" (n={n1} and {n0})"
    per_variant = math.ceil(z * z * variance / (diff * diff))
    return f" (n={n1} and {n0}; about {per_variant:,} per variant to detect {points(diff)} points)"


def judge_feedback(feedback, response: str | None) -> bool | None:
    """Whether one feedback row says the reply was right: its correct flag, else its label against the reply, else score >= 4."""
    if feedback.correct is not None:
        return bool(feedback.correct)
    if feedback.label is not None:
        return (response or "").strip().casefold() == feedback.label.strip().casefold()
    if feedback.score is not None:
        return feedback.score >= 4
    return None


# ---------------------------------------------------------------------------------------------------------------
# the status


def deployment_status(name: str, *, window_hours: float | None = None, since: datetime | None = None, store=None,
                      config=None, now: datetime | None = None, judge: str | None = None, judge_sample: int = 50,
                      seed: int = 0) -> Status:
    """Every variant of deployment `name` over the last `window_hours` (default deploy.window_hours) or since `since`.

    With `judge` (`URL#MODEL`, an OpenAI-compatible endpoint) up to `judge_sample` successful replies per variant,
    drawn with `seed`, are graded 1-5 (feedback labels are the reference where there are any): `judged_*` fields.
    """
    from tunewise.deploy.state import load
    from tunewise.store import Store

    settings = _deploy_config(config)
    until = _aware(now) if now is not None else datetime.now(timezone.utc)
    if since is not None:
        start = _aware(since)
        hours = max((until - start).total_seconds() / 3600, 0.0)
    else:
        hours = float(window_hours if window_hours is not None else settings.window_hours)
        start = until - timedelta(hours=hours)
    with Store.borrow(store) as opened:
        loaded = load(name, store=opened)
        dep_id = loaded.record.id
        rows = opened.request_logs(dep_id, since=start, until=until, role=None)
        feedback = opened.feedback(dep_id, since=start)
        events = opened.deployment_events(dep_id)
        alerts = [a for a in opened.alerts(dep_id, since=start) if _aware(a.created_at) <= until]
    state = loaded.state
    served = [r for r in rows if r.role == "served"]
    shadow = Counter(r.variant for r in rows if r.role == "shadow")
    last: dict[str, Any] = {}
    for item in feedback:  # oldest first: the last one of each request wins
        last[item.request_id] = item
    by_variant: dict[str, list] = {}
    for row in served:
        by_variant.setdefault(row.variant, []).append(row)

    reference, labels, eval_note = _eval_labels(state.eval_data)
    variants: list[VariantStatus] = []
    names = [v.name for v in state.variants()]
    extra = sorted(set(by_variant) - set(names))  # a variant logged in the window but gone from the state
    for variant_name in [*names, *extra]:
        try:
            spec_variant = state.variant(variant_name)
            spec, share = spec_variant.spec, _share(state, variant_name)
            role = "baseline" if variant_name == state.baseline.name else "candidate"
        except KeyError:
            logged = by_variant[variant_name]
            spec, share, role = logged[-1].spec, 0.0, "removed"
        variants.append(_variant_status(variant_name, spec, role, share, by_variant.get(variant_name, []), last,
                                        shadow.get(variant_name, 0), reference, labels, eval_note))

    baseline = next(v for v in variants if v.name == state.baseline.name)
    comparisons = [compare_quality(v, baseline) for v in variants if v.role == "candidate"]
    notes = []
    if not served:
        notes.append(f"no request served in the window (since {start:%Y-%m-%d %H:%M} UTC)")
    if eval_note and state.eval_data:
        notes.append(eval_note)
    if judge:
        notes.append(_judge(variants, served, last, judge, judge_sample, seed, config))
    return Status(
        name=loaded.name, deployment_id=dep_id, version=loaded.version, mode=state.mode, state=state.summary(),
        since=start, until=until, window_hours=hours, variants=variants, comparisons=comparisons,
        verdicts=[c.verdict for c in comparisons],
        events=[_event(e) for e in events[-LAST_EVENTS:]],
        alerts=[_alert(a) for a in alerts],
        eval_data=state.eval_data, eval_labels=reference or {}, notes=notes,
        judge=judge or None, judge_sample=judge_sample if judge else None,
    )


def _judge(variants: list[VariantStatus], served, last_feedback, judge: str, sample: int, seed: int, config) -> str:
    """Fill the judged_* fields of every variant; returns the note that says who judged what."""
    from tunewise.deploy.judge import judge_sample

    references = {rid: item.label for rid, item in last_feedback.items() if item.label is not None}
    judged = judge_sample(served, judge, sample=sample, seed=seed, references=references, config=_eval_config(config))
    for v in variants:
        result = judged.get(v.name)
        v.judged_n, v.judged_failures = (result.n, result.failures) if result else (0, 0)
        if result is not None and result.n:
            v.judged_quality, v.judged_low, v.judged_high, v.judged_mean = result.quality, result.low, result.high, result.mean
    failures = sum(r.failures for r in judged.values())
    _, _, model = judge.rpartition("#")
    note = (f"judged quality: {model} ({judge}) graded up to {sample} successful replies per variant (seed {seed}), "
            f"share graded 4 or 5 of 5; {sum(r.n for r in judged.values())} graded")
    if failures:
        note += f", {failures} got no grade (counted as failures, not in the share)"
    return note


def _eval_config(config):
    """The eval settings (endpoint timeout, retries, concurrency) the judge client uses."""
    from tunewise.evaluate.config import EvalConfig

    if config is None:
        from tunewise.config import load_config

        return load_config().eval
    found = getattr(config, "eval", None)
    return found if isinstance(found, EvalConfig) else EvalConfig()


def _variant_status(name, spec, role, share, rows, last_feedback, shadow_requests, reference, labels, eval_note) -> VariantStatus:
    status = VariantStatus(name=name, spec=spec, role=role, share=share, shadow_requests=shadow_requests)
    n = len(rows)
    status.requests = n
    if n:
        status.sticky_requests = sum(1 for r in rows if r.sticky)
        status.per_request = n - status.sticky_requests
        status.users = len({r.user_id for r in rows if r.user_id})
        status.errors = sum(1 for r in rows if (r.status or 0) >= 400)
        status.error_rate = status.errors / n
        latency = np.asarray([r.latency_ms for r in rows if r.latency_ms is not None], dtype=float)
        if latency.size:
            status.p50_ms, status.p95_ms = (float(x) for x in np.percentile(latency, [50, 95]))
            status.p50_low_ms, status.p50_high_ms = median_interval(latency)
        prompt = [r.prompt_tokens for r in rows if r.prompt_tokens is not None]
        completion = [r.completion_tokens for r in rows if r.completion_tokens is not None]
        status.mean_prompt_tokens = float(np.mean(prompt)) if prompt else None
        status.mean_completion_tokens = float(np.mean(completion)) if completion else None
        if prompt or completion:
            status.tokens_per_1k = 1000 * ((status.mean_prompt_tokens or 0.0) + (status.mean_completion_tokens or 0.0))
        costs = [r.cost_usd for r in rows if r.cost_usd is not None]
        status.cost_per_1k_usd = 1000 * float(np.mean(costs)) if costs else None
    judged = []
    for row in rows:
        item = last_feedback.get(row.id)
        verdict = judge_feedback(item, row.response) if item is not None else None
        if verdict is not None:
            judged.append(verdict)
    status.feedback, status.correct = len(judged), sum(judged)
    interval = wilson_interval(status.correct, status.feedback)
    if interval is not None:
        status.quality, status.quality_low, status.quality_high = interval.value, interval.low, interval.high
    status.drift, status.drift_note, status.label_counts = _drift(rows, reference, labels, eval_note)
    return status


def _share(state, name: str) -> float:
    if state.mode != "split":
        return 100.0 if name == state.baseline.name else 0.0
    if name == state.baseline.name:
        return 100.0 - sum(c.share for c in state.candidates)
    return state.variant(name).share


# ---------------------------------------------------------------------------------------------------------------
# drift


def _eval_labels(eval_data: str | None) -> tuple[dict[str, float] | None, list[str], str | None]:
    """The eval set's reference label distribution, its labels, and a note when there is none."""
    if not eval_data:
        return None, [], "no eval set on the deployment (deploy create --eval-data): drift not measured"
    from tunewise.errors import TunewiseError
    from tunewise.evaluate.tasks import detect_task, load_rows

    try:
        rows = load_rows(eval_data)
        task = detect_task(None, rows)
    except (TunewiseError, OSError, ValueError) as exc:
        return None, [], f"eval set {eval_data} unreadable ({exc}): drift not measured"
    if task.type != "classification":
        return None, [], f"eval set {eval_data} is a {task.type} task, not labels: drift not measured"
    counts = Counter(r.reference.strip() for r in rows if r.reference is not None and r.reference.strip())
    total = sum(counts.values())
    return {label: counts[label] / total for label in task.labels}, list(task.labels), None


def _drift(rows, reference, labels, eval_note) -> tuple[float | None, str | None, dict[str, int]]:
    if reference is None:
        return None, eval_note, {}
    from scipy.spatial.distance import jensenshannon

    from tunewise.evaluate.tasks import parse_label

    outputs = [r.response for r in rows if (r.status or 0) < 400 and r.response is not None]
    if not outputs:
        return None, "no successful reply in the window", {}
    parsed = [parse_label(text, labels) for text in outputs]
    hits = sum(p is not None for p in parsed)
    if hits < MIN_LABEL_SHARE * len(outputs):
        return None, f"only {hits} of {len(outputs)} replies parse to an eval label: outputs are not labels", {}
    counts = Counter(p if p is not None else OTHER_LABEL for p in parsed)
    keys = [*labels, OTHER_LABEL]
    observed = np.asarray([counts.get(k, 0) for k in keys], dtype=float)
    expected = np.asarray([reference.get(k, 0.0) for k in keys], dtype=float)
    distance = float(jensenshannon(observed / observed.sum(), expected / expected.sum(), base=2))
    return distance, f"{len(outputs)} replies against the eval set's labels", {k: counts[k] for k in keys if counts.get(k)}


# ---------------------------------------------------------------------------------------------------------------
# helpers


def _deploy_config(config):
    if config is None:
        from tunewise.config import load_config

        return load_config().deploy
    return getattr(config, "deploy", config)


def _aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone: they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _event(event) -> dict[str, Any]:
    return {"version": event.version, "action": event.action, "actor": event.actor, "reason": event.reason,
            "evaluation_id": event.evaluation_id, "created_at": _aware(event.created_at)}


def _alert(alert) -> dict[str, Any]:
    return {"id": alert.id, "rule": alert.rule, "variant": alert.variant, "value": alert.value, "threshold": alert.threshold,
            "message": alert.message, "delivered": alert.delivered, "delivery_error": alert.delivery_error,
            "created_at": _aware(alert.created_at)}


# ---------------------------------------------------------------------------------------------------------------
# rendering


def _num(value: float | None, fmt: str = "{:.3f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def render_status(status: Status):
    """The status as Rich renderables for the terminal: the state, a per-variant table, verdicts, events and alerts."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [
        Text.from_markup(f"[bold]{status.name}[/] version {status.version}: {status.state}"),
        Text(f"window: {status.window_hours:g} h, {status.since:%Y-%m-%d %H:%M} to {status.until:%Y-%m-%d %H:%M} UTC; "
             f"{status.requests:,} requests served"),
    ]
    # One column per variant, one row per metric: a deployment has few variants and many numbers.
    table = Table(show_edge=False)
    table.add_column("")
    for v in status.variants:
        table.add_column(v.name + (" (removed)" if v.role == "removed" else ""), justify="right")
    for v in status.variants:
        parts.append(Text(f"{v.name}: {v.spec}", style="dim"))

    def row(label: str, cell) -> None:
        table.add_row(label, *(cell(v) for v in status.variants))

    row("share of users", lambda v: f"{v.share:g}%")
    row("requests", lambda v: f"{v.requests:,}" + (f" +{v.shadow_requests:,} shadow" if v.shadow_requests else ""))
    row("  sticky / per request", lambda v: f"{v.sticky_requests:,} / {v.per_request:,}")
    row("error rate", lambda v: f"{v.error_rate:.1%} ({v.errors:,})")
    row("latency p50 / p95 ms", lambda v: f"{_num(v.p50_ms, '{:.0f}')} / {_num(v.p95_ms, '{:.0f}')}")
    row("  p50 95% CI", lambda v: latency_interval(v))
    row("tokens in / out (mean)", lambda v: f"{_num(v.mean_prompt_tokens, '{:.0f}')} / {_num(v.mean_completion_tokens, '{:.0f}')}")
    row("tokens per 1k requests", lambda v: _num(v.tokens_per_1k, "{:,.0f}"))
    row("cost per 1k requests", lambda v: _num(v.cost_per_1k_usd, "${:,.4f}"))
    row("quality (95% CI)", lambda v: "n/a" if v.quality is None else f"{v.quality:.1%} ({v.quality_low:.1%}–{v.quality_high:.1%})")
    row("  feedback", lambda v: f"{v.feedback:,}")
    row("drift (JS distance)", lambda v: _num(v.drift))
    if status.judge:
        row("judged quality (95% CI)", lambda v: "n/a" if v.judged_quality is None
            else f"{v.judged_quality:.1%} ({v.judged_low:.1%}–{v.judged_high:.1%})")
        row("  judged n / mean / no grade", lambda v: f"{v.judged_n or 0:,} / {_num(v.judged_mean, '{:.2f}')} / {v.judged_failures or 0:,}")
    parts.append(table)
    for verdict in status.verdicts:
        parts.append(Text(f"• {verdict}"))
    for note in status.notes:
        parts.append(Text(f"note: {note}", style="dim"))
    if status.events:
        parts.append(Text("Last changes:", style="bold"))
        for e in status.events:
            why = f"  why: {e['reason']}" if e.get("reason") else ""
            parts.append(Text(f"  v{e['version']} {e['created_at']:%Y-%m-%d %H:%M:%S} UTC  {e['actor']}  {e['action']}{why}"))
    if status.alerts:
        parts.append(Text(f"Alerts in the window ({len(status.alerts)}):", style="bold"))
        for a in status.alerts:
            delivery = {True: "delivered", False: f"not delivered: {a['delivery_error'] or ''}", None: "no webhook"}[a["delivered"]]
            parts.append(Text(f"  {a['created_at']:%Y-%m-%d %H:%M:%S} {a['rule']} [{a['variant'] or '-'}] {a['message']} ({delivery})",
                              style="yellow"))
    else:
        parts.append(Text("No alert in the window.", style="dim"))
    return Group(*parts)

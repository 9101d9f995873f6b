"""Prometheus metrics of `tunewise serve` (GET /metrics).

Each `ServeMetrics` owns its registry, so several apps in one process (tests, a CLI that restarts the
server) never collide in the global one. The `model` label only ever takes a served name or "unknown":
a client choosing the label value could otherwise make the series grow without bound.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

UNKNOWN_MODEL = "unknown"
# Generation takes seconds to minutes, so the default buckets (which stop at 10 s) would put most requests in +Inf.
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320, 640)
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ServeMetrics:
    def __init__(self, *, queue_depths: Callable[[], Iterable[tuple[str, int]]] | None = None):
        """`queue_depths` yields (model, depth) pairs; it is called at each scrape to set the gauge."""
        self.registry = CollectorRegistry()
        self._queue_depths = queue_depths
        r = self.registry
        self.requests = Counter("tunewise_requests_total", "Chat completion requests answered, by HTTP status", ["model", "status"],
                                registry=r)
        self.errors = Counter("tunewise_errors_total", "Chat completion requests that failed, by error type", ["model", "type"], registry=r)
        self.request_seconds = Histogram("tunewise_request_seconds", "Time to answer a chat completion (to the last chunk when streaming)",
                                         ["model"], buckets=_LATENCY_BUCKETS, registry=r)
        self.ttft_seconds = Histogram("tunewise_time_to_first_token_seconds", "Time until the first content chunk of a streamed completion",
                                      ["model"], buckets=_TTFT_BUCKETS, registry=r)
        self.prompt_tokens = Counter("tunewise_prompt_tokens", "Prompt tokens read", ["model"], registry=r)
        self.completion_tokens = Counter("tunewise_completion_tokens", "Completion tokens generated", ["model"], registry=r)
        # Deployment and variant names come from the store, never from a client, so these series stay bounded.
        self.deployment_requests = Counter("tunewise_deployment_requests_total", "Requests a deployment's variants answered, by role (served or shadow) and HTTP status",
                                           ["deployment", "variant", "role", "status"], registry=r)
        self.deployment_seconds = Histogram("tunewise_deployment_request_seconds", "Time a deployment's variant took to answer",
                                            ["deployment", "variant", "role"], buckets=_LATENCY_BUCKETS, registry=r)
        self.feedback = Counter("tunewise_feedback_total", "Feedback received, by deployment, variant and verdict (correct, incorrect or none)",
                                ["deployment", "variant", "verdict"], registry=r)
        self.queue_depth = Gauge("tunewise_queue_depth", "Requests waiting or running, per served model", ["model"], registry=r)

    def observe(self, model: str, status: int, seconds: float, *, error_type: str | None = None, usage: dict | None = None) -> None:
        """Count one finished request; `model` must already be a served name or UNKNOWN_MODEL."""
        self.requests.labels(model=model, status=str(status)).inc()
        self.request_seconds.labels(model=model).observe(seconds)
        if error_type is not None:
            self.errors.labels(model=model, type=error_type).inc()
        if usage:
            self.prompt_tokens.labels(model=model).inc(max(0, int(usage.get("prompt_tokens") or 0)))
            self.completion_tokens.labels(model=model).inc(max(0, int(usage.get("completion_tokens") or 0)))

    def deployment(self, deployment: str, variant: str, role: str, status: int, seconds: float) -> None:
        self.deployment_requests.labels(deployment=deployment, variant=variant, role=role, status=str(status)).inc()
        self.deployment_seconds.labels(deployment=deployment, variant=variant, role=role).observe(seconds)

    def first_token(self, model: str, seconds: float) -> None:
        self.ttft_seconds.labels(model=model).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        if self._queue_depths is not None:
            # Cleared first so that an unloaded adapter's series goes away instead of freezing at its last value.
            self.queue_depth.clear()
            for model, depth in self._queue_depths():
                self.queue_depth.labels(model=model).set(depth)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


__all__ = ["ServeMetrics", "UNKNOWN_MODEL"]

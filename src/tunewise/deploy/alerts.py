"""Alert rules over a deployment's status: each firing rule is recorded in the store and POSTed to a webhook.

    from tunewise.deploy.alerts import evaluate_rules
    for fired in evaluate_rules("tickets"):      # the rules of deploy.alerts in tunewise.yaml
        print(fired.line())

A rule watches one variant or 'any'; a variant with fewer than the rule's `min_requests` served requests in the
window is not judged. `quality_drop` applies to candidates only: it fires when a candidate's feedback quality is
below the baseline's by a one-sided Fisher exact test at the rule's `alpha` and by more than `threshold` points.
Webhook delivery never raises: a failure is recorded on the alert (`delivered`, `delivery_error`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tunewise.deploy.config import AlertRule
from tunewise.deploy.monitor import Status, VariantStatus, _aware, _deploy_config, _jsonable, deployment_status
from tunewise.errors import ConfigError

__all__ = ["Fired", "evaluate_rules", "check_rule", "deliver"]

WEBHOOK_TIMEOUT_S = 5.0
WEBHOOK_ATTEMPTS = 2  # one retry


@dataclass
class Fired:
    """One rule that fired on one variant, as recorded in the store."""

    rule: str
    metric: str
    variant: str
    value: float
    threshold: float
    message: str
    payload: dict[str, Any] = field(default_factory=dict)
    alert_id: str | None = None
    delivered: bool | None = None  # None: no webhook set (or send=False)
    delivery_error: str | None = None

    def line(self) -> str:
        delivery = {True: "webhook delivered", False: f"webhook failed: {self.delivery_error}", None: "no webhook"}[self.delivered]
        return f"FIRED {self.rule} [{self.variant}] {self.message} ({delivery})"

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(self)


def check_rule(rule: AlertRule, status: Status) -> list[Fired]:
    """The variants `rule` fires on in `status` (nothing is recorded or sent)."""
    names = [v.name for v in status.variants]
    if rule.variant != "any" and rule.variant not in names:
        raise ConfigError(f"alert rule {rule.name!r} watches variant {rule.variant!r}, which deployment {status.name} "
                          f"does not have (variants: {', '.join(names)}; or 'any')")
    watched = [v for v in status.variants if rule.variant in ("any", v.name)]
    fired = []
    for variant in watched:
        if variant.requests < rule.min_requests:
            continue
        hit = _check(rule, variant, status)
        if hit is not None:
            value, message = hit
            fired.append(Fired(rule=rule.name, metric=rule.metric, variant=variant.name, value=value,
                               threshold=rule.threshold, message=message))
    return fired


def _check(rule: AlertRule, v: VariantStatus, status: Status) -> tuple[float, str] | None:
    if rule.metric == "error_rate":
        if v.error_rate > rule.threshold:
            return v.error_rate, (f"{v.name} error rate {v.error_rate:.1%} ({v.errors} of {v.requests}) "
                                  f"above {rule.threshold:.1%}")
        return None
    if rule.metric == "p95_latency_ms":
        if v.p95_ms is not None and v.p95_ms > rule.threshold:
            return v.p95_ms, f"{v.name} p95 latency {v.p95_ms:.0f} ms above {rule.threshold:g} ms over {v.requests} requests"
        return None
    if rule.metric == "drift":
        if v.drift is not None and v.drift > rule.threshold:
            return v.drift, (f"{v.name} output labels drifted from the eval set: Jensen-Shannon distance "
                             f"{v.drift:.3f} above {rule.threshold:g}")
        return None
    if rule.metric == "quality_drop":
        if v.role != "candidate":
            return None  # the baseline is what a drop is measured against
        comparison = status.comparison(v.name)
        if comparison is None or comparison.diff is None or comparison.p_worse is None:
            return None
        drop = -comparison.diff * 100  # points
        if comparison.p_worse < rule.alpha and drop > rule.threshold:
            return drop, (f"{v.name} quality {comparison.candidate_quality:.1%} is below {comparison.baseline} "
                          f"{comparison.baseline_quality:.1%} by {drop:.1f} points (one-sided Fisher p={comparison.p_worse:.3g} "
                          f"< {rule.alpha:g}; n={comparison.candidate_feedback} and {comparison.baseline_feedback})")
        return None
    raise ConfigError(f"alert rule {rule.name!r}: unknown metric {rule.metric!r}")


def deliver(url: str, payload: dict[str, Any], *, timeout: float = WEBHOOK_TIMEOUT_S,
            attempts: int = WEBHOOK_ATTEMPTS) -> tuple[bool, str | None]:
    """POST `payload` as JSON to `url`: (delivered, error). A non-2xx answer or a network error is retried once."""
    import httpx

    error: str | None = None
    for _ in range(attempts):
        try:
            response = httpx.post(url, json=payload, timeout=timeout)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            continue
        except Exception as exc:  # a malformed URL and the like: recorded, never raised
            error = f"{type(exc).__name__}: {exc}"
            break
        if 200 <= response.status_code < 300:
            return True, None
        error = f"HTTP {response.status_code}"
    return False, error


def evaluate_rules(name: str, *, store=None, config=None, now: datetime | None = None, send: bool = True,
                   rules: list[AlertRule] | None = None, window_hours: float | None = None,
                   webhook_url: str | None = None, record: bool = True) -> list[Fired]:
    """Evaluate the alert rules (default deploy.alerts) on deployment `name` over the window ending `now`.

    Each firing is recorded with `store.add_alert` (unless `record=False`) and, with `send` and a webhook URL
    (`webhook_url`, else deploy.webhook_url), POSTed as JSON.
    """
    from tunewise.store import Store

    settings = _deploy_config(config)
    rules = list(settings.alerts if rules is None else rules)
    url = webhook_url or settings.webhook_url
    moment = _aware(now) if now is not None else datetime.now(timezone.utc)
    with Store.borrow(store) as opened:
        status = deployment_status(name, window_hours=window_hours, store=opened, config=settings, now=moment)
        fired: list[Fired] = []
        for rule in rules:
            fired.extend(check_rule(rule, status))
        for item in fired:
            item.payload = _payload(status, item, moment)
            if send and url:
                item.delivered, item.delivery_error = deliver(url, item.payload)
            if record:
                alert = opened.add_alert(status.deployment_id, rule=item.rule, message=item.message, variant=item.variant,
                                         value=item.value, threshold=item.threshold, details=item.payload,
                                         delivered=item.delivered, delivery_error=item.delivery_error)
                item.alert_id = alert.id
    return fired


def _payload(status: Status, item: Fired, moment: datetime) -> dict[str, Any]:
    return _jsonable({
        "deployment": status.name,
        "deployment_id": status.deployment_id,
        "version": status.version,
        "rule": item.rule,
        "metric": item.metric,
        "variant": item.variant,
        "value": item.value,
        "threshold": item.threshold,
        "message": item.message,
        "window": {"hours": status.window_hours, "since": status.since, "until": status.until},
        "fired_at": moment,
    })

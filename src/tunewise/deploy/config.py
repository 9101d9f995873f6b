"""Settings of deployments and their monitoring: the `deploy:` section of tunewise.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

METRICS = ("error_rate", "p95_latency_ms", "quality_drop", "drift")


class AlertRule(BaseModel):
    """One rule `tunewise monitor` evaluates per variant over the window."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="What the alert is called in the payload and the report")
    metric: Literal["error_rate", "p95_latency_ms", "quality_drop", "drift"] = Field(
        description="error_rate (share of non-2xx), p95_latency_ms, quality_drop (a candidate's feedback quality below "
        "the baseline's, by a significance test) or drift (Jensen-Shannon distance of output labels against the eval set)")
    threshold: float = Field(description="Fires above this value (for quality_drop: the drop in points of quality, 0 = any significant drop)")
    variant: str = Field("any", description="The variant the rule watches, or 'any'")
    min_requests: int = Field(30, ge=1, description="A variant with fewer requests in the window is not judged")
    alpha: float = Field(0.05, gt=0, lt=1, description="quality_drop: the significance level of the test")


def _default_rules() -> list[AlertRule]:
    return [
        AlertRule(name="error-rate", metric="error_rate", threshold=0.05),
        AlertRule(name="quality-drop", metric="quality_drop", threshold=0.0, variant="any"),
        AlertRule(name="label-drift", metric="drift", threshold=0.3),
    ]


class DeployConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    watch_interval_s: float = Field(0.25, gt=0, le=60, description="How often a server checks the store for a change of its deployment (a rollback takes effect within this)")
    log_raw: bool = Field(False, description="Write prompts and replies to the request log unredacted (default: PII redacted with the data module's detector)")
    shadow_sample: float = Field(1.0, ge=0, le=1, description="Share of requests a shadow candidate answers in the background")
    promote_steps: list[float] = Field(default_factory=lambda: [10.0, 25.0, 50.0, 100.0], description="Traffic shares `deploy promote` moves a candidate through, in percent")
    window_hours: float = Field(24.0, gt=0, description="The window `deploy status` and `monitor` look at, in hours")
    webhook_url: str | None = Field(None, description="URL a firing alert rule POSTs its JSON payload to")
    alerts: list[AlertRule] = Field(default_factory=_default_rules, description="Alert rules `tunewise monitor` evaluates")


__all__ = ["AlertRule", "DeployConfig", "METRICS"]

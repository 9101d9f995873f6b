"""The Deployment record: what a deployment serves, at which shares, in which mode.

The Deployment row's `config` column holds the current `DeploymentState`; every change also appends a
`DeploymentEvent` row holding the state after it (with who, when, why and the evaluation that justified
it), so that a report can say which state routed any logged request (`RequestLog.version`).

    from tunewise.records.deployment import DeploymentState
    state = DeploymentState.from_store(store.get_deployment("tickets").config, where="deployment tickets")
    state.split().pick("user-42").variant       # "baseline" or "candidate"
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tunewise.records import Record

__all__ = ["MODES", "Variant", "DeploymentState"]

MODES = ("split", "shadow", "off")


class Variant(BaseModel):
    """One model behind the deployment: a name in the deployment and the candidate spec that serves it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
    spec: str  # a candidate spec (zero-/few-/knn-few-shot, adapter, endpoint) or served:NAME
    share: float = Field(0.0, ge=0, le=100)  # percent of users; the baseline takes what candidates leave


class DeploymentState(Record):
    KIND = "deployment"
    SCHEMA_VERSION = 1

    baseline: Variant
    candidates: list[Variant] = Field(default_factory=list)
    # split: users by share; shadow: the baseline answers everyone, candidates answer sampled copies in the
    # background; off: the baseline answers everyone (the kill switch; shares are kept for a resume)
    mode: Literal["split", "shadow", "off"] = "split"
    shadow_sample: float = Field(1.0, ge=0, le=1)
    salt: str
    model: str | None = None  # the base model local variants run on (None: the workspace's model)
    recipe_data: str | None = None  # the training file prompt recipes take their examples from
    log_raw: bool = False  # write prompts and replies unredacted (explicit opt-in)
    eval_data: str | None = None  # the held-out set outputs drift is measured against and promotion is gated on

    @model_validator(mode="after")
    def _check(self) -> "DeploymentState":
        names = [self.baseline.name, *(c.name for c in self.candidates)]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must differ ({', '.join(names)})")
        total = sum(c.share for c in self.candidates)
        if total > 100 + 1e-9:
            raise ValueError(f"candidate shares add up to {total:g}%, more than 100%")
        return self

    def variants(self) -> list[Variant]:
        return [self.baseline, *self.candidates]

    def variant(self, name: str) -> Variant:
        for variant in self.variants():
            if variant.name == name:
                return variant
        raise KeyError(name)

    def split(self):
        """The traffic split this state routes by (in `off` and `shadow` mode the baseline answers every user)."""
        from tunewise.deploy.split import Split

        live = self.candidates if self.mode == "split" else [c.model_copy(update={"share": 0.0}) for c in self.candidates]
        return Split(self.baseline.name, [(c.name, c.share) for c in live], salt=self.salt)

    def summary(self) -> str:
        """One line: `split: candidate 10% (adapter:run-3f2a), baseline 90% (knn-few-shot:...)`."""
        if self.mode == "off":
            return f"off (rolled back): baseline 100% ({self.baseline.spec})"
        if self.mode == "shadow":
            shadows = ", ".join(f"{c.name} ({c.spec})" for c in self.candidates)
            return f"shadow: baseline 100% ({self.baseline.spec}); {shadows} answer {self.shadow_sample:.0%} of requests in the background"
        parts = [f"{c.name} {c.share:g}% ({c.spec})" for c in self.candidates]
        rest = 100 - sum(c.share for c in self.candidates)
        return "split: " + ", ".join([*parts, f"{self.baseline.name} {rest:g}% ({self.baseline.spec})"])


Mode = Literal["split", "shadow", "off"]

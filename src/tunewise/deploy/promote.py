"""Promoting a retrained candidate, gated on a held-out evaluation: the second half of the retrain loop.

    from tunewise.deploy.promote import promote
    promoted = promote("tickets", "adapter:run-9c1d", gate_evaluation="eval-5e2f")   # or GateFailed
    promoted.reason        # the one line written to the deployment's trail

CLI: `tunewise deploy promote tickets --candidate adapter:run-9c1d --gate eval-5e2f [--margin 0.02]`.

The gate is an evaluation (`tunewise eval --data HELD_OUT --candidate NEW --candidate CURRENT`) that scored the
new spec and the one it is compared with on the same rows. That is the candidate variant's current spec, or the
baseline's when the deployment has no candidate yet or the new spec already is the candidate (a further step of
the same model). The two are compared row by row: McNemar's exact test on right/wrong and a paired bootstrap
interval of the accuracy difference. The new spec passes when it is significantly better (p < the evaluation's
alpha, 0.05 by default, and a higher accuracy) or, with `margin` > 0, not worse by more than `margin` (the
interval's lower end above -margin). On a pass the candidate variant serves the new spec at the next share of
`deploy.promote_steps` above its current one; the event records action `promote`, the evaluation and the figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tunewise.errors import ConfigError, EvaluationError, GateFailed

ALPHA = 0.05
CANDIDATE_NAME = "candidate"


@dataclass(frozen=True)
class GateResult:
    """The paired comparison of the new spec with the one it replaces, on the gate evaluation's rows."""

    evaluation_id: str
    new: str
    reference: str
    rows: int
    new_accuracy: float
    reference_accuracy: float
    diff: float
    low: float
    high: float
    p_value: float
    confidence: float
    alpha: float
    margin: float

    @property
    def superior(self) -> bool:
        return self.p_value < self.alpha and self.diff > 0

    @property
    def non_inferior(self) -> bool:
        return self.margin > 0 and self.low > -self.margin

    @property
    def passed(self) -> bool:
        return self.superior or self.non_inferior

    def figures(self) -> str:
        from tunewise.evaluate.stats import format_p, points

        sign = "+" if self.diff >= 0 else "-"
        return (f"{self.new} {self.new_accuracy:.1%} vs {self.reference} {self.reference_accuracy:.1%} on {self.rows} rows of "
                f"{self.evaluation_id} ({sign}{points(abs(self.diff))} points, {self.confidence:.0%} CI {points(self.low)} to "
                f"{points(self.high)}, McNemar {format_p(self.p_value)})")

    def needed(self) -> str:
        from tunewise.evaluate.stats import points

        wanted = f"{self.new} significantly better than {self.reference} (p<{self.alpha:g} with a higher accuracy)"
        if self.margin > 0:
            wanted += f" or not worse by more than {points(self.margin)} points (CI lower end above -{points(self.margin)})"
        return wanted


@dataclass(frozen=True)
class Promoted:
    """A promotion that passed its gate and was written to the deployment."""

    deployment: str
    version: int
    variant: str
    spec: str
    previous_spec: str | None  # the variant's spec before (None: the variant is new)
    share_before: float
    share_after: float
    gate: GateResult
    reason: str
    summary: str  # the deployment's state after, in one line


def promote(name: str, candidate_spec: str, *, gate_evaluation: str, margin: float = 0.0, variant: str | None = None,
            store=None, config=None) -> Promoted:
    """Serve `candidate_spec` from deployment `name`'s candidate at the next share step, if `gate_evaluation` says so.

    `variant` names the candidate variant when there are several. Raises GateFailed (one line: both accuracies, the
    p-value and what is needed) when the gate does not pass; nothing changes then.
    """
    from tunewise.deploy.state import check_spec, load, set_deployment
    from tunewise.store import Store

    if margin < 0 or margin >= 1:
        raise ConfigError(f"--margin {margin:g}: give the accepted drop in accuracy as a fraction, 0 to 1 (for example 0.02)")
    spec = check_spec(candidate_spec, where="--candidate")
    steps = sorted(_deploy_config(config).promote_steps)
    with Store.borrow(store) as opened:
        loaded = load(name, store=opened)
        state = loaded.state
        target = _target(state, variant)
        if target is not None and target.spec != spec:
            reference = target.spec
        else:
            reference = state.baseline.spec
        if reference == spec:
            raise ConfigError(f"{spec} is already the baseline of deployment {loaded.name}: nothing to promote")
        gate = gate_result(gate_evaluation, spec, reference, margin=margin, store=opened)
        if not gate.passed:
            raise GateFailed(f"promotion of {spec} on {loaded.name} refused: {gate.figures()}; needs {gate.needed()}")
        before = target.share if target is not None else 0.0
        share = next((s for s in steps if s > before + 1e-9), None)
        if share is None:
            if target is not None and target.spec == spec:
                raise ConfigError(f"{spec} already serves {before:g}% of {loaded.name}, the last of deploy.promote_steps")
            share = before  # a new spec at the last step: it takes over the share as it is
        rule = "significantly better" if gate.superior else f"within the {gate.margin:.1%} margin"
        reason = f"promote {spec} to {share:g}% ({rule}): {gate.figures()}"
        if target is not None:
            after = set_deployment(loaded.record.id, share=share, candidate=target.name,
                                   replace_spec=spec if spec != target.spec else None,
                                   shadow=False if state.mode == "shadow" else None, reason=reason,
                                   evaluation_id=gate.evaluation_id, action="promote", store=opened)
            name_after, previous = target.name, target.spec
        else:
            after = _add_candidate(loaded, spec, share, reason=reason, evaluation_id=gate.evaluation_id, store=opened)
            name_after, previous = CANDIDATE_NAME, None
    return Promoted(deployment=after.name, version=after.version, variant=name_after, spec=spec, previous_spec=previous,
                    share_before=before, share_after=share, gate=gate, reason=reason, summary=after.state.summary())


def gate_result(evaluation_ref: str, new: str, reference: str, *, margin: float = 0.0, store=None) -> GateResult:
    """Compare `new` with `reference` row by row on a stored comparison (both by spec or name)."""
    from tunewise.evaluate.review import comparison_results, iter_outputs
    from tunewise.evaluate.stats import mcnemar_exact, paired_bootstrap, resample_indices
    from tunewise.store import Store

    with Store.borrow(store) as opened:
        evaluation = opened.get_evaluation(evaluation_ref)
    results = comparison_results(evaluation)
    found = {}
    for spec in (new, reference):
        candidate = results.candidate(spec)
        if candidate is None or not candidate.completed:
            have = ", ".join(c.spec for c in results.completed()) or "none"
            state = "did not complete in" if candidate is not None else "is not in"
            raise EvaluationError(f"{spec} {state} evaluation {evaluation.id} (completed: {have}); gate on an evaluation of "
                                  f"both: `tunewise eval --data HELD_OUT --candidate {new} --candidate {reference}`")
        found[spec] = candidate.name
    pairs = []
    for row in iter_outputs(results):
        a, b = row.candidates.get(found[new]), row.candidates.get(found[reference])
        if a is None or b is None:
            continue
        if a.correct is None or b.correct is None:
            raise EvaluationError(f"evaluation {evaluation.id} is a {results.task_type} task without per-row right/wrong: "
                                  "the promotion gate needs a classification or JSON evaluation")
        pairs.append((a.correct, b.correct))
    if not pairs:
        raise EvaluationError(f"evaluation {evaluation.id} has no row scored for both {new} and {reference}")
    new_right, ref_right = (np.array(column, dtype=bool) for column in zip(*pairs))
    p_value, _, _ = mcnemar_exact(ref_right, new_right)
    diff = float(new_right.mean() - ref_right.mean())
    indices = resample_indices(len(pairs), max(results.bootstrap_samples, 1000), seed=0)
    _, low, high = paired_bootstrap(ref_right[indices].mean(axis=1), new_right[indices].mean(axis=1), diff, results.confidence)
    alpha = float((evaluation.config or {}).get("alpha", ALPHA))
    return GateResult(evaluation_id=evaluation.id, new=new, reference=reference, rows=len(pairs),
                      new_accuracy=float(new_right.mean()), reference_accuracy=float(ref_right.mean()), diff=diff,
                      low=low, high=high, p_value=p_value, confidence=results.confidence, alpha=alpha, margin=margin)


def _target(state, name: str | None):
    """The candidate variant a promotion changes: `name`, the only one, or None when there is none."""
    from tunewise.deploy.state import _pick_candidate

    if name is None and not state.candidates:
        return None
    return _pick_candidate(state, name)


def _add_candidate(loaded, spec: str, share: float, *, reason: str, evaluation_id: str, store):
    """A deployment with only a baseline gets its first candidate (set_deployment changes existing ones only)."""
    from tunewise.deploy.state import Loaded, current_actor
    from tunewise.records.deployment import DeploymentState, Variant

    state = DeploymentState.model_validate({**loaded.state.model_dump(), "mode": "split",
                                            "candidates": [Variant(name=CANDIDATE_NAME, spec=spec, share=share).model_dump()]})
    record = store.change_deployment(loaded.record.id, state.to_store(), action="promote", actor=current_actor(),
                                     reason=reason, evaluation_id=evaluation_id)
    return Loaded(record, state)


def _deploy_config(config):
    if config is None:
        from tunewise.config import load_config

        return load_config().deploy
    return getattr(config, "deploy", config)


__all__ = ["GateResult", "Promoted", "promote", "gate_result"]

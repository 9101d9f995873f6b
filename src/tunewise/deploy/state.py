"""Creating and changing deployments: every change is a new state plus an append-only event in the store.

    from tunewise.deploy.state import create_deployment, set_deployment
    create_deployment("tickets", baseline="knn-few-shot:smollm2-135m?k=8", candidates=["adapter:run-3f2a"], share=10)
    set_deployment("tickets", share=50)        # a running `tunewise serve --deployment tickets` follows within a second
    set_deployment("tickets", rollback=True)   # everyone to the baseline
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
from dataclasses import dataclass

from tunewise.errors import ConfigError, TunewiseError
from tunewise.records.deployment import DeploymentState, Variant
from tunewise.store import Deployment, Store

SERVED_KIND = "served"  # `served:NAME`: a name the same server serves by other flags (--upstream, --adapter)


@dataclass(frozen=True)
class Loaded:
    """A deployment row and its typed state."""

    record: Deployment
    state: DeploymentState

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def version(self) -> int:
        return self.record.version


def current_actor() -> str:
    """Who made a change, for the event trail: `TUNEWISE_ACTOR`, else user@host."""
    explicit = os.environ.get("TUNEWISE_ACTOR")
    if explicit:
        return explicit
    try:
        user = getpass.getuser()
    except Exception:  # no login name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def check_spec(spec: str, *, where: str) -> str:
    """A variant's spec if tunewise can serve it: a prompt recipe, an adapter, an endpoint, or served:NAME."""
    from tunewise.evaluate.specs import parse_spec
    from tunewise.serve.protocol import APIError, check_served_name

    text = spec.strip()
    if text.startswith(f"{SERVED_KIND}:"):
        try:
            check_served_name(text.partition(":")[2])
        except APIError as exc:
            raise ConfigError(f"{where} {spec!r}: {exc.message}") from None
        return text
    try:
        parsed = parse_spec(text)
    except TunewiseError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if parsed.kind == "classic":
        raise ConfigError(f"{where} {spec!r}: classic candidates are not served; deploy a prompt recipe, an adapter or an endpoint")
    return text


def load(ref: str, *, store: Store | None = None) -> Loaded:
    with Store.borrow(store) as opened:
        record = opened.get_deployment(ref)
    return Loaded(record, DeploymentState.from_store(record.config, where=f"deployment {record.name}"))


def create_deployment(name: str, *, baseline: str, candidates: list[str] | tuple[str, ...] = (), share: float | list[float] = 10.0,
                      model: str | None = None, recipe_data: str | None = None, eval_data: str | None = None,
                      shadow: bool = False, shadow_sample: float | None = None, log_raw: bool | None = None,
                      reason: str | None = None, store: Store | None = None) -> Loaded:
    """A new deployment: `baseline` answers everyone the `candidates` do not (each gets `share` percent of users)."""
    from tunewise.config import load_config
    from tunewise.serve.protocol import APIError, check_served_name

    try:
        check_served_name(name)
    except APIError as exc:
        raise ConfigError(f"deployment name {name!r}: {exc.message.partition(': ')[2] or exc.message}") from None
    settings = load_config().deploy
    shares = list(share) if isinstance(share, (list, tuple)) else [share] * len(candidates)
    if len(shares) != len(candidates):
        raise ConfigError(f"{len(candidates)} candidate(s) but {len(shares)} share(s): give one --share per candidate or one for all")
    variants = [Variant(name=_candidate_name(i), spec=check_spec(spec, where="--candidate"), share=s)
                for i, (spec, s) in enumerate(zip(candidates, shares))]
    try:
        state = DeploymentState(
            baseline=Variant(name="baseline", spec=check_spec(baseline, where="--baseline")),
            candidates=variants,
            mode="shadow" if shadow else "split",
            shadow_sample=settings.shadow_sample if shadow_sample is None else shadow_sample,
            salt=secrets.token_hex(8),
            model=model,
            recipe_data=str(recipe_data) if recipe_data else None,
            eval_data=str(eval_data) if eval_data else None,
            log_raw=settings.log_raw if log_raw is None else log_raw,
        )
    except ValueError as exc:
        raise ConfigError(f"deployment {name}: {_first_error(exc)}") from None
    with Store.borrow(store) as opened:
        record = opened.create_deployment(name, state.to_store(), actor=current_actor(), reason=reason)
    return Loaded(record, state)


def set_deployment(ref: str, *, share: float | None = None, candidate: str | None = None, shadow: bool | None = None,
                   shadow_sample: float | None = None, rollback: bool = False, resume: bool = False,
                   replace_spec: str | None = None, reason: str | None = None, evaluation_id: str | None = None,
                   action: str | None = None, actor: str | None = None, store: Store | None = None) -> Loaded:
    """Change a deployment: a candidate's share, shadow mode on or off, rollback (all to the baseline) or resume.

    `candidate` names the variant a share or `replace_spec` applies to (default: the only candidate); `actor`
    is who the event names (default: `current_actor()`, the one running this process).
    """
    if rollback and (resume or share is not None or shadow):
        raise ConfigError("--rollback sends everyone to the baseline: give it alone")
    with Store.borrow(store) as opened:
        current = load(ref, store=opened)
        state = current.state
        update: dict = {}
        changed: list[str] = []
        if share is not None or replace_spec is not None:
            target = _pick_candidate(state, candidate)
            candidates = []
            for variant in state.candidates:
                if variant.name == target.name:
                    variant = variant.model_copy(update={
                        **({"share": share} if share is not None else {}),
                        **({"spec": check_spec(replace_spec, where="--candidate")} if replace_spec else {}),
                    })
                candidates.append(variant)
            update["candidates"] = candidates
            changed.append("share" if replace_spec is None else "promote")
            if state.mode == "off" and not rollback:
                update["mode"] = "split"  # setting a share after a rollback resumes the split
        if shadow is not None:
            update["mode"] = "shadow" if shadow else "split"
            changed.append("shadow")
        if shadow_sample is not None:
            update["shadow_sample"] = shadow_sample
            changed.append("shadow")
        if rollback:
            update["mode"] = "off"
            changed = ["rollback"]
        if resume:
            if state.mode != "off":
                raise ConfigError(f"deployment {current.name} is not rolled back (mode {state.mode}); nothing to resume")
            update["mode"] = "split"
            changed.append("resume")
        if not update:
            raise ConfigError("nothing to change: give --share, --shadow/--no-shadow, --shadow-sample, --rollback or --resume")
        try:
            new_state = DeploymentState.model_validate({**state.model_dump(), **{k: _dump(v) for k, v in update.items()}})
        except ValueError as exc:
            raise ConfigError(f"deployment {current.name}: {_first_error(exc)}") from None
        record = opened.change_deployment(current.record.id, new_state.to_store(), action=action or "+".join(dict.fromkeys(changed)),
                                          actor=actor or current_actor(), reason=reason, evaluation_id=evaluation_id)
    return Loaded(record, new_state)


def _dump(value):
    if isinstance(value, list):
        return [v.model_dump() if hasattr(v, "model_dump") else v for v in value]
    return value


def _pick_candidate(state: DeploymentState, name: str | None) -> Variant:
    if name is None:
        if len(state.candidates) != 1:
            names = ", ".join(c.name for c in state.candidates) or "none"
            raise ConfigError(f"the deployment has {len(state.candidates)} candidates ({names}): name one with --variant")
        return state.candidates[0]
    for variant in state.candidates:
        if variant.name == name:
            return variant
    raise ConfigError(f"no candidate named {name!r} (candidates: {', '.join(c.name for c in state.candidates) or 'none'})")


def _candidate_name(index: int) -> str:
    return "candidate" if index == 0 else f"candidate-{index + 1}"


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        message = str(first.get("msg", exc)).removeprefix("Value error, ")
        return f"{where}: {message}" if where else message
    return str(exc)


__all__ = ["Loaded", "current_actor", "check_spec", "load", "create_deployment", "set_deployment", "SERVED_KIND"]

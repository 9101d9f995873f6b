"""`advise`: the ROI guide's 7-step checklist and 5 win / 5 lose signals, answered from the store where it can.

Every fact carries its source, one of SOURCES: `measured` here (an audit, evaluation or run in the
store), `projected` (extrapolated from a measurement, as the learning curve's gain from more data),
`answered` (the user, interactively or in an answers YAML), `catalog` (the pricing catalog) or
`assumed` (a setting or a guide's default standing in for a figure nobody gave); a figure derived
from several carries all of theirs (`catalog+measured`). What none of them gives is unknown, never
invented. An explicit answer always wins over anything derived. A figure measured on one model and
applied to another (tokens counted by the embedded model's tokenizer pricing gpt-5-mini, a quality
gain measured on a small open model in a provider fine-tune's ROI) says so in its text. The verdict is one of: use a classic classifier, keep improving
the prompt, add retrieval, run a LoRA experiment (or fine-tune with LoRA when one already won), full
SFT, distill from a teacher. It is stored as a Decision.

Examples are counted unique, after dedup and decontamination: from the training run's dataset or a
dataset `tunewise data clean` produced when the store has one, else from the audit; the advice says
which count it used. A compared fine-tune whose run was still improving at its last evaluation, or
a learning curve that projects a real gain from more data, is not read as fine-tuning losing.

    from tunewise.advise import advise
    from tunewise.workspace_init import open_store
    advice = advise(open_store(), answers={"requests_per_month": 5_000_000, "cost_per_error_usd": 0.05})
    print(advice.to_markdown())
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunewise.advise.config import AdviseConfig
from tunewise.advise.facts import audit_facts, compare_facts, curve_facts, run_progress
from tunewise.advise.roi import FineTuneOption, RoiInputs, RoiResult, read_yaml_mapping, roi
from tunewise.errors import ConfigError, NotFoundError
from tunewise.pricing import Catalog, load_catalog

VERDICTS = {
    "classic": "Use a classic classifier",
    "prompt": "Keep improving the prompt",
    "retrieval": "Add retrieval",
    "lora": "Run a LoRA experiment",
    "full-sft": "Full SFT",
    "distill": "Distill from a teacher",
}


class Answers(BaseModel):
    """What the store cannot tell: asked interactively or read from `--answers answers.yaml`."""

    model_config = ConfigDict(extra="forbid")

    requests_per_month: float | None = Field(None, gt=0, description="How many requests per month does the task serve?")
    input_tokens: float | None = Field(None, ge=0, description="Input tokens per request with today's prompt?")
    output_tokens: float | None = Field(None, ge=0, description="Output tokens per request?")
    value_per_correct_usd: float | None = Field(None, ge=0, description="What is one more correct answer worth, in USD?")
    cost_per_error_usd: float | None = Field(None, ge=0, description="What does one wrong answer cost, in USD (rework, escalation)?")
    base_model: str | None = Field(None, description="Which catalog model serves the prompt today?")
    provider_model: str | None = Field(None, description="Which catalog model would you fine-tune at a provider?")
    plan_date: date | None = Field(None, description="When would the training run (YYYY-MM-DD)?")
    prompt_revisions: int | None = Field(None, ge=0, description="How many disciplined prompt revisions with eval metrics have you made?")
    prompt_techniques_tried: int | None = Field(None, ge=0, le=8, description="Of CoT, structured output, 8-15 few-shot, retrieval, format constraints, negative examples, multi-turn refinement, model swap: how many tried?")
    prompt_plateau_days: int | None = Field(None, ge=0, description="For how many days has the prompt metric not moved?")
    structured_bar_above_99_5: bool | None = Field(None, description="Must structured outputs be valid more than 99.5% of the time?")
    latency_floor_binding: bool | None = Field(None, description="Do you need <200 ms p50 that no good-enough base model delivers?")
    task_changes_weekly: bool | None = Field(None, description="Does the task (categories, voice, products) change weekly?")
    base_upgrade_expected: bool | None = Field(None, description="Is a major base-model upgrade expected in the next 3 months?")
    teacher_available: bool | None = Field(None, description="Does a stronger model already do the task well (a teacher)?")
    needs_fresh_knowledge: bool | None = Field(None, description="Do answers depend on facts that change (documents, prices, policies)?")
    examples: int | None = Field(None, ge=0, description="How many labeled examples do you have?")
    label_agreement: float | None = Field(None, ge=0, le=1, description="Inter-annotator agreement on the labels (0-1)?")
    labeling_hours: float | None = Field(None, ge=0, description="Hours of data preparation and labeling the fine-tune needs?")
    labeler_rate_usd: float | None = Field(None, ge=0, description="Labeler $/hour, fully loaded?")
    eval_set_usd: float | None = Field(None, ge=0, description="Cost of building the held-out eval set, in USD?")
    monthly_base_spend_usd: float | None = Field(None, ge=0, description="Monthly spend on the base model today, in USD?")


# Asked in this order, only when the store did not answer them.
QUESTION_ORDER = [
    "requests_per_month", "input_tokens", "output_tokens", "cost_per_error_usd", "examples", "label_agreement",
    "prompt_revisions", "prompt_techniques_tried", "prompt_plateau_days", "structured_bar_above_99_5",
    "latency_floor_binding", "task_changes_weekly", "base_upgrade_expected", "teacher_available",
    "needs_fresh_knowledge", "labeling_hours", "eval_set_usd",
]

Asker = Callable[[str, str, type], Any]


# The one vocabulary of sources, with the words the advice prints for each.
SOURCES = {"measured": "measured here", "projected": "projected", "answered": "answered", "catalog": "catalog",
           "assumed": "assumed"}


def join_sources(*sources: str) -> str:
    """`catalog+measured` from `measured`, `catalog`; 'unknown' when nothing was known."""
    parts = sorted({part for source in sources if source for part in source.split("+") if part in SOURCES})
    return "+".join(parts) or "unknown"


@dataclass
class Fact:
    value: Any
    source: str  # one of SOURCES, or several joined by '+'
    detail: str = ""
    transfer: str = ""  # set when the figure was measured on another model than the one it is applied to


@dataclass
class Check:
    """One checklist step or signal: `answer` is True/False/None (unknown), favourable meaning differs per list."""

    key: str
    question: str
    answer: bool | None
    evidence: str
    source: str


@dataclass
class Advice:
    verdict: str
    title: str
    reasons: list[dict[str, str]]
    checklist: list[Check]
    win_signals: list[Check]
    lose_signals: list[Check]
    facts: dict[str, Fact]
    unknowns: list[str]
    roi: RoiResult | None
    migration: dict[str, Any] | None
    warnings: list[str]
    dataset_id: str | None = None
    evaluation_id: str | None = None
    decision_id: str | None = None
    as_of: str = field(default_factory=lambda: date.today().isoformat())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["roi"] = self.roi.to_dict() if self.roi else None
        return data

    def to_markdown(self) -> str:
        return render_markdown(self.to_dict())

    def to_html(self) -> str:
        return render_html(self.to_dict())


# -- gathering facts ---------------------------------------------------------------------------------


def load_answers(path: str | Path) -> Answers:
    """An answers YAML; unknown keys and bad values are one-line errors naming the file and key."""
    return _validate_answers(read_yaml_mapping(path, "answers"), str(path))


def _validate_answers(raw: dict[str, Any], where: str) -> Answers:
    try:
        return Answers.model_validate(raw)
    except ValidationError as exc:
        parts = []
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"])
            parts.append(f"{key}: {'unknown question' if error['type'] == 'extra_forbidden' else error['msg']}")
        raise ConfigError(f"{where}: {'; '.join(parts)}") from exc


def _gather(store, dataset_id, evaluation_id, config: AdviseConfig) -> tuple[dict[str, Any], list[str]]:
    """Measured facts from the store: latest audit, compare and curve evaluations, prompt history, runs."""
    found: dict[str, Any] = {"audit": None, "compare": None, "curve": None, "training": None, "examples": None}
    ids: list[str] = []
    audit = store.latest_audit(dataset_id) if dataset_id else store.latest_audit()
    if dataset_id and audit is None:
        raise NotFoundError(f"dataset {dataset_id}: no audit in the store (run `tunewise data audit` first)")
    if audit is not None:
        found["audit"] = {"id": audit.id, "dataset_id": audit.dataset_id, **audit_facts(audit.summary or {})}
    evaluation = store.get_evaluation(evaluation_id) if evaluation_id else store.latest_evaluation("compare")
    if evaluation is not None:
        found["compare"] = {"id": evaluation.id, **compare_facts(evaluation.results or {}, classic_margin=config.classic_margin)}
        found["compare"]["task_type"] = found["compare"]["task_type"] or evaluation.task_type
    curve = store.latest_evaluation("curve")
    if curve is not None:
        found["curve"] = {"id": curve.id, **curve_facts(curve.results or {})}
    # Prompt history: distinct prompt specs across every compare evaluation, and the days they span.
    specs, dates = set(), []
    for item in store.list_evaluations(limit=500):
        if item.kind != "compare":
            continue
        for c in compare_facts(item.results or {})["candidates"]:
            if c["group"] in ("prompt", "retrieval"):
                specs.add(c["spec"] or c["name"])
        dates.append(item.created_at)
    found["prompt_versions"] = len(specs) if specs else None
    found["eval_span_days"] = (max(dates) - min(dates)).days if len(dates) > 1 else None
    tuned = (found["compare"] or {}).get("best_finetuned") or {}
    run = _run(store, tuned.get("run_id"))
    if run is not None:
        steps = [(step.step, step.values or {}) for step in store.run_steps(run.id)]
        found["training"] = {"run_id": run.id, **run_progress(run.metrics, steps)}
        tuned["model"] = run.base_model  # the fine-tune's quality was measured on this model
    found["examples"] = _example_count(store, audit, run)
    found["lora_runs"] = sum(1 for r in store.list_runs(limit=500) if r.kind in ("lora", "qlora", "full") and r.status == "completed")
    return found, ids


def _run(store, run_id: str | None):
    if not run_id:
        return None
    try:
        return store.get_run(run_id)
    except NotFoundError:
        return None


def _cleaned_from(dataset) -> dict[str, Any] | None:
    """The `tunewise data clean` record of a dataset (its meta), when it removed duplicates."""
    meta = dataset.meta or {}
    return meta if meta.get("cleaned_from") and (meta.get("fixes") or {}).get("dedup") else None


def _example_count(store, audit, run) -> dict[str, Any] | None:
    """Unique examples and the sentence that says how they were counted: the training run's dataset,
    else the newest cleaned (deduplicated) child of the audited dataset, else the audit's own count."""
    candidates = []
    if run is not None and run.dataset_id:
        candidates.append((run.dataset_id, "the training run's dataset"))
    if audit is not None:
        audited = store.get_dataset(audit.dataset_id)
        children = [d for d in store.list_datasets(limit=500) if _cleaned_from(d)
                    and (d.parent_id == audited.id or d.meta.get("cleaned_from") == audited.path)]
        if children:
            candidates.append((children[0].id, "the cleaned dataset"))
    for dataset_id, what in candidates:
        try:
            dataset = store.get_dataset(dataset_id)
        except NotFoundError:
            continue
        own = store.latest_audit(dataset.id)
        if own is not None and (own.summary or {}).get("readiness", {}).get("examples") is not None:
            return _audit_count(own, f"{what} {dataset.name}")
        cleaned, ancestor = _cleaned_from(dataset), dataset
        for _ in range(5):  # a split of a cleaned file: its train side is unique too
            if cleaned or not ancestor.parent_id:
                break
            ancestor = store.get_dataset(ancestor.parent_id)
            cleaned = _cleaned_from(ancestor)
        if cleaned:
            removed = sum(int(v or 0) for v in (cleaned.get("removed") or {}).values())
            raw = (ancestor.rows or 0) + removed
            text = f"{dataset.rows:,} unique examples after cleaning ({raw:,} rows in the file)"
            if ancestor is not dataset:
                text = f"{dataset.rows:,} unique examples after cleaning and splitting ({raw:,} rows in the cleaned file's source)"
            return {"value": dataset.rows, "rows": raw, "text": text, "detail": f"{what} {dataset.id}"}
        return {"value": dataset.rows, "rows": dataset.rows, "detail": f"{what} {dataset.id}",
                "text": f"{dataset.rows:,} examples in {what} (not deduplicated: run `tunewise data clean --dedup`)"}
    if audit is not None:
        return _audit_count(audit, f"audit {audit.id}")
    return None


def _audit_count(audit, where: str) -> dict[str, Any] | None:
    facts = audit_facts(audit.summary or {})
    rows, unique = facts["rows"], facts["unique_examples"]
    if unique is None:
        if rows is None:
            return None
        return {"value": rows, "rows": rows, "detail": where, "text": f"{rows:,} rows in the file (the audit counted no duplicates)"}
    how = "after dedup and decontamination" if facts["decontaminated"] else "after dedup"
    return {"value": unique, "rows": rows, "detail": where,
            "text": f"{unique:,} unique examples {how}" + (f" ({rows:,} rows in the file)" if rows is not None else "")}


def advise(
    store,
    answers: Answers | dict[str, Any] | str | Path | None = None,
    *,
    dataset_id: str | None = None,
    evaluation_id: str | None = None,
    config: AdviseConfig | None = None,
    catalog: Catalog | None = None,
    ask: Asker | None = None,
    today: date | None = None,
    save: bool = True,
) -> Advice:
    """Walk the checklist and signals from the store's facts plus `answers` (asking `ask` for the rest), decide, price, store."""
    config = config or AdviseConfig()
    catalog = catalog or load_catalog(config.pricing_file)
    today = today or date.today()
    if isinstance(answers, (str, Path)):
        answers = load_answers(answers)
    elif isinstance(answers, dict):
        answers = _validate_answers(answers, "answers")
    answers = answers or Answers()
    found, _ = _gather(store, dataset_id, evaluation_id, config)
    audit, compare, curve = found["audit"], found["compare"], found["curve"]
    facts: dict[str, Fact] = {}

    def measured(key: str, value: Any, detail: str) -> None:
        if value is not None:
            facts[key] = Fact(value, "measured", detail)

    count = found["examples"]
    if count:
        measured("examples", count["value"], f"{count['text']}; {count['detail']}")
        measured("examples_basis", count["text"], count["detail"])
    if audit:
        where = f"audit {audit['id']}"
        agreement = audit["agreement"]
        measured("label_agreement", agreement, where + (f" (kappa {audit['kappa']:.2f})" if audit.get("kappa") is not None else ""))
        readiness_level, readiness_line = audit["readiness_level"], audit["readiness_verdict"]
        if count and count["value"] != audit["unique_examples"]:
            # The count came from a cleaned or training dataset: judge readiness on it, not on the raw file.
            from tunewise.data.audit import readiness_verdict

            ready = readiness_verdict(count["value"], audit["eval_rows"], agreement=agreement, rows=count["rows"])
            readiness_level, readiness_line, where = ready.level, ready.verdict, count["detail"]
        measured("readiness", readiness_level, f"{where}: {readiness_line or ''}".strip())
        measured("billable_tokens_per_epoch", audit["billable_per_epoch"], where)
        measured("suspected_mislabeled", audit["suspected_mislabeled"], where)
    if compare:
        where = f"evaluation {compare['id']}"
        measured("task_type", compare["task_type"], where)
        base = compare["baseline"]
        if base:
            counted = f" counted by {base['model']}'s tokenizer" if base.get("model") else ""
            measured("input_tokens", base.get("tokens_in_mean"), f"{where}: {base['name']} mean input tokens{counted}")
            measured("output_tokens", base.get("tokens_out_mean"), f"{where}: {base['name']} mean output tokens{counted}")
            measured("baseline_latency_p50_ms", base.get("latency_p50_ms"), f"{where}: {base['name']}")
        if compare.get("best_prompt"):
            p = compare["best_prompt"]
            measured("best_prompt", f"{p['name']} {compare['metric']} {p['value']:.3f}", where)
        if compare.get("best_finetuned"):
            t = compare["best_finetuned"]
            measured("best_finetuned", f"{t['name']} {compare['metric']} {t['value']:.3f}", where)
            measured("finetune_gain", compare.get("finetune_gain"), f"{where}: vs {compare.get('finetune_vs')}")
            measured("finetune_significant", compare.get("finetune_significant"),
                     f"{where}: p={compare.get('finetune_p_value')} vs {compare.get('finetune_comparison_vs')}")
        if compare.get("classic"):
            c = compare["classic"]
            measured("classic", f"{c['name']} {compare['metric']} {c['value']:.3f}", where)
            measured("classic_matches", compare.get("classic_matches"), f"{where}: within {config.classic_margin:g} of the best LLM")
        measured("retrieval_helps", compare.get("retrieval_helps"), where)
        measured("prompt_candidates", compare.get("prompt_candidates"), where)
    if curve and curve["projected_gain_doubling"] is not None:
        largest = f" (fit up to {curve['largest_size']:,} examples)" if curve["largest_size"] else ""
        facts["projected_gain_doubling"] = Fact(curve["projected_gain_doubling"], "projected",
                                                f"curve {curve['id']}: extrapolated from the fit{largest}, not measured")
    training = found["training"]
    if training and training["still_improving"] is not None:
        at = (f"best evaluation at step {training['best_step']} of {training['last_step']}"
              if training["best_step"] is not None and training["last_step"] is not None else "")
        measured("finetune_still_improving", training["still_improving"],
                 f"run {training['run_id']} ({training['source']}{'; ' + at if at else ''})")
    measured("prompt_versions", found["prompt_versions"], "distinct prompt candidates across stored evaluations")
    measured("eval_span_days", found["eval_span_days"], "days between the first and last stored comparison")
    tuned = compare.get("best_finetuned") if compare else None
    facts["lora_tried"] = Fact(bool(found["lora_runs"]) or tuned is not None, "measured",
                               f"{found['lora_runs']} completed LoRA/full runs in the store"
                               + (f"; fine-tuned candidate {tuned['name']} evaluated" if tuned else ""))

    # Answers: from the YAML first, then interactively for what is still unknown.
    # An explicit answer wins over anything derived; the derived figure it replaced stays in the detail.
    given = answers.model_dump(exclude_none=True)
    for key, value in given.items():
        derived = facts.get(key)
        detail = "answers"
        if derived is not None and derived.value != value:
            detail += f" (wins over {derived.value!r}, {SOURCES.get(derived.source, derived.source)}: {derived.detail})"
        facts[key] = Fact(value, "answered", detail)
    if facts.get("examples") and facts["examples"].source == "answered":
        facts.pop("examples_basis", None)  # the basis sentence describes the count the answer replaced
    if ask is not None:
        for key in QUESTION_ORDER:
            if key in facts or (key == "cost_per_error_usd" and "value_per_correct_usd" in facts):
                continue
            field_info = Answers.model_fields[key]
            kind = _answer_type(field_info.annotation)
            value = ask(key, field_info.description or key, kind)
            if value is not None:
                checked = _validate_answers({key: value}, "answer")
                facts[key] = Fact(getattr(checked, key), "answered", "asked")

    def get(key: str) -> Any:
        return facts[key].value if key in facts else None

    def src(*keys: str) -> str:
        return join_sources(*(facts[k].source for k in keys if k in facts))

    if "base_model" not in facts:
        facts["base_model"] = Fact(config.base_model, "assumed", "the advise.base_model setting (answer base_model to change it)")
    base_model = get("base_model")
    provider_model = get("provider_model") or config.provider_model or base_model
    plan_date = get("plan_date") or today
    base_row = catalog.get(base_model)
    provider_row = catalog.get(provider_model)
    _mark_token_transfer(facts, compare, catalog, base_row)

    # Monthly spend and cost per 1k from unit prices (computed) when volume and tokens are known.
    requests = get("requests_per_month")
    tin, tout = get("input_tokens"), get("output_tokens")
    if base_row.base_input_usd_per_m is not None and tin is not None:
        per_request = (tin * base_row.base_input_usd_per_m + (tout or 0) * (base_row.base_output_usd_per_m or 0)) / 1e6
        transfer = facts["input_tokens"].transfer
        tokens_src = src("input_tokens", "output_tokens")
        facts["cost_per_1k_usd"] = Fact(per_request * 1000, join_sources("catalog", tokens_src),
                                        f"{base_row.name} unit prices x tokens per request ({tokens_src})", transfer)
        if requests is not None and "monthly_base_spend_usd" not in facts:
            facts["monthly_base_spend_usd"] = Fact(per_request * requests, join_sources("catalog", tokens_src, src("requests_per_month")),
                                                   f"{requests:,.0f} requests x ${per_request * 1000:.3f}/1k", transfer)

    checklist, wins, loses = _checks(facts, get, src, config)
    verdict, title, reasons = _decide(facts, get, src, checklist, wins, loses, compare, config, catalog)

    # Money: the ROI of the fine-tune options, quality from the evaluation where it has one.
    warnings = catalog.warnings_for(provider_row, on=plan_date, horizon_days=30 * config.horizon_months)
    retiring = catalog.retiring(provider_row, on=plan_date, horizon_days=30 * config.horizon_months)
    roi_result, roi_note, roi_source = _money(facts, get, compare, catalog, config, base_row, provider_row, plan_date, retiring)
    if roi_note:
        reasons.append({"text": roi_note, "source": roi_source})
    migration = None
    if retiring is not None:
        migration = {
            "provider": retiring.provider,
            "closes": str(retiring.from_),
            "source": retiring.source,
            "path": retiring.migration or "distill into an open model that tunewise trains and serves",
            "steps": [
                f"label inputs with {base_row.name} as teacher (`tunewise distill`)",
                f"train a LoRA student on {config.open_model_row} (`tunewise train`)",
                "serve it behind a traffic split (`tunewise serve`)",
            ],
        }
        option = next((o for o in (roi_result.options if roi_result else []) if o.name.startswith("distill")), None)
        if option is None:
            migration["cost"] = "unknown: answer examples, requests_per_month and input_tokens to price the teacher's labels"
        else:
            migration.update(budget_usd=option.budget_usd, monthly_usd=option.monthly_usd,
                             incremental_year1_usd=option.incremental_year1_usd, basis=option.budget_basis)
    if retiring is not None:
        reasons.append({"text": f"{retiring.provider} accepts no {retiring.what} from {retiring.from_} ({retiring.source}): "
                                f"plan on the migration path ({migration['path']})", "source": "catalog"})
    unknowns = [k for k in QUESTION_ORDER if k not in facts
                and not (k == "cost_per_error_usd" and "value_per_correct_usd" in facts)]
    if roi_result is None or roi_result.best is None:
        unknowns.append("money (answer requests_per_month and cost_per_error_usd or value_per_correct_usd)")
    advice = Advice(
        verdict=verdict, title=title, reasons=reasons, checklist=checklist, win_signals=wins, lose_signals=loses,
        facts=facts, unknowns=unknowns, roi=roi_result, migration=migration, warnings=warnings,
        dataset_id=audit["dataset_id"] if audit else dataset_id, evaluation_id=compare["id"] if compare else None,
        as_of=today.isoformat(),
    )
    if save:
        record = store.add_decision(
            verdict,
            reasons=reasons,
            facts={"title": title, **_jsonable({k: asdict(v) for k, v in facts.items()}),
                   "_advice": _jsonable(advice.to_dict())},
            money=_jsonable(roi_result.to_dict()) if roi_result else {},
            dataset_id=advice.dataset_id,
            evaluation_id=advice.evaluation_id,
        )
        advice.decision_id = record.id
    return advice


def _mark_token_transfer(facts: dict[str, Fact], compare, catalog: Catalog, priced) -> None:
    """Tokens counted by another model's tokenizer on the evaluation's prompt that price `priced`: say so."""
    base = (compare or {}).get("baseline") or {}
    counted_by = base.get("model")
    if counted_by and catalog.find(counted_by) is priced:
        return  # an endpoint of the priced model reported them: measured for that model
    text = (f"counted by {counted_by or 'the evaluated model'}'s tokenizer on the {base.get('name')} prompt, used to price "
            f"{priced.name}: its tokenizer and today's prompt may count differently (answer input_tokens to replace them)")
    for key in ("input_tokens", "output_tokens"):
        if key in facts and facts[key].source == "measured":
            facts[key].transfer = text


def _answer_type(annotation: Any) -> type:
    text = str(annotation)
    for kind in (bool, int, float, date):
        if kind.__name__ in text:
            return kind
    return str


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


# -- checklist, signals, verdict --------------------------------------------------------------------------


def _checks(facts, get, src, config: AdviseConfig):
    examples, agreement = get("examples"), get("label_agreement")
    revisions = get("prompt_revisions")
    revisions_src = "prompt_revisions"
    if revisions is None and get("prompt_versions") is not None:
        revisions, revisions_src = get("prompt_versions"), "prompt_versions"
    techniques, plateau = get("prompt_techniques_tried"), get("prompt_plateau_days")
    plateau_src = "prompt_plateau_days"
    if plateau is None and get("eval_span_days") is not None:
        plateau, plateau_src = get("eval_span_days"), "eval_span_days"

    exhausted: bool | None
    if (revisions is not None and revisions < 3) or (techniques is not None and techniques < 6):
        exhausted = False
    elif revisions is not None and techniques is not None:
        exhausted = True
    else:
        exhausted = None
    ev_prompt = f"{_show(revisions)} prompt revisions/versions, {_show(techniques)} of 8 techniques tried"

    consistent = None if agreement is None else agreement >= config.min_agreement
    if examples is None:
        enough = None
    elif examples < config.min_examples or consistent is False:
        enough = False
    else:
        enough = True if consistent else None
    ev_data = f"{get('examples_basis') or _show(examples) + ' examples'}, agreement {_show(agreement)}"

    latency = get("latency_floor_binding")
    p50 = get("baseline_latency_p50_ms")
    ev_latency = "answered" if latency is not None else "not answered"
    if p50 is not None:
        ev_latency += f"; measured baseline p50 {p50:.0f} ms"
    spend = get("monthly_base_spend_usd")
    upgrade = get("base_upgrade_expected")
    checklist = [
        Check("prompt_exhausted", "Have you exhausted prompt iteration (3-5 expert revisions)?", exhausted, ev_prompt,
              src(revisions_src, "prompt_techniques_tried")),
        Check("data_10k_consistent", f"Do you have {config.min_examples:,}+ consistent training examples?", enough, ev_data,
              src("examples", "label_agreement")),
        Check("structured_bar", "Is your quality bar above 99.5% on structured outputs?", get("structured_bar_above_99_5"),
              "answered" if "structured_bar_above_99_5" in facts else "not answered", src("structured_bar_above_99_5")),
        Check("latency_binding", "Is your latency floor binding (need <200ms p50)?", latency, ev_latency,
              src("latency_floor_binding", "baseline_latency_p50_ms")),
        Check("spend_over_5k", f"Is your monthly base-model spend already > ${config.spend_threshold_usd:,.0f}?",
              None if spend is None else spend > config.spend_threshold_usd, f"${_show(spend, '{:,.0f}')}/month" + _caveat(facts, "monthly_base_spend_usd"),
              src("monthly_base_spend_usd")),
        Check("tried_lora_or_distill", "Have you tried distillation or LoRA first?", get("lora_tried"),
              facts["lora_tried"].detail, src("lora_tried")),
        Check("base_stable", "Will the base model stabilize (no major upgrade expected in 3 months)?",
              None if upgrade is None else not upgrade, "answered" if upgrade is not None else "not answered",
              src("base_upgrade_expected")),
    ]
    task_type = get("task_type")
    structured_task = get("structured_bar_above_99_5")
    if task_type in ("classification", "structured", "structured_output", "extraction"):
        structured_task, struct_src, struct_ev = True, "measured", f"task type {task_type}: format-shaped, narrow"
    else:
        struct_src = src("structured_bar_above_99_5")
        struct_ev = f"task type {_show(task_type)}"
    per_1k = get("cost_per_1k_usd")
    wins = [
        Check("a_examples", f"(a) >{config.min_examples:,} high-quality, consistent labeled examples", enough, ev_data,
              src("examples", "label_agreement")),
        Check("b_structured", "(b) structured-output reliability matters more than peak intelligence", structured_task,
              struct_ev, struct_src),
        Check("c_latency", "(c) your latency floor is binding", latency, ev_latency, src("latency_floor_binding")),
        Check("d_cost_per_1k", f"(d) cost per 1k inferences > ${config.cost_per_1k_threshold_usd:.2f} with the base model",
              None if per_1k is None else per_1k > config.cost_per_1k_threshold_usd, f"${_show(per_1k, '{:.3f}')}/1k" + _caveat(facts, "cost_per_1k_usd"),
              src("cost_per_1k_usd")),
        Check("e_plateau", f"(e) the prompt has plateaued for {config.plateau_days}+ days of disciplined iteration",
              None if plateau is None else (plateau >= config.plateau_days and exhausted is not False),
              f"{_show(plateau)} days; {ev_prompt}", src(plateau_src, revisions_src)),
    ]
    changes = get("task_changes_weekly")
    suspected = get("suspected_mislabeled")
    label_ev = f"agreement {_show(agreement)}" + (f", {suspected} rows suspected mislabeled" if suspected else "")
    loses = [
        Check("a_few_examples", f"(a) fewer than {config.floor_examples:,} examples",
              None if examples is None else examples < config.floor_examples,
              get("examples_basis") or f"{_show(examples)} examples", src("examples")),
        Check("b_inconsistent_labels", f"(b) inconsistent labels (agreement < {config.min_agreement:.0%})",
              None if agreement is None else agreement < config.min_agreement, label_ev, src("label_agreement")),
        Check("c_iteration_speed", "(c) iteration speed matters more than absolute quality (task changes weekly)",
              changes, "answered" if changes is not None else "not answered", src("task_changes_weekly")),
        Check("d_prompt_not_exhausted", "(d) prompt engineering not actually exhausted",
              None if exhausted is None else not exhausted, ev_prompt, src(revisions_src, "prompt_techniques_tried")),
        Check("e_base_improving", "(e) the underlying base model is still improving", upgrade,
              "answered" if upgrade is not None else "not answered", src("base_upgrade_expected")),
    ]
    return checklist, wins, loses


def _decide(facts, get, src, checklist, wins, loses, compare, config: AdviseConfig, catalog: Catalog):
    reasons: list[dict[str, str]] = []

    def because(text: str, source: str) -> None:
        reasons.append({"text": text, "source": source})

    def on(*checks: Check) -> str:
        return join_sources(*(c.source for c in checks))

    lose_true = [c for c in loses if c.answer is True]
    win_true = [c for c in wins if c.answer is True]
    because(f"{len(win_true)} of 5 win signals present, {len(lose_true)} of 5 lose signals present "
            f"({sum(c.answer is None for c in (*wins, *loses))} unknown)", on(*wins, *loses))
    for check in lose_true:
        because(f"lose signal {check.question}: {check.evidence}", check.source)
    examples = get("examples")
    if get("examples_basis"):
        because(f"examples counted: {get('examples_basis')}", src("examples"))
    gain, significant = get("finetune_gain"), get("finetune_significant")
    doubling = get("projected_gain_doubling")
    more_data = doubling is not None and doubling > config.data_gain_margin
    if doubling is not None:
        because(f"the learning curve projects {doubling:+.3f} from doubling the data"
                + (": more data would help, the fine-tune has not plateaued" if more_data else ""), "projected")
    unfinished = get("finetune_still_improving") is True

    if get("classic_matches"):
        because(f"the classic classifier ({get('classic')}) matches the best LLM candidate: "
                "no LLM fine-tune (or LLM at all) is needed for this classification task", "measured")
        return "classic", VERDICTS["classic"], reasons
    if gain is not None:
        if significant and gain > 0:
            because(f"the fine-tune ({get('best_finetuned')}) beats the best prompt ({get('best_prompt')}) by "
                    f"{gain:+.3f}, significant ({facts['finetune_significant'].detail})", "measured")
            if checklist[1].answer and len(win_true) == 5 and not lose_true:
                because("all five win signals and 10k+ consistent examples: full SFT can move further than LoRA", on(*wins, checklist[1]))
                return "full-sft", VERDICTS["full-sft"], reasons
            if get("teacher_available") and examples is not None and examples < config.floor_examples:
                because(f"only {examples:,} examples and a teacher does the task: distill more training data", "answered")
                return "distill", VERDICTS["distill"], reasons
            if lose_true:
                because("measured evidence outweighs the ROI guide's priors here, but treat the lose signals as risks", on(*lose_true))
            return "lora", "Fine-tune with LoRA (it beat the prompts on your eval set)", reasons
        because(f"the fine-tune ({get('best_finetuned')}) does not significantly beat the best prompt "
                f"({gain:+.3f}; {facts['finetune_significant'].detail if 'finetune_significant' in facts else 'no test'})",
                "measured")
        if unfinished or more_data:
            # An unfinished fine-tune losing to the prompt says little about fine-tuning: finish it first.
            if unfinished:
                because(f"the fine-tune was still improving at its last evaluation "
                        f"({facts['finetune_still_improving'].detail}): its result against the prompt is not "
                        "counted as a lose signal", "measured")
                because("next: run a budgeted search (`tunewise train --search`) or add training data", "measured")
                return "lora", "Finish the fine-tune: run a budgeted search (`tunewise train --search`) or add data", reasons
            because("next: collect or distill more training data and train again; more data would help", "projected")
            return "lora", "Add training data: the learning curve says more data would help the fine-tune", reasons
        if get("retrieval_helps") or get("needs_fresh_knowledge"):
            because("retrieval few-shot beats plain prompts" if get("retrieval_helps") else
                    "answers depend on changing facts: ground them with retrieval", src("retrieval_helps", "needs_fresh_knowledge"))
            return "retrieval", VERDICTS["retrieval"], reasons
        return "prompt", VERDICTS["prompt"], reasons
    if len(lose_true) >= 2:
        because("two or more lose signals: stop, ship the prompt, revisit in 6 months", on(*lose_true))
        if get("retrieval_helps") or get("needs_fresh_knowledge"):
            return "retrieval", VERDICTS["retrieval"], reasons
        return "prompt", VERDICTS["prompt"], reasons
    if get("retrieval_helps") or get("needs_fresh_knowledge"):
        because("retrieval few-shot beats plain prompts on the eval set" if get("retrieval_helps")
                else "answers depend on changing facts: retrieval grounds them without training",
                src("retrieval_helps", "needs_fresh_knowledge"))
        return "retrieval", VERDICTS["retrieval"], reasons
    if get("teacher_available") and (examples is None or examples < config.floor_examples):
        because("a teacher already does the task and labeled data is short: distillation skips human labels", "answered")
        return "distill", VERDICTS["distill"], reasons
    if checklist[0].answer is False:
        because("checklist step 1: prompt iteration is not exhausted (the ROI guide: two more weeks of prompts "
                "save $10-25k)", checklist[0].source)
        return "prompt", VERDICTS["prompt"], reasons
    if len(win_true) == 5 and checklist[5].answer:
        because("all five win signals present and LoRA already tried", on(*wins, checklist[5]))
        return "full-sft", VERDICTS["full-sft"], reasons
    cost, cost_source = _experiment_cost(get, src, catalog, config)
    because(f"no measured fine-tune yet: a LoRA experiment answers 'does fine-tuning help at all?' ({cost})", cost_source)
    return "lora", VERDICTS["lora"], reasons


def _experiment_cost(get, src, catalog: Catalog, config: AdviseConfig) -> tuple[str, str]:
    """One LoRA run's cost on the open-model row, from the audit's billable tokens and the catalog; else unknown."""
    tokens = get("billable_tokens_per_epoch")
    row = catalog.get(config.open_model_row)
    estimate = catalog.training_estimate(row, tokens * config.epochs) if tokens is not None else None
    if estimate is None:
        why = "no audit counted the training tokens" if tokens is None else f"{row.name} has no training price"
        return f"its cost is unknown: {why}", src("billable_tokens_per_epoch")
    return (f"one run on {row.name} costs about ${estimate.usd:,.2f}: {config.epochs} epochs (advise.epochs) x "
            f"{estimate.basis}" + (" (example rate, edit it)" if row.example else ""),
            join_sources("catalog", "assumed", src("billable_tokens_per_epoch")))


def _money(facts, get, compare, catalog: Catalog, config: AdviseConfig, base_row, provider_row, plan_date, retiring):
    """(RoiResult or None, the sentence for the reasons, its sources). Figures nobody gave are unknown or
    labelled assumed; a quality gain measured on another model says it is applied as if it transferred."""
    requests = get("requests_per_month")
    if requests is None:
        return None, "money unknown: answer requests_per_month to price the options", "unknown"
    if get("input_tokens") is None and base_row.base_input_usd_per_m is not None:
        return None, "money unknown: answer input_tokens (or evaluate a candidate that records tokens)", "unknown"
    sources = ["catalog", facts["requests_per_month"].source, facts["input_tokens"].source if "input_tokens" in facts else ""]
    epochs_tokens = get("billable_tokens_per_epoch")
    training_tokens = epochs_tokens * config.epochs if epochs_tokens is not None else None
    options = []
    if provider_row.kind == "managed":
        options.append(FineTuneOption(name=f"{provider_row.name} fine-tune", model=provider_row.name,
                                      training_tokens=training_tokens))
    open_row = catalog.get(config.open_model_row)
    options.append(FineTuneOption(name=f"LoRA on an open model ({open_row.name})", method="lora", model=open_row.name,
                                  serve_on=open_row.name, training_tokens=training_tokens))
    assumed = [f"{config.epochs} epochs a run (advise.epochs)"] if training_tokens is not None else []
    if retiring is not None and get("examples") is not None:
        # The teacher labels as many inputs as there are examples today, at the base model's prices.
        per_example = (get("input_tokens") or 0) * (base_row.base_input_usd_per_m or 0) + (get("output_tokens") or 0) * (
            base_row.base_output_usd_per_m or 0)
        teacher = get("examples") * per_example / 1e6
        options.append(FineTuneOption(name=f"distill to an open model ({open_row.name}, migration)", method="distill",
                                      model=open_row.name, serve_on=open_row.name, training_tokens=training_tokens,
                                      extra_upfront_usd=teacher))
    data: dict[str, Any] = {
        "requests_per_month": requests, "input_tokens": get("input_tokens"), "output_tokens": get("output_tokens") or 0,
        "base_model": base_row.name, "options": options, "plan_date": plan_date, "months": config.horizon_months,
        "labeling_hours": get("labeling_hours") or 0, "eval_set_usd": get("eval_set_usd") or 0,
        "value_per_correct_usd": get("value_per_correct_usd"), "cost_per_error_usd": get("cost_per_error_usd"),
    }
    for key, what in (("labeling_hours", "0 labeling hours"), ("eval_set_usd", "a $0 eval set")):
        if get(key) is None:
            assumed.append(f"{what} ({key} not answered)")
    if get("labeler_rate_usd") is not None:
        data["labeler_rate_usd"] = get("labeler_rate_usd")
    if data["value_per_correct_usd"] is not None:
        data["cost_per_error_usd"] = None
    transfer = ""
    if compare and compare.get("best_finetuned") and (compare.get("best_prompt") or compare.get("baseline")):
        reference = compare.get("best_prompt") or compare["baseline"]
        tuned = compare["best_finetuned"]
        measured_on = tuned.get("model") or reference.get("model")
        elsewhere = [o.name for o in options if not (measured_on and catalog.find(measured_on) is catalog.find(o.model or ""))]
        if elsewhere:
            transfer = (f"the quality gain was measured on {measured_on or 'the evaluated models'} and is applied to "
                        f"{', '.join(elsewhere)} as if it transferred")
        data.update(baseline_quality=reference["value"], finetuned_quality=tuned["value"],
                    quality_source=f"evaluation {compare['id']} ({compare['metric']}: {tuned['name']} vs {reference['name']})"
                    + (f"; {transfer}" if transfer else ""))
        comparison = tuned.get("comparison") or {}
        if comparison.get("vs") == reference["name"] and comparison.get("low") is not None:
            data.update(gain_low=comparison["low"], gain_high=comparison["high"])
        sources += ["measured", "assumed" if transfer else ""]
    value_key = "value_per_correct_usd" if get("value_per_correct_usd") is not None else "cost_per_error_usd"
    sources.append(facts[value_key].source if value_key in facts else "")
    if assumed:
        sources.append("assumed")
    result = roi(RoiInputs.model_validate(data), catalog)
    if assumed:
        result.notes.append("assumed: " + "; ".join(assumed))
    if facts.get("input_tokens") and facts["input_tokens"].transfer:
        result.notes.append(f"input tokens {facts['input_tokens'].transfer}")
    source = join_sources(*sources)
    if result.best is None:
        return result, "money: costs priced; the benefit needs a measured fine-tune and a value per correct answer", source
    best = result.best
    text = (f"money: best option {best.name}: year-1 cost ${best.incremental_year1_usd:,.0f}, benefit "
            f"${best.benefit_year1_usd:,.0f}, net ${best.net_year1_usd:,.0f}, break-even "
            f"{'month ' + str(best.break_even_month) if best.break_even_month else 'never'}")
    if transfer:
        text += f" ({transfer})"
    flips = [s.input for s in result.sensitivity if s.flips]
    if flips:
        text += f"; the decision flips with {', '.join(flips)}"
    return result, text, source


def _caveat(facts: dict[str, Fact], key: str) -> str:
    """'; tokens counted by ...' when the fact was measured on another model than the one it is applied to."""
    fact = facts.get(key)
    return f"; tokens {fact.transfer}" if fact is not None and fact.transfer else ""


def _show(value: Any, fmt: str = "{}") -> str:
    if value is None:
        return "?"
    if isinstance(value, float) and fmt == "{}":
        return f"{value:.2f}"
    return fmt.format(value)


# -- rendering -----------------------------------------------------------------------------------------


def _mark(answer: Any) -> str:
    return {True: "yes", False: "no"}.get(answer, "unknown")


def render_markdown(advice: dict[str, Any]) -> str:
    lines = [f"## Decision: {advice['title']}", "", f"Verdict `{advice['verdict']}` (as of {advice['as_of']}).", ""]
    lines += ["### Reasons", ""] + [f"- {r['text']} _({r['source']})_" for r in advice["reasons"]] + [""]
    for heading, key in (("7-step checklist", "checklist"), ("Win signals", "win_signals"), ("Lose signals", "lose_signals")):
        lines += [f"### {heading}", "", "| question | answer | evidence | source |", "|---|---|---|---|"]
        lines += [f"| {c['question']} | {_mark(c['answer'])} | {c['evidence']} | {c['source']} |" for c in advice[key]]
        lines.append("")
    money = advice.get("roi")
    if money:
        lines += ["### Money", "", f"Baseline: ${money['baseline_monthly_usd']:,.2f}/month ({money['baseline_basis']}).", "",
                  "| option | $/month | training/run | all-in budget | year-1 cost | year-1 benefit | net | break-even |",
                  "|---|---|---|---|---|---|---|---|"]
        for o in money["options"]:
            lines.append(f"| {o['name']} | ${o['monthly_usd']:,.2f} | ${o['training_usd']:,.0f} | ${o['budget_usd']:,.0f} | "
                         f"${o['incremental_year1_usd']:,.0f} | {_usd(o['benefit_year1_usd'])} | {_usd(o['net_year1_usd'])} | "
                         f"{'month ' + str(o['break_even_month']) if o['break_even_month'] else 'never/unknown'} |")
        lines += ["", f"Decision on money: {money['decision']}.", ""]
        flips = [s for s in money.get("sensitivity") or [] if s["flips"]]
        if flips:
            lines += ["Inputs that flip it: " + "; ".join(
                f"{s['input']} (now {s['now']:,.4g}, break-even {s['break_even_value']:,.4g})"
                if s["break_even_value"] is not None else s["input"] for s in flips), ""]
        lines += [f"- note: {n}" for n in money.get("notes") or []]
    if advice.get("migration"):
        m = advice["migration"]
        lines += ["", "### Migration path", "",
                  f"{m['provider']} closes on {m['closes']} ({m['source']}): {m['path']}."]
        if m.get("budget_usd") is not None:
            lines.append(f"Cost: ${m['budget_usd']:,.0f} upfront, ${m['monthly_usd']:,.2f}/month serving ({m['basis']}).")
    if advice.get("warnings"):
        lines += ["", "### Warnings", ""] + [f"- {w}" for w in advice["warnings"]]
    if advice.get("unknowns"):
        lines += ["", "Not known (answer them in `--answers`): " + ", ".join(advice["unknowns"])]
    return "\n".join(lines) + "\n"


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.0f}"


def render_html(advice: dict[str, Any]) -> str:
    """The same content as the Markdown, as an HTML fragment for the report."""
    e = html.escape
    parts = [f"<section class='decision'><h2>Decision: {e(advice['title'])}</h2>",
             f"<p>Verdict <code>{e(advice['verdict'])}</code> (as of {e(advice['as_of'])}).</p><ul>"]
    parts += [f"<li>{e(r['text'])} <em>({e(r['source'])})</em></li>" for r in advice["reasons"]]
    parts.append("</ul>")
    for heading, key in (("7-step checklist", "checklist"), ("Win signals", "win_signals"), ("Lose signals", "lose_signals")):
        parts.append(f"<h3>{heading}</h3><table><tr><th>question</th><th>answer</th><th>evidence</th><th>source</th></tr>")
        parts += [f"<tr><td>{e(c['question'])}</td><td>{_mark(c['answer'])}</td><td>{e(str(c['evidence']))}</td>"
                  f"<td>{e(c['source'])}</td></tr>" for c in advice[key]]
        parts.append("</table>")
    money = advice.get("roi")
    if money:
        parts.append(f"<h3>Money</h3><p>Baseline ${money['baseline_monthly_usd']:,.2f}/month ({e(money['baseline_basis'])}).</p>")
        parts.append("<table><tr><th>option</th><th>$/month</th><th>all-in budget</th><th>year-1 cost</th>"
                     "<th>year-1 benefit</th><th>net</th><th>break-even month</th></tr>")
        for o in money["options"]:
            parts.append(f"<tr><td>{e(o['name'])}</td><td>${o['monthly_usd']:,.2f}</td><td>${o['budget_usd']:,.0f}</td>"
                         f"<td>${o['incremental_year1_usd']:,.0f}</td><td>{_usd(o['benefit_year1_usd'])}</td>"
                         f"<td>{_usd(o['net_year1_usd'])}</td><td>{o['break_even_month'] or 'never/unknown'}</td></tr>")
        parts.append(f"</table><p>{e(money['decision'])}</p>")
        parts += [f"<p class='note'>{e(n)}</p>" for n in money.get("notes") or []]
    if advice.get("migration"):
        m = advice["migration"]
        parts.append(f"<h3>Migration path</h3><p>{e(m['provider'])} closes on {e(m['closes'])}: {e(m['path'])}.</p>")
    parts += [f"<p class='warning'>{e(w)}</p>" for w in advice.get("warnings") or []]
    parts.append("</section>")
    return "\n".join(parts)


def decision_section(store) -> tuple[str, str]:
    """(markdown, html) of the latest stored decision, for `tunewise report`; a short note when there is none."""
    decision = store.latest_decision()
    if decision is None:
        text = "## Decision\n\nNo decision yet: run `tunewise advise`.\n"
        return text, "<section class='decision'><h2>Decision</h2><p>No decision yet: run <code>tunewise advise</code>.</p></section>"
    advice = (decision.facts or {}).get("_advice")
    if not advice:
        text = f"## Decision: {decision.verdict}\n\n" + "\n".join(f"- {r}" for r in decision.reasons) + "\n"
        return text, f"<section class='decision'><h2>Decision: {html.escape(decision.verdict)}</h2></section>"
    return render_markdown(advice), render_html(advice)

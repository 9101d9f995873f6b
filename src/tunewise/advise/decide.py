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

Distillation counts as tried when the store holds a dataset `tunewise distill label` wrote; a student the
evaluation compared with its teacher (`distill.verdict`) adds a reason with the share of the teacher it kept,
both costs per 1k requests and the break-even volume, and is an ROI option priced by what was measured.

    from tunewise.advise import advise
    from tunewise.store import Store
    advice = advise(Store.open(), answers={"requests_per_month": 5_000_000, "cost_per_error_usd": 0.05})
    print(advice.to_markdown())

The pieces live beside this module: `answers` (the questions), `gather` (facts from the store),
`signals` (checklist, signals, verdict), `money` (ROI and migration), `render` (the templates); the
stored shape is `tunewise.records.decision.DecisionRecord`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from pydantic import Field

from tunewise.advise.answers import QUESTION_ORDER, Answers, Asker, answer_type, load_answers, validate_answers
from tunewise.advise.config import AdviseConfig
from tunewise.advise.gather import gather, mark_token_transfer, measured_facts
from tunewise.advise.money import migration_plan, money
from tunewise.advise.render import decision_section, render_html, render_markdown
from tunewise.advise.signals import VERDICTS, checks, decide
from tunewise.data.config import Thresholds
from tunewise.pricing import Catalog, load_catalog
from tunewise.records.decision import SOURCES, Check, DecisionRecord, Fact, join_sources

__all__ = ["advise", "Advice", "Answers", "Check", "Fact", "QUESTION_ORDER", "SOURCES", "VERDICTS", "decision_section",
           "join_sources", "load_answers", "render_html", "render_markdown"]


class Advice(DecisionRecord):
    """A decision as `advise` returns it: the stored record plus the id the store gave it."""

    decision_id: str | None = Field(None, exclude=True, description="The Decision row's id once stored")

    def to_markdown(self) -> str:
        return render_markdown(self)

    def to_html(self) -> str:
        return render_html(self)


def advise(
    store,
    answers: Answers | dict[str, Any] | str | Path | None = None,
    *,
    dataset_id: str | None = None,
    evaluation_id: str | None = None,
    config: AdviseConfig | None = None,
    thresholds: Thresholds | None = None,
    catalog: Catalog | None = None,
    ask: Asker | None = None,
    today: date | None = None,
    save: bool = True,
) -> Advice:
    """Walk the checklist and signals from the store's facts plus `answers` (asking `ask` for the rest), decide, price, store.

    `thresholds` are the fine-tuning guide's bars, `Thresholds()` by default (the CLI passes the
    workspace's `load_config().data.thresholds`, the same object the audit reads).
    """
    config = config or AdviseConfig()
    bars = thresholds or Thresholds()
    catalog = catalog or load_catalog(config.pricing_file)
    today = today or date.today()
    if isinstance(answers, (str, Path)):
        answers = load_answers(answers)
    elif isinstance(answers, dict):
        answers = validate_answers(answers, "answers")
    answers = answers or Answers()
    found = gather(store, dataset_id, evaluation_id, config)
    audit, compare = found["audit"], found["compare"]
    facts = measured_facts(found, config, bars)
    _apply_answers(facts, answers, ask)

    def get(key: str) -> Any:
        return facts[key].value if key in facts else None

    def src(*keys: str) -> str:
        return join_sources(*(facts[k].source for k in keys if k in facts))

    if "base_model" not in facts:
        facts["base_model"] = Fact(value=config.base_model, source="assumed",
                                   detail="the advise.base_model setting (answer base_model to change it)")
    base_row = catalog.get(get("base_model"))
    provider_row = catalog.get(get("provider_model") or config.provider_model or base_row.name)
    plan_date = get("plan_date") or today
    mark_token_transfer(facts, compare, catalog, base_row)
    _spend(facts, get, src, base_row)

    checklist, wins, loses = checks(facts, get, src, config, bars)
    verdict, title, reasons = decide(facts, get, src, checklist, wins, loses, compare, config, bars, catalog)
    reasons += _distill_reasons(compare)

    # Money: the ROI of the fine-tune options, quality from the evaluation where it has one.
    horizon = 30 * config.horizon_months
    warnings = catalog.warnings_for(provider_row, on=plan_date, horizon_days=horizon)
    retiring = catalog.retiring(provider_row, on=plan_date, horizon_days=horizon)
    roi_result, roi_note, roi_source = money(facts, get, compare, catalog, config, base_row, provider_row, plan_date, retiring)
    if roi_note:
        reasons.append({"text": roi_note, "source": roi_source})
    migration = None
    if retiring is not None:
        migration = migration_plan(retiring, roi_result, base_row.name, config)
        reasons.append({"text": f"{retiring.provider} accepts no {retiring.what} from {retiring.from_} ({retiring.source}): "
                                f"plan on the migration path ({migration.path})", "source": "catalog"})
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
        stored = advice.to_store()
        row = store.add_decision(verdict, reasons=stored["reasons"], facts=stored, money=stored["roi"] or {},
                                 dataset_id=advice.dataset_id, evaluation_id=advice.evaluation_id)
        advice.decision_id = row.id
    return advice


def _distill_reasons(compare) -> list[dict[str, str]]:
    """What the evaluation measured of each distilled student against its teacher, as reasons."""
    out = []
    for pair in (compare or {}).get("distill") or []:
        cost = lambda usd: "not measured" if usd is None else f"${usd:,.4f}"  # noqa: E731
        out.append({"text": f"distillation measured in evaluation {compare['id']} ({pair['student']} vs its teacher "
                            f"{pair['teacher']}): {pair['kept_text']}; cost per 1k requests {cost(pair['student_cost_per_1k_usd'])} "
                            f"vs {cost(pair['teacher_cost_per_1k_usd'])}; {pair['break_even_text']}", "source": "measured"})
    return out


def _apply_answers(facts: dict[str, Fact], answers: Answers, ask: Asker | None) -> None:
    """Answers from the YAML, then asked for what is still unknown. An explicit answer wins over anything
    derived; the derived figure it replaced stays in the detail."""
    for key, value in answers.model_dump(exclude_none=True).items():
        derived = facts.get(key)
        detail = "answers"
        if derived is not None and derived.value != value:
            detail += f" (wins over {derived.value!r}, {SOURCES.get(derived.source, derived.source)}: {derived.detail})"
        facts[key] = Fact(value=value, source="answered", detail=detail)
    if facts.get("examples") and facts["examples"].source == "answered":
        facts.pop("examples_basis", None)  # the basis sentence describes the count the answer replaced
    if ask is None:
        return
    for key in QUESTION_ORDER:
        if key in facts or (key == "cost_per_error_usd" and "value_per_correct_usd" in facts):
            continue
        field_info = Answers.model_fields[key]
        value = ask(key, field_info.description or key, answer_type(field_info.annotation))
        if value is not None:
            checked = validate_answers({key: value}, "answer")
            facts[key] = Fact(value=getattr(checked, key), source="answered", detail="asked")


def _spend(facts: dict[str, Fact], get, src, base_row) -> None:
    """Cost per 1k requests and monthly spend from the base model's unit prices, when tokens (and volume) are known."""
    requests = get("requests_per_month")
    tin, tout = get("input_tokens"), get("output_tokens")
    if base_row.base_input_usd_per_m is None or tin is None:
        return
    per_request = (tin * base_row.base_input_usd_per_m + (tout or 0) * (base_row.base_output_usd_per_m or 0)) / 1e6
    transfer = facts["input_tokens"].transfer
    tokens_src = src("input_tokens", "output_tokens")
    facts["cost_per_1k_usd"] = Fact(value=per_request * 1000, source=join_sources("catalog", tokens_src),
                                    detail=f"{base_row.name} unit prices x tokens per request ({tokens_src})", transfer=transfer)
    if requests is not None and "monthly_base_spend_usd" not in facts:
        facts["monthly_base_spend_usd"] = Fact(
            value=per_request * requests, source=join_sources("catalog", tokens_src, src("requests_per_month")),
            detail=f"{requests:,.0f} requests x ${per_request * 1000:.3f}/1k", transfer=transfer)

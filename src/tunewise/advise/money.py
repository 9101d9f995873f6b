"""The money of a decision: the ROI of the fine-tune options from the facts, and the migration path.

A distilled student the evaluation compared with its teacher is one of the options, priced by what was
measured (its quality and cost per 1k requests, its run's cost, the labeling cost).

Quality comes from the compare evaluation where it has a fine-tune; a gain measured on another model
than an option's says it is applied as if it transferred. Figures nobody gave are unknown, or zero and
listed as assumed in the ROI's notes.
"""

from __future__ import annotations

from typing import Any

from tunewise.advise.config import AdviseConfig
from tunewise.advise.roi import FineTuneOption, RoiInputs, roi
from tunewise.pricing import Catalog
from tunewise.records.decision import Migration, RoiResult, join_sources

__all__ = ["money", "migration_plan"]


def money(facts, get, compare, catalog: Catalog, config: AdviseConfig, base_row, provider_row, plan_date, retiring):
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
    distill_notes, distill_assumed = _measured_distill(compare, requests, options)
    assumed += distill_assumed
    if distill_notes or distill_assumed:
        sources.append("measured")
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
    result.notes += distill_notes
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


def _measured_distill(compare, requests: float, options: list[FineTuneOption]) -> tuple[list[str], list[str]]:
    """Add the distilled student the evaluation measured against its teacher as an option, priced by what was
    measured: its quality, its cost per 1k requests, its training run and the teacher's labels. Returns (notes, assumed)."""
    pairs = (compare or {}).get("distill") or []
    if not pairs:
        return [], []
    pair = max(pairs, key=lambda p: p["student_value"])
    name = f"distilled student {pair['student']} (measured)"
    where = f"evaluation {compare['id']}"
    per_1k = pair["student_cost_per_1k_usd"]
    if pair.get("undertrained"):
        # Its quality is a short run's, not distillation's: priced as an option it would decide for the wrong reason.
        return [f"{name} is not priced as an option: {pair['undertrained']} ({where})"], []
    if per_1k is None:
        return [f"{name} is not priced: {where} did not measure its cost per request"], []
    quality = pair["student_value"] if 0 <= pair["student_value"] <= 1 else None
    options.append(FineTuneOption(
        name=name, method="distill", quality=quality, monthly_usd=requests * per_1k / 1000,
        monthly_source=f"{requests:,.0f} req x ${per_1k:,.4f}/1k measured in {where}",
        training_usd=pair["training_usd"], extra_upfront_usd=pair["labeling_usd"] or 0.0,
    ))
    notes = [f"{name}: {pair['kept_text']} of {pair['teacher']}; {pair['break_even_text']} ({where})"]
    # An unmeasured training run is noted by the ROI itself ("no training price"); the labeling cost is said here.
    return notes, [f"{name}: the labeling cost is {pair['labeling_basis']}, counted as $0"] if pair["labeling_usd"] is None else []


def migration_plan(retiring, roi_result: RoiResult | None, base_name: str, config: AdviseConfig) -> Migration:
    """The way off a provider that closes fine-tuning: distill into an open model, priced by the distill option."""
    plan = Migration(
        provider=retiring.provider, closes=str(retiring.from_), source=retiring.source,
        path=retiring.migration or "distill into an open model that tunewise trains and serves",
        steps=[
            f"label inputs with {base_name} as teacher (`tunewise distill`)",
            f"train a LoRA student on {config.open_model_row} (`tunewise train`)",
            "serve it behind a traffic split (`tunewise serve`)",
        ],
    )
    option = next((o for o in (roi_result.options if roi_result else []) if o.name.startswith("distill")), None)
    if option is None:
        plan.cost = "unknown: answer examples, requests_per_month and input_tokens to price the teacher's labels"
    else:
        plan.budget_usd, plan.monthly_usd = option.budget_usd, option.monthly_usd
        plan.incremental_year1_usd, plan.basis = option.incremental_year1_usd, option.budget_basis
    return plan

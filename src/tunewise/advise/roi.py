"""The ROI guide's model: what a fine-tune costs in year 1, what it earns, and when it pays back.

Monthly inference cost is computed from unit prices (requests x tokens x $/M, with each provider's
fine-tune markup, or GPU hours for self-hosted serving). A stated monthly cost is used only where
no unit prices exist; where both exist and disagree, the unit prices win and a note says so.

    from tunewise.advise.roi import RoiInputs, FineTuneOption, roi
    result = roi(RoiInputs(requests_per_month=5e6, input_tokens=150, output_tokens=5, base_model="gpt-5-mini",
                           options=[FineTuneOption(name="gpt-5-mini SFT", model="gpt-5-mini", training_tokens=16e6)],
                           baseline_quality=0.91, finetuned_quality=0.95, cost_per_error_usd=0.05,
                           labeling_hours=200, labeler_rate_usd=40))
    print(result.best.net_year1_usd, result.best.break_even_month)
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tunewise.errors import ConfigError
from tunewise.pricing import HOURS_PER_MONTH, Catalog, PriceRow, load_catalog
from tunewise.records.decision import OptionResult, RoiResult, SensitivityRow

__all__ = [
    "FineTuneOption",
    "RoiInputs",
    "RoiResult",
    "OptionResult",
    "SensitivityRow",
    "roi",
    "load_roi_inputs",
    "quality_from_evaluation",
    "build_inputs",
    "payback_months",
    "break_even_requests",
]


class FineTuneOption(BaseModel):
    """One way to fine-tune: a provider's managed job, a LoRA/full run on your GPUs, or a distilled student."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="What to call this option in tables")
    model: str | None = Field(None, description="Catalog row trained on (e.g. gpt-5-mini, llama-4-8b-together, selfhost-h100)")
    method: Literal["provider", "lora", "full", "distill"] = Field("provider", description="How it is trained")
    serve_on: str | None = Field(None, description="Catalog self-hosted row that serves the result (GPU $/h and tokens/s)")
    quality: float | None = Field(None, ge=0, le=1, description="Fine-tuned quality (fraction correct); overrides finetuned_quality")
    input_tokens: float | None = Field(None, ge=0, description="Input tokens per request after fine-tuning (a shorter prompt)")
    output_tokens: float | None = Field(None, ge=0, description="Output tokens per request after fine-tuning")
    markup: float | None = Field(None, ge=0, description="Fine-tuned inference price as a multiple of the baseline's")
    monthly_usd: float | None = Field(None, ge=0, description="Stated monthly inference cost (used only without unit prices)")
    monthly_source: str | None = Field(None, description="Where the stated monthly cost comes from (e.g. a measured cost per 1k requests)")
    training_usd: float | None = Field(None, ge=0, description="Cost of one training run (else from the catalog)")
    training_tokens: float | None = Field(None, ge=0, description="Billable tokens of one run, all epochs included")
    gpu_usd_per_hour: float | None = Field(None, ge=0, description="Self-hosted serving: GPU $/hour (overrides serve_on's)")
    serve_tokens_per_second: float | None = Field(None, gt=0, description="Self-hosted serving throughput (overrides serve_on's)")
    always_on: bool = Field(True, description="Self-hosted serving GPUs run all month (730 h) even when idle")
    gpus: int = Field(1, ge=1, description="Self-hosted serving GPUs kept on")
    extra_upfront_usd: float = Field(0, ge=0, description="Other one-off costs (e.g. teacher API calls for distillation)")


class RoiInputs(BaseModel):
    """Everything `roi` needs; loadable from YAML (`tunewise roi --file inputs.yaml`)."""

    model_config = ConfigDict(extra="forbid")

    requests_per_month: float = Field(gt=0, description="Requests served per month")
    input_tokens: float | None = Field(None, ge=0, description="Input tokens per request with the baseline prompt")
    output_tokens: float | None = Field(None, ge=0, description="Output tokens per request")
    base_model: str | None = Field(None, description="Catalog row of the baseline (prompted) model")
    baseline_monthly_usd: float | None = Field(None, ge=0, description="Stated baseline monthly cost (used only without unit prices)")
    options: list[FineTuneOption] = Field(min_length=1, description="Fine-tune options to price")
    baseline_quality: float | None = Field(None, ge=0, le=1, description="Baseline quality, fraction correct (e.g. 0.91)")
    finetuned_quality: float | None = Field(None, ge=0, le=1, description="Fine-tuned quality, fraction correct (e.g. 0.95)")
    gain_low: float | None = Field(None, ge=-1, le=1, description="Low end of the quality gain's interval (sensitivity)")
    gain_high: float | None = Field(None, ge=-1, le=1, description="High end of the quality gain's interval (sensitivity)")
    quality_source: str | None = Field(None, description="Where the quality figures come from")
    value_per_correct_usd: float | None = Field(None, ge=0, description="What one more correct answer is worth")
    cost_per_error_usd: float | None = Field(None, ge=0, description="What one wrong answer costs (same arithmetic)")
    labeling_hours: float = Field(0, ge=0, description="Hours of data preparation and labeling")
    labeler_rate_usd: float = Field(40, ge=0, description="Fully loaded labeler $/hour (the ROI guide: $40, $80-150 specialized)")
    eval_set_usd: float = Field(0, ge=0, description="Cost of building the held-out eval set")
    iteration_runs: int = Field(4, ge=1, description="Training runs across iteration (the ROI guide: 3-5)")
    months: int = Field(12, ge=1, le=120, description="Horizon of the year-1 figures")
    plan_date: date | None = Field(None, description="When the training would happen (provider availability); default today")

    @model_validator(mode="after")
    def _one_value(self) -> "RoiInputs":
        if self.value_per_correct_usd is not None and self.cost_per_error_usd is not None:
            raise ValueError("give value_per_correct_usd or cost_per_error_usd, not both")
        return self

    @property
    def value_usd(self) -> float | None:
        return self.value_per_correct_usd if self.value_per_correct_usd is not None else self.cost_per_error_usd


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """A YAML file of `what` (answers, ROI inputs) as a dict; every problem is one line naming the file."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: {what} file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{line} invalid YAML ({problem})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of {what}")
    return raw


def load_roi_inputs(path: str | Path, **overrides: Any) -> RoiInputs:
    """RoiInputs from a YAML file, with the given (non-None) overrides applied over it."""
    raw = read_yaml_mapping(path, "ROI inputs")
    return make_inputs({**raw, **{k: v for k, v in overrides.items() if v is not None}}, where=str(path))


def make_inputs(data: dict[str, Any], *, where: str = "roi inputs") -> RoiInputs:
    """Validate a dict into RoiInputs; every problem becomes one line naming the field."""
    try:
        return RoiInputs.model_validate(data)
    except ValidationError as exc:
        parts = []
        for error in exc.errors():
            loc = ".".join(str(p) for p in error["loc"]) or "(inputs)"
            message = {"missing": "missing", "extra_forbidden": "unknown field"}.get(error["type"], error["msg"])
            parts.append(f"{loc}: {message}")
        raise ConfigError(f"{where}: {'; '.join(parts)}") from exc


def build_inputs(
    file: str | Path | None = None,
    *,
    options: list[str] = (),
    training_tokens: float | None = None,
    from_eval: str | None = None,
    store=None,
    catalog: Catalog | None = None,
    **fields: Any,
) -> RoiInputs:
    """RoiInputs from a YAML file and/or flags: `options` are catalog names, `from_eval` an evaluation id or 'latest'."""
    data: dict[str, Any] = {}
    where = "roi flags"
    if file is not None:
        data = load_roi_inputs(file, **fields).model_dump(exclude_unset=True)
        where = str(file)
    data.update({k: v for k, v in fields.items() if v is not None})
    if from_eval is not None:
        if store is None:
            raise ConfigError("--from-eval needs a store")
        for key, value in quality_from_evaluation(store, from_eval).items():
            if fields.get(key) is None:
                data[key] = value
    if options:
        catalog = catalog or load_catalog()
        made = []
        for name in options:
            row = catalog.get(name)
            made.append({"name": row.name, "model": row.name, "training_tokens": training_tokens,
                         "serve_on": row.name if row.kind == "self-hosted" else None,
                         "method": "lora" if row.kind == "self-hosted" else "provider"})
        data["options"] = [*data.get("options", []), *made]
    if "requests_per_month" not in data:
        raise ConfigError(f"{where}: requests_per_month: missing (give --requests or put it in the inputs file)")
    if not data.get("options"):
        raise ConfigError(f"{where}: options: missing (give --option NAME, a catalog row, or `options:` in the file)")
    return make_inputs(data, where=where)


# -- cost pieces ---------------------------------------------------------------------------------------


def _tokens_cost(requests: float, tin: float, tout: float, pin: float, pout: float | None, label: str, notes: list[str]) -> tuple[float, str]:
    usd_in = requests * tin * pin / 1e6
    if pout is None:
        if tout:
            notes.append(f"{label}: the catalog has no output price; output tokens are not priced")
        pout = 0.0
    usd_out = requests * tout * pout / 1e6
    basis = (
        f"{requests:,.0f} req x {tin:,.0f} in-tok x ${pin:g}/M + {requests:,.0f} x {tout:,.0f} out-tok x ${pout:g}/M "
        f"= ${usd_in:,.2f} + ${usd_out:,.2f}"
    )
    return usd_in + usd_out, basis


def _disagree(stated: float | None, computed: float, what: str, basis: str, notes: list[str]) -> None:
    if stated is not None and abs(stated - computed) > 0.01 * max(abs(computed), 1.0):
        notes.append(
            f"{what}: the stated ${stated:,.2f}/month disagrees with the unit prices (${computed:,.2f}/month: {basis}); "
            "tunewise uses the unit prices"
        )


def _baseline(inputs: RoiInputs, catalog: Catalog, notes: list[str]) -> tuple[float, str, PriceRow | None]:
    if inputs.base_model:
        row = catalog.get(inputs.base_model)
        pin = row.input_price(fine_tuned=False)
        if pin is None:
            if inputs.baseline_monthly_usd is not None:
                notes.append(f"baseline: {row.name} has no base input price in the catalog; using the stated monthly cost")
                return inputs.baseline_monthly_usd, "stated", row
            raise ConfigError(f"base_model {row.name}: no base input price in the catalog; add base_input_usd_per_m in a pricing file or give baseline_monthly_usd")
        if inputs.input_tokens is None:
            raise ConfigError(f"input_tokens: missing (needed to price base_model {row.name} from its unit prices)")
        usd, basis = _tokens_cost(inputs.requests_per_month, inputs.input_tokens, inputs.output_tokens or 0, pin,
                                  row.output_price(fine_tuned=False), f"baseline {row.name}", notes)
        _disagree(inputs.baseline_monthly_usd, usd, f"baseline {row.name}", basis, notes)
        return usd, f"{row.name}: {basis}", row
    if inputs.baseline_monthly_usd is not None:
        return inputs.baseline_monthly_usd, "stated monthly cost (no unit prices given)", None
    raise ConfigError("baseline: missing; give base_model (priced from the catalog) or baseline_monthly_usd")


def _option_monthly(option: FineTuneOption, inputs: RoiInputs, catalog: Catalog, base_usd: float,
                    base_row: PriceRow | None, notes: list[str]) -> tuple[float, str]:
    requests = inputs.requests_per_month
    tin = option.input_tokens if option.input_tokens is not None else inputs.input_tokens
    tout = option.output_tokens if option.output_tokens is not None else inputs.output_tokens
    row = catalog.get(option.model) if option.model else None
    serve = catalog.get(option.serve_on) if option.serve_on else (row if row is not None and row.kind == "self-hosted" else None)
    rate = option.gpu_usd_per_hour if option.gpu_usd_per_hour is not None else (serve.gpu_usd_per_hour if serve else None)
    tps = option.serve_tokens_per_second or (serve.serve_tokens_per_second if serve else None)
    computed: tuple[float, str] | None = None
    if rate is not None:
        if not tps:
            raise ConfigError(f"option {option.name}: serve_tokens_per_second missing for self-hosted serving")
        if tin is None:
            raise ConfigError(f"option {option.name}: input_tokens missing (needed to size self-hosted serving)")
        needed = requests * (tin + (tout or 0)) / tps / 3600
        hours = max(needed, HOURS_PER_MONTH * option.gpus) if option.always_on else needed
        basis = f"{needed:,.1f} GPU-h needed ({requests:,.0f} req x {tin + (tout or 0):,.0f} tok / {tps:,.0f} tok/s)"
        if hours > needed:
            basis += f", {option.gpus} GPU(s) always on = {hours:,.0f} h"
        basis += f" x ${rate:g}/h"
        if serve is not None and serve.example and option.gpu_usd_per_hour is None:
            basis += f" ({serve.name}: example rate, edit it)"
        computed = (hours * rate, basis)
    elif row is not None and row.kind != "self-hosted":
        markup = option.markup if option.markup is not None else (row.markup or 1.0)
        pin = row.ft_input_usd_per_m if option.markup is None and row.ft_input_usd_per_m is not None else (
            row.base_input_usd_per_m * markup if row.base_input_usd_per_m is not None else None)
        pout = row.ft_output_usd_per_m if option.markup is None and row.ft_output_usd_per_m is not None else (
            row.base_output_usd_per_m * markup if row.base_output_usd_per_m is not None else None)
        source = row.name
        if pin is None and base_row is not None and base_row.base_input_usd_per_m is not None:
            pin = base_row.base_input_usd_per_m * markup
            pout = base_row.base_output_usd_per_m * markup if base_row.base_output_usd_per_m is not None else None
            source = f"{base_row.name} base prices x {row.name}'s {markup:g} markup"
            notes.append(f"option {option.name}: {row.name} has no base price in the catalog; priced as {source}")
        if pin is not None:
            if tin is None:
                raise ConfigError(f"option {option.name}: input_tokens missing (needed to price {row.name} from its unit prices)")
            usd, basis = _tokens_cost(requests, tin, tout or 0, pin, pout, f"option {option.name}", notes)
            computed = (usd, f"{source} fine-tuned ({markup:g}x): {basis}")
    elif option.markup is not None and row is None:
        if base_row is not None and tin is not None:
            pin = base_row.base_input_usd_per_m * option.markup
            pout = base_row.base_output_usd_per_m * option.markup if base_row.base_output_usd_per_m is not None else None
            usd, basis = _tokens_cost(requests, tin, tout or 0, pin, pout, f"option {option.name}", notes)
            computed = (usd, f"{base_row.name} x {option.markup:g} markup: {basis}")
        else:
            computed = (base_usd * option.markup, f"baseline ${base_usd:,.2f}/month x {option.markup:g} markup")
    if computed is not None:
        _disagree(option.monthly_usd, computed[0], f"option {option.name}", computed[1], notes)
        return computed
    if option.monthly_usd is not None:
        return option.monthly_usd, option.monthly_source or "stated monthly cost (no unit prices given)"
    raise ConfigError(
        f"option {option.name}: cannot price inference; give model (a catalog row with prices), serve_on, markup, "
        "gpu_usd_per_hour or monthly_usd"
    )


def _option_training(option: FineTuneOption, catalog: Catalog, notes: list[str]) -> tuple[float, str]:
    if option.training_usd is not None:
        return option.training_usd, "given"
    if option.model:
        row = catalog.get(option.model)
        if row.kind in ("managed", "self-hosted") and option.training_tokens is None:
            notes.append(f"option {option.name}: training_tokens missing, so the training run is not priced ($0)")
            return 0.0, "unknown (give training_tokens or training_usd)"
        estimate = catalog.training_estimate(row, option.training_tokens or 0)
        if estimate is not None:
            return estimate.usd, f"{row.name}: {estimate.basis}"
    notes.append(f"option {option.name}: no training price; the training run is counted as $0")
    return 0.0, "unknown (give training_usd)"


def _evaluate(inputs: RoiInputs, catalog: Catalog, notes: list[str]) -> tuple[float, str, list[OptionResult]]:
    base_usd, base_basis, base_row = _baseline(inputs, catalog, notes)
    on = inputs.plan_date or date.today()
    results = []
    for option in inputs.options:
        monthly, monthly_basis = _option_monthly(option, inputs, catalog, base_usd, base_row, notes)
        training, training_basis = _option_training(option, catalog, notes)
        labeling = inputs.labeling_hours * inputs.labeler_rate_usd
        budget = training * inputs.iteration_runs + labeling + inputs.eval_set_usd + option.extra_upfront_usd
        budget_basis = (
            f"${training:,.0f} training x {inputs.iteration_runs} runs + {inputs.labeling_hours:,.0f} h x "
            f"${inputs.labeler_rate_usd:g}/h labeling + ${inputs.eval_set_usd:,.0f} eval set"
        )
        if option.extra_upfront_usd:
            budget_basis += f" + ${option.extra_upfront_usd:,.0f} other"
        incremental_monthly = monthly - base_usd
        incremental = budget + incremental_monthly * inputs.months
        quality = option.quality if option.quality is not None else inputs.finetuned_quality
        gain = None if quality is None or inputs.baseline_quality is None else quality - inputs.baseline_quality
        value = inputs.value_usd
        benefit = net = None
        month: int | None = None
        if gain is not None and value is not None:
            monthly_benefit = gain * inputs.requests_per_month * value
            benefit = monthly_benefit * inputs.months
            net = benefit - incremental
            monthly_net = monthly_benefit - incremental_monthly
            months = payback_months(budget, monthly_net)
            if months is not None:
                month = max(1, math.ceil(months - 1e-9))
                be_basis = f"${budget:,.0f} upfront / ${monthly_net:,.0f} net per month = {months:,.2f} months"
            else:
                be_basis = f"never: the monthly net is ${monthly_net:,.0f}"
        else:
            missing = [n for n, v in (("quality", gain), ("value_per_correct_usd or cost_per_error_usd", value)) if v is None]
            be_basis = f"unknown: give {' and '.join(missing)}"
        warnings: list[str] = []
        for name in filter(None, (option.model, option.serve_on)):
            warnings += catalog.warnings_for(catalog.get(name), on=on, horizon_days=30 * inputs.months)
        results.append(OptionResult(
            name=option.name, monthly_usd=monthly, monthly_basis=monthly_basis, training_usd=training,
            training_basis=training_basis, budget_usd=budget, budget_basis=budget_basis,
            incremental_monthly_usd=incremental_monthly, incremental_year1_usd=incremental, quality=quality, gain=gain,
            benefit_year1_usd=benefit, net_year1_usd=net, break_even_month=month, break_even_basis=be_basis,
            warnings=warnings,
        ))
    return base_usd, base_basis, results


def payback_months(upfront_usd: float, monthly_net_usd: float) -> float | None:
    """Months until `upfront_usd` is paid back by `monthly_net_usd` a month; None when the monthly net is not positive.

    The one break-even relation of the ROI model (upfront = monthly net x months); `break_even_requests` solves
    the same relation for the volume.
    Example: payback_months(1200, 400) == 3.0
    """
    return upfront_usd / monthly_net_usd if monthly_net_usd > 0 else None


def break_even_requests(upfront_usd: float, saving_per_request_usd: float, months: int) -> float | None:
    """Requests a month at which a per-request saving pays `upfront_usd` back within `months`; None without a saving.

    The volume at which `payback_months(upfront_usd, requests x saving_per_request_usd)` equals `months`.
    Example: break_even_requests(120, 0.001, 12) == 10_000.0
    """
    if saving_per_request_usd <= 0:
        return None
    return upfront_usd / (saving_per_request_usd * months)


def _net_of(inputs: RoiInputs, catalog: Catalog, option_index: int) -> float | None:
    return _evaluate(inputs, catalog, [])[2][option_index].net_year1_usd


def _sensitivity(inputs: RoiInputs, catalog: Catalog, index: int, net_now: float) -> list[SensitivityRow]:
    option = inputs.options[index]
    result = _evaluate(inputs, catalog, [])[2][index]
    rows: list[tuple[str, float, float, float, Any]] = []

    def top(field_name: str, value: float) -> RoiInputs:
        return inputs.model_copy(update={field_name: value})

    def opt(field_name: str, value: float) -> RoiInputs:
        options = list(inputs.options)
        options[index] = option.model_copy(update={field_name: value})
        return inputs.model_copy(update={"options": options})

    volume = inputs.requests_per_month
    rows.append(("requests_per_month", volume, volume / 10, volume * 10, lambda v: top("requests_per_month", v)))
    value_field = "value_per_correct_usd" if inputs.value_per_correct_usd is not None else "cost_per_error_usd"
    value = inputs.value_usd or 0.0
    rows.append((value_field, value, 0.0, max(value * 5, 0.05), lambda v: top(value_field, v)))
    if result.gain is not None and result.quality is not None:
        base_q = inputs.baseline_quality or 0.0
        low = inputs.gain_low if inputs.gain_low is not None else 0.0
        high = inputs.gain_high if inputs.gain_high is not None else min(2 * result.gain, 1 - base_q)
        rows.append(("quality gain", result.gain, low, high,
                     lambda v: opt("quality", min(1.0, max(0.0, base_q + v)))))
    training = result.training_usd
    if training > 0:
        rows.append(("training_usd per run", training, training / 2, training * 3, lambda v: opt("training_usd", v)))
    rows.append(("iteration_runs", inputs.iteration_runs, 3, 5, lambda v: top("iteration_runs", int(round(v)))))
    if inputs.labeling_hours > 0:
        hours = inputs.labeling_hours
        rows.append(("labeling_hours", hours, hours / 2, hours * 2, lambda v: top("labeling_hours", v)))
        rows.append(("labeler_rate_usd", inputs.labeler_rate_usd, 40, 150, lambda v: top("labeler_rate_usd", v)))
    row = catalog.find(option.model) if option.model else None
    if (row is not None and row.kind != "self-hosted" and option.serve_on is None) or (option.markup is not None):
        markup = option.markup if option.markup is not None else (row.markup or 1.0)
        rows.append(("markup", markup, 1.0, 3.0, lambda v: opt("markup", v)))
    if inputs.input_tokens:
        tokens = inputs.input_tokens
        rows.append(("input_tokens", tokens, tokens / 2, tokens * 2, lambda v: top("input_tokens", v)))

    out = []
    for name, now, low, high, make in rows:
        net_low = _net_of(make(low), catalog, index)
        net_high = _net_of(make(high), catalog, index)
        if net_low is None or net_high is None:
            continue
        flips = (net_low > 0) != (net_now > 0) or (net_high > 0) != (net_now > 0)
        threshold = None
        if (net_low > 0) != (net_high > 0):
            lo, hi = low, high
            for _ in range(50):
                mid = (lo + hi) / 2
                if (_net_of(make(mid), catalog, index) > 0) == (net_low > 0):
                    lo = mid
                else:
                    hi = mid
            threshold = (lo + hi) / 2
        out.append(SensitivityRow(input=name, now=now, low=low, high=high, net_at_low=net_low, net_at_high=net_high,
                                  flips=flips, break_even_value=threshold))
    return out


def roi(inputs: RoiInputs, catalog: Catalog | None = None) -> RoiResult:
    """Price every option against the baseline: monthly cost, budget, year-1 cost, benefit, net, break-even, sensitivity."""
    catalog = catalog or load_catalog()
    notes: list[str] = []
    base_usd, base_basis, options = _evaluate(inputs, catalog, notes)
    priced = [o for o in options if o.net_year1_usd is not None]
    best = max(priced, key=lambda o: o.net_year1_usd) if priced else None
    if best is None:
        decision = "unknown: the benefit needs quality figures and a value per correct answer (or cost per error)"
        sensitivity: list[SensitivityRow] = []
    else:
        index = options.index(best)
        if best.net_year1_usd > 0:
            decision = f"fine-tune ({best.name}) pays back: net ${best.net_year1_usd:,.0f} in year 1, break-even in month {best.break_even_month}"
        else:
            decision = f"keep the baseline: the best option ({best.name}) loses ${-best.net_year1_usd:,.0f} in year 1"
        sensitivity = _sensitivity(inputs, catalog, index, best.net_year1_usd)
    if inputs.quality_source:
        notes.append(f"quality from {inputs.quality_source}")
    return RoiResult(
        baseline_monthly_usd=base_usd, baseline_basis=base_basis, options=options, best=best, decision=decision,
        sensitivity=sensitivity, notes=list(dict.fromkeys(notes)), months=inputs.months, catalog_as_of=str(catalog.as_of),
    )


# -- quality from a stored evaluation --------------------------------------------------------------------


def quality_from_evaluation(store, ref: str = "latest") -> dict[str, Any]:
    """Baseline and fine-tuned quality (and the gain's interval and tokens per request) from a compare evaluation."""
    from tunewise.advise.facts import compare_facts
    from tunewise.records.evaluation import EvaluationResults
    from tunewise.errors import EvaluationError, NotFoundError

    evaluation = store.latest_evaluation("compare") if ref == "latest" else store.get_evaluation(ref)
    if evaluation is None:
        raise NotFoundError("no compare evaluation in the store (run `tunewise eval` first)")
    facts = compare_facts(EvaluationResults.from_store(evaluation.results, where=f"evaluation {evaluation.id}"))
    base, tuned = facts.get("baseline"), facts.get("best_finetuned")
    if base is None or tuned is None:
        raise EvaluationError(f"evaluation {evaluation.id}: needs a baseline and a fine-tuned (adapter) candidate to give quality")
    out: dict[str, Any] = {
        "baseline_quality": base["value"],
        "finetuned_quality": tuned["value"],
        "quality_source": f"evaluation {evaluation.id} ({facts['metric']}: {tuned['name']} vs {base['name']})",
    }
    comparison = tuned.get("comparison") or {}
    if comparison.get("low") is not None and comparison.get("high") is not None:
        out["gain_low"], out["gain_high"] = comparison["low"], comparison["high"]
    if base.get("tokens_in_mean") is not None:
        out["input_tokens"] = base["tokens_in_mean"]
        out["output_tokens"] = base.get("tokens_out_mean")
    return out

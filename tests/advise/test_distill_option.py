"""advise and distillation: the checklist's "tried distillation or LoRA?" is answered from the store, and a student the
evaluation measured against its teacher is one of the priced options, with the figures measured."""

from __future__ import annotations

import json
from datetime import date

import pytest

from tunewise.advise import advise

from tests.distilled import register_distilled

from . import records

TODAY = date(2026, 11, 23)
TEACHER = "endpoint:https://api.example/v1#big-model"
FEW = "few-shot:smollm2-135m?k=8"
ANSWERS = {"requests_per_month": 1_000_000, "cost_per_error_usd": 0.05, "task_changes_weekly": False}


def _distilled(store, tmp_path, *, summary: dict | None = None):
    """The accepted set of `tunewise distill label` with its summary.json, registered as label registers it."""
    return register_distilled(store, tmp_path, teacher=TEACHER, rows=900, reviewed=40,
                              summary=summary if summary is not None else {"cost_usd": 4.0, "cached_cost_usd": 0.0})


def _pair(store, tmp_path, *, student_cost: float | None = 0.05):
    dataset = _distilled(store, tmp_path)
    run = store.create_run("lora", base_model="smollm2-135m", config={}, dataset_id=dataset.id)
    store.update_run(run.id, status="completed", cost_usd=6.0)
    teacher = records.candidate(TEACHER, 0.92, endpoint=True)
    teacher["kind"], teacher["operations"]["cost_per_1k_usd"] = "endpoint", 1.50
    student = records.candidate(f"adapter:{run.id}", 0.86, run_id=run.id, comparison=records.versus(FEW, 0.30))
    student["operations"]["cost_per_1k_usd"] = student_cost
    evaluation = store.add_evaluation(kind="compare", dataset_id=None, config={}, task_type="classification", results=records.comparison(
        [teacher, student, records.candidate(FEW, 0.56)], baseline=FEW))
    return evaluation, run


def _tried(advice):
    return next(c for c in advice.checklist if c.key == "tried_lora_or_distill")


def test_a_distilled_dataset_in_the_store_answers_the_checklist(store, tmp_path):
    dataset = _distilled(store, tmp_path)
    advice = advise(store, ANSWERS, today=TODAY, save=False)
    check = _tried(advice)
    assert check.answer is True and check.source == "measured"
    assert f"1 distilled dataset(s) in the store ({dataset.id}, 900 rows, the newest), labelled by {TEACHER}" in check.evidence
    assert "0 completed LoRA/full runs" in check.evidence


def test_without_lora_or_distillation_the_answer_is_no(store):
    check = _tried(advise(store, ANSWERS, today=TODAY, save=False))
    assert check.answer is False and "0 completed LoRA/full runs" in check.evidence and "distilled" not in check.evidence


def test_a_measured_student_is_an_option_priced_by_what_was_measured(store, tmp_path):
    evaluation, run = _pair(store, tmp_path)
    advice = advise(store, ANSWERS, today=TODAY, save=False)
    facts = advice.facts
    assert facts["distill_kept_pct"].value == pytest.approx(0.86 / 0.92 * 100) and facts["distill_kept_pct"].source == "measured"
    # $6 run + $4 labels over (1.50 - 0.05)/1k saved, within advise.horizon_months (12).
    assert facts["distill_break_even_requests"].value == pytest.approx(10.0 / (0.00145 * 12))
    assert facts["teacher_available"].value is True and facts["teacher_available"].source == "measured"
    check = _tried(advice)
    assert check.answer is True and "distilled dataset" in check.evidence and "kept 93.5%" in check.evidence

    name = f"distilled student adapter:{run.id} (measured)"
    option = next(o for o in advice.roi.options if o.name == name)
    assert option.monthly_usd == pytest.approx(1_000_000 * 0.05 / 1000)
    assert option.monthly_basis == f"1,000,000 req x $0.0500/1k measured in evaluation {evaluation.id}"
    assert option.training_usd == 6.0 and option.quality == 0.86
    assert option.budget_usd == pytest.approx(6.0 * 4 + 4.0)  # the ROI's iteration runs (4) of the run, plus the labels once
    assert any(n.startswith(f"{name}: the student kept 93.5% of the teacher's accuracy") for n in advice.roi.notes)
    reason = next(r for r in advice.reasons if r.text.startswith("distillation measured"))
    assert reason.source == "measured" and "cost per 1k requests $0.0500 vs $1.5000" in reason.text
    assert "break-even at 575 requests a month over 12 months" in reason.text
    assert name in advice.to_markdown()


def test_a_student_whose_cost_was_not_measured_is_named_not_priced(store, tmp_path):
    _, run = _pair(store, tmp_path, student_cost=None)
    advice = advise(store, ANSWERS, today=TODAY, save=False)
    assert not any(o.name.startswith("distilled student") for o in advice.roi.options)
    assert any(f"distilled student adapter:{run.id} (measured) is not priced" in n for n in advice.roi.notes)
    assert "distill_break_even_requests" not in advice.facts  # unknown, not invented


def test_a_student_that_saw_under_one_epoch_is_not_a_verdict_on_distillation(store, tmp_path):
    from tunewise.evaluate.report import write_report

    evaluation, run = _pair(store, tmp_path)
    # As `tunewise train --time-budget 1` records a run stopped after 3 of 8 steps of its first epoch.
    store.update_run(run.id, metrics={"epochs": 0.375, "steps": 3, "stopped_at_time_budget": True, "time_budget": {"minutes": 1.0}})
    advice = advise(store, ANSWERS, today=TODAY, save=False)
    name = f"distilled student adapter:{run.id} (measured)"
    assert not any(o.name == name for o in advice.roi.options)
    assert any(n.startswith(f"{name} is not priced as an option: its run saw 0.38 of an epoch (3 steps) before its "
                            "1-minute budget ran out") for n in advice.roi.notes)
    assert "too little to judge distillation by" in advice.facts["distill_kept_pct"].detail
    _, md = write_report(tmp_path / "report", store=store, evaluation_ref=evaluation.id)
    assert "**Not a verdict on distillation: the student run saw 0.38 of an epoch (3 steps)" in md.read_text()

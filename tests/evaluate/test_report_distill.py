"""`tunewise report` on an evaluation of a teacher and the student distilled from it: share kept, cost, latency, break-even.

The store is built as `tunewise distill label`, `tunewise train` and `tunewise eval` leave it: the accepted set
registered with meta["distilled"] (and its summary.json), a split of it that the run trained on, and a comparison
whose per-row outputs let the report test student against teacher.
"""

from __future__ import annotations

import json

import pytest

from tests.distilled import register_distilled
from tunewise.records.evaluation import EvaluationResults

TEACHER = "endpoint:https://api.example/v1#big-model"
ZERO = "zero-shot:smollm2-135m"
ROWS = 20
# Per row right/wrong: the teacher gets 18 right, the student 16 of the same (2 discordant rows), zero-shot 10.
RIGHT = {TEACHER: set(range(18)), "student": set(range(16)), ZERO: set(range(10))}


def _candidate(name: str, kind: str, right: set, *, cost_per_1k: float | None, p50: float | None = None,
               run_id: str | None = None, comparison: dict | None = None) -> dict:
    value = len(right) / ROWS
    timing = {"latency_p50_ms": p50, "latency_p95_ms": p50 * 1.5} if p50 is not None else {"amortized_ms_per_request": 35.0}
    return {
        "name": name, "spec": name, "kind": kind, "run_id": run_id, "status": "completed",
        "decoding": "free" if kind in ("zero-shot", "adapter") else None,
        "metrics": {"accuracy": {"value": value, "low": value - 0.1, "high": min(1.0, value + 0.05)}},
        "details": {"empty": 0, "refused": 0},
        "operations": {**timing, "tokens_in_mean": 120, "tokens_out_mean": 3, "requests_per_second": 2.0,
                       "cost_per_1k_usd": cost_per_1k, "cost_basis": "catalog prices" if kind == "endpoint" else "hardware time"},
        "comparison": comparison,
    }


def distilled_store(store, tmp_path, *, teacher_spec: str = "https://api.example/v1/#big-model", distilled: bool = True,
                    with_teacher: bool = True, student_cost: float | None = 0.20, teacher_cost: float | None = 2.00,
                    training_usd: float | None = 3.0, summary: dict | None = None):
    """A labelled set, its train split, a student run on the split, and a comparison of teacher, student and zero-shot."""
    labelled = register_distilled(store, tmp_path, teacher=teacher_spec, rows=80, reviewed=7, distilled=distilled,
                                  summary=summary if summary is not None else {"cost_usd": 1.5, "cached_cost_usd": 0.5})
    accepted = tmp_path / "distilled" / "accepted.jsonl"
    split = tmp_path / "train-split.jsonl"
    split.write_text(accepted.read_text() * 2)
    train = store.add_dataset(split, format="chat", rows=72, parent_id=labelled.id)
    run = store.create_run("lora", base_model="smollm2-135m", config={}, dataset_id=train.id)
    store.update_run(run.id, status="completed", cost_usd=training_usd)
    student = f"adapter:{run.id}"

    outputs = tmp_path / "outputs.jsonl"
    names = {TEACHER: TEACHER, "student": student, ZERO: ZERO}
    if not with_teacher:
        names.pop(TEACHER)
    with outputs.open("w") as handle:
        for i in range(ROWS):
            cells = {name: {"output": "a", "empty": False, "refused": False, "correct": i in RIGHT[key], "prediction": "a"}
                     for key, name in names.items()}
            handle.write(json.dumps({"index": i, "line": i + 1, "input": f"row {i}", "reference": "a", "candidates": cells}) + "\n")
    versus = {"vs": ZERO, "metric": "accuracy", "diff": 0.3, "low": 0.1, "high": 0.5, "p_value": 0.01, "test": "mcnemar-exact",
              "significant": True}
    candidates = [_candidate(student, "adapter", RIGHT["student"], cost_per_1k=student_cost, run_id=run.id, comparison=versus),
                  _candidate(ZERO, "zero-shot", RIGHT[ZERO], cost_per_1k=0.10)]
    if with_teacher:
        candidates.insert(0, _candidate(TEACHER, "endpoint", RIGHT[TEACHER], cost_per_1k=teacher_cost, p50=700.0, comparison=versus))
    results = EvaluationResults.model_validate({
        "task_type": "classification", "primary_metric": "accuracy", "labels": ["a", "b"], "baseline": ZERO, "verdict": "...",
        "candidates": candidates, "confidence": 0.95, "bootstrap_samples": 200, "eval_path": "eval.jsonl", "rows": ROWS,
        "hardware": "cpu ($0/h)", "outputs_path": str(outputs),
    })
    record = store.add_evaluation(kind="compare", dataset_id=None, config={}, results=results.to_store(),
                                  task_type="classification", verdict="...")
    store.update_evaluation(record.id, results=results.model_copy(update={"evaluation_id": record.id}).to_store())
    return store.get_evaluation(record.id), run, labelled


def test_the_pair_is_found_through_the_split_and_its_figures_are_the_stored_ones(store, tmp_path):
    from tunewise.distill.verdict import teacher_student

    evaluation, run, labelled = distilled_store(store, tmp_path)
    [pair] = teacher_student(store, evaluation, months=12)
    assert (pair.teacher.name, pair.student.name, pair.run_id) == (TEACHER, f"adapter:{run.id}", run.id)
    assert pair.data.dataset_id == labelled.id and (pair.data.accepted, pair.data.reviewed) == (80, 7)
    assert pair.kept_pct == pytest.approx(0.80 / 0.90 * 100)
    assert pair.data.labeling_cost_usd == pytest.approx(2.0)  # 1.5 paid this run + 0.5 paid earlier, cached
    be = pair.break_even
    assert be.fixed_usd == pytest.approx(5.0) and be.saving_per_request_usd == pytest.approx(0.0018)
    assert be.requests_per_month == pytest.approx(5.0 / (0.0018 * 12))
    # The teacher was not the baseline: the per-row outputs give the paired test (2 discordant rows, both for the teacher).
    assert pair.test is not None and pair.test.test == "mcnemar-exact" and pair.test.rows == ROWS
    assert pair.test.diff == pytest.approx(-0.1) and pair.test.p_value == pytest.approx(0.5) and not pair.test.significant


def test_report_has_the_teacher_student_section_in_both_outputs(store, tmp_path):
    from tunewise.evaluate.report import write_report

    evaluation, run, labelled = distilled_store(store, tmp_path)
    html_path, md_path = write_report(tmp_path / "report", store=store, evaluation_ref=evaluation.id)
    md, page = md_path.read_text(), html_path.read_text()
    assert "## Distillation: teacher vs student" in md and "<h2>Distillation: teacher vs student</h2>" in page
    assert f"| teacher | {TEACHER} | 0.900 | 0.800–0.950 | – | 2.0000 | 700.0 ms |" in md
    assert (f"| student | adapter:{run.id} | 0.800 | 0.700–0.850 | 88.9% | 0.2000 | "
            "not measured (batched: ~35.0 ms amortised per request) |") in md
    assert "The student kept 88.9% of the teacher's accuracy (0.800 of 0.900)." in md
    assert ("Break-even at 231 requests a month over 12 months (2,778 requests in all): $5.00 fixed "
            "(training $3.00 + labeling $2.00) / $1.8000 saved per 1k requests.") in md
    assert "Student minus teacher: -10.0 pts" in md and "mcnemar-exact p=0.50, not significant" in md
    assert ("Distilled data: teacher https://api.example/v1/#big-model; 80 accepted rows, 7 reviewed by people; "
            "labeling cost $2.0000") in md
    assert f"dataset {labelled.id}" in md and "88.9%" in page


def test_no_section_without_a_distilled_student_or_without_its_teacher(store, tmp_path):
    from tunewise.distill.verdict import teacher_student
    from tunewise.evaluate.report import write_report

    plain = tmp_path / "plain"
    plain.mkdir()
    evaluation, _, _ = distilled_store(store, plain, distilled=False)
    assert teacher_student(store, evaluation) == []
    _, md = write_report(tmp_path / "r1", store=store, evaluation_ref=evaluation.id)
    assert "Distillation" not in md.read_text()

    alone = tmp_path / "alone"
    alone.mkdir()
    evaluation, _, _ = distilled_store(store, alone, with_teacher=False)
    assert teacher_student(store, evaluation) == []
    _, md = write_report(tmp_path / "r2", store=store, evaluation_ref=evaluation.id)
    assert "Distillation" not in md.read_text()


def test_unknown_costs_are_not_measured_and_a_dearer_student_never_breaks_even(store, tmp_path):
    from tunewise.distill.verdict import teacher_student

    first = tmp_path / "a"
    first.mkdir()
    evaluation, run, _ = distilled_store(store, first, teacher_cost=None, training_usd=None, summary={})
    [pair] = teacher_student(store, evaluation)
    assert pair.teacher.cost_text == "not measured" and pair.break_even.requests_per_month is None
    text = pair.break_even.text
    assert text.startswith("break-even unknown:") and f"{TEACHER}'s cost per 1k requests is not measured" in text
    assert f"training cost of run {run.id} is not measured" in text and "holds no cost_usd" in text

    second = tmp_path / "b"
    second.mkdir()
    evaluation, _, _ = distilled_store(store, second, student_cost=3.0)
    [pair] = teacher_student(store, evaluation)
    assert pair.break_even.requests_per_month is None and pair.break_even.text.startswith("no break-even: the student costs $3.0000")


def test_a_teacher_that_scored_zero_is_said_so_and_a_baseline_teacher_gives_the_stored_test(store, tmp_path):
    from tunewise.distill.verdict import teacher_student

    evaluation, run, _ = distilled_store(store, tmp_path)
    results = EvaluationResults.from_store(evaluation.results)
    teacher = results.candidate(TEACHER)
    teacher.metrics["accuracy"] = teacher.metrics["accuracy"].model_copy(update={"value": 0.0, "low": 0.0, "high": 0.0})
    student = results.candidate(f"adapter:{run.id}")
    student.comparison = student.comparison.model_copy(update={"vs": TEACHER, "diff": 0.8, "p_value": 0.001})
    store.update_evaluation(evaluation.id, results=results.to_store())
    [pair] = teacher_student(store, store.get_evaluation(evaluation.id))
    assert pair.kept_pct is None and pair.kept_text.startswith("the teacher scored 0 accuracy")
    assert pair.test.source == f"evaluation {evaluation.id}" and pair.test.diff == 0.8 and pair.test.significant


@pytest.mark.parametrize("teacher, candidate, same", [
    ("https://api.example/v1/#big-model", TEACHER, True),
    ("  endpoint:https://api.example/v1#big-model ", TEACHER, True),
    ("https://api.example/v1#other-model", TEACHER, False),
    ("knn-few-shot:smollm2-135m?k=4", "knn-few-shot:smollm2-135m?k=4", True),
    ("knn-few-shot:smollm2-135m?k=4", "knn-few-shot:smollm2-135m?k=8", False),
    ("knn-few-shot:smollm2-135m?k=4", "few-shot:smollm2-135m?k=4", False),
])
def test_teacher_specs_are_compared_after_normalising(teacher, candidate, same):
    from tunewise.distill.verdict import same_candidate

    assert same_candidate(teacher, candidate) is same


def test_a_local_teacher_evaluated_with_another_decoding_still_matches_and_says_so():
    from tunewise.distill.verdict import _find_teacher, same_candidate

    teacher, evaluated = "few-shot:smollm2-135m?k=4", "few-shot:smollm2-135m?k=4&constrained=1"
    assert not same_candidate(teacher, evaluated) and same_candidate(teacher, evaluated, decoding=False)
    results = EvaluationResults.model_validate({
        "task_type": "classification", "primary_metric": "accuracy", "baseline": None, "verdict": "...", "confidence": 0.95,
        "bootstrap_samples": 200, "eval_path": "eval.jsonl", "rows": ROWS, "hardware": "cpu",
        "candidates": [{**_candidate(evaluated, "few-shot", RIGHT[TEACHER], cost_per_1k=0.1), "decoding": "constrained"},
                       _candidate("adapter:run-1", "adapter", RIGHT["student"], cost_per_1k=0.1, run_id="run-1")],
    })
    found, note = _find_teacher(results, teacher, results.candidates[1])
    assert found is results.candidates[0] and note == "the teacher labelled as few-shot:smollm2-135m?k=4; the evaluation decoded it constrained"

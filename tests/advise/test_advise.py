"""advise end to end from a store of typed audit and evaluation records (tests/advise/records.py), with an answers YAML."""

from __future__ import annotations

from datetime import date

import pytest

from tunewise.advise import advise, decision_section
from tunewise.errors import ConfigError

from . import records

TODAY = date(2026, 11, 23)


FEW = "few-shot:smollm2-135m?k=8"


def _populate(store, tmp_path, *, classic=0.50, lora=0.60, significant=True, rows=1200, agreement=None, doubling=0.05,
              run_id=None):
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "x", "label": "y"}\n')
    dataset = store.add_dataset(data, format="csv", rows=rows)
    store.add_audit(dataset.id, records.audit_summary(rows=rows, agreement=agreement), passed=True)
    store.add_evaluation(kind="compare", dataset_id=None, config={}, task_type="classification", results=records.comparison([
        records.candidate("zero-shot:smollm2-135m", 0.10, comparison=records.versus(FEW, -0.2)),
        records.candidate(FEW, 0.30),
        records.candidate("knn-few-shot:smollm2-135m?k=8", 0.31, comparison=records.versus(FEW, 0.01, significant=False)),
        records.candidate(f"adapter:{run_id or 'run-1'}", lora, run_id=run_id,
                          comparison=records.versus(FEW, lora - 0.30, significant=significant)),
        records.candidate("classic:tfidf", classic, comparison=records.versus(FEW, classic - 0.30)),
    ], baseline=FEW))
    store.add_evaluation(kind="curve", dataset_id=None, config={}, results=records.curve(doubling))
    return dataset


@pytest.fixture
def answers_file(tmp_path):
    path = tmp_path / "answers.yaml"
    path.write_text(
        "requests_per_month: 5000000\ncost_per_error_usd: 0.05\nlabeling_hours: 20\n"
        "task_changes_weekly: false\nbase_upgrade_expected: true\n"
    )
    return path


def test_advise_from_store_and_answers(store, tmp_path, answers_file):
    dataset = _populate(store, tmp_path)
    advice = advise(store, answers_file, today=TODAY)
    assert advice.verdict == "lora"
    facts = advice.facts
    assert facts["examples"].value == 1200 and facts["examples"].source == "measured"
    assert facts["input_tokens"].value == 150 and facts["input_tokens"].source == "measured"
    assert facts["requests_per_month"].source == "answered"
    assert facts["finetune_significant"].value is True
    assert facts["projected_gain_doubling"].value == 0.05
    assert facts["prompt_versions"].value == 3
    lose = {c.key: c for c in advice.lose_signals}
    assert lose["a_few_examples"].answer is True and lose["a_few_examples"].source == "measured"
    assert lose["e_base_improving"].answer is True and lose["e_base_improving"].source == "answered"
    assert lose["b_inconsistent_labels"].answer is None  # no annotator columns: unknown, not invented
    assert "label_agreement" in advice.unknowns and "latency_floor_binding" in advice.unknowns
    # Money: quality from the evaluation (lora 0.60 vs best prompt knn 0.31), gpt-5-mini priced from unit prices.
    assert advice.roi.baseline_monthly_usd == pytest.approx(237.5)
    assert advice.roi.best.gain == pytest.approx(0.29)
    # OpenAI closes new fine-tuning jobs on 2027-01-06, inside the year: a migration path with its cost.
    assert advice.migration.closes == "2027-01-06" and advice.migration.budget_usd > 0
    assert any("2027-01-06" in w for w in advice.warnings)
    stored = store.latest_decision()
    assert stored.id == advice.decision_id and stored.verdict == "lora" and stored.dataset_id == dataset.id
    assert stored.money["baseline_monthly_usd"] == pytest.approx(237.5)
    markdown, html = decision_section(store)
    assert "Fine-tune with LoRA" in markdown and "Migration path" in markdown and "<table" in html
    # The report renders the stored, typed record: the same page as the advice that was returned.
    assert markdown == advice.to_markdown() and html == advice.to_html()
    assert stored.facts["kind"] == "decision" and stored.facts["schema_version"] == 1
    assert "(measured here)" in markdown and "(projected)" in markdown and "<em>(measured here)</em>" in html


def test_classic_classifier_that_matches_wins(store, tmp_path, answers_file):
    _populate(store, tmp_path, classic=0.60, lora=0.60)
    advice = advise(store, answers_file, today=TODAY)
    assert advice.verdict == "classic"
    assert any("classic classifier" in r.text for r in advice.reasons)


def test_no_significant_gain_keeps_the_prompt(store, tmp_path, answers_file):
    _populate(store, tmp_path, classic=0.20, lora=0.33, significant=False, doubling=0.002)
    assert advise(store, answers_file, today=TODAY).verdict == "prompt"


def test_without_store_facts_everything_is_answered_or_unknown(store):
    advice = advise(store, {"examples": 800, "label_agreement": 0.78, "prompt_revisions": 1}, today=TODAY)
    assert advice.verdict == "prompt"  # three lose signals: few examples, noisy labels, prompt not exhausted
    assert sum(c.answer is True for c in advice.lose_signals) == 3
    assert advice.roi is None and any("money" in u for u in advice.unknowns)
    assert all(f.source != "measured" or k == "lora_tried" for k, f in advice.facts.items())


def test_after_the_openai_date_the_warning_is_in_force(store):
    advice = advise(store, {"requests_per_month": 1000, "input_tokens": 100, "plan_date": "2027-02-01"}, today=TODAY)
    assert any("plan is dated 2027-02-01" in w for w in advice.warnings)
    assert advice.migration is not None


def test_interactive_asker_fills_the_rest(store):
    asked = []

    def ask(key, question, kind):
        asked.append(key)
        return {"requests_per_month": "1000", "examples": "20000", "label_agreement": "0.9"}.get(key)

    advice = advise(store, ask=ask, today=TODAY)
    assert asked[0] == "requests_per_month" and "label_agreement" in asked
    assert advice.facts["examples"].value == 20000 and advice.facts["examples"].detail == "asked"


def test_bad_answers_are_one_line_errors(store, tmp_path):
    path = tmp_path / "answers.yaml"
    path.write_text("requests_per_month: -5\nvolume: 3\n")
    with pytest.raises(ConfigError) as info:
        advise(store, path, today=TODAY)
    message = str(info.value)
    assert str(path) in message and "requests_per_month" in message and "volume: unknown question" in message
    assert "\n" not in message


def test_advise_command_non_interactive(store, tmp_path, answers_file, monkeypatch):
    from typer.testing import CliRunner

    from tunewise.cli import app
    from tunewise.console import console

    _populate(store, tmp_path)
    monkeypatch.setattr(console, "_width", 200)
    result = CliRunner().invoke(app, ["advise", "--answers", str(answers_file)])
    assert result.exit_code == 0, result.output
    assert "Fine-tune with LoRA" in result.output and "Stored as decision dec-" in result.output


def test_cli_errors_are_one_line(tmp_path, capsys):
    from tunewise.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["roi", "--requests", "-1", "--option", "gpt-5-mini"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "requests_per_month" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["roi", "--requests", "10", "--option", "gpt-5-minii"])
    assert "did you mean gpt-5-mini" in capsys.readouterr().err


# -- counting unique examples, and fine-tunes that had not finished -------------------------------------


def _chat(text, label):
    import json

    return json.dumps({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": label}]})


def _raw_file(tmp_path):
    """60 distinct tickets, 15 exact copies of them, and 5 eval rows copied from train: 80 rows in the file."""
    words = ["billing", "refund", "login", "shipping", "invoice", "password", "delivery", "account", "upgrade", "cancel"]
    texts = [f"ticket {i}: my {words[i % 10]} problem started on day {i} at store {i * 7}" for i in range(60)]
    rows = [_chat(t, words[i % 3]) for i, t in enumerate(texts)] + [_chat(texts[i], words[i % 3]) for i in range(15)]
    rows += [_chat(f"another unrelated question number {i} about weather {i * 13}", words[i % 3]) for i in range(5)]
    train = tmp_path / "raw.jsonl"
    train.write_text("\n".join(rows) + "\n", encoding="utf-8")
    evaluation = tmp_path / "eval.jsonl"  # rows 50..54 of train leak into eval
    evaluation.write_text("\n".join(_chat(texts[i], words[i % 3]) for i in range(50, 55)) + "\n", encoding="utf-8")
    return train, evaluation


def test_advice_counts_unique_examples_after_cleaning(store, tmp_path, tiny_model_dir):
    from tunewise.data.audit import audit
    from tunewise.data.clean import clean

    train, evaluation = _raw_file(tmp_path)
    audited = audit(train, eval_path=evaluation, model=str(tiny_model_dir), store=store, progress=False, mislabels=False)
    # 80 rows - 15 copies - 5 contaminated rows = 60 unique, decontaminated examples.
    assert audited.summary["rows"] == 80 and audited.summary["readiness"]["examples"] == 60
    assert "60 unique examples (80 rows in the file)" in audited.summary["readiness"]["verdict"]
    advice = advise(store, {}, today=TODAY, save=False)
    assert advice.facts["examples"].value == 60
    assert any("60 unique examples after dedup and decontamination (80 rows in the file)" in r.text for r in advice.reasons)

    cleaned = clean(train, dedup=True, drop_contaminated=True, eval_path=evaluation)
    assert cleaned.kept == 60 and cleaned.dataset_id
    advice = advise(store, {}, today=TODAY, save=False)
    assert advice.facts["examples"].value == 60 and cleaned.dataset_id in advice.facts["examples"].detail
    assert any("60 unique examples after cleaning (80 rows in the file)" in r.text for r in advice.reasons)
    data_check = next(c for c in advice.checklist if c.key == "data_10k_consistent")
    assert data_check.evidence.startswith("60 unique examples after cleaning")


def test_unique_examples_drops_contaminated_rows_then_one_per_cluster():
    from tunewise.data.audit import unique_examples

    assert unique_examples(10, [[0, 1, 2]], set()) == 8
    assert unique_examples(10, [[0, 1, 2]], {5}) == 7
    assert unique_examples(10, [[0, 1, 2]], {0, 1, 2}) == 7  # the whole cluster leaked: nothing of it is kept
    assert unique_examples(10, [[0, 1, 2]], {0}) == 8  # the leaked row goes, one of the other two stays


def _run_with_steps(store, losses, *, metrics=None):
    run = store.create_run("lora", base_model="smollm2-135m", config={})
    for step, loss in losses:
        store.add_run_step(run.id, step, {"eval_loss": loss})
    store.update_run(run.id, status="completed", metrics=metrics or {})
    return run


def test_a_fine_tune_still_improving_is_not_a_loss(store, tmp_path, answers_file):
    run = _run_with_steps(store, [(10, 1.2), (20, 0.9), (30, 0.7)])
    _populate(store, tmp_path, classic=0.20, lora=0.33, significant=False, doubling=0.002, run_id=run.id)
    advice = advise(store, answers_file, today=TODAY, save=False)
    assert advice.facts["finetune_still_improving"].value is True
    assert "recorded steps" in advice.facts["finetune_still_improving"].detail
    assert advice.verdict == "lora" and "tunewise train --search" in advice.title
    assert any("still improving at its last evaluation" in r.text and "not counted as a lose signal" in r.text
               for r in advice.reasons)


def test_a_finished_fine_tune_that_loses_keeps_the_prompt(store, tmp_path, answers_file):
    run = _run_with_steps(store, [(10, 1.2), (20, 0.7), (30, 0.8)])  # best at step 20: it had stopped improving
    _populate(store, tmp_path, classic=0.20, lora=0.33, significant=False, doubling=0.002, run_id=run.id)
    advice = advise(store, answers_file, today=TODAY, save=False)
    assert advice.facts["finetune_still_improving"].value is False and advice.verdict == "prompt"


def test_run_metrics_win_over_recorded_steps(store, tmp_path, answers_file):
    run = _run_with_steps(store, [(10, 1.2), (20, 0.7), (30, 0.8)],
                          metrics={"still_improving": True, "best_step": 40, "steps": 40})
    _populate(store, tmp_path, classic=0.20, lora=0.33, significant=False, doubling=0.002, run_id=run.id)
    advice = advise(store, answers_file, today=TODAY, save=False)
    fact = advice.facts["finetune_still_improving"]
    assert fact.value is True and "run metrics" in fact.detail and "step 40 of 40" in fact.detail
    assert advice.verdict == "lora"


def test_a_curve_that_projects_a_gain_says_more_data_would_help(store, tmp_path, answers_file):
    _populate(store, tmp_path, classic=0.20, lora=0.33, significant=False, doubling=0.05)
    advice = advise(store, answers_file, today=TODAY, save=False)
    assert advice.verdict == "lora" and "more data would help" in advice.title
    assert any("more data would help" in r.text for r in advice.reasons)


def test_run_progress_from_steps():
    from tunewise.advise.facts import run_progress

    assert run_progress({}, [(10, {"eval_loss": 1.0})])["still_improving"] is None  # one evaluation: nothing to compare
    rising = run_progress({}, [(10, {"eval_accuracy": 0.5, "eval_loss": 1.0}), (20, {"eval_accuracy": 0.6, "eval_loss": 1.1})])
    assert rising["still_improving"] is True and rising["metric"] == "eval_accuracy"
    flat = run_progress({}, [(10, {"eval_loss": 0.9}), (20, {"eval_loss": 0.9})])
    assert flat["still_improving"] is False and flat["best_step"] == 10
    # The final evaluation after training (best weights reloaded) is not a periodic one.
    final = run_progress({}, [(10, {"eval_loss": 0.8}), (20, {"eval_loss": 0.9}), (20, {"eval_loss": 0.7, "final": True})])
    assert final["still_improving"] is False


# -- every fact says where it came from -----------------------------------------------------------------


def test_the_learning_curve_is_projected_not_measured(store, tmp_path, answers_file):
    _populate(store, tmp_path, classic=0.20, lora=0.33, significant=False, doubling=0.05)
    advice = advise(store, answers_file, today=TODAY, save=False)
    fact = advice.facts["projected_gain_doubling"]
    assert fact.source == "projected" and "extrapolated" in fact.detail and "500" in fact.detail
    curve_reasons = [r for r in advice.reasons if "learning curve" in r.text or "more data would help" in r.text]
    assert curve_reasons and all(r.source == "projected" for r in curve_reasons)


def test_an_explicit_answer_wins_over_measured_tokens(store, tmp_path, answers_file):
    _populate(store, tmp_path)
    answers_file.write_text(answers_file.read_text() + "input_tokens: 400\n")
    advice = advise(store, answers_file, today=TODAY, save=False)
    fact = advice.facts["input_tokens"]
    assert fact.value == 400 and fact.source == "answered" and "wins over 150" in fact.detail and not fact.transfer
    # 5M x 400 x $0.25/M + 5M x 5 x $2/M: the answer prices the traffic, not the evaluation's count.
    assert advice.roi.baseline_monthly_usd == pytest.approx(550)
    assert not any("tokenizer" in n for n in advice.roi.notes)


def test_tokens_counted_by_another_model_say_so(store, tmp_path, answers_file):
    _populate(store, tmp_path)
    advice = advise(store, answers_file, today=TODAY, save=False)
    tokens = advice.facts["input_tokens"]
    assert tokens.source == "measured"
    assert "smollm2-135m's tokenizer" in tokens.transfer and "price gpt-5-mini" in tokens.transfer
    assert advice.facts["base_model"].source == "assumed"
    per_1k = advice.facts["cost_per_1k_usd"]
    assert per_1k.source == "catalog+measured" and per_1k.transfer == tokens.transfer
    assert any("smollm2-135m's tokenizer" in n for n in advice.roi.notes)
    cost_check = next(c for c in advice.win_signals if c.key == "d_cost_per_1k")
    assert "smollm2-135m's tokenizer" in cost_check.evidence


def test_tokens_an_endpoint_of_the_priced_model_reported_are_not_a_transfer(store, tmp_path, answers_file):
    _populate(store, tmp_path)
    endpoint = "endpoint:https://api.openai.com/v1#gpt-5-mini"
    store.add_evaluation(kind="compare", dataset_id=None, config={}, task_type="classification", results=records.comparison([
        records.candidate(endpoint, 0.30, tokens_in=180, endpoint=True),
        records.candidate("adapter:run-1", 0.60, comparison=records.versus(endpoint, 0.30)),
    ], baseline=endpoint))
    advice = advise(store, answers_file, today=TODAY, save=False)
    tokens = advice.facts["input_tokens"]
    assert tokens.value == 180 and tokens.source == "measured" and not tokens.transfer
    latency = next(c for c in advice.checklist if c.key == "latency_binding")
    assert "measured baseline p50 700 ms" in latency.evidence  # an endpoint answers request by request


def test_a_batched_local_baseline_has_amortised_time_not_latency(store, tmp_path, answers_file):
    _populate(store, tmp_path)
    advice = advise(store, answers_file, today=TODAY, save=False)
    assert "baseline_latency_p50_ms" not in advice.facts
    assert "throughput" in advice.facts["baseline_amortized_ms"].detail
    latency = next(c for c in advice.checklist if c.key == "latency_binding")
    assert "amortised 35 ms per request (batched: throughput, not p50 latency)" in latency.evidence
    assert "p50 35" not in latency.evidence


def test_a_quality_gain_measured_on_a_small_model_says_it_is_transferred(store, tmp_path, answers_file):
    run = _run_with_steps(store, [(10, 1.2), (20, 0.7)])
    _populate(store, tmp_path, run_id=run.id)
    advice = advise(store, answers_file, today=TODAY, save=False)
    money = next(r for r in advice.reasons if r.text.startswith("money:"))
    assert "measured on smollm2-135m" in money.text and "gpt-5-mini fine-tune" in money.text
    assert "as if it transferred" in money.text and "assumed" in money.source.split("+")
    assert any("as if it transferred" in n for n in advice.roi.notes)


def test_the_lora_experiment_is_priced_from_the_catalog_or_unknown(store, tmp_path):
    advice = advise(store, {}, today=TODAY, save=False)
    assert advice.verdict == "lora"
    last = next(r for r in advice.reasons if "LoRA experiment" in r.text)
    assert "cost is unknown: no audit counted the training tokens" in last.text and "$50" not in last.text
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "x", "label": "y"}\n')
    dataset = store.add_dataset(data, format="jsonl", rows=6000)
    store.add_audit(dataset.id, records.audit_summary(rows=6000, eval_rows=600, billable=1_360_000), passed=True)
    advice = advise(store, {}, today=TODAY, save=False)
    last = next(r for r in advice.reasons if "LoRA experiment" in r.text)
    # 3 epochs x 1.36M tokens at 13,600 tokens/s on a $3/h H100: 300 s = $0.25, from the catalog.
    assert advice.verdict == "lora" and "selfhost-h100" in last.text and "$0.25" in last.text
    assert "catalog" in last.source.split("+") and "$50" not in last.text


def test_the_migration_invents_no_example_count(store):
    plan = {"requests_per_month": 1000, "input_tokens": 100, "plan_date": "2027-02-01"}
    advice = advise(store, plan, today=TODAY, save=False)
    assert not any(o.name.startswith("distill") for o in advice.roi.options)
    assert advice.migration.cost.startswith("unknown")
    advice = advise(store, {**plan, "examples": 2000}, today=TODAY, save=False)
    distill = next(o for o in advice.roi.options if o.name.startswith("distill"))
    assert distill.budget_usd == pytest.approx(2000 * 100 * 0.25 / 1e6)  # the teacher labels 2,000 inputs of 100 tokens
    assert advice.migration.budget_usd == pytest.approx(distill.budget_usd)


def test_the_stored_decision_reads_back_as_its_type(store, tmp_path, answers_file):
    from tunewise.records.decision import DecisionRecord

    _populate(store, tmp_path)
    advice = advise(store, answers_file, today=TODAY)
    record = DecisionRecord.from_store(store.latest_decision().facts, where="decision")
    assert record.verdict == advice.verdict and record.facts["input_tokens"].transfer == advice.facts["input_tokens"].transfer
    assert record.roi.best.name == advice.roi.best.name and record.migration.closes == "2027-01-06"
    from tunewise.advise.render import render_page_html

    page = render_page_html(record)
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "Migration path" in page


def test_decision_section_without_a_typed_decision(store):
    markdown, html = decision_section(store)
    assert "No decision yet" in markdown and "No decision yet" in html
    store.add_decision("prompt", reasons=["old"], facts={"title": "Keep improving the prompt", "_advice": {}}, money={})
    markdown, html = decision_section(store)
    assert markdown.startswith("## Decision: prompt") and "earlier tunewise" in markdown and "run `tunewise advise` again" in markdown
    assert "<h2>Decision: prompt</h2>" in html


def test_decision_text_is_escaped_in_html(store):
    advice = advise(store, {"base_model": "gpt-5-mini"}, today=TODAY, save=False)
    advice.reasons[0].text = "<script>x</script>"
    assert "<script>" not in advice.to_html() and "&lt;script&gt;" in advice.to_html()


def test_the_bars_come_from_the_workspace_thresholds(store, tmp_path, answers_file, isolated_workspace, monkeypatch):
    from typer.testing import CliRunner

    from tunewise.cli import app
    from tunewise.config import load_config
    from tunewise.console import console
    from tunewise.data.config import Thresholds

    _populate(store, tmp_path)  # 1,200 examples
    advice = advise(store, answers_file, today=TODAY, save=False, thresholds=Thresholds(coin_flip_below=1000, full_sft_from=1100))
    lose = {c.key: c for c in advice.lose_signals}
    assert lose["a_few_examples"].answer is False and "1,000" in lose["a_few_examples"].question
    (isolated_workspace / "tunewise.yaml").write_text("data:\n  thresholds:\n    coin_flip_below: 1000\n    full_sft_from: 1100\n")
    assert load_config().data.thresholds.coin_flip_below == 1000
    monkeypatch.setattr(console, "_width", 250)
    result = CliRunner().invoke(app, ["advise", "--answers", str(answers_file)])
    assert result.exit_code == 0, result.output
    assert "fewer than 1,000 examples" in result.output and "1,100+ consistent" in result.output


def test_a_bar_set_under_advise_is_read_from_its_old_place_with_a_warning(isolated_workspace, capsys):
    from tunewise.cli import main
    from tunewise.config import load_config
    from tunewise.errors import SettingMovedWarning

    # A tunewise.yaml written before the bars moved to data.thresholds still opens, and keeps its value.
    (isolated_workspace / "tunewise.yaml").write_text("advise:\n  min_examples: 8000\n  floor_examples: 500\n")
    with pytest.warns(SettingMovedWarning) as caught:
        config = load_config()
    assert sorted(str(w.message).split(";")[0] for w in caught) == [
        "advise.floor_examples is now data.thresholds.coin_flip_below", "advise.min_examples is now data.thresholds.full_sft_from"]
    assert config.data.thresholds.full_sft_from == 8000 and config.data.thresholds.coin_flip_below == 500

    # Set in both places, the new one wins and the warning says the old line is ignored.
    (isolated_workspace / "tunewise.yaml").write_text("advise:\n  min_examples: 8000\ndata:\n  thresholds:\n    full_sft_from: 9000\n")
    with pytest.warns(SettingMovedWarning, match="ignored"):
        assert load_config().data.thresholds.full_sft_from == 9000

    # The command says it in one line, without a Python source location.
    with pytest.raises(SystemExit) as done:
        main(["status"])
    err = capsys.readouterr().err
    assert done.value.code == 0 and "warning: advise.min_examples" in err and ".py:" not in err


def test_an_audit_stored_before_records_were_typed_is_one_line(store, tmp_path):
    from tunewise.errors import StoreError

    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "x", "label": "y"}\n')
    dataset = store.add_dataset(data, format="jsonl", rows=10)
    store.add_audit(dataset.id, {"rows": 10, "readiness": {"examples": 10}}, passed=True)
    with pytest.raises(StoreError, match=r"^audit audit-\w+: audit record is malformed at .*earlier tunewise") as info:
        advise(store, {}, today=TODAY, save=False)
    assert "\n" not in str(info.value)

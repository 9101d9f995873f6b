"""The ROI model reproduces seed 003's figures, and says where the seed's own arithmetic disagrees."""

from __future__ import annotations

import pytest

from tunewise.advise.decide import load_answers
from tunewise.advise.roi import FineTuneOption, RoiInputs, build_inputs, load_roi_inputs, roi
from tunewise.errors import ConfigError, ModelNotFoundError

from . import records

# Seed 003, classification worked example: 5M tickets/month, 91% -> 95%, $8k prep, ~$400 training,
# $530 vs $212 per month, $0.05 of analyst rework per misclassified ticket.
CLASSIFICATION = dict(
    requests_per_month=5_000_000, baseline_monthly_usd=212, baseline_quality=0.91, finetuned_quality=0.95,
    cost_per_error_usd=0.05, labeling_hours=200, labeler_rate_usd=40, iteration_runs=1,
)


def test_classification_worked_example_given_its_monthly_costs():
    result = roi(RoiInputs(**CLASSIFICATION, options=[FineTuneOption(name="gpt-5-mini SFT", monthly_usd=530, training_usd=400)]))
    best = result.best
    # $8k data prep + $400 training + ($530 - $212) x 12 = $12,216 ("$12.2k")
    assert best.incremental_year1_usd == pytest.approx(12_216)
    # 4pp on 60M tickets = 2.4M more correct x $0.05 = $120k saved labor
    assert best.benefit_year1_usd == pytest.approx(120_000)
    assert best.net_year1_usd == pytest.approx(120_000 - 12_216)
    assert best.break_even_month == 1  # $8,400 upfront / ($10,000 - $318) a month
    assert "pays back" in result.decision
    # "If misclassification costs nothing ... it's $12.2k for nothing."
    free = roi(RoiInputs(**{**CLASSIFICATION, "cost_per_error_usd": 0},
                         options=[FineTuneOption(name="ft", monthly_usd=530, training_usd=400)]))
    assert free.best.net_year1_usd == pytest.approx(-12_216) and free.best.break_even_month is None


def test_seed_monthly_costs_disagree_with_its_unit_prices():
    """The seed states $212/month for 5M x (150 in, 5 out) tokens at $0.25/M in and $2/M out; the unit
    prices give 5M x 150 x $0.25/M + 5M x 5 x $2/M = $187.50 + $50 = $237.50. Its fine-tuned "$530/month"
    is not 1.5x of either figure: the 1.5x markup ($0.375/M in, $3/M out) gives $356.25. tunewise computes
    from the unit prices and says so in a note."""
    inputs = RoiInputs(
        **{**CLASSIFICATION, "input_tokens": 150, "output_tokens": 5, "base_model": "gpt-5-mini"},
        options=[FineTuneOption(name="gpt-5-mini SFT", model="gpt-5-mini", monthly_usd=530, training_tokens=16_000_000)],
    )
    result = roi(inputs)
    assert result.baseline_monthly_usd == pytest.approx(237.50)
    option = result.options[0]
    assert option.monthly_usd == pytest.approx(356.25) == pytest.approx(1.5 * 237.50)
    assert option.training_usd == pytest.approx(400)  # ~16M training tokens x $25/M
    assert any("stated $212.00/month disagrees" in n and "$237.50" in n and "uses the unit prices" in n for n in result.notes)
    assert any("stated $530.00/month disagrees" in n and "$356.25" in n for n in result.notes)
    # With unit prices the year-1 cost is $8,000 + $400 + ($356.25 - $237.50) x 12 = $9,825.
    assert option.incremental_year1_usd == pytest.approx(9_825)


@pytest.mark.parametrize("upfront, markup, expected", [(5_000, 1.2, 7_880), (10_000, 2.0, 24_400)])
def test_creative_writing_year1_range(upfront, markup, expected):
    """$5-10k upfront + 1.2-2.0x markup on $1,200/month = $2,880-14,400 a year: $7.9k-$24.4k year-1."""
    inputs = RoiInputs(
        requests_per_month=2_000, baseline_monthly_usd=1_200, iteration_runs=1,
        options=[FineTuneOption(name="ft", markup=markup, training_usd=upfront)],
    )
    assert roi(inputs).options[0].incremental_year1_usd == pytest.approx(expected)


def test_budget_formula():
    """Seed: ~$400 training x 4 iteration runs + $8,000 labeling + $1,200 eval = $10,800 all-in."""
    inputs = RoiInputs(requests_per_month=1, baseline_monthly_usd=0, labeling_hours=200, labeler_rate_usd=40,
                       eval_set_usd=1_200, options=[FineTuneOption(name="ft", monthly_usd=0, training_usd=400)])
    assert inputs.iteration_runs == 4
    assert roi(inputs).options[0].budget_usd == pytest.approx(10_800)


def test_self_hosted_serving_from_gpu_hours():
    inputs = RoiInputs(
        requests_per_month=100_000_000, input_tokens=150, output_tokens=5, base_model="gpt-5-mini",
        options=[FineTuneOption(name="own", model="selfhost-h100", serve_on="selfhost-h100", gpu_usd_per_hour=2.0,
                                serve_tokens_per_second=5_000, training_tokens=16_000_000)],
    )
    option = roi(inputs).options[0]
    hours = 100e6 * 155 / 5_000 / 3600  # 861 h > 730 h always-on
    assert option.monthly_usd == pytest.approx(hours * 2.0)
    assert option.training_usd == pytest.approx(16e6 / 13_600 / 3600 * 3.0)


def test_sensitivity_finds_what_flips_the_decision():
    result = roi(RoiInputs(**CLASSIFICATION, options=[FineTuneOption(name="ft", monthly_usd=530, training_usd=400)]))
    rows = {row.input: row for row in result.sensitivity}
    assert rows["cost_per_error_usd"].flips and rows["quality gain"].flips
    # net = 0 where 0.04 x 60M x c = 12,216 -> c = $0.00509 per error
    assert rows["cost_per_error_usd"].break_even_value == pytest.approx(12_216 / 2_400_000, rel=1e-4)
    # net = 0 where gain x 5M x 0.05 x 12 = $8,400 + $318 x 12
    assert rows["requests_per_month"].break_even_value == pytest.approx(12_216 / (0.04 * 0.05 * 12), rel=1e-4)
    assert not rows["iteration_runs"].flips


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="requests_per_month: missing"):
        build_inputs(options=["gpt-5-mini"], input_tokens=150)
    with pytest.raises(ConfigError, match="requests_per_month: Input should be greater than 0"):
        build_inputs(options=["gpt-5-mini"], requests_per_month=-5, input_tokens=150)
    with pytest.raises(ModelNotFoundError, match="did you mean gpt-5-mini"):
        build_inputs(options=["gpt-5-minii"], requests_per_month=5)
    with pytest.raises(ConfigError, match="input_tokens: missing"):
        roi(build_inputs(options=["gpt-5-mini"], requests_per_month=5, base_model="gpt-5-mini"))
    bad = tmp_path / "roi.yaml"
    bad.write_text("requests_per_month: 100\noptions:\n  - name: x\n    monthly_usd: -1\n")
    with pytest.raises(ConfigError, match=r"roi.yaml: options.0.monthly_usd"):
        build_inputs(bad)


def test_inputs_file_and_quality_from_evaluation(tmp_path, store):
    store.add_evaluation(kind="compare", dataset_id=None, config={}, results=records.comparison([
        records.candidate("few-shot:m?k=8", 0.91),
        records.candidate("adapter:run-1", 0.95, comparison=records.versus("few-shot:m?k=8", 0.04, low=0.02, high=0.06)),
    ], baseline="few-shot:m?k=8"))
    path = tmp_path / "roi.yaml"
    path.write_text("requests_per_month: 5000000\nbase_model: gpt-5-mini\ncost_per_error_usd: 0.05\n"
                    "labeling_hours: 200\niteration_runs: 1\noptions:\n  - {name: ft, model: gpt-5-mini, training_usd: 400}\n")
    result = roi(build_inputs(path, from_eval="latest", store=store))
    assert result.best.gain == pytest.approx(0.04) and result.baseline_monthly_usd == pytest.approx(237.5)
    gain = {r.input: r for r in result.sensitivity}["quality gain"]
    assert (gain.low, gain.high) == (0.02, 0.06)
    assert any("evaluation eval-" in n for n in result.notes)


def test_roi_command(monkeypatch):
    from typer.testing import CliRunner

    from tunewise.cli import app
    from tunewise.console import console

    monkeypatch.setattr(console, "_width", 250)
    result = CliRunner().invoke(app, [
        "roi", "--requests", "5000000", "--input-tokens", "150", "--output-tokens", "5", "--base-model", "gpt-5-mini",
        "--option", "gpt-5-mini", "--training-tokens", "16000000", "--baseline-quality", "0.91",
        "--finetuned-quality", "0.95", "--cost-per-error", "0.05", "--labeling-hours", "200"])
    assert result.exit_code == 0, result.output
    assert "$237.50" in result.output and "$356.25" in result.output and "Sensitivity" in result.output


@pytest.mark.parametrize("loader, what", [(load_roi_inputs, "ROI inputs"), (load_answers, "answers")])
@pytest.mark.parametrize(
    "text, expected",
    [
        ("requests_per_month: 100\n  bad: indent\n", r"in\.yaml: line 2: invalid YAML \(mapping values are not allowed here\)$"),
        ("- a list\n", r"in\.yaml: expected a mapping of {what}$"),
        (None, r"in\.yaml: {what} file not found$"),
    ],
)
def test_answers_and_inputs_files_share_one_line_yaml_errors(tmp_path, loader, what, text, expected):
    path = tmp_path / "in.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=expected.format(what=what)) as info:
        loader(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)

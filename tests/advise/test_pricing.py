"""The pricing catalog: the seed's table, user overrides, bad rows, availability warnings."""

from __future__ import annotations

from datetime import date

import pytest

from tunewise.errors import ConfigError, ModelNotFoundError
from tunewise.pricing import load_catalog

# Seed 003, "Inference cost markup - fine-tuned vs base, monthly @ 100M input tokens".
MARKUP_TABLE = {
    "gpt-5-mini": (25.00, 37.50, 12.50),
    "gpt-5.4": (150.00, 300.00, 150.00),
    "gpt-4o": (25.00, 37.50, 12.50),
    "claude-haiku-4.5-bedrock": (80.00, 96.00, 16.00),
    "gemini-2.5-flash-vertex": (15.00, 19.50, 4.50),
}


def test_catalog_is_dated_versioned_and_holds_every_seed_row():
    catalog = load_catalog()
    assert catalog.as_of == date(2026, 6, 20)
    assert catalog.version == 1
    seed_rows = {r.name for r in catalog.rows if r.source == "roi-guide-2026"}
    assert {"gpt-5-mini", "gpt-5.4", "gpt-4o", "claude-haiku-4.5-bedrock", "gemini-2.5-flash-vertex",
            "llama-4-8b-together", "mistral-small-3", "deepseek-v3-distill-selfhosted"} <= seed_rows
    mini = catalog.get("gpt-5-mini")
    assert (mini.training_usd_per_m, mini.min_run_usd, mini.markup) == (25, 200, 1.5)
    assert (mini.base_input_usd_per_m, mini.base_output_usd_per_m) == (0.25, 2.0)
    assert mini.input_price(fine_tuned=True) == pytest.approx(0.375)
    assert all(r.example for r in catalog.rows if r.kind == "self-hosted")


@pytest.mark.parametrize("name", sorted(MARKUP_TABLE))
def test_markup_table_at_100m_input_tokens(name):
    row = load_catalog().get(name)
    base = 100 * row.input_price(fine_tuned=False)
    tuned = 100 * row.input_price(fine_tuned=True)
    assert (base, tuned, tuned - base) == pytest.approx(MARKUP_TABLE[name])


def test_training_estimates_apply_minimums_and_ranges():
    estimates = {e.row.name: e for e in load_catalog().training_estimates(16_000_000)}
    assert estimates["gpt-5-mini"].usd == pytest.approx(400)  # the worked example: ~16M x $25/M
    assert estimates["gemini-2.5-flash-vertex"].usd == 150  # $128 raised to the ~$150/run minimum
    assert "minimum" in estimates["gemini-2.5-flash-vertex"].basis
    llama = estimates["llama-4-8b-together"]
    assert (llama.usd_low, llama.usd_high) == (50, 500) and "pay-per-run" in llama.basis
    assert "example" in estimates["selfhost-h100"].basis


def test_unknown_name_suggests_nearest():
    with pytest.raises(ModelNotFoundError, match="did you mean gpt-5-mini"):
        load_catalog().get("gpt5-mini")


def test_user_file_overrides_fields_and_adds_rows(tmp_path):
    user = tmp_path / "prices.yaml"
    user.write_text(
        "as_of: 2026-11-01\nrows:\n"
        "  - name: gpt-5-mini\n    training_usd_per_m: 20\n"
        "  - name: my-h200\n    provider: self-hosted\n    kind: self-hosted\n    gpu_usd_per_hour: 4.5\n"
        "    train_tokens_per_second: 20000\n"
    )
    catalog = load_catalog(user)
    mini = catalog.get("gpt-5-mini")
    assert mini.training_usd_per_m == 20 and mini.markup == 1.5  # other fields kept
    assert mini.as_of == date(2026, 11, 1) and "prices.yaml" in mini.source
    assert catalog.get("my-h200").gpu_usd_per_hour == 4.5


@pytest.mark.parametrize(
    "body, expected",
    [
        ("rows:\n  - name: x\n    provider: p\n    kind: managed\n    training_usd_per_m: -3\n", r"row 1 \(x\): field training_usd_per_m"),
        ("rows:\n  - name: gpt-5-mini\n  - name: y\n    provider: p\n    kind: rented\n", r"row 2 \(y\): field kind"),
        ("rows:\n  - name: gpt-5-mini\n    markupp: 2\n", r"row 1 \(gpt-5-mini\): field markupp: unknown field"),
        ("rows:\n  - provider: p\n", r"row 1: field name: missing"),
        ("rows: [\n", r"invalid YAML"),
    ],
)
def test_bad_user_rows_name_file_row_and_field(tmp_path, body, expected):
    user = tmp_path / "bad.yaml"
    user.write_text(body)
    with pytest.raises(ConfigError, match=expected) as info:
        load_catalog(user)
    assert str(user) in str(info.value) and "\n" not in str(info.value)


def test_openai_retirement_warnings():
    catalog = load_catalog()
    assert catalog.warnings_for("gpt-5-mini", on=date(2026, 11, 23)) == []
    soon = catalog.warnings_for("gpt-5-mini", on=date(2026, 11, 23), horizon_days=365)
    assert len(soon) == 1 and "2027-01-06" in soon[0] and "44 days" in soon[0]
    after = catalog.warnings_for("gpt-5-mini", on=date(2027, 2, 1))
    assert "public reports" in after[0] and "distill" in after[0]
    assert catalog.warnings_for("mistral-small-3", on=date(2027, 2, 1)) == []


def test_prices_command_shows_date(monkeypatch):
    from typer.testing import CliRunner

    from tunewise.cli import app
    from tunewise.console import console

    monkeypatch.setattr(console, "_width", 250)

    result = CliRunner().invoke(app, ["prices", "--tokens", "16000000"])
    assert result.exit_code == 0, result.output
    assert "2026-06-20" in result.output and "gpt-5-mini" in result.output

"""`tunewise data audit`: found vs planted on the sample task, exit codes, JSON, self-contained HTML."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from tunewise.data.audit import audit, readiness_verdict
from tunewise.data.audit_html import render_audit_html

SYSTEM = {"role": "system", "content": "Route the ticket."}


def _row(text: str, label: str) -> str:
    return json.dumps({"messages": [SYSTEM, {"role": "user", "content": text}, {"role": "assistant", "content": label}]})


def _write(path, lines: list[str]):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def sample_audit(tmp_path_factory, tiny_model_dir):
    """The bundled sample task, audited once (tiny tokenizer: the count method is tested in test_tokens)."""
    from tunewise.sample import sample_paths

    paths = sample_paths()
    return audit(paths["train"], eval_path=paths["eval"], annotations_path=paths["annotations"], model=str(tiny_model_dir),
                 progress=False, register=False)


def _recall(found: set[int], planted: set[int]) -> float:
    return len(found & planted) / len(planted)


def test_sample_audit_finds_what_was_planted(sample_audit):
    from tunewise.sample import planted

    truth = planted()["train"]
    found = sample_audit.found_lines()
    pii = {p["line"] for p in truth["pii"]}
    near = {p["line"] for p in truth["near_duplicates"]} | {p["copies"] for p in truth["near_duplicates"]}
    exact = {p["line"] for p in truth["exact_duplicates"]} | {p["copies"] for p in truth["exact_duplicates"]}
    wrong = {p["line"] for p in truth["wrong_labels"]}
    leaked = {p["train_line"] for p in truth["contamination"]}
    # Measured 2026-11-23: PII 152/152 rows, near-dup 114/114 rows, exact 38/38, wrong labels 48/57, contamination 5/5.
    assert _recall(found["PII rows"], pii) >= 0.95
    assert _recall(found["near-duplicate rows"], near) >= 0.9
    assert _recall(found["exact-duplicate rows"], exact) >= 0.95
    assert _recall(found["wrong labels"], wrong) >= 0.7
    assert len(found["wrong labels"] & wrong) / max(1, len(found["wrong labels"])) >= 0.7  # precision of the flags
    assert found["contaminated rows"] == leaked
    s = sample_audit.summary
    assert s["contamination"]["eval_rows_affected"] == len({p["eval_line"] for p in truth["contamination"]})
    assert sample_audit.blocking and "contamination" in sample_audit.blocking[0]
    # agreement from the annotations CSV against planted figures, and the seed's 85% bar
    annotations = planted()["annotations"]
    assert s["labels"]["agreement"] == pytest.approx(annotations["mean_pairwise_agreement"], abs=0.002)
    assert s["labels"]["kappa"] == pytest.approx(annotations["fleiss_kappa"], abs=0.002)
    assert s["readiness"]["level"] == "coin-flip" and "below the 500-2,000" in s["readiness"]["verdict"]


def test_summary_has_the_contract_shape(sample_audit):
    s = sample_audit.summary
    for key in ("rows", "rows_rejected", "format_problems", "eval_rows", "tokens", "pii", "duplicates", "contamination",
                "labels", "readiness", "cost_estimates"):
        assert key in s
    assert set(s["tokens"]) >= {"total", "billable_per_epoch", "min", "median", "p95", "max", "over_limit", "context_limit",
                                "tokenizer", "estimate"}
    assert set(s["pii"]) >= {"rows", "matches", "by_type"}
    assert set(s["duplicates"]) >= {"exact_clusters", "near_clusters", "rows_in_clusters", "removable"}
    assert set(s["contamination"]) >= {"hits", "eval_rows_affected"}
    assert set(s["labels"]) >= {"is_classification", "n_classes", "distribution", "imbalance_ratio", "small_classes",
                                "conflicts", "suspected_mislabeled", "agreement", "kappa"}
    assert set(s["readiness"]) >= {"level", "verdict"}
    assert s["cost_estimates"] and set(s["cost_estimates"][0]) >= {"model", "usd", "basis"}
    # OpenAI rows priced from another model's token counts say so
    openai = next(c for c in s["cost_estimates"] if c["provider"] == "openai")
    assert openai["estimate"] and "estimate" in openai["basis"]
    json.dumps(sample_audit.to_dict())  # every detail is JSON-ready


def test_details_carry_lines_types_and_scores(tmp_path, tiny_model_dir):
    rows = [_row(f"ticket number {i}: the export of project {i} fails with error code E{i}", "bug") for i in range(12)]
    rows[3] = _row("Please call me at +1 (555) 201-3344 or write to ana.souza@example.com about the refund", "refund")
    rows[5] = _row("TICKET NUMBER 0:   the export of project 0 fails with error code E0", "bug")  # exact dup of row 0
    rows.append("{not json")
    data = _write(tmp_path / "train.jsonl", rows)
    result = audit(data, model=str(tiny_model_dir), progress=False, register=False)
    assert result.blocking and "format rule" in result.blocking[0]
    assert result.format_problems[0]["line"] == 13
    pii = {r["line"]: r["types"] for r in result.pii}
    assert pii == {4: {"phone": 1, "email": 1}}
    exact = [c for c in result.duplicate_clusters if c["kind"] == "exact"]
    assert exact and exact[0]["lines"] == [1, 6] and exact[0]["texts"]
    assert result.summary["rows"] == 12 and result.summary["rows_rejected"] == 1
    assert result.summary["eval_rows"] is None and "no eval set" in result.summary["readiness"]["verdict"]


def test_readiness_thresholds():
    assert readiness_verdict(4_999, 800).level == "coin-flip"
    assert readiness_verdict(5_000, 800).level == "lora"
    assert readiness_verdict(10_000, 800).level == "full-sft"
    assert readiness_verdict(12_000, 800).eval_ok and not readiness_verdict(12_000, 3_000).eval_ok
    assert "below the 85% bar" in readiness_verdict(12_000, 800, agreement=0.7).verdict


def test_readiness_reads_the_configured_thresholds():
    from tunewise.data.config import Thresholds

    bars = Thresholds(coin_flip_below=100, full_sft_from=200, eval_min=10, eval_max=50, agreement_bar=0.6)
    ready = readiness_verdict(150, 20, agreement=0.7, thresholds=bars)
    assert ready.level == "lora" and ready.eval_ok
    assert "100-200 is LoRA territory" in ready.verdict and "meets the 60% bar" in ready.verdict
    assert readiness_verdict(250, 60, thresholds=bars).level == "full-sft" and not readiness_verdict(250, 60, thresholds=bars).eval_ok


def test_thresholds_come_from_the_workspace_config(tmp_path, tiny_model_dir):
    from tunewise.config import load_config
    from tunewise.errors import ConfigError

    (tmp_path / "tunewise.yaml").write_text("data:\n  thresholds:\n    coin_flip_below: 10\n    full_sft_from: 15\n    agreement_bar: 0.5\n")
    config = load_config(tmp_path / "tunewise.yaml").data
    assert config.thresholds.full_sft_from == 15
    train = _write(tmp_path / "train.jsonl", [_row(f"question {i} about invoices and seats {i * 7}", "billing") for i in range(20)])
    result = audit(train, model=str(tiny_model_dir), progress=False, register=False, config=config)
    assert result.record.readiness.level == "full-sft" and "15+ is where full SFT" in result.record.readiness.verdict
    (tmp_path / "bad.yaml").write_text("data:\n  thresholds:\n    coin_flip_below: 20000\n")
    with pytest.raises(ConfigError, match="coin_flip_below"):
        load_config(tmp_path / "bad.yaml")


def test_audit_is_stored_with_its_datasets(tmp_path, tiny_model_dir, store):
    train = _write(tmp_path / "train.jsonl", [_row(f"question {i} about invoices and seats {i * 7}", "billing") for i in range(20)])
    evals = _write(tmp_path / "eval.jsonl", [_row(f"how to export board {i} as csv file please", "how-to") for i in range(5)])
    result = audit(train, eval_path=evals, model=str(tiny_model_dir), progress=False, store=store)
    assert result.passed and result.audit_id
    stored = store.latest_audit(result.dataset_id)
    assert stored.id == result.audit_id and stored.passed and stored.eval_dataset_id == result.eval_dataset_id
    assert stored.summary["rows"] == 20
    assert store.get_dataset(train).id == result.dataset_id
    # what the store holds reads back as the typed record, equal to the one the audit built
    from tunewise.records.audit import AuditSummary

    record = AuditSummary.from_store(stored.summary, where=f"audit {stored.id}")
    assert record == result.record and record.kind == "audit" and record.schema_version == 1
    assert record.eval_rows == 5 and record.contamination.hits == 0 and record.labels.agreement is None


def test_an_untyped_or_malformed_stored_summary_is_one_clear_error(sample_audit):
    from tunewise.errors import StoreError
    from tunewise.records.audit import AuditSummary

    # A summary stored before records were typed (no kind, no schema_version) reads as version 0.
    untyped = {k: v for k, v in sample_audit.summary.items() if k not in ("kind", "schema_version")}
    assert AuditSummary.from_store(untyped, where="audit 7") == sample_audit.record
    with pytest.raises(StoreError, match="audit 7: audit record is malformed at rows.*earlier tunewise"):
        AuditSummary.from_store({**untyped, "rows": "many"}, where="audit 7")
    broken = {**sample_audit.summary, "readiness": {**sample_audit.summary["readiness"], "level": "maybe"}}
    with pytest.raises(StoreError, match="malformed at readiness.level"):
        AuditSummary.from_store(broken, where="audit 7")


def test_html_is_self_contained(sample_audit, tmp_path):
    from tunewise.data.audit_html import write_audit_html

    page = write_audit_html(sample_audit, tmp_path / "audit.html").read_text(encoding="utf-8")
    assert page == render_audit_html(sample_audit)
    assert page.count("data:image/png;base64,") >= 4  # tokens, labels, duplicates, PII
    for needle in ("Readiness", "Suspected wrong labels", "Contamination", "Duplicates", "PII"):
        assert needle in page
    assert not re.search(r"(?:src|href)\s*=\s*['\"]?(?:https?:)?//", page)
    assert "http://" not in page and "https://" not in page
    assert "85% agreement bar" in page and "No eval set given" not in page


def test_html_escapes_what_the_rows_say(tmp_path, tiny_model_dir):
    rows = [_row(f"<script>alert({i})</script> invoice {i} is wrong & late", "billing") for i in range(3)] * 2
    result = audit(_write(tmp_path / "train.jsonl", rows), model=str(tiny_model_dir), progress=False, register=False)
    page = render_audit_html(result)
    assert "<script>" not in page and "&lt;script&gt;alert(0)&lt;/script&gt; invoice 0 is wrong &amp; late" in page
    assert "No eval set given" in page and "No blocking problems" in page


def _cli(args):
    from tunewise.cli import app

    return CliRunner().invoke(app, args)


def test_cli_exit_codes_and_json(tmp_path, tiny_model_dir):
    clean = _write(tmp_path / "clean.jsonl", [_row(f"cannot log in to workspace {i} since the update {i * 3}", "account-access") for i in range(15)])
    ok = _cli(["data", "audit", str(clean), "--model", str(tiny_model_dir)])
    assert ok.exit_code == 0, ok.output
    assert "readiness" in ok.output

    evals = _write(tmp_path / "eval.jsonl", [_row("cannot log in to workspace 4 since the update 12", "account-access")])
    leaked = _cli(["data", "audit", str(clean), "--eval", str(evals), "--model", str(tiny_model_dir), "--json"])
    assert leaked.exit_code == 1
    payload = json.loads(leaked.stdout)
    assert payload["passed"] is False and payload["summary"]["contamination"]["eval_rows_affected"] == 1
    assert payload["details"]["contamination"][0]["train_line"] == 5

    broken = _write(tmp_path / "broken.jsonl", [_row("fine row one about billing", "billing"), '{"messages": []}'])
    html_path = tmp_path / "out" / "audit.html"
    bad = _cli(["data", "audit", str(broken), "--model", str(tiny_model_dir), "--html", str(html_path)])
    assert bad.exit_code == 1 and html_path.is_file()


def test_cli_help_has_examples():
    result = _cli(["data", "audit", "--help"])
    assert result.exit_code == 0 and "Example" in result.output


def test_a_big_file_counts_tokens_in_a_helper_process_with_the_same_result(sample_audit, tiny_model_dir, monkeypatch):
    from tunewise.data import audit_scan as audit_module
    from tunewise.data.helper_process import HelperProcess
    from tunewise.sample import sample_paths

    started = []
    init = HelperProcess.__init__
    monkeypatch.setattr(HelperProcess, "__init__", lambda self, target, **kw: (started.append(target), init(self, target, **kw))[1])
    monkeypatch.setattr(audit_module, "PROCESS_FROM_ROWS", 1)  # the sample counts as big
    paths = sample_paths()
    result = audit(paths["train"], eval_path=paths["eval"], annotations_path=paths["annotations"], model=str(tiny_model_dir),
                   progress=False, register=False)
    assert "tunewise.data.audit_scan:_chunk_work" in started
    for key in ("tokens", "pii", "duplicates", "contamination"):
        assert result.summary[key] == sample_audit.summary[key], key

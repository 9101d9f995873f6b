"""Import and clean (tunewise.data.clean): what is kept, what goes to quarantine and why, and that nothing is lost."""

from __future__ import annotations

import json

import pytest

from tunewise.data.clean import clean, import_dataset
from tunewise.data.formats import example_text, load_examples
from tunewise.data.quarantine import quarantine_path, read_quarantine
from tunewise.errors import DataError

TOPICS = [
    "the mobile app freezes whenever I open the settings page on my tablet",
    "please cancel the annual plan before it renews next month thanks",
    "our invoices show the wrong company name and VAT number since March",
    "export to spreadsheet drops every column after the twentieth one",
    "two factor codes arrive ten minutes late so the login times out",
    "the search box ignores accents so cafe and café give different results",
    "webhooks to our endpoint stopped firing after the maintenance window",
    "I was charged in dollars although the account is set to euros",
]


def _row(text: str, label: str = "support") -> str:
    return json.dumps({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": label}]}, ensure_ascii=False)


def _write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def dirty(tmp_path):
    """12 lines: 8 distinct tickets, an exact and a near duplicate, PII in one, 2 unreadable lines, 1 eval copy."""
    lines = [_row(t) for t in TOPICS]  # lines 1-8
    lines.append(_row(TOPICS[0].upper() + "  "))  # 9: exact duplicate of line 1 after case/space normalizing
    lines.append(_row(TOPICS[1].replace("thanks", "thank you so much")))  # 10: near duplicate of line 2
    lines.append("{not json")  # 11
    lines.append(_row("Refund to DE89 3704 0044 0532 0130 00 or mail jane.doe@example.com, call +44 20 7946 0958"))  # 12
    lines.append(_row("", "x"))  # 13: empty user content, the API refuses it
    train = _write_lines(tmp_path / "train.jsonl", lines)
    evals = _write_lines(tmp_path / "eval.jsonl", [_row(TOPICS[6]), _row("a brand new question nobody asked in training")])
    return train, evals


def test_import_writes_chat_jsonl_quarantines_bad_rows_and_registers(tmp_path, store):
    src = tmp_path / "tickets.csv"
    src.write_text("body,queue\nRefund please,billing\n,bug\nApp crashes,bug\n", encoding="utf-8")
    result = import_dataset(src, text_column="body", label_column="queue", system_prompt="Route it.")
    assert result.output == tmp_path / "tickets.chat.jsonl"
    assert (result.rows_in, result.kept, result.rejected) == (3, 2, 1)
    kept = [json.loads(line) for line in result.output.read_text().splitlines()]
    assert [e["messages"][0]["content"] for e in kept] == ["Route it.", "Route it."]
    assert [e["messages"][1]["content"] for e in kept] == ["Refund please", "App crashes"]
    [bad] = read_quarantine(result.quarantine)
    assert bad["line"] == 3 and bad["reason"].startswith("missing_content") and bad["source"] == str(src)
    dataset = store.get_dataset(result.dataset_id)
    assert dataset.rows == 2 and dataset.rejected_rows == 1


def test_import_of_a_clean_file_leaves_no_quarantine_and_refuses_to_overwrite_its_input(tmp_path):
    src = _write_lines(tmp_path / "ok.jsonl", [_row("hello")])
    result = import_dataset(src, register=False)
    assert result.quarantine is None and not quarantine_path(result.output).exists()
    with pytest.raises(DataError, match="overwrite the input"):
        import_dataset(src, src, register=False)


def test_clean_dedups_redacts_and_drops_contaminated_rows_and_loses_nothing(dirty, tmp_path):
    train, evals = dirty
    out = tmp_path / "train.clean.jsonl"
    result = clean(train, out, dedup=True, redact_pii=True, drop_contaminated=True, eval_path=evals, register=False)

    kept = [json.loads(line) for line in out.read_text().splitlines()]
    quarantined = read_quarantine(result.quarantine)
    assert result.rows_in == 13
    assert len(kept) + len(quarantined) == 13 == result.kept + result.quarantined

    by_reason = {}
    for row in quarantined:
        by_reason.setdefault(row["reason"].split(":")[0], []).append(row["line"])
    assert sorted(by_reason["duplicate"]) == [9, 10]
    assert by_reason["contaminated"] == [7]
    assert sorted(by_reason["invalid_json"] + by_reason["missing_content"]) == [11, 13]
    assert result.duplicates_removed == 2 and result.contaminated_removed == 1 and result.rejected == 2

    duplicate = next(r for r in quarantined if r["line"] == 9)
    assert duplicate["duplicate_of_line"] == 1 and duplicate["example"]["messages"][0]["content"].startswith("THE MOBILE")
    contaminated = next(r for r in quarantined if r["line"] == 7)
    assert contaminated["eval_line"] == 1 and contaminated["score"] == pytest.approx(1.0)

    texts = [example_text(e) for e in kept]
    assert TOPICS[0] in texts and TOPICS[1] in texts and TOPICS[6] not in texts
    assert "Refund to [IBAN] or mail [EMAIL], call [PHONE]" in texts
    assert result.redactions == {"iban": 1, "email": 1, "phone": 1} and result.redacted_rows == 1
    assert not any("jane.doe" in line for line in out.read_text().splitlines())


def test_redaction_reaches_every_message_and_keeps_tool_arguments_valid_json(tmp_path):
    example = {"messages": [
        {"role": "system", "content": "Escalate to ops@acme.example."},
        {"role": "user", "content": [{"type": "text", "text": "I am at 203.0.113.9"}]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "notify", "arguments": json.dumps({"email": "jane.doe@example.com"})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sent"},
        {"role": "assistant", "content": "Done."},
    ]}
    src = _write_lines(tmp_path / "tools.jsonl", [json.dumps(example)])
    result = clean(src, redact_pii=True, register=False)
    [cleaned] = load_examples(result.output).examples
    assert cleaned["messages"][0]["content"] == "Escalate to [EMAIL]."
    assert cleaned["messages"][1]["content"][0]["text"] == "I am at [IP]"
    assert json.loads(cleaned["messages"][2]["tool_calls"][0]["function"]["arguments"]) == {"email": "[EMAIL]"}


def test_redaction_covers_extra_csv_columns_kept_as_metadata(tmp_path):
    src = tmp_path / "tickets.csv"
    src.write_text("text,label,customer_email\nWhere is my parcel?,shipping,ann.lee@example.com\n")
    imported = import_dataset(src, register=False)
    result = clean(imported.output, redact_pii=True, register=False)
    [example] = load_examples(result.output).examples
    assert example["metadata"] == {"customer_email": "[EMAIL]"}
    assert result.redactions == {"email": 1}


def test_clean_without_fixes_only_normalizes_and_keeps_counts(dirty, tmp_path):
    train, _ = dirty
    result = clean(train, tmp_path / "same.jsonl", register=False)
    assert (result.kept, result.rejected, result.duplicates_removed) == (11, 2, 0)


def test_drop_contaminated_needs_an_eval_set_with_rows(dirty, tmp_path):
    train, _ = dirty
    with pytest.raises(DataError, match="--eval"):
        clean(train, tmp_path / "o.jsonl", drop_contaminated=True, register=False)
    empty = _write_lines(tmp_path / "empty_eval.jsonl", ["{broken"])
    with pytest.raises(DataError, match="empty_eval.jsonl"):
        clean(train, tmp_path / "o.jsonl", drop_contaminated=True, eval_path=empty, register=False)


def test_a_second_run_replaces_the_previous_quarantine(dirty, tmp_path):
    train, evals = dirty
    out = tmp_path / "c.jsonl"
    clean(train, out, dedup=True, register=False)
    clean(train, out, dedup=True, register=False)
    assert len(read_quarantine(quarantine_path(out))) == 4  # 2 duplicates + 2 unreadable, not twice that

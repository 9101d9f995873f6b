"""PII detection (tunewise.data.pii) measured on two labeled sets: the one the rules were written against and a
held-out one written without looking at them. Hard negatives (order numbers, dates, versions) must stay unflagged.

Run `python -c "from tunewise.data.pii import evaluate_pii; print(evaluate_pii('tests/assets/pii_heldout.jsonl'))"`
for the full table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunewise.data.pii import PII_TYPES, evaluate_pii, find_pii, redact

ASSETS = Path(__file__).parent.parent / "assets"
LABELED = ASSETS / "pii_testset.jsonl"
HELD_OUT = ASSETS / "pii_heldout.jsonl"
CHECKSUM_BACKED = ("card", "iban")


def _snippets(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def labeled():
    return evaluate_pii(LABELED)


@pytest.fixture(scope="module")
def held_out():
    return evaluate_pii(HELD_OUT)


def test_the_sets_are_big_enough_and_have_hard_negatives():
    for path, size in ((LABELED, 200), (HELD_OUT, 60)):
        snippets = _snippets(path)
        assert len(snippets) >= size
        assert sum(not s["spans"] for s in snippets) >= 20  # snippets with no PII at all
        for s in snippets:  # spans are well-formed
            for span in s["spans"]:
                assert span["type"] in PII_TYPES and 0 <= span["start"] < span["end"] <= len(s["text"])


@pytest.mark.parametrize("kind", CHECKSUM_BACKED)
def test_checksum_backed_recall_is_at_least_98_percent_on_both_sets(labeled, held_out, kind):
    assert labeled[kind]["recall"] >= 0.98
    assert held_out[kind]["recall"] >= 0.98
    assert held_out[kind]["support"] >= 8


def test_labeled_set_precision_and_recall_per_type(labeled):
    for kind in PII_TYPES:
        assert labeled[kind]["precision"] >= 0.95, (kind, labeled[kind])
        assert labeled[kind]["recall"] >= 0.95, (kind, labeled[kind])


def test_held_out_precision_and_recall_floors(held_out):
    # Floors, not targets: names and addresses are found after cues only (see the pii module docstring).
    floors = {"email": (0.95, 0.95), "phone": (0.9, 0.85), "ssn": (0.9, 0.9), "ip": (0.8, 0.9),
              "name": (0.8, 0.6), "address": (0.8, 0.6), "card": (0.95, 0.98), "iban": (0.95, 0.98)}
    for kind, (precision, recall) in floors.items():
        assert held_out[kind]["precision"] >= precision, (kind, held_out[kind])
        assert held_out[kind]["recall"] >= recall, (kind, held_out[kind])
    assert held_out["micro"]["precision"] >= 0.95 and held_out["micro"]["recall"] >= 0.9


def _flagged_negatives(path):
    return [(s["text"], [m.text for m in find_pii(s["text"])]) for s in _snippets(path) if not s["spans"] and find_pii(s["text"])]


def test_hard_negatives_are_not_flagged():
    assert _flagged_negatives(LABELED) == []


def test_held_out_hard_negatives_are_rarely_flagged():
    # Known: a bare dotted quad with no version cue right before it is reported as an IP, by design
    # (see the pii module docstring): "at 10.2.3.4 in the release notes".
    flagged = _flagged_negatives(HELD_OUT)
    assert len(flagged) <= 1, flagged


@pytest.mark.parametrize("text", [
    "Order #4532-1122-9087 shipped on 2024-03-15.",
    "Upgraded to 2.14.3, build 10.0.19045.3693, still broken.",
    "Invoice INV-2024-00981, total $12,450.00, due 03/15/2025.",
    "Tracking 1Z999AA10123456784; SKU 123456789012.",
])
def test_ids_dates_prices_and_versions(text):
    assert find_pii(text) == []


def test_redact_uses_typed_placeholders():
    text = ("Mail maria.lopez+inv@contoso.es or call +33 6 12 34 56 78; card 4111-1111-1111-1111, "
            "IBAN GB82 WEST 1234 5698 7654 32, SSN 123-45-6789, from 198.51.100.7.\nBest regards,\nSofia Marchetti")
    redacted, matches = redact(text)
    assert redacted == ("Mail [EMAIL] or call [PHONE]; card [CARD], IBAN [IBAN], SSN [SSN], from [IP].\n"
                        "Best regards,\n[NAME]")
    assert [m.type for m in matches] == ["email", "phone", "card", "iban", "ssn", "ip", "name"]


def test_luhn_and_mod97_failures_are_not_reported():
    assert [m.type for m in find_pii("card 4111 1111 1111 1112")] != ["card"]
    assert find_pii("IBAN GB82 WEST 1234 5698 7654 33") == []


def test_evaluate_pii_rejects_a_malformed_set(tmp_path):
    from tunewise.errors import DataError

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x"}\n')
    with pytest.raises(DataError, match="bad.jsonl:1"):
        evaluate_pii(bad)

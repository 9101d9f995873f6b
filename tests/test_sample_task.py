"""The bundled sample task: deterministic, the right shape, and every planted problem really there."""

from __future__ import annotations

import csv
import importlib.util
import ipaddress
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tunewise.sample import LABELS, SAMPLE_DIR, SYSTEM_PROMPT, planted, sample_paths

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_sample_task.py"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _user(row: dict) -> str:
    return row["messages"][1]["content"]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + 3]) for i in range(max(1, len(words) - 2))}


def _jaccard(a: str, b: str) -> float:
    sa, sb = _shingles(a), _shingles(b)
    return len(sa & sb) / len(sa | sb)


def _luhn_ok(number: str) -> bool:
    digits = [int(c) for c in re.sub(r"\D", "", number)]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


def _iban_ok(iban: str) -> bool:
    raw = iban.replace(" ", "")
    return int("".join(str(int(c, 36)) for c in raw[4:] + raw[:4])) % 97 == 1


def _ssn_ok(ssn: str) -> bool:
    area, group, serial = ssn.split("-")
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


@pytest.fixture(scope="module")
def train():
    return _rows(sample_paths()["train"])


@pytest.fixture(scope="module")
def evalset():
    return _rows(sample_paths()["eval"])


@pytest.fixture(scope="module")
def truth():
    return planted()


def test_regenerating_gives_byte_identical_files(tmp_path):
    spec = importlib.util.spec_from_file_location("make_sample_task", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = module.write(tmp_path)
    assert module.LABELS == LABELS and module.SYSTEM_PROMPT == SYSTEM_PROMPT
    for name, path in written.items():
        assert path.read_bytes() == (SAMPLE_DIR / name).read_bytes(), name


def test_shape_counts_labels_and_size(train, evalset):
    assert len(train) >= 1800 and len(evalset) == 300
    assert len(LABELS) == 12 and len(set(LABELS)) == 12
    for row in train + evalset:
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["system", "user", "assistant"]
        assert row["messages"][0]["content"] == SYSTEM_PROMPT
        assert row["messages"][2]["content"] in LABELS
    assert set(r["messages"][2]["content"] for r in train) == set(LABELS)
    words = sorted(len(_user(r).split()) for r in train)
    assert 40 <= words[len(words) // 2] <= 70 and words[-1] <= 200
    assert sum(p.stat().st_size for p in sample_paths().values()) < 3 * 1024 * 1024
    assert "\n" not in SYSTEM_PROMPT and len(SYSTEM_PROMPT) < 300


def test_planted_pii_is_present_and_valid(train, evalset, truth):
    assert 0.06 <= len(truth["train"]["pii"]) / len(train) <= 0.10
    assert 0.01 <= len(truth["eval"]["pii"]) / len(evalset) <= 0.03
    seen = Counter()
    for rows, entries in ((train, truth["train"]["pii"]), (evalset, truth["eval"]["pii"])):
        for entry in entries:
            text = _user(rows[entry["line"] - 1])
            for item in entry["items"]:
                value, kind = item["text"], item["type"]
                seen[kind] += 1
                assert value in text, (entry["line"], value)
                if kind == "card":
                    assert _luhn_ok(value) and 13 <= len(re.sub(r"\D", "", value)) <= 19
                elif kind == "iban":
                    assert _iban_ok(value)
                elif kind == "ssn":
                    assert _ssn_ok(value)
                elif kind == "ip":
                    ipaddress.ip_address(value)
                elif kind == "email":
                    assert re.fullmatch(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", value)
                elif kind == "phone":
                    assert len(re.sub(r"\D", "", value)) >= 9
    assert set(seen) == {"email", "phone", "card", "iban", "ssn", "ip", "name", "address"}


def test_planted_duplicates_and_contamination(train, evalset, truth):
    near, exact = truth["train"]["near_duplicates"], truth["train"]["exact_duplicates"]
    assert 0.02 <= len(near) / len(train) <= 0.04 and 0.005 <= len(exact) / len(train) <= 0.015
    for entry in near:
        a, b = _user(train[entry["line"] - 1]), _user(train[entry["copies"] - 1])
        assert _norm(a) != _norm(b) and _jaccard(a, b) > 0.4
    for entry in exact:
        assert entry["line"] != entry["copies"]
        assert _norm(_user(train[entry["line"] - 1])) == _norm(_user(train[entry["copies"] - 1]))
    assert len(truth["train"]["contamination"]) == 5
    for entry in truth["train"]["contamination"]:
        assert _jaccard(_user(train[entry["train_line"] - 1]), _user(evalset[entry["eval_line"] - 1])) > 0.4


def test_no_unplanted_duplicates_or_overlap(train, evalset, truth):
    planted_exact = {e["line"] for e in truth["train"]["exact_duplicates"]}
    first_seen: dict[str, int] = {}
    for n, row in enumerate(train, 1):
        key = _norm(_user(row))
        if key in first_seen:
            assert n in planted_exact or first_seen[key] in planted_exact, n
        else:
            first_seen[key] = n
    eval_norm = {_norm(_user(r)) for r in evalset}
    assert len(eval_norm) == len(evalset)
    assert not eval_norm & set(first_seen)
    # Near overlap: only the planted train rows share many shingles with an eval row.
    contaminated = {e["train_line"] for e in truth["train"]["contamination"]}
    eval_sets = [_shingles(_user(r)) for r in evalset]
    index: dict[tuple, list[int]] = {}
    for j, sh in enumerate(eval_sets):
        for s in sh:
            index.setdefault(s, []).append(j)
    for n, row in enumerate(train, 1):
        sh = _shingles(_user(row))
        shared = Counter(j for s in sh for j in index.get(s, ()))
        best = max((k / (len(sh) + len(eval_sets[j]) - k) for j, k in shared.items()), default=0.0)
        assert (best > 0.4) == (n in contaminated), n


def test_wrong_labels_differ_from_truth(train, truth):
    wrong = truth["train"]["wrong_labels"]
    assert 0.02 <= len(wrong) / len(train) <= 0.04
    for entry in wrong:
        assert train[entry["line"] - 1]["messages"][2]["content"] == entry["given"] != entry["true"]
        assert entry["true"] in LABELS


def test_annotations_csv_is_a_realistic_export(truth):
    text = sample_paths()["annotations"].read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines(keepends=True)))
    assert list(rows[0]) == ["ticket_id", "text", "label", "annotator_1", "annotator_2", "annotator_3"]
    assert 250 <= len(rows) <= 350
    assert any("\n" in r["text"] for r in rows)
    assert any(any(ord(c) > 0x2000 for c in r["text"]) for r in rows)  # emoji, curly quotes
    assert any(any(0x80 <= ord(c) < 0x250 for c in r["text"]) for r in rows)  # accented letters
    pairs = [("annotator_1", "annotator_2"), ("annotator_1", "annotator_3"), ("annotator_2", "annotator_3")]
    agreement = [sum(r[a] == r[b] for r in rows) / len(rows) for a, b in pairs]
    assert all(0.8 <= x <= 0.92 for x in agreement)
    assert abs(sum(agreement) / 3 - truth["annotations"]["mean_pairwise_agreement"]) < 1e-3
    assert {r["annotator_1"] for r in rows} <= set(LABELS)


def test_data_card_reports_the_planted_counts(truth):
    card = sample_paths()["card"].read_text(encoding="utf-8")
    for label in LABELS:
        assert f"| {label} |" in card
    assert f"| rows with PII | {len(truth['train']['pii'])} | {len(truth['eval']['pii'])} |" in card
    assert f"| {len(truth['train']['wrong_labels'])} |" in card
    assert "make_sample_task.py" in card

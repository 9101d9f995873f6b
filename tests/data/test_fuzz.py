"""Property tests: whatever bytes or JSON a user hands us, import and clean never crash and lose no row."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunewise.data.clean import clean, import_dataset
from tunewise.data.pii import find_pii, redact
from tunewise.data.quarantine import read_quarantine

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW = settings(SETTINGS, max_examples=30)  # each example runs every pass of clean

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
roles = st.sampled_from(["user", "assistant", "system", "tool", "function", "bot", None, 3])
messages = st.lists(
    st.fixed_dictionaries({"role": roles}, optional={"content": json_values | st.text(max_size=40), "weight": json_values,
                                                     "tool_calls": json_values, "name": json_values}),
    max_size=4,
)
chat_like = st.fixed_dictionaries({"messages": messages}, optional={"tools": json_values, "extra": json_values})
json_lines = st.lists(st.one_of(chat_like.map(json.dumps), json_values.map(json.dumps), st.text(max_size=30)), max_size=12)


def _physical_rows(data: bytes) -> int:
    """Rows a line reader sees in a .jsonl file: lines split on \\n, without a trailing empty one."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return len(data.split(b"\n")) - (1 if data.endswith(b"\n") or not data else 0)


def _kept_and_quarantined(path: Path, **options) -> tuple[int, int, int]:
    with tempfile.TemporaryDirectory() as out:
        result = import_dataset(path, Path(out) / "out.jsonl", register=False, **options)
        kept = len(result.output.read_bytes().splitlines())
        quarantined = len(read_quarantine(result.quarantine)) if result.quarantine else 0
        assert (kept, quarantined) == (result.kept, result.rejected)
        return kept, quarantined, result.rows_in


@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes_as_chat_jsonl(tmp_path, data):
    path = tmp_path / "random.jsonl"
    path.write_bytes(data)
    kept, quarantined, rows_in = _kept_and_quarantined(path, format="chat")
    assert kept + quarantined == rows_in
    assert rows_in == _physical_rows(data)


@SETTINGS
@given(data=st.binary(max_size=400), fmt=st.sampled_from(["csv", "tsv", "jsonl-pairs", "alpaca", "sharegpt", "auto"]))
def test_random_bytes_in_any_format_never_crash(tmp_path, data, fmt):
    from tunewise.errors import DataError

    path = tmp_path / "random.data"
    path.write_bytes(data)
    try:
        kept, quarantined, rows_in = _kept_and_quarantined(path, format=fmt)
    except DataError as err:  # a whole-file problem (no text column): one line naming the file
        assert "\n" not in str(err) and str(path) in str(err)
        return
    assert kept + quarantined == rows_in


@SETTINGS
@given(lines=json_lines)
def test_random_json_lines_keep_plus_quarantine_equals_input(tmp_path, lines):
    path = tmp_path / "lines.jsonl"
    data = ("\n".join(lines) + "\n").encode("utf-8", errors="surrogatepass") if lines else b""
    path.write_bytes(data)
    kept, quarantined, rows_in = _kept_and_quarantined(path, format="chat")
    assert kept + quarantined == rows_in
    assert rows_in == _physical_rows(data)


@SLOW
@given(lines=st.lists(chat_like.map(json.dumps), min_size=1, max_size=10))
def test_clean_with_every_fix_loses_no_row(tmp_path, lines):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    evals = tmp_path / "eval.jsonl"
    evals.write_text(json.dumps({"messages": [{"role": "user", "content": "x y z"}, {"role": "assistant", "content": "a"}]}) + "\n")
    result = clean(path, tmp_path / "clean.jsonl", dedup=True, redact_pii=True, drop_contaminated=True, eval_path=evals, register=False)
    kept = len((tmp_path / "clean.jsonl").read_bytes().splitlines())
    quarantined = len(read_quarantine(result.quarantine)) if result.quarantine else 0
    assert kept + quarantined == len(lines) == result.rows_in


@SETTINGS
@given(text=st.text(max_size=300))
def test_pii_never_crashes_and_spans_are_consistent(text):
    matches = find_pii(text)
    assert all(text[m.start:m.end] == m.text for m in matches)
    assert all(a.end <= b.start for a, b in zip(matches, matches[1:]))
    redacted, again = redact(text)
    assert again == matches and (redacted == text) == (not matches)

"""Reading every supported format as OpenAI chat examples (tunewise.data.formats), and bad input that never stops a run."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from tunewise.data.formats import Problem, Record, detect_format, example_label, example_text, iter_records, load_examples
from tunewise.errors import DataError

# The same two labeled tickets in every format a team might hand us.
TICKETS = [("My card was charged twice", "billing"), ("The app crashes on login", "bug")]
SYSTEM = "Route the ticket."
EXPECTED = [{"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": label}]} for text, label in TICKETS]


def _write(path, data: str | bytes):
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def _chat_line(user="hi", assistant="hello", **extra) -> str:
    return json.dumps({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}], **extra}, ensure_ascii=False)


def _sources(tmp_path) -> dict[str, object]:
    return {
        "chat": _write(tmp_path / "t.jsonl", "\n".join(json.dumps(e) for e in EXPECTED) + "\n"),
        "chat-array": _write(tmp_path / "t_array.json", json.dumps(EXPECTED, indent=2)),
        "csv": _write(tmp_path / "t.csv", "text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in TICKETS)),
        "tsv": _write(tmp_path / "t.tsv", "text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in TICKETS)),
        "jsonl-pairs": _write(tmp_path / "pairs.jsonl", "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in TICKETS)),
        "alpaca": _write(tmp_path / "alpaca.json", json.dumps([{"instruction": t, "input": "", "output": lab} for t, lab in TICKETS])),
        "alpaca-jsonl": _write(tmp_path / "alpaca.jsonl", "".join(json.dumps({"instruction": t, "output": lab}) + "\n" for t, lab in TICKETS)),
        "sharegpt": _write(tmp_path / "sg.json", json.dumps([
            {"conversations": [{"from": "human", "value": t}, {"from": "gpt", "value": lab}]} for t, lab in TICKETS
        ])),
    }


@pytest.mark.parametrize(
    "name, fmt",
    [("chat", "chat"), ("chat-array", "chat"), ("csv", "csv"), ("tsv", "tsv"), ("jsonl-pairs", "jsonl-pairs"),
     ("alpaca", "alpaca"), ("alpaca-jsonl", "alpaca"), ("sharegpt", "sharegpt")],
)
def test_every_format_imports_to_the_same_chat_examples_and_auto_detects(tmp_path, name, fmt):
    path = _sources(tmp_path)[name]
    assert detect_format(path) == fmt
    result = load_examples(path)
    assert result.format == fmt
    assert result.problems == []
    assert result.examples == EXPECTED
    if name in ("csv", "tsv", "chat", "jsonl-pairs", "alpaca-jsonl"):  # one row per line, after a header for CSV
        assert [r.line for r in result.records] == ([2, 3] if fmt in ("csv", "tsv") else [1, 2])


@pytest.mark.parametrize("name", ["chat", "csv", "jsonl-pairs", "alpaca", "sharegpt"])
def test_system_prompt_is_added_to_every_format(tmp_path, name):
    result = load_examples(_sources(tmp_path)[name], system_prompt=SYSTEM)
    assert [e["messages"][0] for e in result.examples] == [{"role": "system", "content": SYSTEM}] * 2
    assert [e["messages"][1:] for e in result.examples] == [e["messages"] for e in EXPECTED]


def test_csv_column_options_and_other_columns_kept_as_metadata(tmp_path):
    path = _write(tmp_path / "t.csv", "id,body,queue,annotator_a,annotator_b\n7,Refund please,billing,billing,bug\n")
    [record] = load_examples(path, text_column="body", label_column="queue").records
    assert record.example["messages"] == [{"role": "user", "content": "Refund please"}, {"role": "assistant", "content": "billing"}]
    assert record.example["metadata"] == {"id": "7", "annotators": {"annotator_a": "billing", "annotator_b": "bug"}}


def test_semicolon_csv_with_bom_and_crlf(tmp_path):
    path = _write(tmp_path / "excel.csv", b"\xef\xbb\xbftext;label\r\nhello;a\r\n")
    result = load_examples(path)
    assert result.examples == [{"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "a"}]}]


def test_chat_keeps_tools_tool_calls_function_call_name_and_weight(tmp_path):
    example = {
        "messages": [
            {"role": "system", "content": "You book flights."},
            {"role": "user", "content": "Book BA117", "name": "ana"},
            {"role": "assistant", "content": None, "weight": 0, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "book", "arguments": "{\"flight\": \"BA117\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"ok\": true}"},
            {"role": "assistant", "content": "Booked.", "weight": 1},
        ],
        "tools": [{"type": "function", "function": {"name": "book", "parameters": {"type": "object"}}}],
        "parallel_tool_calls": False,
    }
    legacy = {"messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "function_call": {"name": "weather", "arguments": "{}"}},
        {"role": "function", "name": "weather", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."},
    ], "functions": [{"name": "weather", "parameters": {"type": "object"}}]}
    path = _write(tmp_path / "tools.jsonl", json.dumps(example) + "\n" + json.dumps(legacy) + "\n")
    result = load_examples(path)
    assert result.problems == []
    assert result.examples == [example, legacy]
    assert example_text(example) == "Book BA117" and example_label(example) == "Booked."


def test_sharegpt_tool_turns_become_tool_calls(tmp_path):
    row = {"conversations": [
        {"from": "human", "value": "weather in Oslo?"},
        {"from": "function_call", "value": json.dumps({"name": "weather", "arguments": {"city": "Oslo"}})},
        {"from": "observation", "value": "rain"},
        {"from": "gpt", "value": "Rain."},
    ], "tools": json.dumps([{"name": "weather", "parameters": {"type": "object"}}])}
    [example] = load_examples(_write(tmp_path / "sg.json", json.dumps([row]))).examples
    call = example["messages"][1]["tool_calls"][0]
    assert call["function"] == {"name": "weather", "arguments": '{"city": "Oslo"}'}
    assert example["messages"][2] == {"role": "tool", "content": "rain", "tool_call_id": call["id"]}
    assert example["tools"] == [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]


# -- bad input: each problem has its line, and reading goes on -----------------------------------------


def test_bom_empty_lines_invalid_json_and_cp1252_bytes_in_chat_jsonl(tmp_path):
    data = (
        b"\xef\xbb\xbf" + _chat_line("one").encode() + b"\r\n"  # BOM, CRLF
        + b"\n"  # 2: empty
        + b"   \n"  # 3: blank
        + b'{"messages": [\n'  # 4: broken JSON
        + _chat_line("caf\xe9").encode("cp1252") + b"\n"  # 5: cp1252 byte, not UTF-8
        + _chat_line("six").encode() + b"\n"
    )
    result = load_examples(_write(tmp_path / "bad.jsonl", data))
    assert [(r.line, example_text(r.example)) for r in result.records] == [(1, "one"), (6, "six")]
    reasons = {p.line: p.reason.split(":")[0] for p in result.problems}
    assert reasons == {2: "empty_line", 3: "empty_line", 4: "invalid_json", 5: "invalid_utf8"}
    assert "caf\\xe9" in next(p.raw for p in result.problems if p.line == 5)  # the raw bytes are kept, visibly


def test_csv_rows_with_missing_cells_are_rejected_with_their_line_and_the_rest_read(tmp_path):
    path = _write(tmp_path / "t.csv", "text,label\nfine,a\nno label here\n,b\nx,y,z\nalso fine,b\n")
    result = load_examples(path)
    assert [r.line for r in result.records] == [2, 6]
    assert [(p.line, p.reason.split(":")[0]) for p in result.problems] == [
        (3, "missing_label"), (4, "missing_content"), (5, "csv_shape")]


def test_csv_without_the_asked_column_is_one_error_naming_the_file_and_columns(tmp_path):
    path = _write(tmp_path / "tickets.csv", "body,queue\nhi,a\n")
    with pytest.raises(DataError) as err:
        list(iter_records(path, text_column="text"))
    message = str(err.value)
    assert "\n" not in message and "tickets.csv" in message and "'text'" in message and "'body'" in message


def test_missing_file_and_unknown_format_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="nope.jsonl: file not found"):
        iter_records(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="unknown format"):
        iter_records(_write(tmp_path / "a.jsonl", _chat_line()), format="xml")


def test_csv_mostly_utf8_with_a_cp1252_line_keeps_both_readable(tmp_path):
    data = "text,label\nhéllo wörld,a\n".encode() + "café,b\n".encode("cp1252")
    result = load_examples(_write(tmp_path / "mixed.csv", data))
    assert [example_text(e) for e in result.examples] == ["héllo wörld", "café"]
    assert any("cp1252" in note and "line 3" in note for note in result.notes)


def test_an_over_long_line_is_rejected_unread_and_memory_stays_bounded(tmp_path):
    cap = 64 * 1024
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as handle:  # a 20 MB line between two good rows, written in blocks
        handle.write(_chat_line("before").encode() + b"\n" + b'{"messages": "')
        block = b"x" * (1 << 20)
        for _ in range(20):
            handle.write(block)
        handle.write(b'"}\n' + _chat_line("after").encode() + b"\n")
    tracemalloc.start()
    try:
        result = load_examples(path, max_line_bytes=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [example_text(e) for e in result.examples] == ["before", "after"]
    [problem] = result.problems
    assert problem.line == 2 and problem.reason.startswith("line_too_long") and "20,971,5" in problem.reason
    assert len(problem.raw) < 3000  # a preview, not the line
    assert peak < 8 * (1 << 20)  # the 20 MB line never sits in memory


def test_over_long_csv_line_is_rejected(tmp_path):
    path = _write(tmp_path / "t.csv", "text,label\n" + "y" * 5000 + ",a\nok,b\n")
    result = load_examples(path, max_line_bytes=1024)
    assert [example_text(e) for e in result.examples] == ["ok"]
    assert [(p.line, p.reason.split(":")[0]) for p in result.problems] == [(2, "line_too_long")]


def test_json_array_with_a_broken_element_keeps_the_others(tmp_path):
    text = '[\n  {"instruction": "a", "output": "1"},\n  {"instruction": "b", "output": },\n  {"instruction": "c", "output": "3"}\n]\n'
    result = load_examples(_write(tmp_path / "alpaca.json", text))
    assert [example_text(e) for e in result.examples] == ["a", "c"]
    assert [(p.line, p.reason.split(":")[0]) for p in result.problems] == [(3, "invalid_json")]


def test_a_truncated_json_array_is_a_quarantined_problem_not_only_a_note(tmp_path):
    result = load_examples(_write(tmp_path / "cut.json", '[\n  {"instruction": "a", "output": "1"},\n'))
    assert [example_text(e) for e in result.examples] == ["a"]
    assert [p.reason for p in result.problems] == ["invalid_json: the JSON array is not closed with ']' (the file may be truncated)"]


def test_a_csv_header_that_cannot_be_parsed_is_one_error_with_file_and_line(tmp_path):
    with pytest.raises(DataError, match=r"bad.csv:1: the CSV header cannot be read"):
        list(iter_records(_write(tmp_path / "bad.csv", b"te\rxt,label\nhi,a\n")))


def test_a_jsonl_file_whose_first_line_is_an_array_is_still_read_line_by_line(tmp_path):
    path = _write(tmp_path / "t.jsonl", '["not", "an", "example"]\n' + _chat_line("fine") + "\n")
    assert detect_format(path) == "chat"
    result = load_examples(path)
    assert [(r.line, example_text(r.example)) for r in result.records] == [(2, "fine")]
    assert [(p.line, p.reason.split(":")[0]) for p in result.problems] == [(1, "data_type")]


def test_iter_records_streams_in_file_order(tmp_path):
    path = _write(tmp_path / "t.jsonl", _chat_line("a") + "\n{\n" + _chat_line("b") + "\n")
    items = list(iter_records(path))
    assert [type(i) for i in items] == [Record, Problem, Record]
    assert [i.line for i in items] == [1, 2, 3]

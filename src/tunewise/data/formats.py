"""Read fine-tuning data in the formats teams actually have, as OpenAI chat examples, one row at a time.

    from tunewise.data.formats import iter_records, Record, Problem
    for item in iter_records("tickets.csv", text_column="body", label_column="queue"):
        if isinstance(item, Problem):
            print(item.line, item.reason)

Formats (`format=`): `chat` (OpenAI chat JSONL, or a JSON array of chat examples), `csv` / `tsv` and
`jsonl-pairs` (a text column and an optional label column; the label becomes the assistant reply,
other columns are kept under `example["metadata"]`, annotator columns under `metadata.annotators`),
`alpaca` (instruction / input / output, JSON array or JSONL) and `sharegpt` (conversations of
from / value turns). `auto` picks one from the file's name and first bytes (`detect_format`).

Bad input never stops a run: an empty line, invalid JSON, a line that is not UTF-8, a line over
`max_line_bytes` (rejected unread, memory stays bounded) or an example the OpenAI API would refuse
becomes a `Problem(line, reason, raw)`, and reading goes on. Line numbers are physical lines
(1-based), the line where a record starts. Only whole-file problems (a missing file, a CSV without the
asked column) raise `DataError`, before the first row.

This module is the entry point, the chat JSONL hot path and format detection; the readers of JSON
arrays, alpaca and sharegpt live in `tunewise.data.json_input`, of column rows in
`tunewise.data.tabular`, and the row types they all yield in `tunewise.data.rows`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from tunewise.data.json_input import (
    JSON_LINE_SUFFIXES, converted, from_alpaca, from_chat, from_sharegpt, is_json_array, json_array_items, jsonl_items,
)
from tunewise.data.rows import (
    BOM, DEFAULT_MAX_LINE_BYTES, LoadResult, Problem, Record, RecordStream, oversized_problem, physical_lines, raw_text,
    unreadable_problem, with_system,
)
from tunewise.data.tabular import PairsFromJson, csv_rows
from tunewise.data.validate import validate_chat_example
from tunewise.errors import DataError

FORMATS = ("chat", "csv", "tsv", "jsonl-pairs", "alpaca", "sharegpt")

# -- public entry points ---------------------------------------------------------------------------


def iter_records(
    path: str | Path,
    *,
    format: str = "auto",
    text_column: str | None = None,
    label_column: str | None = None,
    system_prompt: str | None = None,
    annotator_columns: list[str] | None = None,
    max_line_bytes: int | None = None,
) -> RecordStream:
    """Stream a data file as `Record(line, example)` and `Problem(line, reason, raw)`, in file order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    fmt = detect_format(path) if format in (None, "auto") else format
    if fmt not in FORMATS:
        raise DataError(f"{path}: unknown format {format!r} (expected auto or one of {', '.join(FORMATS)})")
    limit = max_line_bytes or DEFAULT_MAX_LINE_BYTES
    notes: list[str] = []
    system = system_prompt or None
    if fmt in ("csv", "tsv"):
        rows = csv_rows(path, fmt, limit, text_column, label_column, annotator_columns, system, notes)
    elif fmt == "chat" and is_json_array(path):
        rows = converted(json_array_items(path, notes), from_chat, system)
    elif fmt == "chat":
        rows = _chat_jsonl(path, limit, system)
    else:
        items = json_array_items(path, notes) if is_json_array(path) else jsonl_items(path, limit)
        if fmt == "alpaca":
            rows = converted(items, from_alpaca, system)
        elif fmt == "sharegpt":
            rows = converted(items, from_sharegpt, system)
        else:
            rows = converted(items, PairsFromJson(text_column, label_column, annotator_columns, notes), system)
    return RecordStream(path, fmt, rows, notes)


def load_examples(path: str | Path, **options: Any) -> LoadResult:
    """All of a file at once: `LoadResult(records, problems, format, notes)` (same options as `iter_records`)."""
    stream = iter_records(path, **options)
    records: list[Record] = []
    problems: list[Problem] = []
    for item in stream:
        (records if type(item) is Record else problems).append(item)
    return LoadResult(records, problems, stream.format, stream.notes)


def detect_format(path: str | Path) -> str:
    """Guess the format of a data file from its extension and first bytes (one of `FORMATS`)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if head.startswith(BOM):
        head = head[len(BOM):]
    stripped = head.lstrip()
    if stripped[:1] == b"[" and suffix not in JSON_LINE_SUFFIXES:
        return _format_of_keys(_first_keys_in_array(stripped))
    if stripped[:1] == b"{":
        for line in head.split(b"\n")[:20]:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return _format_of_keys(set(obj))
        return _format_of_keys(_keys_in(stripped))
    if suffix in (".json", ".jsonl", ".ndjson"):
        return "chat"
    first = stripped.split(b"\n", 1)[0]
    return "tsv" if first.count(b"\t") > first.count(b",") else "csv"


def example_text(example: dict) -> str:
    """The input side of an example: its user turns, joined by newlines ('' when it has none)."""
    messages = example.get("messages") or ()
    texts = []
    for message in messages:
        if type(message) is dict and message.get("role") == "user":
            content = message.get("content")
            text = content if type(content) is str else _parts_text(content)
            if text:
                texts.append(text)
    if len(texts) == 1:
        return texts[0]
    return "\n".join(texts)


def example_label(example: dict) -> str | None:
    """The final assistant reply (text), or None when there is none or it only calls tools."""
    messages = example.get("messages") or ()
    for message in reversed(messages):
        if type(message) is dict and message.get("role") == "assistant":
            content = message.get("content")
            if type(content) is str:
                return content or None
            return _parts_text(content) or None
    return None


# -- chat JSONL: the hot path --------------------------------------------------------------------


def _chat_jsonl(path: Path, limit: int, system: str | None) -> Iterator[Record | Problem]:
    loads, decode_error, validate = orjson.loads, orjson.JSONDecodeError, validate_chat_example
    for number, line in enumerate(physical_lines(path, limit), 1):
        if type(line) is not bytes:
            yield oversized_problem(number, line, limit)
            continue
        try:
            obj = loads(line)
        except decode_error as exc:
            yield unreadable_problem(number, line, exc)
            continue
        errors = validate(obj)
        if errors:
            yield Problem(number, "; ".join(errors), raw_text(line))
            continue
        if system is not None:
            obj = with_system(obj, system)
        yield Record(number, obj)


def _parts_text(content: Any) -> str:
    if type(content) is not list:
        return ""
    return "\n".join(p["text"] for p in content if type(p) is dict and type(p.get("text")) is str)


# -- detection helpers -------------------------------------------------------------------------------


def _format_of_keys(keys: Iterable[str]) -> str:
    keys = set(keys or ())
    if "messages" in keys:
        return "chat"
    if "conversations" in keys or "conversation" in keys:
        return "sharegpt"
    if "instruction" in keys:
        return "alpaca"
    return "jsonl-pairs" if keys else "chat"


def _first_keys_in_array(head: bytes) -> set[str]:
    text = head.decode("utf-8", errors="replace")
    start = text.index("[") + 1
    start += len(text[start:]) - len(text[start:].lstrip())
    try:
        obj, _ = json.JSONDecoder().raw_decode(text, start)
        if isinstance(obj, dict):
            return set(obj)
    except json.JSONDecodeError:
        pass
    return _keys_in(head)


def _keys_in(head: bytes) -> set[str]:
    """Object keys named in the first bytes, for a first element too long to parse from the head."""
    return {key.decode() for key in re.findall(rb'"(\w+)"\s*:', head[:4096])}



def iter_json_lines(path: str | Path, *, error: type[Exception] = DataError) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a JSONL file tunewise wrote or expects verbatim.

    Unlike `iter_records` nothing is normalized or quarantined: the first bad line raises `error`
    naming the file and line, for files whose every line must be right (run outputs, training input).
    """
    with Path(path).open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise error(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            yield number, value

__all__ = [
    "Record",
    "Problem",
    "LoadResult",
    "RecordStream",
    "FORMATS",
    "DEFAULT_MAX_LINE_BYTES",
    "iter_records",
    "load_examples",
    "iter_json_lines",
    "detect_format",
    "example_text",
    "example_label",
]

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
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from tunewise.data.validate import validate_chat_example
from tunewise.errors import DataError

FORMATS = ("chat", "csv", "tsv", "jsonl-pairs", "alpaca", "sharegpt")
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
TEXT_COLUMNS = ("text", "input", "prompt", "question", "query", "message", "content", "utterance", "sentence", "ticket", "body")
LABEL_COLUMNS = ("label", "output", "completion", "answer", "response", "category", "class", "intent", "target", "reply")
ANNOTATOR_COLUMN = re.compile(r"^(annotator|rater|labeler|labeller|judge|label)[ _\-]?\w+$", re.IGNORECASE)
SHAREGPT_ROLES = {
    "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
    "bard": "assistant", "bing": "assistant", "model": "assistant", "system": "system",
    "function_call": "function_call", "observation": "tool", "tool": "tool",
}
_BOM = codecs.BOM_UTF8
_PREVIEW = 2000  # characters of an over-long line kept in its Problem
_BLOCK = 1 << 20


class Record(NamedTuple):
    """A good row: its first physical line and the OpenAI chat example it became."""

    line: int
    example: dict


class Problem(NamedTuple):
    """A rejected row: its first physical line, why (the rule, named) and what the user gave."""

    line: int
    reason: str
    raw: str


@dataclass
class LoadResult:
    records: list[Record]
    problems: list[Problem]
    format: str
    notes: list[str] = field(default_factory=list)

    @property
    def examples(self) -> list[dict]:
        return [record.example for record in self.records]


class RecordStream:
    """What `iter_records` returns: iterate it for `Record`s and `Problem`s.

    `format` is the resolved format, `notes` what the reader decided on the way (encoding fallback,
    columns used); `notes` is complete once iteration is over.
    """

    def __init__(self, path: Path, fmt: str, rows: Iterator[Record | Problem], notes: list[str]):
        self.path, self.format, self.notes = path, fmt, notes
        self._rows = rows

    def __iter__(self) -> Iterator[Record | Problem]:
        return self._rows


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
        rows = _csv_rows(path, fmt, limit, text_column, label_column, annotator_columns, system, notes)
    elif fmt == "chat" and _is_json_array(path):
        rows = _converted(_json_array_items(path, notes), _from_chat, system)
    elif fmt == "chat":
        rows = _chat_jsonl(path, limit, system)
    else:
        items = _json_array_items(path, notes) if _is_json_array(path) else _jsonl_items(path, limit)
        if fmt == "alpaca":
            rows = _converted(items, _from_alpaca, system)
        elif fmt == "sharegpt":
            rows = _converted(items, _from_sharegpt, system)
        else:
            rows = _converted(items, _PairsFromJson(text_column, label_column, annotator_columns, notes), system)
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
    if head.startswith(_BOM):
        head = head[len(_BOM):]
    stripped = head.lstrip()
    if stripped[:1] == b"[" and suffix not in _LINE_SUFFIXES:
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


class _Oversized(NamedTuple):
    head: bytes
    size: int


def _physical_lines(path: Path, limit: int) -> Iterator[bytes | _Oversized]:
    """The file's lines split on b"\\n" (without it), reading blocks; a line over `limit` bytes is never
    held whole: it comes back as `_Oversized(first bytes, size)`. A leading UTF-8 BOM is removed."""
    with open(path, "rb") as handle:
        pending = b""
        skipping: _Oversized | None = None
        first = True
        while True:
            chunk = handle.read(_BLOCK)
            if not chunk:
                break
            if first:
                first = False
                if chunk.startswith(_BOM):
                    chunk = chunk[len(_BOM):]
            if skipping is not None:
                end = chunk.find(b"\n")
                if end < 0:
                    skipping = _Oversized(skipping.head, skipping.size + len(chunk))
                    continue
                yield _Oversized(skipping.head, skipping.size + end)
                skipping = None
                chunk = chunk[end + 1:]
            data = pending + chunk if pending else chunk
            lines = data.split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield line if len(line) <= limit else _Oversized(line[:_PREVIEW], len(line))
            if len(pending) > limit:
                skipping, pending = _Oversized(pending[:_PREVIEW], len(pending)), b""
        if skipping is not None:
            yield skipping
        elif pending:
            yield pending if len(pending) <= limit else _Oversized(pending[:_PREVIEW], len(pending))


def _chat_jsonl(path: Path, limit: int, system: str | None) -> Iterator[Record | Problem]:
    loads, decode_error, validate = orjson.loads, orjson.JSONDecodeError, validate_chat_example
    for number, line in enumerate(_physical_lines(path, limit), 1):
        if type(line) is not bytes:
            yield _oversized(number, line, limit)
            continue
        try:
            obj = loads(line)
        except decode_error as exc:
            yield _unreadable(number, line, exc)
            continue
        errors = validate(obj)
        if errors:
            yield Problem(number, "; ".join(errors), _raw(line))
            continue
        if system is not None:
            obj = _with_system(obj, system)
        yield Record(number, obj)


def _oversized(number: int, line: _Oversized, limit: int) -> Problem:
    return Problem(
        number,
        f"line_too_long: {line.size:,} bytes, over the limit of {limit:,} (data.max_line_bytes); not parsed",
        _raw(line.head) + f"... [{line.size - len(line.head):,} more bytes not kept]",
    )


def _unreadable(number: int, line: bytes, exc: Exception) -> Problem:
    if not line.strip():
        return Problem(number, "empty_line: the line is empty", _raw(line))
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:
        return Problem(number, f"invalid_utf8: byte {bad.start} is not valid UTF-8 (re-save the file as UTF-8)", _raw(line))
    return Problem(number, f"invalid_json: {exc}", _raw(line))


def _raw(line: bytes) -> str:
    text = line.decode("utf-8", errors="backslashreplace")
    return text[:-1] if text.endswith("\r") else text


def _with_system(example: dict, system: str) -> dict:
    messages = example.get("messages")
    if isinstance(messages, list) and not any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
        example = {**example, "messages": [{"role": "system", "content": system}, *messages]}
    return example


def _parts_text(content: Any) -> str:
    if type(content) is not list:
        return ""
    return "\n".join(p["text"] for p in content if type(p) is dict and type(p.get("text")) is str)


# -- JSON objects from JSONL or a JSON array, then converted ----------------------------------------


def _jsonl_items(path: Path, limit: int) -> Iterator[tuple[int, Any] | Problem]:
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    for number, line in enumerate(_physical_lines(path, limit), 1):
        if type(line) is not bytes:
            yield _oversized(number, line, limit)
            continue
        try:
            yield number, loads(line)
        except decode_error as exc:
            yield _unreadable(number, line, exc)


_LINE_SUFFIXES = (".jsonl", ".ndjson")


def _is_json_array(path: Path) -> bool:
    """A file holding one JSON array, not JSON Lines: it starts with '[' and is not named .jsonl (one bad first
    line of a .jsonl file must not turn every following line into part of one broken array)."""
    return path.suffix.lower() not in _LINE_SUFFIXES and _starts_with(path, b"[")


def _starts_with(path: Path, prefix: bytes) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if head.startswith(_BOM):
        head = head[len(_BOM):]
    return head.lstrip()[:1] == prefix


def _json_array_items(path: Path, notes: list[str]) -> Iterator[tuple[int, Any] | Problem]:
    """Elements of a JSON array file with the line each starts on. An element that does not parse is a
    Problem holding its text, and reading resumes at the next element of the same indentation."""
    data = path.read_bytes()
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    # surrogateescape keeps undecodable bytes as lone surrogates, so one bad element does not sink the file.
    text = data.decode("utf-8", errors="surrogateescape")
    del data
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\r\n]*")
    index = ws.match(text, 0).end() + 1  # past "["
    line, counted = 1, 0

    def line_of(position: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, position)
        counted = position
        return line

    while True:
        index = ws.match(text, index).end()
        if index >= len(text):  # a truncated file: say so in the quarantine too, not only in a note
            notes.append(f"{path}: the JSON array is not closed with ']' (the file may be truncated)")
            yield Problem(line_of(index), "invalid_json: the JSON array is not closed with ']' (the file may be truncated)", "")
            return
        if text[index] == "]":
            rest = text[index + 1:].strip()
            if rest:
                yield Problem(line_of(index), "invalid_json: text after the closing ']'", rest[:_PREVIEW])
            return
        start = index
        try:
            obj, index = decoder.raw_decode(text, start)
        except json.JSONDecodeError as exc:
            resume = _resync(text, start, max(exc.pos, start + 1))
            chunk = text[start:resume if resume is not None else len(text)].rstrip().rstrip(",")
            yield Problem(line_of(start), f"invalid_json: {exc.msg} at line {exc.lineno} column {exc.colno}", _escape(chunk))
            if resume is None:
                return
            index = resume
            continue
        number = line_of(start)
        span = text[start:index]
        if _has_surrogates(span):
            yield Problem(number, "invalid_utf8: this element is not valid UTF-8 (re-save the file as UTF-8)", _escape(span))
        elif not isinstance(obj, (dict, list)) or _strict_json(span):
            yield number, obj
        else:  # the standard parser accepts NaN and lone surrogate escapes; the API (and orjson) do not
            yield Problem(number, "invalid_json: NaN, Infinity or an unpaired surrogate escape", span)
        index = ws.match(text, index).end()
        if index < len(text) and text[index] == ",":
            index += 1
        elif index < len(text) and text[index] != "]":
            resume = _resync(text, start, index)
            chunk = text[index:resume if resume is not None else len(text)]
            yield Problem(line_of(index), "invalid_json: expected ',' or ']' between elements", _escape(chunk))
            if resume is None:
                return
            index = resume


def _resync(text: str, start: int, after: int) -> int | None:
    """Where the next array element probably starts: a '{' at the indentation of the element at `start`."""
    line_start = text.rfind("\n", 0, start) + 1
    indent = text[line_start:start]
    if indent.strip():  # elements not one per line: resume at the next '{' preceded by ','
        found = re.compile(r",\s*\{").search(text, after)
        return found.end() - 1 if found else None
    found = re.compile(r"\n" + re.escape(indent) + r"\{").search(text, after)
    return found.end() - 1 if found else None


def _strict_json(span: str) -> bool:
    try:
        orjson.loads(span)
    except orjson.JSONDecodeError:
        return False
    return True


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _escape(text: str) -> str:
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


def _converted(
    items: Iterable[tuple[int, Any] | Problem], convert: Callable[[Any], dict | str], system: str | None
) -> Iterator[Record | Problem]:
    for item in items:
        if type(item) is Problem:
            yield item
            continue
        number, obj = item
        example = convert(obj)
        if type(example) is str:
            yield Problem(number, example, _dump(obj))
            continue
        if system is not None:
            example = _with_system(example, system)
        labeled = example.pop("_unlabeled", False) is False
        errors = validate_chat_example(example, require_assistant=labeled)
        if errors:
            yield Problem(number, "; ".join(errors), _dump(obj))
        else:
            yield Record(number, example)


def _dump(obj: Any) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, default=str)


def _from_chat(obj: Any) -> dict | str:
    return obj if type(obj) is dict else f"data_type: an example must be a JSON object, got {type(obj).__name__}"


def _from_alpaca(obj: Any) -> dict | str:
    if type(obj) is not dict:
        return f"data_type: an Alpaca example must be a JSON object, got {type(obj).__name__}"
    instruction, extra, output = obj.get("instruction"), obj.get("input") or "", obj.get("output")
    if not isinstance(instruction, str) or not instruction.strip():
        return 'alpaca_missing_instruction: no "instruction" text'
    if not isinstance(extra, str):
        return 'alpaca_input_type: "input" must be a string'
    if not isinstance(output, str) or not output.strip():
        return 'alpaca_missing_output: no "output" text'
    messages: list[dict] = []
    if isinstance(obj.get("system"), str) and obj["system"].strip():
        messages.append({"role": "system", "content": obj["system"]})
    for turn in obj.get("history") or []:
        if not (isinstance(turn, list) and len(turn) == 2 and all(isinstance(t, str) for t in turn)):
            return 'alpaca_history_shape: "history" must be a list of [question, answer] pairs'
        messages += [{"role": "user", "content": turn[0]}, {"role": "assistant", "content": turn[1]}]
    messages.append({"role": "user", "content": f"{instruction}\n\n{extra}" if extra.strip() else instruction})
    messages.append({"role": "assistant", "content": output})
    example: dict = {"messages": messages}
    metadata = {k: v for k, v in obj.items() if k not in ("instruction", "input", "output", "system", "history")}
    if metadata:
        example["metadata"] = metadata
    return example


def _from_sharegpt(obj: Any) -> dict | str:
    if type(obj) is not dict:
        return f"data_type: a ShareGPT example must be a JSON object, got {type(obj).__name__}"
    turns = obj.get("conversations", obj.get("conversation"))
    if not isinstance(turns, list) or not turns:
        return 'sharegpt_missing_conversations: no "conversations" list'
    messages: list[dict] = []
    if isinstance(obj.get("system"), str) and obj["system"].strip():
        messages.append({"role": "system", "content": obj["system"]})
    call_ids: list[str] = []
    for number, turn in enumerate(turns):
        if not isinstance(turn, dict):
            return f"sharegpt_turn_shape: turn {number} must be an object"
        speaker = turn.get("from", turn.get("role"))
        value = turn.get("value", turn.get("content"))
        role = SHAREGPT_ROLES.get(str(speaker).lower()) if speaker is not None else None
        if role is None:
            return f"unrecognized_role: turn {number} is from {speaker!r} (expected human, gpt, system, function_call or observation)"
        if not isinstance(value, str):
            return f'missing_content: turn {number} has no "value" text'
        if role == "function_call":  # LLaMA-Factory's tool-calling ShareGPT: value is {"name", "arguments"}
            try:
                call = json.loads(value)
                calls = call if isinstance(call, list) else [call]
                tool_calls = [
                    {"id": f"call_{number}_{i}", "type": "function",
                     "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}), ensure_ascii=False)}}
                    for i, c in enumerate(calls)
                ]
            except (ValueError, TypeError, KeyError):
                return f'function_call_shape: turn {number} value must be JSON with "name" and "arguments"'
            call_ids = [c["id"] for c in tool_calls]
            messages.append({"role": "assistant", "content": None, "tool_calls": tool_calls})
        elif role == "tool":
            messages.append({"role": "tool", "content": value, "tool_call_id": call_ids.pop(0) if call_ids else f"call_{number}"})
        else:
            messages.append({"role": role, "content": value})
    example: dict = {"messages": messages}
    tools = obj.get("tools")
    if isinstance(tools, str) and tools.strip():
        try:
            tools = json.loads(tools)
        except ValueError:
            return 'tools_shape: "tools" is not valid JSON'
    if tools:
        if not isinstance(tools, list):
            return 'tools_shape: "tools" must be a list of function schemas'
        example["tools"] = [t if isinstance(t, dict) and t.get("type") == "function" else {"type": "function", "function": t} for t in tools]
    metadata = {k: v for k, v in obj.items() if k not in ("conversations", "conversation", "system", "tools")}
    if metadata:
        example["metadata"] = metadata
    return example


# -- (text, label) rows: CSV, TSV and JSONL ----------------------------------------------------------


def _pick(columns: list[str], wanted: str | None, candidates: tuple[str, ...]) -> str | None:
    if wanted is not None:
        return wanted if wanted in columns else next((c for c in columns if c.strip().lower() == wanted.strip().lower()), None)
    lowered = {c.strip().lower(): c for c in columns}
    return next((lowered[c] for c in candidates if c in lowered), None)


def _resolve_columns(
    where: str, columns: list[str], text_column: str | None, label_column: str | None, annotator_columns: list[str] | None
) -> tuple[str, str | None, list[str]]:
    found = ", ".join(repr(c) for c in columns) or "none"
    text = _pick(columns, text_column, TEXT_COLUMNS)
    label = _pick(columns, label_column, LABEL_COLUMNS)
    if text_column is not None and text is None:
        raise DataError(f"{where}: missing column {text_column!r} (--text-column); columns found: {found}")
    if label_column is not None and label is None:
        raise DataError(f"{where}: missing column {label_column!r} (--label-column); columns found: {found}")
    if text is None and len(columns) == 2 and label_column is None:
        text, label = columns
    if text is None:
        raise DataError(f"{where}: no text column (tried {', '.join(TEXT_COLUMNS)}); columns found: {found}; pass --text-column")
    if annotator_columns is not None:
        missing = [c for c in annotator_columns if c not in columns]
        if missing:
            raise DataError(f"{where}: missing annotator column {missing[0]!r}; columns found: {found}")
        annotators = list(annotator_columns)
    else:
        annotators = [c for c in columns if c not in (text, label) and ANNOTATOR_COLUMN.match(c.strip())]
    return text, label, annotators


def _pair_example(row: dict, text_col: str, label_col: str | None, annotators: list[str]) -> dict | str:
    text = row.get(text_col)
    if text is None or (isinstance(text, str) and not text.strip()):
        return f"missing_content: column {text_col!r} is empty"
    if not isinstance(text, str):
        text = text if isinstance(text, (int, float)) and not isinstance(text, bool) else None
        if text is None:
            return f"content_type: column {text_col!r} must be text"
        text = str(text)
    messages = [{"role": "user", "content": text}]
    example: dict = {"messages": messages}
    if label_col is not None:
        label = row.get(label_col)
        if isinstance(label, (int, float)) and not isinstance(label, bool):
            label = str(label)
        if not isinstance(label, str) or not label.strip():
            return f"missing_label: column {label_col!r} is empty"
        messages.append({"role": "assistant", "content": label})
    else:
        example["_unlabeled"] = True
    metadata = {k: v for k, v in row.items() if k not in (text_col, label_col) and k not in annotators and v not in ("", None)}
    votes = {c: str(row[c]) for c in annotators if row.get(c) not in ("", None)}
    nested = metadata.pop("annotators", None)
    if isinstance(nested, list):
        votes.update({f"annotator_{i + 1}": str(v) for i, v in enumerate(nested) if v not in ("", None)})
    elif isinstance(nested, dict):
        votes.update({str(k): str(v) for k, v in nested.items() if v not in ("", None)})
    if votes:
        metadata["annotators"] = votes
    if metadata:
        example["metadata"] = metadata
    return example


class _PairsFromJson:
    """Converts JSONL objects of (text, label); columns are resolved from the first object."""

    def __init__(self, text_column, label_column, annotator_columns, notes):
        self.options = (text_column, label_column, annotator_columns)
        self.columns: tuple[str, str | None, list[str]] | None = None
        self.notes = notes

    def __call__(self, obj: Any) -> dict | str:
        if type(obj) is not dict:
            return f"data_type: a row must be a JSON object, got {type(obj).__name__}"
        if self.columns is None:
            self.columns = _resolve_columns("jsonl-pairs", list(obj), *self.options)
            text, label, annotators = self.columns
            self.notes.append(f"text from {text!r}, label from {label!r}" + (f", annotators from {annotators}" if annotators else ""))
        text, label, annotators = self.columns
        if text not in obj:
            return f"missing_key: no {text!r} key"
        return _pair_example(obj, text, label, annotators)


def _csv_rows(path, fmt, limit, text_column, label_column, annotator_columns, system, notes) -> Iterator[Record | Problem]:
    bad: set[int] = set()  # physical lines that did not decode or were too long
    too_long: dict[int, int] = {}
    consumed: list[str] = []  # the physical lines of the row being parsed, for its Problem

    def text_lines() -> Iterator[str]:
        # Each line is UTF-8, else Windows-1252 (what Excel writes), else rejected: deciding per line keeps
        # a UTF-8 file with a few pasted cp1252 lines intact instead of garbling every accented letter.
        legacy: list[int] = []
        for number, line in enumerate(_physical_lines(path, limit), 1):
            if type(line) is not bytes:
                too_long[number] = line.size
                text = _raw(line.head) + "..."
            else:
                if line.endswith(b"\r"):
                    line = line[:-1]
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    try:
                        text = line.decode("cp1252")
                        legacy.append(number)
                    except UnicodeDecodeError:
                        bad.add(number)
                        text = line.decode("utf-8", errors="backslashreplace")
            consumed.append(text)
            yield text + "\n"
        if legacy:
            where = ", ".join(map(str, legacy[:5])) + (", ..." if len(legacy) > 5 else "")
            notes.append(f"{path}: {len(legacy):,} lines not valid UTF-8, read as Windows-1252 (cp1252) as Excel writes them (line {where})")

    lines = text_lines()
    header_line = next(lines, None)
    if header_line is None:
        return iter(())
    # Excel in many European locales writes ';'. Pick the separator the header uses most.
    delimiter = "\t" if fmt == "tsv" else max(",;\t|", key=header_line.count)
    csv.field_size_limit(max(csv.field_size_limit(), limit))
    try:
        header = next(csv.reader([header_line], delimiter=delimiter), [])
    except csv.Error as exc:
        raise DataError(f"{path}:1: the CSV header cannot be read ({exc})") from None
    header = [h.strip() for h in header]
    consumed.clear()
    text_col, label_col, annotators = _resolve_columns(str(path), header, text_column, label_column, annotator_columns)
    notes.append(
        f"text from {text_col!r}, label from {label_col!r}" + (f", annotators from {annotators}" if annotators else "")
        + ("" if label_col else " (no label column: the examples are unlabeled inputs)")
    )
    return _csv_records(path, lines, delimiter, header, (text_col, label_col, annotators), system, limit, bad, too_long, consumed)


def _csv_records(path, lines, delimiter, header, columns, system, limit, bad, too_long, consumed) -> Iterator[Record | Problem]:
    text_col, label_col, annotators = columns
    reader = csv.reader(lines, delimiter=delimiter)
    previous = 1  # the header's line
    while True:
        start = previous + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            previous = reader.line_num + 1
            yield Problem(start, f"invalid_csv: {exc}", "\n".join(consumed))
            consumed.clear()
            continue
        previous = reader.line_num + 1
        raw = "\n".join(consumed)
        consumed.clear()
        span = range(start, previous + 1)
        if any(n in too_long for n in span):
            n = next(n for n in span if n in too_long)
            yield Problem(n, f"line_too_long: {too_long[n]:,} bytes, over the limit of {limit:,} (data.max_line_bytes); not parsed", raw)
            continue
        if any(n in bad for n in span):
            n = next(n for n in span if n in bad)
            yield Problem(start, f"invalid_utf8: line {n} is not valid UTF-8 (re-save the file as UTF-8)", raw)
            continue
        if not row or not any(cell.strip() for cell in row):
            yield Problem(start, "empty_line: the row is empty", raw)
            continue
        if len(row) > len(header):
            yield Problem(start, f"csv_shape: {len(row)} fields but the header has {len(header)} (an unquoted {delimiter!r}?)", raw)
            continue
        example = _pair_example(dict(zip(header, row + [""] * (len(header) - len(row)))), text_col, label_col, annotators)
        if type(example) is str:
            yield Problem(start, example, raw)
            continue
        example.pop("_unlabeled", None)
        if system is not None:
            example["messages"].insert(0, {"role": "system", "content": system})
        yield Record(start, example)


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

"""JSON objects from JSONL or one JSON array, converted to chat examples: chat, alpaca and sharegpt.

`json_array_items` walks a JSON array object by object (a broken object is one Problem, the rest is
read); `converted` turns each object into a chat example with a converter (`from_chat`,
`from_alpaca`, `from_sharegpt`, or the column pairs of `tunewise.data.tabular`) and validates it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from tunewise.data.rows import BOM, PREVIEW_CHARS, Problem, Record, oversized_problem, physical_lines, unreadable_problem, with_system
from tunewise.data.validate import validate_chat_example

SHAREGPT_ROLES = {
    "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
    "bard": "assistant", "bing": "assistant", "model": "assistant", "system": "system",
    "function_call": "function_call", "observation": "tool", "tool": "tool",
}


def jsonl_items(path: Path, limit: int) -> Iterator[tuple[int, Any] | Problem]:
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    for number, line in enumerate(physical_lines(path, limit), 1):
        if type(line) is not bytes:
            yield oversized_problem(number, line, limit)
            continue
        try:
            yield number, loads(line)
        except decode_error as exc:
            yield unreadable_problem(number, line, exc)


JSON_LINE_SUFFIXES = (".jsonl", ".ndjson")


def is_json_array(path: Path) -> bool:
    """A file holding one JSON array, not JSON Lines: it starts with '[' and is not named .jsonl (one bad first
    line of a .jsonl file must not turn every following line into part of one broken array)."""
    return path.suffix.lower() not in JSON_LINE_SUFFIXES and _starts_with(path, b"[")


def _starts_with(path: Path, prefix: bytes) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if head.startswith(BOM):
        head = head[len(BOM):]
    return head.lstrip()[:1] == prefix


def json_array_items(path: Path, notes: list[str]) -> Iterator[tuple[int, Any] | Problem]:
    """Elements of a JSON array file with the line each starts on. An element that does not parse is a
    Problem holding its text, and reading resumes at the next element of the same indentation."""
    data = path.read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM):]
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
                yield Problem(line_of(index), "invalid_json: text after the closing ']'", rest[:PREVIEW_CHARS])
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


def converted(
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
            example = with_system(example, system)
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


def from_chat(obj: Any) -> dict | str:
    return obj if type(obj) is dict else f"data_type: an example must be a JSON object, got {type(obj).__name__}"


def from_alpaca(obj: Any) -> dict | str:
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


def from_sharegpt(obj: Any) -> dict | str:
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

"""(text, label) rows as chat examples: CSV, TSV and JSONL pairs.

The text column becomes the user turn, the label column the assistant reply; other columns are kept
under `example["metadata"]`, annotator columns under `metadata.annotators`. Columns are picked from
the names below when not given.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Any

from tunewise.data.rows import Problem, Record, physical_lines, raw_text
from tunewise.errors import DataError

TEXT_COLUMNS = ("text", "input", "prompt", "question", "query", "message", "content", "utterance", "sentence", "ticket", "body")
LABEL_COLUMNS = ("label", "output", "completion", "answer", "response", "category", "class", "intent", "target", "reply")
ANNOTATOR_COLUMN = re.compile(r"^(annotator|rater|labeler|labeller|judge|label)[ _\-]?\w+$", re.IGNORECASE)


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


class PairsFromJson:
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


def csv_rows(path, fmt, limit, text_column, label_column, annotator_columns, system, notes) -> Iterator[Record | Problem]:
    bad: set[int] = set()  # physical lines that did not decode or were too long
    too_long: dict[int, int] = {}
    consumed: list[str] = []  # the physical lines of the row being parsed, for its Problem

    def text_lines() -> Iterator[str]:
        # Each line is UTF-8, else Windows-1252 (what Excel writes), else rejected: deciding per line keeps
        # a UTF-8 file with a few pasted cp1252 lines intact instead of garbling every accented letter.
        legacy: list[int] = []
        for number, line in enumerate(physical_lines(path, limit), 1):
            if type(line) is not bytes:
                too_long[number] = line.size
                text = raw_text(line.head) + "..."
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

"""The rows every reader yields, and the byte-level line reader they share.

`Record(line, example)` is a good row, `Problem(line, reason, raw)` a rejected one
(`tunewise.data.formats` re-exports both); `physical_lines` splits a file into lines without ever
holding an over-long one whole, and the `*_problem` helpers word the rejections the same way for
every format.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
BOM = codecs.BOM_UTF8
PREVIEW_CHARS = 2000  # characters of an over-long line kept in its Problem
BLOCK_BYTES = 1 << 20


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


class Oversized(NamedTuple):
    head: bytes
    size: int


def physical_lines(path: Path, limit: int) -> Iterator[bytes | Oversized]:
    """The file's lines split on b"\\n" (without it), reading blocks; a line over `limit` bytes is never
    held whole: it comes back as `Oversized(first bytes, size)`. A leading UTF-8 BOM is removed."""
    with open(path, "rb") as handle:
        pending = b""
        skipping: Oversized | None = None
        first = True
        while True:
            chunk = handle.read(BLOCK_BYTES)
            if not chunk:
                break
            if first:
                first = False
                if chunk.startswith(BOM):
                    chunk = chunk[len(BOM):]
            if skipping is not None:
                end = chunk.find(b"\n")
                if end < 0:
                    skipping = Oversized(skipping.head, skipping.size + len(chunk))
                    continue
                yield Oversized(skipping.head, skipping.size + end)
                skipping = None
                chunk = chunk[end + 1:]
            data = pending + chunk if pending else chunk
            lines = data.split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield line if len(line) <= limit else Oversized(line[:PREVIEW_CHARS], len(line))
            if len(pending) > limit:
                skipping, pending = Oversized(pending[:PREVIEW_CHARS], len(pending)), b""
        if skipping is not None:
            yield skipping
        elif pending:
            yield pending if len(pending) <= limit else Oversized(pending[:PREVIEW_CHARS], len(pending))


def oversized_problem(number: int, line: Oversized, limit: int) -> Problem:
    return Problem(
        number,
        f"line_too_long: {line.size:,} bytes, over the limit of {limit:,} (data.max_line_bytes); not parsed",
        raw_text(line.head) + f"... [{line.size - len(line.head):,} more bytes not kept]",
    )


def unreadable_problem(number: int, line: bytes, exc: Exception) -> Problem:
    if not line.strip():
        return Problem(number, "empty_line: the line is empty", raw_text(line))
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as bad:
        return Problem(number, f"invalid_utf8: byte {bad.start} is not valid UTF-8 (re-save the file as UTF-8)", raw_text(line))
    return Problem(number, f"invalid_json: {exc}", raw_text(line))


def raw_text(line: bytes) -> str:
    text = line.decode("utf-8", errors="backslashreplace")
    return text[:-1] if text.endswith("\r") else text


def with_system(example: dict, system: str) -> dict:
    messages = example.get("messages")
    if isinstance(messages, list) and not any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
        example = {**example, "messages": [{"role": "system", "content": system}, *messages]}
    return example



__all__ = ["DEFAULT_MAX_LINE_BYTES", "LoadResult", "Oversized", "Problem", "Record", "RecordStream", "oversized_problem", "physical_lines", "raw_text", "unreadable_problem", "with_system"]

"""Quarantine files: every row that import, clean or split rejects or removes, with why, so nothing is lost.

One JSON object per line: `line` (the physical line in the source file), `reason` (the rule, named),
then `raw` (the text the user gave, for rows that could not be read) or `example` (the parsed
example, for rows removed by a fix), plus fields that say what it collided with
(`duplicate_of_line`, `cluster`, `eval_line`, `score`). The file is created on the first write only.

    with QuarantineWriter("train.quarantine.jsonl", source="train.jsonl") as quarantine:
        quarantine.add(12, "invalid_json: ...", raw=line)
    rows = read_quarantine("train.quarantine.jsonl")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tunewise.data.formats import Problem


def quarantine_path(out: str | Path) -> Path:
    """`<stem>.quarantine.jsonl` beside `out` (for `data/tickets.chat.jsonl`: `data/tickets.chat.quarantine.jsonl`)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.quarantine.jsonl")


class QuarantineWriter:
    """Appends rejected rows to a JSONL file, opened lazily so that a clean run leaves no file behind."""

    def __init__(self, path: str | Path, *, source: str | Path | None = None):
        self.path = Path(path)
        self.source = str(source) if source is not None else None
        self.count = 0
        self.by_reason: dict[str, int] = {}
        self._handle = None
        if self.path.exists():  # a previous run's file must not mix with this one's
            self.path.unlink()

    def add(self, line: int, reason: str, *, raw: str | None = None, example: dict | None = None, **extra: Any) -> None:
        row: dict[str, Any] = {"line": line, "reason": reason}
        if self.source is not None:
            row["source"] = self.source
        row.update(extra)
        if raw is not None:
            row["raw"] = raw
        if example is not None:
            row["example"] = example
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "wb")
        self._handle.write(orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        self.count += 1
        rule = reason.split(":", 1)[0]
        self.by_reason[rule] = self.by_reason.get(rule, 0) + 1

    def add_problem(self, problem: Problem) -> None:
        self.add(problem.line, problem.reason, raw=problem.raw)

    @property
    def written(self) -> Path | None:
        """The file's path when anything was written, else None."""
        return self.path if self.count else None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "QuarantineWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def read_quarantine(path: str | Path) -> list[dict]:
    """The rows of a quarantine file ([] when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, "rb") as handle:
        return [orjson.loads(line) for line in handle if line.strip()]


__all__ = ["QuarantineWriter", "read_quarantine", "quarantine_path"]

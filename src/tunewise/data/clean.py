"""Import a data file as normalized OpenAI chat JSONL, and clean it: dedup, PII redaction, decontamination.

    from tunewise.data.clean import import_dataset, clean
    result = import_dataset("tickets.csv", text_column="body", label_column="queue")
    cleaned = clean(result.output, dedup=True, redact_pii=True, drop_contaminated=True, eval_path="eval.jsonl")

Both write every row they reject or remove to a quarantine file beside the output
(`<out stem>.quarantine.jsonl`, see `tunewise.data.quarantine`) with its line and reason, so that
kept + quarantined = rows read, always. Both register their output in the store by content hash.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tunewise.data.formats import Problem, Record, example_text, iter_records
from tunewise.data.quarantine import QuarantineWriter, quarantine_path
from tunewise.errors import DataError

KEEP_PROBLEMS = 100  # rejected rows kept on the result for display; all of them are in the quarantine file


@dataclass
class ImportResult:
    source: Path
    output: Path
    format: str
    rows_in: int
    kept: int
    rejected: int
    quarantine: Path | None
    dataset_id: str | None
    problems: list[Problem] = field(default_factory=list)
    by_reason: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class CleanResult:
    source: Path
    output: Path
    rows_in: int
    kept: int
    rejected: int  # rows that could not be read (format problems)
    duplicates_removed: int
    contaminated_removed: int
    redacted_rows: int
    redactions: dict[str, int]
    quarantine: Path | None
    dataset_id: str | None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def quarantined(self) -> int:
        return self.rejected + self.duplicates_removed + self.contaminated_removed


def default_output(source: str | Path, suffix: str) -> Path:
    """`<stem><suffix>` beside `source` (for `data/tickets.csv` and `.chat.jsonl`: `data/tickets.chat.jsonl`)."""
    source = Path(source)
    return source.with_name(source.stem + suffix)


def import_dataset(
    source: str | Path,
    output: str | Path | None = None,
    *,
    format: str = "auto",
    text_column: str | None = None,
    label_column: str | None = None,
    system_prompt: str | None = None,
    annotator_columns: list[str] | None = None,
    role: str = "train",
    max_line_bytes: int | None = None,
    register: bool = True,
    on_row: Callable[[int], None] | None = None,
) -> ImportResult:
    """Read `source` in any supported format, write normalized chat JSONL, quarantine the rest, register it."""
    source = Path(source)
    output = Path(output) if output is not None else default_output(source, ".chat.jsonl")
    _refuse_overwrite(source, output)
    stream = iter_records(
        source,
        format=format,
        text_column=text_column,
        label_column=label_column,
        system_prompt=system_prompt,
        annotator_columns=annotator_columns,
        max_line_bytes=max_line_bytes,
    )
    problems: list[Problem] = []
    kept = 0
    with QuarantineWriter(quarantine_path(output), source=source) as quarantine, _AtomicJsonl(output) as writer:
        for rows_in, item in enumerate(stream, 1):
            if type(item) is Record:
                writer.write(item.example)
                kept += 1
            else:
                quarantine.add_problem(item)
                if len(problems) < KEEP_PROBLEMS:
                    problems.append(item)
            if on_row is not None and rows_in % 10_000 == 0:
                on_row(rows_in)
    result = ImportResult(
        source=source,
        output=output,
        format=stream.format,
        rows_in=kept + quarantine.count,
        kept=kept,
        rejected=quarantine.count,
        quarantine=quarantine.written,
        dataset_id=None,
        problems=problems,
        by_reason=dict(quarantine.by_reason),
        notes=list(stream.notes),
    )
    if register:
        result.dataset_id = _register(
            output, rows=kept, rejected=quarantine.count, role=role,
            meta={"source": str(source.resolve()), "source_format": stream.format, "quarantine": _str(quarantine.written),
                  "rejected_by_reason": result.by_reason, "notes": result.notes},
        )
    return result


def clean(
    path: str | Path,
    output: str | Path | None = None,
    *,
    dedup: bool = False,
    redact_pii: bool = False,
    drop_contaminated: bool = False,
    eval_path: str | Path | None = None,
    threshold: float | None = None,
    format: str = "auto",
    max_line_bytes: int | None = None,
    role: str = "train",
    register: bool = True,
) -> CleanResult:
    """Apply the asked fixes to `path` and write the kept rows to `output` (chat JSONL).

    `dedup` keeps the first row of each exact or near duplicate cluster (by input text);
    `drop_contaminated` removes training rows that duplicate a row of `eval_path`; `redact_pii` keeps
    the row but replaces each PII match in every message with a typed placeholder. Removed rows go to
    the quarantine file with the line they duplicate.
    """
    path = Path(path)
    output = Path(output) if output is not None else default_output(path, ".clean.jsonl")
    _refuse_overwrite(path, output)
    if drop_contaminated and eval_path is None:
        raise DataError("--drop-contaminated needs the eval set: pass --eval EVAL")
    if threshold is None:
        from tunewise.data.config import DataConfig

        threshold = DataConfig().near_duplicate_threshold
    read = {"format": format, "max_line_bytes": max_line_bytes}
    notes: list[str] = []

    # Pass 1 (only when a fix compares rows): the input texts, then what to remove and why.
    removals: dict[int, tuple[str, dict[str, Any]]] = {}
    if dedup or drop_contaminated:
        texts, lines = _texts_and_lines(iter_records(path, **read))
        if drop_contaminated:
            removals.update(_contaminated(texts, lines, Path(eval_path), threshold, read, notes))
        if dedup:
            removals.update(_duplicates(texts, lines, threshold, removals))
        del texts

    redact = _redactor() if redact_pii else None
    redactions: dict[str, int] = {}
    redacted_rows = duplicates = contaminated = kept = 0
    problems: list[Problem] = []
    stream = iter_records(path, **read)
    with QuarantineWriter(quarantine_path(output), source=path) as quarantine, _AtomicJsonl(output) as writer:
        index = 0
        for item in stream:
            if type(item) is not Record:
                quarantine.add_problem(item)
                if len(problems) < KEEP_PROBLEMS:
                    problems.append(item)
                continue
            removal = removals.get(index)
            index += 1
            if removal is not None:
                reason, extra = removal
                quarantine.add(item.line, reason, example=item.example, **extra)
                if reason.startswith("duplicate"):
                    duplicates += 1
                else:
                    contaminated += 1
                continue
            example = item.example
            if redact is not None:
                example, found = _redact_example(example, redact)
                if found:
                    redacted_rows += 1
                    for kind, count in found.items():
                        redactions[kind] = redactions.get(kind, 0) + count
            writer.write(example)
            kept += 1
    notes.extend(stream.notes)
    rejected = quarantine.count - duplicates - contaminated
    result = CleanResult(
        source=path, output=output, rows_in=kept + quarantine.count, kept=kept, rejected=rejected,
        duplicates_removed=duplicates, contaminated_removed=contaminated, redacted_rows=redacted_rows,
        redactions=redactions, quarantine=quarantine.written, dataset_id=None, problems=problems, notes=notes,
    )
    if register:
        result.dataset_id = _register(
            output, rows=kept, rejected=quarantine.count, role=role, parent=path,
            meta={"cleaned_from": str(path.resolve()), "quarantine": _str(quarantine.written),
                  "fixes": {"dedup": dedup, "redact_pii": redact_pii, "drop_contaminated": drop_contaminated,
                            "eval": _str(eval_path), "threshold": threshold},
                  "removed": {"duplicates": duplicates, "contaminated": contaminated, "rejected": rejected},
                  "redactions": redactions, "redacted_rows": redacted_rows},
        )
    return result


# -- helpers shared with split ---------------------------------------------------------------------


def _texts_and_lines(stream: Iterable[Record | Problem]) -> tuple[list[str], list[int]]:
    texts: list[str] = []
    lines: list[int] = []
    for item in stream:
        if type(item) is Record:
            texts.append(example_text(item.example))
            lines.append(item.line)
    return texts, lines


def _contaminated(texts, lines, eval_path: Path, threshold: float, read: dict, notes: list[str]) -> dict[int, tuple[str, dict]]:
    from tunewise.data import dedup

    eval_stream = iter_records(eval_path, **read)
    eval_texts, eval_lines = _texts_and_lines(eval_stream)
    if not eval_texts:
        raise DataError(f"{eval_path}: no readable rows to check contamination against")
    removals: dict[int, tuple[str, dict]] = {}
    best: dict[int, Any] = {}
    for hit in dedup.contamination(texts, eval_texts, threshold):
        if hit.train_index not in best or hit.score > best[hit.train_index].score:
            best[hit.train_index] = hit
    for index, hit in best.items():
        eval_line = eval_lines[hit.eval_index]
        removals[index] = (
            f"contaminated: {hit.kind} duplicate of line {eval_line} of the eval set {eval_path.name} (Jaccard {hit.score:.2f})",
            {"eval_line": eval_line, "eval_file": str(eval_path), "score": round(float(hit.score), 4), "kind": hit.kind},
        )
    return removals


def _duplicates(texts, lines, threshold: float, already: dict) -> dict[int, tuple[str, dict]]:
    from tunewise.data import dedup

    removals: dict[int, tuple[str, dict]] = {}
    for number, cluster in enumerate(dedup.duplicate_clusters(texts, threshold)):
        members = sorted(i for i in cluster if i not in already)
        if len(members) < 2:
            continue
        keeper = members[0]
        for index in members[1:]:
            removals[index] = (
                f"duplicate: of line {lines[keeper]} (cluster {number}, kept the first)",
                {"duplicate_of_line": lines[keeper], "cluster": number},
            )
    return removals


def _redactor() -> Callable[[str], tuple[str, list]]:
    from tunewise.data.pii import redact

    return redact


def _redact_example(example: dict, redact: Callable[[str], tuple[str, list]]) -> tuple[dict, dict[str, int]]:
    """A copy of `example` with PII replaced in every message, tool-call arguments and metadata, with counts by type."""
    found: dict[str, int] = {}

    def scrub(text: str) -> str:
        new, matches = redact(text)
        for match in matches:
            kind = getattr(match, "type", None) or getattr(match, "kind", None) or "pii"
            found[kind] = found.get(kind, 0) + 1
        return new

    messages = []
    for message in example.get("messages") or ():
        message = dict(message)
        content = message.get("content")
        if isinstance(content, str) and content:
            message["content"] = scrub(content)
        elif isinstance(content, list):
            message["content"] = [
                {**part, "text": scrub(part["text"])} if isinstance(part, dict) and isinstance(part.get("text"), str) else part
                for part in content
            ]
        if isinstance(message.get("tool_calls"), list):
            message["tool_calls"] = [_scrub_call(call, scrub) for call in message["tool_calls"]]
        if isinstance(message.get("function_call"), dict):
            message["function_call"] = _scrub_function(message["function_call"], scrub)
        messages.append(message)
    # Extra CSV columns and annotator labels ride along in metadata: a customer_email column must not survive.
    metadata = _scrub_values(example["metadata"], scrub) if "metadata" in example else None
    if not found:
        return example, found
    cleaned = {**example, "messages": messages}
    if metadata is not None:
        cleaned["metadata"] = metadata
    return cleaned, found


def _scrub_values(value: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _scrub_values(item, scrub) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub_values(item, scrub) for item in value]
    return value


def _scrub_call(call: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(call, dict) and isinstance(call.get("function"), dict):
        return {**call, "function": _scrub_function(call["function"], scrub)}
    return call


def _scrub_function(function: dict, scrub: Callable[[str], str]) -> dict:
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        return function
    new = scrub(arguments)
    try:
        orjson.loads(new)  # a placeholder must not break the arguments' JSON
    except orjson.JSONDecodeError:
        return function
    return {**function, "arguments": new}


class _AtomicJsonl:
    """Writes examples to `<path>.partial`, renamed over `path` only when every row is written."""

    def __init__(self, path: Path):
        self.path = path
        self.partial = path.with_name(path.name + ".partial")

    def __enter__(self) -> "_AtomicJsonl":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.partial, "wb")
        return self

    def write(self, example: dict) -> None:
        self._handle.write(orjson.dumps(example) + b"\n")

    def __exit__(self, exc_type, *_rest) -> None:
        self._handle.close()
        if exc_type is None:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)


def _refuse_overwrite(source: Path, output: Path) -> None:
    if output.resolve() == source.resolve():
        raise DataError(f"{output}: the output would overwrite the input; pass another -o")


def _register(path: Path, *, rows: int, rejected: int, role: str, meta: dict, parent: Path | None = None) -> str:
    from tunewise.store import Store, file_hash

    store = Store.open()
    try:
        parent_id = None
        if parent is not None and parent.is_file():
            found = store.find_dataset_by_hash(file_hash(parent))
            parent_id = found.id if found is not None else None
        return store.add_dataset(path, format="chat", rows=rows, rejected_rows=rejected, role=role, parent_id=parent_id, meta=meta).id
    finally:
        store.close()


def _str(value: Any) -> str | None:
    return str(value) if value is not None else None


__all__ = ["import_dataset", "clean", "ImportResult", "CleanResult", "default_output"]

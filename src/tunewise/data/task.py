"""What kind of task a dataset is, decided once from its replies: classification, JSON or free text.

Audit, clean, split, train, evaluate and advise all ask this one function, so that they agree on a
file. Real exports carry 50-1,000 classes (intent catalogues, routing codes), so the bar is a closed,
repeating set of short labels, not a small one.

Example:
    shape = detect_task([row_reply(r) for r in rows]); shape.type, shape.n_classes, shape.reason
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from tunewise.errors import EvaluationError

MAX_CLASSES = 1000
MAX_LABEL_CHARS = 64
TASK_TYPES = ("classification", "json", "text")
MIN_PRESENT = 0.95  # share of rows that must carry a reply for a label set to be read from them
JSON_SHARE = 0.9  # share of replies that must parse as JSON for a JSON task


@dataclass(frozen=True)
class TaskShape:
    """The detected task: its type, its labels (classification) and its JSON schema, with the reason."""

    type: str  # "classification" | "json" | "text"
    labels: tuple[str, ...]  # sorted distinct labels (stripped) for classification, () otherwise
    schema: dict | None = None
    reason: str = ""  # one line a user can read: why this type was chosen

    @property
    def n_classes(self) -> int:
        return len(self.labels)


def detect_task(replies: Sequence[str | None], *, task_type: str = "auto", schema: dict | None = None) -> TaskShape:
    """Classification when replies form a closed, repeating set of short labels, JSON when they parse, else text.

    `replies` are the reference replies, one per row (None where a row has none). For a small eval
    set, pass train and eval replies together: 20 eval rows over 10 labels do not repeat on their own.
    An explicit `task_type` wins over detection.

    Example: detect_task(["billing", "refund"] * 10).type == "classification"
    """
    if task_type not in ("auto", *TASK_TYPES):
        raise EvaluationError(f"task type {task_type!r}: use one of auto, {', '.join(TASK_TYPES)}")
    present = [r.strip() for r in replies if r is not None and r.strip()]
    if task_type == "classification":
        labels = tuple(sorted(set(present)))
        if len(labels) < 2:
            raise EvaluationError("classification needs at least two distinct labels in the replies; use --task text")
        return TaskShape("classification", labels, schema, f"task type set to classification ({len(labels):,} labels)")
    if task_type == "json":
        return TaskShape("json", (), schema, "task type set to json")
    if task_type == "text":
        return TaskShape("text", (), schema, "task type set to text")
    if schema is not None:
        return TaskShape("json", (), schema, "a JSON schema was given")
    if not present:
        return TaskShape("text", (), None, "no replies to read a task from")
    labels, why_not = _label_set(present, len(replies))
    if labels:
        return TaskShape(
            "classification", labels, None,
            f"{len(labels):,} distinct short replies repeat over {len(present):,} rows: classification",
        )
    parsed = sum(parse_json(r)[0] for r in present)
    if parsed >= JSON_SHARE * len(present):
        return TaskShape("json", (), None, f"{parsed / len(present):.0%} of replies parse as JSON")
    return TaskShape("text", (), None, f"free text: {why_not}")


def _label_set(present: list[str], total: int) -> tuple[tuple[str, ...], str]:
    """(labels, "") when the replies are a closed label set, else ((), why not)."""
    if len(present) < MIN_PRESENT * total:
        return (), f"only {len(present):,} of {total:,} rows have a reply"
    counts = Counter(present)
    if len(counts) < 2:
        return (), "every reply is the same"
    if len(counts) > MAX_CLASSES:
        return (), f"{len(counts):,} distinct replies, more than {MAX_CLASSES:,} classes"
    long = next((label for label in counts if len(label) > MAX_LABEL_CHARS or "\n" in label), None)
    if long is not None:
        return (), f"replies longer than {MAX_LABEL_CHARS} characters or over several lines"
    # A closed set repeats: on average each label is used by three rows or more.
    if len(counts) > max(2, len(present) // 3):
        return (), f"{len(counts):,} distinct replies over {len(present):,} rows do not repeat enough to be labels"
    return tuple(sorted(counts)), ""


def parse_json(text: str) -> tuple[bool, object]:
    """(valid, value) for a reply that should be JSON; tolerates a ```json fence around it."""
    stripped = (text or "").strip()
    fence = re.match(r"^```(?:json)?\s*(.*?)\s*```$", stripped, re.S)
    if fence:
        stripped = fence.group(1)
    if not stripped or stripped[0] not in "[{":
        return False, None
    try:
        return True, json.loads(stripped)
    except (json.JSONDecodeError, RecursionError):
        return False, None


__all__ = ["MAX_CLASSES", "MAX_LABEL_CHARS", "TASK_TYPES", "TaskShape", "detect_task", "parse_json"]

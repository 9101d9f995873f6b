"""What is being evaluated: the rows, the task type, the label set, how replies are parsed and prompts built.

Rows are chat examples (`{"messages": [...]}`); the final assistant turn is the reference, the turns
before it are the prompt. Other formats are read through `tunewise.data.formats` when it is installed.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from tunewise.data.task import TASK_TYPES, parse_json
from tunewise.data.task import detect_task as detect_shape
from tunewise.errors import DataError

_REFUSAL = re.compile(
    r"^\s*(i'?m sorry|i am sorry|sorry,|i apologi[sz]e|i can(?:no|')t|i cannot|i am unable|i'm unable|as an ai)", re.I
)


@dataclass
class Example:
    """One eval or training row: its prompt turns, its input text and its reference reply."""

    index: int
    line: int
    messages: list[dict]  # prompt turns (everything before the final assistant reply)
    text: str  # the input side, for retrieval, contamination and reports
    reference: str | None


@dataclass
class Task:
    """The task as detected from the data: type, labels (classification) and JSON schema (structured)."""

    type: str
    labels: list[str] = field(default_factory=list)
    schema: dict | None = None
    system_prompt: str | None = None


def load_rows(path: str | Path) -> list[Example]:
    """Read a dataset into `Example`s (chat JSONL natively, other formats via `tunewise.data.formats`).

    Example: rows = load_rows("eval.jsonl"); rows[0].reference
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    from tunewise.data.formats import load_examples

    loaded = load_examples(path)
    examples = [record.example for record in loaded.records]
    lines = [record.line for record in loaded.records]
    rows = [_to_example(i, line, ex) for i, (line, ex) in enumerate(zip(lines, examples))]
    if not rows:
        raise DataError(f"{path}: no usable rows")
    return rows


def _to_example(index: int, line: int, example: dict) -> Example:
    messages = [m for m in example.get("messages", []) if isinstance(m, dict)]
    reference = None
    if messages and messages[-1].get("role") == "assistant":
        reference = _content(messages[-1])
        messages = messages[:-1]
    prompt = [{"role": m.get("role", "user"), "content": _content(m)} for m in messages if m.get("role") in ("system", "user", "assistant")]
    text = "\n".join(m["content"] for m in prompt if m["role"] == "user")
    return Example(index, line, prompt, text, reference)


def _content(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, list):  # OpenAI content parts
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def detect_task(train: list[Example] | None, eval_rows: list[Example], *, task_type: str = "auto", schema: dict | None = None) -> Task:
    """The task of train and eval replies together, decided by `tunewise.data.task.detect_task` (the one detector).

    Example: detect_task(train_rows, eval_rows).type == "classification"
    """
    refs = [r.reference for r in (train or []) + eval_rows if r.reference is not None]
    if not refs:
        raise DataError("the eval set has no reference replies (a final assistant turn in each row)")
    system = next((m["content"] for m in eval_rows[0].messages if m["role"] == "system"), None)
    shape = detect_shape(refs, task_type=task_type, schema=schema)
    return Task(shape.type, list(shape.labels), shape.schema, system)


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", (text or "").strip().strip("\"'`.").strip()).lower()


def parse_label(output: str, labels: list[str]) -> str | None:
    """Map a free-text reply to a label: exact match (case and spacing ignored), else the first label mentioned.

    Example: parse_label("Category: billing.", ["billing", "refund"]) == "billing"
    """
    norm = normalize(output)
    by_norm = {normalize(label): label for label in labels}
    if norm in by_norm:
        return by_norm[norm]
    best: tuple[int, int, str] | None = None
    low = (output or "").lower()
    for key, label in by_norm.items():
        if not key:
            continue
        match = re.search(r"(?<![\w-])" + re.escape(key) + r"(?![\w-])", low)
        if match:
            rank = (match.start(), -len(key), label)
            if best is None or rank < best:
                best = rank
    return best[2] if best else None


def is_refusal(output: str) -> bool:
    return bool(_REFUSAL.match(output or ""))


def label_instruction(labels: list[str]) -> str:
    return "Reply with exactly one of these labels and nothing else: " + ", ".join(labels) + "."


def row_system(example: Example) -> str | None:
    return next((m["content"] for m in example.messages if m["role"] == "system"), None)


def task_system_prompt(task: Task, base: str | None) -> str | None:
    """The system prompt of prompt baselines: `base` (the row's own or the configured one), plus the label list when missing."""
    system = base
    if task.type == "classification":
        mentioned = system is not None and all(label.lower() in system.lower() for label in task.labels)
        if not mentioned:
            system = ((system or "Classify the message.").rstrip() + " " + label_instruction(task.labels)).strip()
    elif task.type == "json" and task.schema is not None and (system is None or "schema" not in system.lower()):
        system = ((system or "").rstrip() + " Reply with JSON only, matching this JSON Schema: " + json.dumps(task.schema)).strip()
    return system


def user_turns(example: Example) -> list[dict]:
    return [m for m in example.messages if m["role"] != "system"]


def _shot(example: Example, max_chars: int) -> list[dict]:
    text = example.text if len(example.text) <= max_chars else example.text[: max_chars - 1] + "…"
    return [{"role": "user", "content": text}, {"role": "assistant", "content": example.reference or ""}]


def build_prompt(system: str | None, shots: list[Example], example: Example, *, shot_max_chars: int = 600) -> list[dict]:
    """Chat messages: system prompt, each shot as a user/assistant exchange, then the row's own turns."""
    messages: list[dict] = [{"role": "system", "content": system}] if system else []
    for shot in shots:
        messages.extend(_shot(shot, shot_max_chars))
    messages.extend(user_turns(example))
    return messages


def balanced_shots(train: list[Example], k: int, task: Task, *, seed: int = 0) -> list[Example]:
    """k training examples, round-robin over labels (classification) so that every label appears as evenly as k allows.

    Example: balanced_shots(train, 8, task, seed=0)
    """
    rng = random.Random(seed)
    pool = [r for r in train if r.reference is not None]
    if k <= 0 or not pool:
        return []
    if task.type != "classification":
        return rng.sample(pool, min(k, len(pool)))
    by_label: dict[str, list[Example]] = defaultdict(list)
    for row in pool:
        by_label[row.reference.strip()].append(row)
    for rows in by_label.values():
        rows.sort(key=lambda r: len(r.text))  # short, typical examples keep prompts small
        rows[:] = rows[: max(3, len(rows) // 2)]
        rng.shuffle(rows)
    order = sorted(by_label)
    rng.shuffle(order)
    picked: list[Example] = []
    round_ = 0
    while len(picked) < k and any(len(by_label[label]) > round_ for label in order):
        for label in order:
            if len(picked) < k and len(by_label[label]) > round_:
                picked.append(by_label[label][round_])
        round_ += 1
    rng.shuffle(picked)
    return picked


class Retriever:
    """TF-IDF nearest neighbours over the training inputs: the retrieval ("RAG") few-shot baseline."""

    def __init__(self, train: list[Example]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.rows = [r for r in train if r.reference is not None]
        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        self.matrix = self.vectorizer.fit_transform([r.text for r in self.rows])

    def nearest(self, texts: list[str], k: int) -> list[list[Example]]:
        """The k most similar training rows per text, least similar first (the closest sits next to the query)."""
        import numpy as np

        if k <= 0:
            return [[] for _ in texts]
        scores = (self.vectorizer.transform(texts) @ self.matrix.T).toarray()
        k = min(k, len(self.rows))
        out = []
        for row in scores:
            top = np.argsort(-row, kind="stable")[:k]
            out.append([self.rows[i] for i in top[::-1]])
        return out


__all__ = [
    "Example",
    "Task",
    "TASK_TYPES",
    "load_rows",
    "detect_task",
    "parse_label",
    "parse_json",
    "is_refusal",
    "build_prompt",
    "balanced_shots",
    "task_system_prompt",
    "Retriever",
]

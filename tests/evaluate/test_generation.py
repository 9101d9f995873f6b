"""Batched generation gives the same greedy replies as one `generate` per prompt; label stopping; specs and prompts."""

from __future__ import annotations

import pytest

from tunewise.errors import EvaluationError
from tunewise.evaluate.specs import parse_spec
from tunewise.evaluate.tasks import Example, Retriever, Task, balanced_shots, detect_task, parse_label

LABELS = ["alpha", "beta", "gamma"]
SYSTEM = "Classify the message as one of alpha, beta, gamma. Answer with the label only."


@pytest.fixture(scope="module")
def lively_model(tiny_model_dir):
    """The tiny model with larger random weights: a plain random init only ever emits newlines, which would make
    any two generation paths trivially equal."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread avoids contention with whatever else runs on the machine
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0, 0.3)
    model.eval()
    yield model, tokenizer
    torch.set_num_threads(previous)


def _prompts(n=9):
    return [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hello world " * (i % 4 + 1) + str(i)}] for i in range(n)]


@pytest.mark.parametrize("prefix_cache", [True, False])
def test_batched_equals_sequential(lively_model, prefix_cache):
    from tunewise.evaluate.generation import generate_batched, generate_sequential

    model, tokenizer = lively_model
    prompts = _prompts()
    batched = generate_batched(model, tokenizer, prompts, max_new_tokens=6, batch_size=4, prefix_cache=prefix_cache)
    sequential = generate_sequential(model, tokenizer, prompts, max_new_tokens=6)
    assert [g.text for g in batched] == [g.text for g in sequential]
    assert any(g.text for g in batched)
    assert [g.tokens_in for g in batched] == [g.tokens_in for g in sequential]
    assert {g.batch_size for g in batched} == {9}  # prefilled a few rows at a time, decoded as one group of 9


def test_decode_groups_are_bounded_by_the_cache_budget(lively_model, monkeypatch):
    from tunewise.evaluate import generation

    model, tokenizer = lively_model
    prompts = _prompts()
    whole = generation.generate_batched(model, tokenizer, prompts, max_new_tokens=6, batch_size=2)
    monkeypatch.setattr(generation, "DECODE_CACHE_BYTES", 1)  # nothing fits: groups fall back to batch_size rows
    grouped = generation.generate_batched(model, tokenizer, prompts, max_new_tokens=6, batch_size=2)
    assert [g.text for g in grouped] == [g.text for g in whole]
    assert sorted(g.batch_size for g in grouped) == [1] + [2] * 8


def test_label_stop_and_constrained_decoding(lively_model):
    from tunewise.evaluate.generation import LabelStop, generate_batched, generate_sequential

    model, tokenizer = lively_model
    stop = LabelStop(tokenizer, ["bug", "bug-report", "billing"], 0)
    assert stop.complete("billing")
    assert not stop.complete("bug")  # could still become bug-report
    assert stop.complete("bug-report")
    assert stop.complete("Category: bug.")
    assert not stop.complete("Hello")
    prompts = _prompts(5)
    batched = generate_batched(model, tokenizer, prompts, max_new_tokens=6, batch_size=3, labels=LABELS)
    sequential = generate_sequential(model, tokenizer, prompts, max_new_tokens=6, labels=LABELS)
    assert [g.text for g in batched] == [g.text for g in sequential]
    constrained = generate_batched(model, tokenizer, prompts, max_new_tokens=6, labels=LABELS, decoding="constrained")
    assert all(g.text in LABELS for g in constrained)


def test_specs_parse_and_refuse():
    spec = parse_spec("few-shot:smollm2-135m?k=4")
    assert (spec.kind, spec.target, spec.params) == ("few-shot", "smollm2-135m", {"k": 4, "decoding": "free"})
    assert parse_spec("knn-few-shot:m").name == "knn-few-shot:m?k=8"
    endpoint = parse_spec("endpoint:http://localhost:8000/v1#gpt-4o-mini")
    assert (endpoint.target, endpoint.model) == ("http://localhost:8000/v1", "gpt-4o-mini")
    for bad in ("fewshot:m", "few-shot:m?k=x", "endpoint:localhost#m", "endpoint:http://x", "classic:svm", "adapter:", "zero-shot:m?k=2"):
        with pytest.raises(EvaluationError):
            parse_spec(bad)


def _ex(i, text, ref):
    return Example(i, i + 1, [{"role": "user", "content": text}], text, ref)


def test_task_detection_labels_and_shots():
    rows = [_ex(i, f"text {i}", ["billing", "refund", "bug-report"][i % 3]) for i in range(12)]
    task = detect_task(None, rows)
    assert task.type == "classification" and task.labels == ["billing", "bug-report", "refund"]
    assert detect_task(None, [_ex(i, "q", f'{{"a": {i}}}') for i in range(5)]).type == "json"
    assert detect_task(None, [_ex(i, "q", f"a long free answer number {i}") for i in range(5)]).type == "text"
    shots = balanced_shots(rows, 6, task, seed=0)
    assert sorted(s.reference for s in shots) == ["billing", "billing", "bug-report", "bug-report", "refund", "refund"]
    assert parse_label("Category: bug-report.", task.labels) == "bug-report"
    assert parse_label("no idea", task.labels) is None
    near = Retriever(rows + [_ex(99, "my invoice was charged twice", "billing")]).nearest(["charged twice on the invoice"], 2)
    assert near[0][-1].text == "my invoice was charged twice"  # the closest example sits next to the query


def test_prefix_cache_is_used_for_a_shared_system_prompt(lively_model):
    from tunewise.evaluate.generation import MIN_SHARED_PREFIX, _shared_prefix, render_prompts

    _, tokenizer = lively_model
    ids = render_prompts(tokenizer, _prompts(3))
    assert _shared_prefix(ids) >= MIN_SHARED_PREFIX
    assert _shared_prefix([[1, 2, 3], [1, 2]]) == 1  # every row keeps a token of its own


def test_sliding_window_models_decode_with_a_dynamic_cache():
    from types import SimpleNamespace

    from tunewise.evaluate.generation import _has_sliding_layers

    def model(**config):
        return SimpleNamespace(config=SimpleNamespace(**config))

    assert not _has_sliding_layers(model(sliding_window=None, layer_types=["full_attention"] * 2))
    assert not _has_sliding_layers(model(sliding_window=4096, use_sliding_window=False))  # Qwen2's default
    assert _has_sliding_layers(model(sliding_window=4096))
    assert _has_sliding_layers(model(layer_types=["sliding_attention", "full_attention"]))


def test_one_prompt_and_one_token_match_generate(lively_model):
    from tunewise.evaluate.generation import generate_batched, generate_sequential

    model, tokenizer = lively_model
    for prompts, budget in ((_prompts(1), 6), (_prompts(5), 1)):
        batched = generate_batched(model, tokenizer, prompts, max_new_tokens=budget)
        sequential = generate_sequential(model, tokenizer, prompts, max_new_tokens=budget)
        assert [(g.text, g.tokens_out) for g in batched] == [(g.text, g.tokens_out) for g in sequential]


def test_a_sliding_window_model_gives_the_same_replies_batched(lively_model):
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from tunewise.evaluate.generation import _has_sliding_layers, generate_batched, generate_sequential

    _, tokenizer = lively_model
    config = MistralConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, sliding_window=4096,
                           eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(2)
    model = MistralForCausalLM(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0, 0.3)
    assert _has_sliding_layers(model)  # so the dynamic-cache path is the one under test
    prompts = _prompts()
    batched = generate_batched(model, tokenizer, prompts, max_new_tokens=6, batch_size=4)
    sequential = generate_sequential(model, tokenizer, prompts, max_new_tokens=6)
    assert [g.text for g in batched] == [g.text for g in sequential]
    assert any(g.text for g in batched)


def test_prefill_batches_are_the_cheapest_cut():
    import itertools
    import random

    from tunewise.evaluate.generation import PREFILL_TOKENS, _prefill_batches

    def cost(sizes, lengths, overhead):
        starts = [0, *itertools.accumulate(sizes)][:-1]
        return sum(size * lengths[start] + overhead for start, size in zip(starts, sizes))

    assert _prefill_batches([10] * 8, 4, 64) == [8]  # flat: one pass (short rows may exceed batch_size)
    assert _prefill_batches([100, 10, 10, 10], 4, 5) == [1, 3]  # steep: do not pad three rows to 100
    assert _prefill_batches([PREFILL_TOKENS] * 3, 1, 10**6) == [1, 1, 1]  # the per-pass cap holds
    rng = random.Random(0)
    for _ in range(200):
        lengths = sorted((rng.randrange(1, 300) for _ in range(rng.randrange(1, 9))), reverse=True)
        batch_size, overhead = rng.randrange(1, 5), rng.choice([0, 8, 64, 500])
        got = _prefill_batches(lengths, batch_size, overhead)
        assert sum(got) == len(lengths)
        every = [  # brute force: every way to cut the rows into batches within the cap
            [b - a for a, b in zip((0, *cuts), (*cuts, len(lengths)))]
            for r in range(len(lengths)) for cuts in itertools.combinations(range(1, len(lengths)), r)
        ]
        allowed = [sizes for sizes in every if all(
            size <= max(batch_size, PREFILL_TOKENS // lengths[start])
            for start, size in zip([0, *itertools.accumulate(sizes)], sizes))]
        assert got in allowed
        assert cost(got, lengths, overhead) == min(cost(sizes, lengths, overhead) for sizes in allowed)


def _eval_speed_bench():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "bench" / "eval_speed.py"
    spec = importlib.util.spec_from_file_location("eval_speed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("decoding", ["free", "constrained"])
def test_the_benchmarks_transformers_baselines_give_the_same_replies(lively_model, decoding):
    """bench/eval_speed.py times transformers' padded `generate` and `generate_batch` against `generate_batched`;
    its speed figures mean something only if all three answer alike."""
    from tunewise.evaluate.generation import generate_batched, render_prompts

    bench = _eval_speed_bench()
    model, tokenizer = lively_model
    ids = render_prompts(tokenizer, _prompts())
    ours = [(g.text, g.tokens_out) for g in generate_batched(
        model, tokenizer, ids, max_new_tokens=6, batch_size=4, labels=LABELS, decoding=decoding)]
    padded = bench.hf_generate_padded(model, tokenizer, ids, max_new_tokens=6, batch_size=4, labels=LABELS, decoding=decoding)
    assert padded == ours
    if decoding == "free":  # generate_batch drops custom logits processors: it cannot constrain
        assert bench.hf_generate_batch(model, tokenizer, ids, max_new_tokens=6, labels=LABELS) == ours


def test_repeated_prompts_are_prefilled_once_and_answer_as_alone(lively_model, monkeypatch):
    from tunewise.evaluate import generation
    from tunewise.evaluate.generation import RowOptions, generate_batched, generate_sequential

    model, tokenizer = lively_model
    distinct = _prompts(4)
    prompts = distinct + [distinct[1], distinct[1], distinct[3]]
    prefilled = []
    forward = model.forward

    def counting(*args, **kwargs):
        if kwargs.get("past_key_values") is None or kwargs["input_ids"].shape[1] > 1:
            prefilled.append(kwargs["input_ids"].shape[0])
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", counting)
    batched = generate_batched(model, tokenizer, prompts, max_new_tokens=6, batch_size=16, prefix_cache=False)
    monkeypatch.setattr(model, "forward", forward)
    assert sum(prefilled) == 4  # seven rows, four distinct prompts
    sequential = generate_sequential(model, tokenizer, prompts, max_new_tokens=6)
    assert [g.text for g in batched] == [g.text for g in sequential]

    # Sampled copies of one prompt still differ by seed, and each equals the same row decoded on its own.
    sampled = [RowOptions(temperature=1.0, seed=seed) for seed in (1, 2, 3)]
    together = generate_batched(model, tokenizer, [distinct[0]] * 3, max_new_tokens=6, options=sampled)
    alone = [generate_batched(model, tokenizer, [distinct[0]], max_new_tokens=6, options=[o])[0] for o in sampled]
    assert [g.text for g in together] == [g.text for g in alone]
    assert len({g.text for g in together}) > 1

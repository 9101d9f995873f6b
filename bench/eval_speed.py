"""Evaluation speed: tunewise's batched generation against transformers' own, same greedy outputs, in one run.

The sample task's eval rows with the embedded model (smollm2-135m), classification with label stopping,
exactly the prompts `tunewise eval -c CANDIDATE` sends. Methods, interleaved (A B C A B C ...) so that
the load other jobs put on these cores falls on all of them alike:

- `tunewise`: `generate_batched` (length-sorted prefill, shared-prefix KV cache, wide decode groups,
  label stopping);
- `hf-generate`: `model.generate` on left-padded batches of the same size, length-sorted (the cheap half of
  what `generate_batched` does, so the baseline is not slowed by padding alone), greedy, the same
  `LabelStop`/`LabelTrie` passed as its stopping criteria / logits processor;
- `hf-generate-batch`: `model.generate_batch` (continuous batching, paged attention). It takes no stopping
  criteria or custom logits processors, so rows run to EOS or max_new_tokens; its replies are cut where
  `LabelStop` would have stopped before they are compared (the extra tokens are part of its time);
- `sequential`: one `generate` per row (the old reference; slow, off by default).

Each method's replies are compared with the first method's (greedy should match; mismatches are counted).
Prints one JSON line per candidate and method: median wall time over the repetitions, rows/s, output
tokens/s, the 1-minute load average around each repetition.

    .venv/bin/python bench/eval_speed.py                    # 96 rows, zero-shot and few-shot k=4, 3 repetitions
    .venv/bin/python bench/eval_speed.py --rows 300 --repeats 1 --methods tunewise,sequential
    .venv/bin/python bench/eval_speed.py --candidate zero-shot:smollm2-135m --decoding constrained
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

METHODS = ("tunewise", "hf-generate", "hf-generate-batch", "sequential")
CB_PAGE_SIZE = 32  # tokens per page of generate_batch's cache (its default, 256, is longer than these prompts)


def hf_generate_padded(model, tokenizer, ids, *, max_new_tokens, batch_size, labels, decoding):
    """transformers' `generate` on left-padded, length-sorted batches; replies in input order as (text, tokens out)."""
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    from tunewise.evaluate.generation import LabelStop, LabelTrie, _decode, _generation_config

    config = _generation_config(model, tokenizer, max_new_tokens)
    device = next(model.parameters()).device
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
    replies = [None] * len(ids)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        width = max(len(ids[i]) for i in batch)
        input_ids = torch.tensor([[config.pad_token_id] * (width - len(ids[i])) + ids[i] for i in batch], device=device)
        mask = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in batch], device=device)
        kwargs = {}
        if labels and decoding == "constrained":
            kwargs["logits_processor"] = LogitsProcessorList([LabelTrie(tokenizer, labels, width, config.eos_token_id[0])])
        elif labels:
            kwargs["stopping_criteria"] = StoppingCriteriaList([LabelStop(tokenizer, labels, width)])
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids, attention_mask=mask, generation_config=config, **kwargs)
        for row, index in enumerate(batch):
            replies[index] = _decode(tokenizer, out[row, width:].tolist(), config.eos_token_id, config.pad_token_id)
    return replies


def hf_generate_batch(model, tokenizer, ids, *, max_new_tokens, labels):
    """transformers' continuous batching; each reply cut where `LabelStop` would have stopped it."""
    from transformers import ContinuousBatchingConfig

    from tunewise.evaluate.generation import PREFILL_TOKENS, LabelStop, _decode, _generation_config

    config = _generation_config(model, tokenizer, max_new_tokens)
    # Sized to the workload: left to itself on a CPU it takes 90% of the host's RAM for its paged cache (10 GB
    # resident here, and 153 s for 48 rows against 56 s for padded `generate`), and its sdpa mask spans the whole
    # cache. Small pages let rows share the prompt prefix's blocks; the batch cap is tunewise's PREFILL_TOKENS.
    pages = sum(-(-(len(row) + max_new_tokens) // CB_PAGE_SIZE) for row in ids)
    batching = ContinuousBatchingConfig(page_size=CB_PAGE_SIZE, num_blocks=pages + 1, max_batch_tokens=PREFILL_TOKENS)
    outputs = model.generate_batch(ids, generation_config=config, continuous_batching_config=batching, progress_bar=False)
    stop = LabelStop(tokenizer, labels, 0) if labels else None
    replies = []
    for i in range(len(ids)):
        tokens = outputs[f"req_{i}"].generated_tokens
        text, n = _decode(tokenizer, tokens, config.eos_token_id, config.pad_token_id)
        if stop is not None:
            cut = next((k for k in range(1, n + 1) if stop.complete(tokenizer.decode(tokens[:k], skip_special_tokens=True))), n)
            text, n = _decode(tokenizer, tokens[:cut], config.eos_token_id, config.pad_token_id)
        replies.append((text, n))
    return replies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16, help="rows per batch (eval.batch_size's default is 16)")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of each method, interleaved")
    parser.add_argument("--methods", default="tunewise,hf-generate,hf-generate-batch", help=f"comma-separated, from {METHODS}")
    parser.add_argument("--candidate", action="append",
                        help="a prompt candidate spec (repeatable); default zero-shot and few-shot:smollm2-135m?k=4")
    parser.add_argument("--decoding", choices=["free", "constrained"], default="free")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    methods = args.methods.split(",")
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {METHODS}")
    if args.decoding == "constrained" and "hf-generate-batch" in methods:
        parser.error("hf-generate-batch cannot constrain decoding (it drops custom logits processors)")

    import torch

    from tunewise.evaluate.candidates import ModelCache, prompts_for
    from tunewise.evaluate.config import EvalConfig
    from tunewise.evaluate.generation import generate_batched, generate_sequential, label_token_budget, render_prompts
    from tunewise.evaluate.specs import parse_spec
    from tunewise.evaluate.tasks import detect_task, load_rows, parse_label
    from tunewise.sample import sample_paths

    if args.threads:
        torch.set_num_threads(args.threads)
    config = EvalConfig()
    model, tokenizer = ModelCache().base("smollm2-135m")
    rows = load_rows(sample_paths()["eval"])[: args.rows]
    train = load_rows(sample_paths()["train"])
    task = detect_task(None, rows)
    budget = label_token_budget(tokenizer, task.labels, config.label_slack_tokens)
    size, labels, decoding = args.batch_size, task.labels, args.decoding

    def run(method, ids):
        if method == "tunewise":
            outs = generate_batched(model, tokenizer, ids, max_new_tokens=budget, batch_size=size, labels=labels, decoding=decoding)
            return [(g.text, g.tokens_out) for g in outs]
        if method == "hf-generate":
            return hf_generate_padded(model, tokenizer, ids, max_new_tokens=budget, batch_size=size, labels=labels, decoding=decoding)
        if method == "hf-generate-batch":
            return hf_generate_batch(model, tokenizer, ids, max_new_tokens=budget, labels=labels)
        outs = generate_sequential(model, tokenizer, ids, max_new_tokens=budget, labels=labels)
        return [(g.text, g.tokens_out) for g in outs]

    for candidate in args.candidate or ["zero-shot:smollm2-135m", "few-shot:smollm2-135m?k=4"]:
        spec = parse_spec(candidate)
        ids = render_prompts(tokenizer, prompts_for(spec, task, rows, train, config))
        walls = {m: [] for m in methods}
        loads = {m: [] for m in methods}
        replies = {}
        for rep in range(args.repeats):
            for method in methods:
                load_before, started = os.getloadavg()[0], time.perf_counter()
                replies[method] = run(method, ids)
                walls[method].append(time.perf_counter() - started)
                loads[method].append((round(load_before, 2), round(os.getloadavg()[0], 2)))
                print(f"{spec.name} rep {rep + 1} {method}: {walls[method][-1]:.1f} s, load {load_before:.2f}", flush=True)
        reference = replies[methods[0]]
        for method in methods:
            texts = [text for text, _ in replies[method]]
            tokens_out = sum(n for _, n in replies[method])
            median = statistics.median(walls[method])
            correct = sum(parse_label(t, task.labels) == (r.reference or "").strip() for t, r in zip(texts, rows))
            print(json.dumps({
                "candidate": spec.name, "method": method, "rows": len(rows), "batch_size": size, "decoding": decoding,
                "max_new_tokens": budget, "prompt_tokens_mean": round(sum(map(len, ids)) / len(ids), 1),
                "median_s": round(median, 2), "walls_s": [round(w, 2) for w in walls[method]],
                "rows_per_s": round(len(rows) / median, 2), "out_tokens_per_s": round(tokens_out / median, 2),
                "tokens_out_mean": round(tokens_out / len(rows), 2), "accuracy": round(correct / len(rows), 4),
                "mismatches_vs_" + methods[0]: sum(t != r for (t, _), (r, _) in zip(replies[method], reference)),
                "load_1min": loads[method], "threads": torch.get_num_threads(),
                "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, torch {torch.__version__}",
            }), flush=True)


if __name__ == "__main__":
    main()

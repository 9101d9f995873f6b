"""Evaluation speed: batched generation vs one `generate` call per example, same greedy outputs.

The sample task's 300 eval rows, zero-shot with the embedded model (smollm2-135m), classification
with label stopping, exactly as `tunewise eval -c zero-shot:smollm2-135m` generates them. Asserts
that both paths give identical replies, prints both times, the speed-up and the zero-shot accuracy,
with the 1-minute load average and process CPU seconds per phase (other jobs share these cores).

    .venv/bin/python bench/eval_speed.py                    # 300 rows, prefill batches of 16 and 64, torch's default threads
    .venv/bin/python bench/eval_speed.py --rows 64 --threads 1 --batch-sizes 16
    .venv/bin/python bench/eval_speed.py --batch-sizes 16 --candidate "few-shot:smollm2-135m?k=4"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--batch-sizes", default="16,64", help="comma-separated; 16 is eval.batch_size's default")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--candidate", default="zero-shot:smollm2-135m",
                        help="a prompt candidate spec, e.g. few-shot:smollm2-135m?k=4 (shots from the sample train split)")
    args = parser.parse_args()

    import torch

    from tunewise.evaluate.candidates import ModelCache, prompts_for
    from tunewise.evaluate.config import EvalConfig
    from tunewise.evaluate.generation import generate_batched, generate_sequential, label_token_budget
    from tunewise.evaluate.specs import parse_spec
    from tunewise.evaluate.tasks import detect_task, load_rows, parse_label
    from tunewise.sample import sample_paths

    if args.threads:
        torch.set_num_threads(args.threads)
    config = EvalConfig()
    batch_sizes = [int(x) for x in args.batch_sizes.split(",")]
    model, tokenizer = ModelCache().base("smollm2-135m")
    rows = load_rows(sample_paths()["eval"])[: args.rows]
    task = detect_task(None, rows)
    spec = parse_spec(args.candidate)
    train = load_rows(sample_paths()["train"]) if spec.kind != "zero-shot" else None
    prompts = prompts_for(spec, task, rows, train, config)
    budget = label_token_budget(tokenizer, task.labels, config.label_slack_tokens)

    def phase(fn):
        load_before = os.getloadavg()[0]
        cpu, wall = time.process_time(), time.perf_counter()
        out = fn()
        return out, time.perf_counter() - wall, time.process_time() - cpu, load_before, os.getloadavg()[0]

    runs = {}
    for size in batch_sizes:
        runs[size] = phase(
            lambda: generate_batched(model, tokenizer, prompts, max_new_tokens=budget, batch_size=size, labels=task.labels)
        )
        _, wall, cpu, l0, l1 = runs[size]
        print(f"batched (batch {size}): {wall:7.1f} s wall, {cpu:7.1f} s CPU, load {l0:.2f} -> {l1:.2f}", flush=True)
    sequential, s_wall, s_cpu, s_l0, s_l1 = phase(
        lambda: generate_sequential(model, tokenizer, prompts, max_new_tokens=budget, labels=task.labels)
    )
    print(f"sequential:           {s_wall:7.1f} s wall, {s_cpu:7.1f} s CPU, load {s_l0:.2f} -> {s_l1:.2f}", flush=True)
    mismatches = {}
    for size, (batched, b_wall, b_cpu, b_l0, b_l1) in runs.items():
        mismatches[size] = [i for i, (b, s) in enumerate(zip(batched, sequential)) if b.text != s.text]
        correct = sum(parse_label(g.text, task.labels) == (r.reference or "").strip() for g, r in zip(batched, rows))
        result = {
            "rows": len(rows),
            "candidate": spec.name,
            "batch_size": size,
            "threads": torch.get_num_threads(),
            "max_new_tokens": budget,
            "batched_s": round(b_wall, 2),
            "sequential_s": round(s_wall, 2),
            "speedup": round(s_wall / b_wall, 2),
            "batched_cpu_s": round(b_cpu, 1),
            "sequential_cpu_s": round(s_cpu, 1),
            "cpu_speedup": round(s_cpu / b_cpu, 2),
            "identical_outputs": not mismatches[size],
            "zero_shot_accuracy": round(correct / len(rows), 4),
            "tokens_out_mean": round(sum(g.tokens_out for g in batched) / len(rows), 2),
            "load_1min": [round(b_l0, 2), round(b_l1, 2), round(s_l0, 2), round(s_l1, 2)],
            "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, torch {torch.__version__}",
        }
        print(json.dumps(result))
        print(
            f"batch {size}: speed-up {result['speedup']}x wall, {result['cpu_speedup']}x CPU (batched {b_wall:.1f} s vs "
            f"sequential {s_wall:.1f} s); zero-shot accuracy {correct}/{len(rows)}; identical outputs: {not mismatches[size]}"
        )
    bad = {size: rows_[:10] for size, rows_ in mismatches.items() if rows_}
    assert not bad, f"batched and sequential greedy outputs differ (batch size: first rows) {bad}"


if __name__ == "__main__":
    main()

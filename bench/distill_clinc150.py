"""Distillation on real data: a local teacher labels CLINC150 queries, agreement filters them, a student learns.

From `../shared/data/clinc150/train.csv` (150 intents, 100 queries each), stratified and seeded:

- the teacher's labelled data: `--shots-per-intent` queries per intent (what a team has already labelled);
- the pool: `--pool-per-intent` other queries per intent, written without their labels (the unlabelled
  backlog); their true intents are kept aside only to score the teacher afterwards;
- the test slice: `--test-per-intent` queries per intent of `test.csv`.

Then, as a user would run it:

1. `tunewise distill label pool.jsonl --teacher "knn-few-shot:smollm2-135m?k=8" --teacher-data shots.jsonl
   --samples 3 --min-agreement 0.67` (the teacher served on loopback by `tunewise serve`);
2. precision of the accepted rows (teacher label = true label) against no filter (every labelled row);
3. `tunewise train --data distilled/accepted.jsonl --time-budget B` (the student, recipe defaults);
4. `tunewise eval` of teacher and student on the test slice: accuracy, cost per 1k requests, time per request.

Prints one JSON object and writes it with a Markdown table to `--out`.

    .venv/bin/python bench/distill_clinc150.py --out bench/out/distill-clinc150
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150"
SYSTEM = "Classify the user's request by its intent. Answer with the intent name only."


def _stratified(path: Path, per_label: list[int], seed: int, intents: int | None = None) -> list[list[dict]]:
    """Disjoint slices of `path`'s rows: slice i holds per_label[i] rows of every intent."""
    with path.open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle)]
    by_label: dict[str, list[dict]] = {}
    for row in rows:
        by_label.setdefault(row["intent"], []).append(row)
    rng = random.Random(seed)
    slices: list[list[dict]] = [[] for _ in per_label]
    for label in sorted(by_label)[:intents]:
        items = by_label[label][:]
        rng.shuffle(items)
        start = 0
        for i, n in enumerate(per_label):
            slices[i] += items[start : start + n]
            start += n
    for part in slices:
        rng.shuffle(part)
    return slices


def _chat(row: dict, with_label: bool) -> dict:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": row["text"]}]
    if with_label:
        messages.append({"role": "assistant", "content": row["intent"]})
    return {"messages": messages}


def _write(path: Path, rows: list[dict], with_label: bool) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(_chat(row, with_label), ensure_ascii=False) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/out/distill-clinc150"))
    parser.add_argument("--teacher", default="knn-few-shot:smollm2-135m?k=8")
    parser.add_argument("--shots-per-intent", type=int, default=30)
    parser.add_argument("--pool-per-intent", type=int, default=4)
    parser.add_argument("--test-per-intent", type=int, default=2)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--min-agreement", type=float, default=0.67)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--train-minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--intents", type=int, default=None, help="Only the first N intents (a quick check of the script).")
    args = parser.parse_args()

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["TUNEWISE_HOME"] = str(out / "workspace")
    from tunewise.distill.label import label_rows
    from tunewise.evaluate import evaluate
    from tunewise.evaluate.config import EvalConfig
    from tunewise.store import Store
    from tunewise.train import TrainConfig, train
    from tunewise.workspace_init import init_workspace

    init_workspace(out / "workspace")
    shots, pool = _stratified(DATA / "train.csv", [args.shots_per_intent, args.pool_per_intent], args.seed, args.intents)
    (test,) = _stratified(DATA / "test.csv", [args.test_per_intent], args.seed, args.intents)
    shots_path = _write(out / "shots.jsonl", shots, True)
    pool_path = _write(out / "pool.jsonl", pool, False)
    test_path = _write(out / "test.jsonl", test, True)
    truth = [row["intent"] for row in pool]
    result: dict = {"teacher": args.teacher, "shots": len(shots), "pool": len(pool), "test": len(test),
                    "samples": args.samples, "min_agreement": args.min_agreement, "load1_before": round(os.getloadavg()[0], 2)}

    with Store.open() as store:
        started = time.perf_counter()
        labeled = label_rows(pool_path, teacher=args.teacher, teacher_data=shots_path, out_dir=out / "distilled",
                             samples=args.samples, min_agreement=args.min_agreement, concurrency=args.concurrency,
                             store=store, yes=True)
        result["label_seconds"] = round(time.perf_counter() - started, 1)
        result["label_counts"] = labeled.counts
        result["label_requests"] = labeled.requests
        result["label_cost_usd"] = round(labeled.cost_usd, 4)
        rows = labeled.rows
        labelled = [(r, t) for r, t in zip(rows, truth) if r["label"] is not None]
        accepted = [(r, t) for r, t in labelled if r["status"] == "accepted"]
        from tunewise.evaluate.tasks import parse_label

        labels = labeled.summary["labels"]
        greedy_right = sum(bool(r["samples"]) and parse_label(r["samples"][0], labels) == t for r, t in zip(rows, truth))
        result["teacher_pool_accuracy_greedy"] = round(greedy_right / len(rows), 4)
        result["precision_no_filter"] = round(sum(r["label"] == t for r, t in labelled) / max(1, len(labelled)), 4)
        result["precision_accepted"] = round(sum(r["label"] == t for r, t in accepted) / max(1, len(accepted)), 4)
        result["accepted_share"] = round(len(accepted) / len(rows), 4)
        result["correct_labels_kept"] = sum(r["label"] == t for r, t in accepted)
        result["wrong_labels_kept"] = sum(r["label"] != t for r, t in accepted)
        result["wrong_labels_no_filter"] = sum(r["label"] != t for r, t in labelled)

        started = time.perf_counter()
        run = train(TrainConfig(dataset=str(out / "distilled" / "accepted.jsonl"), model="smollm2-135m",
                                time_budget_minutes=args.train_minutes), store=store)
        result["student_run"] = run.id
        result["student_train_seconds"] = round(time.perf_counter() - started, 1)
        result["student_train_examples"] = (run.metrics or {}).get("train_examples")
        result["student_steps"] = (run.metrics or {}).get("steps")

        started = time.perf_counter()
        evaluated = evaluate(test_path, [args.teacher, f"adapter:{run.id}"], train_path=shots_path, baseline=args.teacher,
                             config=EvalConfig(), store=store, allow_contamination=True)  # CLINC150 repeats some queries across splits, as bench/clinc150.py
        result["eval_seconds"] = round(time.perf_counter() - started, 1)
        result["evaluation_id"] = evaluated.evaluation_id
        result["verdict"] = evaluated.verdict
        for candidate in evaluated.candidates:
            metric = candidate.metric(evaluated.primary_metric)
            ops = candidate.operations
            result.setdefault("candidates", {})[candidate.name] = {
                "accuracy": None if metric is None else round(metric.value, 4),
                "interval": None if metric is None or metric.low is None else [round(metric.low, 4), round(metric.high, 4)],
                "cost_per_1k_usd": None if ops is None else ops.cost_per_1k_usd,
                "ms_per_request": None if ops is None else ops.amortized_ms_per_request or ops.latency_p50_ms,
                "tokens_in_mean": None if ops is None else ops.tokens_in_mean,
            }
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["load1_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result, indent=2))
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

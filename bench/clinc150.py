"""Real-data benchmark: tunewise's training recipe against a plain PEFT loop on CLINC150 (150 intents), same wall time.

Imports `../shared/data/clinc150/train.csv` and a stratified 1,000-row slice of `test.csv` the way a
user would (`tunewise data import ... --text-column text --label-column intent`, no system prompt),
then for each budget in `--budgets` (minutes of training):

- recipe: `tunewise train --data train.chat.jsonl --time-budget B` (everything else chosen by the recipe);
- search: `tunewise train --data train.chat.jsonl --search --time-budget B` (with `--search`);
- plain: a hand-written PEFT loop as a careful engineer would write it first: LoRA r16 on all linear
  layers, AdamW lr 1e-3 with linear decay, batch 8 in random order, padded, stopped at B minutes;

and scores every adapter on the same 1,000 rows, label-constrained and free, in one teacher-forced pass
(`tunewise.train.heldout.score`, equal to greedy decoding by construction and by test), next to
knn-few-shot (k=8), classic:tfidf and zero-shot through `tunewise.evaluate.evaluate`. Each training arm runs in its
own process (peak RSS is per arm). Results: one JSON file per arm and a Markdown table.

    .venv/bin/python bench/clinc150.py --budgets 5,15 --out bench/out/clinc150
    .venv/bin/python bench/clinc150.py --budgets 5 --skip-baselines     # training arms only
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150"


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def prepare(out: Path, test_rows: int) -> dict[str, Path]:
    """Chat JSONL for train and a stratified test slice, through tunewise's own import."""
    from tunewise.data.clean import import_dataset

    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / "train.chat.jsonl", "test": out / "test.chat.jsonl"}
    if not paths["train"].exists():
        import_dataset(DATA / "train.csv", paths["train"], text_column="text", label_column="intent", register=False)
    if not paths["test"].exists():
        import csv

        with (DATA / "test.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        by_label: dict[str, list[dict]] = {}
        for row in rows:
            by_label.setdefault(row["intent"], []).append(row)
        rng = random.Random(0)
        per = -(-test_rows // len(by_label))
        chosen = []
        for label in sorted(by_label):
            rng.shuffle(by_label[label])
            chosen += by_label[label][:per]
        rng.shuffle(chosen)
        sliced = out / "test-slice.csv"
        with sliced.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "intent"])
            writer.writeheader()
            writer.writerows(chosen[:test_rows])
        import_dataset(sliced, paths["test"], text_column="text", label_column="intent", register=False)
    return paths


def arm_recipe(paths, budget: float, out: Path, search: bool, overrides: dict | None = None) -> dict:
    from tunewise.train import TrainConfig, train

    config = TrainConfig(dataset=str(paths["train"]), time_budget_minutes=budget, output_dir=None if search else str(out / "run"),
                         **(overrides or {}))
    started = time.perf_counter()
    if search:
        from tunewise.train.search import search as run_search

        result = run_search(config)
        run = result.winner
        extra = {"search_id": result.search_id, "trials": result.trials}
    else:
        run = train(config)
        extra = {}
    return {
        "run_id": run.id, "adapter": run.artifacts["adapter"], "wall_s": round(time.perf_counter() - started, 1),
        "train_s": run.wall_seconds, "tokens_per_s": run.metrics.get("tokens_per_second"), "steps": run.metrics.get("steps"),
        "train_tokens_per_s": run.metrics.get("train_tokens_per_second"), "time_budget": run.metrics.get("time_budget"),
        "tokens_seen": run.tokens_seen, "held_out_accuracy": run.metrics.get("eval_accuracy"),
        "still_improving": run.metrics.get("still_improving"), "recipe": json.loads(Path(run.artifacts["recipe"]).read_text()),
        **extra,
    }


def arm_plain(paths, budget: float, out: Path) -> dict:
    """The plain loop: transformers + PEFT, nothing tunewise chooses (tokenization is shared)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, get_linear_schedule_with_warmup

    from tunewise.models import load_tokenizer, materialize
    from tunewise.train.data import read_chat_jsonl, tokenize

    torch.manual_seed(0)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    started = time.perf_counter()
    tokenizer = load_tokenizer("smollm2-135m")
    examples = read_chat_jsonl(paths["train"])
    data = tokenize(examples, tokenizer, max_seq_length=256, assistant_only=True, path=paths["train"])
    model = AutoModelForCausalLM.from_pretrained(materialize("smollm2-135m"), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    order = list(range(len(data.input_ids)))
    random.Random(0).shuffle(order)
    batch = 8
    train_start = time.perf_counter()
    deadline = train_start + budget * 60
    planned = None
    scheduler = None
    real_tokens = step = 0
    model.train()
    while time.perf_counter() < deadline and (step + 1) * batch <= len(order):
        rows = order[step * batch : (step + 1) * batch]
        width = max(len(data.input_ids[i]) for i in rows)
        ids = torch.full((len(rows), width), pad)
        labels = torch.full((len(rows), width), -100)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            n = len(data.input_ids[i])
            ids[r, :n], labels[r, :n], mask[r, :n] = torch.tensor(data.input_ids[i]), torch.tensor(data.labels[i]), 1
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if scheduler is not None:
            scheduler.step()
        real_tokens += int(mask.sum())
        step += 1
        if step == 5:  # plan the linear decay over the steps that fit, from the first five measured
            per_step = (time.perf_counter() - train_start) / step
            planned = int(budget * 60 / per_step)
            scheduler = get_linear_schedule_with_warmup(optimizer, 0, max(planned - step, 1))
    train_s = time.perf_counter() - train_start
    folder = out / "adapter"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "tunewise-base.txt").write_text("smollm2-135m\n", encoding="utf-8")
    return {"adapter": str(folder), "wall_s": round(time.perf_counter() - started, 1), "train_s": round(train_s, 1),
            "tokens_per_s": round(real_tokens / train_s, 1), "steps": step, "tokens_seen": real_tokens, "planned_steps": planned}


def run_arm(name: str, budget: float, args, out: Path) -> dict:
    """One arm in its own process (its own peak RSS), result read back from JSON."""
    target = out / f"{name}-{budget:g}min"
    result_file = target / "result.json"
    if result_file.exists() and not args.rerun:
        return json.loads(result_file.read_text())
    target.mkdir(parents=True, exist_ok=True)
    before = load1()
    subprocess.run([sys.executable, __file__, "--arm", name, "--budget", str(budget), "--out", str(out)], check=True)
    result = json.loads(result_file.read_text())
    result["load1_before"], result["load1_after"] = before, load1()
    result_file.write_text(json.dumps(result, indent=2))
    return result


def score_adapter(paths, folder: str) -> dict:
    """Held-out accuracy of an adapter on the test rows in one teacher-forced pass (tunewise.train.heldout.score).

    Label-constrained accuracy from that pass equals constrained greedy decoding
    (tests/train/test_recipe.py checks it against generate_batched); exact match equals free greedy
    decoding. One pass over 1,000 rows takes a minute or two here, generation several times that.
    """
    import numpy as np

    from tunewise.train import load_trained
    from tunewise.train.data import read_chat_jsonl, stratified_subset, tokenize
    from tunewise.train.heldout import LabelTrie, label_sequences, score

    model, tokenizer = load_trained(folder)
    train_rows = read_chat_jsonl(paths["train"])
    one_per_label = list({ex.label: ex for ex in train_rows}.values())
    trie = LabelTrie(label_sequences(tokenize(one_per_label, tokenizer, max_seq_length=512, assistant_only=True, path=paths["train"]).labels))
    test = tokenize(read_chat_jsonl(paths["test"]), tokenizer, max_seq_length=512, assistant_only=True, path=paths["test"])
    started = time.perf_counter()
    result = score(model, test.input_ids, test.labels, pad_id=tokenizer.pad_token_id, trie=trie, batch_size=32)
    rng = np.random.default_rng(0)

    def interval(flags):
        values = np.array(flags, dtype=float)
        boots = values[rng.integers(0, len(values), size=(2000, len(values)))].mean(axis=1)
        return {"value": float(values.mean()), "low": float(np.percentile(boots, 2.5)), "high": float(np.percentile(boots, 97.5))}

    return {"constrained": interval(result.correct), "free": interval(result.exact), "rows": len(test.input_ids),
            "seconds": round(time.perf_counter() - started, 1)}


def evaluate_all(paths, arms: dict[str, dict], args, out: Path) -> dict:
    from tunewise.evaluate import evaluate
    from tunewise.evaluate.config import EvalConfig

    scores = {}
    for name, r in arms.items():
        cached = Path(r["adapter"]).parent / "score.json"  # each adapter is scored once, whatever later runs add
        if not cached.exists():
            cached.write_text(json.dumps(score_adapter(paths, r["adapter"]), indent=2))
        scores[name] = json.loads(cached.read_text())
    results = {"candidates": []}
    started = time.perf_counter()
    baselines = out / "baselines.json"
    if baselines.exists():
        results = json.loads(baselines.read_text())
    elif not args.skip_baselines:
        results = evaluate(paths["test"], ["knn-few-shot:smollm2-135m?k=8", "classic:tfidf", "zero-shot:smollm2-135m"],
                           train_path=paths["train"], config=EvalConfig(), allow_contamination=True).to_store()
        baselines.write_text(json.dumps(results, indent=2, default=str))
    results["_seconds"] = round(time.perf_counter() - started, 1)
    results["adapters"] = scores
    (out / "evaluation.json").write_text(json.dumps(results, indent=2, default=str))
    return results


def table(arms: dict[str, dict], evaluation: dict) -> str:
    def show(m) -> str:
        return f"{m['value']:.3f} ({m['low']:.3f}-{m['high']:.3f})" if m else "-"

    lines = ["| arm | train wall | steps | real tokens/s (training loop) | peak RSS | accuracy, label-constrained (95% CI) | accuracy, free (95% CI) |",
             "|---|---|---|---|---|---|---|"]
    for name, r in arms.items():
        s = evaluation["adapters"][name]
        speed = r.get("train_tokens_per_s") or r["tokens_per_s"]
        lines.append(f"| {name} | {r['train_s']:.0f} s | {r['steps']} | {speed} | {r.get('peak_rss_mb', 0):,.0f} MB | "
                     f"{show(s['constrained'])} | {show(s['free'])} |")
    for c in evaluation.get("candidates", []):
        m = (c.get("metrics") or {}).get("accuracy")
        lines.append(f"| {c.get('name') or c.get('spec')} | - | - | - | - | - | {show(m) if isinstance(m, dict) else m} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="5,15", help="training minutes, comma-separated")
    parser.add_argument("--arms", default="recipe,plain", help="recipe, plain, search (comma-separated); recipe:KEY=VALUE+KEY=VALUE overrides settings")
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--out", default="bench/out/clinc150")
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--rerun", action="store_true", help="train again even where a result exists")
    parser.add_argument("--arm", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    os.environ.setdefault("TUNEWISE_HOME", str(out / "workspace"))
    paths = prepare(out, args.test_rows)
    if args.arm:  # child process: one training arm
        target = out / f"{args.arm}-{args.budget:g}min"
        kind, _, settings = args.arm.partition(":")
        if kind == "plain":
            result = arm_plain(paths, args.budget, target)
        else:
            import yaml

            overrides = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in settings.split("+") if item)}
            result = arm_recipe(paths, args.budget, target, search=kind == "search", overrides=overrides)
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        (target / "result.json").write_text(json.dumps(result, indent=2))
        return 0
    arms = {}
    for budget in [float(b) for b in args.budgets.split(",")]:
        for name in args.arms.split(","):
            arms[f"{name} {budget:g} min"] = run_arm(name, budget, args, out)
            print(json.dumps({k: v for k, v in arms[f'{name} {budget:g} min'].items() if k not in ('recipe', 'trials')}), flush=True)
    evaluation = evaluate_all(paths, arms, args, out)
    text = table(arms, evaluation)
    (out / "table.md").write_text(text + "\n")
    print(text)
    print(f"evaluation {evaluation.get('evaluation_id')} in {evaluation['_seconds']} s; load {load1()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

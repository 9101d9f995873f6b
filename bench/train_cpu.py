"""CPU training benchmark: LoRA on the embedded model with the bundled sample task, as `tunewise demo` runs it.

Trains with `demo_train_config()` (overridable from the command line), then scores held-out accuracy
of the adapter and of the zero-shot base model with greedy decoding (the first label found in the
reply counts). Prints one JSON line per configuration, with the 1-minute load average before and
after each phase and the process CPU seconds of training: other jobs share this machine's cores, and
CPU seconds / cores estimates the wall time on an idle machine.

    .venv/bin/python bench/train_cpu.py                       # the demo preset
    .venv/bin/python bench/train_cpu.py --set lora_layers=8 --set max_train_examples=300
    .venv/bin/python bench/train_cpu.py --zero-shot --eval-rows 100
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_label(text: str, labels) -> str | None:
    """The label the reply names first (exact answers are the common case after fine-tuning)."""
    low = text.strip().lower()
    for label in sorted(labels, key=len, reverse=True):
        if low.startswith(label):
            return label
    hits = [(low.find(label), label) for label in labels if label in low]
    return min(hits)[1] if hits else None


def accuracy(model, tokenizer, rows, labels, *, batch_size: int = 16) -> tuple[float, float]:
    """Greedy accuracy over chat rows whose last message is the gold label; returns (accuracy, seconds)."""
    import torch

    tokenizer.padding_side = "left"
    correct = 0
    started = time.perf_counter()
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        prompts = [tokenizer.apply_chat_template(r["messages"][:-1], tokenize=False, add_generation_prompt=True) for r in batch]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        for row, seq in zip(batch, out[:, enc["input_ids"].shape[1] :]):
            reply = tokenizer.decode(seq, skip_special_tokens=True)
            correct += parse_label(reply, labels) == row["messages"][-1]["content"].strip()
    return correct / len(rows), time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a TrainConfig field (YAML value)")
    parser.add_argument("--eval-rows", type=int, default=100, help="held-out rows scored by generation")
    parser.add_argument("--zero-shot", action="store_true", help="also score the base model zero-shot")
    parser.add_argument("--no-train", action="store_true", help="only the zero-shot score")
    args = parser.parse_args(argv)

    import torch
    import yaml

    from tunewise.models import load_model
    from tunewise.sample import LABELS, sample_paths
    from tunewise.store import Store
    from tunewise.train import demo_train_config, load_trained, train

    paths = sample_paths()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    config = demo_train_config(str(paths["train"]), str(paths["eval"]), **overrides)
    rows = [json.loads(line) for line in paths["eval"].read_text().splitlines() if line.strip()][: args.eval_rows]
    result: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count(), "torch_threads": None, "eval_rows": len(rows),
                    "load_start": os.getloadavg()[0]}

    def phase(name: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {name} (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)

    if args.zero_shot or args.no_train:
        phase("zero-shot")
        model, tokenizer = load_model("smollm2-135m")
        result["zero_shot_accuracy"], result["zero_shot_seconds"] = accuracy(model, tokenizer, rows, LABELS)
        result["load_after_zero_shot"] = os.getloadavg()[0]
        del model
    if not args.no_train:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
            config = config.model_copy(update={"output_dir": str(Path(tmp) / "run")})
            phase("train")
            started, cpu_started = time.perf_counter(), time.process_time()
            run = train(config, store=store, progress=sys.stderr.isatty())
            wall = time.perf_counter() - started
            result["train_cpu_seconds"] = round(time.process_time() - cpu_started, 1)
            result["load_after_train"] = os.getloadavg()[0]
            phase(f"trained in {wall:.0f} s; scoring the adapter")
            model, tokenizer = load_trained(run)
            result["adapter_accuracy"], result["adapter_eval_seconds"] = accuracy(model, tokenizer, rows, LABELS)
            result.update(
                settings={k: v for k, v in config.model_dump().items() if k in overrides or k in {
                    "max_train_examples", "batch_size", "lora_r", "lora_layers", "target_modules", "learning_rate", "max_seq_length", "epochs"}},
                train_call_seconds=round(wall, 1),
                run_wall_seconds=run.wall_seconds,
                tokens_per_second=run.metrics["tokens_per_second"],
                tokens_seen=run.metrics["tokens_seen"],
                train_loss=run.metrics["train_loss"],
                eval_loss=run.metrics.get("eval_loss"),
                peak_rss_mb=run.peak_memory_mb,
            )
            store.close()
    result["torch_threads"] = torch.get_num_threads()
    result["load_end"] = os.getloadavg()[0]
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

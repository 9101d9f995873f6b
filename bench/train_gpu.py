"""GPU training benchmark: tunewise's LoRA / full SFT path against a plain transformers + PEFT loop with padding.

Random-init models of SmolLM2-135M's shape and of a Llama-3.2-1B shape, on the same synthetic
variable-length batches (lognormal lengths, median a quarter of the max length), at max lengths
512 and 2048. The plain loop pads each batch to its longest row; tunewise's path is
`tunewise.train.build_trainer` with bf16, SDPA (flash attention when installed), padding-free
packing and Liger kernels when installed. Prints one JSON line per (shape, length, method, path):
real (non-pad) tokens/s, peak GPU memory, MFU.

    python bench/train_gpu.py                       # on the GPU: both shapes, 512 and 2048, LoRA and full
    python bench/train_gpu.py --shapes llama-1b --seq 2048 --methods lora --steps 30
    python bench/train_gpu.py --smoke               # CPU, tiny shapes, a few steps: checks that everything imports and runs

MFU counts model FLOPs per real token: 6N for full SFT and 4N for LoRA (no weight gradients for the
frozen base), plus attention's 12·L·d·s (full) or 8·L·d·s (LoRA) at the batch's mean length s,
over the GPU's dense bf16 peak (H100/H200 SXM: 989 TFLOP/s).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
TOKENIZER = ROOT / "tests" / "assets" / "tiny-tokenizer"  # only its pad/eos ids are used; token ids are random

SHAPES = {
    # SmolLM2-135M: 30 layers, d=576, 9 heads (3 KV), MLP 1536, vocab 49152, tied embeddings
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True, rope_theta=100000.0),
    # Llama-3.2-1B: 16 layers, d=2048, 32 heads (8 KV), MLP 8192, vocab 128256, tied embeddings
    "llama-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                     num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True, rope_theta=500000.0),
    # --smoke
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, tie_word_embeddings=True, rope_theta=10000.0),
}
BATCH = {512: 16, 2048: 8, 64: 4}  # rows per step of the plain loop (the FIELD-NOTES reference settings)
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def lengths_for(seq: int, count: int, seed: int = 0) -> list[int]:
    import random

    rng = random.Random(seed)
    median = max(8, seq // 4)
    return [max(8, min(seq, int(rng.lognormvariate(math.log(median), 0.6)))) for _ in range(count)]


def synthetic(lengths: list[int], vocab: int, seed: int = 0):
    import torch

    gen = torch.Generator().manual_seed(seed)
    rows = [torch.randint(3, vocab, (n,), generator=gen).tolist() for n in lengths]
    return rows


def build_model(shape: str, dtype, device: str, attn: str):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**SHAPES[shape], max_position_embeddings=4096, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    config._attn_implementation = attn
    return LlamaForCausalLM(config).to(device=device, dtype=dtype)


def lora(model):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"))


def model_flops_per_token(shape: str, method: str, mean_len: float) -> float:
    s = SHAPES[shape]
    d, layers, ff, vocab = s["hidden_size"], s["num_hidden_layers"], s["intermediate_size"], s["vocab_size"]
    kv = d * s["num_key_value_heads"] // s["num_attention_heads"]
    params = layers * (2 * d * d + 2 * d * kv + 3 * d * ff) + d * vocab  # matmul weights (the LM head counts once)
    dense = (6 if method == "full" else 4) * params
    attention = (12 if method == "full" else 8) * layers * d * mean_len
    return dense + attention


def peak_flops(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name(0)
    return next((value for key, value in PEAK_BF16.items() if key in name), None)


def plain_loop(shape, method, rows, batch, steps, warmup, device, dtype, attn) -> dict:
    """transformers + PEFT, padded batches in data order, AdamW: what a team writes first."""
    import torch

    model = build_model(shape, dtype, device, attn)
    if method == "lora":
        model = lora(model)
    model.train()
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    _reset(device)
    tokens = 0
    started = None
    for step in range(steps):
        chunk = [rows[(step * batch + i) % len(rows)] for i in range(batch)]
        longest = max(map(len, chunk))
        ids = torch.zeros(batch, longest, dtype=torch.long)
        mask = torch.zeros(batch, longest, dtype=torch.long)
        for i, row in enumerate(chunk):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        labels = ids.masked_fill(mask == 0, -100)
        ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
        if step == warmup:
            _sync(device)
            started, tokens = time.perf_counter(), 0
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        tokens += int(mask.sum())
    _sync(device)
    elapsed = time.perf_counter() - started
    result = {"tokens_per_second": tokens / elapsed, "peak_memory_gib": _peak(device), "steps_timed": steps - warmup}
    del model, optim
    _free(device)
    return result


def tunewise_path(shape, method, rows, batch_tokens, seq, steps, warmup, device, dtype, attn, smoke) -> dict:
    """`tunewise.train.build_trainer` (TRL SFTTrainer) with the fast-path settings, on the same rows."""
    from transformers import AutoTokenizer, TrainerCallback

    from tunewise.train import TrainConfig, fast
    from tunewise.train.data import Tokenized
    from tunewise.train.local import PreparedData, build_trainer

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        build_model(shape, dtype, "cpu", attn).save_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
        tokenizer.save_pretrained(folder)
        config = TrainConfig(
            method=method, model=str(folder), dataset="synthetic", max_steps=steps, batch_size=max(1, round(batch_tokens / seq)),
            max_seq_length=seq, packing=True, padding_free=True, use_liger=True, group_by_length=False, learning_rate=1e-4,
            lora_r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", logging_steps=10_000, save_steps=10_000,
            output_dir=str(Path(tmp) / "run"), precision="auto" if device == "cuda" else "fp32", threads=None,
        )
        hardware = fast.detect_hardware(config)
        labels = [list(r) for r in rows]
        data = PreparedData(Path("synthetic"), "", None, Tokenized(rows, labels, [len(r) for r in rows]), [])
        trainer = build_trainer(config, data, tokenizer, folder, hardware)

        class Clock(TrainerCallback):
            start = None
            tokens_at_start = 0

            def on_step_begin(self, args, state, control, **kwargs):
                if state.global_step == warmup:
                    _sync(device)
                    self.start = time.perf_counter()
                    self.tokens_at_start = getattr(trainer, "_total_train_tokens", 0) or 0

        clock = Clock()
        trainer.add_callback(clock)
        _reset(device)
        trainer.train()
        _sync(device)
        elapsed = time.perf_counter() - clock.start
        tokens = (getattr(trainer, "_total_train_tokens", 0) or 0) - clock.tokens_at_start
        attn_used = fast.attention_implementation(config, hardware)
        result = {
            "tokens_per_second": tokens / elapsed, "peak_memory_gib": _peak(device), "steps_timed": steps - warmup,
            "batch_rows": config.batch_size, "attention": attn_used,
            "padding_free": fast.padding_free_ok(config, hardware, attn_used), "liger": hardware.device == "cuda" and fast.liger_available(),
        }
        del trainer
    _free(device)
    return result


def _sync(device):
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _reset(device):
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak(device) -> float:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # process peak RSS on CPU


def _free(device):
    import gc

    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on CPU, 3 steps: an import-and-run check in seconds")
    parser.add_argument("--shapes", default="smollm2-135m,llama-1b")
    parser.add_argument("--seq", default="512,2048", help="max sequence lengths")
    parser.add_argument("--methods", default="lora,full")
    parser.add_argument("--paths", default="plain,tunewise")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)

    import torch

    sys.path.insert(0, str(ROOT / "src"))
    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    if args.smoke:
        args.shapes, args.seq, args.steps, args.warmup = "tiny", "64", 3, 1
        torch.set_num_threads(min(2, torch.get_num_threads()))
    elif device != "cuda":
        print("no CUDA GPU: run with --smoke on CPU, or on a GPU machine", file=sys.stderr)
        return 2
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    attn = "sdpa"
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    for shape in args.shapes.split(","):
        for seq in [int(s) for s in args.seq.split(",")]:
            batch = BATCH.get(seq, max(1, 8192 // seq))
            lengths = lengths_for(seq, batch * (args.steps + 2))
            rows = synthetic(lengths, SHAPES[shape]["vocab_size"])
            batch_tokens = sum(lengths) / len(lengths) * batch  # the same real tokens per step on both paths
            for method in args.methods.split(","):
                for path in args.paths.split(","):
                    started = time.perf_counter()
                    try:
                        if path == "plain":
                            result = plain_loop(shape, method, rows, batch, args.steps, args.warmup, device, dtype, attn)
                        else:
                            result = tunewise_path(shape, method, rows, batch_tokens, seq, args.steps, args.warmup, device, dtype, attn, args.smoke)
                    except torch.OutOfMemoryError:
                        result = {"error": "out of memory"}
                        _free(device)
                    flops = model_flops_per_token(shape, method, sum(lengths) / len(lengths))
                    peak = peak_flops(device)
                    if "tokens_per_second" in result:
                        result["tokens_per_second"] = round(result["tokens_per_second"], 1)
                        result["peak_memory_gib"] = round(result["peak_memory_gib"], 2)
                        result["mfu"] = round(result["tokens_per_second"] * flops / peak, 4) if peak else None
                    print(json.dumps({
                        "date": time.strftime("%Y-%m-%d"), "device": gpu, "shape": shape, "seq": seq, "method": method, "path": path,
                        "dtype": str(dtype).removeprefix("torch."), "plain_batch_rows": batch, "mean_len": round(sum(lengths) / len(lengths), 1),
                        **result, "wall_s": round(time.perf_counter() - started, 1),
                    }), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

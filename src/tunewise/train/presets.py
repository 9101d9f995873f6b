"""Shipped training presets: settings measured to work, used by `tunewise demo` and the learning curve."""

from __future__ import annotations

from typing import Any

from tunewise.train.config import TrainConfig


def demo_train_config(dataset: str | None = None, eval_dataset: str | None = None, **overrides: Any) -> TrainConfig:
    """LoRA settings that train the embedded model on the bundled sample task in a few minutes on 2 CPU cores.

    Measured with `bench/train_cpu.py` (see bench/RESULTS.md, "Training"): 320 examples, LoRA r=16 on
    every linear layer of the top 10 of 30 blocks (backward stops there, about half the compute of
    all 30), one epoch of 40 steps; held-out accuracy 60/100 against 2/100 for the zero-shot prompt.
    Pass `max_train_examples` to vary the training-set size (the learning curve does).
    Example: run = train(demo_train_config(paths["train"], paths["eval"]))
    """
    settings: dict[str, Any] = dict(
        method="lora",
        model="smollm2-135m",
        dataset=dataset,
        eval_dataset=eval_dataset,
        max_train_examples=320,
        max_eval_examples=50,
        epochs=1.0,
        learning_rate=1e-3,
        lr_scheduler="linear",
        warmup_ratio=0.05,
        batch_size=8,
        max_seq_length=256,
        group_by_length=True,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        target_modules="all-linear",
        lora_layers=10,
        logging_steps=5,
        save_steps=1000,
    )
    settings.update(overrides)
    return TrainConfig(**settings)

"""The demo's training settings: only what a user also passes on the command line; the recipe does the rest."""

from __future__ import annotations

from typing import Any

from tunewise.train.config import TrainConfig


def demo_train_config(dataset: str | None = None, eval_dataset: str | None = None, **overrides: Any) -> TrainConfig:
    """The settings `tunewise demo` trains with: the data, a subset size and a time budget, nothing else.

    Everything else (learning rate, epochs, batch, sequence length, LoRA rank and layers, held-out rows)
    comes from the same recipe as `tunewise train --data train.jsonl --max-train-examples 320
    --time-budget 4`, so the demo shows what a user's own command does.
    Example: run = train(demo_train_config(paths["train"]))
    """
    settings: dict[str, Any] = dict(dataset=dataset, eval_dataset=eval_dataset, max_train_examples=320, time_budget_minutes=4.0)
    settings.update(overrides)
    return TrainConfig(**settings)

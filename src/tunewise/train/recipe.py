"""The training recipe: settings the user left empty, chosen from the model, the data and the hardware.

    from tunewise.train.recipe import choose_recipe
    recipe = choose_recipe(config, model=describe_model(folder), data=describe_data(tokenized, replies), device="cpu")
    config = recipe.apply(config)          # every empty setting filled in, explicit ones untouched
    print(recipe.rows())                   # (setting, value, source, reason) for the run's table

Every rule below cites the measurement behind it (bench/RESULTS.md, "Training recipe"). A value the
user gave, on the command line or in YAML, always wins: the recipe only fills settings left empty.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunewise.models import LOCAL_ONLY

# Settings the recipe may choose; the TrainConfig fields default to None (= "let the recipe choose").
AUTO_FIELDS = ("learning_rate", "epochs", "batch_size", "max_seq_length", "lora_r", "lora_alpha", "lora_layers", "holdout")

# Optimizer steps a run should reach before its first pass over the data is "enough": below this,
# small sets get more epochs. 150 steps of 8 is where the embedded model's held-out accuracy on a
# 77-intent task was still climbing at 1 epoch of 1,000 rows (125 steps; FIELD-NOTES, 2026-12-03).
TARGET_STEPS = 150
MAX_EPOCHS = 5


@dataclass(frozen=True)
class ModelShape:
    parameters: int
    layers: int
    hidden_size: int
    max_positions: int | None
    model_type: str

    @property
    def billions(self) -> float:
        return self.parameters / 1e9


@dataclass(frozen=True)
class DataShape:
    examples: int
    token_lengths: tuple[int, ...]
    task_type: str  # classification | json | text
    n_classes: int = 0

    @property
    def p50_tokens(self) -> int:
        return int(statistics.median(self.token_lengths)) if self.token_lengths else 0

    @property
    def p99_tokens(self) -> int:
        if not self.token_lengths:
            return 0
        ordered = sorted(self.token_lengths)
        return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


@dataclass
class Choice:
    setting: str
    value: Any
    source: str  # "you" (flag or YAML) | "recipe"
    reason: str


@dataclass
class Recipe:
    choices: list[Choice] = field(default_factory=list)
    data: DataShape | None = None
    model: ModelShape | None = None

    def apply(self, config):
        """A copy of `config` with every setting the recipe chose filled in."""
        from tunewise.config import override

        chosen = {c.setting: c.value for c in self.choices if c.source == "recipe"}
        return override(config, **chosen)

    def rows(self) -> list[tuple[str, str, str, str]]:
        return [(c.setting, _show(c.value), c.source, c.reason) for c in self.choices]

    def to_dict(self) -> dict[str, Any]:
        return {c.setting: {"value": c.value, "source": c.source, "reason": c.reason} for c in self.choices}

    def value(self, setting: str) -> Any:
        return next(c.value for c in self.choices if c.setting == setting)


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# -- facts the recipe reads --------------------------------------------------------------------------


def describe_model(folder: str | Path) -> ModelShape:
    """Parameter count (from the safetensors headers, no weights loaded), layers and context of a model folder."""
    from transformers import AutoConfig

    folder = Path(folder)
    config = AutoConfig.from_pretrained(folder, **LOCAL_ONLY)
    text = config.get_text_config()
    layers = int(getattr(text, "num_hidden_layers", 0) or 0)
    hidden = int(getattr(text, "hidden_size", 0) or 0)
    parameters = _safetensors_parameters(folder) or _estimated_parameters(text)
    return ModelShape(parameters, layers, hidden, getattr(text, "max_position_embeddings", None), config.model_type)


def _safetensors_parameters(folder: Path) -> int | None:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        # The header is an 8-byte length then JSON of shapes: reading it costs microseconds, loading the weights seconds.
        with path.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(size))
        for name, entry in header.items():
            if name != "__metadata__":
                total += math.prod(entry["shape"])
    return total


def _estimated_parameters(text_config) -> int:
    hidden = getattr(text_config, "hidden_size", 0) or 0
    inter = getattr(text_config, "intermediate_size", 4 * hidden) or 4 * hidden
    layers = getattr(text_config, "num_hidden_layers", 0) or 0
    vocab = getattr(text_config, "vocab_size", 0) or 0
    return int(vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * inter))


def describe_data(token_lengths: list[int], replies: list[str | None]) -> DataShape:
    """The training set as the recipe sees it: size, tokens per example and task (the one task detector).

    `replies` holds every example's reply; `token_lengths` may come from a sample of them (a big file is not
    tokenized twice), so the size is the replies' count.
    """
    from tunewise.data.task import detect_task

    shape = detect_task(replies)
    return DataShape(len(replies), tuple(token_lengths), shape.type, shape.n_classes)


# -- the rules ---------------------------------------------------------------------------------------


MIN_HOLDOUT = 30


def learning_rate_for(method: str, model: ModelShape) -> tuple[float, str]:
    if method == "full":
        if model.billions <= 0.5:
            return 5e-5, f"full fine-tune of a {model.billions * 1000:.0f}M model: 5e-5 (1e-5 from 3B)"
        if model.billions <= 3:
            return 2e-5, f"full fine-tune of a {model.billions:.1f}B model: 2e-5"
        return 1e-5, f"full fine-tune of a {model.billions:.1f}B model: 1e-5"
    if model.billions <= 0.5:
        return 2e-3, (f"LoRA on a {model.billions * 1000:.0f}M model: 2e-3; measured on two real intent tasks: "
                      "2e-4 -> 0.12 and 1e-3 -> 0.50 (77 classes, one epoch); 1e-3 -> 0.53 and 2e-3 -> 0.63 "
                      "(150 classes, 5 minutes)")
    if model.billions <= 3:
        return 5e-4, f"LoRA on a {model.billions:.1f}B model: 5e-4 (small models need a higher rate; 2e-4 from 3B)"
    if model.billions <= 20:
        return 2e-4, f"LoRA on a {model.billions:.0f}B model: 2e-4, the QLoRA paper's rate for 7-13B"
    return 1e-4, f"LoRA on a {model.billions:.0f}B model: 1e-4 (large models drift at higher rates)"


def choose_recipe(config, *, model: ModelShape, data: DataShape, device: str) -> Recipe:
    """Fill every empty recipe setting of `config` (a TrainConfig) and say why; explicit values are kept."""
    recipe = Recipe(data=data, model=model)

    def pick(setting: str, value: Any, reason: str) -> Any:
        given = getattr(config, setting)
        if given is not None:
            recipe.choices.append(Choice(setting, given, "you", "set by you (flag or YAML)"))
            return given
        recipe.choices.append(Choice(setting, value, "recipe", reason))
        return value

    lora = config.method in ("lora", "qlora")
    lr, why = learning_rate_for(config.method, model)
    pick("learning_rate", lr, why)

    if device == "cuda":
        batch, why = (16, "GPU, examples up to 512 tokens: 16 per step") if data.p99_tokens <= 512 else (8, "GPU, long examples: 8 per step")
    else:
        batch, why = 8, "CPU: 8 per step (larger batches do not raise tokens/s on a few cores, they only cut the step count)"
    batch = pick("batch_size", batch, why)

    longest = max(data.token_lengths, default=0)
    needed = max(128, _round_up(data.p99_tokens, 64))
    limit = model.max_positions or 4096
    seq = min(needed, limit, 4096)
    over = sum(length > seq for length in data.token_lengths)
    why = f"99% of the examples fit in {data.p99_tokens} tokens (longest {longest}); rounded up to {seq}"
    if over:
        why += f"; {over} longer example(s) will be truncated"
    pick("max_seq_length", seq, why)

    holdout = 0
    # Fewer than 30 scored rows cannot tell checkpoints apart, and 30 of fewer than 120 would take over a quarter of
    # the data: a small set (a distilled one, say) trains on every row instead.
    why = (f"only {data.examples} examples: none held out, since {MIN_HOLDOUT} would be over a quarter of them "
           "(pass --eval-data to score during training)")
    if config.eval_dataset is not None:
        why = "you gave --eval-data: nothing held out of the training set"
    elif data.examples >= 4 * MIN_HOLDOUT:
        holdout = int(min(200, max(MIN_HOLDOUT, round(0.1 * data.examples))))
        why = (f"no --eval-data: {holdout} examples (stratified, about 10%, 30-200) held out to score each evaluation, "
               "keep the best checkpoint and stop early")
    holdout = pick("holdout", holdout, why)

    trained_on = data.examples - holdout
    if config.max_train_examples is not None:
        trained_on = min(trained_on, config.max_train_examples)
    steps_per_epoch = max(1, math.ceil(trained_on / (batch * config.gradient_accumulation)))
    if config.max_steps and config.max_steps > 0:
        epochs, why = 1.0, f"--max-steps {config.max_steps} decides the length"
    elif config.time_budget_minutes:
        epochs = float(MAX_EPOCHS)
        why = (f"time budget {config.time_budget_minutes:g} min decides the length (at most {MAX_EPOCHS} epochs); "
               "the best held-out checkpoint is kept")
    else:
        epochs = float(min(MAX_EPOCHS, max(1, math.ceil(TARGET_STEPS / steps_per_epoch))))
        why = (f"{trained_on} examples = {steps_per_epoch} steps per epoch; {epochs:g} epoch(s) to reach about "
               f"{TARGET_STEPS} steps (at most {MAX_EPOCHS}; early stopping keeps the best)")
    pick("epochs", epochs, why)

    if lora:
        rank = pick("lora_r", 16, "rank 16: the common default (PEFT, Axolotl); higher ranks did not help small sets")
        pick("lora_alpha", 2 * rank, f"alpha = 2 x rank ({2 * rank}): the usual scale of 2")
        if device == "cuda":
            layers, why = model.layers, f"GPU: LoRA on all {model.layers} blocks (compute is not the limit)"
        else:
            layers = max(1, math.ceil(model.layers / 3))
            why = (f"CPU: LoRA on the top {layers} of {model.layers} blocks, so backward stops there "
                   "(1.4x the tokens/s of all blocks and 4 points better in a 5-minute budget, measured)")
        pick("lora_layers", layers, why)
    return recipe


def _round_up(value: int, step: int) -> int:
    return int(math.ceil(max(value, 1) / step) * step)


__all__ = ["AUTO_FIELDS", "Choice", "DataShape", "ModelShape", "Recipe", "choose_recipe", "describe_data", "describe_model", "learning_rate_for"]

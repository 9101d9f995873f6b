"""How long a local run trains and when it is scored: planned steps, the time-budget fit, the held-out callback.

    budget = fit_to_budget(trainer, config, data)       # with time_budget_minutes: the step count
    callback = heldout_callback(trainer, config, data, tokenizer, budget)

Separate from the training loop in `local.py` because the budget and the scoring share one plan:
the evaluations and the rows they score come out of the same minutes as the steps.
"""

from __future__ import annotations

import time
from typing import Any

from tunewise.train.data import PreparedData


def heldout_callback(trainer, config, data: PreparedData, tokenizer, budget: dict):
    """The callback that scores the eval rows during training (None without eval rows)."""
    if data.eval is None:
        return None
    from tunewise.train.heldout import HeldOutCallback, LabelTrie, label_sequences

    planned = trainer.args.max_steps if trainer.args.max_steps > 0 else planned_steps(trainer, config, data)
    evaluations = budget.get("evaluations", 5)
    eval_steps = config.eval_steps or max(1, planned // evaluations)
    trie = LabelTrie(label_sequences(data.train.labels)) if data.task_type == "classification" else None
    ids, labels = data.eval.input_ids, data.eval.labels
    cap = budget.get("eval_rows")
    if cap and cap < len(ids):  # an evenly spread subset: under a time budget, scoring must not eat the training time
        stride = len(ids) / cap
        keep = [int(i * stride) for i in range(cap)]
        ids, labels = [ids[i] for i in keep], [labels[i] for i in keep]

    def record(result) -> None:
        # Trainer.log reaches every callback's on_log: the run recorder stores the step and shows it.
        trainer.log(result.as_log())

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return HeldOutCallback(
        ids, labels, pad_id=pad, trie=trie, eval_steps=eval_steps,
        patience=config.early_stopping_patience, batch_size=max(8, config.batch_size), on_score=record,
    )


def planned_steps(trainer, config, data: PreparedData) -> int:
    import math

    per_epoch = math.ceil(len(data.train.input_ids) / (config.batch_size * config.gradient_accumulation))
    return max(1, int(math.ceil(per_epoch * config.epochs)))


def fit_to_budget(trainer, config, data: PreparedData) -> dict[str, Any]:
    """Set the run's step count so that training and its evaluations fit `time_budget_minutes`.

    Three probe steps (one to warm up, two timed) through the trainer's own training step give
    seconds per padded token; the run's batches, grouped by length, pad little, so a step costs about
    its real tokens. The gradients of the probe are discarded. A deadline callback still stops the
    run at the budget if the estimate was optimistic.
    """
    import random

    budget_s = config.time_budget_minutes * 60
    started = time.perf_counter()
    rng = random.Random(config.seed)
    rows = list(range(len(data.train.input_ids)))
    timed_tokens, timed_seconds = 0, 0.0
    model = trainer.model
    model.train()
    for probe in range(3):
        pick = rng.sample(rows, min(config.batch_size, len(rows)))
        batch = trainer.data_collator([{"input_ids": data.train.input_ids[i], "labels": data.train.labels[i]} for i in pick])
        batch = {k: v.to(trainer.args.device) if hasattr(v, "to") else v for k, v in batch.items()}
        t0 = time.perf_counter()
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        if probe:
            timed_seconds += time.perf_counter() - t0
            timed_tokens += int(batch["input_ids"].numel())
    model.zero_grad(set_to_none=True)
    trainer._total_train_tokens = 0
    for values in getattr(trainer, "_metrics", {}).values():
        values.clear()
    per_token = timed_seconds / max(timed_tokens, 1)
    mean_tokens = sum(data.train.lengths) / max(len(data.train.lengths), 1)
    step_seconds = per_token * mean_tokens * config.batch_size * config.gradient_accumulation * 1.05
    evals = 6 if data.eval is not None else 0  # five scheduled and the last one
    eval_rows = len(data.eval.lengths) if data.eval is not None else 0
    # A forward pass costs about 0.6 of a training step per token when LoRA sits on the top third of the
    # blocks (measured on CLINC150: 200 rows in 25 s against 1.7 s per step of 8). Scoring may take at most
    # 15% of the budget: fewer rows (at least 20), then fewer evaluations (at least 2 and the last),
    # rather than a shorter run. Long rows on a small budget hit both floors.
    row_seconds = per_token * (sum(data.eval.lengths) / max(eval_rows, 1) if eval_rows else 0) * 0.6
    allowance = 0.15 * budget_s
    if evals and row_seconds:
        eval_rows = min(eval_rows, max(20, int(allowance / (evals * row_seconds))))
        evals = max(3, min(evals, int(allowance / (eval_rows * row_seconds))))
    eval_seconds = evals * eval_rows * row_seconds
    probe_seconds = time.perf_counter() - started
    train_seconds = max(budget_s - probe_seconds, step_seconds)
    fitted = max(1, int((train_seconds - eval_seconds) / step_seconds))
    # Plan for up to twice the probe's estimate: BudgetCallback measures the real step time after a few
    # steps and shortens the schedule to what fits (a schedule can be shortened mid-run, not lengthened).
    steps = min(2 * fitted, planned_steps(trainer, config, data))
    trainer.args.max_steps = steps
    return {
        "minutes": config.time_budget_minutes,
        "probe_seconds_per_step": round(step_seconds, 3),
        "probe_tokens_per_second": round(1 / per_token, 1) if per_token else None,
        "probe_steps": fitted,
        "planned_steps_at_most": steps,
        "epochs_at_most": config.epochs,
        "train_seconds": round(train_seconds, 1),
        "eval_rows": eval_rows,
        "evaluations": max(evals - 1, 1),  # scheduled ones; the last step is scored as well
    }


__all__ = ["fit_to_budget", "heldout_callback", "planned_steps"]

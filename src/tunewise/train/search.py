"""`tunewise train --search`: a few recipes tried under one budget, ranked by the held-out task metric.

    from tunewise.train import TrainConfig
    from tunewise.train.search import search
    result = search(TrainConfig(dataset="train.jsonl", time_budget_minutes=15))
    result.winner.id, result.trials

Trials are the recipe's learning rate x {0.5, 1, 2} and, without a time budget, its epochs x {1, 2}.
With a budget, successive halving in two rungs: every trial trains for half the budget split evenly,
then the best one continues from its weights with the other half (a warm restart of the schedule), so
the winner has had the largest share (an epoch count only matters when the data fits in a trial's time more than once, so with a
budget only the learning rate varies). Trials rank by the held-out score the run itself reports
(label-constrained accuracy for classification, else loss), never by training loss. Every trial is
a run in the store with `metrics.search_id`; the search is a run of kind `search` whose metrics list
the trials and name the winner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tunewise.config import override
from tunewise.errors import TrainingError
from tunewise.train.config import TrainConfig
from tunewise.train.recipe import MIN_HOLDOUT

LR_FACTORS = (0.5, 1.0, 2.0)
EPOCH_FACTORS = (1.0, 2.0)


@dataclass
class SearchResult:
    search_id: str
    winner: Any  # the winning Run
    trials: list[dict[str, Any]] = field(default_factory=list)


def _score(run) -> tuple[float, float]:
    """Higher is better: accuracy when the run measured it, then lower loss."""
    metrics = run.metrics or {}
    accuracy = metrics.get("eval_accuracy")
    loss = metrics.get("eval_loss")
    return (accuracy if accuracy is not None else float("-inf"), -(loss if loss is not None else float("inf")))


def _grid(config: TrainConfig, base_lr: float, base_epochs: float) -> list[dict[str, Any]]:
    lrs = [config.learning_rate] if config.learning_rate is not None else [base_lr * f for f in LR_FACTORS]
    if config.time_budget_minutes or config.epochs is not None:
        epochs = [config.epochs if config.epochs is not None else base_epochs]
    else:
        epochs = [base_epochs * f for f in EPOCH_FACTORS]
    return [{"learning_rate": lr, "epochs": e} for lr in lrs for e in epochs]


def search(config: TrainConfig, *, store=None, progress: bool = True, train_fn=None) -> SearchResult:
    """Train the grid (successive halving under `time_budget_minutes`), return the winner and every trial."""
    from tunewise.store import Store
    from tunewise.store.models import new_id
    from tunewise.train.local import _tokenizer_for, plan_recipe

    if train_fn is None:
        from tunewise.train.local import train as train_fn
    if config.dataset is None:
        raise TrainingError("no training data: set train.dataset or pass --data")
    with Store.borrow(store) as store:
        # The recipe's own choice is the centre of the grid.
        tokenizer, folder = _tokenizer_for(config)
        _, _, examples, resolved, _ = plan_recipe(config, tokenizer, store, model_folder=folder)
        if resolved.holdout == 0 and config.eval_dataset is None:
            # A small set trains on every row by default, but trials can only be ranked on rows none of them saw.
            if len(examples) < 2 * MIN_HOLDOUT or config.holdout == 0:
                raise TrainingError(f"{config.dataset}: --search ranks trials on held-out rows; pass --eval-data "
                                    f"(or --holdout N, with at least {2 * MIN_HOLDOUT} examples)")
            config = override(config, holdout=MIN_HOLDOUT)
        grid = _grid(config, resolved.learning_rate, resolved.epochs)
        search_id = new_id("run")
        store.create_run("search", base_model=config.model, config=config.model_dump(mode="json"), run_id=search_id)
        store.update_run(search_id, status="running")
        started = time.perf_counter()
        budget = config.time_budget_minutes
        per_trial = budget / 2 / len(grid) if budget else None
        trials: list[dict[str, Any]] = []

        def run_trial(settings: dict[str, Any], rung: int, minutes: float | None, **extra: Any):
            # Each trial is a run of its own: a fresh folder, never the parent's output_dir.
            trial_config = override(config, **settings, **extra, time_budget_minutes=minutes, clear=["output_dir"])
            _say(progress, f"search {search_id}: rung {rung}, lr {settings['learning_rate']:g}, epochs {settings['epochs']}"
                           + (f", {minutes:.1f} min" if minutes else ""))
            run = train_fn(trial_config, store=store, progress=progress)
            store.update_run(run.id, metrics={**(run.metrics or {}), "search_id": search_id, "search_rung": rung})
            run = store.get_run(run.id)
            trials.append({"run_id": run.id, "rung": rung, **settings, "minutes": minutes,
                           "eval_accuracy": run.metrics.get("eval_accuracy"), "eval_loss": run.metrics.get("eval_loss"),
                           "steps": run.metrics.get("steps")})
            return run

        runs = [run_trial(settings, 0, per_trial) for settings in grid]
        best = max(runs, key=_score)
        winner = best
        if budget:
            settings = next(t for t in trials if t["run_id"] == best.id)
            left = max(budget - (time.perf_counter() - started) / 60, budget / 4)
            # The best trial continues (a warm restart of its schedule) on examples in a new order, so that
            # its rung-0 minutes count; the held-out rows stay the same, so the scores stay comparable.
            winner = run_trial({"learning_rate": settings["learning_rate"], "epochs": settings["epochs"]}, 1, left,
                               init_adapter=best.artifacts["adapter"], data_seed=config.seed + 1)
            if _score(best) > _score(winner):  # the longer run did worse on held-out rows: keep the better one
                winner = best
        for trial in trials:
            trial["winner"] = trial["run_id"] == winner.id
        store.update_run(
            search_id, status="completed", wall_seconds=round(time.perf_counter() - started, 3),
            metrics={"trials": trials, "winner": winner.id, "ranked_by": "eval_accuracy, then eval_loss (held out)",
                     "eval_accuracy": winner.metrics.get("eval_accuracy"), "eval_loss": winner.metrics.get("eval_loss")},
            artifacts={"winner": winner.id, **{k: v for k, v in (winner.artifacts or {}).items() if k in ("adapter", "model")}},
        )
        chosen = next(t for t in trials if t["run_id"] == winner.id)
        _say(progress, f"search {search_id}: winner {winner.id} (lr {chosen['learning_rate']:g}, epochs {chosen['epochs']}, "
                       f"held-out accuracy {chosen['eval_accuracy']}, loss {chosen['eval_loss']})")
        return SearchResult(search_id, store.get_run(winner.id), trials)


def _say(progress: bool, message: str) -> None:
    if progress:
        from tunewise.console import err_console

        err_console.print(message, highlight=False)


__all__ = ["SearchResult", "search"]

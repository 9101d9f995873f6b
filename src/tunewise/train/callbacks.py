"""Trainer callbacks: a progress line (loss, eval loss, tokens/s, ETA; `tunewise.progress`) and the store's per-step record."""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback

_SKIP = {"total_flos", "train_runtime", "train_samples_per_second", "train_steps_per_second"}


class RunRecorder(TrainerCallback):
    """Stores every logged step with `store.add_run_step` and shows progress on the error console (plain lines outside a terminal)."""

    def __init__(self, store, run_id: str, *, progress: bool = True, token_counter=None):
        self.store = store
        self.run_id = run_id
        self.show = progress
        self.token_counter = token_counter  # () -> tokens seen so far (the trainer's own count)
        self.last: dict[str, float] = {}
        self._progress = None
        self._started = 0.0
        self._start_tokens = 0

    # -- progress --------------------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()
        self._start_tokens = self._tokens()
        if not self.show:
            return
        from tunewise.progress import ProgressLine

        self._progress = ProgressLine("train", total=state.max_steps, completed=state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self._progress is not None:
            # total=: a time budget shortens the run once its real step time is measured
            self._progress.update(state.global_step, total=state.max_steps, stats=self._stats())

    def on_train_end(self, args, state, control, **kwargs):
        self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def _tokens(self) -> int:
        return int(self.token_counter()) if self.token_counter else 0

    def tokens_per_second(self) -> float:
        elapsed = time.perf_counter() - self._started
        return (self._tokens() - self._start_tokens) / elapsed if elapsed > 0 else 0.0

    def _stats(self) -> str:
        parts = []
        if "loss" in self.last:
            parts.append(f"loss {self.last['loss']:.4f}")
        if "eval_loss" in self.last:
            parts.append(f"eval {self.last['eval_loss']:.4f}")
        parts.append(f"{self.tokens_per_second():,.0f} tok/s")
        return "  ".join(parts)

    # -- store -----------------------------------------------------------------------------------
    def on_log(self, args, state, control, logs: dict[str, Any] | None = None, **kwargs):
        if not logs:
            return
        values = {k: _plain(v) for k, v in logs.items() if k not in _SKIP}
        values["epoch"] = round(float(state.epoch or 0), 4)
        values["tokens_per_second"] = round(self.tokens_per_second(), 1)
        self.last.update({k: v for k, v in values.items() if isinstance(v, (int, float))})
        self.store.add_run_step(self.run_id, state.global_step, values)
        if self._progress is not None:
            self._progress.update(stats=self._stats())


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6)
    return value

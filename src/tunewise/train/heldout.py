"""Scoring a run on its held-out rows while it trains: loss, and for classification a label-constrained accuracy.

One forward pass per evaluation gives all three figures. The accuracy needs no generation: with
teacher forcing along the reference label, greedy decoding restricted to the label set (a trie of the
label token sequences seen in training) spells that label exactly when, at every label position,
the reference token scores highest among the tokens the trie allows there. The same holds for free
greedy decoding over the whole vocabulary (`exact_match`). So the figures equal what
`tunewise eval -c adapter:RUN?constrained=1` would measure on these rows, at the cost of one pass.

`HeldOutCallback` runs it every `eval_steps`, keeps the best trainable weights in memory (restored
before the adapter is saved) and stops after `patience` evaluations without gain; `BudgetCallback`
fits the run into its time budget and stops it at the deadline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback


@dataclass
class Score:
    step: int
    loss: float
    accuracy: float | None  # label-constrained, classification only
    exact_match: float  # free greedy decoding reproduces the whole reference reply
    correct: list[bool] | None = None  # per row, in the order given: label-constrained (classification) else exact match
    exact: list[bool] | None = None  # per row: free greedy decoding reproduces the reply

    def as_log(self) -> dict[str, float]:
        out = {"eval_loss": round(self.loss, 6), "eval_exact_match": round(self.exact_match, 4)}
        if self.accuracy is not None:
            out["eval_accuracy"] = round(self.accuracy, 4)
        return out


class LabelTrie:
    """Which token may follow each prefix of the training labels' token sequences (as tokenized in context)."""

    def __init__(self, sequences: list[list[int]]):
        self.children: dict[tuple[int, ...], set[int]] = {}
        for seq in sequences:
            for j in range(len(seq)):
                self.children.setdefault(tuple(seq[:j]), set()).add(seq[j])

    def allowed(self, prefix: tuple[int, ...]) -> set[int]:
        return self.children.get(prefix, set())


def label_sequences(labels: list[list[int]]) -> list[list[int]]:
    """The supervised tokens of each row (the assistant reply and its end-of-turn tokens)."""
    return [[t for t in row if t != -100] for row in labels]


def _label_logits(model, input_ids, attention_mask, labels):
    """Logits at the positions that predict a label token, without the full (batch, length, vocab) tensor."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    text = base.config.get_text_config()
    mask = labels[:, 1:] != -100
    scaled = any(getattr(text, name, None) not in (None, 1.0) for name in ("final_logit_softcapping", "logit_scale", "logits_scaling"))
    backbone = getattr(base, base.base_model_prefix, None)
    if scaled or backbone is None:  # models that rescale their logits: take the model's own, full ones
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
        return logits[mask].float(), mask
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state[:, :-1]
    return base.get_output_embeddings()(hidden[mask]).float(), mask


def score(model, input_ids: list[list[int]], labels: list[list[int]], *, pad_id: int, trie: LabelTrie | None, batch_size: int = 16, step: int = 0) -> Score:
    """Mean label-token loss, constrained accuracy (when `trie`) and free exact match over the rows."""
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    order = sorted(range(len(input_ids)), key=lambda i: len(input_ids[i]))
    loss_sum, tokens, constrained_ok, exact_ok = 0.0, 0, 0, 0
    correct = [False] * len(input_ids)
    exact_rows = [False] * len(input_ids)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                width = max(len(input_ids[i]) for i in rows)
                ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
                lab = torch.full((len(rows), width), -100, dtype=torch.long)
                att = torch.zeros((len(rows), width), dtype=torch.long)
                for r, i in enumerate(rows):
                    n = len(input_ids[i])
                    ids[r, :n] = torch.tensor(input_ids[i])
                    lab[r, :n] = torch.tensor(labels[i])
                    att[r, :n] = 1
                ids, lab, att = ids.to(device), lab.to(device), att.to(device)
                logits, mask = _label_logits(model, ids, att, lab)
                targets = lab[:, 1:][mask]
                loss_sum += float(F.cross_entropy(logits, targets, reduction="sum"))
                tokens += int(targets.numel())
                owner = mask.nonzero()[:, 0].tolist()
                best = logits.argmax(dim=-1).tolist()
                target_list = targets.tolist()
                per_row: dict[int, list[int]] = {}
                for k, r in enumerate(owner):
                    per_row.setdefault(r, []).append(k)
                for r in range(len(rows)):
                    positions = per_row.get(r, [])
                    exact = bool(positions) and all(best[k] == target_list[k] for k in positions)
                    exact_ok += exact
                    correct[rows[r]] = exact_rows[rows[r]] = exact
                    if trie is not None:
                        correct[rows[r]] = _constrained_correct(logits, positions, target_list, trie)
                        constrained_ok += correct[rows[r]]
    finally:
        if was_training:
            model.train()
    n = max(len(input_ids), 1)
    return Score(step, loss_sum / max(tokens, 1), constrained_ok / n if trie is not None else None, exact_ok / n, correct, exact_rows)


def _constrained_correct(logits, positions: list[int], targets: list[int], trie: LabelTrie) -> bool:
    prefix: tuple[int, ...] = ()
    for k in positions:
        allowed = trie.allowed(prefix)
        if targets[k] not in allowed:
            return False  # a label never seen in training cannot be spelled under the constraint
        if len(allowed) > 1:
            row = logits[k]
            others = [a for a in allowed if a != targets[k]]
            if float(row[others].max()) > float(row[targets[k]]):
                return False
        prefix += (targets[k],)
    return bool(positions)


class HeldOutCallback(TrainerCallback):
    """Score every `eval_steps`, keep the best weights, stop early; log each score."""

    def __init__(self, rows_ids, rows_labels, *, pad_id: int, trie: LabelTrie | None, eval_steps: int, patience: int,
                 batch_size: int = 16, on_score=None):
        self.rows_ids, self.rows_labels = rows_ids, rows_labels
        self.pad_id, self.trie = pad_id, trie
        self.eval_steps, self.patience = max(1, eval_steps), patience
        self.batch_size = batch_size
        self.on_score = on_score  # (Score) -> None: the run's store record and progress line
        self.scores: list[Score] = []
        self.best: Score | None = None
        self._best_state: dict[str, Any] | None = None
        self._since_best = 0
        self.stopped_early = False
        self.seconds = 0.0

    @property
    def metric(self) -> str:
        return "eval_accuracy" if self.trie is not None else "eval_loss"

    def _better(self, new: Score, old: Score | None) -> bool:
        if old is None:
            return True
        if self.trie is not None and new.accuracy != old.accuracy:
            return new.accuracy > old.accuracy
        return new.loss < old.loss

    def evaluate(self, model, step: int) -> Score:
        started = time.perf_counter()
        result = score(model, self.rows_ids, self.rows_labels, pad_id=self.pad_id, trie=self.trie, batch_size=self.batch_size, step=step)
        self.seconds += time.perf_counter() - started
        self.scores.append(result)
        if self._better(result, self.best):
            self.best = result
            self._since_best = 0
            # Only the trainable (LoRA) weights change: a copy of them is the best checkpoint, kept in memory.
            self._best_state = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        else:
            self._since_best += 1
        if self.on_score is not None:
            self.on_score(result)
        return result

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.eval_steps == 0:
            self.evaluate(model, state.global_step)
            if self.patience and self._since_best >= self.patience:
                self.stopped_early = True
                control.should_training_stop = True
        return control

    def finish(self, model, step: int) -> None:
        """Score the last step if it was not scored, then load the best weights back into the model."""
        if not self.scores or self.scores[-1].step != step:
            self.evaluate(model, step)
        if self._best_state is not None and self.best is not None and self.best.step != self.scores[-1].step:
            import torch

            with torch.no_grad():
                for name, param in model.named_parameters():
                    if name in self._best_state:
                        param.copy_(self._best_state[name])

    @property
    def still_improving(self) -> bool:
        """The best score came at the last evaluation of a run that was not stopped for lack of gain."""
        return bool(self.scores) and self.best is not None and self.best.step == self.scores[-1].step and len(self.scores) >= 2

    def summary(self) -> dict[str, Any]:
        best = self.best
        out: dict[str, Any] = {
            "evaluations": len(self.scores),
            "metric_for_best": self.metric,
            "best_step": best.step if best else None,
            "still_improving": self.still_improving,
            "stopped_early": self.stopped_early,
            "eval_seconds": round(self.seconds, 2),
            "eval_rows": len(self.rows_ids),
        }
        if best is not None:
            out.update(eval_loss=round(best.loss, 6), eval_exact_match=round(best.exact_match, 4))
            if best.accuracy is not None:
                out["eval_accuracy"] = round(best.accuracy, 4)
        return out


__all__ = ["HeldOutCallback", "LabelTrie", "Score", "label_sequences", "score"]


class BudgetCallback(TrainerCallback):
    """Fit a run into its time budget from its own measured step time, not only from the probe.

    The trainer is planned with an upper bound of steps. After `calibrate_at` steps the callback measures
    the seconds per step (evaluation time excluded), works out how many steps fit in what is left, shortens
    the learning-rate schedule to that count (so the rate still decays to its end) and stops there.
    """

    def __init__(self, deadline: float, *, heldout: HeldOutCallback | None = None, evaluations: int = 5, calibrate_at: int = 8):
        self.deadline = deadline  # time.monotonic() value
        self.heldout = heldout
        self.evaluations = evaluations
        self.calibrate_at = calibrate_at
        self.stop_at: int | None = None
        self.hit_deadline = False
        self._started: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._started = time.monotonic()

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        if self.stop_at is None and state.global_step >= self.calibrate_at and self._started is not None:
            eval_spent = self.heldout.seconds if self.heldout else 0.0
            per_step = (time.monotonic() - self._started - eval_spent) / state.global_step
            per_eval = eval_spent / max(len(self.heldout.scores), 1) if self.heldout and self.heldout.scores else 0.0
            left = self.deadline - time.monotonic() - per_eval * (self.evaluations + 1)
            fitted = state.global_step + max(0, int(left / max(per_step, 1e-9)))
            self.stop_at = max(state.global_step, min(state.max_steps, fitted))
            _shorten_schedule(lr_scheduler, self.stop_at)
            state.max_steps = self.stop_at
            if self.heldout is not None:
                self.heldout.eval_steps = max(1, self.stop_at // self.evaluations)
        if self.stop_at is not None and state.global_step >= self.stop_at:
            control.should_training_stop = True
        if time.monotonic() >= self.deadline:  # the estimate was optimistic: the budget is still the limit
            self.hit_deadline = True
            control.should_training_stop = True
        return control


def _shorten_schedule(scheduler, total_steps: int) -> None:
    """Point a LambdaLR schedule built by transformers (linear, cosine, ...) at a new total step count."""
    import functools

    if scheduler is None or not hasattr(scheduler, "lr_lambdas"):
        return
    lambdas = []
    for fn in scheduler.lr_lambdas:
        if isinstance(fn, functools.partial) and "num_training_steps" in fn.keywords:
            fn = functools.partial(fn.func, *fn.args, **{**fn.keywords, "num_training_steps": total_steps})
        lambdas.append(fn)
    scheduler.lr_lambdas = lambdas

"""Evaluation: every candidate (prompts, fine-tunes, endpoints, a classic classifier) on one held-out set.

    from tunewise.evaluate import evaluate
    results = evaluate("eval.jsonl", ["few-shot:smollm2-135m?k=8", "adapter:run-1a2b"], train_path="train.jsonl")

Names are imported lazily: `tunewise eval --help` must not pay for torch, sklearn or scipy.
"""

from __future__ import annotations

from tunewise.evaluate.config import EvalConfig

_LAZY = {
    "evaluate": "tunewise.evaluate.run",
    "parse_spec": "tunewise.evaluate.specs",
    "CandidateSpec": "tunewise.evaluate.specs",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tunewise.evaluate' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = ["EvalConfig", "evaluate", "parse_spec", "CandidateSpec"]

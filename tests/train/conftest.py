"""Fixtures for training tests: small chat datasets on the tiny model (each run takes about a second)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

LABELS = ["billing", "refund", "login", "shipping"]
WORDS = {
    "billing": ["invoice", "charge", "card", "bill"],
    "refund": ["money", "back", "return", "refund"],
    "login": ["password", "account", "locked", "sign"],
    "shipping": ["parcel", "late", "track", "delivery"],
}


def chat_rows(n: int, *, seed: int = 0, labels=LABELS, long: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = " ".join(rng.choice(WORDS[label]) for _ in range(rng.randint(3, 8)))
        if long:
            words = " ".join([words] * long)
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "Classify the ticket."},
                    {"role": "user", "content": f"ticket {i}: {words}"},
                    {"role": "assistant", "content": label},
                ]
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def chat_files(tmp_path) -> tuple[Path, Path]:
    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(48, seed=1))
    evals = write_jsonl(tmp_path / "eval.jsonl", chat_rows(12, seed=2))
    return train, evals


def tiny_config(model_dir: Path, train: Path, evals: Path | None = None, **overrides):
    from tunewise.train import TrainConfig

    settings = dict(
        model=str(model_dir),
        dataset=str(train),
        eval_dataset=str(evals) if evals else None,
        batch_size=8,
        max_seq_length=64,
        learning_rate=5e-3,
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        logging_steps=1,
        save_steps=1000,
        warmup_ratio=0.0,
        threads=1,
    )
    settings.update(overrides)
    return TrainConfig(**settings)

"""The bundled sample task: SaaS support tickets in 12 categories, with planted data problems.

The files beside this module are written by `scripts/make_sample_task.py` (seeded, deterministic);
DATA_CARD.md describes them and planted.json holds the ground truth of the planted PII, duplicates,
wrong labels and train/eval contamination, by 1-based line number.
"""

from __future__ import annotations

import json
from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent

LABELS: tuple[str, ...] = (
    "billing", "bug-report", "feature-request", "onboarding", "account-access", "refund",
    "cancellation", "integration", "performance", "security", "data-export", "how-to",
)

SYSTEM_PROMPT = (
    "Classify the support ticket as one of: " + ", ".join(LABELS) + ". Answer with the category name only."
)

_FILES = {
    "train": "tickets-train.jsonl",
    "eval": "tickets-eval.jsonl",
    "annotations": "tickets-annotations.csv",
    "planted": "planted.json",
    "card": "DATA_CARD.md",
}


def sample_paths() -> dict[str, Path]:
    """Paths of the sample files, keyed train, eval, annotations, planted, card."""
    return {key: SAMPLE_DIR / name for key, name in _FILES.items()}


def planted() -> dict:
    """The ground truth of what was planted (see DATA_CARD.md): `train` (pii, near_duplicates,
    exact_duplicates, wrong_labels, contamination), `eval` (pii) and `annotations` (agreement figures)."""
    return json.loads((SAMPLE_DIR / _FILES["planted"]).read_text(encoding="utf-8"))

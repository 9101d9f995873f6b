"""The questions `tunewise advise` asks when the store cannot answer them, and the answers YAML.

    from tunewise.advise.answers import load_answers
    answers = load_answers("answers.yaml")   # unknown keys and bad values: one ConfigError naming the file
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunewise.advise.roi import read_yaml_mapping
from tunewise.errors import ConfigError

__all__ = ["Answers", "QUESTION_ORDER", "Asker", "load_answers", "validate_answers", "answer_type"]


class Answers(BaseModel):
    """What the store cannot tell: asked interactively or read from `--answers answers.yaml`."""

    model_config = ConfigDict(extra="forbid")

    requests_per_month: float | None = Field(None, gt=0, description="How many requests per month does the task serve?")
    input_tokens: float | None = Field(None, ge=0, description="Input tokens per request with today's prompt?")
    output_tokens: float | None = Field(None, ge=0, description="Output tokens per request?")
    value_per_correct_usd: float | None = Field(None, ge=0, description="What is one more correct answer worth, in USD?")
    cost_per_error_usd: float | None = Field(None, ge=0, description="What does one wrong answer cost, in USD (rework, escalation)?")
    base_model: str | None = Field(None, description="Which catalog model serves the prompt today?")
    provider_model: str | None = Field(None, description="Which catalog model would you fine-tune at a provider?")
    plan_date: date | None = Field(None, description="When would the training run (YYYY-MM-DD)?")
    prompt_revisions: int | None = Field(None, ge=0, description="How many disciplined prompt revisions with eval metrics have you made?")
    prompt_techniques_tried: int | None = Field(None, ge=0, le=8, description="Of CoT, structured output, 8-15 few-shot, retrieval, format constraints, negative examples, multi-turn refinement, model swap: how many tried?")
    prompt_plateau_days: int | None = Field(None, ge=0, description="For how many days has the prompt metric not moved?")
    structured_bar_above_99_5: bool | None = Field(None, description="Must structured outputs be valid more than 99.5% of the time?")
    latency_floor_binding: bool | None = Field(None, description="Do you need <200 ms p50 that no good-enough base model delivers?")
    task_changes_weekly: bool | None = Field(None, description="Does the task (categories, voice, products) change weekly?")
    base_upgrade_expected: bool | None = Field(None, description="Is a major base-model upgrade expected in the next 3 months?")
    teacher_available: bool | None = Field(None, description="Does a stronger model already do the task well (a teacher)?")
    needs_fresh_knowledge: bool | None = Field(None, description="Do answers depend on facts that change (documents, prices, policies)?")
    examples: int | None = Field(None, ge=0, description="How many labeled examples do you have?")
    label_agreement: float | None = Field(None, ge=0, le=1, description="Inter-annotator agreement on the labels (0-1)?")
    labeling_hours: float | None = Field(None, ge=0, description="Hours of data preparation and labeling the fine-tune needs?")
    labeler_rate_usd: float | None = Field(None, ge=0, description="Labeler $/hour, fully loaded?")
    eval_set_usd: float | None = Field(None, ge=0, description="Cost of building the held-out eval set, in USD?")
    monthly_base_spend_usd: float | None = Field(None, ge=0, description="Monthly spend on the base model today, in USD?")


# Asked in this order, only when the store did not answer them.
QUESTION_ORDER = [
    "requests_per_month", "input_tokens", "output_tokens", "cost_per_error_usd", "examples", "label_agreement",
    "prompt_revisions", "prompt_techniques_tried", "prompt_plateau_days", "structured_bar_above_99_5",
    "latency_floor_binding", "task_changes_weekly", "base_upgrade_expected", "teacher_available",
    "needs_fresh_knowledge", "labeling_hours", "eval_set_usd",
]

Asker = Callable[[str, str, type], Any]


def load_answers(path: str | Path) -> Answers:
    """An answers YAML; unknown keys and bad values are one-line errors naming the file and key."""
    return validate_answers(read_yaml_mapping(path, "answers"), str(path))


def validate_answers(raw: dict[str, Any], where: str) -> Answers:
    try:
        return Answers.model_validate(raw)
    except ValidationError as exc:
        parts = []
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"])
            parts.append(f"{key}: {'unknown question' if error['type'] == 'extra_forbidden' else error['msg']}")
        raise ConfigError(f"{where}: {'; '.join(parts)}") from exc


def answer_type(annotation: Any) -> type:
    text = str(annotation)
    for kind in (bool, int, float, date):
        if kind.__name__ in text:
            return kind
    return str

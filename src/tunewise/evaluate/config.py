"""Settings of `tunewise eval`: one typed object (the `eval:` section of tunewise.yaml), flags override it."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(16, ge=1, description="Prompts prefilled together by local models; decoding then runs on as many rows as fit a 1 GiB KV cache")
    bootstrap_samples: int = Field(1000, ge=100, description="Bootstrap resamples for confidence intervals")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Confidence level of intervals")
    alpha: float = Field(0.05, gt=0, lt=0.5, description="Significance level of the paired test against the baseline")
    seed: int = Field(0, description="Seed for few-shot picks and bootstrap resamples")
    few_shot_k: int = Field(8, ge=0, description="Examples in few-shot prompts when a spec gives no ?k=")
    shot_max_chars: int = Field(600, ge=50, description="Longest input text kept per few-shot example (characters)")
    max_new_tokens: int = Field(128, ge=1, description="Longest generated reply for JSON and free-text tasks")
    label_slack_tokens: int = Field(
        6, ge=0, description="Classification: tokens allowed beyond the longest label before a reply counts as unparseable"
    )
    system_prompt: str | None = Field(None, description="System prompt for prompt baselines when the eval rows carry none")
    contamination_threshold: float = Field(0.4, gt=0, le=1, description="Similarity above which an eval row counts as seen in training")
    limit: int | None = Field(None, ge=1, description="Evaluate only the first N eval rows (quick looks; reports say so)")
    endpoint_timeout_s: float = Field(30.0, gt=0, description="Timeout of one endpoint request")
    endpoint_retries: int = Field(3, ge=0, description="Retries (with exponential backoff) before an endpoint candidate is marked failed")
    endpoint_backoff_s: float = Field(0.5, ge=0, description="First backoff delay; doubles on each retry")
    endpoint_concurrency: int = Field(4, ge=1, description="Parallel requests to one endpoint")
    judge: str | None = Field(None, description="LLM judge as URL#MODEL (OpenAI-compatible); scores replies 1-5 against the rubric")
    judge_rubric: str = Field(
        "Score how well the reply fulfils the request compared with the reference answer: 5 = equivalent or better, "
        "3 = partly right, 1 = wrong, empty or refused.",
        description="Rubric given to the LLM judge",
    )
    decoding: Literal["free", "constrained"] = Field(
        "free",
        description="Classification, local candidates that give no ?constrained=: 'free' generates greedily and stops "
        "when a label is complete; 'constrained' only lets the model spell a label",
    )

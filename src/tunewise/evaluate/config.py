"""Settings of `tunewise eval`."""

from pydantic import BaseModel, ConfigDict, Field


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(16, ge=1, description="Prompts generated together")
    bootstrap_samples: int = Field(1000, ge=100, description="Bootstrap resamples for confidence intervals")

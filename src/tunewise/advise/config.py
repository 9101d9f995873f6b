"""Settings of `tunewise advise` and `tunewise roi`."""

from pydantic import BaseModel, ConfigDict, Field


class AdviseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pricing_file: str | None = Field(None, description="A YAML file of pricing rows that override or add to the built-in catalog")
    base_model: str = Field("gpt-5-mini", description="Catalog row of the prompted model the team uses today (prices the baseline)")
    provider_model: str | None = Field(None, description="Catalog row of the planned provider fine-tune; empty means the base model")
    open_model_row: str = Field("selfhost-h100", description="Catalog self-hosted row that trains and serves an open model (LoRA option, migration path)")
    epochs: int = Field(3, ge=1, description="Epochs a training run makes over the audited data (billable tokens = per-epoch tokens x epochs)")
    horizon_months: int = Field(12, ge=1, le=120, description="Months of the ROI horizon (year 1 by default)")
    min_examples: int = Field(10_000, ge=0, description="Seed: 10k+ consistent examples is where SFT reliably helps")
    floor_examples: int = Field(5_000, ge=0, description="Seed: below this, fine-tuning is a coin flip (a lose signal)")
    min_agreement: float = Field(0.85, ge=0, le=1, description="Seed: inter-annotator agreement needed for consistent labels")
    spend_threshold_usd: float = Field(5_000, ge=0, description="Seed checklist step 5: monthly base-model spend above which fine-tuning can pay")
    cost_per_1k_threshold_usd: float = Field(0.50, ge=0, description="Seed win signal (d): base cost per 1k inferences above this")
    plateau_days: int = Field(30, ge=0, description="Seed win signal (e): days of disciplined prompt iteration without gain")
    classic_margin: float = Field(0.01, ge=0, le=1, description="A classic classifier 'matches' the LLMs when within this much of the best (metric units)")

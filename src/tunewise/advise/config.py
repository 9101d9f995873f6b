"""Settings of `tunewise advise` and `tunewise roi`.

The fine-tuning guide's bars (10k+ consistent examples, the sub-5k coin flip, 85% agreement) are not
here: advise reads `data.thresholds` (`tunewise.data.config.Thresholds`), the object the audit reads.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Settings that moved to data.thresholds; a workspace YAML that still sets them gets told where.
MOVED_TO_THRESHOLDS = {"min_examples": "full_sft_from", "floor_examples": "coin_flip_below", "min_agreement": "agreement_bar"}


class AdviseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pricing_file: str | None = Field(None, description="A YAML file of pricing rows that override or add to the built-in catalog")
    base_model: str = Field("gpt-5-mini", description="Catalog row of the prompted model the team uses today (prices the baseline)")
    provider_model: str | None = Field(None, description="Catalog row of the planned provider fine-tune; empty means the base model")
    open_model_row: str = Field("selfhost-h100", description="Catalog self-hosted row that trains and serves an open model (LoRA option, migration path)")
    epochs: int = Field(3, ge=1, description="Epochs a training run makes over the audited data (billable tokens = per-epoch tokens x epochs)")
    horizon_months: int = Field(12, ge=1, le=120, description="Months of the ROI horizon (year 1 by default)")
    spend_threshold_usd: float = Field(5_000, ge=0, description="The ROI guide's checklist, step 5: monthly base-model spend above which fine-tuning can pay")
    cost_per_1k_threshold_usd: float = Field(0.50, ge=0, description="Win signal (d): base cost per 1k inferences above this")
    plateau_days: int = Field(30, ge=0, description="Win signal (e): days of disciplined prompt iteration without gain")
    data_gain_margin: float = Field(0.01, ge=0, description="A learning curve's projected gain from doubling the data above this means more data would help (metric units)")
    classic_margin: float = Field(0.01, ge=0, le=1, description="A classic classifier 'matches' the LLMs when within this much of the best (metric units)")

    @model_validator(mode="before")
    @classmethod
    def _moved_to_thresholds(cls, data: Any) -> Any:
        moved = [key for key in MOVED_TO_THRESHOLDS if isinstance(data, dict) and key in data]
        if moved:
            raise ValueError("; ".join(f"{key} moved to data.thresholds.{MOVED_TO_THRESHOLDS[key]}" for key in moved))
        return data

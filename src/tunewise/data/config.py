"""Settings of `tunewise data` (import, audit, clean, split), and the fine-tuning guide's thresholds.

`Thresholds` is the one place the readiness and label-quality bars are defined; the audit, its page,
the CLI and `tunewise advise` all read `load_config().data.thresholds`.
"""

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Thresholds(BaseModel):
    """The fine-tuning guide's bars for data readiness and label quality."""

    model_config = ConfigDict(extra="forbid")

    agreement_bar: float = Field(
        0.85, ge=0.0, le=1.0, description="Inter-annotator agreement labels need to count as consistent (the guide: 'agreement above 85%')"
    )
    coin_flip_below: int = Field(5_000, ge=0, description="Fewer unique examples than this: a fine-tune is a coin flip (the guide: 'Sub-5k SFT is a coin flip')")
    full_sft_from: int = Field(10_000, ge=0, description="From this many unique examples full SFT reliably pays off; between the two bars is LoRA territory")
    eval_min: int = Field(500, ge=1, description="Smallest held-out eval set the guide asks for ('500-2,000 examples')")
    eval_max: int = Field(2_000, ge=1, description="Largest useful eval set; rows beyond it could train instead")

    @model_validator(mode="after")
    def _ordered(self):
        if self.coin_flip_below > self.full_sft_from:
            raise ValueError(f"coin_flip_below ({self.coin_flip_below}) must not exceed full_sft_from ({self.full_sft_from})")
        if self.eval_min > self.eval_max:
            raise ValueError(f"eval_min ({self.eval_min}) must not exceed eval_max ({self.eval_max})")
        return self


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    near_duplicate_threshold: float = Field(
        0.4, ge=0.0, le=1.0, description="Jaccard similarity of word shingles above which two rows are near duplicates (the fine-tuning guide's '>40% overlap' rule)"
    )
    eval_size: int = Field(300, ge=1, description="Rows held out by `tunewise data split` when --eval-size is not given")
    seed: int = Field(0, description="Random seed for splits and sampling")
    max_line_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Lines longer than this many bytes are rejected unread (quarantined), so one huge line cannot exhaust memory"
    )
    problems_shown: int = Field(10, ge=0, description="How many rejected rows `tunewise data import/clean/split` print (all are in the quarantine file)")
    thresholds: Thresholds = Field(default_factory=Thresholds, description="The fine-tuning guide's readiness and label-quality bars (audit, advise)")

"""Settings of `tunewise data` (import, audit, clean, split)."""

from pydantic import BaseModel, ConfigDict, Field

# The fine-tuning guide's bars, read by the audit, its HTML page, the CLI and `tunewise advise`.
AGREEMENT_BAR = 0.85  # "'Consistent' means inter-annotator agreement above 85%"
EVAL_MIN, EVAL_MAX = 500, 2_000  # "a held-out eval set of 500-2,000 examples"
COIN_FLIP_BELOW, FULL_SFT_FROM = 5_000, 10_000  # "Sub-5k SFT is a coin flip", "10k+ ... reliably"


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

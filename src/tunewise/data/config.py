"""Settings of `tunewise data` (import, audit, clean, split)."""

from pydantic import BaseModel, ConfigDict, Field


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    near_duplicate_threshold: float = Field(
        0.4, ge=0.0, le=1.0, description="Jaccard similarity of word shingles above which two rows are near duplicates (the seed's '>40% overlap' rule)"
    )
    eval_size: int = Field(300, ge=1, description="Rows held out by `tunewise data split` when --eval-size is not given")
    seed: int = Field(0, description="Seed for splits and sampling")

"""Settings of `tunewise advise` and `tunewise roi`."""

from pydantic import BaseModel, ConfigDict, Field


class AdviseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pricing_file: str | None = Field(None, description="A YAML file of pricing rows that override or add to the built-in catalog")

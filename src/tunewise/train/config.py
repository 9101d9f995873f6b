"""Settings of `tunewise train`: one typed object, loaded from YAML, overridden by flags, saved beside every run."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["lora", "qlora", "full"] = Field("lora", description="lora (default), qlora (GPU + bitsandbytes) or full fine-tuning")
    epochs: float = Field(1.0, gt=0, description="Passes over the training set")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate")
    seed: int = Field(0, description="Random seed (data order, LoRA init)")

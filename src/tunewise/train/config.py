"""Settings of `tunewise train`: one typed object, loaded from YAML, overridden by flags, saved beside every run."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # -- what to train ---------------------------------------------------------------------------
    method: Literal["lora", "qlora", "full"] = Field("lora", description="lora (default), qlora (GPU + bitsandbytes) or full fine-tuning")
    model: str = Field("smollm2-135m", description="Base model: 'smollm2-135m' (embedded), a local Hugging Face folder or a .gguf file")
    dataset: str | None = Field(None, description="Training data: a registered dataset id or a chat JSONL path (OpenAI format)")
    eval_dataset: str | None = Field(None, description="Held-out data for eval loss and early stopping: a dataset id or a chat JSONL path")
    max_train_examples: int | None = Field(
        None, ge=1, description="Train on a seeded, label-stratified subset of this many examples (empty: all)"
    )
    max_eval_examples: int | None = Field(200, ge=1, description="Score each evaluation on at most this many eval examples (seeded subset)")
    holdout: int | None = Field(
        None, ge=0, description="Without eval_dataset, hold out this many training examples (stratified) to score during training (empty: the recipe picks about 10%, 30-200, and none below 120 examples; 0: none)"
    )
    assistant_only_loss: bool = Field(True, description="Compute the loss on assistant tokens only (the chat template's generation markers)")

    # -- schedule --------------------------------------------------------------------------------
    epochs: float | None = Field(None, gt=0, description="Passes over the training set (empty: the recipe picks 1-5 from the data size)")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: run all epochs)")
    time_budget_minutes: float | None = Field(
        None, gt=0, description="Fit training (steps and evaluations) into this many minutes: the step count comes from a measured probe of 3 steps"
    )
    learning_rate: float | None = Field(None, gt=0, description="Peak learning rate (empty: the recipe picks it from the model size and method)")
    lr_scheduler: str = Field("linear", description="Learning-rate schedule: linear, cosine, constant, constant_with_warmup, ...")
    warmup_ratio: float = Field(0.03, ge=0, le=1, description="Share of the steps spent warming the learning rate up")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    batch_size: int | None = Field(None, ge=1, description="Examples per device per step (empty: the recipe picks it from the hardware)")
    gradient_accumulation: int = Field(1, ge=1, description="Steps accumulated before each optimizer update")
    max_seq_length: int | None = Field(None, ge=8, description="Longer examples are truncated to this many tokens (empty: the recipe fits 99% of the examples)")
    packing: bool = Field(False, description="Pack several examples into each max_seq_length row (best-fit, no cross-attention on GPU)")
    group_by_length: bool = Field(True, description="Batch examples of similar length together (less padding, faster on CPU)")
    seed: int = Field(0, description="Random seed (data order, subset, held-out rows, LoRA init)")
    data_seed: int | None = Field(None, description="Seed of the training order only (empty: seed); the held-out rows stay those of seed")
    init_adapter: str | None = Field(
        None, description="Start from this LoRA adapter (a run id or folder with the same rank, layers and modules) instead of fresh weights"
    )

    # -- LoRA ------------------------------------------------------------------------------------
    lora_r: int | None = Field(None, ge=1, description="LoRA rank (empty: the recipe picks 16)")
    lora_alpha: int | None = Field(None, ge=1, description="LoRA alpha, scale = alpha / r (empty: 2 x rank)")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input")
    target_modules: list[str] | str = Field(
        "all-linear", description="Modules that get LoRA: 'all-linear' or a list such as [q_proj, v_proj]"
    )
    lora_layers: int | None = Field(
        None, ge=1, description="Apply LoRA only to the top N transformer layers, so backward stops early (empty: the recipe picks the top third on CPU, all on GPU)"
    )

    # -- checkpoints, evaluation, stopping ------------------------------------------------------
    logging_steps: int = Field(5, ge=1, description="Log (and record in the store) every N steps")
    eval_steps: int | None = Field(None, ge=1, description="Score the held-out set every N steps (empty: about 5 times per run)")
    save_steps: int = Field(50, ge=1, description="Write a resumable checkpoint every N steps")
    save_total_limit: int = Field(2, ge=1, description="Keep at most this many checkpoints")
    early_stopping_patience: int = Field(
        3, ge=0, description="Stop after this many evaluations without a better held-out score (accuracy for classification, else loss); 0: never stop early"
    )
    output_dir: str | None = Field(None, description="Where the run writes checkpoints and artifacts (empty: runs/RUN_ID in the workspace)")

    # -- hardware --------------------------------------------------------------------------------
    hourly_usd: float | None = Field(None, ge=0, description="What an hour of this machine costs (empty: hardware.hourly_usd of tunewise.yaml)")
    threads: int | None = Field(None, ge=1, description="CPU threads for torch (empty: every core this process may use)")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: fp32 on CPU, bf16 on a GPU that supports it (else fp16)"
    )
    attn_implementation: str | None = Field(
        None, description="Attention kernel: sdpa, flash_attention_2, eager (empty: sdpa; flash_attention_2 on GPU when installed)"
    )
    padding_free: bool = Field(False, description="GPU: flatten each batch into one sequence without padding (needs flash attention)")
    use_liger: bool = Field(False, description="GPU: Liger kernels (RMSNorm, RoPE, SwiGLU) when liger-kernel is installed")
    torch_compile: bool = Field(False, description="GPU: compile the model with torch.compile")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward: less memory, about 30% slower")

"""The TRL SFTTrainer of a local run: the model (LoRA, QLoRA or full), and TrainConfig -> SFTConfig.

    from tunewise.train.trainer import build_trainer, sft_arguments
    trainer = build_trainer(config, data, tokenizer, model_folder, fast.detect_hardware(config))

`SFT_FIELDS` declares which TrainConfig setting becomes which SFTConfig argument; `SFT_FIXED` what
every run sets the same way; `sft_arguments` adds the few that depend on the hardware. A test checks
the names on both sides, so a renamed TRL argument fails there, not in the middle of a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunewise.errors import TrainingError
from tunewise.models import LOCAL_ONLY
from tunewise.train.config import TrainConfig

if TYPE_CHECKING:
    from tunewise.train.data import PreparedData
    from tunewise.train.fast import Hardware

# TrainConfig setting -> the SFTConfig arguments that take its value as it is.
SFT_FIELDS: dict[str, tuple[str, ...]] = {
    "epochs": ("num_train_epochs",),
    "max_steps": ("max_steps",),
    "batch_size": ("per_device_train_batch_size", "per_device_eval_batch_size"),
    "gradient_accumulation": ("gradient_accumulation_steps",),
    "learning_rate": ("learning_rate",),
    "lr_scheduler": ("lr_scheduler_type",),
    "warmup_ratio": ("warmup_steps",),  # transformers reads a warmup_steps below 1 as a share of the steps
    "weight_decay": ("weight_decay",),
    "logging_steps": ("logging_steps",),
    "save_steps": ("save_steps",),
    "save_total_limit": ("save_total_limit",),
    "seed": ("seed",),
    "gradient_checkpointing": ("gradient_checkpointing",),
    "max_seq_length": ("max_length",),
    "packing": ("packing",),
}

# The same for every run.
SFT_FIXED: dict[str, Any] = {
    "save_strategy": "steps",
    "eval_strategy": "no",  # HeldOutCallback scores the eval rows: loss and task accuracy in one pass
    "use_liger_kernel": False,  # build_trainer applies Liger to the model (TRL's flag is deprecated)
    "report_to": "none",
    "disable_tqdm": True,  # the run's Rich display is the progress
    "dataloader_num_workers": 0,
    "dataset_num_proc": None,
    "save_only_model": False,  # a checkpoint must hold the optimizer state to resume
}


def sft_arguments(config: TrainConfig, hardware: Hardware, *, padding_free: bool) -> dict[str, Any]:
    """The keyword arguments of TRL's SFTConfig for a run of `config` (every recipe setting filled in)."""
    arguments = {target: getattr(config, name) for name, targets in SFT_FIELDS.items() for target in targets}
    arguments.update(SFT_FIXED)
    # The ones that depend on the hardware or on a second setting.
    arguments.update(
        output_dir=str(Path(config.output_dir) / "checkpoints"),
        data_seed=config.seed if config.data_seed is None else config.data_seed,
        bf16=hardware.precision == "bf16",
        fp16=hardware.precision == "fp16",
        use_cpu=hardware.device == "cpu",
        padding_free=padding_free,
        train_sampling_strategy="group_by_length" if config.group_by_length and not config.packing else "random",
        torch_compile=config.torch_compile and hardware.device == "cuda",
    )
    return arguments


def build_trainer(config: TrainConfig, data: PreparedData, tokenizer, model_folder: Path, hardware: Hardware):
    """An SFTTrainer for `config` on prepared data (public so that benchmarks and tests can inspect it)."""
    import datasets
    import torch
    from transformers import AutoModelForCausalLM, PrinterCallback, ProgressCallback
    from transformers.trainer_utils import set_seed
    from trl import SFTConfig, SFTTrainer

    from tunewise.train import fast

    _quiet_libraries()
    set_seed(config.seed)
    model_kwargs: dict[str, Any] = {"dtype": hardware.torch_dtype}
    attn = fast.attention_implementation(config, hardware)
    if attn:
        model_kwargs["attn_implementation"] = attn
    if config.method == "qlora":
        model_kwargs["quantization_config"] = fast.qlora_quantization(hardware)
        model_kwargs["device_map"] = {"": 0}
    model = AutoModelForCausalLM.from_pretrained(model_folder, **model_kwargs, **LOCAL_ONLY)
    if config.use_liger:
        fast.apply_liger(model, hardware)
    if config.method in {"lora", "qlora"}:
        model = _with_lora(model, config)

    train_ds = datasets.Dataset.from_dict({"input_ids": data.train.input_ids, "labels": data.train.labels})
    args = SFTConfig(**sft_arguments(config, hardware, padding_free=fast.padding_free_ok(config, hardware, attn)))
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, processing_class=tokenizer)
    trainer.remove_callback(PrinterCallback)  # our Rich display replaces the printed log dicts
    trainer.remove_callback(ProgressCallback)
    if torch.cuda.is_available() and hardware.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    return trainer


def _with_lora(model, config: TrainConfig):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if config.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    layers = None
    if config.lora_layers:
        total = model.config.get_text_config().num_hidden_layers
        layers = list(range(max(0, total - config.lora_layers), total))
    targets = config.target_modules
    if layers is not None and isinstance(targets, str):
        targets = _linear_module_names(model)  # PEFT's layers_to_transform needs a list, not 'all-linear'
    peft_config = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, peft_config)
    if config.init_adapter:
        _warm_start(model, Path(config.init_adapter))
    return model


def _warm_start(model, folder: Path) -> None:
    """Start from an earlier run's LoRA weights (same rank, layers and modules), e.g. a search's best trial."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():
        raise TrainingError(f"init_adapter {folder}: no adapter_model.safetensors there")
    mismatch = TrainingError(
        f"init_adapter {folder}: its LoRA weights do not fit this run (different lora_r, lora_layers or target_modules)"
    )
    try:
        loaded = set_peft_model_state_dict(model, load_file(str(weights)))
    except RuntimeError as exc:  # torch's size-mismatch error when the ranks differ
        raise mismatch from exc
    missing = [k for k in getattr(loaded, "missing_keys", []) if "lora_" in k]
    if getattr(loaded, "unexpected_keys", None) or missing:
        raise mismatch


def _linear_module_names(model) -> list[str]:
    """Short names of the Linear layers inside the transformer blocks (what 'all-linear' means, minus the LM head)."""
    import torch

    output = model.get_output_embeddings()
    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear) and module is not output}
    return sorted(names)


def _quiet_libraries() -> None:
    # The Rich display is the progress; datasets' map bars and transformers' deprecation notes are noise here.
    import warnings

    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
    warnings.filterwarnings("ignore", category=FutureWarning, module="trl")
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")


__all__ = ["SFT_FIELDS", "SFT_FIXED", "build_trainer", "sft_arguments"]

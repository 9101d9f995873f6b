"""Tiny served models: a lively random-init base (so that different paths give different tokens) and random LoRA
adapters saved as PEFT folders, as `tunewise train` saves them."""

from __future__ import annotations

from pathlib import Path

import pytest


def lively(model, seed: int = 1):
    """Larger random weights: a plain random init only ever emits newlines, which makes any two paths agree."""
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0, 0.3)
    return model


@pytest.fixture(scope="session")
def served_base_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with lively weights, saved as a folder a server can load."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = tmp_path_factory.mktemp("served-base")
    model = lively(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(target)
    return target


def make_adapter(base_dir: Path, target: Path, *, seed: int, r: int = 4, targets="all-linear", **lora) -> Path:
    """A random LoRA adapter over `base_dir` (B is not zero, so it changes the replies), saved as PEFT saves it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir)
    model = get_peft_model(base, LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets, task_type="CAUSAL_LM", **lora))
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.normal_(0, 0.4)
    model.save_pretrained(target)
    (target / "tunewise-base.txt").write_text(str(base_dir), encoding="utf-8")
    return target


@pytest.fixture(scope="session")
def adapter_dirs(served_base_dir, tmp_path_factory) -> dict[str, Path]:
    """Three adapters of different ranks and layers over the served base."""
    root = tmp_path_factory.mktemp("adapters")
    return {
        "alpha": make_adapter(served_base_dir, root / "alpha", seed=11, r=4),
        "beta": make_adapter(served_base_dir, root / "beta", seed=12, r=8, targets=["q_proj", "v_proj"]),
        "gamma": make_adapter(served_base_dir, root / "gamma", seed=13, r=2, use_rslora=True),
    }

"""Training: local LoRA / QLoRA / full SFT (TRL + PEFT), export, multi-GPU launch; provider jobs in `providers/`.

    from tunewise.train import TrainConfig, train, load_trained
    run = train(TrainConfig(dataset="train.jsonl", max_train_examples=400))
    model, tokenizer = load_trained(run)
"""

from tunewise.train.config import TrainConfig
from tunewise.train.local import last_checkpoint, load_trained, resume, train
from tunewise.train.presets import demo_train_config

__all__ = ["TrainConfig", "train", "resume", "load_trained", "last_checkpoint", "demo_train_config", "export"]


def export(*args, **kwargs):
    """Merge a run's adapter into its base and write safetensors or GGUF (see `tunewise.train.export.export`)."""
    from tunewise.train.export import export as _export

    return _export(*args, **kwargs)

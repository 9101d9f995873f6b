"""Multi-process training through `accelerate launch`: config generation, and a 2-process CPU (gloo) run."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest
import yaml

from .conftest import tiny_config


def _config(tmp_path, **overrides):
    from tunewise.train import TrainConfig

    data = tmp_path / "train.jsonl"
    data.touch()
    return TrainConfig(dataset=str(data), **overrides)


def test_fsdp_config_on_a_bf16_gpu(tmp_path, monkeypatch):
    import torch

    from tunewise.train.launch import accelerate_config

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    settings = accelerate_config(_config(tmp_path, gradient_checkpointing=True), strategy="fsdp", num_processes=8, cuda=True)
    assert settings["distributed_type"] == "FSDP" and settings["num_processes"] == 8
    assert settings["mixed_precision"] == "bf16"
    fsdp = settings["fsdp_config"]
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["fsdp_activation_checkpointing"] is True


def test_deepspeed_config_and_precision_per_hardware(tmp_path, monkeypatch):
    import torch

    from tunewise.train.launch import accelerate_config

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # a V100 or T4
    settings = accelerate_config(_config(tmp_path, gradient_accumulation=4), strategy="deepspeed", num_processes=4, cuda=True, zero_stage=2)
    assert settings["distributed_type"] == "DEEPSPEED" and settings["mixed_precision"] == "fp16"
    assert settings["deepspeed_config"]["zero_stage"] == 2
    assert settings["deepspeed_config"]["gradient_accumulation_steps"] == 4
    cpu = accelerate_config(_config(tmp_path), strategy="ddp", num_processes=2, cuda=False)
    assert cpu["mixed_precision"] == "no" and cpu["distributed_type"] == "MULTI_GPU"


def test_bad_launcher_settings_are_one_line_errors(tmp_path):
    from tunewise.errors import TrainingError
    from tunewise.train.launch import accelerate_config, prepare_launch

    with pytest.raises(TrainingError, match="choose one of fsdp, deepspeed, ddp"):
        accelerate_config(_config(tmp_path), strategy="horovod", cuda=False)
    if importlib.util.find_spec("deepspeed") is None:
        with pytest.raises(TrainingError, match="pip install deepspeed"):
            prepare_launch(_config(tmp_path), strategy="deepspeed", cuda=False)


def test_prepare_writes_the_run_folder(tmp_path):
    from tunewise.config import load_yaml_model
    from tunewise.train import TrainConfig
    from tunewise.train.launch import prepare_launch

    run_id, config, command = prepare_launch(_config(tmp_path, lora_r=4), strategy="fsdp", num_processes=2, cuda=False)
    folder = Path(config.output_dir)
    assert folder.name == run_id and config.threads >= 1
    accelerate = yaml.safe_load((folder / "accelerate.yaml").read_text())
    assert accelerate["distributed_type"] == "FSDP" and accelerate["num_processes"] == 2
    saved = load_yaml_model(folder / "config.yaml", TrainConfig)
    assert saved.lora_r == 4 and Path(saved.dataset).is_absolute()
    assert command[1:4] == ["-m", "accelerate.commands.launch", "--config_file"]
    assert command[-4:-2] == [str(folder / "config.yaml"), "--run-id"] or command[-3:] == [str(folder / "config.yaml"), "--run-id", run_id]
    assert "tunewise.train.worker" in (folder / "launch.sh").read_text()


def _loopback_tcp() -> bool:
    """Whether this host can listen and connect on 127.0.0.1, which the processes' gloo rendezvous needs."""
    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            with socket.create_connection(server.getsockname(), timeout=2):
                return True
    except OSError:
        return False


def test_two_cpu_processes_train_one_run(tiny_model_dir, chat_files, store, tmp_path):
    """Skipped only on a host without loopback TCP (checked first); any other failure to start is a failure."""
    from tunewise.train.launch import launch

    if not _loopback_tcp():
        pytest.skip("no TCP on 127.0.0.1: torch.distributed cannot rendezvous two processes on this host")
    train_path, eval_path = chat_files
    config = tiny_config(tiny_model_dir, train_path, eval_path, max_steps=3, threads=1, output_dir=str(tmp_path / "run"))
    run = launch(config, strategy="ddp", num_processes=2, store=store, quiet=True, timeout=120)
    assert run.status == "completed" and run.metrics["processes"] == 2
    assert (Path(run.artifacts["adapter"]) / "adapter_model.safetensors").exists()
    assert Path(run.artifacts["accelerate_config"]).exists()
    assert "eval_loss" in run.metrics

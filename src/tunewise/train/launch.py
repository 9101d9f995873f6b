"""Many processes (GPUs, or CPU processes with gloo) through `accelerate launch`: no home-made engine.

    from tunewise.train.launch import launch
    run = launch(TrainConfig(dataset="train.jsonl"), strategy="fsdp", num_processes=8)

`launch` writes the run's config and an accelerate config (FSDP, DeepSpeed ZeRO or plain DDP, mixed
precision from the hardware) into the run folder, then runs
`python -m accelerate.commands.launch --config_file <run>/accelerate.yaml -m tunewise.train.worker <run>/config.yaml --run-id RUN`.
Every process trains with the same `tunewise.train.train`; process 0 records the run in the store.
Rerun by hand with the same command (printed and saved in `<run>/launch.sh`) on each node.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tunewise.errors import TrainingError
from tunewise.train.config import TrainConfig

STRATEGIES = ("fsdp", "deepspeed", "ddp")
ACCELERATE_FILE = "accelerate.yaml"


def mixed_precision(config: TrainConfig, *, cuda: bool | None = None) -> str:
    """accelerate's `mixed_precision`: bf16 on GPUs that support it, else fp16; 'no' on CPU."""
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    if not cuda:
        return "no"
    if config.precision in ("bf16", "fp16"):
        return config.precision
    if config.precision == "fp32":
        return "no"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def accelerate_config(
    config: TrainConfig,
    *,
    strategy: str = "fsdp",
    num_processes: int = 2,
    num_machines: int = 1,
    cuda: bool | None = None,
    zero_stage: int = 3,
    main_process_port: int | None = None,
) -> dict[str, Any]:
    """The accelerate config for one run, as a dict (written as YAML by `write_accelerate_config`)."""
    if strategy not in STRATEGIES:
        raise TrainingError(f"launcher strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    if num_processes < 1:
        raise TrainingError("--num-processes must be at least 1")
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    if config.method == "qlora" and strategy == "deepspeed" and zero_stage == 3:
        raise TrainingError("qlora with DeepSpeed ZeRO-3 is not supported by bitsandbytes here; use --fsdp or zero_stage 2")
    precision = mixed_precision(config, cuda=cuda)
    settings: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "num_machines": num_machines,
        "num_processes": num_processes,
        "machine_rank": 0,
        "mixed_precision": precision,
        "main_training_function": "main",
        "rdzv_backend": "static",
        "same_network": True,
        "main_process_ip": "127.0.0.1",
        "main_process_port": main_process_port or 29500,
        "use_cpu": False,  # on CPU, torchrun still starts the processes; each trains on CPU with gloo
        "gpu_ids": "all",
        "downcast_bf16": "no",
    }
    if strategy == "fsdp":
        settings["distributed_type"] = "FSDP"
        settings["fsdp_config"] = {
            "fsdp_version": 2,
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",  # decoder layers, from the model's _no_split_modules
            "fsdp_cpu_ram_efficient_loading": True,
            "fsdp_offload_params": False,
            "fsdp_reshard_after_forward": True,
            "fsdp_state_dict_type": "SHARDED_STATE_DICT",  # fast checkpoints; save_model gathers the full adapter
            "fsdp_activation_checkpointing": bool(config.gradient_checkpointing),
        }
    elif strategy == "deepspeed":
        settings["distributed_type"] = "DEEPSPEED"
        settings["deepspeed_config"] = {
            "zero_stage": zero_stage,
            "gradient_accumulation_steps": config.gradient_accumulation,
            "gradient_clipping": 1.0,
            "offload_optimizer_device": "none",
            "offload_param_device": "none",
            "zero3_init_flag": zero_stage == 3 and config.method == "full",
            "zero3_save_16bit_model": zero_stage == 3,
        }
    else:
        settings["distributed_type"] = "MULTI_GPU"  # DDP; accelerate's torchrun launcher, also used for CPU processes
    return settings


def write_accelerate_config(settings: dict[str, Any], folder: Path) -> Path:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ACCELERATE_FILE
    header = "# Written by `tunewise train --launcher accelerate`; pass to `accelerate launch --config_file`.\n"
    path.write_text(header + yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


def launch_command(accelerate_file: Path, config_file: Path, run_id: str) -> list[str]:
    return [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(accelerate_file),
        "-m", "tunewise.train.worker", str(config_file), "--run-id", run_id,
    ]


def prepare_launch(
    config: TrainConfig, *, strategy: str = "fsdp", num_processes: int = 2, cuda: bool | None = None, zero_stage: int = 3,
    store=None,
) -> tuple[str, TrainConfig, list[str]]:
    """Pick the run id and folder, write config.yaml, accelerate.yaml and launch.sh; return (run_id, config, command)."""
    from tunewise.config import override, save_config
    from tunewise.store import Store
    from tunewise.store.models import new_id
    from tunewise.train.local import CONFIG_FILE, _runs_dir, resolve_dataset

    if config.dataset is None:
        raise TrainingError("no training data: set train.dataset (a dataset id or a chat JSONL path) or pass --data")
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    if strategy == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        raise TrainingError("--deepspeed needs the deepspeed package: `pip install deepspeed` (or use --fsdp)")
    run_id = new_id("run")
    output_dir = Path(config.output_dir) if config.output_dir else _runs_dir() / run_id
    updates: dict[str, Any] = {"output_dir": str(output_dir.resolve())}
    # Every process reads the data itself: dataset ids become absolute paths (process 0 finds the id again by hash).
    with Store.borrow(store) as store:
        updates["dataset"] = str(resolve_dataset(config.dataset, store)[0].resolve())
        if config.eval_dataset:
            updates["eval_dataset"] = str(resolve_dataset(config.eval_dataset, store)[0].resolve())
    if not cuda and config.threads is None:
        from tunewise.train.fast import available_cores

        updates["threads"] = max(1, available_cores() // num_processes)  # processes share the cores
    config = override(config, **updates)
    config_file = save_config(config, output_dir / CONFIG_FILE)
    settings = accelerate_config(config, strategy=strategy, num_processes=num_processes, cuda=cuda, zero_stage=zero_stage,
                                 main_process_port=_free_port())
    accelerate_file = write_accelerate_config(settings, output_dir)
    command = launch_command(accelerate_file, config_file, run_id)
    (output_dir / "launch.sh").write_text("#!/bin/sh\n" + shlex.join(command) + "\n", encoding="utf-8")
    return run_id, config, command


def launch(
    config: TrainConfig, *, strategy: str = "fsdp", num_processes: int = 2, store=None, zero_stage: int = 3,
    quiet: bool = False, timeout: float | None = None,
):
    """Train with `num_processes` processes under `accelerate launch`; returns the finished Run.

    Example: run = launch(TrainConfig(dataset="train.jsonl", model="./llama-3.2-1b"), strategy="fsdp", num_processes=8)
    """
    from tunewise.store import Store

    run_id, config, command = prepare_launch(config, strategy=strategy, num_processes=num_processes, zero_stage=zero_stage, store=store)
    env = dict(os.environ)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONUNBUFFERED"] = "1"
    if store is not None:
        env["TUNEWISE_DB_URL"] = str(store.engine.url.render_as_string(hide_password=False))
    log_path = Path(config.output_dir) / "launch.log"
    try:
        with open(log_path, "w", encoding="utf-8") as log:
            process = subprocess.run(
                command, env=env, stdout=log if quiet else None, stderr=subprocess.STDOUT if quiet else None, timeout=timeout
            )
    except subprocess.TimeoutExpired as exc:
        raise TrainingError(f"accelerate launch ran past {timeout:.0f} s; see {log_path}") from exc
    except FileNotFoundError as exc:
        raise TrainingError(f"cannot start accelerate ({exc}); `pip install accelerate`") from exc

    with Store.borrow(store) as store:
        from tunewise.errors import NotFoundError

        try:
            run = store.get_run(run_id)
        except NotFoundError:
            run = None
        if process.returncode != 0 or run is None or run.status != "completed":
            reason = (run.error if run is not None and run.error else None) or _last_line(log_path) or f"exit code {process.returncode}"
            raise TrainingError(f"accelerate launch failed for run {run_id}: {reason} (command in {Path(config.output_dir) / 'launch.sh'})")
        artifacts = dict(run.artifacts or {})
        artifacts["accelerate_config"] = str(Path(config.output_dir) / ACCELERATE_FILE)
        metrics = dict(run.metrics or {})
        metrics.update(processes=num_processes, strategy=strategy)
        return store.update_run(run_id, artifacts=artifacts, metrics=metrics)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _last_line(path: Path) -> str | None:
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return None
    return lines[-1][:300] if lines else None


__all__ = ["launch", "prepare_launch", "accelerate_config", "write_accelerate_config", "launch_command", "mixed_precision", "STRATEGIES"]

"""`tunewise train | runs | export` end to end on the tiny model: config layering, run listing, export, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tunewise.cli import app, main

runner = CliRunner()

TINY_FLAGS = ["--batch-size", "8", "--max-seq-length", "64", "--lora-alpha", "8", "--lora-dropout", "0", "--logging-steps", "1",
              "--warmup-ratio", "0", "--threads", "1"]


def run_main(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_train_layers_workspace_config_file_and_flags(tiny_model_dir, chat_files, isolated_workspace, tmp_path, store):
    train_path, eval_path = chat_files
    (isolated_workspace / "tunewise.yaml").write_text(yaml.safe_dump({"train": {"seed": 7, "lora_r": 2, "learning_rate": 1e-4}}))
    config_file = tmp_path / "train.yaml"
    config_file.write_text(yaml.safe_dump({"train": {"lora_r": 4, "learning_rate": 1e-3, "max_steps": 2}}))

    result = runner.invoke(app, ["train", "--config", str(config_file), "--data", str(train_path), "--eval-data", str(eval_path),
                                 "--model", str(tiny_model_dir), "--lr", "5e-3", "--target-modules", "q_proj,v_proj", *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    run = store.list_runs()[0]
    assert run.status == "completed" and run.id in result.output
    saved = yaml.safe_load(Path(run.artifacts["config"]).read_text())
    assert saved["seed"] == 7  # tunewise.yaml
    assert saved["lora_r"] == 4 and saved["max_steps"] == 2  # --config over tunewise.yaml
    assert saved["learning_rate"] == 5e-3  # flag over --config
    assert saved["target_modules"] == ["q_proj", "v_proj"]
    assert "eval_loss" in run.metrics

    listed = runner.invoke(app, ["runs"])
    assert listed.exit_code == 0 and run.id in listed.output and "completed" in listed.output
    shown = runner.invoke(app, ["runs", run.id, "--steps", "5"])
    assert shown.exit_code == 0 and "learning_rate" in shown.output and "logged steps" in shown.output
    as_json = json.loads(runner.invoke(app, ["runs", run.id, "--json"]).output)
    assert as_json["id"] == run.id and as_json["steps"]

    gguf_path = tmp_path / "tiny.gguf"
    exported = runner.invoke(app, ["export", run.id, "--format", "gguf", "--gguf-type", "f32", "-o", str(gguf_path)])
    assert exported.exit_code == 0, exported.output
    assert gguf_path.exists() and store.get_run(run.id).artifacts["gguf"] == str(gguf_path)
    merged = runner.invoke(app, ["export", run.id, "--merge"])
    assert merged.exit_code == 0, merged.output
    assert (Path(run.output_dir) / "merged" / "model.safetensors").exists()


def test_provider_flag_calls_the_provider_path(monkeypatch, chat_files):
    import tunewise.train.providers as providers

    seen = {}

    def fake(provider, **kwargs):
        seen.update(provider=provider, **kwargs)
        from tunewise.store.models import Run

        return Run(id="run-x", kind="provider", status="completed", base_model=kwargs["model"], metrics={}, artifacts={})

    monkeypatch.setattr(providers, "train_with_provider", fake)
    train_path, _ = chat_files
    result = runner.invoke(app, ["train", "--provider", "openai", "--model", "gpt-4.1-mini-2025-04-14", "--data", str(train_path),
                                 "--epochs", "3", "--hp", "learning_rate_multiplier=2", "--yes"])
    assert result.exit_code == 0, result.output
    assert seen["provider"] == "openai" and seen["yes"] is True
    assert seen["hyperparameters"] == {"n_epochs": 3, "learning_rate_multiplier": 2}


def test_launcher_flags_reach_the_launcher(monkeypatch, chat_files):
    import tunewise.train.launch as launch_module

    seen = {}

    def fake(config, **kwargs):
        seen.update(kwargs, config=config)
        from tunewise.store.models import Run

        return Run(id="run-y", kind="lora", status="completed", base_model=config.model, metrics={}, artifacts={})

    monkeypatch.setattr(launch_module, "launch", fake)
    train_path, _ = chat_files
    result = runner.invoke(app, ["train", "--data", str(train_path), "--launcher", "accelerate", "--fsdp", "--num-processes", "4"])
    assert result.exit_code == 0, result.output
    assert seen["strategy"] == "fsdp" and seen["num_processes"] == 4


# Flags that README.md, docs/, the demo and users' scripts rely on: generated or kept as aliases.
KNOWN_FLAGS = ["--data", "--eval-data", "--model", "--method", "--epochs", "--max-steps", "--time-budget", "--holdout",
               "--init-adapter", "--lr", "--lr-scheduler", "--warmup-ratio", "--batch-size", "--grad-accum", "--max-seq-length",
               "--packing", "--no-packing", "--lora-r", "--lora-alpha", "--lora-dropout", "--target-modules", "--lora-layers",
               "--max-train-examples", "--max-eval-examples", "--seed", "--logging-steps", "--eval-steps", "--save-steps",
               "--early-stopping-patience", "--output-dir", "--hourly-usd", "--threads", "--precision", "--gradient-checkpointing",
               "--no-gradient-checkpointing", "--padding-free", "--liger", "--no-liger", "--torch-compile", "--config", "--search",
               "--resume", "--provider", "--hp", "--yes", "-y", "--launcher", "--fsdp", "--deepspeed", "--zero-stage", "--num-processes"]


def _train_flags() -> set[str]:
    import typer.main

    command = typer.main.get_command(app).commands["train"]
    return {name for param in command.params for name in (*param.opts, *param.secondary_opts)}


def test_every_train_setting_has_a_flag_and_old_flags_still_work():
    from tunewise.train.config import TrainConfig

    flags = _train_flags()
    assert {"--" + name.replace("_", "-") for name in TrainConfig.model_fields} <= flags
    assert not set(KNOWN_FLAGS) - flags


def test_flags_reach_the_config_and_left_out_ones_keep_the_yaml(monkeypatch, isolated_workspace):
    import tunewise.train as train_module

    seen = []
    monkeypatch.setattr(train_module, "train", lambda config: seen.append(config) or _fake_run(config))
    (isolated_workspace / "tunewise.yaml").write_text(yaml.safe_dump({"train": {"lora_r": 2, "packing": True, "seed": 7}}))
    result = runner.invoke(app, ["train", "--data", "d.jsonl", "--lr", "1e-3", "--grad-accum", "4", "--liger", "--no-packing",
                                 "--time-budget", "2.5", "--no-group-by-length", "--target-modules", "q_proj", "--data-seed", "3"])
    assert result.exit_code == 0, result.output
    config = seen[-1]
    assert (config.dataset, config.learning_rate, config.gradient_accumulation, config.time_budget_minutes) == ("d.jsonl", 1e-3, 4, 2.5)
    assert config.use_liger is True and config.packing is False and config.group_by_length is False
    assert config.target_modules == ["q_proj"]  # one name is a module list, not a PEFT regex
    assert config.data_seed == 3 and config.lora_r == 2 and config.seed == 7  # left out: tunewise.yaml's value
    result = runner.invoke(app, ["train", "--data", "d.jsonl", "--target-modules", "all-linear", "--learning-rate", "2e-4"])
    assert result.exit_code == 0, result.output
    assert seen[-1].target_modules == "all-linear" and seen[-1].learning_rate == 2e-4


def test_a_config_file_can_clear_a_setting_with_null(monkeypatch, isolated_workspace, tmp_path):
    import tunewise.train as train_module

    seen = []
    monkeypatch.setattr(train_module, "train", lambda config: seen.append(config) or _fake_run(config))
    (isolated_workspace / "tunewise.yaml").write_text(yaml.safe_dump({"train": {"max_eval_examples": 50, "lora_r": 2}}))
    config_file = tmp_path / "train.yaml"
    config_file.write_text("max_eval_examples: null\n")
    result = runner.invoke(app, ["train", "--config", str(config_file), "--data", "d.jsonl"])
    assert result.exit_code == 0, result.output
    assert seen[-1].max_eval_examples is None and seen[-1].lora_r == 2


def _fake_run(config):
    from tunewise.store.models import Run

    return Run(id="run-z", kind="lora", status="completed", base_model=config.model, metrics={}, artifacts={})


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "--data", "missing.jsonl"], "missing.jsonl: file not found"),
        (["train", "--data", "x.jsonl", "--method", "dpo"], "--method: Input should be 'lora', 'qlora' or 'full'"),
        (["train", "--data", "x.jsonl", "--lora-r", "0", "--lr", "-1"], "--learning-rate: Input should be greater than 0; --lora-r: Input should be greater than or equal to 1"),
        (["train", "--launcher", "deepspeed-mpi", "--data", "x.jsonl"], "only 'accelerate'"),
        (["runs", "run-nope"], "run-nope"),
        (["export", "run-nope", "--format", "gguf"], "run-nope"),
        (["train", "--resume", "run-nope"], "run-nope"),
    ],
)
def test_errors_are_one_line(args, expected, capsys, tmp_path):
    (tmp_path / "x.jsonl").write_text("")
    code, _, err = run_main(args, capsys)
    assert code == 2, err
    assert expected in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) <= 2

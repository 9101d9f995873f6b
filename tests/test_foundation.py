"""The workspace, config and model resolution behave as a new user expects on a fresh machine."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tunewise.cli import app, main
from tunewise.config import TunewiseConfig, load_config, override, save_config
from tunewise.errors import ConfigError, ModelNotFoundError
from tunewise.models import load_model, materialize, resolve

runner = CliRunner()


def run_main(args, capsys):
    """Run the real entry point (with its error handling) and return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_init_writes_a_commented_config_that_loads_back(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path / "proj")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "proj" / "tunewise.yaml").read_text()
    assert "# Base model" in text and "model: smollm2-135m" in text
    assert load_config(tmp_path / "proj" / "tunewise.yaml") == TunewiseConfig()
    assert (tmp_path / "proj" / ".tunewise" / "tunewise.db").exists()


def test_config_round_trips_and_flags_override(tmp_path):
    config = override(TunewiseConfig(), model="/models/x")
    path = save_config(config, tmp_path / "saved.yaml")
    assert load_config(path).model == "/models/x"


def test_override_ignores_none_clears_on_request_and_names_the_flag():
    from tunewise.train.config import TrainConfig

    base = TrainConfig(lora_r=8, max_eval_examples=50)
    changed = override(base, lora_r=None, learning_rate=1e-3, clear=["max_eval_examples"])
    assert (changed.lora_r, changed.learning_rate, changed.max_eval_examples) == (8, 1e-3, None)
    assert changed.model_fields_set == {"lora_r", "learning_rate", "max_eval_examples"}  # what someone chose, not every field
    assert base.learning_rate is None  # a copy
    with pytest.raises(ConfigError, match=r"^--method: Input should be 'lora', 'qlora' or 'full'; --lora-r: Input should be greater than or equal to 1$"):
        override(base, lora_r=0, method="dpo")
    with pytest.raises(ConfigError, match="--colour: unknown setting"):
        override(base, colour="blue")
    with pytest.raises(ConfigError, match="--seed: Input should be a valid integer"):
        override(base, clear=["seed"])


@pytest.mark.parametrize(
    "content, expected",
    [
        ("train: [\n", "invalid YAML"),
        ("train:\n  epochs: -1\n", "train.epochs"),
        ("colour: blue\n", "colour: unknown setting"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_malformed_config_is_a_one_line_error_with_exit_code_2(tmp_path, capsys, monkeypatch, content, expected):
    (tmp_path / "workspace" / "tunewise.yaml").write_text(content)
    code, _, err = run_main(["status"], capsys)
    assert code == 2
    assert expected in err and "tunewise.yaml" in err
    assert "Traceback" not in err


def test_missing_config_file_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_config(tmp_path / "nope.yaml")


def test_debug_flag_shows_the_traceback(tmp_path, capsys):
    (tmp_path / "workspace" / "tunewise.yaml").write_text("train: [\n")
    with pytest.raises(ConfigError):
        main(["--debug", "status"])


def test_unknown_model_name_says_how_to_point_at_a_local_copy():
    with pytest.raises(ModelNotFoundError) as info:
        resolve("meta-llama/Llama-3.2-1B")
    message = str(info.value)
    assert "not available offline" in message and "local copy" in message and "\n" not in message


def test_unreadable_store_exits_2_without_traceback(tmp_path, capsys, monkeypatch):
    bogus = tmp_path / "broken.db"
    bogus.write_bytes(b"garbage" * 1000)
    monkeypatch.setenv("TUNEWISE_DB_URL", f"sqlite:///{bogus}")
    code, _, err = run_main(["status"], capsys)
    assert code == 2 and "broken.db" in err and "Traceback" not in err


def test_a_local_model_folder_loads_offline(tiny_model_dir):
    assert materialize(str(tiny_model_dir)) == tiny_model_dir
    model, tokenizer = load_model(str(tiny_model_dir))
    assert model.config.num_hidden_layers == 2
    assert "<|im_start|>assistant" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve(str(tmp_path / "empty"))


def test_every_command_has_help_with_an_example():
    import typer.main

    root = typer.main.get_command(app)

    def walk(command, path):
        if getattr(command, "commands", None):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, command

    commands = list(walk(root, []))
    assert len(commands) >= 2
    for path, command in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Example" in (command.help or ""), f"`tunewise {' '.join(path)}` help has no example"


@pytest.mark.integration
def test_embedded_model_converts_once_then_loads_from_the_cache(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("TUNEWISE_CACHE_DIR", str(tmp_path / "cache"))
    started = time.perf_counter()
    folder = materialize("smollm2-135m", quiet=True)
    first = time.perf_counter() - started
    assert (folder / "model.safetensors").exists()
    started = time.perf_counter()
    model, tokenizer = load_model("smollm2-135m")
    cached = time.perf_counter() - started
    assert cached < first
    assert model.config.num_hidden_layers == 30
    mask = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "billing"}],
        return_dict=True,
        return_assistant_tokens_mask=True,
    )["assistant_masks"]
    assert sum(mask) > 0  # the cached template marks assistant tokens for assistant-only loss


def test_the_command_reference_matches_the_code():
    from pathlib import Path

    from tunewise.cli.reference import cli_reference

    reference = Path(__file__).resolve().parents[1] / "docs" / "CLI.md"
    assert reference.read_text(encoding="utf-8") == cli_reference(), (
        "docs/CLI.md is stale: run `python -m tunewise.cli.reference > docs/CLI.md`"
    )

"""Export: the merged model computes the same logits as base + adapter; GGUF round-trips through transformers' reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import tiny_config


@pytest.fixture
def trained_run(tiny_model_dir, chat_files, store):
    from tunewise.train import train

    train_path, _ = chat_files
    return train(tiny_config(tiny_model_dir, train_path, max_steps=3, learning_rate=3e-2), store=store, progress=False)


def _logits(model, ids):
    import torch

    with torch.inference_mode():
        return model(input_ids=ids).logits.float()


def _ids():
    import torch

    return torch.tensor([[1, 5, 17, 42, 99, 3, 250, 7, 2]])


def test_merged_safetensors_match_the_adapter(trained_run, store, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunewise.train import load_trained
    from tunewise.train.export import export

    adapter_model, _ = load_trained(trained_run, store=store)
    result = export(trained_run.id, tmp_path / "merged", fmt="safetensors", store=store)

    assert result.merged and (result.path / "model.safetensors").exists()
    merged = AutoModelForCausalLM.from_pretrained(result.path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(result.path)
    assert tokenizer.chat_template and not (result.path / "adapter_config.json").exists()
    base = AutoModelForCausalLM.from_pretrained(adapter_model.peft_config["default"].base_model_name_or_path, dtype=torch.float32)
    ids = _ids()
    assert torch.allclose(_logits(merged, ids), _logits(adapter_model, ids), atol=1e-4)
    assert not torch.allclose(_logits(base, ids), _logits(merged, ids), atol=1e-4)  # the adapter changed something
    assert store.get_run(trained_run.id).artifacts["merged"] == str(result.path)


def test_gguf_round_trips_through_transformers(trained_run, store, tmp_path):
    import gguf
    import torch
    from transformers import AutoModelForCausalLM

    from tunewise.train.export import export, merged_model

    result = export(trained_run.id, tmp_path / "tiny.gguf", fmt="gguf", gguf_type="f32", store=store)
    assert result.path.suffix == ".gguf" and result.bytes > 0

    reader = gguf.GGUFReader(result.path)
    assert reader.fields["general.architecture"].contents() == "llama"
    assert reader.fields["tokenizer.ggml.model"].contents() == "gpt2"
    assert len(reader.fields["tokenizer.ggml.merges"].data) > 0
    assert "{% generation %}" not in reader.fields["tokenizer.chat_template"].contents()

    from_gguf = AutoModelForCausalLM.from_pretrained(result.path.parent, gguf_file=result.path.name, dtype=torch.float32)
    merged, _ = merged_model(Path(trained_run.artifacts["adapter"]))
    ids = _ids()
    assert torch.allclose(_logits(from_gguf, ids), _logits(merged, ids), atol=1e-4)
    assert store.get_run(trained_run.id).artifacts["gguf"] == str(result.path)


def test_gguf_f16_is_close_and_half_the_size(trained_run, store, tmp_path):
    from tunewise.train.export import export

    f32 = export(trained_run.id, tmp_path / "a.gguf", fmt="gguf", gguf_type="f32", store=store)
    f16 = export(trained_run.id, tmp_path / "b.gguf", fmt="gguf", gguf_type="f16", store=store)
    assert f16.bytes < 0.75 * f32.bytes


def test_unmerged_export_copies_the_adapter(trained_run, store, tmp_path):
    from tunewise.train.export import export

    result = export(trained_run.id, tmp_path / "adapter", merge=False, store=store)
    assert (result.path / "adapter_model.safetensors").exists() and not result.merged


def test_export_errors_are_one_line(trained_run, store, tmp_path):
    from tunewise.errors import TrainingError
    from tunewise.train.export import export, write_gguf

    with pytest.raises(TrainingError, match="format 'onnx'"):
        export(trained_run.id, tmp_path / "x", fmt="onnx", store=store)

    class NotLlama:
        class config:
            model_type = "gpt2"

    with pytest.raises(TrainingError, match="convert_hf_to_gguf.py"):
        write_gguf(NotLlama(), None, tmp_path / "x.gguf")

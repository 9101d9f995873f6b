"""Local training on the tiny model: loss goes down, artifacts load, labels mask, subsets, bad input, OOM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import LABELS, chat_rows, tiny_config, write_jsonl


def test_lora_reduces_loss_and_records_the_run(tiny_model_dir, chat_files, store):
    from tunewise.train import load_trained, train

    train_path, eval_path = chat_files
    run = train(tiny_config(tiny_model_dir, train_path, eval_path, epochs=4, learning_rate=2e-2, hourly_usd=3.6), store=store, progress=False)

    assert run.status == "completed"
    steps = store.run_steps(run.id)
    losses = [s.values["loss"] for s in steps if "loss" in s.values]
    assert len(losses) >= 10 and losses[-1] < losses[0] - 0.3
    assert any("eval_loss" in s.values for s in steps)
    for key in ("train_loss", "eval_loss", "tokens_per_second", "train_examples", "tokens_seen"):
        assert key in run.metrics
    assert run.tokens_seen == run.metrics["tokens_seen"] > 0
    assert run.wall_seconds > 0 and run.peak_memory_mb > 0
    assert run.cost_usd == pytest.approx(run.wall_seconds / 3600 * 3.6, rel=1e-3)
    assert run.dataset_hash and len(run.dataset_hash) == 64

    adapter = Path(run.artifacts["adapter"])
    assert (adapter / "adapter_model.safetensors").exists() and (adapter / "adapter_config.json").exists()
    assert (adapter / "tokenizer.json").exists()
    config_yaml = Path(run.artifacts["config"])
    assert config_yaml.exists() and "lora_r: 4" in config_yaml.read_text()

    model, tokenizer = load_trained(run.id, store=store)
    assert "{% generation %}" in tokenizer.chat_template
    assert type(model).__name__ == "PeftModelForCausalLM"


def test_labels_cover_assistant_tokens_only(tiny_model_dir):
    from tunewise.models import load_tokenizer
    from tunewise.train.data import Example, tokenize

    tokenizer = load_tokenizer(str(tiny_model_dir))
    rows = chat_rows(3)
    examples = [Example(i + 1, r["messages"]) for i, r in enumerate(rows)]
    out = tokenize(examples, tokenizer, max_seq_length=512, assistant_only=True, path="x")
    for row, ids, labels in zip(rows, out.input_ids, out.labels):
        kept = [t for t, label in zip(ids, labels) if label != -100]
        assert tokenizer.decode(kept) == row["messages"][-1]["content"] + "<|im_end|>"
        assert labels[0] == -100 and kept == [label for label in labels if label != -100]


def test_full_sft_writes_a_model(tiny_model_dir, chat_files, store):
    from tunewise.train import load_trained, train

    train_path, _ = chat_files
    run = train(tiny_config(tiny_model_dir, train_path, method="full", max_steps=3, learning_rate=1e-3), store=store, progress=False)
    folder = Path(run.artifacts["model"])
    assert (folder / "model.safetensors").exists() and "adapter" not in run.artifacts
    model, _ = load_trained(folder)
    assert type(model).__name__ == "LlamaForCausalLM"


def test_subset_is_stratified_and_seeded():
    from tunewise.train.data import Example, stratified_subset

    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    examples = [Example(i + 1, [{"role": "user", "content": str(i)}, {"role": "assistant", "content": lab}]) for i, lab in enumerate(labels)]
    subset = stratified_subset(examples, 20, seed=3)
    counts = {k: sum(ex.label == k for ex in subset) for k in "abc"}
    assert counts == {"a": 12, "b": 6, "c": 2}
    assert [ex.line for ex in subset] == [ex.line for ex in stratified_subset(examples, 20, seed=3)]
    assert [ex.line for ex in subset] != [ex.line for ex in stratified_subset(examples, 20, seed=4)]
    small = {ex.line for ex in stratified_subset(examples, 10, seed=3)}
    assert small <= {ex.line for ex in subset}  # nested: a learning curve adds data, it does not swap it
    rare = [Example(1, [{"role": "assistant", "content": "x"}])] + examples
    assert any(ex.label == "x" for ex in stratified_subset(rare, 5, seed=0))


def test_lora_layers_targets_the_top_layers_only(tiny_model_dir, chat_files, store):
    from tunewise.train import train

    train_path, _ = chat_files
    run = train(tiny_config(tiny_model_dir, train_path, max_steps=1, lora_layers=1), store=store, progress=False)
    from safetensors.torch import load_file

    keys = load_file(str(Path(run.artifacts["adapter"]) / "adapter_model.safetensors")).keys()
    assert keys and all(".layers.1." in key for key in keys)


@pytest.mark.parametrize(
    "rows, message",
    [
        ([], "dataset is empty"),
        ([{"messages": [{"role": "user", "content": "hi"}]}], "no example has an assistant turn"),
        (chat_rows(4, long=40), "longer than max_seq_length=64"),
    ],
)
def test_bad_data_fails_before_training_with_one_line(tiny_model_dir, tmp_path, store, rows, message):
    from tunewise.errors import TrainingError
    from tunewise.train import train

    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(TrainingError, match=message) as info:
        train(tiny_config(tiny_model_dir, path), store=store, progress=False)
    assert "\n" not in str(info.value)
    assert store.list_runs() == []  # nothing started, nothing recorded


def test_a_model_that_is_not_a_causal_lm_is_refused(tmp_path, chat_files, store):
    from transformers import AutoTokenizer, DistilBertConfig

    from tunewise.errors import TrainingError
    from tunewise.train import train

    folder = tmp_path / "bert"
    DistilBertConfig(vocab_size=512, dim=16, n_layers=1, n_heads=2, hidden_dim=32).save_pretrained(folder)
    AutoTokenizer.from_pretrained(Path(__file__).parents[1] / "assets" / "tiny-tokenizer").save_pretrained(folder)
    with pytest.raises(TrainingError, match="not a causal language model"):
        train(tiny_config(folder, chat_files[0]), store=store, progress=False)


def test_missing_dataset_and_unknown_id(tiny_model_dir, store):
    from tunewise.errors import TrainingError
    from tunewise.train import train

    with pytest.raises(TrainingError, match="file not found"):
        train(tiny_config(tiny_model_dir, Path("nope/train.jsonl")), store=store, progress=False)
    with pytest.raises(TrainingError, match="neither a file nor a registered dataset"):
        train(tiny_config(tiny_model_dir, Path("ds-unknown")), store=store, progress=False)


def test_registered_dataset_id_resolves(tiny_model_dir, chat_files, store):
    from tunewise.train import train

    dataset = store.add_dataset(chat_files[0], format="chat", rows=48)
    run = train(tiny_config(tiny_model_dir, Path(dataset.id), max_steps=1), store=store, progress=False)
    assert run.dataset_id == dataset.id


def test_out_of_memory_saves_a_checkpoint_and_says_what_to_do(tiny_model_dir, chat_files, store):
    import torch
    from transformers import TrainerCallback

    from tunewise.errors import TrainingError
    from tunewise.train import last_checkpoint, train

    class Boom(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(TrainingError, match=r"out of memory at step 2 \(checkpoint saved in .*checkpoint-2\).*--resume") as info:
        train(tiny_config(tiny_model_dir, chat_files[0], max_steps=5), store=store, progress=False, callbacks=[Boom()])
    run = store.list_runs()[0]
    assert run.status == "failed" and "out of memory" in run.error
    assert last_checkpoint(Path(run.output_dir)).name == "checkpoint-2"
    assert "\n" not in str(info.value)


def test_gpu_features_skip_cleanly_on_cpu(tiny_model_dir, chat_files, store):
    from tunewise.errors import TrainingError
    from tunewise.train import TrainConfig, fast, train

    config = tiny_config(tiny_model_dir, chat_files[0], max_steps=2, use_liger=True, torch_compile=True, padding_free=True,
                         attn_implementation="flash_attention_2")
    hardware = fast.detect_hardware(config)
    assert (hardware.device, hardware.precision) == ("cpu", "fp32")
    assert fast.attention_implementation(config, hardware) == "sdpa"
    assert fast.padding_free_ok(config, hardware, "sdpa") is False
    assert fast.apply_liger(object(), hardware) is False
    run = train(config, store=store, progress=False)
    assert run.status == "completed" and run.metrics["precision"] == "fp32"
    with pytest.raises(TrainingError, match="qlora needs a CUDA GPU"):
        fast.detect_hardware(TrainConfig(method="qlora"))


def test_subset_size_is_respected(tiny_model_dir, chat_files, store):
    from tunewise.train import train

    run = train(tiny_config(tiny_model_dir, chat_files[0], max_train_examples=12, max_steps=1), store=store, progress=False)
    assert run.metrics["train_examples"] == 12
    assert json.loads(json.dumps(run.config))["max_train_examples"] == 12
    assert set(LABELS)  # the fixture's labels are balanced, so 12 rows hold 3 of each


def test_train_config_maps_onto_sft_config_by_declared_names(tmp_path):
    import dataclasses

    from trl import SFTConfig

    from tunewise.train import TrainConfig
    from tunewise.train.fast import Hardware
    from tunewise.train.trainer import SFT_FIELDS, SFT_FIXED, sft_arguments

    sft_names = {f.name for f in dataclasses.fields(SFTConfig)}
    assert set(SFT_FIELDS) <= set(TrainConfig.model_fields)
    assert {target for targets in SFT_FIELDS.values() for target in targets} | set(SFT_FIXED) <= sft_names
    config = TrainConfig(output_dir=str(tmp_path), epochs=2.5, batch_size=6, gradient_accumulation=3, learning_rate=3e-4,
                         lr_scheduler="cosine", max_seq_length=96, seed=5, save_total_limit=4, group_by_length=True)
    args = SFTConfig(**sft_arguments(config, Hardware("cpu", "fp32", "cpu"), padding_free=False))
    assert (args.num_train_epochs, args.per_device_train_batch_size, args.per_device_eval_batch_size) == (2.5, 6, 6)
    assert (args.gradient_accumulation_steps, args.learning_rate, args.max_length, args.save_total_limit) == (3, 3e-4, 96, 4)
    assert args.lr_scheduler_type.value == "cosine" and args.seed == 5 and args.data_seed == 5  # data_seed empty: seed
    assert args.output_dir == str(tmp_path / "checkpoints") and args.use_cpu and not args.bf16
    assert args.train_sampling_strategy == "group_by_length" and args.eval_strategy.value == "no"
    packed = sft_arguments(TrainConfig(output_dir=str(tmp_path), packing=True, data_seed=9), Hardware("cuda", "bf16", "gpu"), padding_free=True)
    assert packed["train_sampling_strategy"] == "random" and packed["data_seed"] == 9 and packed["bf16"] and not packed["use_cpu"]

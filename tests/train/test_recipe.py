"""The training recipe: empty settings are chosen from model, data and hardware; what the user set always wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import chat_rows, write_jsonl


def _shapes(params=135e6, layers=30, examples=1000, length=40, task="classification", classes=77):
    from tunewise.train.recipe import DataShape, ModelShape

    return ModelShape(int(params), layers, 576, 8192, "llama"), DataShape(examples, tuple([length] * examples), task, classes)


def test_small_model_gets_a_high_lora_rate_and_big_models_a_lower_one():
    from tunewise.train import TrainConfig
    from tunewise.train.recipe import choose_recipe

    small = choose_recipe(TrainConfig(), model=_shapes()[0], data=_shapes()[1], device="cpu")
    big = choose_recipe(TrainConfig(), model=_shapes(params=8e9)[0], data=_shapes()[1], device="cuda")
    assert small.value("learning_rate") == 2e-3
    assert big.value("learning_rate") == 2e-4
    assert small.value("lora_layers") == 10 and big.value("lora_layers") == 30  # CPU: top third; GPU: all
    assert small.value("batch_size") == 8 and big.value("batch_size") == 16
    full = choose_recipe(TrainConfig(method="full"), model=_shapes()[0], data=_shapes()[1], device="cpu")
    assert full.value("learning_rate") == 5e-5
    assert all(c.reason for c in small.choices)


def test_explicit_settings_win_and_are_marked_as_yours():
    from tunewise.train import TrainConfig
    from tunewise.train.recipe import choose_recipe

    config = TrainConfig(learning_rate=3e-4, lora_r=8, epochs=2)
    recipe = choose_recipe(config, model=_shapes()[0], data=_shapes()[1], device="cpu")
    applied = recipe.apply(config)
    assert (applied.learning_rate, applied.lora_r, applied.epochs) == (3e-4, 8, 2)
    assert applied.lora_alpha == 16  # 2 x the rank you chose
    sources = {c.setting: c.source for c in recipe.choices}
    assert sources["learning_rate"] == sources["lora_r"] == sources["epochs"] == "you"
    assert sources["batch_size"] == "recipe"


def test_epochs_reach_enough_steps_on_small_sets_and_one_pass_on_big_ones():
    from tunewise.train import TrainConfig
    from tunewise.train.recipe import choose_recipe

    small = choose_recipe(TrainConfig(), model=_shapes()[0], data=_shapes(examples=200)[1], device="cpu")
    big = choose_recipe(TrainConfig(), model=_shapes()[0], data=_shapes(examples=20_000)[1], device="cpu")
    assert small.value("epochs") > 1 and big.value("epochs") == 1
    assert small.value("holdout") == 30 and big.value("holdout") == 200
    tiny = choose_recipe(TrainConfig(), model=_shapes()[0], data=_shapes(examples=64)[1], device="cpu")
    assert tiny.value("holdout") == 0  # 30 of 64 would leave the run half its data
    seq = choose_recipe(TrainConfig(), model=_shapes()[0], data=_shapes(length=300)[1], device="cpu").value("max_seq_length")
    assert seq == 320  # 99% of the examples fit, rounded up to 64
    given_eval = choose_recipe(TrainConfig(eval_dataset="dev.jsonl"), model=_shapes()[0], data=_shapes()[1], device="cpu")
    assert given_eval.value("holdout") == 0


def test_a_run_without_eval_data_holds_rows_out_scores_them_and_saves_its_recipe(tiny_model_dir, tmp_path, store):
    from tunewise.train import train
    from tunewise.train.config import TrainConfig

    rows = chat_rows(120, seed=3)
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    config = TrainConfig(model=str(tiny_model_dir), dataset=str(data), max_seq_length=64, lora_r=4, logging_steps=1,
                         save_steps=1000, threads=1, epochs=2, learning_rate=2e-2)
    run = train(config, store=store, progress=False)

    metrics = run.metrics
    # 10% (at least 30) held out and not trained on; rows longer than max_seq_length are counted, not lost
    assert metrics["held_out"] == 30 and metrics["train_examples"] + metrics["dropped_too_long"] == 90
    assert metrics["eval_source"] == "held out of the training file"
    assert metrics["task_type"] == "classification" and metrics["metric_for_best"] == "eval_accuracy"
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and metrics["evaluations"] >= 5
    assert metrics["best_step"] <= metrics["steps"] and isinstance(metrics["still_improving"], bool)
    logged = [s.values for s in store.run_steps(run.id) if "eval_accuracy" in s.values]
    assert len(logged) == metrics["evaluations"]
    recipe = json.loads(Path(run.artifacts["recipe"]).read_text())
    assert recipe["learning_rate"] == {"value": 2e-2, "source": "you", "reason": "set by you (flag or YAML)"}
    assert recipe["lora_layers"]["source"] == "recipe"
    saved = Path(run.artifacts["config"]).read_text()
    assert "lora_layers: 1" in saved and "holdout: 30" in saved  # the resolved values, so the run can be reproduced


def test_constrained_accuracy_in_training_equals_constrained_decoding(tiny_model_dir, tmp_path, store):
    """The one-pass, teacher-forced accuracy must be what label-constrained generation would score."""
    import torch

    from tunewise.evaluate.generation import generate_batched
    from tunewise.models import load_tokenizer
    from tunewise.train.data import Example, tokenize
    from tunewise.train.heldout import LabelTrie, label_sequences, score
    from transformers import AutoModelForCausalLM

    from .conftest import LABELS

    torch.manual_seed(0)
    tokenizer = load_tokenizer(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    train_rows = [Example(i, r["messages"]) for i, r in enumerate(chat_rows(40, seed=5))]
    eval_rows = [Example(i, r["messages"]) for i, r in enumerate(chat_rows(24, seed=6))]
    train_tok = tokenize(train_rows, tokenizer, max_seq_length=128, assistant_only=True, path="t")
    eval_tok = tokenize(eval_rows, tokenizer, max_seq_length=128, assistant_only=True, path="e")
    trie = LabelTrie(label_sequences(train_tok.labels))
    result = score(model, eval_tok.input_ids, eval_tok.labels, pad_id=tokenizer.pad_token_id or 0, trie=trie, batch_size=5)

    prompts = [r.messages[:-1] for r in eval_rows]
    gens = generate_batched(model, tokenizer, prompts, max_new_tokens=8, batch_size=8, labels=LABELS, decoding="constrained")
    decoded = sum(g.text.strip() == r.messages[-1]["content"] for g, r in zip(gens, eval_rows)) / len(eval_rows)
    assert result.accuracy == pytest.approx(decoded)
    assert 0 < decoded < 1  # the random model gets some rows right and some wrong: the comparison means something
    assert result.exact_match <= result.accuracy  # free greedy right at every step is right under the constraint too


def test_time_budget_sets_the_step_count_from_a_measured_probe(tiny_model_dir, tmp_path, store):
    from tunewise.train import train
    from tunewise.train.config import TrainConfig

    data = write_jsonl(tmp_path / "train.jsonl", chat_rows(200, seed=4))
    config = TrainConfig(model=str(tiny_model_dir), dataset=str(data), max_seq_length=64, lora_r=4, save_steps=1000,
                         threads=1, time_budget_minutes=0.05, holdout=0)
    run = train(config, store=store, progress=False)
    budget = run.metrics["time_budget"]
    assert budget["minutes"] == 0.05 and budget["probe_seconds_per_step"] > 0
    assert run.metrics["steps"] <= budget["planned_steps_at_most"] <= 5 * 25  # at most the recipe's epoch cap
    assert run.metrics["planned_steps"] == run.metrics["steps"] or run.metrics["stopped_at_time_budget"]
    assert run.wall_seconds < 60


def test_search_ranks_trials_by_the_held_out_metric_and_records_each(tiny_model_dir, tmp_path, store):
    from tunewise.train.config import TrainConfig
    from tunewise.train.search import search

    data = write_jsonl(tmp_path / "train.jsonl", chat_rows(100, seed=7))
    config = TrainConfig(model=str(tiny_model_dir), dataset=str(data), max_seq_length=64, lora_r=4, save_steps=1000,
                         threads=1, time_budget_minutes=0.2)
    result = search(config, store=store, progress=False)

    rung0 = [t for t in result.trials if t["rung"] == 0]
    assert sorted(t["learning_rate"] for t in rung0) == pytest.approx([1e-3, 2e-3, 4e-3])  # the recipe's rate x 0.5, 1, 2
    assert len(result.trials) == 4 and sum(t["winner"] for t in result.trials) == 1
    best0 = max(rung0, key=lambda t: (t["eval_accuracy"], -t["eval_loss"]))
    rung1 = next(t for t in result.trials if t["rung"] == 1)
    assert rung1["learning_rate"] == best0["learning_rate"]
    continued = store.get_run(rung1["run_id"]).config
    assert continued["init_adapter"] == store.get_run(best0["run_id"]).artifacts["adapter"]  # it continues, not restarts
    assert continued["data_seed"] == 1 and continued["seed"] == 0  # new order, same held-out rows
    record = store.get_run(result.search_id)
    assert record.kind == "search" and record.status == "completed" and record.metrics["winner"] == result.winner.id
    for trial in result.trials:
        assert store.get_run(trial["run_id"]).metrics["search_id"] == result.search_id


def test_a_shortened_schedule_still_decays_to_zero_at_its_new_end():
    import torch
    from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

    from tunewise.train.heldout import _shorten_schedule

    for make in (get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = make(optimizer, 2, 100)
        for _ in range(5):
            optimizer.step()
            scheduler.step()
        _shorten_schedule(scheduler, 10)
        for _ in range(5):
            optimizer.step()
            scheduler.step()
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)  # step 10 of 10, not of 100


def test_init_adapter_must_match_the_runs_lora_shape(tiny_model_dir, tmp_path, store):
    from tunewise.errors import TrainingError
    from tunewise.train import train
    from tunewise.train.config import TrainConfig

    data = write_jsonl(tmp_path / "train.jsonl", chat_rows(40, seed=8))
    base = dict(model=str(tiny_model_dir), dataset=str(data), max_seq_length=64, save_steps=1000, threads=1, max_steps=2, holdout=0)
    first = train(TrainConfig(lora_r=4, **base), store=store, progress=False)
    again = train(TrainConfig(lora_r=4, init_adapter=first.id, **base), store=store, progress=False)
    assert again.status == "completed" and again.config["init_adapter"] == first.artifacts["adapter"]
    with pytest.raises(TrainingError, match="do not fit this run"):
        train(TrainConfig(lora_r=8, init_adapter=first.id, **base), store=store, progress=False)


def test_the_recipe_counts_every_example_when_only_a_sample_was_tokenized():
    from tunewise.train import TrainConfig
    from tunewise.train.recipe import choose_recipe, describe_data

    # local.py tokenizes at most 2,000 rows for their lengths; epochs and the held-out share follow the whole file
    data = describe_data([40] * 2_000, [f"label {i % 50}" for i in range(15_000)])
    assert data.examples == 15_000
    recipe = choose_recipe(TrainConfig(), model=_shapes()[0], data=data, device="cpu")
    assert recipe.value("holdout") == 200 and recipe.value("epochs") == 1


def test_search_on_a_small_set_without_eval_data_says_what_it_needs(tiny_model_dir, tmp_path, store):
    from tunewise.errors import TrainingError
    from tunewise.train.config import TrainConfig
    from tunewise.train.search import search

    data = write_jsonl(tmp_path / "train.jsonl", chat_rows(40, seed=7))
    config = TrainConfig(model=str(tiny_model_dir), dataset=str(data), max_seq_length=64, threads=1, time_budget_minutes=0.2)
    with pytest.raises(TrainingError, match="--eval-data"):
        search(config, store=store, progress=False)
    assert store.list_runs() == []  # nothing trained before the error

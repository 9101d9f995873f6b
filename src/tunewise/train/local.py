"""Local training: LoRA, QLoRA and full SFT of an open model with TRL's SFTTrainer and PEFT.

    from tunewise.train import TrainConfig, train
    run = train(TrainConfig(dataset="train.jsonl", eval_dataset="eval.jsonl", max_train_examples=400))
    print(run.artifacts["adapter"], run.metrics)

Setup (check data, load model), train (checkpoints every `save_steps`, every logged step in the
store), save (adapter or model folder with tokenizer and chat template), record (metrics, wall
time, tokens, peak memory, cost). A killed run resumes from its last checkpoint with `resume(run_id)`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tunewise.errors import NotFoundError, TrainingError, TunewiseError
from tunewise.models import LOCAL_ONLY
from tunewise.train.config import TrainConfig
from tunewise.train.data import Example, PreparedData, check_examples, read_chat_jsonl, stratified_subset, tokenize
from tunewise.train.schedule import fit_to_budget, heldout_callback
from tunewise.train.trainer import build_trainer

CONFIG_FILE = "config.yaml"
RECIPE_FILE = "recipe.json"


# -- public API ----------------------------------------------------------------------------------


def train(config: TrainConfig, *, store=None, progress: bool = True, callbacks: list | tuple = (), run_id: str | None = None):
    """Train locally as `config` says and return the finished `tunewise.store.Run` record.

    `run_id` names the run (the multi-GPU launcher picks it before starting the processes).
    Example: run = train(TrainConfig(dataset="train.jsonl", max_train_examples=400))
    """
    from tunewise.store import Store

    with Store.borrow(store) as store:
        if config.dataset is None:
            raise TrainingError("no training data: set train.dataset (a dataset id or a chat JSONL path) or pass --data")
        # Fail on a wrong path in a second, not after the model has been loaded (or converted from GGUF).
        for ref in (config.dataset, config.eval_dataset):
            if ref is not None:
                resolve_dataset(ref, store)
        from tunewise.config import override
        from tunewise.store.models import new_id

        init_adapter = None
        if config.init_adapter and not Path(config.init_adapter).is_dir():
            init_adapter = str(_artifact_folder(config.init_adapter, store))  # a run id becomes its adapter folder
        run_id = run_id or new_id("run")
        output_dir = Path(config.output_dir) if config.output_dir else _runs_dir() / run_id
        config = override(config, init_adapter=init_adapter, output_dir=str(output_dir))
        tokenizer, model_folder = _tokenizer_for(config)
        _check_causal_lm(model_folder, config)
        data, config, recipe = prepare_data(config, tokenizer, store, model_folder=model_folder)
        if progress:
            print_recipe(recipe, data)
        from tunewise.config import save_config

        output_dir.mkdir(parents=True, exist_ok=True)
        config_path = save_config(config, output_dir / CONFIG_FILE)
        recipe_path = output_dir / RECIPE_FILE
        recipe_path.write_text(json.dumps(recipe.to_dict(), indent=2) + "\n", encoding="utf-8")
        store.create_run(
            config.method,
            base_model=config.model,
            config=config.model_dump(mode="json"),
            dataset_id=data.train_dataset_id,
            eval_dataset_id=data.eval_dataset_id,
            dataset_hash=data.train_hash,
            output_dir=str(output_dir),
            run_id=run_id,
        )
        store.update_run(run_id, artifacts={"config": str(config_path), "recipe": str(recipe_path)})
        return _execute(config, data, tokenizer, model_folder, store, run_id, resume_from=None, progress=progress, callbacks=callbacks)


def resume(run_id: str, *, store=None, progress: bool = True, callbacks: list | tuple = ()):
    """Continue a killed or failed local run from its last checkpoint; returns the finished Run.

    Example: run = resume("run-3f2a9c1b7d")
    """
    from tunewise.store import Store

    with Store.borrow(store) as store:
        run = store.get_run(run_id)
        if run.provider:
            raise TrainingError(f"run {run.id} ran at provider {run.provider}: it cannot be resumed locally")
        if run.status == "completed":
            raise TrainingError(f"run {run.id} already completed; start a new run instead")
        config = TrainConfig.model_validate(run.config)
        checkpoint = last_checkpoint(Path(run.output_dir or config.output_dir or ""))
        tokenizer, model_folder = _tokenizer_for(config)
        data, config, _ = prepare_data(config, tokenizer, store, model_folder=model_folder)
        if run.dataset_hash and data.train_hash != run.dataset_hash:
            raise TrainingError(
                f"{data.train_path}: the file changed since run {run.id} started (content hash differs); "
                "resuming would train on different data: start a new run"
            )
        return _execute(
            config, data, tokenizer, model_folder, store, run.id, resume_from=checkpoint, progress=progress, callbacks=callbacks,
            previous_wall=run.wall_seconds or 0.0,
        )


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder of a run (one with trainer_state.json), or None."""
    folder = output_dir / "checkpoints"
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").exists() and p.name.split("-")[-1].isdigit()]
    return max(done, key=lambda p: int(p.name.split("-")[-1])) if done else None


def load_trained(run_or_path, *, store=None, device: str | None = None):
    """`(model, tokenizer)` ready for inference: base + adapter for a LoRA run, or the full model.

    Takes a Run, a run id, or a folder (a PEFT adapter folder or a full model folder).
    Example: model, tokenizer = load_trained("run-3f2a9c1b7d")
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _artifact_folder(run_or_path, store)
    if (folder / "adapter_config.json").exists():
        from peft import PeftModel

        base_name = _adapter_base(folder)
        from tunewise.models import materialize

        base = AutoModelForCausalLM.from_pretrained(materialize(base_name), dtype=torch.float32, **LOCAL_ONLY)
        model = PeftModel.from_pretrained(base, folder)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, **LOCAL_ONLY)
    tokenizer = AutoTokenizer.from_pretrained(folder, **LOCAL_ONLY)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if device:
        model.to(device)
    model.eval()
    return model, tokenizer


# -- data ----------------------------------------------------------------------------------------


def resolve_dataset(ref: str, store) -> tuple[Path, str | None]:
    """A dataset id or a path -> (file path, registered dataset id or None)."""
    from tunewise.store import file_hash

    path = Path(ref).expanduser()
    if path.is_file():
        found = store.find_dataset_by_hash(file_hash(path))
        return path, found.id if found is not None else None
    if path.suffix in {".jsonl", ".json", ".csv"} or "/" in ref:
        raise TrainingError(f"{path}: file not found")
    try:
        record = store.get_dataset(ref)
    except NotFoundError as exc:
        raise TrainingError(f"dataset {ref!r}: neither a file nor a registered dataset id (`tunewise data import` registers one)") from exc
    return Path(record.path), record.id


def plan_recipe(config: TrainConfig, tokenizer, store, *, model_folder: Path):
    """The training rows and the recipe for them: `(path, dataset id, examples, filled config, recipe)`."""
    from tunewise.train.fast import detect_hardware
    from tunewise.train.recipe import choose_recipe, describe_data, describe_model

    train_path, train_id = resolve_dataset(config.dataset, store)
    examples = read_chat_jsonl(train_path)
    check_examples(examples, train_path)
    limit = config.max_seq_length or 1 << 20
    # The recipe reads token lengths; a seeded sample of 2,000 rows gives them without tokenizing a big file twice.
    sample = stratified_subset(examples, min(len(examples), 2_000), config.seed)
    lengths = [len(ids) for ids in tokenize(sample, tokenizer, max_seq_length=limit, assistant_only=config.assistant_only_loss, path=train_path).input_ids]
    recipe = choose_recipe(
        config, model=describe_model(model_folder), data=describe_data(lengths, [ex.label for ex in examples]),
        device=detect_hardware(config).device,
    )
    return train_path, train_id, examples, recipe.apply(config), recipe


def prepare_data(config: TrainConfig, tokenizer, store, *, model_folder: Path):
    """Read and check the data, let the recipe fill the empty settings, hold out, subset and tokenize.

    Returns `(data, config, recipe)`: `config` has every recipe setting filled in (what the run saves).
    """
    from tunewise.store import file_hash

    train_path, train_id, examples, config, recipe = plan_recipe(config, tokenizer, store, model_folder=model_folder)
    held: list[Example] = []
    if not config.eval_dataset and config.holdout:
        held = stratified_subset(examples, min(config.holdout, len(examples) - 1), config.seed + 1)
        taken = {ex.line for ex in held}
        examples = [ex for ex in examples if ex.line not in taken]
    chosen = stratified_subset(examples, config.max_train_examples, config.seed)
    train_tok = tokenize(
        chosen, tokenizer, max_seq_length=config.max_seq_length, assistant_only=config.assistant_only_loss, path=train_path
    )
    data = PreparedData(train_path, file_hash(train_path), train_id, train_tok, chosen)
    data.task_type = recipe.data.task_type if recipe.data else "text"
    if config.eval_dataset:
        eval_path, eval_id = resolve_dataset(config.eval_dataset, store)
        eval_examples = read_chat_jsonl(eval_path)
        check_examples(eval_examples, eval_path)
        eval_examples = stratified_subset(eval_examples, config.max_eval_examples, config.seed)
        data.eval_path, data.eval_dataset_id = eval_path, eval_id
    elif held:
        eval_examples, eval_path = stratified_subset(held, config.max_eval_examples, config.seed), train_path
        data.eval_path, data.eval_dataset_id, data.held_out = train_path, train_id, len(held)
    else:
        eval_examples = []
    if eval_examples:
        data.eval = tokenize(
            eval_examples, tokenizer, max_seq_length=config.max_seq_length, assistant_only=config.assistant_only_loss, path=eval_path
        )
    return data, config, recipe


# -- the run -------------------------------------------------------------------------------------


def _execute(config, data: PreparedData, tokenizer, model_folder: Path, store, run_id: str, *, resume_from, progress, callbacks, previous_wall=0.0):
    import torch

    from tunewise.train import fast
    from tunewise.train.callbacks import RunRecorder

    output_dir = Path(config.output_dir)
    hardware = fast.detect_hardware(config)
    fast.set_threads(config.threads)
    fast.score_labelled_positions_only()
    store.update_run(run_id, status="running", error=None)
    started = time.perf_counter()
    trainer = None
    recorder = None
    heldout = None
    budget: dict[str, Any] = {}
    try:
        trainer = build_trainer(config, data, tokenizer, model_folder, hardware)
        recorder = RunRecorder(store, run_id, progress=progress, token_counter=lambda: getattr(trainer, "_total_train_tokens", 0))
        trainer.add_callback(recorder)
        if config.time_budget_minutes and resume_from is None:
            budget = fit_to_budget(trainer, config, data)
            store.add_run_step(run_id, 0, {"time_budget": budget})
        heldout = heldout_callback(trainer, config, data, tokenizer, budget)
        if heldout is not None:
            trainer.add_callback(heldout)
        budget_callback = None
        if budget:
            from tunewise.train.heldout import BudgetCallback

            budget_callback = BudgetCallback(time.monotonic() + budget["train_seconds"], heldout=heldout,
                                             evaluations=budget["evaluations"])
            trainer.add_callback(budget_callback)
        for callback in callbacks:
            trainer.add_callback(callback)
        if resume_from is not None:
            # the token counter is not part of HF's checkpoint; restore it from the trainer state's log history
            trainer._total_train_tokens = _tokens_at_checkpoint(resume_from)
        result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        if heldout is not None:
            heldout.finish(trainer.model, trainer.state.global_step)
    except KeyboardInterrupt:
        store.update_run(run_id, status="cancelled", error="interrupted; resume with `tunewise train --resume " + run_id + "`",
                         wall_seconds=previous_wall + time.perf_counter() - started)
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure is recorded on the run before it propagates
        if recorder is not None:
            recorder.close()
        message = _failure_message(exc, trainer, config, run_id)
        store.update_run(run_id, status="failed", error=message, wall_seconds=previous_wall + time.perf_counter() - started)
        if isinstance(exc, TunewiseError):
            raise
        raise TrainingError(message) from exc
    if recorder is not None:
        recorder.close()
    wall = previous_wall + time.perf_counter() - started

    artifacts = dict((store.get_run(run_id).artifacts or {}))
    artifacts["config"] = str(output_dir / CONFIG_FILE)
    key = "model" if config.method == "full" else "adapter"
    target = output_dir / key
    # Trainer.save_model gathers FSDP/DeepSpeed shards, writes on the main process only, and saves a
    # PEFT model as its adapter (safetensors); every process must call it. The held-out callback has
    # put the best-scoring weights back, so this saves the best checkpoint, not the last one.
    trainer.save_model(str(target))
    artifacts[key] = str(target)
    if trainer.is_world_process_zero():
        (target / "training_args.bin").unlink(missing_ok=True)
        tokenizer.save_pretrained(str(target))
        (target / "tunewise-base.txt").write_text(config.model + "\n", encoding="utf-8")

    metrics: dict[str, Any] = {"train_loss": round(float(result.training_loss), 6)}
    if heldout is not None:
        metrics.update(heldout.summary())
        metrics["eval_source"] = "held out of the training file" if data.held_out else "eval_dataset"
    tokens_seen = int(getattr(trainer, "_total_train_tokens", 0))
    train_seconds = float(result.metrics.get("train_runtime", wall))
    if heldout is not None and heldout.seconds:
        # The training loop's own speed, without the held-out scoring inside it (what a plain loop would report).
        metrics["train_tokens_per_second"] = round(tokens_seen / max(train_seconds - heldout.seconds, 1e-9), 1)
    metrics.update(
        tokens_per_second=round(tokens_seen / max(wall - previous_wall, 1e-9) if resume_from else tokens_seen / max(train_seconds, 1e-9), 1),
        train_examples=len(data.train.input_ids),
        held_out=data.held_out,
        task_type=data.task_type,
        tokens_seen=tokens_seen,
        steps=trainer.state.global_step,
        planned_steps=trainer.state.max_steps,
        epochs=round(float(trainer.state.epoch or 0), 4),
        dropped_too_long=data.train.dropped_too_long,
        device=hardware.device,
        precision=hardware.precision,
        threads=torch.get_num_threads(),
    )
    if budget:
        metrics["time_budget"] = budget
        metrics["stopped_at_time_budget"] = budget_callback.hit_deadline
    hourly = _hourly_usd() if config.hourly_usd is None else config.hourly_usd
    peak = fast.peak_memory_mb(hardware.device)
    run = store.update_run(
        run_id,
        status="completed",
        metrics=metrics,
        artifacts=artifacts,
        tokens_seen=tokens_seen,
        wall_seconds=round(wall, 3),
        peak_memory_mb=round(peak, 1),
        cost_usd=round(wall / 3600 * hourly, 6),
        error=None,
    )
    del trainer
    return run


# -- helpers -------------------------------------------------------------------------------------


def print_recipe(recipe, data: PreparedData) -> None:
    """The settings of this run, who chose each (you or the recipe) and why, as one table on stderr."""
    from rich.table import Table

    from tunewise.console import err_console

    shape = recipe.data
    title = "Training recipe"
    if shape is not None and recipe.model is not None:
        task = f"{shape.task_type}" + (f", {shape.n_classes} classes" if shape.n_classes else "")
        title += (f": {recipe.model.parameters / 1e6:,.0f}M-parameter model, {recipe.model.layers} blocks; "
                  f"{shape.examples:,} examples ({task}), median {shape.p50_tokens} tokens")
    table = Table(title=title, title_justify="left")
    for name in ("setting", "value", "from", "why"):
        table.add_column(name, overflow="fold")
    for setting, value, source, reason in recipe.rows():
        table.add_row(setting, value, source, reason)
    err_console.print(table)
    if data.held_out:
        err_console.print(f"Holding out {data.held_out} of the training rows to score the run (stratified); "
                          f"training on {len(data.train.input_ids):,}.", highlight=False)


def _runs_dir() -> Path:
    from tunewise.workspace import runs_dir

    return runs_dir()


def _hourly_usd() -> float:
    try:
        from tunewise.config import load_config

        return load_config().hardware.hourly_usd
    except TunewiseError:
        return 0.0


def _tokenizer_for(config: TrainConfig):
    from tunewise.models import load_tokenizer, materialize

    folder = materialize(config.model)
    tokenizer = load_tokenizer(config.model)
    if config.assistant_only_loss and not _has_generation_markers(tokenizer.chat_template):
        from trl.chat_template_utils import get_training_chat_template

        try:
            tokenizer.chat_template = get_training_chat_template(tokenizer)
        except Exception as exc:
            raise TrainingError(
                f"{folder}: the chat template has no {{% generation %}} markers and TRL has no training template for it; "
                "set assistant_only_loss: false or add the markers"
            ) from exc
    return tokenizer, folder


def _has_generation_markers(template) -> bool:
    return bool(template) and "generation" in template and "endgeneration" in template


def _check_causal_lm(folder: Path, config: TrainConfig) -> None:
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        model_config = AutoConfig.from_pretrained(folder, **LOCAL_ONLY)
    except Exception as exc:
        raise TrainingError(f"{folder}: cannot read the model config ({exc})") from exc
    if model_config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise TrainingError(
            f"{config.model}: a {model_config.model_type!r} model is not a causal language model; "
            "train a decoder model (Llama, Qwen, SmolLM, ...)"
        )


def _artifact_folder(run_or_path, store) -> Path:
    if isinstance(run_or_path, (str, Path)) and Path(run_or_path).is_dir():
        return Path(run_or_path)
    run = run_or_path
    if isinstance(run_or_path, str):
        from tunewise.store import Store

        with Store.borrow(store) as store:
            run = store.get_run(run_or_path)
    artifacts = run.artifacts or {}
    folder = artifacts.get("adapter") or artifacts.get("model")
    if not folder:
        raise TrainingError(f"run {run.id} has no adapter or model artifact (status {run.status})")
    return Path(folder)


def _adapter_base(folder: Path) -> str:
    marker = folder / "tunewise-base.txt"
    if marker.exists():
        return marker.read_text(encoding="utf-8").strip()
    import json

    return json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]


def _tokens_at_checkpoint(checkpoint: Path) -> int:
    import json

    state = json.loads((checkpoint / "trainer_state.json").read_text())
    seen = [entry["num_tokens"] for entry in state.get("log_history", []) if "num_tokens" in entry]
    return int(seen[-1]) if seen else 0


def _is_oom(exc: BaseException) -> bool:
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, MemoryError)) and ("out of memory" in text or "can't allocate memory" in text)


def _failure_message(exc: BaseException, trainer, config: TrainConfig, run_id: str) -> str:
    if _is_oom(exc) and trainer is not None:
        saved = _save_emergency_checkpoint(trainer)
        where = f"checkpoint saved in {saved}" if saved else "no checkpoint could be saved"
        return (
            f"out of memory at step {trainer.state.global_step} ({where}); lower batch_size (now {config.batch_size}) "
            f"or max_seq_length (now {config.max_seq_length}), or set gradient_checkpointing: true, "
            f"then `tunewise train --resume {run_id}`"
        )
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"training failed: {type(exc).__name__}: {text}"


def _save_emergency_checkpoint(trainer) -> str | None:
    import torch

    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        trainer._save_checkpoint(trainer.model, trial=None)  # the same files as a scheduled checkpoint
        return str(last_checkpoint(Path(trainer.args.output_dir).parent))
    except Exception:
        return None


__all__ = ["train", "resume", "load_trained", "last_checkpoint", "prepare_data", "build_trainer", "resolve_dataset"]

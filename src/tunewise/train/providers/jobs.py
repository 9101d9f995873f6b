"""Train at a managed provider: check the data, show tokens and price, confirm, upload, create the job,
follow it, and record the run. The library side of `tunewise train --provider NAME --model M`.

    run = train_with_provider("openai", model="gpt-4o-mini-2024-07-18", dataset="train.jsonl",
                              eval_dataset="eval.jsonl", hyperparameters={"n_epochs": 3}, yes=True, store=store)
    run.provider_model_id, run.billed_tokens, run.cost_usd

Every run is a `Run` of kind `provider` in the store, created before the upload so that a failed upload
or a failed job is recorded too; the job's events are its run steps. Token counts use tiktoken when its
encoding is available (cached or downloadable), else an estimate of 4 characters a token, marked
`estimate`; prices come from the pricing catalog (`tunewise.pricing`), the provider's own bill wins.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console

from tunewise.errors import ConfigError, DataError, NotFoundError, ProviderError, TunewiseError
from tunewise.progress import ProgressLine
from tunewise.train.providers.base import CANCELLED, COMPLETED, FAILED, Provider, ProviderEvent, ProviderJob

_CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text with BPE tokenizers
_MESSAGE_OVERHEAD = 3  # tokens a chat format adds around each message (OpenAI cookbook's count)
_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


@dataclass
class PollSettings:
    """How often to ask the provider about a job. Tests use a few milliseconds."""

    interval: float = 10.0  # seconds between polls while events keep arriving
    max_interval: float = 60.0  # the backoff stops growing here
    backoff: float = 1.5  # interval multiplier after a poll that brought nothing new
    timeout: float | None = None  # stop following (the job keeps running) after this many seconds
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


@dataclass
class TokenCount:
    total: int
    per_example_max: int
    tokenizer: str
    estimate: bool


# -- the public functions ------------------------------------------------------------------------------
def train_with_provider(
    provider: str | Provider,
    *,
    model: str,
    dataset: str,
    eval_dataset: str | None = None,
    hyperparameters: dict[str, Any] | None = None,
    yes: bool = False,
    store=None,
    console: Console | None = None,
    poll: PollSettings | None = None,
    today: date | None = None,
    follow: bool = True,
    price_row: str | None = None,
):
    """Fine-tune `model` on `dataset` (a path or a registered dataset id) at `provider`; returns the finished Run.

    Raises ProviderError when the job fails or is cancelled (the run is stored as failed/cancelled first).
    With `follow=False` it returns as soon as the job is created (status `running`). `price_row` names the
    pricing-catalog row to estimate with when the provider's model id is not a catalog name.
    """
    from tunewise.train.providers import get_provider

    console = console or _err_console()
    poll = poll or PollSettings()
    hyperparameters = dict(hyperparameters or {})
    prov = provider if isinstance(provider, Provider) else get_provider(provider)
    prov.normalize_hyperparameters(hyperparameters)  # unknown names fail before anything is read or sent
    _check_retirement(prov, today or date.today(), console)
    from tunewise.store import Store

    with Store.borrow(store) as store:
        train_path, train_record = _resolve_dataset(dataset, store, role="train")
        train_examples = load_chat_examples(train_path)
        eval_path, eval_record, eval_examples = None, None, []
        if eval_dataset:
            eval_path, eval_record = _resolve_dataset(eval_dataset, store, role="eval")
            eval_examples = load_chat_examples(eval_path)

        tokens = count_tokens(train_examples, model)
        epochs, epochs_note = prov.epochs_for_estimate(hyperparameters, len(train_examples))
        billable = tokens.total * epochs
        price = training_price(prov.name, model, billable, price_row=price_row)
        _show_plan(console, prov, model, train_path, len(train_examples), eval_path, len(eval_examples), tokens, epochs,
                   epochs_note, billable, price, hyperparameters)
        _confirm(yes, f"Start a paid fine-tuning job at {prov.title}?")

        config = {
            "provider": prov.name,
            "base_url": prov.base_url,
            "hyperparameters": hyperparameters,
            "dataset": str(train_path),
            "eval_dataset": str(eval_path) if eval_path else None,
            "estimate": {
                "examples": len(train_examples),
                "tokens": tokens.total,
                "tokenizer": tokens.tokenizer,
                "tokens_are_estimate": tokens.estimate,
                "epochs": epochs,
                "billable_tokens": billable,
                "usd": price["usd"] if price else None,
                "basis": price["basis"] if price else None,
                "price_row": price["row"] if price else None,
            },
        }
        run = store.create_run(
            "provider",
            base_model=model,
            config=config,
            dataset_id=train_record.id if train_record else None,
            eval_dataset_id=eval_record.id if eval_record else None,
            dataset_hash=train_record.content_hash if train_record else None,
            provider=prov.name,
        )
        started = time.monotonic()
        try:
            training_file = prov.upload_file(train_path)
            validation_file = prov.upload_file(eval_path) if eval_path else None
            job = prov.create_job(
                model=model,
                training_file=training_file.id,
                validation_file=validation_file.id if validation_file else None,
                hyperparameters=hyperparameters,
            )
        except TunewiseError as exc:
            store.update_run(run.id, status=FAILED, error=str(exc), wall_seconds=time.monotonic() - started)
            raise
        files = {"training_file": training_file.id, **({"validation_file": validation_file.id} if validation_file else {})}
        store.update_run(run.id, status="running", provider_job_id=job.id, artifacts={"provider_files": files})
        console.print(f"{prov.title} job [bold]{job.id}[/] created for run {run.id}", highlight=False)
        if not follow:
            return store.get_run(run.id)
        job = follow_job(prov, job.id, run_id=run.id, store=store, console=console, poll=poll)
        return _finish(store, run.id, prov, job, price, started)


def follow_provider_run(run_ref: str, *, store=None, console: Console | None = None, poll: PollSettings | None = None):
    """Follow a provider run again (after Ctrl-C, a timeout or `follow=False`) until its job ends."""
    from tunewise.store import Store
    from tunewise.train.providers import get_provider

    with Store.borrow(store) as store:
        run = store.get_run(run_ref)
        if run.kind != "provider" or not run.provider_job_id:
            raise ConfigError(f"run {run.id} is not a provider job")
        prov = get_provider(run.provider)
        seen = {step.values.get("key") for step in store.run_steps(run.id)}
        started = time.monotonic()
        job = follow_job(prov, run.provider_job_id, run_id=run.id, store=store, console=console or _err_console(),
                         poll=poll or PollSettings(), seen=seen)
        estimate = (run.config or {}).get("estimate") or {}
        price = ({"usd": estimate["usd"], "basis": estimate.get("basis"), "row": estimate.get("price_row")}
                 if estimate.get("usd") is not None else None)
        return _finish(store, run.id, prov, job, price, started)


def cancel_provider_run(run_ref: str, *, store=None):
    """Ask the provider to cancel a run's job; the run becomes `cancelled` once the provider says so."""
    from tunewise.store import Store
    from tunewise.train.providers import get_provider

    with Store.borrow(store) as store:
        run = store.get_run(run_ref)
        if run.kind != "provider" or not run.provider_job_id:
            raise ConfigError(f"run {run.id} is not a provider job")
        job = get_provider(run.provider).cancel_job(run.provider_job_id)
        if job.status == CANCELLED:
            return store.update_run(run.id, status=CANCELLED)
        return store.get_run(run.id)


def follow_job(
    prov: Provider,
    job_id: str,
    *,
    run_id: str,
    store,
    console: Console,
    poll: PollSettings,
    seen: set[str] | None = None,
) -> ProviderJob:
    """Poll a job until it ends, recording each new event as a run step; a progress line (`tunewise.progress`) shows where it is."""
    seen = set(seen or ())
    seq = len(seen)
    interval = poll.interval
    started = time.monotonic()
    with ProgressLine(f"{prov.title} {job_id}: submitted", unit="steps", console=console) as bar:
        while True:
            job = prov.retrieve_job(job_id)
            fresh = [event for event in prov.list_events(job_id) if event.key not in seen]
            step, total = bar.completed, bar.total
            for event in fresh:
                seen.add(event.key)
                seq += 1
                store.add_run_step(run_id, seq, _event_values(event))
                total = event.total_steps or total
                step = event.step if event.step is not None else step
                if event.level in {"error", "warn", "warning"}:
                    bar.note(f"[{'red' if event.level == 'error' else 'yellow'}]{prov.title}: {event.message}")
            last = fresh[-1].message if fresh else None
            # One update a poll, so that a plain line shows the status and the step of the same moment.
            bar.update(step, total=total, label=f"{prov.title} {job_id}: {job.provider_status}" + (f" - {last}" if last else ""))
            if job.done:
                return job
            if poll.timeout is not None and time.monotonic() - started > poll.timeout:
                raise ProviderError(
                    f"{prov.title} job {job_id} is still {job.provider_status} after {poll.timeout:g}s; it keeps running "
                    f"(follow it again with follow_provider_run({run_id!r}))"
                )
            interval = poll.interval if fresh else min(interval * poll.backoff, poll.max_interval)
            poll.sleep(interval)


# -- data, tokens, price -------------------------------------------------------------------------------
def load_chat_examples(path: str | Path) -> list[dict[str, Any]]:
    """Read a chat JSONL file and check every row with the OpenAI format rules; every bad row is reported at once."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    validate = _validator()
    examples: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            example = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not JSON ({exc.msg})")
            continue
        found = validate(example)
        if found:
            problems.append(f"line {number}: {'; '.join(found)}")
        else:
            examples.append(example)
    if problems:
        shown = " | ".join(problems[:5]) + (f" | ... {len(problems) - 5} more" if len(problems) > 5 else "")
        raise DataError(f"{path}: {len(problems)} rows break the chat fine-tuning format ({shown}); "
                        f"fix them or run `tunewise data audit {path}`")
    if not examples:
        raise DataError(f"{path}: no training examples")
    return examples


def count_tokens(examples: list[dict[str, Any]], model: str) -> TokenCount:
    """Tokens in the examples as the provider bills them (chat overhead included).

    OpenAI models count with the data stage's offline tiktoken counter (`tunewise.data.tokens`); other
    provider models (whose tokenizer is not on this machine) count 4 characters a token, marked estimate.
    """
    try:
        from tunewise.data.tokens import get_counter, is_openai_model
    except ImportError:
        get_counter = None
    if get_counter is not None and is_openai_model(model):
        try:
            counter = get_counter(model)
            lengths = [int(n) for n in counter.count(examples)]
            return TokenCount(sum(lengths), max(lengths, default=0), counter.tokenizer_name, bool(counter.estimate))
        except TunewiseError:
            pass
    counts = [_example_tokens(example) for example in examples]
    return TokenCount(sum(counts), max(counts, default=0), f"{_CHARS_PER_TOKEN} characters per token", True)


def training_price(provider: str, model: str, billable_tokens: int, *, price_row: str | None = None) -> dict[str, Any] | None:
    """The pricing catalog's cost of training `billable_tokens` on `model` at `provider`, or None without a row.

    The row is `price_row` when given, else the row named (or aliased) like the model, else the
    provider's row whose name the model starts with (`gpt-4o-mini-2024-07-18` -> `gpt-4o-mini`).
    """
    catalog = _catalog()
    if catalog is None:
        return None
    row = catalog.get(price_row) if price_row else catalog.find(model)
    if row is None:
        bare = model.lower().removeprefix("ft:")
        candidates = [r for r in catalog.rows if r.provider == provider and bare.startswith(r.name.lower())]
        row = max(candidates, key=lambda r: len(r.name), default=None)
    if row is None:
        return None
    estimate = catalog.training_estimate(row, billable_tokens)
    if estimate is None:
        return None
    return {"usd": float(estimate.usd), "basis": estimate.basis, "row": row.name, "as_of": str(row.as_of or catalog.as_of)}


# -- internals -----------------------------------------------------------------------------------------
def _finish(store, run_id: str, prov: Provider, job: ProviderJob, price, started: float):
    result = prov.result(job)
    run = store.get_run(run_id)
    cost, basis = job.cost_usd, f"billed by {prov.title}"
    if cost is None and price:
        # The catalog's price of the tokens the provider actually billed, else of the estimated tokens.
        billed = price.get("row") and job.billed_tokens and training_price(prov.name, run.base_model, job.billed_tokens,
                                                                            price_row=price["row"])
        if billed:
            cost, basis = billed["usd"], f"catalog price of the billed tokens: {billed['basis']}"
        else:
            cost, basis = price["usd"], f"catalog estimate: {price.get('basis')}"
    metrics = {**(run.metrics or {}), "provider_status": job.provider_status, "cost_basis": basis}
    artifacts = {**(run.artifacts or {}), **{k: v for k, v in result.items() if k not in {"billed_tokens", "cost_usd"} and v}}
    run = store.update_run(
        run_id,
        status=job.status,
        provider_model_id=job.model_id,
        billed_tokens=job.billed_tokens,
        tokens_seen=job.billed_tokens,
        cost_usd=cost,
        error=job.error,
        metrics=metrics,
        artifacts=artifacts,
        wall_seconds=(run.wall_seconds or 0.0) + (time.monotonic() - started),
    )
    if job.status == FAILED:
        raise ProviderError(f"{prov.title} job {job.id} failed: {job.error or 'no reason given'} (run {run_id})")
    if job.status == CANCELLED:
        raise ProviderError(f"{prov.title} job {job.id} was cancelled (run {run_id})")
    assert job.status == COMPLETED
    return run


def _check_retirement(prov: Provider, today: date, console: Console) -> None:
    """Refuse a new job at a provider that has closed self-serve fine-tuning (its own endpoint only)."""
    closes = _closure_date(prov)
    if closes is None or not prov.is_official_endpoint():
        return
    if today >= closes:
        raise ProviderError(
            f"{prov.title} accepts no new self-serve fine-tuning jobs since {closes.isoformat()} (public reports); "
            f"train with `--provider together` or locally with `tunewise train`, or point {prov.base_url_env} at a compatible endpoint"
        )
    console.print(
        f"[yellow]note:[/] public reports say {prov.title} accepts no new self-serve fine-tuning jobs from "
        f"{closes.isoformat()} ({(closes - today).days} days left); `--provider together` trains open weights you can keep",
        highlight=False,
    )


def _closure_date(prov: Provider) -> date | None:
    """When the provider stops taking new jobs: the pricing catalog's dated availability, else the provider's own date."""
    catalog = _catalog()
    dates = [
        entry.from_
        for entry in (getattr(catalog, "availability", None) or [])
        if entry.provider == prov.name and entry.status == "closed"
    ]
    return min(dates) if dates else getattr(prov, "retirement_date", None)


def _catalog():
    try:
        from tunewise.pricing import load_catalog

        return load_catalog()
    except (ImportError, TunewiseError):
        return None


def _resolve_dataset(ref: str, store, *, role: str):
    """A path (registered in the store when new) or a dataset id -> (path, Dataset record or None)."""
    path = Path(ref).expanduser()
    if path.is_file():
        try:
            return path, store.get_dataset(path)
        except NotFoundError:
            rows = sum(1 for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip())
            return path, store.add_dataset(path, format="chat", rows=rows, role=role)
    try:
        record = store.get_dataset(ref)
    except NotFoundError as exc:
        raise DataError(f"{ref}: no such file and no dataset with that id in the store") from exc
    return Path(record.path), record


def _validator() -> Callable[[dict[str, Any]], list[str]]:
    """The data stage's OpenAI format validator when it is installed, else the basic checks below."""
    try:
        from tunewise.data.validate import validate_chat_example
    except ImportError:
        return _basic_problems

    def check(example: dict[str, Any]) -> list[str]:
        try:
            found = validate_chat_example(example)
        except (TunewiseError, ValueError) as exc:
            return [str(exc)]
        if found is None or found is True:
            return []
        if found is False:
            return ["invalid chat example"]
        if isinstance(found, str):
            return [found]
        return [str(getattr(p, "reason", None) or getattr(p, "message", None) or p) for p in found]

    return check


def _basic_problems(example: Any) -> list[str]:
    if not isinstance(example, dict) or not isinstance(example.get("messages"), list) or not example["messages"]:
        return ["no 'messages' list"]
    problems = []
    for i, message in enumerate(example["messages"]):
        if not isinstance(message, dict):
            problems.append(f"message {i} is not an object")
            continue
        if message.get("role") not in _ROLES:
            problems.append(f"message {i} has role {message.get('role')!r}")
        content = message.get("content")
        if content is None and not (message.get("tool_calls") or message.get("function_call")):
            problems.append(f"message {i} has no content")
        elif content is not None and not isinstance(content, (str, list)):
            problems.append(f"message {i} content is {type(content).__name__}")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in example["messages"]):
        problems.append("no assistant message")
    return problems


def _example_tokens(example: dict[str, Any]) -> int:
    """4 characters a token, plus OpenAI's documented chat overhead (3 a message, 3 to prime the reply)."""

    def size(text: str) -> int:
        return math.ceil(len(text) / _CHARS_PER_TOKEN)

    total = _MESSAGE_OVERHEAD  # the reply is primed with <|start|>assistant<|message|>
    for message in example.get("messages") or []:
        total += _MESSAGE_OVERHEAD + size(str(message.get("role", "")))
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        if content:
            total += size(str(content))
        for key in ("name", "tool_calls", "function_call"):
            if message.get(key):
                value = message[key]
                total += size(value if isinstance(value, str) else json.dumps(value))
    for key in ("tools", "functions"):
        if example.get(key):
            total += size(json.dumps(example[key]))
    return total


def _event_values(event: ProviderEvent) -> dict[str, Any]:
    return {"key": event.key, "type": event.type, "level": event.level, "message": event.message,
            "created_at": event.created_at, **({"data": event.data} if event.data else {})}


def _show_plan(console, prov, model, train_path, n_train, eval_path, n_eval, tokens, epochs, epochs_note, billable, price, hp):
    approx = "~" if tokens.estimate else ""
    lines = [
        f"[bold]{prov.title}[/] fine-tuning of [bold]{model}[/] at {prov.base_url}",
        f"  data: {train_path} ({n_train} examples)" + (f", eval {eval_path} ({n_eval} examples)" if eval_path else ""),
        f"  tokens: {approx}{tokens.total:,} per epoch (tokenizer: {tokens.tokenizer}{', estimate' if tokens.estimate else ''}); "
        f"longest example {approx}{tokens.per_example_max:,}",
        f"  epochs: {epochs}" + (f" ({epochs_note})" if epochs_note else "") + f"; billable tokens {approx}{billable:,}",
        f"  hyperparameters: {hp or '(provider defaults)'}",
    ]
    if price:
        as_of = f", catalog as of {price['as_of']}" if price.get("as_of") else ""
        lines.append(f"  estimated cost: [bold]${price['usd']:,.2f}[/] ({price['basis']}{as_of})")
    else:
        lines.append(f"  estimated cost: unknown (no {prov.name} row for {model} in the pricing catalog)")
    for line in lines:
        console.print(line, highlight=False)


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError("a paid provider job needs confirmation: pass --yes (yes=True) when not at a terminal")
    import typer

    typer.confirm(question, default=False, abort=True)


def _err_console() -> Console:
    from tunewise.console import err_console

    return err_console

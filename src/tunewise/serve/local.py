"""The local backend: one base model (transformers, CPU or one GPU), LoRA adapters beside it by name, prompt
recipes over it, and a scheduler that serves concurrent requests of any of them in shared forward passes.

The scheduler is dynamic batching: a worker thread takes every waiting row (up to `max_batch_size`, after
waiting `batch_wait_ms` for company) and runs them through the evaluation's `generate_batched`, so a served
reply is the reply `tunewise eval` measured. Rows stream their text through `on_token`; a row whose client
left stops at its next token. A batch runs to its longest row before the next one starts: continuous
batching (joining rows into a running decode) is what vLLM does, and `--backend vllm` is the way to it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from tunewise.evaluate.generation import Generation, RowOptions, generate_batched, render_prompts
from tunewise.serve.backend import Backend, ModelCard
from tunewise.serve.config import ServeConfig
from tunewise.serve.mixed_lora import BASE, ENGINES, AdapterLoadError
from tunewise.serve.protocol import (
    SERVED_NAME, APIError, ChatCompletionRequest, check_served_name, chunk, completion, completion_id, model_not_found, usage,
)

log = logging.getLogger(__name__)

WAIT_ROUNDS = 20


@dataclass
class _Row:
    """One choice of one request, waiting for or in a batch."""

    ids: list[int]
    options: RowOptions
    labels: tuple[str, ...] | None
    decoding: str
    loop: asyncio.AbstractEventLoop
    result: asyncio.Future
    deltas: asyncio.Queue | None  # set when the request streams
    cancelled: bool = False
    queued_at: float = field(default_factory=time.perf_counter)

    def key(self):
        """Rows batch together when they stop and decode alike (label stopping is per batch)."""
        return self.labels, self.decoding


class Scheduler:
    """Gathers rows from concurrent requests into batches for one model (see the module docstring)."""

    def __init__(self, engine, tokenizer, *, max_batch_size: int = 16, batch_wait_ms: float = 5.0, max_new_tokens: int = 2048):
        self.engine, self.tokenizer = engine, tokenizer
        self.max_batch_size, self.wait = max_batch_size, batch_wait_ms / 1000
        self.max_new_tokens = max_new_tokens
        self._pending: deque[_Row] = deque()
        self._running = 0
        self._ready = threading.Condition()
        self._stopping = False
        self._expected = 1  # rows the next batch waits for: as many as the last one had
        self._thread = threading.Thread(target=self._work, name="tunewise-scheduler", daemon=True)
        self.batches = 0

    def start(self):
        self._thread.start()

    def stop(self, timeout: float = 30):
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
        self._thread.join(timeout)
        for row in list(self._pending):
            row.loop.call_soon_threadsafe(_fail, row.result, APIError(503, "the server is shutting down"))

    def depth(self) -> int:
        return len(self._pending) + self._running

    def submit(self, row: _Row) -> None:
        with self._ready:
            self._pending.append(row)
            self._ready.notify()

    def _take(self) -> list[_Row]:
        with self._ready:
            while not self._pending and not self._stopping:
                self._ready.wait()
            if self._stopping:
                return []
            first = self._pending[0]
            # Requests sent together reach the scheduler milliseconds apart (each is parsed and templated first, while
            # the last batch's thread holds the GIL), and a batch that misses some splits the clients into cohorts that
            # take turns, each at a fraction of the throughput. So: wait for as many rows as the last batch had (its
            # clients usually come back together), and beyond that until none has arrived for `wait`; never longer than
            # WAIT_ROUNDS x `wait` after the first. A lone client waits `wait` for company.
            cap = first.queued_at + WAIT_ROUNDS * self.wait
            while len(self._pending) < self.max_batch_size:
                now = time.perf_counter()
                if len(self._pending) >= self._expected:
                    until = min(self._pending[-1].queued_at + self.wait, cap)
                else:
                    until = cap
                if until <= now:
                    break
                self._ready.wait(until - now)
            batch, kept, adapters = [], deque(), set()
            while self._pending:
                row = self._pending.popleft()
                if row.cancelled:
                    continue
                fits = len(batch) < self.max_batch_size and row.key() == first.key()
                if fits and not self.engine.can_mix(adapters | {row.options.adapter or BASE}):
                    fits = False
                if fits:
                    batch.append(row)
                    adapters.add(row.options.adapter or BASE)
                else:
                    kept.append(row)
            self._pending = kept
            self._running = len(batch)
            self._expected = max(1, min(self.max_batch_size, len(batch)))
            return batch

    def _work(self):
        while True:
            batch = self._take()
            if not batch:
                if self._stopping:
                    return
                continue
            try:
                self._run(batch)
            except Exception as exc:  # a failed batch fails its requests, never the server
                log.exception("generation failed for a batch of %d rows", len(batch))
                for row in batch:
                    row.loop.call_soon_threadsafe(_fail, row.result, APIError(500, f"generation failed: {type(exc).__name__}"))
            finally:
                with self._ready:
                    self._running = 0
                self.batches += 1

    def _run(self, batch: list[_Row]):
        def on_token(index: int, delta: str, finish: str | None):
            row = batch[index]
            if row.cancelled:
                return False
            if row.deltas is not None and (delta or finish):
                row.loop.call_soon_threadsafe(row.deltas.put_nowait, (delta, finish))
            return True

        limit = min(self.max_new_tokens, max(row.options.max_new_tokens or self.max_new_tokens for row in batch))
        labels, decoding = batch[0].key()
        with self.engine.lock:
            generations = generate_batched(
                self.engine, self.tokenizer, [row.ids for row in batch], max_new_tokens=limit, batch_size=self.max_batch_size,
                labels=list(labels) if labels else None, decoding=decoding, options=[row.options for row in batch], on_token=on_token,
            )
        for row, generation in zip(batch, generations):
            row.loop.call_soon_threadsafe(_resolve, row.result, generation)


def _resolve(future: asyncio.Future, value):
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future, error: Exception):
    if not future.done():
        future.set_exception(error)


@dataclass
class _Served:
    """What a served name runs: an adapter (or the base) and, for a recipe, how it builds the prompt."""

    card: ModelCard
    adapter: str  # BASE or an adapter name loaded in the engine
    recipe: object | None = None  # tunewise.serve.recipes.Recipe


class LocalBackend(Backend):
    """A base model, its LoRA adapters and prompt recipes, served from this process.

    Example:
        backend = LocalBackend("smollm2-135m", adapters={"tickets": "run-3f2a"})
        app = create_app([backend])
    """

    name = "local"

    def __init__(self, model: str = "smollm2-135m", *, adapters: dict[str, str] | None = None, recipes: dict[str, str] | None = None,
                 recipe_data: str | None = None, engine: str = "stacked", served_name: str | None = None,
                 config: ServeConfig | None = None, store=None, device: str | None = None):
        if engine not in ENGINES:
            raise ValueError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
        self.model_name = model
        self.base_name = served_name or _served_base_name(model)
        self.config = config or ServeConfig()
        self.engine_kind, self.store, self.device = engine, store, device
        self.adapter_refs = dict(adapters or {})
        self.recipe_specs, self.recipe_data = dict(recipes or {}), recipe_data
        for name in [*self.adapter_refs, *self.recipe_specs]:
            check_served_name(name)
        self.failed: dict[str, str] = {}  # name -> why it could not be loaded (answered with its 404)
        self._served: dict[str, _Served] = {}
        self.engine = self.tokenizer = self.scheduler = None
        self.context = None

    # -- life cycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(self.load)

    def load(self) -> None:
        """Load the base, the adapters and the recipes (blocking; `start` runs it in a thread)."""
        import torch

        from tunewise.models import load_model

        # One GPU when there is one (bf16 where it has it), else the CPU in fp32: a CPU without bf16 instructions runs bf16 slower
        device = self.device or ("cuda" if torch.cuda.is_available() else None)
        dtype = torch.bfloat16 if device and device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
        model, self.tokenizer = load_model(self.model_name, dtype=dtype, device=device)
        self.context = getattr(model.config.get_text_config(), "max_position_embeddings", None)
        self.engine = ENGINES[self.engine_kind](model)
        self._served[self.base_name] = _Served(ModelCard(self.base_name, "base", None, source=self.model_name), BASE)
        for name, ref in self.adapter_refs.items():
            try:
                self._load_adapter(name, ref)
            except (AdapterLoadError, APIError) as exc:
                self.failed[name] = str(exc)
                log.info("adapter %s not served: %s", name, exc)  # `tunewise serve` prints it beside the served models
        if self.recipe_specs:
            self._build_recipes(self.recipe_specs)
        self.scheduler = Scheduler(self.engine, self.tokenizer, max_batch_size=self.config.max_batch_size,
                                   batch_wait_ms=self.config.batch_wait_ms, max_new_tokens=self.config.max_tokens_cap)
        self.scheduler.start()

    def _build_recipes(self, specs: dict[str, str]) -> None:
        from tunewise.serve.recipes import build_recipes, parse_recipe

        specs = dict(specs)
        for name, text in list(specs.items()):
            spec = parse_recipe(name, text)
            if spec.kind != "adapter":
                continue
            try:
                self._load_adapter(name, spec.target)
            except (AdapterLoadError, APIError) as exc:
                self.failed[name] = str(exc)
                del specs[name]
                log.info("adapter recipe %s not served: %s", name, exc)
        for name, recipe in build_recipes(specs, self.recipe_data, self.model_name, self._served, store=self.store).items():
            self._served[name] = recipe

    async def add_recipe(self, name: str, spec: str) -> ModelCard:
        """Serve one more recipe (a prompt spec or an adapter spec) while running; raises ConfigError or APIError."""
        check_served_name(name)
        if name in self._served:
            raise APIError(400, f"'{name}' is already served", param="model")
        await asyncio.to_thread(self._build_recipes, {name: spec})
        if name not in self._served:
            raise APIError(400, f"'{name}' could not be loaded: {self.failed.get(name, 'unknown reason')}", param="model")
        return self._served[name].card

    async def close(self) -> None:
        if self.scheduler is not None:
            await asyncio.to_thread(self.scheduler.stop)

    def health(self) -> dict:
        if self.scheduler is None:
            return {"status": "loading"}
        return {"status": "ok", "failed_adapters": dict(self.failed)} if self.failed else {"status": "ok"}

    def queue_depth(self) -> int:
        return self.scheduler.depth() if self.scheduler else 0

    def models(self) -> list[ModelCard]:
        return [served.card for served in self._served.values()]

    # -- adapters ------------------------------------------------------------------------------
    @property
    def loads_adapters(self) -> bool:
        return True

    def _load_adapter(self, name: str, ref: str) -> ModelCard:
        folder, run_id = resolve_adapter(ref, self.store)
        info = self.engine.load(name, folder)
        self.failed.pop(name, None)
        card = ModelCard(name, "adapter", self.base_name, source=run_id or str(folder))
        self._served[name] = _Served(card, name)
        log.info("adapter %s loaded from %s (rank %d, %d layers)", name, folder, info.rank, info.targets)
        return card

    async def load_adapter(self, name: str, path: str) -> ModelCard:
        check_served_name(name)
        if name in self._served and self._served[name].adapter != name:
            raise APIError(400, f"'{name}' is already served as a {self._served[name].card.kind}", param="lora_name")
        try:
            return await asyncio.to_thread(self._load_adapter, name, path)
        except AdapterLoadError as exc:
            self.failed[name] = str(exc)
            raise APIError(400, str(exc), param="lora_path") from exc

    async def unload_adapter(self, name: str) -> None:
        served = self._served.get(name)
        if served is None or served.adapter != name:
            raise model_not_found(name)
        del self._served[name]  # new requests get 404 at once; rows already batched finish (unload waits for the engine's lock)
        await asyncio.to_thread(self.engine.unload, name)

    def missing(self, name: str) -> APIError | None:
        if name in self.failed:
            return APIError(404, f"The model '{name}' could not be loaded: {self.failed[name]}", param="model", code="model_not_found")
        return None

    # -- requests ------------------------------------------------------------------------------
    def _target(self, request: ChatCompletionRequest) -> _Served:
        served = self._served.get(request.model)
        if served is None:
            raise self.missing(request.model) or model_not_found(request.model)
        if self.scheduler is None:
            raise APIError(503, "the model is still loading")
        return served

    def _rows(self, request: ChatCompletionRequest, deltas: list | None) -> tuple[list[_Row], int]:
        served = self._target(request)
        if request.response_format is not None and request.response_format.type != "text":
            raise APIError(400, f"response_format {request.response_format.type} is not supported by the local backend; "
                                "use --backend vllm, or a recipe over a JSON task", param="response_format")
        messages = served.recipe.messages(request) if served.recipe else request.chat()
        try:
            ids = render_prompts(self.tokenizer, [messages])[0]
        except Exception as exc:  # jinja raises TemplateError subclasses for message orders a template refuses
            raise APIError(400, f"the model's chat template refused these messages: {exc}", param="messages") from exc
        limit = request.token_limit(self.config.default_max_tokens)
        if self.context and len(ids) + limit > self.context:
            raise APIError(400, f"This model's maximum context length is {self.context} tokens; the messages are {len(ids)} tokens "
                                f"and {limit} more were asked for. Shorten the messages or lower max_tokens.",
                           param="messages", code="context_length_exceeded")
        labels, decoding = (served.recipe.labels, served.recipe.decoding) if served.recipe else (None, "free")
        temperature = 1.0 if request.temperature is None else request.temperature  # OpenAI's default
        loop = asyncio.get_running_loop()
        rows = []
        for index in range(request.n):
            seed = None if request.seed is None else request.seed + index  # n choices from one seed must differ
            options = RowOptions(adapter=served.adapter, max_new_tokens=limit, temperature=temperature,
                                 top_p=request.top_p or 1.0, seed=seed, stop=tuple(request.stop_sequences()))
            queue = asyncio.Queue() if deltas is not None else None
            if queue is not None:
                deltas.append(queue)
            rows.append(_Row(ids, options, labels, decoding, loop, loop.create_future(), queue))
        return rows, len(ids)

    def _submit(self, rows: list[_Row]) -> None:
        for row in rows:
            self.scheduler.submit(row)

    async def complete(self, request: ChatCompletionRequest) -> dict:
        rows, prompt_tokens = self._rows(request, None)
        self._submit(rows)
        try:
            generations: list[Generation] = await asyncio.gather(*(row.result for row in rows))
        except asyncio.CancelledError:
            for row in rows:
                row.cancelled = True
            raise
        return completion(request.model, [(g.text, g.finish_reason) for g in generations], prompt_tokens,
                          sum(g.tokens_out for g in generations))

    async def stream(self, request: ChatCompletionRequest) -> AsyncIterator[dict]:
        queues: list[asyncio.Queue] = []
        rows, prompt_tokens = self._rows(request, queues)  # raised before the first chunk: the client gets a plain error
        id_, created = completion_id(), int(time.time())
        self._submit(rows)
        waiting: dict = {}
        try:
            for index in range(len(rows)):
                yield chunk(id_, request.model, index=index, delta={"role": "assistant", "content": ""}, created=created)
            waiting = {asyncio.ensure_future(queues[i].get()): i for i in range(len(rows))}
            while waiting:
                done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    index = waiting.pop(task)
                    delta, finish = task.result()
                    if delta:
                        yield chunk(id_, request.model, index=index, delta={"content": delta}, created=created)
                    if finish:
                        yield chunk(id_, request.model, index=index, finish_reason=finish, created=created)
                    else:
                        waiting[asyncio.ensure_future(queues[index].get())] = index
            generations = await asyncio.gather(*(row.result for row in rows))
            yield chunk(id_, request.model, usage_=usage(prompt_tokens, sum(g.tokens_out for g in generations)), created=created)
        finally:
            # the client went away (or the stream ended): rows still decoding stop at their next token
            for row in rows:
                row.cancelled = True
            for task in waiting:
                task.cancel()


def _served_base_name(model: str) -> str:
    path = Path(model)
    name = path.stem if path.suffix == ".gguf" else path.name if path.exists() else model
    return name if SERVED_NAME.match(name) else "base"


def resolve_adapter(ref: str, store=None) -> tuple[Path, str | None]:
    """(adapter folder, run id) for a run id (or prefix) in the store, an adapter folder, or a GGUF export of a run."""
    from tunewise.errors import TunewiseError
    from tunewise.train.local import _artifact_folder

    path = Path(ref).expanduser()
    if path.is_dir():
        return path, None
    from tunewise.store import Store

    with Store.borrow(store) as opened:
        if path.suffix == ".gguf":
            if not path.exists():
                raise AdapterLoadError(f"{ref}: file not found")
            for run in opened.list_runs(limit=10_000):
                if Path((run.artifacts or {}).get("gguf", "")).resolve() == path.resolve():
                    return _artifact_folder(run, opened), run.id
            raise AdapterLoadError(f"{ref}: a GGUF export of no run in this store; a GGUF is merged weights: serve it with --model {ref}")
        try:
            run = opened.get_run(ref)
            return _artifact_folder(run, opened), run.id
        except TunewiseError as exc:
            raise AdapterLoadError(f"{ref}: not an adapter folder or a run in the store ({exc})") from exc


__all__ = ["LocalBackend", "Scheduler", "resolve_adapter"]

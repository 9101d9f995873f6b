"""Label unlabeled inputs with a teacher: several samples per row, agreement filtering, cost, budget, resume.

    from tunewise.distill.label import label_rows
    result = label_rows("unlabeled.csv", teacher="endpoint:https://api.example/v1#big-model",
                        text_column="body", out_dir="distilled/", budget_usd=20, yes=True)
    result.counts  # {"rows": 1000, "accepted": 912, "queued": 80, "failed": 8, "not_started": 0}

Each row is asked `samples` times (sample 0 greedy, the others at `temperature`). Classification takes the
majority label (`parse_label`) and agreement = its share of the samples; JSON (a `schema`, or teacher data
whose replies are JSON) takes the majority of the schema-valid parses, compared in canonical form
(`json.dumps(obj, sort_keys=True)`); free text keeps the first reply and scores agreement by similarity. Rows at or above `min_agreement` are accepted, the others queued for review,
rows whose calls failed are kept in place with their error: nothing is dropped. Every call is cached in the
store, so a rerun after an interruption or a budget stop only pays for what is missing.

The input is a file (CSV, JSONL, chat JSONL without assistant turns) or `"deployment:NAME"`: that deployment's
served requests from the store's request log, written first to `out_dir/inputs.jsonl`.

Writes to `out_dir`: rows.jsonl (every input row, in input order), accepted.jsonl (chat JSONL for training,
each line's `metadata.distill` saying where it came from: teacher, agreement, human review, source line) and
summary.json (counts, cost, requests, settings, the dataset id). accepted.jsonl is registered in the store as a
dataset whose `meta["distilled"]["teacher"]` names the teacher, child of the input file's dataset when the input
is registered, so that a student trained on it can be traced back to its teacher.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import threading
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tunewise.distill.teacher import Call, Teacher, TeacherFailed, open_teacher
from tunewise.errors import ConfigError, DataError
from tunewise.evaluate.tasks import Example, Task, build_prompt, parse_json, parse_label, row_system, task_system_prompt

STATUSES = ("accepted", "queued", "rejected", "failed", "not_started")  # rejected: by a reviewer
UNLABELED_CHAT = "example_missing_assistant_message"


@dataclass
class Labeled:
    """What a labeling run did: one dict per input row (as in rows.jsonl), the counts and what it cost."""

    rows: list[dict[str, Any]]
    counts: dict[str, int]
    cost_usd: float
    requests: int  # calls sent to the teacher in this run (cached ones not included)
    cached: int  # calls answered from the store's cache
    out_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)
    stopped: str | None = None  # why the run stopped before the last row (budget or request cap)
    dataset_id: str | None = None  # accepted.jsonl as registered in the store (None: no row was accepted)


def read_inputs(data: str | Path, *, text_column: str | None = None) -> list[tuple[Example | None, int, str | None]]:
    """(example, line, problem) per input row in file order; a row that cannot be read has no example, only its problem.

    Reads with the data module's importer (chat/JSONL/CSV/...), so a missing --text-column is its one-line error.
    """
    from tunewise.data.formats import load_examples
    from tunewise.evaluate.tasks import _to_example

    path = Path(data)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    loaded = load_examples(path, text_column=text_column)
    items: list[tuple[int, Example | None, str | None]] = [(r.line, _to_example(0, r.line, r.example), None) for r in loaded.records]
    for problem in loaded.problems:
        example = _unlabeled_chat(problem) if problem.reason.startswith(UNLABELED_CHAT) else None
        items.append((problem.line, example, None if example else problem.reason))
    items.sort(key=lambda item: item[0])
    if not items:
        raise DataError(f"{path}: no rows")
    out = []
    for index, (line, example, problem) in enumerate(items):
        if example is not None:
            example.index = index
        out.append((example, line, problem))
    return out


DEPLOYMENT = "deployment:"


def deployment_inputs(name: str, out: Path, store) -> tuple[Path, dict[int, str], dict[str, Any]]:
    """Write deployment `name`'s served requests to `out/inputs.jsonl` (chat JSONL without assistant turns).

    Returns the file, the request id of each of its lines and what was read. The requests are those
    `tunewise deploy export-logs` would export (served, successful, ending with a user turn), their text as
    the server logged it: PII-redacted unless the deployment logs raw.
    """
    from tunewise.deploy.logs import request_turns
    from tunewise.deploy.state import load

    loaded = load(name, store=store)
    logged = store.request_logs(loaded.record.id)  # served rows; shadow answers are not traffic
    path = out / "inputs.jsonl"
    ids: dict[int, str] = {}
    unredacted = 0
    with open(path, "w", encoding="utf-8") as handle:
        for row in logged:
            left_out, messages = request_turns(row)
            if left_out:
                continue
            unredacted += not row.redacted
            handle.write(json.dumps({"messages": messages, "metadata": {"request_id": row.id, "deployment": loaded.name}},
                                    ensure_ascii=False) + "\n")
            ids[len(ids) + 1] = row.id
    if not ids:
        raise DataError(f"deployment {loaded.name!r}: no served request to label ({len(logged)} logged, none successful "
                        "with a final user turn)")
    info = {"name": loaded.name, "id": loaded.record.id, "requests": len(ids), "logged": len(logged), "unredacted": unredacted}
    return path, ids, info


def _unlabeled_chat(problem) -> Example | None:
    # The chat reader wants a final assistant turn (it reads training data); here its absence is the point.
    from tunewise.evaluate.tasks import _to_example

    try:
        example = json.loads(problem.raw)
    except ValueError:
        return None
    if not isinstance(example, dict) or not isinstance(example.get("messages"), list):
        return None
    return _to_example(0, problem.line, example)


def prompt_hash(messages: list[dict], temperature: float) -> str:
    """The cache key of a prompt: sha256 of its messages and temperature (the sample index is keyed apart)."""
    blob = json.dumps({"messages": messages, "temperature": temperature}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def agreement_of(replies: list[str], labels: list[str] | None) -> tuple[str | None, float]:
    """(label, agreement) of one row's replies: majority label and its share, or first reply and mean similarity."""
    if labels:
        parsed = [parse_label(reply, labels) for reply in replies]
        counts = Counter(p for p in parsed if p is not None)
        if not counts:
            return None, 0.0
        top = max(counts.values())
        label = next(p for p in parsed if p is not None and counts[p] == top)  # ties: the earliest sample (greedy first)
        return label, top / len(replies)
    if len(replies) < 2:
        return replies[0] if replies else None, 1.0
    # Character-level similarity (difflib) needs no model and is deterministic; it undercounts paraphrases, which
    # only errs towards sending a row to review, the safe side for training data.
    pairs = list(itertools.combinations(replies, 2))
    score = sum(difflib.SequenceMatcher(None, a, b).ratio() for a, b in pairs) / len(pairs)
    return replies[0], score


def json_agreement(replies: list[str], validator=None) -> tuple[str | None, float, str | None]:
    """(canonical JSON, agreement, error) of one row's replies: the majority of the (schema-)valid parses.

    Agreement is the majority's count over all the samples, so an invalid sample counts against it.
    """
    canonical: list[str] = []
    first_problem = None
    for reply in replies:
        ok, value = parse_json(reply)
        if not ok:
            first_problem = first_problem or "not JSON"
            continue
        errors = [e.message for e in validator.iter_errors(value)] if validator is not None else []
        if errors:
            first_problem = first_problem or f"schema: {errors[0]}"
            continue
        canonical.append(json.dumps(value, sort_keys=True, ensure_ascii=False))
    if not canonical:
        return None, 0.0, f"no sample was valid JSON{' for the schema' if validator is not None else ''} (first: {first_problem})"
    counts = Counter(canonical)
    top = max(counts.values())
    return next(c for c in canonical if counts[c] == top), top / len(replies), None  # ties: the earliest sample


def judge(task: Task, replies: list[str], validator=None) -> tuple[str | None, float, str | None]:
    """(label, agreement, error) of one row's replies, by the task's kind."""
    if task.type == "json":
        return json_agreement(replies, validator)
    label, agreement = agreement_of(replies, task.labels or None)
    return label, agreement, "no reply named one of the labels" if label is None else None


def _task_of(rows: list[Example], teacher_data: str | Path | None, labels: list[str] | None,
             schema: str | Path | dict | None) -> Task:
    """Classification (given labels or read from the references), JSON (a schema, or JSON references), or text."""
    from tunewise.data.task import detect_task as detect_shape
    from tunewise.evaluate.tasks import load_rows

    labels = [label.strip() for label in labels if label.strip()] if labels else None
    if labels and schema is not None:
        raise ConfigError("--labels and --json-schema: a task is either classification or JSON, give one of them")
    if labels:
        return Task("classification", labels)
    if schema is not None:
        return Task("json", schema=_load_schema(schema))
    refs = [r.reference for r in rows if r.reference is not None]
    if teacher_data:
        refs += [r.reference for r in load_rows(teacher_data) if r.reference is not None]
    if not refs:
        return Task("text")
    shape = detect_shape(refs)
    if shape.type == "classification" and shape.labels:
        return Task("classification", list(shape.labels))
    return Task("json") if shape.type == "json" else Task("text")


def _load_schema(schema: str | Path | dict) -> dict:
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    from tunewise.evaluate.run import _load_schema as load_schema_file

    if not isinstance(schema, dict):
        return load_schema_file(schema)  # the file and its schema checked as `tunewise eval --schema` does
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise ConfigError(f"invalid JSON Schema ({exc.message})") from None
    return schema


def _validator(task: Task):
    if task.schema is None:
        return None
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    return validator_for(task.schema, default=Draft202012Validator)(task.schema)


def label_rows(
    data: str | Path,
    *,
    teacher: str,
    out_dir: str | Path,
    samples: int = 3,
    min_agreement: float = 0.67,
    labels: list[str] | None = None,
    text_column: str | None = None,
    budget_usd: float | None = None,
    max_requests: int | None = None,
    concurrency: int = 4,
    temperature: float = 0.7,
    teacher_data: str | Path | None = None,
    schema: str | Path | dict | None = None,
    store=None,
    yes: bool = False,
    on_row: Callable[[dict], None] | None = None,
) -> Labeled:
    """Label every row of `data` with `teacher`; see the module docstring. `on_row` is called as each row finishes.

    `data` is a file, or `"deployment:NAME"` for the served requests of a deployment (`deployment_inputs`).
    `schema` (a JSON Schema, or the path of a file holding one) makes it a JSON task.
    """
    from tunewise.config import load_config
    from tunewise.store import Store

    if samples < 1:
        raise ConfigError(f"--samples {samples}: at least 1")
    if not 0 <= min_agreement <= 1:
        raise ConfigError(f"--min-agreement {min_agreement}: between 0 and 1")
    if concurrency < 1:
        raise ConfigError(f"--concurrency {concurrency}: at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    deployment, request_ids, source = None, {}, str(data)
    if source.startswith(DEPLOYMENT):
        with Store.borrow(store) as db:
            data, request_ids, deployment = deployment_inputs(source[len(DEPLOYMENT):], out, db)
    inputs = read_inputs(data, text_column=text_column)
    examples = [ex for ex, _, _ in inputs if ex is not None]
    task = _task_of(examples, teacher_data, labels, schema)
    labels = task.labels or None
    settings = load_config()

    rows: list[dict[str, Any]] = []
    prompts: dict[int, list[dict]] = {}
    for index, (example, line, problem) in enumerate(inputs):
        origin = {"file": str(data), "line": line}
        if deployment:
            origin.update(deployment=deployment["name"], request_id=request_ids.get(line))
        row = {"index": index, "source": origin,
               "messages": example.messages if example else None, "text": example.text if example else None,
               "samples": [], "label": None, "agreement": None, "status": "not_started", "error": None, "teacher": teacher,
               "review": None}
        if example is None:
            row.update(status="failed", error=f"unreadable input: {problem}")
        else:
            system = task_system_prompt(task, row_system(example))
            if task.type == "json" and task.schema is None and "json" not in (system or "").lower():
                system = ((system or "") + " Reply with JSON only.").strip()
            prompts[index] = build_prompt(system, [], example)
        rows.append(row)

    with Store.borrow(store) as db, open_teacher(teacher, teacher_data=str(teacher_data) if teacher_data else None,
                                                 pricing_file=settings.advise.pricing_file,
                                                 hourly_usd=settings.hardware.hourly_usd, config=settings.eval) as client:
        source_dataset_id = None if deployment else _registered(data, db)
        if labels:
            client.max_tokens = 32
        if budget_usd is not None and not client.priced:
            raise ConfigError(f"--budget-usd: no price is known for teacher {teacher!r} (add its model to the pricing catalog "
                              "with advise.pricing_file, or cap the run with --max-requests)")
        run = _Run(client, db, samples, temperature, budget_usd, max_requests)
        estimate = run.estimate(prompts)
        _confirm_estimate(client, estimate, yes)
        interrupted = None
        try:
            run.go(rows, prompts, task, min_agreement, concurrency, on_row)
        except KeyboardInterrupt as exc:  # every finished call is in the store; write what is done, then stop
            run.stopped, interrupted = "interrupted", exc

    summary = {
        "counts": count_rows(rows), "cost_usd": round(run.spent, 6), "requests": run.requests, "cached": run.cached,
        "cached_cost_usd": round(run.cached_usd, 6),
        "estimate": estimate, "stopped": run.stopped, "teacher": teacher, "task": task.type, "labels": labels,
        "schema": task.schema,
        "settings": {"data": source, "samples": samples, "min_agreement": min_agreement, "temperature": temperature,
                     "text_column": text_column, "budget_usd": budget_usd, "max_requests": max_requests,
                     "concurrency": concurrency, "teacher_data": str(teacher_data) if teacher_data else None},
        "source_dataset_id": source_dataset_id,
        "deployment": deployment,
    }
    previous = out / "rows.jsonl"
    if previous.is_file():  # a rerun into a reviewed folder keeps the decisions that still apply
        from tunewise.distill.review import carry_reviews, load_labeled

        try:
            summary["reviews_kept"] = carry_reviews(load_labeled(out)[0], rows)
        except (DataError, ValueError, KeyError):
            summary["reviews_kept"] = 0  # an unreadable earlier run: nothing to keep
    dataset_id = publish(out, rows, summary, store=store, parent_id=source_dataset_id)
    if interrupted is not None:
        raise interrupted
    return Labeled(rows, summary["counts"], run.spent, run.requests, run.cached, out, summary, run.stopped, dataset_id)


def count_rows(rows: list[dict]) -> dict[str, int]:
    """{"rows": n, status: count...}; the statuses add up to the rows (nothing silently dropped)."""
    counts = {"rows": len(rows), **{status: sum(r["status"] == status for r in rows) for status in STATUSES}}
    assert sum(counts[s] for s in STATUSES) == counts["rows"], counts
    return counts


def _confirm_estimate(client: Teacher, estimate: dict, yes: bool) -> None:
    from tunewise.console import err_console

    usd = estimate["usd"]
    err_console.print(
        f"Teacher {client.key}: {estimate['requests']:,} requests ({estimate['cached']:,} cached), estimated "
        + (f"${usd:,.4f} ({estimate['basis']})" if usd is not None else "cost unknown (no price for this teacher in the catalog)"),
        highlight=False, soft_wrap=True)
    # Money is only at stake with a priced endpoint; a local teacher's cost is this machine's time.
    if usd is not None and usd > 0 and not client.local:
        from tunewise.train.providers.jobs import _confirm

        _confirm(yes, f"Send {estimate['requests']:,} paid requests to the teacher (about ${usd:,.2f})?")


class _Run:
    """The calls of one labeling run: cache first, then the teacher, with the budget and the request cap."""

    def __init__(self, client: Teacher, store, samples: int, temperature: float, budget_usd: float | None, max_requests: int | None):
        self.client, self.store, self.samples, self.temperature = client, store, samples, temperature
        self.budget_usd, self.max_requests = budget_usd, max_requests
        self.lock = threading.Lock()
        self.spent = 0.0
        self.requests = 0
        self.cached = 0
        self.cached_usd = 0.0  # what the cached calls cost when they were made (not paid again)
        self.reserved_usd = 0.0
        self.reserved_requests = 0
        self.per_request: float | None = None  # USD, from the first priced call
        self.stopped: str | None = None

    def _temperature(self, sample: int) -> float:
        return 0.0 if sample == 0 else self.temperature

    def _cached(self, messages: list[dict]) -> dict[int, Any]:
        found = {}
        for t in {self._temperature(s) for s in range(self.samples)}:
            calls = self.store.get_teacher_calls(self.client.key, prompt_hash(messages, t))
            found.update({i: c for i, c in calls.items() if i < self.samples and self._temperature(i) == t})
        return found

    def call(self, messages: list[dict], sample: int, cache: dict[int, Any]) -> Call:
        if sample in cache:
            hit = cache[sample]
            if not isinstance(hit, _Cached):  # the estimate's probe was sent and counted in this run
                with self.lock:
                    self.cached += 1
                    self.cached_usd += hit.cost_usd or 0.0
            return Call(hit.response, hit.prompt_tokens, hit.completion_tokens, hit.cost_usd, hit.latency_ms, cached=True)
        t = self._temperature(sample)
        result = self.client.ask(messages, temperature=t, sample=sample)
        self.store.add_teacher_call(self.client.key, prompt_hash(messages, t), sample, response=result.text,
                                    latency_ms=result.latency_ms, prompt_tokens=result.prompt_tokens,
                                    completion_tokens=result.completion_tokens, cost_usd=result.cost_usd)
        with self.lock:
            self.requests += 1
            self.spent += result.cost_usd or 0.0
            if result.cost_usd and self.per_request is None:
                self.per_request = result.cost_usd
        return result

    def estimate(self, prompts: dict[int, list[dict]]) -> dict:
        """Requests still to send and their price: from the first row's greedy call (cached, so never paid twice)."""
        missing = cached = 0
        caches = {}
        for index, messages in prompts.items():
            caches[index] = self._cached(messages)
            cached += len(caches[index])
            missing += self.samples - len(caches[index])
        self._caches = caches
        basis = "no requests to send"
        known = next((c.cost_usd for cache in caches.values() for c in cache.values() if c.cost_usd), None)
        if missing and known:
            self.per_request = known
            basis = f"${known:.6f} per request, as cached calls cost"
        elif missing and self.client.priced:
            first = next(i for i in prompts if 0 not in caches[i])
            try:
                probe = self.call(prompts[first], 0, caches[first])
            except TeacherFailed:
                probe = None  # the row retries it and records the error
            else:
                caches[first][0] = _Cached(probe)
            if probe is not None and probe.cost_usd is not None:
                basis = f"${probe.cost_usd:.6f} per request, measured on the first request"
        usd = None if self.per_request is None else self.per_request * missing
        if usd is None and not self.client.priced:
            basis = "no price known"
        return {"requests": missing, "cached": cached, "usd": usd, "basis": basis}

    def _fits(self, needed: int) -> str | None:
        """Why a row needing `needed` new calls cannot start now (None: it can); reserves its share when it can."""
        with self.lock:
            if self.max_requests is not None and self.requests + self.reserved_requests + needed > self.max_requests:
                return f"max_requests {self.max_requests} reached"
            cost = (self.per_request or 0.0) * needed
            if self.budget_usd is not None and self.spent + self.reserved_usd + cost > self.budget_usd + 1e-12:
                return f"budget_usd {self.budget_usd:g} reached (spent ${self.spent:.4f})"
            self.reserved_requests += needed
            self.reserved_usd += cost
        return None

    def _release(self, needed: int) -> None:
        with self.lock:
            self.reserved_requests -= needed
            self.reserved_usd -= (self.per_request or 0.0) * needed

    def go(self, rows, prompts, task: Task, min_agreement, concurrency, on_row) -> None:
        validator = _validator(task)

        def one(index: int) -> None:
            row = rows[index]
            cache = self._caches[index]
            # A row's samples are asked at once: a local teacher then batches them together and prefills the shared
            # prompt once (tunewise.evaluate.generation), so three samples cost little more than one.
            calls = [samples_pool.submit(self.call, prompts[index], sample, cache) for sample in range(self.samples)]
            replies = []
            try:
                for call in calls:
                    replies.append(call.result().text)
            except TeacherFailed as exc:
                wait(calls)  # every sent call is in the cache, so a rerun pays only for the one that failed
                row.update(samples=replies, status="failed", error=str(exc))
                return
            label, agreement, error = judge(task, replies, validator)
            row.update(samples=replies, label=label, agreement=round(agreement, 4), error=error,
                       status="accepted" if label is not None and agreement >= min_agreement else "queued")

        pending: set[Future] = set()
        with ThreadPoolExecutor(max_workers=concurrency) as pool, \
                ThreadPoolExecutor(max_workers=concurrency * self.samples) as samples_pool:
            for index in prompts:
                while len(pending) >= concurrency:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    self._finished(done, rows, on_row)
                needed = self.samples - len(self._caches[index])
                why = self._fits(needed)
                if why and pending:  # what is in flight may cost less than reserved: decide once it is in
                    done, pending = wait(pending)
                    self._finished(done, rows, on_row)
                    why = self._fits(needed)
                if why:
                    self.stopped = why
                    break
                future = pool.submit(one, index)
                future.needed, future.index = needed, index
                pending.add(future)
            done, _ = wait(pending)
            self._finished(done, rows, on_row)

    def _finished(self, done, rows, on_row) -> None:
        for future in done:
            self._release(future.needed)
            future.result()  # a bug in a worker surfaces here rather than as a silently empty row
            if on_row:
                on_row(rows[future.index])


class _Cached:
    """A just-made call replayed as a cache entry (the estimate's probe), shaped like a TeacherCall."""

    def __init__(self, call: Call):
        self.response, self.prompt_tokens, self.completion_tokens = call.text, call.prompt_tokens, call.completion_tokens
        self.cost_usd, self.latency_ms = call.cost_usd, call.latency_ms


def provenance(row: dict) -> dict[str, Any]:
    """What one accepted line says about itself (`metadata.distill`): who labelled it, how sure, from which input."""
    review = row.get("review") or {}
    source = row.get("source") or {}
    origin = f"deployment:{source['deployment']}" if source.get("deployment") else source.get("file")
    out = {"teacher": row.get("teacher"), "agreement": row.get("agreement"), "human_reviewed": bool(review),
           "source": origin, "source_line": source.get("line"), "row": row["index"]}
    if source.get("request_id"):
        out["request_id"] = source["request_id"]
    if review:
        out.update(decision=review["decision"], reviewer_label=review["label"], teacher_label=review.get("teacher_label"))
    return out


def publish(out: Path, rows: list[dict], summary: dict, *, store=None, parent_id: str | None = None) -> str | None:
    """Write rows.jsonl and accepted.jsonl, register accepted.jsonl, then write summary.json; returns the dataset id.

    Also what a review import calls after changing rows, so that the files and the store never disagree.
    """
    from tunewise.store import Store

    summary["counts"] = count_rows(rows)
    _write_lines(out / "rows.jsonl", rows)
    accepted = [{"messages": [*row["messages"], {"role": "assistant", "content": row["label"]}],
                 "metadata": {"distill": provenance(row)}} for row in rows if row["status"] == "accepted"]
    _write_lines(out / "accepted.jsonl", accepted)
    dataset_id = None
    if accepted:  # an empty file is no dataset: nothing to train on
        settings = summary.get("settings") or {}
        meta = {"distilled": {"teacher": summary["teacher"], "dir": str(out.resolve()), "source": settings.get("data"),
                              "accepted": len(accepted), "reviewed": sum(bool(r.get("review")) for r in rows),
                              "min_agreement": settings.get("min_agreement"), "samples": settings.get("samples"),
                              "task": summary.get("task")}}
        if summary.get("deployment"):
            meta["distilled"]["deployment_id"] = summary["deployment"]["id"]
        with Store.borrow(store) as db:
            dataset_id = db.add_dataset(out / "accepted.jsonl", format="chat", rows=len(accepted), role="train",
                                        parent_id=parent_id, meta=meta).id
    summary["dataset_id"] = dataset_id
    _replace(out / "summary.json", json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return dataset_id


def _registered(data: str | Path, store) -> str | None:
    """The id of the input file's dataset when the store knows its bytes (the accepted set's parent)."""
    from tunewise.store import file_hash

    found = store.find_dataset_by_hash(file_hash(data))
    return found.id if found is not None else None


def _write_lines(path: Path, rows: list[dict]) -> None:
    _replace(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _replace(path: Path, text: str) -> None:
    # Write beside, then rename: an interrupted write never leaves half a rows.jsonl behind.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)

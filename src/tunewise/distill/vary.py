"""Variations: the teacher paraphrases inputs of under-represented labels, new rows are deduplicated, then labelled.

    from tunewise.distill.vary import vary_rows
    result = vary_rows("distilled/accepted.jsonl", teacher="endpoint:https://api.example/v1#big-model",
                       out_dir="varied/", budget_usd=5, yes=True)
    result.counts  # {"asked": 40, "kept": 31, "near_duplicates": 6, "exact_duplicates": 2, "empty": 1, "failed": 0}

`data` is a labelled chat JSONL (its last assistant turn is the label), such as an accepted.jsonl. Each label
below the target (`min_per_label`, else the median count per label) gets paraphrases of its inputs, cycling over
its rows, until the label's shortfall is made up or three times that many paraphrases were asked. A source row
gives at most `per_row` kept paraphrases (default 1: a label at most doubles, so the student does not learn mostly
from rewordings of a few rows). Each paraphrase is checked with the data module's near-duplicate index against
every input of `data` and every paraphrase kept before it; near and exact duplicates, empty replies and failed
calls are written with their reason to `out_dir/variations.dropped.jsonl`, so asked = kept + near_duplicates +
exact_duplicates + empty + failed.

The kept inputs go to `out_dir/variations.jsonl` (unlabelled, each line's `metadata.variation` naming its source
line and label) and are labelled by `label_rows` like any other input: the label is the teacher's majority, not
the source row's. label_rows keeps no per-line metadata, so `summary.json["variations"]["rows"]` maps each line
of variations.jsonl (the `source_line` of accepted.jsonl's provenance) back to its source line.

Paraphrases are cached in the store like labelling calls, keyed by the row's prompt and how many times that row
was asked before, so a rerun replays them and pays only for what is missing. The budget and the request cap
cover both steps: paraphrasing first, labelling gets what is left.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tunewise.distill.label import Labeled, _Cached, _replace, _Run, _write_lines, label_rows, prompt_hash, read_inputs
from tunewise.distill.teacher import Call, TeacherFailed, open_teacher
from tunewise.errors import ConfigError, DataError
from tunewise.evaluate.tasks import Example

PARAPHRASE_SYSTEM = ("Rewrite the user's message in other words, keeping its meaning and intent. "
                     "Reply with the rewritten message only.")
TRIES_PER_ROW = 3  # paraphrases asked per missing row at most, before a label is left short
# Why a paraphrase was dropped -> its count's name in `Varied.counts`.
DROPPED = {"near_duplicate": "near_duplicates", "exact_duplicate": "exact_duplicates", "empty": "empty", "failed": "failed"}
# Free-text kinds only: a few-shot or fine-tuned spec answers with the labels it learned, not with a rewording.
_FREE_TEXT_KINDS = ("endpoint", "zero-shot")


@dataclass
class Varied:
    """What a variations run did: paraphrases asked and what became of them, per label, and the labelling of the kept."""

    counts: dict[str, int]  # asked, kept, near_duplicates, exact_duplicates, empty, failed
    labels: dict[str, dict[str, int]]  # label -> rows, target, new, short
    target: int  # min_per_label, or the median count per label (rounded up)
    requests: int  # paraphrasing calls sent in this run (cached ones not included)
    cached: int
    cost_usd: float
    out_dir: Path
    variations: Path
    dropped: Path
    stopped: str | None = None
    labeled: Labeled | None = None  # None: nothing kept, or a cap was reached while paraphrasing
    summary: dict[str, Any] = field(default_factory=dict)


class _Paraphrases(_Run):
    # Every ask is sampled: a row asked again must be able to answer another rewording, and greedy decoding tends to echo.
    def _temperature(self, sample: int) -> float:
        return self.temperature


@dataclass
class _Source:
    example: Example
    line: int
    label: str
    asked: int = 0
    kept: int = 0


def vary_rows(
    data: str | Path,
    *,
    teacher: str,
    out_dir: str | Path,
    paraphraser: str | None = None,
    min_per_label: int | None = None,
    per_row: int = 1,
    samples: int = 3,
    min_agreement: float = 0.67,
    temperature: float = 0.9,
    budget_usd: float | None = None,
    max_requests: int | None = None,
    concurrency: int = 4,
    teacher_data: str | Path | None = None,
    yes: bool = False,
    store=None,
    on_row: Callable[[dict], None] | None = None,
) -> Varied:
    """Paraphrase the inputs of under-represented labels of `data`, deduplicate, label; see the module docstring.

    `paraphraser` defaults to `teacher`; `temperature` is the paraphrases' (labelling keeps label_rows' own).
    `on_row` is label_rows' callback, called as each new row is labelled.
    """
    from tunewise.config import load_config
    from tunewise.data.dedup import DEFAULT_THRESHOLD, DedupIndex
    from tunewise.evaluate.specs import parse_spec
    from tunewise.store import Store

    if per_row < 1:
        raise ConfigError(f"--per-row {per_row}: at least 1")
    if min_per_label is not None and min_per_label < 1:
        raise ConfigError(f"--min-per-label {min_per_label}: at least 1")
    if temperature <= 0:
        raise ConfigError(f"--temperature {temperature}: above 0 (paraphrases are sampled)")
    if concurrency < 1:
        raise ConfigError(f"--concurrency {concurrency}: at least 1")
    paraphraser = paraphraser or teacher
    spec = paraphraser.strip()
    parsed = parse_spec("endpoint:" + spec if spec.startswith(("http://", "https://")) else spec)
    if parsed.kind not in _FREE_TEXT_KINDS or parsed.decoding == "constrained":
        raise ConfigError(f"--paraphraser {paraphraser!r}: a {parsed.kind} spec answers with labels, not free text; "
                          "give an endpoint:URL#MODEL or zero-shot:MODEL (--paraphraser, default: the teacher)")

    sources, existing = _read_labelled(Path(data))
    counts = Counter(s.label for s in sources)
    labels = _label_set(Path(data), sources)
    target = min_per_label if min_per_label is not None else math.ceil(statistics.median(counts.values()))
    short = sorted((label for label in counts if counts[label] < target), key=lambda label: (counts[label], label))
    per_label = {label: {"rows": counts[label], "target": target, "new": 0, "short": max(0, target - counts[label])}
                 for label in sorted(counts)}

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    variations_path, dropped_path = out / "variations.jsonl", out / "variations.dropped.jsonl"
    kept: list[dict] = []
    dropped: list[dict] = []
    tally = Counter({"asked": 0, "kept": 0, **{name: 0 for name in DROPPED.values()}})
    settings = load_config()

    # No shots for the paraphraser: a free-text spec does not use them, and they would only split its cache.
    with Store.borrow(store) as db, open_teacher(paraphraser, pricing_file=settings.advise.pricing_file,
                                                 hourly_usd=settings.hardware.hourly_usd, config=settings.eval) as client:
        if budget_usd is not None and not client.priced:
            raise ConfigError(f"--budget-usd: no price is known for paraphraser {paraphraser!r} (add its model to the "
                              "pricing catalog with advise.pricing_file, or cap the run with --max-requests)")
        run = _Paraphrases(client, db, 1, temperature, budget_usd, max_requests)
        # Rewordings are about as long as their inputs, not a label's few tokens.
        client.max_tokens = max(client.max_tokens, 512)
        by_label = {label: [s for s in sources if s.label == label] for label in short}
        upper = sum(TRIES_PER_ROW * per_label[label]["short"] for label in short)
        probes: dict[tuple[int, int], Any] = {}
        if upper:
            _confirm(run, by_label[short[0]][0], upper, probes, yes)
        # The existing inputs are indexed once; each batch of paraphrases is queried against them, then added.
        index = DedupIndex(threshold=DEFAULT_THRESHOLD)
        indexed = [text for text, _ in existing]
        origins = [f"line {line} of {data}" for _, line in existing]
        for start in range(0, len(indexed), 20_000):
            index.add(indexed[start : start + 20_000])
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for label in short:
                if run.stopped:
                    break
                rows, need = by_label[label], per_label[label]["short"]
                tries, cursor = TRIES_PER_ROW * need, 0
                while need > 0 and tries > 0 and not run.stopped:
                    open_rows = [s for s in rows if s.kept < per_row]
                    if not open_rows:
                        break  # every row gave its per_row paraphrases: the label stays short
                    # One batch asks each open row at most once, so a batch never gives a row more than per_row.
                    take = min(need, tries, len(open_rows))
                    start = cursor % len(open_rows)
                    batch = (open_rows[start:] + open_rows[:start])[:take]
                    cursor = start + take
                    replies = _ask_batch(run, pool, batch, probes)
                    asked = len(replies)
                    tries -= asked
                    tally["asked"] += asked
                    first_line = len(kept) + 1
                    for source, text, reply, reason, detail in _sort_out(
                            list(zip(batch, replies)), index, indexed, origins,
                            lambda k, first_line=first_line: f"line {first_line + k} of {variations_path}"):
                        if reason is None:
                            messages = _replaced(source.example.messages, text)
                            kept.append({"messages": messages, "metadata": {"variation": {
                                "source_line": source.line, "paraphrased_from_label": label, "paraphraser": paraphraser}}})
                            source.kept += 1
                            need -= 1
                            per_label[label]["new"] += 1
                            per_label[label]["short"] -= 1
                            tally["kept"] += 1
                            index.add([_text(messages)])
                            indexed.append(_text(messages))
                            origins.append(f"line {len(kept)} of {variations_path}")
                        else:
                            tally[DROPPED[reason]] += 1
                            dropped.append({"label": label, "source_line": source.line, "ask": source.asked - 1,
                                            "reason": reason, "detail": detail,
                                            "text": reply.text if isinstance(reply, Call) else None,
                                            "error": str(reply) if isinstance(reply, TeacherFailed) else None})
        index.close()

    counts_out = dict(tally)
    assert counts_out["asked"] == counts_out["kept"] + sum(counts_out[k] for k in counts_out if k not in ("asked", "kept")), counts_out
    _write_lines(variations_path, kept)
    _write_lines(dropped_path, dropped)
    stopped = f"{run.stopped} while paraphrasing" if run.stopped else None
    block = {"data": str(data), "paraphraser": paraphraser, "target": target, "per_row": per_row,
             "temperature": temperature, "labels": per_label, "counts": counts_out, "requests": run.requests,
             "cached": run.cached, "cost_usd": round(run.spent, 6), "stopped": stopped,
             "rows": [{"line": i + 1, **row["metadata"]["variation"]} for i, row in enumerate(kept)]}
    varied = Varied(counts_out, per_label, target, run.requests, run.cached, run.spent, out, variations_path, dropped_path,
                    stopped, None, block)
    if not kept or stopped:
        return varied  # a cap reached: labelling waits for a rerun, which replays the paraphrases from the cache
    left_usd = None if budget_usd is None else budget_usd - run.spent
    left_requests = None if max_requests is None else max_requests - run.requests
    if (left_usd is not None and left_usd <= 0) or (left_requests is not None and left_requests <= 0):
        varied.stopped = block["stopped"] = ("budget_usd" if left_usd is not None and left_usd <= 0 else "max_requests") + \
            " used up by paraphrasing: the new rows are not labelled yet"
        return varied
    varied.labeled = label_rows(variations_path, teacher=teacher, out_dir=out, samples=samples, min_agreement=min_agreement,
                                labels=labels, budget_usd=left_usd, max_requests=left_requests, concurrency=concurrency,
                                teacher_data=teacher_data, store=store, yes=yes, on_row=on_row)
    varied.stopped = varied.labeled.stopped
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    summary["variations"] = block
    _replace(summary_path, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    varied.labeled.summary = summary
    return varied


def _read_labelled(path: Path) -> tuple[list[_Source], list[tuple[str, int]]]:
    """The labelled rows (the sources) and (text, line) of every input; a bad line is a one-line error naming it."""
    sources, existing = [], []
    for example, line, problem in read_inputs(path):
        if example is None:
            raise DataError(f"{path}:{line}: {problem}")
        if example.reference is None or not example.reference.strip():
            raise DataError(f"{path}:{line}: no label (a final assistant turn); variations need labelled rows, "
                            "such as a distill accepted.jsonl")
        if not any(m["role"] == "user" for m in example.messages):
            raise DataError(f"{path}:{line}: no user turn to paraphrase")
        sources.append(_Source(example, line, example.reference.strip()))
        existing.append((example.text, line))
    return sources, existing


def _label_set(path: Path, sources: list[_Source]) -> list[str]:
    from tunewise.data.task import detect_task

    shape = detect_task([s.label for s in sources])
    if shape.type != "classification":
        raise DataError(f"{path}: its labels are not a classification ({shape.reason}); variations balance the labels of "
                        "a classification set")
    return list(shape.labels)


def _prompt(source: _Source) -> list[dict]:
    last = next(m for m in reversed(source.example.messages) if m["role"] == "user")
    return [{"role": "system", "content": PARAPHRASE_SYSTEM}, {"role": "user", "content": last["content"]}]


def _replaced(messages: list[dict], text: str) -> list[dict]:
    """The row's turns with its last user turn reworded (its system prompt and earlier turns kept as they are)."""
    at = max(i for i, m in enumerate(messages) if m["role"] == "user")
    return [{**m, "content": text} if i == at else dict(m) for i, m in enumerate(messages)]


def _text(messages: list[dict]) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] == "user")  # as tasks._to_example reads it


def _clean(reply: str) -> str:
    text = reply.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":  # models often quote the rewritten message
        text = text[1:-1].strip()
    return text


def _cache(run: _Run, messages: list[dict], ask: int, probes: dict, key: tuple[int, int]) -> dict[int, Any]:
    if key in probes:
        return {ask: probes[key]}
    hit = run.store.get_teacher_calls(run.client.key, prompt_hash(messages, run.temperature)).get(ask)
    return {ask: hit} if hit is not None else {}


def _confirm(run: _Run, first: _Source, upper: int, probes: dict, yes: bool) -> None:
    """Say how many paraphrasing requests at most, at what price (from the cache or one measured request)."""
    from tunewise.console import err_console
    from tunewise.train.providers.jobs import _confirm as confirm

    client, messages = run.client, _prompt(first)
    hit = _cache(run, messages, 0, probes, (first.line, 0)).get(0)
    price = hit.cost_usd if hit is not None else None
    if price is None and client.priced and hit is None and run._fits(1) is None:
        try:
            probe = run.call(messages, 0, {})
        except TeacherFailed:
            probe = None  # the batch asks it again and records the error
        else:
            probes[(first.line, 0)] = _Cached(probe)
            price = probe.cost_usd
        finally:
            run._release(1)
    usd = None if price is None else price * upper
    err_console.print(f"Paraphraser {client.key}: up to {upper:,} requests ({TRIES_PER_ROW} per missing row at most, "
                      "cached ones free), " + (f"about ${usd:,.4f} at most" if usd is not None else "cost unknown"),
                      highlight=False, soft_wrap=True)
    if usd is not None and usd > 0 and not client.local:
        confirm(yes, f"Send up to {upper:,} paid paraphrasing requests (about ${usd:,.2f} at most)?")


def _ask_batch(run: _Run, pool: ThreadPoolExecutor, batch: list[_Source], probes: dict) -> list[Call | TeacherFailed]:
    """One reply (or its failure) per source row, in batch order; stops adding rows at the budget or the request cap."""
    jobs = []
    for source in batch:
        messages, ask = _prompt(source), source.asked
        cache = _cache(run, messages, ask, probes, (source.line, ask))
        needed = 0 if cache else 1
        why = run._fits(needed) if needed else None
        if why:
            run.stopped = why
            break
        source.asked += 1
        jobs.append((needed, pool.submit(_ask_one, run, messages, ask, cache)))
    out = []
    for needed, job in jobs:
        out.append(job.result())
        run._release(needed)
    return out


def _ask_one(run: _Run, messages: list[dict], ask: int, cache: dict) -> Call | TeacherFailed:
    try:
        return run.call(messages, ask, cache)
    except TeacherFailed as exc:
        return exc  # a failed paraphrase is dropped with its error; the others go on


def _sort_out(new: list[tuple[_Source, Call | TeacherFailed]], index, indexed: list[str], origins: list[str],
              kept_name: Callable[[int], str]):
    """(source, text, reply, reason, detail) per new paraphrase in batch order; reason None for one to keep.

    Checked against the indexed inputs (the data and the paraphrases kept so far) and against the paraphrases of the
    batch kept before it (`kept_name(k)` names the k-th of those).
    """
    from tunewise.data.dedup import DedupIndex

    texts = {i: _clean(reply.text) for i, (_, reply) in enumerate(new) if isinstance(reply, Call)}
    order = [i for i in texts if texts[i]]  # only what is not empty is sketched
    # Compared as the data's inputs are: every user turn of the row, the last one reworded.
    batch = [_text(_replaced(new[i][0].example.messages, texts[i])) for i in order]
    pos_of = {i: pos for pos, i in enumerate(order)}
    against = {}  # batch position -> best hit among the indexed inputs
    for hit in index.contamination(indexed, batch) if batch else []:
        best = against.get(hit.eval_index)
        if best is None or (hit.kind == "exact", hit.score) > (best.kind == "exact", best.score):
            against[hit.eval_index] = hit
    among: dict[int, list] = {}
    if len(batch) > 1:
        inner = DedupIndex(threshold=index.threshold, parallel=False)
        inner.add(batch)
        for hit in inner.contamination(batch, batch):
            if hit.train_index < hit.eval_index:
                among.setdefault(hit.eval_index, []).append(hit)
    kept_at: dict[int, int] = {}  # batch position -> how many were kept before it in this batch
    out = []
    for i, (source, reply) in enumerate(new):
        if isinstance(reply, TeacherFailed):
            out.append((source, None, reply, "failed", f"the call failed: {reply}"))
            continue
        if not texts[i]:
            out.append((source, None, reply, "empty", "the paraphraser replied with nothing"))
            continue
        pos = pos_of[i]
        hit, where = against.get(pos), None
        earlier = [h for h in among.get(pos, []) if h.train_index in kept_at]
        if hit is not None:
            where = origins[hit.train_index]
        elif earlier:
            hit = max(earlier, key=lambda h: (h.kind == "exact", h.score))
            where = kept_name(kept_at[hit.train_index])
        if hit is not None:
            kind = "exact_duplicate" if hit.kind == "exact" else "near_duplicate"
            what = "exact duplicate" if hit.kind == "exact" else f"near-duplicate (Jaccard {hit.score:.2f})"
            out.append((source, texts[i], reply, kind, f"{what} of {where}"))
            continue
        kept_at[pos] = len(kept_at)
        out.append((source, texts[i], reply, None, None))
    return out

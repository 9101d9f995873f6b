"""The streaming passes of the audit: one read of a file for format, tokens, PII and dedup keys.

`scan(path, ...)` reads a training or eval file once, in chunks: parsing, input texts and MinHash
sketches here, token counting and the PII scan beside it (a thread, or a helper process for big
files, so that the second core works while this one parses). `tunewise.data.audit.audit` runs it
and assembles the result; nothing here decides what is a problem.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunewise.data import dedup as dedup_mod
from tunewise.data.formats import Problem, Record, example_label, example_text, iter_records
from tunewise.data.helper_process import HelperFailed, HelperProcess

CHUNK = 10_000
DETAILS_MAX = 1_000  # rows listed per check in the details (every count in the summary is complete)

@dataclass
class Scan:
    path: Path
    format: str = ""
    texts: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)
    annotators: list[list[str | None] | None] = field(default_factory=list)
    lengths: list[np.ndarray] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problem_reasons: Counter = field(default_factory=Counter)
    rejected: int = 0
    pii_rows: list[dict[str, Any]] = field(default_factory=list)
    pii_row_count: int = 0
    pii_by_type: Counter = field(default_factory=Counter)
    pii_lines: set[int] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    index: dedup_mod.DedupIndex | None = None

    @property
    def token_lengths(self) -> np.ndarray:
        return np.concatenate(self.lengths) if self.lengths else np.zeros(0, dtype=np.int64)


def scan_file(path: Path, role: str, counter, read: dict, bars: "Bars", *, total: int | None, index) -> Scan:
    scan = Scan(path=path, index=index)
    spent = Counter()
    stream = iter_records(path, **read)
    scan.format = stream.format

    def collect(future, lines: list[int], examples: list[dict]) -> None:
        try:
            lengths, token_s, found, pii_s = future.result()
        except HelperFailed:  # the helper process died: this chunk is counted here instead
            lengths, token_s, found, pii_s = _work(counter, examples)
        scan.lengths.append(lengths)
        spent["tokens"] += token_s
        spent["pii"] += pii_s
        for offset, matches in found:
            line = lines[offset]
            scan.pii_row_count += 1
            scan.pii_lines.add(line)
            types = Counter(kind for kind, _ in matches)
            scan.pii_by_type.update(types)
            if len(scan.pii_rows) < DETAILS_MAX:
                scan.pii_rows.append({"file": role, "line": line, "types": dict(types),
                                      "matches": [{"type": kind, "text": text} for kind, text in matches]})

    def flush(records: list[Record]) -> None:
        if not records:
            return
        examples = [r.example for r in records]
        t0 = time.perf_counter()
        texts = [example_text(e) for e in examples]
        scan.texts += texts
        scan.lines += [r.line for r in records]
        scan.labels += [example_label(e) for e in examples]
        scan.annotators += [_annotators_of(e) for e in examples]
        t1 = time.perf_counter()
        pending.append((tokens_pool.submit(examples), [r.line for r in records], examples))
        while len(pending) > 2:  # at most two chunks wait for the worker: memory stays flat
            collect(*pending.pop(0))
        t2 = time.perf_counter()
        spent["texts"] += t1 - t0
        spent["waiting_for_tokens"] += t2 - t1
        if index is not None:
            keys_before = time.perf_counter()
            index.add(texts)
            spent["dedup_index"] += time.perf_counter() - keys_before

    pending: list = []
    tokens_pool = _TokenPool(counter, total or 0)
    if index is not None and tokens_pool.process:
        index.parallel = False  # the second core already counts tokens: a sketch helper would only contend

    started = time.perf_counter()
    chunk: list[Record] = []
    read_time = 0.0
    try:
        with bars.task(f"{role}: {path.name} (format, tokens, PII" + (", MinHash)" if index is not None else ")"), total) as advance:
            t_read = time.perf_counter()
            for n, item in enumerate(stream, 1):
                if type(item) is Record:
                    chunk.append(item)
                    if len(chunk) >= CHUNK:
                        read_time += time.perf_counter() - t_read
                        flush(chunk)
                        chunk = []
                        t_read = time.perf_counter()
                else:
                    scan.rejected += 1
                    scan.problem_reasons[item.reason.split(":", 1)[0]] += 1
                    if len(scan.problems) < DETAILS_MAX:
                        scan.problems.append(item)
                if n % CHUNK == 0:
                    advance(n)
            read_time += time.perf_counter() - t_read
            flush(chunk)
            for future, lines, examples in pending:
                collect(future, lines, examples)
            advance(len(scan.texts) + scan.rejected)
    finally:
        tokens_pool.close()
    scan.notes = list(stream.notes)
    rows = len(scan.texts) + scan.rejected
    total_s = time.perf_counter() - started
    scan.timings = {
        "read_and_format": timing(read_time + spent["texts"], rows),
        "tokens": timing(spent["tokens"], len(scan.texts)),  # in its own thread, overlapping the rest
        "waiting_for_tokens": timing(spent["waiting_for_tokens"], len(scan.texts)),
        "pii": timing(spent["pii"], len(scan.texts)),  # in the same worker, after the tokens
    }
    if index is not None:
        # DedupIndex.add does both; split by a second clock would cost more than it tells.
        scan.timings["exact_keys"] = timing(0.0, len(scan.texts))
        scan.timings["minhash_lsh"] = timing(spent["dedup_index"], len(scan.texts))
    scan.timings["pass"] = timing(total_s, rows)
    return scan


PROCESS_FROM_ROWS = 200_000  # below this, a second process costs more to start (imports, tokenizer) than it saves
_WORKER_COUNTER = None


class _TokenPool:
    """Token counting and the PII scan of chunks, beside the rest of the pass: in a helper process for big
    files (its own GIL, so the second core works while this one parses, hashes and sketches), else in a
    thread. `submit(examples)` returns a future of `_work`'s answer."""

    def __init__(self, counter, rows: int):
        from concurrent.futures import ThreadPoolExecutor

        self.counter = counter
        self.helper = None
        if rows >= PROCESS_FROM_ROWS and dedup_mod._usable_cpus() > 1:
            try:
                self.helper = HelperProcess("tunewise.data.audit_scan:_chunk_work", init="tunewise.data.audit_scan:_init_worker",
                                            init_args=(counter.model,))
            except HelperFailed:
                pass
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tunewise-tokens")

    @property
    def process(self) -> bool:
        return self.helper is not None

    def submit(self, examples: list[dict]):
        if self.helper is not None:
            try:
                return self.helper.submit(examples)
            except HelperFailed:
                self.helper = None
        return self.thread.submit(_work, self.counter, examples)

    def close(self) -> None:
        if self.helper is not None:
            self.helper.close(cancel_futures=True)  # every answer was collected, unless the pass failed
        self.thread.shutdown(wait=True, cancel_futures=True)


def _init_worker(model: str) -> None:
    global _WORKER_COUNTER
    from tunewise.data.tokens import get_counter

    _WORKER_COUNTER = get_counter(model)


def _work(counter, examples: list[dict]) -> tuple[np.ndarray, float, list, float]:
    """Token counts of a chunk and its PII: (lengths, seconds, [(offset, [(type, text)])], seconds)."""
    started = time.perf_counter()
    lengths = counter.count(examples)
    counted = time.perf_counter()
    found = []
    for offset, example in enumerate(examples):
        matches = _pii_of(example)
        if matches:
            found.append((offset, [(m.type, m.text) for m in matches]))
    return lengths, counted - started, found, time.perf_counter() - counted


def _chunk_work(examples: list[dict]):
    return _work(_WORKER_COUNTER, examples)


_SYSTEM_PII: dict[str, list] = {}


def _pii_of(example: dict) -> list:
    """PII in every message of an example (system prompts, usually shared by every row, are scanned once)."""
    from tunewise.data.pii import find_pii

    found = []
    for message in example.get("messages") or ():
        if type(message) is not dict:
            continue
        for text in _message_texts(message):
            if message.get("role") == "system":
                got = _SYSTEM_PII.get(text)
                if got is None:
                    got = find_pii(text)
                    if len(_SYSTEM_PII) < 1_000:
                        _SYSTEM_PII[text] = got
                found += got
            else:
                found += find_pii(text)
    return found


def _message_texts(message: dict):
    content = message.get("content")
    if type(content) is str:
        if content:
            yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]
    for call in message.get("tool_calls") or ():
        if isinstance(call, dict) and isinstance(call.get("function"), dict):
            arguments = call["function"].get("arguments")
            if isinstance(arguments, str):
                yield arguments
    function_call = message.get("function_call")
    if isinstance(function_call, dict) and isinstance(function_call.get("arguments"), str):
        yield function_call["arguments"]


def _annotators_of(example: dict) -> list[str | None] | None:
    metadata = example.get("metadata")
    if type(metadata) is dict:
        found = metadata.get("annotators")
        if isinstance(found, dict):
            return [None if v in (None, "") else str(v) for v in found.values()]
        if isinstance(found, list):
            return [None if v in (None, "") else str(v) for v in found]
    return None


def read_annotations(path: Path, config) -> list[list[str | None]]:
    rows = []
    for item in iter_records(path, max_line_bytes=config.max_line_bytes):
        if type(item) is Record:
            got = _annotators_of(item.example)
            if got:
                rows.append(got)
    return rows


def count_lines(path: Path) -> int | None:
    """Physical lines of a file (the progress bar's total; CSV cells spanning lines make it an upper bound)."""
    try:
        count = 0
        last = b"\n"
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                count += block.count(b"\n")
                last = block[-1:]
        return count + (last != b"\n")
    except OSError:
        return None


def timing(seconds: float, rows: int) -> dict[str, float]:
    return {"seconds": round(seconds, 3), "rows": rows, "rows_per_s": round(rows / seconds) if seconds > 0 else None}


def first_problem(scan: Scan) -> str:
    return f"line {scan.problems[0].line}: {scan.problems[0].reason}" if scan.problems else "none"



# -- progress ------------------------------------------------------------------------------------------


class Bars:
    """One progress line per pass on stderr (rows, rows/s, elapsed; plain lines outside a terminal); silent when `enabled` is False."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def task(self, description: str, total: int | None):
        from tunewise.progress import ProgressLine

        bars = self

        class _Task:
            def __enter__(self):
                self.started = time.perf_counter()
                self.line = ProgressLine(description, total, unit="rows" if total and total > 1 else "", enabled=bars.enabled)

                def advance(done: int) -> None:
                    elapsed = time.perf_counter() - self.started
                    rate = f"{done / elapsed:,.0f} rows/s" if elapsed > 0 and total and total > 1 else ""
                    self.line.update(done, stats=rate)
                return advance

            def __exit__(self, *exc_info):
                done = self.line.completed or 1
                self.line.update(done, total=done)
                self.line.close()

        return _Task()

    def stop(self) -> None:
        pass



__all__ = ["Bars", "Scan", "count_lines", "first_problem", "read_annotations", "scan_file", "timing"]

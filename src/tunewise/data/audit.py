"""`tunewise data audit`: every check the fine-tuning guide asks for before paying for a training job, in streaming passes.

    from tunewise.data.audit import audit
    result = audit("train.jsonl", eval_path="eval.jsonl", annotations_path="annotations.csv")
    result.summary["readiness"]["verdict"], result.blocking, result.to_dict()

Passes (each with its own progress bar and timing, in `result.timings`; token counting and the PII
scan run in a second process for big files, beside parsing and sketching):
1. read the training file once: format rules (tunewise.data.formats / validate), token counts with the
   target model's tokenizer (tunewise.data.tokens), PII in every message (tunewise.data.pii), exact keys
   and MinHash LSH band keys of the input text (tunewise.data.dedup);
2. near duplicates: candidate pairs verified with the exact Jaccard of word 3-shingles, then clusters;
3. the eval set (when given): its format, tokens and PII, and contamination against the training rows;
4. labels (when `tunewise.data.task.detect_task` reads train and eval replies as a closed label set):
   distribution, conflicts, confident-learning mislabels;
   inter-annotator agreement from annotator columns or from `annotations_path`;
5. readiness against the fine-tuning guide's thresholds (tunewise.data.config), and training cost per catalog row.

Only the input texts, labels and one token count per row stay in memory between passes (a million
rows of chat tickets: about 1 GiB). Blocking problems (exit 1 in the CLI): rows that break a format
rule, in either file, and eval rows that duplicate training rows.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tunewise.data import dedup as dedup_mod
from tunewise.data.config import AGREEMENT_BAR, COIN_FLIP_BELOW, EVAL_MAX, EVAL_MIN, FULL_SFT_FROM
from tunewise.data.formats import Problem, Record, example_label, example_text, iter_records
from tunewise.data.helper_process import HelperFailed, HelperProcess
from tunewise.errors import DataError

CHUNK = 10_000
DETAILS_MAX = 1_000  # rows listed per check in the details (every count in the summary is complete)
TEXT_PREVIEW = 200
DEFAULT_EPOCHS = 3  # OpenAI's default for a dataset of a few thousand rows; costs are per run of this many epochs


@dataclass
class AuditResult:
    """What `audit` found: `summary` (docs/CONTRACTS.md, stored as Audit.summary), `blocking`, and per-check details."""

    path: Path
    eval_path: Path | None
    model: str
    summary: dict[str, Any]
    blocking: list[str]
    format_problems: list[dict[str, Any]] = field(default_factory=list)  # {file, line, reason}
    over_limit: list[dict[str, Any]] = field(default_factory=list)  # {line, tokens}
    pii: list[dict[str, Any]] = field(default_factory=list)  # {file, line, types, matches: [{type, text}]}
    duplicate_clusters: list[dict[str, Any]] = field(default_factory=list)  # {kind, lines, texts}
    contamination: list[dict[str, Any]] = field(default_factory=list)  # {train_line, eval_line, score, kind, ...}
    mislabels: list[dict[str, Any]] = field(default_factory=list)  # {line, given, suggested, confidence, text}
    conflicts: list[dict[str, Any]] = field(default_factory=list)  # {lines, labels}
    agreement: dict[str, Any] | None = None
    token_lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)  # pass -> {seconds, rows, rows_per_s}
    dataset_id: str | None = None
    eval_dataset_id: str | None = None
    audit_id: str | None = None
    _found: dict[str, set[int]] = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        return not self.blocking

    def found_lines(self) -> dict[str, set[int]]:
        """Training-file lines flagged by each check (for comparing with what a generator planted)."""
        return self._found

    def to_dict(self) -> dict[str, Any]:
        """The whole result as JSON-ready data (what `--json` prints)."""
        return {
            "path": str(self.path), "eval_path": str(self.eval_path) if self.eval_path else None, "model": self.model,
            "passed": self.passed, "blocking": self.blocking, "summary": self.summary,
            "dataset_id": self.dataset_id, "eval_dataset_id": self.eval_dataset_id, "audit_id": self.audit_id,
            "details": {
                "format_problems": self.format_problems, "over_limit": self.over_limit, "pii": self.pii,
                "duplicate_clusters": self.duplicate_clusters, "contamination": self.contamination,
                "mislabels": self.mislabels, "conflicts": self.conflicts, "agreement": self.agreement,
            },
            "timings": self.timings,
        }


# -- the audit ----------------------------------------------------------------------------------------


def audit(
    path: str | Path,
    *,
    eval_path: str | Path | None = None,
    model: str = "smollm2-135m",
    annotations_path: str | Path | None = None,
    config=None,
    store=None,
    progress: bool = True,
    epochs: int = DEFAULT_EPOCHS,
    format: str = "auto",
    mislabels: bool = True,
    register: bool = True,
) -> AuditResult:
    """Run every data check on `path` (and `eval_path`), store the result, and return it.

    `config` is a `tunewise.data.config.DataConfig` (near-duplicate threshold, line limit); `store` a
    `tunewise.store.Store` (default: the workspace's). `register=False` skips the store.

    Example: `audit("train.jsonl", eval_path="eval.jsonl").summary["readiness"]["verdict"]`
    """
    from tunewise.data.config import DataConfig
    from tunewise.data.tokens import get_counter

    path = Path(path)
    eval_path = Path(eval_path) if eval_path is not None else None
    config = config or DataConfig()
    threshold = config.near_duplicate_threshold
    read = {"format": format, "max_line_bytes": config.max_line_bytes}
    bars = _Bars(progress)
    try:
        counter = get_counter(model)

        # Pass 1: the training file.
        train = _scan(path, "train", counter, read, bars, total=_count_lines(path), index=dedup_mod.DedupIndex(threshold=threshold))
        timings = dict(train.timings)
        if not train.texts:
            raise DataError(f"{path}: no readable rows ({train.rejected:,} rejected; first: {_first_problem(train)})")

        # Pass 2: near duplicates.
        started = time.perf_counter()
        with bars.task("near duplicates: verifying candidate pairs", 1) as advance:
            report = train.index.report(train.texts)
            advance(1)
        timings["near_duplicates_verify"] = _timing(time.perf_counter() - started, len(train.texts))
        timings["near_duplicates"] = _timing(timings["near_duplicates_verify"]["seconds"] + timings["minhash_lsh"]["seconds"]
                                             + timings["exact_keys"]["seconds"], len(train.texts))

        # Pass 3: the eval set and contamination.
        evaluation = None
        hits: list[dedup_mod.ContaminationHit] = []
        if eval_path is not None:
            evaluation = _scan(eval_path, "eval", counter, read, bars, total=_count_lines(eval_path), index=None)
            for name, value in evaluation.timings.items():
                timings[f"eval_{name}"] = value
            started = time.perf_counter()
            with bars.task("contamination: eval rows against training rows", 1) as advance:
                hits = train.index.contamination(train.texts, evaluation.texts)
                advance(1)
            timings["contamination"] = _timing(time.perf_counter() - started, len(evaluation.texts))

        # Pass 4: labels and annotator agreement.
        from tunewise.data.labels import annotator_agreement, label_report
        from tunewise.data.task import detect_task

        # One decision for the pair: a small eval set's labels repeat only together with train's.
        task = detect_task(train.labels + (evaluation.labels if evaluation else []))

        started = time.perf_counter()
        with bars.task("labels: distribution, conflicts, confident learning", 1) as advance:
            annotators = train.annotators if any(train.annotators) else None
            labels = label_report(train.texts, train.labels, annotators=annotators, clusters=report.clusters, mislabels=mislabels,
                                  task=task)
            advance(1)
        timings["labels"] = _timing(time.perf_counter() - started, len(train.texts))
        agreement = labels.agreement
        agreement_source = str(path) if agreement is not None else None
        if annotations_path is not None:
            annotation_rows = _annotations(Path(annotations_path), config)
            agreement = annotator_agreement(annotation_rows)
            if agreement is None:
                raise DataError(f"{annotations_path}: no rows with two or more annotators' labels (columns annotator_*, rater_*, label_*)")
            agreement_source = str(annotations_path)
    finally:
        bars.stop()

    result = _assemble(path, eval_path, counter, train, evaluation, report, hits, labels, agreement, agreement_source,
                       epochs=epochs, threshold=threshold)
    result.timings = timings
    if register:
        _store(result, train, evaluation, store)
    return result


# -- pass 1 and 3: one streaming read ------------------------------------------------------------------


@dataclass
class _Scan:
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


def _scan(path: Path, role: str, counter, read: dict, bars: "_Bars", *, total: int | None, index) -> _Scan:
    scan = _Scan(path=path, index=index)
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
        "read_and_format": _timing(read_time + spent["texts"], rows),
        "tokens": _timing(spent["tokens"], len(scan.texts)),  # in its own thread, overlapping the rest
        "waiting_for_tokens": _timing(spent["waiting_for_tokens"], len(scan.texts)),
        "pii": _timing(spent["pii"], len(scan.texts)),  # in the same worker, after the tokens
    }
    if index is not None:
        # DedupIndex.add does both; split by a second clock would cost more than it tells.
        scan.timings["exact_keys"] = _timing(0.0, len(scan.texts))
        scan.timings["minhash_lsh"] = _timing(spent["dedup_index"], len(scan.texts))
    scan.timings["pass"] = _timing(total_s, rows)
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
                self.helper = HelperProcess("tunewise.data.audit:_chunk_work", init="tunewise.data.audit:_init_worker",
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


def _annotations(path: Path, config) -> list[list[str | None]]:
    rows = []
    for item in iter_records(path, max_line_bytes=config.max_line_bytes):
        if type(item) is Record:
            got = _annotators_of(item.example)
            if got:
                rows.append(got)
    return rows


def _count_lines(path: Path) -> int | None:
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


def _timing(seconds: float, rows: int) -> dict[str, float]:
    return {"seconds": round(seconds, 3), "rows": rows, "rows_per_s": round(rows / seconds) if seconds > 0 else None}


def _first_problem(scan: _Scan) -> str:
    return f"line {scan.problems[0].line}: {scan.problems[0].reason}" if scan.problems else "none"


# -- putting the result together -----------------------------------------------------------------------


def _assemble(path, eval_path, counter, train: _Scan, evaluation: _Scan | None, report, hits, labels, agreement,
              agreement_source, *, epochs: int, threshold: float) -> AuditResult:
    from tunewise.data.tokens import token_stats

    lines = np.asarray(train.lines, dtype=np.int64)
    lengths = train.token_lengths
    stats = token_stats(lengths, counter.context_limit)
    limit = counter.context_limit
    billable = int(np.minimum(lengths, limit).sum()) if limit else int(lengths.sum())
    over = np.flatnonzero(lengths > limit) if limit else np.zeros(0, dtype=np.int64)

    # Duplicates: clusters with sample texts, and which rows are exact copies of another row.
    keys = train.index.exact_keys()
    _, inverse, key_counts = np.unique(keys, return_inverse=True, return_counts=True)
    exact_rows = np.flatnonzero(key_counts[inverse] > 1)
    clusters = []
    near_lines: set[int] = set()
    for cluster, kind in zip(report.clusters, report.kinds):
        if kind == "near":
            near_lines.update(lines[cluster].tolist())
        if len(clusters) < DETAILS_MAX:
            clusters.append({"kind": kind, "lines": lines[cluster].tolist(),
                             "texts": [_preview(train.texts[i]) for i in cluster[:3]]})
    clusters.sort(key=lambda c: -len(c["lines"]))

    # Contamination.
    eval_lines = np.asarray(evaluation.lines, dtype=np.int64) if evaluation else np.zeros(0, dtype=np.int64)
    contamination = [
        {"train_line": int(lines[h.train_index]), "eval_line": int(eval_lines[h.eval_index]), "score": float(h.score),
         "kind": h.kind, "train_text": _preview(train.texts[h.train_index]), "eval_text": _preview(evaluation.texts[h.eval_index])}
        for h in hits[:DETAILS_MAX]
    ]

    # Labels.
    mislabels = [
        {"line": int(lines[s["row"]]), "given": s["given"], "suggested": s["suggested"], "confidence": s["confidence"],
         "text": _preview(train.texts[s["row"]])}
        for s in labels.suspected
    ]
    conflicts = [{"lines": lines[c["rows"]].tolist(), "labels": c["labels"]} for c in labels.conflicts[:DETAILS_MAX]]
    label_summary = labels.summary()
    if agreement is not None:
        label_summary.update(agreement=agreement.mean_pairwise, kappa=agreement.kappa)
        label_summary["kappa_kind"] = agreement.kappa_kind
        label_summary["annotators"] = agreement.annotators
        label_summary["agreement_rows"] = agreement.rows
        label_summary["agreement_source"] = agreement_source
        label_summary["agreement_meets_bar"] = agreement.meets_bar

    format_problems = [{"file": "train", "line": p.line, "reason": p.reason} for p in train.problems]
    if evaluation is not None:
        format_problems += [{"file": "eval", "line": p.line, "reason": p.reason} for p in evaluation.problems]

    blocking = []
    if train.rejected:
        blocking.append(f"{path}: {train.rejected:,} rows break a format rule ({_reasons(train.problem_reasons)}); "
                        f"first: line {train.problems[0].line}: {train.problems[0].reason[:160]}")
    if evaluation is not None and evaluation.rejected:
        blocking.append(f"{eval_path}: {evaluation.rejected:,} eval rows break a format rule ({_reasons(evaluation.problem_reasons)}); "
                        f"first: line {evaluation.problems[0].line}: {evaluation.problems[0].reason[:160]}")
    eval_affected = len({h.eval_index for h in hits})
    if hits:
        first = contamination[0]
        blocking.append(f"{eval_path}: {eval_affected:,} eval rows duplicate training rows (contamination; first: eval line "
                        f"{first['eval_line']} ~ train line {first['train_line']}, Jaccard {first['score']:.2f})")

    removable = report.removable
    readiness = readiness_verdict(unique_examples(len(train.texts), report.clusters, {h.train_index for h in hits}),
                                  len(evaluation.texts) if evaluation else None,
                                  agreement=agreement.mean_pairwise if agreement else None, rows=len(train.texts))
    costs = _costs(billable * epochs, counter)
    pii_types = Counter(train.pii_by_type)
    summary: dict[str, Any] = {
        "rows": len(train.texts),
        "rows_rejected": train.rejected,
        "format_problems": train.rejected + (evaluation.rejected if evaluation else 0),
        "format_problems_by_reason": dict(train.problem_reasons),
        "format": train.format,
        "eval_rows": len(evaluation.texts) if evaluation else None,
        "eval_rows_rejected": evaluation.rejected if evaluation else None,
        "tokens": {
            "total": stats["total"], "billable_per_epoch": billable, "min": stats["min"], "median": stats["median"],
            "p95": stats["p95"], "max": stats["max"], "over_limit": stats["over_limit"], "context_limit": limit,
            "tokenizer": counter.tokenizer_name, "estimate": counter.estimate, "epochs": epochs,
            "billable_all_epochs": billable * epochs,
            "eval_total": int(evaluation.token_lengths.sum()) if evaluation else None,
        },
        "pii": {"rows": train.pii_row_count, "matches": int(sum(pii_types.values())), "by_type": dict(pii_types.most_common()),
                "eval_rows": evaluation.pii_row_count if evaluation else None,
                "eval_by_type": dict(evaluation.pii_by_type.most_common()) if evaluation else None},
        "duplicates": {"exact_clusters": report.exact_clusters, "near_clusters": report.near_clusters,
                       "rows_in_clusters": report.rows_in_clusters, "removable": removable,
                       "exact_duplicate_rows": int(len(exact_rows)), "threshold": threshold,
                       "method": f"MinHash LSH over word 3-shingles, verified by exact Jaccard >= {threshold:g}"},
        "contamination": {"hits": len(hits), "eval_rows_affected": eval_affected,
                          "train_rows_affected": len({h.train_index for h in hits}),
                          "exact": sum(h.kind == "exact" for h in hits), "near": sum(h.kind == "near" for h in hits)},
        "labels": label_summary,
        "readiness": readiness,
        "cost_estimates": costs,
        "notes": train.notes + (evaluation.notes if evaluation else []),
    }
    result = AuditResult(
        path=path, eval_path=eval_path, model=counter.model, summary=summary, blocking=blocking,
        format_problems=format_problems,
        over_limit=[{"line": int(lines[i]), "tokens": int(lengths[i])} for i in over[:DETAILS_MAX]],
        pii=train.pii_rows + (evaluation.pii_rows if evaluation else []),
        duplicate_clusters=clusters, contamination=contamination, mislabels=mislabels[:DETAILS_MAX], conflicts=conflicts,
        agreement=_agreement_dict(agreement, agreement_source), token_lengths=lengths,
    )
    result._found = {
        "PII rows": set(train.pii_lines),
        "near-duplicate rows": near_lines,
        "exact-duplicate rows": set(lines[exact_rows].tolist()),
        "wrong labels": {m["line"] for m in mislabels},
        "contaminated rows": {int(lines[h.train_index]) for h in hits},
        "format problems": {p.line for p in train.problems},
    }
    return result


def unique_examples(rows: int, clusters, contaminated: set[int]) -> int:
    """The rows `tunewise data clean --dedup --drop-contaminated` keeps: contaminated rows go, then one row per cluster.

    Example: `unique_examples(10, [[0, 1, 2]], {5})` -> 7
    """
    kept_in_clusters = sum(max(0, sum(i not in contaminated for i in cluster) - 1) for cluster in clusters)
    return rows - len(contaminated) - kept_in_clusters


def readiness_verdict(examples: int, eval_rows: int | None, *, agreement: float | None = None,
                      rows: int | None = None) -> dict[str, Any]:
    """The unique example count (after dedup and decontamination) and eval-set size against the fine-tuning guide's thresholds.

    `rows` is the file's row count, said beside the unique count when they differ.

    Example: `readiness_verdict(7_200, 800)["level"]` -> "lora"
    """
    count = f"{examples:,} unique examples" + (f" ({rows:,} rows in the file)" if rows is not None and rows != examples else "")
    band = f"{EVAL_MIN:,}-{EVAL_MAX:,}"
    if examples < COIN_FLIP_BELOW:
        level = "coin-flip"
        line = (f"{count}: below {COIN_FLIP_BELOW:,}, a fine-tune is a coin flip ('Sub-5k SFT is a coin "
                f"flip at best'); keep prompting, or collect or distill more data")
    elif examples < FULL_SFT_FROM:
        level = "lora"
        line = f"{count}: {COIN_FLIP_BELOW:,}-{FULL_SFT_FROM:,} is LoRA territory ('might work'); full SFT often hurts here"
    else:
        level = "full-sft"
        line = f"{count}: {FULL_SFT_FROM:,}+ is where full SFT reliably pays off"
    if eval_rows is None:
        line += f"; no eval set given (hold out {band} rows: `tunewise data split`)"
    elif eval_rows < EVAL_MIN:
        line += f"; eval set of {eval_rows:,} rows is below the {band} the fine-tuning guide asks for"
    elif eval_rows > EVAL_MAX:
        line += f"; eval set of {eval_rows:,} rows is above {EVAL_MAX:,} (more than needed; those rows could train)"
    else:
        line += f"; eval set of {eval_rows:,} rows is within {band}"
    if agreement is not None:
        line += (f"; annotator agreement {agreement:.0%} meets the {AGREEMENT_BAR:.0%} bar" if agreement >= AGREEMENT_BAR
                 else f"; annotator agreement {agreement:.0%} is below the {AGREEMENT_BAR:.0%} bar: fix the labels first")
    return {"level": level, "verdict": line, "examples": examples, "rows": rows, "eval_rows": eval_rows,
            "eval_ok": eval_rows is not None and EVAL_MIN <= eval_rows <= EVAL_MAX}


def _costs(billable_all_epochs: int, counter) -> list[dict[str, Any]]:
    """Training cost per catalog row; marked `estimate` unless the tokens were counted with that model's tokenizer."""
    from tunewise.data.tokens import cost_estimates, is_openai_model

    out = []
    exact_openai = not counter.estimate and is_openai_model(counter.model)
    for row in cost_estimates(billable_all_epochs, tokenizer=counter.tokenizer_name, estimate=counter.estimate):
        per_token = "M tokens" in row["basis"]
        own = row["model"] == counter.model or (exact_openai and row["provider"] == "openai")
        estimate = counter.estimate or (per_token and not own)
        if estimate and not row["basis"].endswith("(estimate)"):
            row["basis"] += " (estimate: not this model's tokenizer)" if per_token else " (estimate)"
        out.append({**row, "estimate": bool(estimate or not per_token)})
    return out


def _agreement_dict(agreement, source) -> dict[str, Any] | None:
    if agreement is None:
        return None
    return {"source": source, "annotators": agreement.annotators, "rows": agreement.rows, "pairwise": agreement.pairwise,
            "mean_pairwise": agreement.mean_pairwise, "kappa": agreement.kappa, "kappa_kind": agreement.kappa_kind,
            "meets_bar": agreement.meets_bar}


def _reasons(reasons: Counter) -> str:
    return ", ".join(f"{reason} {count:,}" for reason, count in reasons.most_common(4))


def _preview(text: str) -> str:
    return text if len(text) <= TEXT_PREVIEW else text[: TEXT_PREVIEW - 1] + "…"


def _store(result: AuditResult, train: _Scan, evaluation: _Scan | None, store) -> None:
    from tunewise.store import file_hash

    own = store is None
    if own:
        from tunewise.workspace_init import open_store

        store = open_store()
    try:
        def dataset(scan: _Scan, role: str) -> str:
            found = store.find_dataset_by_hash(file_hash(scan.path))
            if found is not None:
                return found.id
            return store.add_dataset(scan.path, format=scan.format, rows=len(scan.texts), rejected_rows=scan.rejected, role=role).id

        result.dataset_id = dataset(train, "train")
        result.eval_dataset_id = dataset(evaluation, "eval") if evaluation is not None else None
        record = store.add_audit(result.dataset_id, result.summary, passed=result.passed, eval_dataset_id=result.eval_dataset_id)
        result.audit_id = record.id
    finally:
        if own:
            store.close()


# -- progress ------------------------------------------------------------------------------------------


class _Bars:
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


__all__ = ["AuditResult", "audit", "readiness_verdict"]

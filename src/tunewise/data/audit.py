"""`tunewise data audit`: every check the fine-tuning guide asks for before paying for a training job, in streaming passes.

    from tunewise.data.audit import audit
    result = audit("train.jsonl", eval_path="eval.jsonl", annotations_path="annotations.csv")
    result.record.readiness.verdict, result.blocking, result.to_dict()

`result.record` is the typed summary (`tunewise.records.audit.AuditSummary`) stored as Audit.summary.

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
5. readiness against the fine-tuning guide's thresholds (`DataConfig.thresholds`), and training cost per catalog row.

The passes that read files live in tunewise.data.audit_scan; this module runs them and assembles the result.

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
from tunewise.data.audit_scan import DETAILS_MAX, Bars, Scan, count_lines, first_problem, read_annotations, scan_file, timing
from tunewise.data.config import DataConfig
from tunewise.data.readiness import readiness_verdict, unique_examples
from tunewise.errors import DataError
from tunewise.records.audit import AuditSummary

TEXT_PREVIEW = 200
DEFAULT_EPOCHS = 3  # OpenAI's default for a dataset of a few thousand rows; costs are per run of this many epochs


@dataclass
class AuditResult:
    """What `audit` found: `record` (the typed summary, stored as Audit.summary), `blocking`, and per-check details."""

    path: Path
    eval_path: Path | None
    model: str
    record: AuditSummary
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

    @property
    def summary(self) -> dict[str, Any]:
        """The summary as the JSON the store holds (`record.to_store()`); typed readers use `record`."""
        return self.record.to_store()

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
    config: DataConfig | None = None,
    store=None,
    progress: bool = True,
    epochs: int = DEFAULT_EPOCHS,
    format: str = "auto",
    mislabels: bool = True,
    register: bool = True,
) -> AuditResult:
    """Run every data check on `path` (and `eval_path`), store the result, and return it.

    `config` is a `tunewise.data.config.DataConfig` (near-duplicate threshold, line limit, thresholds);
    `store` a `tunewise.store.Store` (default: the workspace's). `register=False` skips the store.

    Example: `audit("train.jsonl", eval_path="eval.jsonl").record.readiness.verdict`
    """
    from tunewise.data.tokens import get_counter

    path = Path(path)
    eval_path = Path(eval_path) if eval_path is not None else None
    config = config or DataConfig()
    threshold = config.near_duplicate_threshold
    read = {"format": format, "max_line_bytes": config.max_line_bytes}
    bars = Bars(progress)
    try:
        counter = get_counter(model)

        # Pass 1: the training file.
        train = scan_file(path, "train", counter, read, bars, total=count_lines(path), index=dedup_mod.DedupIndex(threshold=threshold))
        timings = dict(train.timings)
        if not train.texts:
            raise DataError(f"{path}: no readable rows ({train.rejected:,} rejected; first: {first_problem(train)})")

        # Pass 2: near duplicates.
        started = time.perf_counter()
        with bars.task("near duplicates: verifying candidate pairs", 1) as advance:
            report = train.index.report(train.texts)
            advance(1)
        timings["near_duplicates_verify"] = timing(time.perf_counter() - started, len(train.texts))
        timings["near_duplicates"] = timing(timings["near_duplicates_verify"]["seconds"] + timings["minhash_lsh"]["seconds"]
                                             + timings["exact_keys"]["seconds"], len(train.texts))

        # Pass 3: the eval set and contamination.
        evaluation = None
        hits: list[dedup_mod.ContaminationHit] = []
        if eval_path is not None:
            evaluation = scan_file(eval_path, "eval", counter, read, bars, total=count_lines(eval_path), index=None)
            for name, value in evaluation.timings.items():
                timings[f"eval_{name}"] = value
            started = time.perf_counter()
            with bars.task("contamination: eval rows against training rows", 1) as advance:
                hits = train.index.contamination(train.texts, evaluation.texts)
                advance(1)
            timings["contamination"] = timing(time.perf_counter() - started, len(evaluation.texts))

        # Pass 4: labels and annotator agreement.
        from tunewise.data.labels import annotator_agreement, label_report
        from tunewise.data.task import detect_task

        # One decision for the pair: a small eval set's labels repeat only together with train's.
        task = detect_task(train.labels + (evaluation.labels if evaluation else []))

        started = time.perf_counter()
        with bars.task("labels: distribution, conflicts, confident learning", 1) as advance:
            annotators = train.annotators if any(train.annotators) else None
            labels = label_report(train.texts, train.labels, annotators=annotators, clusters=report.clusters, mislabels=mislabels,
                                  task=task, thresholds=config.thresholds)
            advance(1)
        timings["labels"] = timing(time.perf_counter() - started, len(train.texts))
        agreement = labels.agreement
        agreement_source = str(path) if agreement is not None else None
        if annotations_path is not None:
            annotation_rows = read_annotations(Path(annotations_path), config)
            agreement = annotator_agreement(annotation_rows, thresholds=config.thresholds)
            if agreement is None:
                raise DataError(f"{annotations_path}: no rows with two or more annotators' labels (columns annotator_*, rater_*, label_*)")
            agreement_source = str(annotations_path)
    finally:
        bars.stop()

    result = _assemble(path, eval_path, counter, train, evaluation, report, hits, labels, agreement, agreement_source,
                       epochs=epochs, config=config)
    result.timings = timings
    if register:
        _store(result, train, evaluation, store)
    return result


# -- putting the result together -----------------------------------------------------------------------


def _assemble(path, eval_path, counter, train: Scan, evaluation: Scan | None, report, hits, labels, agreement,
              agreement_source, *, epochs: int, config: DataConfig) -> AuditResult:
    from tunewise.data.tokens import token_stats

    threshold = config.near_duplicate_threshold

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
    label_summary = labels.summary(agreement=agreement, agreement_source=agreement_source)

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
                                  agreement=agreement.mean_pairwise if agreement else None, rows=len(train.texts),
                                  thresholds=config.thresholds)
    costs = _costs(billable * epochs, counter)
    pii_types = Counter(train.pii_by_type)
    record = AuditSummary(
        rows=len(train.texts),
        rows_rejected=train.rejected,
        format_problems=train.rejected + (evaluation.rejected if evaluation else 0),
        format_problems_by_reason=dict(train.problem_reasons),
        format=train.format,
        eval_rows=len(evaluation.texts) if evaluation else None,
        eval_rows_rejected=evaluation.rejected if evaluation else None,
        tokens={
            "total": stats["total"], "billable_per_epoch": billable, "min": stats["min"], "median": stats["median"],
            "p95": stats["p95"], "max": stats["max"], "over_limit": stats["over_limit"], "context_limit": limit,
            "tokenizer": counter.tokenizer_name, "estimate": counter.estimate, "epochs": epochs,
            "billable_all_epochs": billable * epochs,
            "eval_total": int(evaluation.token_lengths.sum()) if evaluation else None,
        },
        pii={"rows": train.pii_row_count, "matches": int(sum(pii_types.values())), "by_type": dict(pii_types.most_common()),
             "eval_rows": evaluation.pii_row_count if evaluation else None,
             "eval_by_type": dict(evaluation.pii_by_type.most_common()) if evaluation else None},
        duplicates={"exact_clusters": report.exact_clusters, "near_clusters": report.near_clusters,
                    "rows_in_clusters": report.rows_in_clusters, "removable": removable,
                    "exact_duplicate_rows": int(len(exact_rows)), "threshold": threshold,
                    "method": f"MinHash LSH over word 3-shingles, verified by exact Jaccard >= {threshold:g}"},
        contamination={"hits": len(hits), "eval_rows_affected": eval_affected,
                       "train_rows_affected": len({h.train_index for h in hits}),
                       "exact": sum(h.kind == "exact" for h in hits), "near": sum(h.kind == "near" for h in hits)},
        labels=label_summary,
        readiness=readiness,
        cost_estimates=costs,
        notes=train.notes + (evaluation.notes if evaluation else []),
    )
    result = AuditResult(
        path=path, eval_path=eval_path, model=counter.model, record=record, blocking=blocking,
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
            "bar": agreement.bar, "meets_bar": agreement.meets_bar}


def _reasons(reasons: Counter) -> str:
    return ", ".join(f"{reason} {count:,}" for reason, count in reasons.most_common(4))


def _preview(text: str) -> str:
    return text if len(text) <= TEXT_PREVIEW else text[: TEXT_PREVIEW - 1] + "…"


def _store(result: AuditResult, train: Scan, evaluation: Scan | None, store) -> None:
    from tunewise.store import Store, file_hash

    with Store.borrow(store) as store:
        def dataset(scan: Scan, role: str) -> str:
            found = store.find_dataset_by_hash(file_hash(scan.path))
            if found is not None:
                return found.id
            return store.add_dataset(scan.path, format=scan.format, rows=len(scan.texts), rejected_rows=scan.rejected, role=role).id

        result.dataset_id = dataset(train, "train")
        result.eval_dataset_id = dataset(evaluation, "eval") if evaluation is not None else None
        stored = store.add_audit(result.dataset_id, result.record.to_store(), passed=result.passed, eval_dataset_id=result.eval_dataset_id)
        result.audit_id = stored.id



__all__ = ["AuditResult", "audit", "readiness_verdict", "unique_examples"]  # the last two re-exported from data.readiness

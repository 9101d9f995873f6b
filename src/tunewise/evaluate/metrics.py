"""Task metrics of one candidate's replies: what is right, per row, and over the set (with intervals).

Classification: accuracy (primary), macro-F1, per-class precision/recall/F1, the confusion matrix.
JSON: validity, schema compliance (primary when a schema is given, else validity), field accuracy.
Free text: ROUGE-L (primary), BLEU, chrF, and an LLM judge's score when one is configured.
Every task: the share of empty and refused replies. All scores are 0-1 (BLEU and chrF divided by 100).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tunewise.evaluate import stats
from tunewise.evaluate.tasks import Example, Task, is_refusal, parse_json, parse_label


@dataclass
class Scored:
    """One candidate's scores: `metrics` for the results JSON, per-row facts for outputs and paired tests."""

    metrics: dict[str, dict]
    primary_rows: np.ndarray  # per-row primary score (0/1 for binary metrics)
    primary_boot: np.ndarray  # primary metric on each shared resample
    rows: list[dict]  # per-row: prediction, correct/score, flags
    details: dict = field(default_factory=dict)


def primary_metric(task: Task) -> str:
    if task.type == "classification":
        return "accuracy"
    if task.type == "json":
        return "schema_compliance" if task.schema is not None else "json_validity"
    return "rouge_l"


def score(task: Task, rows: list[Example], outputs: list[str], indices: np.ndarray, confidence: float, *, judge: list[float | None] | None = None) -> Scored:
    """Score replies against the references; `indices` are the shared bootstrap resamples."""
    outputs = [o or "" for o in outputs]
    empty = np.array([not o.strip() for o in outputs], dtype=float)
    refused = np.array([bool(o.strip()) and is_refusal(o) for o in outputs], dtype=float)
    if task.type == "classification":
        scored = _classification(task, rows, outputs, indices, confidence)
    elif task.type == "json":
        scored = _json(task, rows, outputs, indices, confidence)
    else:
        scored = _text(rows, outputs, indices, confidence)
    scored.metrics["empty_rate"] = stats.mean_interval(empty, indices, confidence).as_dict()
    scored.metrics["refused_rate"] = stats.mean_interval(refused, indices, confidence).as_dict()
    scored.details["empty"] = int(empty.sum())
    scored.details["refused"] = int(refused.sum())
    if judge is not None and any(j is not None for j in judge):
        # An unanswered judge request scores as the rubric's floor rather than dropping the row.
        values = np.array([((j if j is not None else 1.0) - 1.0) / 4.0 for j in judge])
        scored.metrics["judge_score"] = stats.mean_interval(values, indices, confidence).as_dict()
        for row, value in zip(scored.rows, values):
            row["judge"] = float(value)
    for row, out, e, r in zip(scored.rows, outputs, empty, refused):
        row["empty"], row["refused"] = bool(e), bool(r)
    return scored


def _classification(task: Task, rows: list[Example], outputs: list[str], indices: np.ndarray, confidence: float) -> Scored:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = task.labels
    code = {label: i for i, label in enumerate(labels)}
    parsed = [parse_label(o, labels) for o in outputs]
    truth = np.array([code.get((r.reference or "").strip(), -2) for r in rows])
    pred = np.array([code[p] if p is not None else -1 for p in parsed])
    correct = (truth == pred).astype(float)
    accuracy = stats.mean_interval(correct, indices, confidence)
    macro = stats.macro_f1_interval(truth, pred, len(labels), indices, confidence)
    unparsed = np.array([p is None for p in parsed], dtype=float)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, pred, labels=list(range(len(labels))), zero_division=0
    )
    per_class = {
        label: {"precision": round(float(precision[i]), 4), "recall": round(float(recall[i]), 4), "f1": round(float(f1[i]), 4), "support": int(support[i])}
        for i, label in enumerate(labels)
    }
    # The last column holds replies that named no label, so the matrix still sums to the row count.
    matrix = confusion_matrix(truth, pred, labels=[*range(len(labels)), -1])[: len(labels)]
    metrics = {
        "accuracy": accuracy.as_dict(),
        "macro_f1": macro.as_dict(),
        "unparsed_rate": stats.mean_interval(unparsed, indices, confidence).as_dict(),
    }
    details = {"per_class": per_class, "confusion": {"labels": labels, "columns": [*labels, "(no label)"], "matrix": matrix.tolist()}, "unparsed": int(unparsed.sum())}
    out_rows = [{"prediction": p, "correct": bool(c)} for p, c in zip(parsed, correct)]
    return Scored(metrics, correct, correct[indices].mean(axis=1), out_rows, details)


def _json(task: Task, rows: list[Example], outputs: list[str], indices: np.ndarray, confidence: float) -> Scored:
    validator = None
    if task.schema is not None:
        from jsonschema import Draft202012Validator
        from jsonschema.validators import validator_for

        cls = validator_for(task.schema, default=Draft202012Validator)
        validator = cls(task.schema)
    valid = np.zeros(len(outputs))
    compliant = np.zeros(len(outputs))
    fields = np.zeros(len(outputs))
    exact = np.zeros(len(outputs))
    out_rows = []
    for i, (row, out) in enumerate(zip(rows, outputs)):
        ok, value = parse_json(out)
        errors: list[str] = []
        if ok:
            valid[i] = 1
            if validator is not None:
                errors = [e.message for e in validator.iter_errors(value)][:3]
                compliant[i] = 0 if errors else 1
        ref_ok, ref = parse_json(row.reference or "")
        if ok and ref_ok:
            exact[i] = float(value == ref)
            if isinstance(ref, dict) and isinstance(value, dict) and ref:
                fields[i] = sum(value.get(k) == v for k, v in ref.items()) / len(ref)
            else:
                fields[i] = exact[i]
        out_rows.append({"valid_json": bool(ok), "schema_errors": errors, "score": float(fields[i])})
    metrics = {"json_validity": stats.mean_interval(valid, indices, confidence).as_dict()}
    primary = valid
    if validator is not None:
        metrics["schema_compliance"] = stats.mean_interval(compliant, indices, confidence).as_dict()
        primary = compliant
    metrics["field_accuracy"] = stats.mean_interval(fields, indices, confidence).as_dict()
    metrics["exact_match"] = stats.mean_interval(exact, indices, confidence).as_dict()
    for row, p in zip(out_rows, primary):
        row["correct"] = bool(p)
    details = {"invalid_json": int(len(outputs) - valid.sum())}
    return Scored(metrics, primary, primary[indices].mean(axis=1), out_rows, details)


def _text(rows: list[Example], outputs: list[str], indices: np.ndarray, confidence: float) -> Scored:
    from rouge_score import rouge_scorer
    from sacrebleu.metrics import BLEU, CHRF

    refs = [r.reference or "" for r in rows]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rouge = np.array([scorer.score(ref, out)["rougeL"].fmeasure for ref, out in zip(refs, outputs)])
    metrics = {"rouge_l": stats.mean_interval(rouge, indices, confidence).as_dict()}
    metrics["bleu"] = _corpus_interval(BLEU(), outputs, refs, indices, confidence)
    metrics["chrf"] = _corpus_interval(CHRF(), outputs, refs, indices, confidence)
    out_rows = [{"score": float(s)} for s in rouge]
    return Scored(metrics, rouge, rouge[indices].mean(axis=1), out_rows, {})


def _corpus_interval(metric, hyps: list[str], refs: list[str], indices: np.ndarray, confidence: float) -> dict:
    """A sacrebleu corpus score with a bootstrap interval, resampling per-sentence sufficient statistics."""
    per_row = np.array(metric._extract_corpus_statistics(hyps, [refs]), dtype=float)
    value = metric._compute_score_from_stats(per_row.sum(axis=0).tolist()).score / 100
    # Summing statistics over a resample is one matrix product with the resample's row counts.
    counts = np.zeros((indices.shape[0], len(hyps)))
    np.add.at(counts, (np.repeat(np.arange(indices.shape[0]), indices.shape[1]), indices.ravel()), 1)
    boot = np.array([metric._compute_score_from_stats(s.tolist()).score / 100 for s in counts @ per_row])
    low, high = stats._percentiles(boot, confidence)
    return stats.Interval(value, low, high).as_dict()


__all__ = ["Scored", "score", "primary_metric"]

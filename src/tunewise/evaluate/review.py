"""Human review: export an evaluation's outputs side by side for people to rate, then fold the ratings back in.

    from tunewise.evaluate.review import export_review, import_review
    files = export_review("latest", "review/")          # review/review-<eval>.csv and .html
    # ... people fill the `rating: <candidate>` columns with 1-5 (or win / lose / tie) ...
    summary = import_review("latest", "review/review-<eval>.csv")

CLI: `tunewise eval export-review -o review/`, `tunewise eval import-review review/review-eval-1234.csv`.

Metrics say whether a reply matches the reference; people say whether it is any good. The ratings are
stored in the evaluation's results under `human_review`: per candidate the mean, a bootstrap 95%
interval and the number of rows rated, so the report shows them next to the automatic metrics.
"""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from tunewise.data.formats import iter_json_lines
from tunewise.errors import EvaluationError

OUTPUT_PREFIX = "output: "
RATING_PREFIX = "rating: "
WIN_VALUES = {"win": 1.0, "w": 1.0, "tie": 0.5, "t": 0.5, "draw": 0.5, "lose": 0.0, "loss": 0.0, "l": 0.0}


class ReviewFiles(NamedTuple):
    csv: Path
    html: Path


# -- shared with the report: finding an evaluation and reading its per-row outputs ---------------


def load_evaluation(store, ref: str = "latest"):
    """An Evaluation by id (or unique prefix); `latest` is the newest comparison (learning-curve points excluded)."""
    if ref in (None, "", "latest"):
        record = store.latest_evaluation(kind="compare")
        if record is None:
            record = next((e for e in store.list_evaluations(limit=200) if e.kind not in ("curve", "curve-point")), None)
        if record is None:
            raise EvaluationError("no evaluation in the store yet: run `tunewise eval --data EVAL --candidate ...` first")
        return record
    return store.get_evaluation(ref)


def completed_candidates(results: dict) -> list[dict]:
    return [c for c in results.get("candidates") or [] if c.get("status", "completed") == "completed"]


def iter_outputs(results: dict, *, evaluation_id: str = "?") -> Iterator[dict]:
    """Per-row outputs as `{index, input, reference, candidates: {name: {output, prediction, correct}}}`.

    Reads `results["outputs_path"]` (JSONL). Per-candidate entries may sit under `candidates`, `outputs`
    or `results` (a mapping or a list of dicts with `name`), or at the row's top level under each name.
    """
    path = results.get("outputs_path")
    if not path:
        raise EvaluationError(f"evaluation {evaluation_id} kept no per-row outputs (results.outputs_path): re-run `tunewise eval`")
    path = Path(path)
    if not path.is_file():
        raise EvaluationError(f"{path}: the per-row outputs of evaluation {evaluation_id} are missing (moved or deleted?)")
    keys = {}
    for candidate in results.get("candidates") or []:
        for key in (candidate.get("name"), candidate.get("spec")):
            if key:
                keys[key] = candidate.get("name") or candidate.get("spec")
    for number, row in iter_json_lines(path, error=EvaluationError):
        yield _normalize_row(row, keys, number)


def _normalize_row(row: dict, keys: dict[str, str], number: int) -> dict:
    nested = next((row[k] for k in ("candidates", "outputs", "results") if isinstance(row.get(k), (dict, list))), None)
    entries: dict[str, Any] = {}
    if isinstance(nested, list):
        entries = {e.get("name") or e.get("spec"): e for e in nested if isinstance(e, dict)}
    elif isinstance(nested, dict):
        entries = nested
    else:
        entries = {k: v for k, v in row.items() if k in keys and isinstance(v, dict)}
    candidates = {}
    for key, entry in entries.items():
        if not isinstance(entry, dict):
            entry = {"output": entry}
        candidates[keys.get(key, key)] = {
            "output": entry.get("output", entry.get("text", "")),
            "prediction": entry.get("prediction", entry.get("parsed")),
            # Free-text tasks score each row (ROUGE-L) instead of marking it right or wrong.
            "correct": entry.get("correct", entry.get("score")),
        }
    return {
        "index": row.get("index", number - 1),
        "input": row.get("input", row.get("text", "")),
        "reference": row.get("reference"),
        "candidates": candidates,
    }


def _open(store):
    if store is not None:
        return store, False
    from tunewise.store import Store

    return Store.open(), True


# -- export ---------------------------------------------------------------------------------------


def export_review(
    evaluation_ref: str = "latest", out_dir: str | Path = ".", *, store=None, candidates: list[str] | None = None, limit: int | None = None
) -> ReviewFiles:
    """Write `review-<eval>.csv` (blank `rating: <candidate>` columns to fill) and a side-by-side HTML page.

    `candidates` picks candidates by name or spec (default: every completed one); `limit` keeps the first N rows.
    Example: export_review("latest", "review/", candidates=["few-shot:smollm2-135m?k=8", "adapter:run-1a2b"], limit=50)
    """
    store, own = _open(store)
    try:
        evaluation = load_evaluation(store, evaluation_ref)
        results = evaluation.results or {}
        names = _pick(results, candidates, evaluation.id)
        rows = []
        for row in iter_outputs(results, evaluation_id=evaluation.id):
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
        if not rows:
            raise EvaluationError(f"evaluation {evaluation.id}: no per-row outputs to review")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        csv_path = out / f"review-{evaluation.id}.csv"
        with csv_path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["row", "input", "reference", *(OUTPUT_PREFIX + n for n in names), *(RATING_PREFIX + n for n in names), "notes"])
            for row in rows:
                outputs = [_text(row["candidates"].get(n, {}).get("output")) for n in names]
                writer.writerow([row["index"], row["input"], _text(row["reference"]), *outputs, *([""] * len(names)), ""])
        html_path = out / f"review-{evaluation.id}.html"
        html_path.write_text(_review_html(evaluation, results, names, rows, csv_path.name), encoding="utf-8")
        return ReviewFiles(csv_path, html_path)
    finally:
        if own:
            store.close()


def _pick(results: dict, wanted: list[str] | None, evaluation_id: str) -> list[str]:
    available = completed_candidates(results)
    if not available:
        raise EvaluationError(f"evaluation {evaluation_id} has no completed candidates to review")
    if not wanted:
        return [c["name"] for c in available]
    names = []
    for want in wanted:
        match = next((c["name"] for c in available if want in (c.get("name"), c.get("spec"))), None)
        if match is None:
            raise EvaluationError(
                f"candidate {want!r} is not in evaluation {evaluation_id}; it has: {', '.join(c['name'] for c in available)}"
            )
        names.append(match)
    return names


def _text(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


_REVIEW_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%;table-layout:fixed}
th,td{border:1px solid #ccc;padding:.4rem;vertical-align:top;font-size:.85rem;white-space:pre-wrap;word-wrap:break-word}
th{background:#f0f3f7;position:sticky;top:0}
td.ok{background:#eef8ee}td.bad{background:#fbeeee}
.muted{color:#666}
"""


def _review_html(evaluation, results: dict, names: list[str], rows: list[dict], csv_name: str) -> str:
    e = html.escape
    head = "".join(f"<th>{e(n)}</th>" for n in names)
    body = []
    for row in rows:
        cells = []
        for name in names:
            entry = row["candidates"].get(name, {})
            correct = entry.get("correct")
            css = "" if correct is None else (" class='ok'" if _truthy(correct) else " class='bad'")
            cells.append(f"<td{css}>{e(_text(entry.get('output')))}</td>")
        body.append(f"<tr><td>{e(str(row['index']))}</td><td>{e(_text(row['input']))}</td><td>{e(_text(row['reference']))}</td>{''.join(cells)}</tr>")
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Review {e(evaluation.id)}</title><style>{_REVIEW_CSS}</style></head><body>"
        f"<h1>Side-by-side review of evaluation {e(evaluation.id)}</h1>"
        f"<p class='muted'>Task: {e(str(results.get('task_type') or evaluation.task_type or '?'))}. {len(rows)} rows. "
        f"Green cells match the reference, red ones do not. Rate each reply in <code>{e(csv_name)}</code> "
        "(columns <code>rating: …</code>: 1 = useless … 5 = perfect, or win / lose / tie), then run "
        f"<code>tunewise eval import-review {e(evaluation.id)} {e(csv_name)}</code>.</p>"
        f"<table><thead><tr><th style='width:3rem'>row</th><th>input</th><th>reference</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></body></html>"
    )


def _truthy(value) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value >= 0.5
    return bool(value)


# -- import ---------------------------------------------------------------------------------------


def import_review(evaluation_ref: str, csv_path: str | Path, *, store=None, seed: int = 0) -> dict[str, Any]:
    """Read a filled review CSV and store `results["human_review"]`; returns that summary.

    Ratings are 1-5 (mean rating) or win / lose / tie (win rate, a tie counts half), one scale per
    candidate column; blank cells are unrated. A bad cell raises `EvaluationError` naming file and line.
    Example: import_review("eval-3f2a9c1b7d", "review/review-eval-3f2a9c1b7d.csv")["candidates"]
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise EvaluationError(f"{csv_path}: file not found")
    store, own = _open(store)
    try:
        evaluation = load_evaluation(store, evaluation_ref)
        results = dict(evaluation.results or {})
        known = {c.get("name") for c in results.get("candidates") or []}
        ratings = _read_ratings(csv_path, known)
        summary = {
            "file": str(csv_path.resolve()),
            "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rows_rated": len({row for values in ratings.values() for row, _, _ in values}),
            "candidates": {name: _summarize(values, seed) for name, values in ratings.items()},
        }
        results["human_review"] = summary
        store.update_evaluation(evaluation.id, results=results)
        return summary
    finally:
        if own:
            store.close()


def _read_ratings(csv_path: Path, known: set) -> dict[str, list[tuple[str, float, str]]]:
    """{candidate: [(row, value, scale)]} from the CSV; checks header, rows and every rating cell."""
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise EvaluationError(f"{csv_path}:1: empty file (expected the header written by `tunewise eval export-review`)") from None
        except csv.Error as exc:
            raise EvaluationError(f"{csv_path}:1: not a readable CSV ({exc})") from None
        columns = {name[len(RATING_PREFIX):]: i for i, name in enumerate(header) if name.startswith(RATING_PREFIX)}
        if "row" not in header or not columns:
            raise EvaluationError(f"{csv_path}:1: header needs a 'row' column and 'rating: <candidate>' columns (write one with `tunewise eval export-review`)")
        unknown = [n for n in columns if known and n not in known]
        if unknown:
            raise EvaluationError(f"{csv_path}:1: column 'rating: {unknown[0]}' names no candidate of this evaluation ({', '.join(sorted(known))})")
        row_col = header.index("row")
        ratings: dict[str, list[tuple[str, float, str]]] = {name: [] for name in columns}
        scales: dict[str, str] = {}
        seen: set[str] = set()
        try:
            for record in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in record):
                    continue
                if len(record) != len(header):
                    raise EvaluationError(f"{csv_path}:{line}: {len(record)} fields, the header has {len(header)}")
                row = record[row_col].strip()
                if row in seen:
                    raise EvaluationError(f"{csv_path}:{line}: row {row} appears twice")
                seen.add(row)
                for name, col in columns.items():
                    cell = record[col].strip()
                    if not cell:
                        continue
                    value, scale = _parse_rating(cell)
                    if value is None:
                        raise EvaluationError(f"{csv_path}:{line}: rating {cell!r} for {name}: use 1-5 or win / lose / tie")
                    if scales.setdefault(name, scale) != scale:
                        raise EvaluationError(f"{csv_path}:{line}: rating {cell!r} for {name} mixes 1-5 and win/lose in one column")
                    ratings[name].append((row, value, scale))
        except csv.Error as exc:
            raise EvaluationError(f"{csv_path}:{reader.line_num}: not a readable CSV ({exc})") from None
    if not any(ratings.values()):
        raise EvaluationError(f"{csv_path}: no ratings filled in (columns {', '.join(RATING_PREFIX + n for n in columns)})")
    return ratings


def _parse_rating(cell: str) -> tuple[float | None, str]:
    low = cell.lower()
    if low in WIN_VALUES:
        return WIN_VALUES[low], "win-rate"
    try:
        value = float(cell)
    except ValueError:
        return None, ""
    if value != int(value) or not 1 <= value <= 5:
        return None, ""
    return value, "1-5"


def _summarize(values: list[tuple[str, float, str]], seed: int) -> dict[str, Any]:
    import numpy as np

    if not values:
        return {"scale": None, "mean": None, "low": None, "high": None, "n": 0}
    data = np.asarray([v for _, v, _ in values], dtype=float)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(2000, len(data)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"scale": values[0][2], "mean": float(data.mean()), "low": float(low), "high": float(high), "n": int(len(data))}

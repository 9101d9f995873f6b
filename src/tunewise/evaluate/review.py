"""Human review: export an evaluation's outputs side by side for people to rate, then fold the ratings back in.

    from tunewise.evaluate.review import export_review, import_review
    files = export_review("latest", "review/")          # review/review-<eval>.csv and .html
    # ... people fill the `rating: <candidate>` columns with 1-5 (or win / lose / tie) ...
    summary = import_review("latest", "review/review-<eval>.csv")

CLI: `tunewise eval export-review -o review/`, `tunewise eval import-review review/review-eval-1234.csv`.

Metrics say whether a reply matches the reference; people say whether it is any good. The ratings are
stored in the evaluation's results as `human_review` (records.evaluation.HumanReview): per candidate the
mean, a bootstrap interval at the evaluation's confidence level and the number of rows rated, so the
report shows them next to the automatic metrics.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from tunewise.data.formats import iter_json_lines
from tunewise.errors import EvaluationError
from tunewise.records.evaluation import EvaluationResults, HumanReview, OutputRow, RatingSummary

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
            raise EvaluationError("no evaluation in the store yet: run `tunewise eval --data EVAL --candidate ...` first")
        return record
    return store.get_evaluation(ref)


def comparison_results(evaluation) -> EvaluationResults:
    """The typed results of a comparison; a learning curve or a malformed record is a one-line error."""
    if evaluation.kind == "curve":
        raise EvaluationError(f"evaluation {evaluation.id} is a learning curve, not a comparison of candidates")
    return EvaluationResults.from_store(evaluation.results, where=f"evaluation {evaluation.id}")


def iter_outputs(results: EvaluationResults) -> Iterator[OutputRow]:
    """The per-row outputs (`results.outputs_path`, one OutputRow a line)."""
    ref = results.evaluation_id or "?"
    if not results.outputs_path:
        raise EvaluationError(f"evaluation {ref} kept no per-row outputs (results.outputs_path): re-run `tunewise eval`")
    path = Path(results.outputs_path)
    if not path.is_file():
        raise EvaluationError(f"{path}: the per-row outputs of evaluation {ref} are missing (moved or deleted?)")
    for number, row in iter_json_lines(path, error=EvaluationError):
        try:
            yield OutputRow.model_validate(row)
        except ValueError as exc:
            raise EvaluationError(f"{path}:{number}: not an output row of tunewise eval ({str(exc).splitlines()[0]})") from None


# -- export ---------------------------------------------------------------------------------------


def export_review(
    evaluation_ref: str = "latest", out_dir: str | Path = ".", *, store=None, candidates: list[str] | None = None, limit: int | None = None
) -> ReviewFiles:
    """Write `review-<eval>.csv` (blank `rating: <candidate>` columns to fill) and a side-by-side HTML page.

    `candidates` picks candidates by name or spec (default: every completed one); `limit` keeps the first N rows.
    Example: export_review("latest", "review/", candidates=["few-shot:smollm2-135m?k=8", "adapter:run-1a2b"], limit=50)
    """
    from tunewise.store import Store

    with Store.borrow(store) as store:
        evaluation = load_evaluation(store, evaluation_ref)
        results = comparison_results(evaluation)
        names = _pick(results, candidates, evaluation.id)
        rows: list[OutputRow] = []
        for row in iter_outputs(results):
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
                outputs = [row.candidates[n].output if n in row.candidates else "" for n in names]
                writer.writerow([row.index, row.input, row.reference or "", *outputs, *([""] * len(names)), ""])
        html_path = out / f"review-{evaluation.id}.html"
        html_path.write_text(_review_html(evaluation.id, results, names, rows, csv_path.name), encoding="utf-8")
        return ReviewFiles(csv_path, html_path)


def _pick(results: EvaluationResults, wanted: list[str] | None, evaluation_id: str) -> list[str]:
    available = results.completed()
    if not available:
        raise EvaluationError(f"evaluation {evaluation_id} has no completed candidates to review")
    if not wanted:
        return [c.name for c in available]
    names = []
    for want in wanted:
        match = next((c.name for c in available if want in (c.name, c.spec)), None)
        if match is None:
            raise EvaluationError(f"candidate {want!r} is not in evaluation {evaluation_id}; it has: {', '.join(c.name for c in available)}")
        names.append(match)
    return names


def _review_html(evaluation_id: str, results: EvaluationResults, names: list[str], rows: list[OutputRow], csv_name: str) -> str:
    from tunewise.render import render_page

    cells = []
    for row in rows:
        line = []
        for name in names:
            entry = row.candidates.get(name)
            score = entry.row_score if entry is not None else None
            # Green where the reply is right (or scores at least half on graded tasks), red where not.
            line.append({"text": entry.output if entry is not None else "", "css": "" if score is None else ("ok" if score >= 0.5 else "bad")})
        cells.append(line)
    return render_page(
        "review.html", title=f"Review {evaluation_id}", evaluation_id=evaluation_id, task_type=results.task_type,
        names=names, rows=rows, cells=cells, csv_name=csv_name,
    )


# -- import ---------------------------------------------------------------------------------------


def import_review(evaluation_ref: str, csv_path: str | Path, *, store=None) -> HumanReview:
    """Read a filled review CSV and store it as `human_review` in the evaluation's results; returns it.

    Ratings are 1-5 (mean rating) or win / lose / tie (win rate, a tie counts half), one scale per
    candidate column; blank cells are unrated. The intervals use the evaluation's own confidence level,
    resamples and seed. A bad cell raises `EvaluationError` naming file and line.
    Example: import_review("eval-3f2a9c1b7d", "review/review-eval-3f2a9c1b7d.csv").candidates
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise EvaluationError(f"{csv_path}: file not found")
    from tunewise.store import Store

    with Store.borrow(store) as store:
        evaluation = load_evaluation(store, evaluation_ref)
        results = comparison_results(evaluation)
        ratings = _read_ratings(csv_path, {c.name for c in results.candidates})
        seed = int((evaluation.config or {}).get("seed", 0))
        review = HumanReview(
            file=str(csv_path.resolve()),
            imported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            rows_rated=len({row for values in ratings.values() for row, _, _ in values}),
            confidence=results.confidence,
            candidates={name: _summarize(values, results, seed) for name, values in ratings.items() if values},
        )
        results.human_review = review
        store.update_evaluation(evaluation.id, results=results.to_store())
        return review


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


def _summarize(values: list[tuple[str, float, str]], results: EvaluationResults, seed: int) -> RatingSummary:
    import numpy as np

    from tunewise.evaluate import stats

    data = np.asarray([v for _, v, _ in values], dtype=float)
    interval = stats.mean_interval(data, stats.resample_indices(len(data), results.bootstrap_samples, seed), results.confidence)
    return RatingSummary(scale=values[0][2], mean=interval.value, low=interval.low, high=interval.high, n=len(data))

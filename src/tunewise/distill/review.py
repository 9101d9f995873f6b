"""The review queue of a distillation: the rows the teacher was unsure of go out to people and come back.

    from tunewise.distill.review import export_queue, import_decisions
    files = export_queue("distilled/", "review/")          # review/review.csv and review/review.html
    # ... people fill `decision` (accept / reject / correct) and `corrected_label` ...
    applied = import_decisions("distilled/", "review/review.csv")
    applied.counts                                         # {"rows": ..., "accepted": ..., "queued": ...}

CLI: `tunewise distill review export distilled/ -o review/`, `tunewise distill review import distilled/ review/review.csv`.

A decision is `accept` (the teacher's label), `reject` (the row is left out of training), or `correct` with a
`corrected_label` (a corrected label alone means correct too); a blank row stays queued. The whole file is
checked before anything changes: one bad line is a one-line error naming the file and line, and nothing is
applied. Applying rewrites rows.jsonl, accepted.jsonl and summary.json, and registers the new accepted.jsonl
as a dataset whose parent is the accepted set before the review.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from tunewise.errors import DataError

COLUMNS = ("row", "status", "source_line", "input", "teacher_label", "agreement", "samples", "decision", "corrected_label", "note")
DECISIONS = ("accept", "reject", "correct")
REVIEWABLE = ("queued", "accepted", "rejected")  # failed and not_started rows have no label to judge
SAMPLE_SEPARATOR = " | "


class ReviewFiles(NamedTuple):
    csv: Path
    html: Path
    rows: int


@dataclass
class Applied:
    """What an import changed: the decisions by kind, the counts after it and the dataset it registered."""

    decisions: Counter
    counts: dict[str, int]
    dataset_id: str | None
    parent_id: str | None  # the accepted set before the review
    unchanged: int = 0  # rows whose decision was already applied by an earlier import of the same file
    notes: list[str] = field(default_factory=list)


def load_labeled(directory: str | Path) -> tuple[list[dict], dict]:
    """rows.jsonl and summary.json of a `tunewise distill label` output folder."""
    out = Path(directory)
    rows_path, summary_path = out / "rows.jsonl", out / "summary.json"
    if not rows_path.is_file() or not summary_path.is_file():
        raise DataError(f"{out}: no rows.jsonl and summary.json here (write them with `tunewise distill label ... -o {out}`)")
    rows = [json.loads(line) for line in rows_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        row.setdefault("review", None)  # rows.jsonl written before reviews existed
    return rows, json.loads(summary_path.read_text(encoding="utf-8"))


def teacher_label(row: dict) -> str | None:
    """The teacher's own label of a row, whatever a reviewer made of it."""
    review = row.get("review")
    return review.get("teacher_label") if review else row.get("label")


def carry_reviews(previous: list[dict], rows: list[dict]) -> int:
    """Keep people's decisions over a rerun of `label` into the same folder; returns how many were kept.

    A decision is kept where the row is the same input and the teacher still gives the label people saw
    (the calls are cached, so a resume gives the same replies); anywhere else it no longer applies.
    """
    before = {row["index"]: row for row in previous if row.get("review")}
    kept = 0
    for row in rows:
        old = before.get(row["index"])
        if old is None or old.get("text") != row.get("text") or row["status"] not in REVIEWABLE:
            continue
        review = old["review"]
        if review.get("teacher_label") != row.get("label"):
            continue
        row["review"] = review
        if review["decision"] == "reject":
            row["status"] = "rejected"
        else:
            row.update(status="accepted", label=review["label"], error=None)
        kept += 1
    return kept


# -- export ---------------------------------------------------------------------------------------


def export_queue(directory: str | Path, out_dir: str | Path, *, all_rows: bool = False) -> ReviewFiles:
    """Write review.csv (blank `decision`, `corrected_label` and `note` to fill) and review.html for the queued rows.

    `all_rows` exports every row (accepted ones can then be rejected or corrected too).
    Example: export_queue("distilled/", "review/", all_rows=False).csv
    """
    rows, summary = load_labeled(directory)
    picked = [r for r in rows if all_rows or r["status"] == "queued"]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "review.csv"
    # utf-8-sig: Excel reads a UTF-8 file without a BOM as the local code page and garbles every accent.
    with csv_path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(COLUMNS)
        for row in picked:
            writer.writerow([row["index"], row["status"], (row.get("source") or {}).get("line", ""), row.get("text") or "",
                             teacher_label(row) or "", "" if row.get("agreement") is None else row["agreement"],
                             SAMPLE_SEPARATOR.join(row.get("samples") or []), *_decision_cells(row)])
    html_path = out / "review.html"
    html_path.write_text(_html(Path(directory), picked, summary, csv_path, all_rows), encoding="utf-8")
    return ReviewFiles(csv_path, html_path, len(picked))


def _decision_cells(row: dict) -> list[str]:
    review = row.get("review")
    if not review:
        return ["", "", ""]
    corrected = review["label"] if review["decision"] == "correct" else ""
    return [review["decision"], corrected or "", review.get("note") or ""]


def _html(directory: Path, rows: list[dict], summary: dict, csv_path: Path, all_rows: bool) -> str:
    from tunewise.render import render_page

    task = _task(summary)
    n_samples = max([len(r.get("samples") or []) for r in rows] + [(summary.get("settings") or {}).get("samples") or 1])
    cells = []
    for row in rows:
        label = teacher_label(row)
        samples = list(row.get("samples") or [])
        # Green where a sample says what the teacher's majority says, red where it does not (free text: uncoloured).
        cells.append([{"text": s, "css": _agreement_css(task, s, label)} for s in samples]
                     + [{"text": "", "css": ""}] * (n_samples - len(samples)))
    return render_page(
        "distill_review.html", title=f"Review of {directory}", directory=str(directory), teacher=summary.get("teacher"),
        task_type=summary.get("task"), min_agreement=(summary.get("settings") or {}).get("min_agreement"),
        labels=summary.get("labels") or [], rows=rows, cells=cells, n_samples=n_samples, csv_name=csv_path.name,
        csv_path=str(csv_path), all_rows=all_rows,
    )


def _agreement_css(task, sample: str, label: str | None) -> str:
    if label is None or task.type == "text":
        return ""
    from tunewise.distill.label import judge

    return "ok" if judge(task, [sample], _validator_of(task))[0] == label else "bad"


# -- import ---------------------------------------------------------------------------------------


@dataclass
class _Decision:
    row: dict
    decision: str
    label: str | None
    note: str


def import_decisions(directory: str | Path, csv_path: str | Path, *, store=None) -> Applied:
    """Apply a filled review.csv to a labeled folder: check every line first, then change rows and register the result.

    Example: import_decisions("distilled/", "review/review.csv").counts
    """
    from tunewise.distill.label import publish

    out = Path(directory)
    csv_path = Path(csv_path)
    rows, summary = load_labeled(out)
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: file not found")
    decisions, unchanged = _read_decisions(csv_path, rows, summary, out)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for item in decisions:
        row = item.row
        row["review"] = {"decision": item.decision, "label": item.label, "teacher_label": teacher_label(row),
                         "note": item.note or None, "file": str(csv_path.resolve()), "reviewed_at": now}
        if item.decision == "reject":
            row.update(status="rejected", label=teacher_label(row))
        else:
            row.update(status="accepted", label=item.label, error=None)
    kinds = Counter(item.decision for item in decisions)
    parent_id = summary.get("dataset_id")
    summary["review"] = {"file": str(csv_path.resolve()), "imported_at": now, "decisions": dict(kinds),
                         "reviewed": sum(bool(r.get("review")) for r in rows)}
    dataset_id = publish(out, rows, summary, store=store, parent_id=parent_id) if decisions else parent_id
    applied = Applied(kinds, summary["counts"], dataset_id, parent_id, unchanged)
    if not decisions:
        applied.notes.append("no decision to apply: nothing changed")
    return applied


def _read_decisions(csv_path: Path, rows: list[dict], summary: dict, out: Path) -> tuple[list[_Decision], int]:
    by_index = {row["index"]: row for row in rows}
    task = _task(summary)
    validator = _validator_of(task)
    decisions: list[_Decision] = []
    seen: set[int] = set()
    unchanged = 0

    def fail(line: int, reason: str):
        return DataError(f"{csv_path}:{line}: {reason}")

    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = [cell.strip() for cell in next(reader)]
        except StopIteration:
            raise fail(1, "empty file (expected the header written by `tunewise distill review export`)") from None
        except csv.Error as exc:
            raise fail(1, f"not a readable CSV ({exc})") from None
        missing = [name for name in ("row", "decision", "corrected_label") if name not in header]
        if missing:
            raise fail(1, f"no {', '.join(repr(m) for m in missing)} column (write the file with `tunewise distill review export`)")
        col = {name: header.index(name) for name in COLUMNS if name in header}
        end = 1
        try:
            for record in reader:
                line, end = end + 1, reader.line_num  # the line a record starts on, even when a cell spans lines
                if not any(cell.strip() for cell in record):
                    continue
                if len(record) != len(header):
                    raise fail(line, f"{len(record)} fields, the header has {len(header)}")

                def cell(name: str) -> str:
                    return record[col[name]].strip() if name in col else ""

                try:
                    index = int(cell("row"))
                except ValueError:
                    raise fail(line, f"row {cell('row')!r} is not a row number") from None
                row = by_index.get(index)
                if row is None:
                    raise fail(line, f"row {index} is not in {out / 'rows.jsonl'} (rows 0-{len(rows) - 1})")
                if index in seen:
                    raise fail(line, f"row {index} appears twice")
                seen.add(index)
                decision, corrected = cell("decision").lower(), cell("corrected_label")
                if not decision and not corrected:
                    continue  # still queued
                if decision and decision not in DECISIONS:
                    raise fail(line, f"decision {cell('decision')!r}: use accept, reject or correct (or leave it blank)")
                if corrected and decision in ("accept", "reject"):
                    raise fail(line, f"decision {decision} with a corrected_label: write correct, or clear corrected_label")
                if row["status"] not in REVIEWABLE:
                    raise fail(line, f"row {index} is {row['status'].replace('_', ' ')}, not queued: it has no teacher label "
                                     "to review (rerun `tunewise distill label` for it)")
                decision = decision or "correct"
                label = _label_of(decision, corrected, row, task, validator, lambda reason: fail(line, reason))
                review = row.get("review")
                if review and (review["decision"], review["label"]) == (decision, label):
                    unchanged += 1  # imported before (or pre-filled by an --all export): the same decision changes nothing
                    continue
                moved = _check_unchanged(row, cell("status") or None, cell("teacher_label") if "teacher_label" in col else None)
                if moved:
                    raise fail(line, moved)
                decisions.append(_Decision(row, decision, label, cell("note")))
        except csv.Error as exc:
            raise fail(reader.line_num, f"not a readable CSV ({exc})") from None
    return decisions, unchanged


def _check_unchanged(row: dict, status: str | None, label: str | None) -> str | None:
    """Why a decision cannot apply to `row` as people saw it in the file (None: it can): it moved since the export."""
    if status and status != row["status"]:
        return f"row {row['index']} changed since the export (it was {status}, it is {row['status']} now): export the queue again"
    if label is not None and label != (teacher_label(row) or "").strip():
        return (f"row {row['index']} changed since the export (the teacher's label is now {teacher_label(row)!r}, "
                f"the file shows {label!r}): export the queue again")
    return None


def _label_of(decision: str, corrected: str, row: dict, task, validator, fail) -> str | None:
    """The label a decision gives the row (None for reject); a corrected label is checked against the task."""
    if decision == "reject":
        return None
    if decision == "accept":
        label = teacher_label(row)
        if label is None:
            raise fail(f"row {row['index']}: the teacher gave no label to accept ({row.get('error') or 'none parsed'}); "
                       "write correct and a corrected_label")
        return label
    if not corrected:
        raise fail(f"row {row['index']}: decision correct needs a corrected_label")
    if task.type == "classification":
        from tunewise.evaluate.tasks import normalize

        match = {normalize(label): label for label in task.labels}.get(normalize(corrected))
        if match is None:
            shown = ", ".join(task.labels[:12]) + (", ..." if len(task.labels) > 12 else "")
            raise fail(f"corrected_label {corrected!r} is not one of the {len(task.labels)} labels ({shown})")
        return match
    if task.type == "json":
        from tunewise.distill.label import json_agreement

        label, _, error = json_agreement([corrected], validator)
        if label is None:
            raise fail(f"corrected_label is not valid JSON for this task ({error.split('(first: ', 1)[-1].rstrip(')')})")
        return label
    return corrected


def _task(summary: dict):
    from tunewise.evaluate.tasks import Task

    return Task(summary.get("task") or "text", list(summary.get("labels") or []), summary.get("schema"))


def _validator_of(task):
    from tunewise.distill.label import _validator

    return _validator(task)


__all__ = ["Applied", "COLUMNS", "DECISIONS", "ReviewFiles", "export_queue", "import_decisions", "load_labeled"]

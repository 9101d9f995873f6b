"""The review queue (`tunewise.distill.review`): export the unsure rows, people decide, import; no network."""

from __future__ import annotations

import csv
import json

import pytest

from tests.distill.fake_teacher import serve_fake
from tests.distill.test_label import LABELS, read_jsonl, write_jsonl
from tunewise.cli import main
from tunewise.distill.label import label_rows
from tunewise.distill.review import COLUMNS, export_queue, import_decisions
from tunewise.store import file_hash

TEXTS = [
    "I was charged twice",   # 0 accepted (billing)
    "unsure, a charge?",     # 1 billing, billing, refund: queued -> accept
    "unsure, hello",         # 2 other, billing, refund: queued -> corrected to billing
    "unsure, refund?",       # 3 refund, billing, refund: queued -> reject
    "unsure about it",       # 4 other, billing, refund: queued, left blank
    "broken request",        # 5 failed
    "please refund",         # 6 accepted (refund)
]


@pytest.fixture
def labeled(tmp_path, store):
    with serve_fake() as (url, _):
        data = write_jsonl(tmp_path / "in.jsonl", TEXTS)
        result = label_rows(data, teacher=f"endpoint:{url}#gpt-5-mini", out_dir=tmp_path / "out", labels=LABELS,
                            store=store, yes=True)
    assert [r["status"] for r in result.rows] == ["accepted", "queued", "queued", "queued", "queued", "failed", "accepted"]
    return tmp_path / "out", result


def read_csv(path):
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path, records):
    # As Excel saves it: a BOM first, CRLF line ends.
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(records)


def decide(records, **by_row):
    for record in records:
        decision, _, corrected = by_row.get(f"r{record['row']}", "").partition(":")
        record["decision"], record["corrected_label"] = decision, corrected
    return records


def test_review_round_trip_updates_rows_accepted_set_and_the_dataset_chain(tmp_path, labeled, store):
    from tunewise.data.formats import load_examples

    out, first = labeled
    files = export_queue(out, tmp_path / "review")
    records = read_csv(files.csv)
    assert files.rows == 4 and [r["row"] for r in records] == ["1", "2", "3", "4"]
    assert records[0]["teacher_label"] == "billing" and records[0]["status"] == "queued" and records[0]["source_line"] == "2"
    assert records[0]["samples"] == "Label: billing | Label: billing | Label: refund" and records[0]["input"] == TEXTS[1]
    assert float(records[0]["agreement"]) == pytest.approx(2 / 3, abs=1e-3)
    page = files.html.read_text()
    assert "unsure, a charge?" in page and "sample 3" in page and 'class="wrap bad">Label: refund' in page
    assert "tunewise distill review import" in page

    write_csv(files.csv, decide(records, r1="accept", r2=":billing", r3="reject"))
    applied = import_decisions(out, files.csv, store=store)
    assert dict(applied.decisions) == {"accept": 1, "correct": 1, "reject": 1}
    assert applied.counts == {"rows": 7, "accepted": 4, "queued": 1, "rejected": 1, "failed": 1, "not_started": 0}

    rows = read_jsonl(out / "rows.jsonl")
    assert [r["status"] for r in rows] == ["accepted", "accepted", "accepted", "rejected", "queued", "failed", "accepted"]
    assert rows[2]["label"] == "billing" and rows[2]["review"]["teacher_label"] == "other"
    assert rows[2]["review"]["decision"] == "correct" and rows[1]["review"]["label"] == "billing"
    assert rows[3]["review"]["decision"] == "reject" and rows[4]["review"] is None
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"] == applied.counts and summary["review"]["reviewed"] == 3
    assert summary["dataset_id"] == applied.dataset_id != first.dataset_id

    accepted = read_jsonl(out / "accepted.jsonl")
    assert [a["metadata"]["distill"]["row"] for a in accepted] == [0, 1, 2, 6]
    corrected = accepted[2]
    assert corrected["messages"][-1] == {"role": "assistant", "content": "billing"}
    assert corrected["metadata"]["distill"]["human_reviewed"] is True
    assert corrected["metadata"]["distill"]["reviewer_label"] == "billing"
    assert corrected["metadata"]["distill"]["teacher_label"] == "other"
    assert corrected["metadata"]["distill"]["agreement"] == pytest.approx(1 / 3, abs=1e-3)
    assert accepted[0]["metadata"]["distill"]["human_reviewed"] is False
    assert load_examples(out / "accepted.jsonl").problems == []

    dataset = store.find_dataset_by_hash(file_hash(out / "accepted.jsonl"))
    assert dataset.id == applied.dataset_id and dataset.parent_id == first.dataset_id == applied.parent_id
    assert dataset.rows == 4 and dataset.meta["distilled"]["reviewed"] == 3 and dataset.meta["distilled"]["teacher"] == first.summary["teacher"]

    again = import_decisions(out, files.csv, store=store)  # the same file twice changes nothing
    assert sum(again.decisions.values()) == 0 and again.unchanged == 3 and again.dataset_id == applied.dataset_id

    # --all: every row, with the decisions made so far filled in; an accepted row can now be rejected.
    every = read_csv(export_queue(out, tmp_path / "all", all_rows=True).csv)
    assert len(every) == 7 and every[2]["decision"] == "correct" and every[2]["corrected_label"] == "billing"
    every[0]["decision"] = "reject"
    write_csv(tmp_path / "all" / "review.csv", every)
    later = import_decisions(out, tmp_path / "all" / "review.csv", store=store)
    assert dict(later.decisions) == {"reject": 1} and later.unchanged == 3 and later.counts["accepted"] == 3
    assert store.get_dataset(later.dataset_id).parent_id == applied.dataset_id


def test_a_rerun_of_label_into_the_folder_keeps_the_decisions(tmp_path, labeled, store):
    out, first = labeled
    files = export_queue(out, tmp_path / "review")
    write_csv(files.csv, decide(read_csv(files.csv), r1="accept", r2=":billing", r3="reject"))
    applied = import_decisions(out, files.csv, store=store)
    with serve_fake() as (url, _):  # every call but the broken row's is cached: the same replies
        again = label_rows(tmp_path / "in.jsonl", teacher=first.summary["teacher"], out_dir=out, labels=LABELS, store=store, yes=True)
    assert again.summary["reviews_kept"] == 3 and again.counts == applied.counts
    assert again.dataset_id == applied.dataset_id  # the same accepted.jsonl, byte for byte


def test_json_corrections_are_checked_and_canonical(tmp_path, store):
    from tunewise.errors import DataError
    from tests.distill.test_label import SCHEMA

    with serve_fake() as (url, _):
        data = write_jsonl(tmp_path / "in.jsonl", ["json garbled refund", "json badtype"])
        label_rows(data, teacher=f"endpoint:{url}#gpt-5-mini", out_dir=tmp_path / "out", schema=SCHEMA, store=store, yes=True)
    files = export_queue(tmp_path / "out", tmp_path / "review")
    records = read_csv(files.csv)
    records[0]["corrected_label"] = '{"urgent": false, "label": "refund"}'
    records[1]["corrected_label"] = '{"label": "nope"}'
    write_csv(files.csv, records)
    with pytest.raises(DataError, match=r"review.csv:3: corrected_label is not valid JSON for this task \(schema: 'nope' is not one of"):
        import_decisions(tmp_path / "out", files.csv, store=store)
    records[1]["decision"] = "accept"  # nothing to accept: no sample parsed
    records[1]["corrected_label"] = ""
    write_csv(files.csv, records)
    with pytest.raises(DataError, match="review.csv:3: row 1: the teacher gave no label to accept"):
        import_decisions(tmp_path / "out", files.csv, store=store)
    records[1]["decision"] = ""
    write_csv(files.csv, records)
    applied = import_decisions(tmp_path / "out", files.csv, store=store)
    assert read_jsonl(tmp_path / "out" / "accepted.jsonl")[0]["messages"][-1]["content"] == '{"label": "refund", "urgent": false}'
    assert applied.counts["accepted"] == 1 and applied.counts["queued"] == 1


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda r: r[1].update(row="99"), "review.csv:3: row 99 is not in"),
    (lambda r: r[0].update(decision="maybe"), "review.csv:2: decision 'maybe': use accept, reject or correct"),
    (lambda r: r[2].update(decision="correct", corrected_label="shipping"), "review.csv:4: corrected_label 'shipping' is not one of the 3 labels"),
    (lambda r: r[0].update(decision="correct"), "review.csv:2: row 1: decision correct needs a corrected_label"),
    (lambda r: r[1].update(teacher_label="refund"), "review.csv:3: row 2 changed since the export"),
    (lambda r: r.append({**r[0], "row": "5", "status": "failed"}), "review.csv:6: row 5 is failed, not queued"),
    (lambda r: r.append(dict(r[0])), "review.csv:6: row 1 appears twice"),
])
def test_bad_lines_are_one_line_errors_and_nothing_is_applied(tmp_path, labeled, capsys, edit, expected):
    out, _ = labeled
    files = export_queue(out, tmp_path / "review")
    records = decide(read_csv(files.csv), r1="accept", r2="reject", r3="reject", r4="accept")
    edit(records)
    write_csv(files.csv, records)
    before = {name: (out / name).read_bytes() for name in ("rows.jsonl", "accepted.jsonl", "summary.json")}
    with pytest.raises(SystemExit) as done:
        main(["distill", "review", "import", str(out), str(files.csv)])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1, err
    assert expected in err and str(files.csv) in err
    assert {name: (out / name).read_bytes() for name in before} == before  # validated first: nothing half applied


def test_cli_export_then_import_prints_the_counts(tmp_path, labeled, capsys):
    out, _ = labeled
    with pytest.raises(SystemExit) as done:
        main(["distill", "review", "export", str(out), "-o", str(tmp_path / "review")])
    assert done.value.code == 0 and "4 rows to review" in capsys.readouterr().out
    csv_path = tmp_path / "review" / "review.csv"
    write_csv(csv_path, decide(read_csv(csv_path), r1="ACCEPT", r3="reject"))
    with pytest.raises(SystemExit) as done:
        main(["distill", "review", "import", str(out), str(csv_path)])
    printed = capsys.readouterr().out
    assert done.value.code == 0
    assert "2 decisions applied (1 accepted, 0 corrected, 1 rejected)" in printed
    assert "now 3 accepted, 1 rejected, 2 still queued" in printed and "dataset ds" in printed


def test_a_folder_without_labels_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        main(["distill", "review", "export", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1 and "tunewise distill label" in err

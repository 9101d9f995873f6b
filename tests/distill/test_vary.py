"""Variations (`tunewise.distill.vary`): paraphrase under-represented labels, deduplicate, label; fake teacher, no network."""

from __future__ import annotations

import json

import pytest

from tests.distill.fake_teacher import serve_fake
from tests.distill.test_label import read_jsonl
from tunewise.distill.vary import vary_rows
from tunewise.errors import DataError

ROWS = [
    ("I was charged twice for the same order last week", "billing"),         # 1
    ("there is a charge on my card that I do not recognise", "billing"),     # 2
    ("why did you charge me a fee for the delivery", "billing"),             # 3
    ("the monthly charge went up without any notice at all", "billing"),     # 4
    ("a duplicate charge appeared on my statement this morning", "billing"),  # 5
    ("nearly the same refund request for the blue wool jacket I sent back last month", "refund"),  # 6 near duplicate
    ("blank refund form for the shoes that did not fit", "refund"),         # 7 empty reply
    ("drift please refund my order because it arrived very late", "refund"),  # 8 paraphrased as a charge
    ("where can I find the opening hours of your store downtown", "other"),  # 9
]


def write_labelled(path, rows):
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": label}]}) + "\n"
                            for text, label in rows))
    return path


@pytest.fixture
def fake():
    with serve_fake() as served:
        yield served


def vary(data, url, out, store, **kwargs):
    return vary_rows(data, teacher=f"endpoint:{url}#gpt-5-mini", out_dir=out, store=store, yes=True, **kwargs)


def test_under_represented_labels_get_new_rows_labelled_by_the_teacher(tmp_path, fake, store):
    from tunewise.store import file_hash

    url, server = fake
    data = write_labelled(tmp_path / "train.jsonl", ROWS)
    result = vary(data, url, tmp_path / "out", store, min_per_label=4, per_row=2)
    assert result.target == 4
    assert result.labels["billing"] == {"rows": 5, "target": 4, "new": 0, "short": 0}
    # other: one row, two paraphrases of it at most (per_row); refund: the near duplicate and the empty reply are
    # dropped, the third row's paraphrase is kept
    assert result.labels["other"] == {"rows": 1, "target": 4, "new": 2, "short": 1}
    assert result.labels["refund"] == {"rows": 3, "target": 4, "new": 1, "short": 0}
    assert result.counts == {"asked": 5, "kept": 3, "near_duplicates": 1, "exact_duplicates": 0, "empty": 1, "failed": 0}
    assert result.counts["asked"] == sum(v for k, v in result.counts.items() if k != "asked")

    new = read_jsonl(tmp_path / "out" / "variations.jsonl")
    assert [n["metadata"]["variation"]["source_line"] for n in new] == [9, 9, 8]
    assert {n["metadata"]["variation"]["paraphraser"] for n in new} == {f"endpoint:{url}#gpt-5-mini"}
    assert all(m["role"] == "user" for n in new for m in n["messages"])  # unlabelled: the teacher decides
    assert new[0]["messages"][0]["content"] != new[1]["messages"][0]["content"]

    dropped = read_jsonl(tmp_path / "out" / "variations.dropped.jsonl")
    assert [(d["source_line"], d["reason"]) for d in dropped] == [(6, "near_duplicate"), (7, "empty")]
    assert dropped[0]["detail"].startswith("near-duplicate (Jaccard 0.9") and f"line 6 of {data}" in dropped[0]["detail"]
    assert dropped[0]["text"].endswith(" thanks") and dropped[1]["text"] == ""

    labeled = result.labeled
    assert labeled.counts["rows"] == 3 and labeled.counts["accepted"] == 3
    accepted = read_jsonl(tmp_path / "out" / "accepted.jsonl")
    # the drifted paraphrase of a refund row is about a charge: labelled billing by the teacher, not refund
    assert [a["messages"][-1]["content"] for a in accepted] == ["other", "other", "billing"]
    dataset = store.find_dataset_by_hash(file_hash(tmp_path / "out" / "accepted.jsonl"))
    assert dataset.id == labeled.dataset_id and dataset.rows == 3
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["dataset_id"] == dataset.id and summary["variations"]["counts"] == result.counts
    lines = {a["metadata"]["distill"]["source_line"]: a for a in accepted}
    assert [(r["line"], r["source_line"], r["paraphrased_from_label"]) for r in summary["variations"]["rows"]] == \
        [(1, 9, "other"), (2, 9, "other"), (3, 8, "refund")] and set(lines) == {1, 2, 3}
    assert server.paraphrases == 5 and server.calls == 5 + 3 * 3
    assert result.requests == 5 and labeled.requests == 9


def test_a_rerun_pays_for_nothing_and_gives_the_same_rows(tmp_path, fake, store):
    url, server = fake
    data = write_labelled(tmp_path / "train.jsonl", ROWS)
    first = vary(data, url, tmp_path / "a", store, min_per_label=4, per_row=2)
    calls = server.calls
    again = vary(data, url, tmp_path / "b", store, min_per_label=4, per_row=2)
    assert server.calls == calls and again.requests == 0 and again.labeled.requests == 0
    assert again.cached == 5 and again.labeled.cached == 9 and again.counts == first.counts
    assert (tmp_path / "a" / "variations.jsonl").read_text() == (tmp_path / "b" / "variations.jsonl").read_text()


def test_exact_duplicates_failed_calls_and_duplicates_among_the_new_ones(tmp_path, fake, store):
    url, _ = fake
    rows = [(f"I was charged {n} times for one order this week", "billing") for n in ("two", "three", "four", "five")] + [
        ("verbatim copy of my question about the opening hours", "other"),
        ("broken link on the page about your store opening hours", "other"),
    ]
    data = write_labelled(tmp_path / "train.jsonl", rows)
    result = vary(data, url, tmp_path / "out", store)  # target: the median, 3 rows; other is short by one
    assert result.target == 3 and result.labels["other"]["new"] == 0 and result.labels["other"]["short"] == 1
    # each row is asked until it holds per_row=1 paraphrase or the 3 tries are spent
    assert result.counts == {"asked": 3, "kept": 0, "near_duplicates": 0, "exact_duplicates": 2, "empty": 0, "failed": 1}
    dropped = read_jsonl(tmp_path / "out" / "variations.dropped.jsonl")
    assert [(d["source_line"], d["reason"]) for d in dropped] == [(5, "exact_duplicate"), (6, "failed"), (5, "exact_duplicate")]
    assert "HTTP 500" in dropped[1]["error"] and dropped[1]["text"] is None
    assert f"exact duplicate of line 5 of {data}" == dropped[0]["detail"]
    assert result.labeled is None and (tmp_path / "out" / "variations.jsonl").read_text() == ""


def test_duplicates_within_one_batch_are_dropped_against_the_kept_one(tmp_path, fake, store):
    from tunewise.data.dedup import DedupIndex
    from tunewise.distill.teacher import Call
    from tunewise.distill.vary import _sort_out, _Source
    from tunewise.evaluate.tasks import Example

    def source(line, text):
        return _Source(Example(0, line, [{"role": "user", "content": text}], text, "x"), line, "x")

    index = DedupIndex()
    index.add(["an unrelated row about shipping to another country"])
    text = "my parcel never arrived and the tracking page shows nothing at all"
    batch = [(source(2, "a"), Call(text, 1, 1, None, 1.0)), (source(3, "b"), Call(text + " today", 1, 1, None, 1.0)),
             (source(4, "c"), Call('"' + text + '"', 1, 1, None, 1.0))]
    out = _sort_out(batch, index, ["an unrelated row about shipping to another country"], ["line 1 of data"],
                    lambda k: f"line {10 + k} of variations")
    assert [(o[3], o[4]) for o in out] == [
        (None, None), ("near_duplicate", "near-duplicate (Jaccard 0.91) of line 10 of variations"),
        ("exact_duplicate", "exact duplicate of line 10 of variations")]  # the quotes a model adds are not a difference


def test_a_request_cap_stops_paraphrasing_cleanly_and_a_rerun_goes_on(tmp_path, fake, store):
    url, server = fake
    data = write_labelled(tmp_path / "train.jsonl", ROWS)
    capped = vary(data, url, tmp_path / "out", store, min_per_label=4, per_row=2, max_requests=2)
    assert "max_requests 2 reached while paraphrasing" == capped.stopped and capped.labeled is None
    assert capped.requests == 2 == server.calls and capped.counts["asked"] == 2
    assert capped.counts["asked"] == sum(v for k, v in capped.counts.items() if k != "asked")
    done = vary(data, url, tmp_path / "out", store, min_per_label=4, per_row=2)
    assert done.cached == 2 and done.requests == 3 and done.stopped is None and done.labeled.counts["accepted"] == 3


def test_a_bad_line_is_one_error_naming_file_and_line(tmp_path, capsys):
    from tunewise.cli import main

    data = write_labelled(tmp_path / "train.jsonl", ROWS[:3])
    with data.open("a") as handle:
        handle.write("{not json\n")
    with pytest.raises(DataError, match=r"train\.jsonl:4: "):
        vary_rows(data, teacher="endpoint:http://127.0.0.1:9/v1#m", out_dir=tmp_path / "out", yes=True)
    unlabelled = tmp_path / "unlabelled.jsonl"
    unlabelled.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    with pytest.raises(SystemExit) as exited:
        main(["distill", "vary", str(unlabelled), "--teacher", "endpoint:http://127.0.0.1:9/v1#m", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert exited.value.code == 2 and len(err.splitlines()) == 1 and "unlabelled.jsonl:1: no label" in err, err


def test_a_paraphraser_that_answers_labels_is_refused(tmp_path):
    from tunewise.errors import ConfigError

    data = write_labelled(tmp_path / "train.jsonl", ROWS)
    with pytest.raises(ConfigError, match="--paraphraser"):
        vary_rows(data, teacher="knn-few-shot:smollm2-135m?k=4", out_dir=tmp_path / "out", yes=True)


def test_cli_prints_the_counts(tmp_path, fake, capsys):
    from tunewise.cli import main

    url, _ = fake
    data = write_labelled(tmp_path / "train.jsonl", ROWS)
    with pytest.raises(SystemExit) as exited:
        main(["distill", "vary", str(data), "--teacher", f"endpoint:{url}#gpt-5-mini", "--min-per-label", "4", "--per-row", "2",
              "--yes", "-o", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "5 paraphrases: 3 kept, 1 near duplicates, 0 exact duplicates, 1 empty, 0 failed" in out
    assert "other: 1 rows, 2 new, 1 short of 4" in out and "Labelled 3 new rows: 3 accepted" in out

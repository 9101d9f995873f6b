"""Labeling with a teacher (`tunewise.distill.label`) against the fake teacher on loopback; no network."""

from __future__ import annotations

import json

import pytest

from tests.distill.fake_teacher import serve_fake
from tunewise.distill.label import agreement_of, label_rows

LABELS = ["billing", "refund", "other"]
TEXTS = [
    "I was charged twice",           # 0 billing, accepted
    "please refund my order",        # 1 refund, accepted
    "unsure what this is, a charge?",  # 2 billing, billing, refund: 2/3 -> queued
    "broken request",                # 3 500 always -> failed
    "busy line, refund please",      # 4 429 once, then refund
    "hello there",                   # 5 other
]


def write_jsonl(path, texts):
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": t}]}) + "\n" for t in texts))
    return path


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def fake():
    with serve_fake() as served:
        yield served


def test_agreement_majority_and_free_text():
    assert agreement_of(["billing", "Label: billing", "refund"], LABELS) == ("billing", pytest.approx(2 / 3))
    assert agreement_of(["nothing", "at all"], LABELS) == (None, 0.0)
    label, score = agreement_of(["the same words", "the same words", "the same words"], None)
    assert label == "the same words" and score == 1.0
    assert agreement_of(["short", "an entirely different reply"], None)[1] < 0.5


def test_label_counts_order_retry_and_failures(tmp_path, fake, store):
    url, server = fake
    data = write_jsonl(tmp_path / "in.jsonl", TEXTS)
    result = label_rows(data, teacher=f"endpoint:{url}#gpt-5-mini", out_dir=tmp_path / "out", labels=LABELS,
                        store=store, yes=True, concurrency=3)
    rows = read_jsonl(tmp_path / "out" / "rows.jsonl")
    assert [r["index"] for r in rows] == list(range(len(TEXTS))) and [r["text"] for r in rows] == TEXTS
    assert [r["status"] for r in rows] == ["accepted", "accepted", "queued", "failed", "accepted", "accepted"]
    assert [r["label"] for r in rows] == ["billing", "refund", "billing", None, "refund", "other"]
    assert rows[2]["agreement"] == pytest.approx(2 / 3, abs=1e-3)  # just under 0.67 and len(rows[2]["samples"]) == 3
    assert "HTTP 500" in rows[3]["error"] and rows[3]["source"]["line"] == 4
    assert rows[4]["agreement"] == 1.0  # the 429 was retried, not counted as a failure
    assert result.counts == {"rows": 6, "accepted": 4, "queued": 1, "rejected": 0, "failed": 1, "not_started": 0}
    accepted = read_jsonl(tmp_path / "out" / "accepted.jsonl")
    assert [a["messages"][-1] for a in accepted][:2] == [{"role": "assistant", "content": "billing"}, {"role": "assistant", "content": "refund"}]
    assert all(m["role"] != "system" for a in accepted for m in a["messages"])  # the student sees the row, not the teacher's prompt
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["requests"] == 15 == server.calls and summary["cached"] == 0
    # one 429 per sample of the busy row; 4 bounded attempts for each of the broken row's 3 samples (asked at once)
    assert server.attempts == 15 + 3 + 3 * 4
    assert summary["cost_usd"] == pytest.approx(result.cost_usd) and result.cost_usd > 0  # gpt-5-mini is priced by the catalog


def test_accepted_set_is_a_registered_dataset_with_provenance_per_row(tmp_path, fake, store):
    from tunewise.data.formats import load_examples
    from tunewise.store import file_hash

    url, _ = fake
    data = write_jsonl(tmp_path / "in.jsonl", TEXTS)
    source = store.add_dataset(data, format="chat", rows=len(TEXTS), role="unlabeled")
    teacher = f"endpoint:{url}#gpt-5-mini"
    result = label_rows(data, teacher=teacher, out_dir=tmp_path / "out", labels=LABELS, store=store, yes=True)
    accepted_path = tmp_path / "out" / "accepted.jsonl"
    dataset = store.find_dataset_by_hash(file_hash(accepted_path))  # what `tunewise train --data` links a run to
    assert dataset.id == result.dataset_id == result.summary["dataset_id"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["dataset_id"] == dataset.id
    assert dataset.parent_id == source.id and dataset.rows == 4 and dataset.format == "chat" and dataset.role == "train"
    meta = dataset.meta["distilled"]
    assert meta["teacher"] == teacher and meta["accepted"] == 4 and meta["reviewed"] == 0
    assert meta["dir"] == str((tmp_path / "out").resolve()) and meta["source"] == str(data)
    assert meta["min_agreement"] == 0.67 and meta["samples"] == 3
    lines = read_jsonl(accepted_path)
    assert lines[0]["metadata"]["distill"] == {"teacher": teacher, "agreement": 1.0, "human_reviewed": False,
                                                 "source": str(data), "source_line": 1, "row": 0}
    assert [line["metadata"]["distill"]["row"] for line in lines] == [0, 1, 4, 5]
    loaded = load_examples(accepted_path)  # the provenance rides along: training reads the file as is
    assert loaded.problems == [] and len(loaded.records) == 4 and loaded.format == "chat"


def test_an_unregistered_input_has_no_parent_and_nothing_accepted_registers_nothing(tmp_path, fake, store):
    url, _ = fake
    data = write_jsonl(tmp_path / "in.jsonl", ["I was charged twice"])
    result = label_rows(data, teacher=f"endpoint:{url}#gpt-5-mini", out_dir=tmp_path / "a", labels=LABELS, store=store, yes=True)
    assert store.get_dataset(result.dataset_id).parent_id is None
    broken = write_jsonl(tmp_path / "broken.jsonl", ["broken request"])
    none = label_rows(broken, teacher=f"endpoint:{url}#gpt-5-mini", out_dir=tmp_path / "b", labels=LABELS, store=store, yes=True)
    assert none.dataset_id is None and none.summary["dataset_id"] is None and (tmp_path / "b" / "accepted.jsonl").read_text() == ""


def test_a_deployments_served_requests_are_the_inputs(tmp_path, fake, store):
    from tunewise.deploy.state import create_deployment

    url, _ = fake
    loaded = create_deployment("tickets", baseline="zero-shot:smollm2-135m", store=store)
    base = {"deployment_id": loaded.record.id, "version": loaded.version, "variant": "baseline",
            "spec": "zero-shot:smollm2-135m", "user_id": "u1", "response": "billing", "status": 200, "error": None, "latency_ms": 5.0}
    asked = [("served", 200, "I was charged twice by <EMAIL>"), ("shadow", 200, "shadow copy, refund"),
             ("served", 500, "a failed one"), ("served", 200, "please refund my order")]
    store.log_requests([{**base, "id": f"req-{i}", "role": role, "status": status,
                         "messages": [{"role": "system", "content": "Route it."}, {"role": "user", "content": text}]}
                        for i, (role, status, text) in enumerate(asked)])
    teacher = f"endpoint:{url}#gpt-5-mini"
    result = label_rows("deployment:tickets", teacher=teacher, out_dir=tmp_path / "out", labels=LABELS, store=store, yes=True)
    inputs = read_jsonl(tmp_path / "out" / "inputs.jsonl")
    assert [i["metadata"]["request_id"] for i in inputs] == ["req-0", "req-3"]
    assert all(m["role"] != "assistant" for i in inputs for m in i["messages"]) and inputs[0]["messages"][0]["role"] == "system"
    assert [r["label"] for r in result.rows] == ["billing", "refund"] and result.counts["accepted"] == 2
    assert result.rows[0]["text"] == "I was charged twice by <EMAIL>"  # as logged: redacted by the server
    assert result.summary["deployment"]["requests"] == 2 and result.summary["settings"]["data"] == "deployment:tickets"
    provenance = read_jsonl(tmp_path / "out" / "accepted.jsonl")[1]["metadata"]["distill"]
    assert provenance["source"] == "deployment:tickets" and provenance["request_id"] == "req-3" and provenance["source_line"] == 2
    dataset = store.get_dataset(result.dataset_id)
    assert dataset.meta["distilled"]["source"] == "deployment:tickets" and dataset.meta["distilled"]["deployment_id"] == loaded.record.id


def test_a_deployment_without_served_requests_is_one_line(tmp_path, capsys):
    from tunewise.cli import main
    from tunewise.deploy.state import create_deployment
    from tunewise.store import Store

    with Store.open() as opened:
        create_deployment("empty", baseline="zero-shot:smollm2-135m", store=opened)
    for name, expected in [("empty", "no served request to label"), ("missing", "missing")]:
        with pytest.raises(SystemExit) as done:
            main(["distill", "label", f"deployment:{name}", "--teacher", "endpoint:http://127.0.0.1:9/v1#m", "-o", str(tmp_path / "out")])
        err = capsys.readouterr().err.strip()
        assert done.value.code == 2 and len(err.splitlines()) == 1 and expected in err, err


def test_budget_stop_then_resume_from_cache(tmp_path, fake, store):
    url, server = fake
    texts = [f"charge number {i}" for i in range(10)]
    data = write_jsonl(tmp_path / "in.jsonl", texts)
    teacher = f"endpoint:{url}#gpt-5-mini"
    first = label_rows(data, teacher=teacher, out_dir=tmp_path / "a", labels=LABELS, max_requests=12, store=store, yes=True)
    assert first.counts == {"rows": 10, "accepted": 4, "queued": 0, "rejected": 0, "failed": 0, "not_started": 6}
    assert "max_requests" in first.stopped and first.requests == 12 == server.calls
    rows = read_jsonl(tmp_path / "a" / "rows.jsonl")
    assert [r["status"] for r in rows][4:] == ["not_started"] * 6 and all(r["samples"] == [] for r in rows[4:])
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["stopped"] == first.stopped

    # A price per request is known from the first run: a budget of 3 rows' worth stops after 3 more rows.
    per_request = first.cost_usd / first.requests
    second = label_rows(data, teacher=teacher, out_dir=tmp_path / "b", labels=LABELS, budget_usd=per_request * 9.5,
                        store=store, yes=True)
    assert second.cached == 12 and second.requests == 9 and second.counts["accepted"] == 7
    assert "budget_usd" in second.stopped and second.cost_usd <= per_request * 9.5

    third = label_rows(data, teacher=teacher, out_dir=tmp_path / "c", labels=LABELS, store=store, yes=True)
    assert third.cached == 21 and third.requests == 9 and server.calls == 30  # only the missing calls were paid
    assert third.counts["accepted"] == 10 and third.stopped is None
    assert third.summary["cached_cost_usd"] == pytest.approx(first.cost_usd + second.cost_usd)


def test_free_text_keeps_the_first_reply_and_scores_similarity(tmp_path, fake, store):
    url, _ = fake
    data = write_jsonl(tmp_path / "in.jsonl", ["summarise: a refund", "summarise: unsure"])
    result = label_rows(data, teacher=f"{url}#gpt-5-mini", out_dir=tmp_path / "out", store=store, yes=True)
    assert result.summary["task"] == "text" and result.summary["labels"] is None
    first, unsure = result.rows
    assert first["label"] == "Label: refund" and first["agreement"] == 1.0 and first["status"] == "accepted"
    assert unsure["label"] == unsure["samples"][0] == "Label: other" and 0 < unsure["agreement"] < 1


SCHEMA = {"type": "object", "required": ["label"],
          "properties": {"label": {"type": "string", "enum": LABELS}, "urgent": {"type": "boolean"}}}


def test_json_agreement_compares_canonical_forms_and_counts_invalid_samples_against():
    from tunewise.distill.label import _validator, json_agreement
    from tunewise.evaluate.tasks import Task

    validator = _validator(Task("json", schema=SCHEMA))
    a, b = '{"label": "refund", "urgent": true}', '```json\n{"urgent": true, "label": "refund"}\n```'
    assert json_agreement([a, b, "nope"], validator) == ('{"label": "refund", "urgent": true}', pytest.approx(2 / 3), None)
    label, agreement, error = json_agreement(['{"label": 3}', "nope"], validator)
    assert label is None and agreement == 0 and "schema" in error and "not of type 'string'" in error
    assert json_agreement(['{"label": 3}'], None)[:2] == ('{"label": 3}', 1.0)  # no schema: any JSON counts


def test_json_task_majority_of_schema_valid_parses(tmp_path, fake, store):
    url, _ = fake
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    texts = ["json: I was charged twice, urgent", "json unsure, a charge?", "json garbled refund", "json badtype refund"]
    data = write_jsonl(tmp_path / "in.jsonl", texts)
    result = label_rows(data, teacher=f"endpoint:{url}#gpt-5-mini", out_dir=tmp_path / "out", schema=schema, store=store, yes=True)
    assert result.summary["task"] == "json" and result.summary["schema"] == SCHEMA
    charged, unsure, garbled, badtype = result.rows
    assert charged["status"] == "accepted" and charged["agreement"] == 1.0  # keys in another order on odd seeds: one object
    assert charged["label"] == '{"label": "billing", "urgent": true}' and charged["samples"][0] != charged["samples"][1]
    assert unsure["status"] == "queued" and unsure["label"] == '{"label": "billing", "urgent": false}'
    assert unsure["agreement"] == pytest.approx(2 / 3, abs=1e-3)
    assert garbled["status"] == badtype["status"] == "queued" and garbled["label"] is None is badtype["label"]
    assert "no sample was valid JSON" in garbled["error"] and "not JSON" in garbled["error"]
    assert "schema" in badtype["error"] and badtype["agreement"] == 0
    assert result.counts["accepted"] == 1 and result.counts["queued"] == 3
    accepted = read_jsonl(tmp_path / "out" / "accepted.jsonl")
    assert json.loads(accepted[0]["messages"][-1]["content"]) == {"label": "billing", "urgent": True}


def test_json_task_from_json_teacher_data_without_a_schema(tmp_path, fake, store):
    url, _ = fake
    shots = tmp_path / "shots.jsonl"
    shots.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"ticket {i}"},
                                                      {"role": "assistant", "content": json.dumps({"label": "other", "n": i})}]}) + "\n"
                             for i in range(5)))
    data = write_jsonl(tmp_path / "in.jsonl", ["json badtype refund", "json garbled"])
    result = label_rows(data, teacher=f"endpoint:{url}#gpt-5-mini", teacher_data=shots, out_dir=tmp_path / "out", store=store, yes=True)
    assert result.summary["task"] == "json" and result.summary["schema"] is None
    assert [r["status"] for r in result.rows] == ["accepted", "queued"]  # no schema: any JSON is valid
    assert result.rows[0]["label"] == '{"label": 3, "urgent": false}'


def test_cli_json_schema_and_labels_together_is_one_line(tmp_path, fake, capsys):
    from tunewise.cli import main

    url, _ = fake
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    data = write_jsonl(tmp_path / "in.jsonl", ["json refund me"])
    args = ["distill", "label", str(data), "--teacher", f"endpoint:{url}#gpt-5-mini", "--json-schema", str(schema),
            "--yes", "-o", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 0
    assert read_jsonl(tmp_path / "out" / "rows.jsonl")[0]["label"] == '{"label": "refund", "urgent": false}'
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main([*args, "--labels", "a,b"])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1 and "--json-schema" in err
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SystemExit) as done:
        main([*args[:5], "--json-schema", str(tmp_path / "bad.json"), "--yes", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert done.value.code == 2 and len(err.splitlines()) == 1 and "bad.json" in err


def test_a_budget_needs_a_price(tmp_path, fake, store):
    from tunewise.errors import ConfigError

    url, _ = fake
    data = write_jsonl(tmp_path / "in.jsonl", ["hello"])
    with pytest.raises(ConfigError, match="budget-usd"):
        label_rows(data, teacher=f"endpoint:{url}#unpriced-model", out_dir=tmp_path / "out", budget_usd=1, store=store, yes=True)


def test_cli_csv_text_column_and_bad_column(tmp_path, fake):
    from tunewise.cli import main

    url, _ = fake
    csv = tmp_path / "tickets.csv"
    csv.write_text("id,body\n1,I was charged twice\n2,refund me\n3,hello\n")
    with pytest.raises(SystemExit) as done:
        main(["distill", "label", str(csv), "--text-column", "body", "--teacher", f"endpoint:{url}#gpt-5-mini",
              "--labels", "billing,refund,other", "--samples", "2", "--yes", "-o", str(tmp_path / "out")])
    assert done.value.code == 0
    rows = read_jsonl(tmp_path / "out" / "rows.jsonl")
    assert [r["label"] for r in rows] == ["billing", "refund", "other"] and rows[0]["source"]["line"] == 2
    assert (tmp_path / "out" / "accepted.jsonl").is_file() and (tmp_path / "out" / "summary.json").is_file()


def test_cli_bad_text_column_is_one_line(tmp_path, capsys):
    from tunewise.cli import main

    csv = tmp_path / "tickets.csv"
    csv.write_text("id,body\n1,I was charged twice\n")
    with pytest.raises(SystemExit) as done:
        main(["distill", "label", str(csv), "--text-column", "text", "--teacher", "endpoint:http://127.0.0.1:9/v1#m",
              "-o", str(tmp_path / "out")])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tickets.csv" in err and "'text'" in err


def test_a_local_spec_is_served_on_loopback_and_priced_by_time(tmp_path, tiny_model_dir, store):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"messages": [{"role": "user", "content": t}, {"role": "assistant", "content": label}]}) + "\n"
                             for t, label in [("charged twice", "billing"), ("refund me", "refund"), ("hi", "other")] * 6))
    data = write_jsonl(tmp_path / "in.jsonl", ["I was charged", "refund please", "hello"])
    spec = f"few-shot:{tiny_model_dir}?k=3&constrained=1"
    result = label_rows(data, teacher=spec, teacher_data=train, out_dir=tmp_path / "out", samples=2, store=store, yes=True)
    assert result.summary["labels"] and set(result.summary["labels"]) == {"billing", "refund", "other"}  # from the teacher's data
    assert all(r["label"] in LABELS for r in result.rows) and result.counts["failed"] == 0
    assert result.requests == 6 and result.cost_usd > 0  # measured time x hardware.hourly_usd
    again = label_rows(data, teacher=spec, teacher_data=train, out_dir=tmp_path / "again", samples=2, store=store, yes=True)
    assert again.requests == 0 and again.cached == 6


def test_retry_after_header():
    from tunewise.evaluate.candidates import retry_after

    assert retry_after("2") == 2.0 and retry_after("-1") == 0.0
    assert retry_after(None) is None and retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None

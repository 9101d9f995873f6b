"""The retrain loop: request logs exported as a dataset, and a promotion gated on a held-out evaluation."""

from __future__ import annotations

import json
from itertools import count

import pytest

from tunewise.cli import main
from tunewise.deploy.config import DeployConfig
from tunewise.deploy.logs import export_logs
from tunewise.deploy.promote import promote
from tunewise.deploy.state import create_deployment, load
from tunewise.errors import GateFailed
from tunewise.records.evaluation import CandidateResult, EvaluationResults, MetricValue
from tunewise.store import Store

BASELINE, CURRENT, NEW = "zero-shot:smollm2-135m", "adapter:run-1", "adapter:run-2"
_ids = count()


@pytest.fixture
def store(tmp_path):
    opened = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    yield opened
    opened.close()


def _deploy(store, name="tickets"):
    return create_deployment(name, baseline=BASELINE, candidates=[CURRENT], share=10, store=store)


def _log(store, loaded, n, *, variant="baseline", role="served", status=200, response="billing", messages=None):
    rows = [{"id": f"req-{next(_ids)}", "deployment_id": loaded.record.id, "version": loaded.version, "variant": variant,
             "spec": loaded.state.variant(variant).spec, "role": role, "user_id": f"u{i}",
             "messages": messages if messages is not None else [{"role": "user", "content": f"ticket {i} about <EMAIL>"}],
             "response": response if status == 200 else None, "status": status, "error": None if status == 200 else "boom",
             "latency_ms": 50.0} for i in range(n)]
    store.log_requests(rows)
    return [r["id"] for r in rows]


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_counts_add_up_and_the_file_is_a_dataset_of_the_deployment(store, tmp_path):
    loaded = _deploy(store)
    labelled = _log(store, loaded, 3)
    for rid in labelled:
        store.add_feedback(rid, correct=False)
        store.add_feedback(rid, label="refund")  # the last feedback counts
    confirmed = _log(store, loaded, 2, variant="candidate", response="shipping")
    for rid in confirmed:
        store.add_feedback(rid, correct=True)
    wrong = _log(store, loaded, 4)
    for rid in wrong:
        store.add_feedback(rid, correct=False)
    _log(store, loaded, 5)  # no feedback: the served reply, unreviewed
    _log(store, loaded, 6, status=500)
    _log(store, loaded, 7, variant="candidate", role="shadow")
    _log(store, loaded, 1, messages=[{"role": "system", "content": "be brief"}])

    out = tmp_path / "out" / "retrain.jsonl"
    exported = export_logs("tickets", out, store=store)
    assert (exported.logged, exported.labelled, exported.confirmed, exported.unreviewed) == (28, 3, 2, 5)
    assert (exported.needs_label, exported.errors, exported.shadow, exported.skipped) == (4, 6, 7, 8)
    assert exported.exported + exported.needs_label + exported.errors + exported.skipped == exported.logged
    rows = _read(out)
    assert len(rows) == 10
    assert [m["role"] for m in rows[0]["messages"]] == ["user", "assistant"]
    assert rows[0]["messages"][-1]["content"] == "refund" and rows[3]["messages"][-1]["content"] == "shipping"
    queue = _read(tmp_path / "out" / "retrain.needs-label.jsonl")
    assert [q["request_id"] for q in queue] == wrong and all(q["messages"][-1]["role"] == "user" for q in queue)
    dataset = store.get_dataset(exported.dataset_id)
    assert dataset.rows == 10 and dataset.format == "chat"
    assert {k: dataset.meta[k] for k in ("deployment_id", "deployment", "source")} == {
        "deployment_id": loaded.record.id, "deployment": "tickets", "source": "deploy export-logs"}

    only = export_logs("tickets", tmp_path / "labelled.jsonl", labeled_only=True, store=store)
    assert (only.exported, only.unreviewed, only.needs_label) == (5, 0, 9)
    assert only.exported + only.needs_label + only.errors + only.skipped == only.logged


def test_export_cli_prints_the_counts_and_the_redaction(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("TUNEWISE_DB_URL", url)
    opened = Store.open(url)
    try:
        _log(opened, _deploy(opened), 2)
    finally:
        opened.close()
    with pytest.raises(SystemExit) as exit_info:
        main(["deploy", "export-logs", "tickets", "-o", str(tmp_path / "r.jsonl"), "--since", "2000-01-01"])
    out = capsys.readouterr().out
    assert exit_info.value.code in (0, None)
    assert "2 logged = 2 exported" in out and "PII-redacted" in out and "registered as dataset" in out


# -- promotion -------------------------------------------------------------------------------------


def _gate(store, tmp_path, right: dict[str, list[bool]]) -> str:
    """A stored comparison of the given specs whose per-row outputs are right/wrong as given."""
    n = len(next(iter(right.values())))
    candidates = [CandidateResult(name=spec, spec=spec, kind=spec.split(":")[0], status="completed",
                                  metrics={"accuracy": MetricValue(value=sum(r) / n)}) for spec, r in right.items()]
    outputs = tmp_path / f"outputs-{next(_ids)}.jsonl"
    with outputs.open("w") as handle:
        for i in range(n):
            handle.write(json.dumps({"index": i, "line": i + 1, "input": f"ticket {i}", "reference": "billing", "candidates": {
                spec: {"output": "billing" if r[i] else "refund", "empty": False, "refused": False, "correct": r[i]}
                for spec, r in right.items()}}) + "\n")
    results = EvaluationResults(task_type="classification", primary_metric="accuracy", labels=["billing", "refund"],
                                verdict="-", candidates=candidates, confidence=0.95, bootstrap_samples=1000,
                                eval_path="held-out.jsonl", rows=n, hardware="test", outputs_path=str(outputs))
    record = store.add_evaluation(kind="compare", dataset_id=None, config={"alpha": 0.05}, results=results.to_store(),
                                  task_type="classification")
    return record.id


def test_a_worse_candidate_is_refused_with_both_accuracies(store, tmp_path):
    _deploy(store)
    gate = _gate(store, tmp_path, {NEW: [True] * 30 + [False] * 30, CURRENT: [True] * 45 + [False] * 15})
    with pytest.raises(GateFailed) as refused:
        promote("tickets", NEW, gate_evaluation=gate, store=store, config=DeployConfig())
    message = str(refused.value)
    assert "\n" not in message and "50.0%" in message and "75.0%" in message and "McNemar p<0.001" in message
    assert "needs" in message and "significantly better" in message
    assert load("tickets", store=store).version == 1  # nothing changed


def test_a_clearly_better_candidate_is_promoted_one_step(store, tmp_path):
    loaded = _deploy(store)
    gate = _gate(store, tmp_path, {NEW: [True] * 55 + [False] * 5, CURRENT: [True] * 30 + [False] * 30})
    promoted = promote("tickets", NEW, gate_evaluation=gate, store=store, config=DeployConfig())
    assert promoted.share_before == 10 and promoted.share_after == 25 and promoted.previous_spec == CURRENT
    state = load("tickets", store=store).state
    assert state.candidates[0].spec == NEW and state.candidates[0].share == 25 and state.baseline.spec == BASELINE
    event = store.deployment_events(loaded.record.id)[-1]
    assert event.action == "promote" and event.evaluation_id == gate and "91.7%" in event.reason and "50.0%" in event.reason


def test_a_margin_lets_an_equal_candidate_through(store, tmp_path):
    _deploy(store)
    same = [True] * 190 + [False] * 10
    gate = _gate(store, tmp_path, {NEW: same, CURRENT: same})
    with pytest.raises(GateFailed):
        promote("tickets", NEW, gate_evaluation=gate, store=store, config=DeployConfig())
    promoted = promote("tickets", NEW, gate_evaluation=gate, margin=0.02, store=store, config=DeployConfig())
    assert promoted.share_after == 25 and "margin" in promoted.reason


def test_promote_cli_unknown_deployment_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TUNEWISE_DB_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    for args in (["deploy", "promote", "missing", "--candidate", NEW, "--gate", "eval-1"],
                 ["deploy", "export-logs", "missing", "-o", str(tmp_path / "x.jsonl")]):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        captured = capsys.readouterr()
        text = (captured.out + captured.err).strip()
        assert exit_info.value.code == 2 and "no deployment 'missing'" in text
        assert "Traceback" not in text and len(text.splitlines()) == 1


def test_a_first_candidate_is_added_and_a_second_step_is_gated_against_the_baseline(store, tmp_path):
    loaded = create_deployment("solo", baseline=BASELINE, store=store)
    gate = _gate(store, tmp_path, {NEW: [True] * 55 + [False] * 5, BASELINE: [True] * 30 + [False] * 30})
    first = promote("solo", NEW, gate_evaluation=gate, store=store, config=DeployConfig())
    assert first.previous_spec is None and first.share_after == 10 and first.gate.reference == BASELINE
    second = promote("solo", NEW, gate_evaluation=gate, store=store, config=DeployConfig())
    assert second.share_before == 10 and second.share_after == 25 and second.gate.reference == BASELINE
    assert [e.action for e in store.deployment_events(loaded.record.id)] == ["create", "promote", "promote"]

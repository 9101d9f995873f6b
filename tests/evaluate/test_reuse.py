"""`evaluate(..., reuse=EVAL)` / `tunewise eval --reuse`: a candidate measured before is not run (or paid for) again."""

from __future__ import annotations

import json

import pytest

from tunewise.errors import EvaluationError
from tunewise.evaluate import evaluate

from .test_evaluate import FAST, _ChatHandler, endpoint, write_task  # noqa: F401 - endpoint is a fixture


def test_an_added_candidate_runs_and_the_measured_ones_keep_their_replies_and_cost(tmp_path, endpoint, store, capsys):
    train, evals = write_task(tmp_path)
    api = f"endpoint:{endpoint}#gpt-5-mini"
    first = evaluate(evals, [api], train_path=train, config=FAST, store=store, progress=False)
    paid = _ChatHandler.requests[0]

    second = evaluate(evals, [api, "classic:tfidf"], train_path=train, config=FAST, store=store, reuse=first.evaluation_id)
    assert _ChatHandler.requests[0] == paid  # not one request to the endpoint again
    before, after = first.candidate(api), second.candidate(api)
    assert after.metrics["accuracy"] == before.metrics["accuracy"]
    assert after.operations.cost_per_1k_usd == before.operations.cost_per_1k_usd
    assert after.operations.latency_p50_ms == before.operations.latency_p50_ms
    assert f"measured in evaluation {first.evaluation_id}" in after.operations.cost_basis
    assert second.candidate("classic:tfidf").status == "completed"  # the new one ran
    printed = capsys.readouterr().out
    assert f"reused from evaluation {first.evaluation_id}" in printed and "classic:tfidf: runs here (not in that evaluation)" in printed
    rows = [json.loads(line) for line in open(second.outputs_path)]
    earlier = [json.loads(line) for line in open(first.outputs_path)]
    assert [r["candidates"][api]["output"] for r in rows] == [r["candidates"][api]["output"] for r in earlier]

    # Another training file: the classifier learns from it, so it runs again; the zero-shot endpoint does not need it.
    (tmp_path / "other").mkdir()
    other_train, _ = write_task(tmp_path / "other", n_train=30)
    third = evaluate(evals, [api, "classic:tfidf"], train_path=other_train, config=FAST, store=store, reuse=second.evaluation_id)
    assert _ChatHandler.requests[0] == paid
    assert "another training file" in capsys.readouterr().out
    assert "measured in evaluation" not in third.candidate("classic:tfidf").operations.cost_basis


def test_reuse_is_refused_where_the_replies_would_differ(tmp_path, store):
    train, evals = write_task(tmp_path)
    first = evaluate(evals, ["classic:tfidf"], train_path=train, config=FAST, store=store, progress=False)
    longer_shots = FAST.model_copy(update={"shot_max_chars": 90})
    with pytest.raises(EvaluationError, match="eval.shot_max_chars differ"):
        evaluate(evals, ["classic:tfidf"], train_path=train, config=longer_shots, store=store, reuse=first.evaluation_id)
    with pytest.raises(EvaluationError, match="scored 12 eval rows and this evaluation scores 5"):
        evaluate(evals, ["classic:tfidf"], train_path=train, config=FAST.model_copy(update={"limit": 5}), store=store,
                 reuse=first.evaluation_id)
    (tmp_path / "other").mkdir()
    other_evals = tmp_path / "other" / "eval.jsonl"
    other_evals.write_text(evals.read_text().replace("today", "tonight"))
    with pytest.raises(EvaluationError, match="another eval file"):
        evaluate(other_evals, ["classic:tfidf"], train_path=train, config=FAST, store=store, reuse=first.evaluation_id)


def test_cli_reuse_latest(tmp_path, capsys):
    from tunewise.cli import main

    train, evals = write_task(tmp_path)
    for extra in ([], ["--reuse", "latest"]):
        with pytest.raises(SystemExit) as done:
            main(["eval", "--data", str(evals), "--train", str(train), "-c", "classic:tfidf", *extra])
        assert done.value.code == 0
    assert "reused from evaluation eval-" in capsys.readouterr().out

"""Deployment status, alert rules and their webhook, over synthetic request logs and feedback in a temp store."""

from __future__ import annotations

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from itertools import count

import numpy as np
import pytest
import typer
from scipy.spatial.distance import jensenshannon
from scipy.stats import binomtest
from typer.testing import CliRunner

from tunewise.deploy.alerts import evaluate_rules
from tunewise.deploy.config import AlertRule, DeployConfig
from tunewise.deploy.monitor import deployment_status, render_status
from tunewise.deploy.state import create_deployment
from tunewise.store import Store

LABELS = ["billing", "refund", "shipping"]
_ids = count()


@pytest.fixture
def store(tmp_path):
    opened = Store.open(f"sqlite:///{tmp_path / 's.db'}")
    yield opened
    opened.close()


def _deploy(store, *, eval_data=None, name="tickets"):
    return create_deployment(name, baseline="zero-shot:smollm2-135m", candidates=["adapter:run-1"], share=50,
                             eval_data=eval_data, store=store)


def _log(store, loaded, variant, n, *, errors=0, latencies=None, responses=None, correct=None, sticky=True,
         cost=None, role="served"):
    """`n` rows of `variant`: the first `errors` fail, `correct[i]` (if given) becomes feedback on row i."""
    spec = loaded.state.variant(variant).spec
    rows = []
    for i in range(n):
        rows.append({
            "id": f"req-{next(_ids)}", "deployment_id": loaded.record.id, "version": loaded.version, "variant": variant,
            "spec": spec, "role": role, "user_id": f"user-{i}" if sticky else None, "sticky": sticky,
            "messages": [{"role": "user", "content": "hi"}],
            "response": None if i < errors else (responses[i % len(responses)] if responses else "billing"),
            "status": 500 if i < errors else 200, "error": "boom" if i < errors else None,
            "latency_ms": float(latencies[i]) if latencies is not None else 100.0,
            "prompt_tokens": 20, "completion_tokens": 2, "cost_usd": cost,
        })
    store.log_requests(rows)
    if correct is not None:
        for row, ok in zip(rows, correct):
            store.add_feedback(row["id"], correct=bool(ok))
    return rows


def _judged(n, share_correct):
    right = round(n * share_correct)
    return [True] * right + [False] * (n - right)


def _eval_file(tmp_path, counts=(20, 20, 20)):
    path = tmp_path / "eval.jsonl"
    with path.open("w") as handle:
        for label, k in zip(LABELS, counts):
            for i in range(k):
                handle.write(json.dumps({"messages": [{"role": "user", "content": f"ticket {label} {i}"},
                                                      {"role": "assistant", "content": label}]}) + "\n")
    return path


def test_error_rate_latency_tokens_and_cost_per_variant(store):
    loaded = _deploy(store)
    _log(store, loaded, "baseline", 100, errors=7, latencies=np.arange(1, 101), cost=0.002)
    _log(store, loaded, "candidate", 20, sticky=False)
    status = deployment_status("tickets", store=store, config=DeployConfig())
    base, cand = status.variant("baseline"), status.variant("candidate")
    assert base.requests == 100 and base.sticky_requests == 100 and base.per_request == 0 and base.users == 100
    assert base.errors == 7 and base.error_rate == pytest.approx(0.07)
    assert base.p95_ms == pytest.approx(np.percentile(np.arange(1, 101), 95))
    assert base.p50_ms == pytest.approx(50.5)
    # The median's exact order-statistic interval: ranks 40 and 61 of 100 cover it with at least 95%.
    assert (base.p50_low_ms, base.p50_high_ms) == (40.0, 61.0)
    assert (cand.p50_low_ms, cand.p50_high_ms) == (100.0, 100.0)  # every request took 100 ms
    from rich.console import Console

    terminal = Console(width=200, record=True, file=open(os.devnull, "w"))
    terminal.print(render_status(status))
    assert "40–61" in terminal.export_text()
    assert base.mean_prompt_tokens == 20 and base.tokens_per_1k == pytest.approx(22_000)
    assert base.cost_per_1k_usd == pytest.approx(2.0)
    assert cand.requests == 20 and cand.per_request == 20 and cand.sticky_requests == 0 and cand.error_rate == 0
    assert cand.cost_per_1k_usd is None  # no row carries a cost
    assert status.state == loaded.state.summary() and status.events[-1]["action"] == "create"
    payload = json.loads(json.dumps(status.to_dict()))
    assert payload["variants"][0]["name"] == "baseline" and payload["variants"][0]["cost_per_1k_usd"] == pytest.approx(2.0)
    render_status(status)  # renders without error


def test_quality_is_the_share_correct_with_a_wilson_interval_and_the_last_feedback_counts(store):
    loaded = _deploy(store)
    rows = _log(store, loaded, "baseline", 100, correct=_judged(100, 0.9))
    store.add_feedback(rows[-1]["id"], correct=True)  # a later correction: the last one counts
    other = _log(store, loaded, "candidate", 3, responses=["Refund"])
    store.add_feedback(other[0]["id"], label=" refund ")  # label matches the reply after strip/casefold
    store.add_feedback(other[1]["id"], label="billing")
    store.add_feedback(other[2]["id"], score=4)
    status = deployment_status("tickets", store=store, config=DeployConfig())
    base = status.variant("baseline")
    assert base.feedback == 100 and base.correct == 91
    ci = binomtest(91, 100).proportion_ci(method="wilson")
    assert (base.quality, base.quality_low, base.quality_high) == pytest.approx((0.91, ci.low, ci.high))
    cand = status.variant("candidate")
    assert (cand.feedback, cand.correct) == (3, 2)
    assert status.verdicts and status.verdicts[0].startswith("no significant difference yet")
    assert "need more feedback" in status.verdicts[0]


def test_a_clearly_worse_candidate_fires_quality_drop_and_a_similar_one_does_not(store, tmp_path):
    rule = AlertRule(name="quality-drop", metric="quality_drop", threshold=0.0, variant="any", min_requests=30)
    loaded = _deploy(store)
    _log(store, loaded, "baseline", 200, correct=_judged(200, 0.9))
    _log(store, loaded, "candidate", 200, correct=_judged(200, 0.4))
    status = deployment_status("tickets", store=store, config=DeployConfig())
    comparison = status.comparison("candidate")
    assert comparison.significant and comparison.diff == pytest.approx(-0.5)
    assert comparison.low < -0.5 < comparison.high < 0
    assert status.verdicts[0].startswith("candidate is worse than baseline by 50.0 points (95% CI")
    fired = evaluate_rules("tickets", rules=[rule], store=store, config=DeployConfig(), send=False)
    assert [(f.rule, f.variant) for f in fired] == [("quality-drop", "candidate")]  # never the baseline itself
    assert fired[0].value == pytest.approx(50.0)
    assert store.alerts(loaded.record.id)[0].rule == "quality-drop"
    # a drop bigger than the threshold is needed
    strict = rule.model_copy(update={"threshold": 60.0})
    assert evaluate_rules("tickets", rules=[strict], store=store, config=DeployConfig(), send=False) == []

    similar = _deploy(store, name="similar")
    _log(store, similar, "baseline", 200, correct=_judged(200, 0.9))
    _log(store, similar, "candidate", 200, correct=_judged(200, 0.88))
    assert evaluate_rules("similar", rules=[rule], store=store, config=DeployConfig(), send=False) == []
    verdict = deployment_status("similar", store=store, config=DeployConfig()).verdicts[0]
    assert verdict.startswith("no significant difference yet") and "need more feedback" in verdict

    few = _deploy(store, name="few")
    _log(store, few, "baseline", 200, correct=_judged(200, 0.9))
    _log(store, few, "candidate", 10, correct=_judged(10, 0.0))  # below min_requests: not judged
    assert evaluate_rules("few", rules=[rule], store=store, config=DeployConfig(), send=False) == []


def test_drift_fires_when_output_labels_differ_from_the_eval_set(store, tmp_path):
    rule = AlertRule(name="label-drift", metric="drift", threshold=0.3, min_requests=30)
    loaded = _deploy(store, eval_data=str(_eval_file(tmp_path)))
    _log(store, loaded, "baseline", 60, responses=LABELS)  # like the eval set
    _log(store, loaded, "candidate", 60, responses=["billing", "Billing.", "billing", "refund"])
    status = deployment_status("tickets", store=store, config=DeployConfig())
    assert status.eval_labels == pytest.approx({label: 1 / 3 for label in LABELS})
    assert status.variant("baseline").drift == pytest.approx(0.0, abs=1e-6)
    expected = jensenshannon([0.75, 0.25, 0, 0], [1 / 3, 1 / 3, 1 / 3, 0], base=2)
    assert status.variant("candidate").drift == pytest.approx(expected)
    fired = evaluate_rules("tickets", rules=[rule], store=store, config=DeployConfig(), send=False)
    assert [(f.metric, f.variant) for f in fired] == [("drift", "candidate")]

    # free-text replies are not labels, and a deployment without an eval set has no drift
    prose = _deploy(store, name="prose", eval_data=str(tmp_path / "eval.jsonl"))
    _log(store, prose, "candidate", 40, responses=["I cannot say."])
    assert deployment_status("prose", store=store, config=DeployConfig()).variant("candidate").drift is None
    bare = _deploy(store, name="bare")
    _log(store, bare, "candidate", 40)
    assert deployment_status("bare", store=store, config=DeployConfig()).variant("candidate").drift is None


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    server.timeout = 5
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.received
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_firing_rule_is_posted_to_the_webhook_and_an_unreachable_one_is_recorded(store, receiver):
    url, received = receiver
    rule = AlertRule(name="errors", metric="error_rate", threshold=0.05, min_requests=30)
    loaded = _deploy(store)
    _log(store, loaded, "baseline", 50)
    _log(store, loaded, "candidate", 50, errors=10)
    fired = evaluate_rules("tickets", rules=[rule], store=store, config=DeployConfig(webhook_url=url, window_hours=6))
    assert len(fired) == 1 and fired[0].delivered is True and fired[0].delivery_error is None
    assert len(received) == 1
    payload = received[0]
    assert payload["deployment"] == "tickets" and payload["rule"] == "errors" and payload["metric"] == "error_rate"
    assert payload["variant"] == "candidate" and payload["value"] == pytest.approx(0.2) and payload["threshold"] == 0.05
    assert "error rate 20.0%" in payload["message"] and payload["window"]["hours"] == 6 and payload["fired_at"]
    alert = store.alerts(loaded.record.id)[0]
    assert alert.delivered is True and alert.details["rule"] == "errors"

    dead = f"http://127.0.0.1:{_free_port()}/hook"
    fired = evaluate_rules("tickets", rules=[rule], store=store, config=DeployConfig(webhook_url=dead))
    assert fired[0].delivered is False and fired[0].delivery_error
    alerts = store.alerts(loaded.record.id)
    assert len(alerts) == 2 and alerts[-1].delivered is False and alerts[-1].delivery_error
    status = deployment_status("tickets", store=store, config=DeployConfig())
    assert len(status.alerts) == 2


def test_monitor_once_exits_1_when_a_rule_fires_and_0_otherwise(isolated_workspace):
    from tunewise.cli.deploy_monitor import register

    app, deploy_app = typer.Typer(), typer.Typer()
    register(deploy_app, app)
    app.add_typer(deploy_app, name="deploy")
    runner = CliRunner()
    with Store.borrow(None) as default:
        quiet = _deploy(default, name="quiet")
        _log(default, quiet, "baseline", 40)
        _log(default, quiet, "candidate", 40)
        noisy = _deploy(default, name="noisy")
        _log(default, noisy, "baseline", 40)
        _log(default, noisy, "candidate", 40, errors=10)

    result = runner.invoke(app, ["monitor", "noisy", "--once"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("FIRED")]
    assert len(lines) == 1 and "error-rate [candidate]" in lines[0]
    result = runner.invoke(app, ["monitor", "quiet", "--once", "--window-hours", "2"])
    assert result.exit_code == 0, result.output
    assert "no alert rule fired" in result.output

    result = runner.invoke(app, ["deploy", "status", "noisy", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["name"] == "noisy" and len(data["alerts"]) == 1
    result = runner.invoke(app, ["deploy", "status", "noisy"])
    assert result.exit_code == 0 and "candidate" in result.output

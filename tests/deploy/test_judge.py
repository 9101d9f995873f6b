"""Judged quality in `deploy status --judge`: a fake OpenAI-compatible judge on loopback grades the logged replies."""

from __future__ import annotations

import json
import socket

import pytest
import typer
from fastapi import FastAPI, Request
from scipy.stats import binomtest
from typer.testing import CliRunner

from tunewise.deploy.config import DeployConfig
from tunewise.deploy.judge import judge_sample
from tunewise.deploy.monitor import deployment_status, render_status
from tunewise.evaluate.config import EvalConfig
from tunewise.serve.api import running
from tunewise.store import Store

from .test_monitor import _deploy, _log

MARKER = "great"  # the fake judge gives 5 to a reply containing it, 2 to any other
GARBAGE = "garble"  # ... and answers without a digit when the reply contains this
FAST = EvalConfig(endpoint_retries=0, endpoint_timeout_s=10)


def _fake_judge(asked: list[str]) -> FastAPI:
    app = FastAPI()
    app.state.startup_error = None

    @app.post("/v1/chat/completions")
    async def grade(request: Request):
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        asked.append(prompt)
        reply = prompt.rpartition("Reply to grade:\n")[2]
        text = "I would rather not say" if GARBAGE in reply else ("5" if MARKER in reply else "2")
        return {"id": "judge-1", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}

    return app


@pytest.fixture
def judge():
    """(URL#MODEL of the fake judge, the list of prompts it was asked to grade)."""
    asked: list[str] = []
    with running(_fake_judge(asked)) as port:
        yield f"http://127.0.0.1:{port}/v1#fake-judge", asked


def _replies(asked: list[str]) -> list[str]:
    return [prompt.rpartition("Reply to grade:\n")[2] for prompt in asked]


def test_judged_quality_per_variant_is_what_the_judge_says(store, judge):
    url, asked = judge
    loaded = _deploy(store)
    _log(store, loaded, "baseline", 30, responses=[f"a {MARKER} answer"])
    _log(store, loaded, "candidate", 30, errors=5, responses=["a so-so answer"])  # failed rows are never judged
    status = deployment_status("tickets", store=store, config=DeployConfig(), judge=url, judge_sample=20)
    base, cand = status.variant("baseline"), status.variant("candidate")
    assert (base.judged_n, base.judged_failures, base.judged_mean, base.judged_quality) == (20, 0, 5.0, 1.0)
    assert (cand.judged_n, cand.judged_failures, cand.judged_mean, cand.judged_quality) == (20, 0, 2.0, 0.0)
    ci = binomtest(20, 20).proportion_ci(method="wilson")
    assert (base.judged_low, base.judged_high) == pytest.approx((ci.low, ci.high))
    assert len(asked) == 40 and "a so-so answer" in _replies(asked)
    # live traffic without feedback has no reference: the prompt says so
    assert all("There is no reference answer" in prompt and "Reference answer:" not in prompt for prompt in asked)
    assert status.judge == url and status.judge_sample == 20
    assert any("fake-judge" in note and "up to 20" in note for note in status.notes)
    payload = json.loads(json.dumps(status.to_dict()))
    assert payload["variants"][0]["judged_quality"] == 1.0 and payload["variants"][1]["judged_n"] == 20
    assert payload["judge"] == url

    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render_status(status))
    assert "judged quality" in console.export_text()
    plain = deployment_status("tickets", store=store, config=DeployConfig())  # no judge: no row, no fields
    assert plain.variant("baseline").judged_quality is None and plain.variant("baseline").judged_n is None
    console = Console(width=200, record=True)
    console.print(render_status(plain))
    assert "judged quality" not in console.export_text()


def test_the_sample_is_bounded_per_variant_seeded_and_skips_shadow_and_failed_rows(store, judge):
    url, asked = judge
    loaded = _deploy(store)
    _log(store, loaded, "baseline", 90, responses=[f"baseline reply {i}" for i in range(90)])
    _log(store, loaded, "candidate", 12, errors=2, responses=[f"candidate reply {i}" for i in range(12)])  # a 10% share
    _log(store, loaded, "candidate", 20, role="shadow", responses=["shadow reply"])
    rows = store.request_logs(loaded.record.id, role=None)

    first = judge_sample(rows, url, sample=8, seed=1, config=FAST)
    picked = sorted(_replies(asked))
    assert {v: (j.available, j.sampled, j.n) for v, j in first.items()} == {"baseline": (90, 8, 8), "candidate": (10, 8, 8)}
    assert sum(r.startswith("candidate") for r in picked) == 8  # the small variant gets its own share of the sample
    assert "shadow reply" not in picked

    asked.clear()
    judge_sample(list(reversed(rows)), url, sample=8, seed=1, config=FAST)  # the same seed: the same rows
    assert sorted(_replies(asked)) == picked
    asked.clear()
    judge_sample(rows, url, sample=8, seed=2, config=FAST)
    assert sorted(_replies(asked)) != picked

    asked.clear()
    everything = judge_sample(rows, url, sample=500, seed=1, config=FAST)  # more than there is: all of them
    assert everything["candidate"].sampled == 10 and everything["baseline"].sampled == 90 and len(asked) == 100


def test_replies_the_judge_gives_no_number_are_counted_as_failures(store, judge):
    url, _ = judge
    loaded = _deploy(store)
    # 3 of every 4 replies are graded (two 5s and a 2), one gets no number
    _log(store, loaded, "candidate", 40, responses=[f"{MARKER} one", f"{MARKER} two", "plain", GARBAGE])
    rows = store.request_logs(loaded.record.id, role=None)
    judged = judge_sample(rows, url, sample=40, config=FAST)["candidate"]
    assert (judged.sampled, judged.n, judged.failures, judged.good) == (40, 30, 10, 20)
    assert judged.quality == pytest.approx(20 / 30) and judged.mean == pytest.approx((20 * 5 + 10 * 2) / 30)

    status = deployment_status("tickets", store=store, config=DeployConfig(), judge=url, judge_sample=40)
    assert status.variant("candidate").judged_failures == 10
    assert any("10 got no grade" in note for note in status.notes)

    # a judge that cannot be reached grades nothing: every sampled row is a failure, none is dropped
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1#fake-judge"
    gone = judge_sample(rows, dead, sample=5, config=FAST)["candidate"]
    assert (gone.sampled, gone.n, gone.failures, gone.quality) == (5, 0, 5, None)

    from tunewise.errors import EvaluationError

    with pytest.raises(EvaluationError, match="URL#MODEL"):
        judge_sample(rows, "http://127.0.0.1:1/v1", config=FAST)


def test_a_feedback_label_is_the_reference_the_judge_compares_with(store, judge):
    url, asked = judge
    loaded = _deploy(store)
    rows = _log(store, loaded, "baseline", 2, responses=["billing"])
    store.add_feedback(rows[0]["id"], label="refund")
    deployment_status("tickets", store=store, config=DeployConfig(), judge=url)
    with_reference = [p for p in asked if "Reference answer:\nrefund" in p]
    without = [p for p in asked if "There is no reference answer" in p]
    assert len(with_reference) == 1 and len(without) == 1


def test_deploy_status_with_a_judge_prints_the_judged_row(judge):
    from tunewise.cli.deploy_monitor import register

    url, _ = judge
    app, deploy_app = typer.Typer(), typer.Typer()
    register(deploy_app, app)
    app.add_typer(deploy_app, name="deploy")
    with Store.borrow(None) as default:
        loaded = _deploy(default)
        _log(default, loaded, "baseline", 10, responses=[f"{MARKER}!"])
        _log(default, loaded, "candidate", 10, responses=["meh"])
    runner = CliRunner()
    result = runner.invoke(app, ["deploy", "status", "tickets", "--judge", url, "--judge-sample", "5"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "judged quality" in result.output and "fake-judge" in result.output
    line = next(line for line in result.output.splitlines() if line.strip().startswith("judged quality"))
    assert "100.0%" in line and "0.0%" in line
    result = runner.invoke(app, ["deploy", "status", "tickets", "--json", "--judge", url, "--judge-sample", "5"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [v["judged_n"] for v in data["variants"]] == [5, 5] and data["judge_sample"] == 5
    result = runner.invoke(app, ["deploy", "status", "tickets"])
    assert result.exit_code == 0 and "judged quality" not in result.output

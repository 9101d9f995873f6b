"""A deployment served by `tunewise serve`: the app calls the deployment's name, the gateway picks, logs and obeys the store.

In-process tests run the official `openai` client over httpx's ASGI transport; one test serves over real
loopback HTTP, and one kills a server process with SIGKILL mid-load and checks the log lost no answered row.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import openai
import pytest

from tunewise.deploy.gateway import DeploymentGateway
from tunewise.deploy.state import create_deployment, set_deployment
from tunewise.serve.api import create_app, running
from tunewise.store import Store

from .fake_backend import VariantsBackend

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def store(tmp_path):
    opened = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


def deploy(store, share=10.0, **options):
    return create_deployment("tickets", baseline="served:base", candidates=["served:cand"], share=share, store=store, **options)


@asynccontextmanager
async def served(store, backend=None, name="tickets"):
    backend = backend or VariantsBackend()
    gateway = DeploymentGateway.open(name, store=store, seed=0)
    app = create_app([backend], deployments=[gateway])
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
            client = openai.AsyncOpenAI(base_url="http://test/v1", api_key="x", http_client=http, max_retries=0)
            yield client, http, gateway


def ask(text="where is my refund"):
    return [{"role": "user", "content": text}]


async def test_users_stick_to_their_variant_every_answer_is_logged_and_named_for_the_deployment(store):
    created = deploy(store, share=10)
    split = created.state.split()
    seen = {}
    async with served(store) as (client, _, _):
        for i in range(200):
            raw = await client.chat.completions.with_raw_response.create(model="tickets", messages=ask(f"q{i}"), user=f"user-{i % 50}")
            reply = raw.parse()
            variant = raw.headers["x-tunewise-variant"]
            assert reply.model == "tickets" and reply.id == raw.headers["x-request-id"]
            assert variant == split.pick(f"user-{i % 50}").variant  # the split the store holds, user by user
            assert reply.choices[0].message.content.startswith({"baseline": "base:", "candidate": "cand:"}[variant])
            assert seen.setdefault(f"user-{i % 50}", variant) == variant  # sticky
        headerless = await client.chat.completions.with_raw_response.create(model="tickets", messages=ask("no user"))
        by_header = await client.chat.completions.with_raw_response.create(model="tickets", messages=ask("header"),
                                                                            extra_headers={"X-User-Id": "user-3"})
        identifier = await client.chat.completions.with_raw_response.create(model="tickets", messages=ask("identifier"),
                                                                            extra_body={"safety_identifier": "user-3"})
    rows = store.request_logs(created.record.id)
    assert len(rows) == 203
    assert {r.id for r in rows} >= {headerless.headers["x-request-id"], by_header.headers["x-request-id"]}
    logged = {r.id: r for r in rows}
    assert logged[headerless.headers["x-request-id"]].sticky is False and logged[headerless.headers["x-request-id"]].user_id is None
    assert by_header.headers["x-tunewise-variant"] == identifier.headers["x-tunewise-variant"] == seen["user-3"]
    assert logged[by_header.headers["x-request-id"]].user_id == "user-3"
    row = logged[headerless.headers["x-request-id"]]
    assert row.status == 200 and row.version == 1 and row.response.endswith("no user") and row.latency_ms > 0
    assert row.prompt_tokens and row.cost_usd is not None and row.cost_usd >= 0


async def test_models_list_the_deployment_and_feedback_attaches_to_the_logged_request(store):
    created = deploy(store)
    async with served(store) as (client, http, _):
        models = [m.id for m in (await client.models.list()).data]
        raw = await client.chat.completions.with_raw_response.create(model="tickets", messages=ask(), user="u1")
        request_id = raw.headers["x-request-id"]
        ok = await http.post("/v1/feedback", json={"request_id": request_id, "label": "refund", "correct": True})
        unknown = await http.post("/v1/feedback", json={"request_id": "chatcmpl-nope", "correct": False})
        empty = await http.post("/v1/feedback", json={"request_id": request_id})
        bad_score = await http.post("/v1/feedback", json={"request_id": request_id, "score": 9})
        metrics = (await http.get("/metrics")).text
    assert models[0] == "tickets"
    assert ok.status_code == 200 and ok.json()["variant"] == raw.headers["x-tunewise-variant"]
    assert unknown.status_code == 404 and "x-request-id" in unknown.json()["error"]["message"]
    assert empty.status_code == 400 and "label" in empty.json()["error"]["message"]
    assert bad_score.status_code == 400 and bad_score.json()["error"]["param"] == "score"
    [feedback] = store.feedback(created.record.id)
    assert (feedback.request_id, feedback.label, feedback.correct) == (request_id, "refund", True)
    assert 'tunewise_deployment_requests_total{deployment="tickets",role="served",status="200"' in metrics
    assert "tunewise_feedback_total" in metrics


async def test_pii_never_reaches_the_log_unless_raw_logging_is_on(store, tmp_path):
    created = deploy(store)
    secret = "Hi, I am Jane Doe, mail jane.doe@example.com or call +1 415 555 0132 about my refund"
    async with served(store) as (client, _, _):
        await client.chat.completions.create(model="tickets", messages=ask(secret), user="jane.doe@example.com")
    [row] = store.request_logs(created.record.id)
    stored = str(row.messages) + (row.response or "") + (row.user_id or "")
    assert "jane.doe@example.com" not in stored and "555 0132" not in stored
    assert "[EMAIL]" in stored and row.redacted and row.pii_found >= 3
    assert row.user_id.startswith("user-")  # an email used as the user id is hashed, so stickiness stays countable

    raw_store = Store.open(f"sqlite:///{tmp_path / 'raw.db'}")
    try:
        raw = deploy(raw_store, log_raw=True)
        async with served(raw_store) as (client, _, _):
            await client.chat.completions.create(model="tickets", messages=ask(secret))
        [row] = raw_store.request_logs(raw.record.id)
        assert "jane.doe@example.com" in str(row.messages) and row.redacted is False
    finally:
        raw_store.close()


async def test_rollback_sends_everyone_to_the_baseline_within_a_second_without_a_restart(store):
    created = deploy(store, share=50)
    split = created.state.split()
    users = [f"u{i}" for i in range(400) if split.pick(f"u{i}").variant == "candidate"][:20]
    async with served(store) as (client, _, _):
        async def variants():
            out = set()
            for u in users:
                raw = await client.chat.completions.with_raw_response.create(model="tickets", messages=ask(), user=u)
                out.add(raw.headers["x-tunewise-variant"])
            return out

        assert await variants() == {"candidate"}
        started = time.perf_counter()
        await asyncio.to_thread(set_deployment, "tickets", rollback=True, reason="test", store=store)
        while await variants() != {"baseline"}:
            assert time.perf_counter() - started < 5, "rollback did not take effect"
            await asyncio.sleep(0.05)
        took = time.perf_counter() - started
        await asyncio.to_thread(set_deployment, "tickets", resume=True, store=store)
        resumed = time.perf_counter()
        while await variants() != {"candidate"}:
            assert time.perf_counter() - resumed < 5
            await asyncio.sleep(0.05)
    assert took < 1.0, f"rollback took {took:.2f} s"
    versions = {r.version for r in store.request_logs(created.record.id)}
    assert versions == {1, 2, 3}  # each row names the state that routed it


async def test_shadow_never_slows_or_changes_the_baseline_and_a_failing_shadow_never_reaches_the_client(store):
    created = deploy(store, share=10)
    set_deployment("tickets", shadow=True, store=store)
    slow = VariantsBackend(delays={"cand": 1.5})
    async with served(store, slow) as (client, _, gateway):
        started = time.perf_counter()
        replies = [await client.chat.completions.with_raw_response.create(model="tickets", messages=ask(f"q{i}"), user=f"u{i}")
                   for i in range(10)]
        took = time.perf_counter() - started
        for _ in range(100):  # the shadow copies finish in the background
            if len(store.request_logs(created.record.id, role="shadow")) == 10:
                break
            await asyncio.sleep(0.05)
    assert took < 1.0, f"the baseline took {took:.2f} s with a 1.5 s shadow candidate"
    assert {r.headers["x-tunewise-variant"] for r in replies} == {"baseline"}
    assert all(r.parse().choices[0].message.content.startswith("base:") for r in replies)
    shadows = store.request_logs(created.record.id, role="shadow")
    assert len(shadows) == 10 and {s.variant for s in shadows} == {"candidate"}
    assert {s.shadow_of for s in shadows} == {r.headers["x-request-id"] for r in replies}
    assert all(s.latency_ms >= 1500 for s in shadows)

    broken = VariantsBackend(failing=("cand",))
    async with served(store, broken) as (client, _, _):
        reply = await client.chat.completions.create(model="tickets", messages=ask("still fine"), user="u1")
        for _ in range(100):
            if any(s.status == 500 for s in store.request_logs(created.record.id, role="shadow")):
                break
            await asyncio.sleep(0.05)
    assert reply.choices[0].message.content == "base: still fine"
    assert any(s.status == 500 and "broken" in s.error for s in store.request_logs(created.record.id, role="shadow"))


async def test_a_failing_variant_is_an_error_the_log_and_headers_record(store):
    created = deploy(store, share=100)
    async with served(store, VariantsBackend(failing=("cand",))) as (client, http, _):
        raw = await http.post("/v1/chat/completions", json={"model": "tickets", "messages": ask(), "user": "u1"})
    assert raw.status_code == 500 and raw.headers["x-tunewise-variant"] == "candidate"
    [row] = store.request_logs(created.record.id)
    assert row.id == raw.headers["x-request-id"] and row.status == 500 and "broken" in row.error and row.cost_usd is None


async def test_a_stream_is_logged_before_done_and_speaks_for_the_deployment(store):
    created = deploy(store, share=0)
    async with served(store) as (client, _, _):
        stream = await client.chat.completions.create(model="tickets", messages=ask("stream me please"), stream=True, user="u1")
        chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    [row] = store.request_logs(created.record.id)
    assert text == row.response == "base: stream me please"
    assert row.stream and {c.model for c in chunks} == {"tickets"} and {c.id for c in chunks} == {row.id}


async def test_no_row_is_lost_with_16_concurrent_clients(store):
    created = deploy(store, share=25)
    async with served(store, VariantsBackend(delays={"base": 0.001, "cand": 0.001})) as (client, _, gateway):
        async def one_client(k):
            ids = []
            for i in range(15):
                raw = await client.chat.completions.with_raw_response.create(model="tickets", messages=ask(f"c{k} q{i}"), user=f"c{k}")
                ids.append(raw.headers["x-request-id"])
            return ids

        answered = [i for ids in await asyncio.gather(*(one_client(k) for k in range(16))) for i in ids]
        commits = gateway.writer.commits
    rows = store.request_logs(created.record.id)
    assert len(answered) == len(rows) == 240 and {r.id for r in rows} == set(answered)
    assert commits < 240  # concurrent rows shared commits


def test_over_real_http_with_the_sync_client(store):
    created = deploy(store, share=50)
    app = create_app([VariantsBackend()], deployments=[DeploymentGateway.open("tickets", store=store)])
    with running(app) as port:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(model="tickets", messages=ask("over the wire"), user="u7")
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/feedback", json={"request_id": raw.headers["x-request-id"], "score": 4})
    assert raw.parse().model == "tickets" and answer.status_code == 200
    [row] = store.request_logs(created.record.id)
    assert row.id == raw.headers["x-request-id"] and store.feedback(created.record.id)[0].score == 4


def test_a_server_killed_mid_load_lost_no_row_of_an_answered_request(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with Store.open(url) as store:
        created = deploy(store, share=30)
    port_file = tmp_path / "port"
    script = Path(__file__).with_name("fake_backend.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    server = subprocess.Popen([sys.executable, str(script), url, "tickets", str(port_file)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port_file.read_text()}/v1"
        answered: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def load(k):
            with httpx.Client(timeout=5) as http:
                for i in range(500):  # bounded in count and (below) in time
                    if stop.is_set():
                        return
                    try:
                        response = http.post(f"{base}/chat/completions", json={"model": "tickets", "messages": ask(f"{k}-{i}"), "user": f"u{k}"})
                    except httpx.HTTPError:
                        return  # the server died under us: this request got no answer
                    if response.status_code == 200:
                        with lock:
                            answered.append(response.headers["x-request-id"])

        threads = [threading.Thread(target=load, args=(k,)) for k in range(8)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(answered) < 150 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        stop.set()
        for thread in threads:
            thread.join(10)
    finally:
        if server.poll() is None:
            server.kill()
        server.stderr.close()
    assert len(answered) >= 50
    with Store.open(url) as store:
        logged = {r.id for r in store.request_logs(created.record.id)}
    assert set(answered) <= logged, f"{len(set(answered) - logged)} answered requests have no row"


async def test_a_rollback_in_the_served_web_app_moves_the_traffic_it_serves(store):
    """`tunewise serve --deployment tickets --ui --ui-allow-changes`: one process answers the app's calls at /v1 and
    the web app at /ui/; rolling back from the page sends every user to the baseline within a second."""
    import re

    from tunewise.serve import mount_ui
    from tunewise.serve.config import ServeConfig

    deploy(store, share=50)
    gateway = DeploymentGateway.open("tickets", store=store, seed=0)
    app = create_app([VariantsBackend()], deployments=[gateway])
    mount_ui(app, ServeConfig(ui=True, ui_allow_changes=True), store)

    async def variants(http, start: int) -> set[str]:
        seen = set()
        for i in range(start, start + 40):
            answer = await http.post("/v1/chat/completions", json={"model": "tickets", "messages": ask(f"q{i}"), "user": f"user-{i}"})
            seen.add(answer.headers["x-tunewise-variant"])
        return seen

    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            assert await variants(http, 0) == {"baseline", "candidate"}
            page = (await http.get("/ui/deployments/tickets")).text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            changed = await http.post("/ui/deployments/tickets/change", data={"action": "rollback", "confirm": "yes", "csrf": csrf,
                                                                             "who": "Ana", "reason": "candidate alert"})
            assert changed.status_code == 303 and changed.headers["location"].startswith("/ui/deployments/tickets?changed=2")
            deadline = time.monotonic() + 5
            while (seen := await variants(http, 100)) != {"baseline"} and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert seen == {"baseline"}
            after = (await http.get("/ui/deployments/tickets")).text
            assert "Ana via tunewise ui" in after and "candidate alert" in after

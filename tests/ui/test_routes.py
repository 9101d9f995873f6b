"""The web app in-process (Starlette's TestClient): every page over a small store, and the safety of its forms."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tunewise.ui import create_ui_app

from .conftest import BASELINE, TUNED


def client(store, **kwargs) -> TestClient:
    return TestClient(create_ui_app(store, **kwargs))


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_every_page_shows_the_records_real_values(store, built):
    web = client(store)
    assert "Datasets" in web.get("/").text and "tickets-ab" in web.get("/").text
    listing = web.get("/datasets").text
    assert built.train_id in listing and "tickets-clean" in listing

    page = web.get(f"/datasets/{built.train_id}")
    assert page.status_code == 200
    assert "imported from tickets.csv" in page.text
    assert f"cleaned into tickets-clean {built.clean_id}" in page.text  # lineage through parent_id
    assert "email" in page.text and ">3<" in page.text  # PII by type
    assert "2 suspected mislabels" in page.text and "rows per label" in page.text
    clean = web.get(f"/datasets/{built.clean_id}").text
    assert f"/datasets/{built.train_id}" in clean and f"/runs/{built.run_id}" in clean and f"/evaluations/{built.evaluation_id}" in clean

    runs = web.get("/runs").text
    assert built.run_id in runs and "$0.0123" in runs
    run = web.get(f"/runs/{built.run_id}").text
    assert "<svg" in run and 'data-series="loss"' in run and "eval_accuracy" in run and "0.002" in run
    compare = web.get(f"/runs/compare?a={built.run_id}&b={built.other_run_id}").text
    assert "0.004" in compare and f"{built.other_run_id} loss" in compare

    assert built.evaluation_id in web.get("/evaluations").text
    evaluation = web.get(f"/evaluations/{built.evaluation_id}").text
    assert "0.917" in evaluation and "0.750–1.000" in evaluation and "mcnemar-exact" in evaluation
    assert "ticket 5 about shipping" in evaluation and evaluation.count('id="row-') == 12
    failures = web.get(f"/evaluations/{built.evaluation_id}", params={"show": "failures", "a": TUNED}).text
    assert failures.count('id="row-') == 1 and 'id="row-5"' in failures
    disagree = web.get(f"/evaluations/{built.evaluation_id}", params={"show": "disagree", "a": TUNED, "b": BASELINE}).text
    assert disagree.count('id="row-') == 4  # rows 3, 5, 9, 11: the baseline said refund where the reference is not

    decision = web.get("/decision").text
    assert "<h3>7-step checklist</h3>" in decision and 'type="range"' in decision and "&lt;section" not in decision
    roi = web.get("/decision/roi", params={"volume": 5_000_000}).text
    assert "5,000,000" in roi and "$/month" in roi

    assert "tickets-ab" in web.get("/deployments").text
    deployment = web.get("/deployments/tickets-ab").text
    assert "<svg" in deployment and 'data-series="candidate"' in deployment
    assert "error rate 7.0% above 5.0%" in deployment and "first split" in deployment and "10%" in deployment
    assert "Read-only" in deployment and "<form method=\"post\"" not in deployment


def test_the_flagged_rows_come_from_the_audit_run_again_on_the_file(store, built):
    rows = client(store).get(f"/datasets/{built.train_id}/rows")
    assert rows.status_code == 200
    assert "jane.doe@example.com" in rows.text and "Duplicate clusters (1)" in rows.text
    assert len(store.list_datasets()) == 3  # nothing registered by looking


def test_missing_records_are_404(store, built):
    web = client(store)
    assert web.get("/datasets/ds-nope").status_code == 404
    assert web.get("/deployments/nope").status_code == 404


def test_read_only_refuses_every_post(store, built):
    web = client(store)
    answer = web.post(f"/deployments/{built.deployment}/change", data={"action": "rollback", "confirm": "yes", "csrf": "x"})
    assert answer.status_code == 403 and "read-only" in answer.text
    assert web.post(f"/evaluations/{built.evaluation_id}/rate", data={"row": 0, "candidate": TUNED, "rating": "5"}).status_code == 403
    assert store.get_deployment(built.deployment).version == 1


def test_posts_need_the_csrf_token_and_a_same_site_origin(store, built):
    web = client(store, allow_changes=True)
    token = csrf_of(web.get(f"/deployments/{built.deployment}").text)
    form = {"action": "rollback", "confirm": "yes"}
    assert web.post(f"/deployments/{built.deployment}/change", data=form).status_code == 403
    assert web.post(f"/deployments/{built.deployment}/change", data={**form, "csrf": "forged"}).status_code == 403
    evil = web.post(f"/deployments/{built.deployment}/change", data={**form, "csrf": token}, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and "cross-site" in evil.text
    assert web.post(f"/deployments/{built.deployment}/change", data={**form, "csrf": token, "confirm": ""}).status_code == 400
    assert store.get_deployment(built.deployment).version == 1
    # Another process's token does not work here either.
    assert token != csrf_of(client(store, allow_changes=True).get(f"/deployments/{built.deployment}").text)


def test_rollback_through_the_form_changes_the_deployment_and_records_an_event(store, built):
    from tunewise.deploy.state import load

    web = client(store, allow_changes=True)
    token = csrf_of(web.get(f"/deployments/{built.deployment}").text)
    answer = web.post(f"/deployments/{built.deployment}/change", data={"action": "rollback", "confirm": "yes", "csrf": token,
                                                                       "reason": "candidate alerts", "who": " Ana  Lima "},
                      headers={"Origin": "http://testserver"})
    assert answer.status_code == 200 and "now version 2" in answer.text  # followed the redirect
    loaded = load(built.deployment, store=store)
    assert loaded.state.mode == "off" and loaded.version == 2
    event = store.deployment_events(loaded.record.id)[-1]
    assert (event.action, event.reason, event.actor) == ("rollback", "candidate alerts", "Ana Lima via tunewise ui")
    assert "rolled back" in answer.text.lower() or "off" in answer.text

    share = web.post(f"/deployments/{built.deployment}/change", data={"action": "share", "share": "25", "variant": "candidate",
                                                                      "confirm": "yes", "csrf": token})
    assert share.status_code == 200
    loaded = load(built.deployment, store=store)
    assert loaded.state.mode == "split" and loaded.state.candidates[0].share == 25
    from tunewise.deploy.state import current_actor

    # No name typed: the account the web app runs under, and where the change came from.
    assert store.deployment_events(loaded.record.id)[-1].actor == f"{current_actor()} via tunewise ui"


def test_serve_ui_mounts_the_web_app_beside_the_api_in_one_process(store, built):
    """`tunewise serve --ui`: the pages at /ui/ (every link under it), the OpenAI API at /v1 as before."""
    from tunewise.serve import create_server
    from tunewise.serve.config import ServeConfig

    config = ServeConfig(ui=True, ui_allow_changes=True)
    app = create_server(None, config=config, upstreams=["elsewhere=http://127.0.0.1:9/v1#m"], store=store)
    with TestClient(app) as web:
        assert [m["id"] for m in web.get("/v1/models").json()["data"]] == ["elsewhere"]
        page = web.get(f"/ui/deployments/{built.deployment}").text
        assert 'href="/ui/runs"' in page and 'src="/ui/static/htmx.min.js"' in page
        assert f'action="/ui/deployments/{built.deployment}/change"' in page
        assert web.get("/ui/static/htmx.min.js").status_code == 200
        answer = web.post(f"/ui/deployments/{built.deployment}/change", follow_redirects=False,
                          data={"action": "rollback", "confirm": "yes", "csrf": csrf_of(page)})
        assert answer.status_code == 303 and answer.headers["location"].startswith(f"/ui/deployments/{built.deployment}?changed=")
    from tunewise.errors import ConfigError

    with pytest.raises(ConfigError, match="--ui-token"):
        create_server(None, config=ServeConfig(ui=True, host="0.0.0.0"), upstreams=["x=http://127.0.0.1:9/v1#m"], store=store)


def test_a_rating_is_stored_as_the_review_import_stores_it(store, built):
    from tunewise.evaluate.review import import_review
    from tunewise.records.evaluation import EvaluationResults

    web = client(store, allow_changes=True)
    token = csrf_of(web.get(f"/evaluations/{built.evaluation_id}").text)
    for row, rating in ((0, "5"), (1, "3")):
        answer = web.post(f"/evaluations/{built.evaluation_id}/rate", data={"row": row, "candidate": TUNED, "rating": rating, "csrf": token})
        assert answer.status_code == 200 and f"rated {rating}" in answer.text
    review = EvaluationResults.from_store(store.get_evaluation(built.evaluation_id).results).human_review
    assert review.candidates[TUNED].mean == pytest.approx(4.0) and review.candidates[TUNED].n == 2 and review.rows_rated == 2
    # The same file imported by the CLI's function gives the same summary.
    again = import_review(built.evaluation_id, review.file, store=store)
    assert again.candidates == review.candidates
    page = web.get(f"/evaluations/{built.evaluation_id}").text
    assert "rated 5" in page and "Human review" in page


def test_a_token_guards_every_request(store, built):
    web = client(store, token="s3cret")
    assert web.get("/").status_code == 401
    assert web.get("/?token=wrong").status_code == 401
    assert web.get("/?token=s3cret").status_code == 200
    assert web.get("/datasets").status_code == 200  # the cookie it set
    assert TestClient(create_ui_app(store, token="s3cret")).get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_other_host_names_are_refused_without_a_token(store, built):
    assert client(store).get("/", headers={"Host": "attacker.example"}).status_code == 403


def test_the_command_refuses_to_bind_beyond_loopback_without_a_token():
    from typer.testing import CliRunner

    from tunewise.cli import app
    from tunewise.ui.server import check_binding, ui_url

    result = CliRunner().invoke(app, ["ui", "--host", "0.0.0.0"])
    assert result.exit_code != 0
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", "t")
    assert ui_url("127.0.0.1", 8765) == "http://127.0.0.1:8765/"
    assert ui_url("0.0.0.0", 9, "a b") == "http://0.0.0.0:9/?token=a%20b"


def test_htmx_ships_with_the_package(store):
    web = client(store)
    script = web.get("/static/htmx.min.js")
    assert script.status_code == 200 and "htmx" in script.text[:200]

"""Deployments are created and changed through the library; every change is a new version and an event."""

import pytest
from sqlalchemy import create_engine, text

from tunewise.deploy.state import create_deployment, load, set_deployment
from tunewise.errors import ConfigError, NotFoundError, StoreError
from tunewise.store import Store


@pytest.fixture
def store(tmp_path):
    opened = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


def test_every_change_is_a_version_and_an_event_and_rollback_keeps_the_shares(store):
    created = create_deployment("tickets", baseline="knn-few-shot:smollm2-135m?k=8", candidates=["adapter:run-3f2a"],
                                share=10, store=store)
    assert created.version == 1 and created.state.candidates[0].share == 10
    set_deployment("tickets", share=25, store=store)
    rolled = set_deployment("tickets", rollback=True, store=store)
    assert rolled.state.mode == "off" and rolled.state.split().pick("u1").variant == "baseline"
    assert rolled.state.candidates[0].share == 25  # kept for the resume
    resumed = set_deployment("tickets", resume=True, store=store)
    assert resumed.state.mode == "split" and resumed.version == 4
    events = store.deployment_events(resumed.record.id)
    assert [(e.version, e.action) for e in events] == [(1, "create"), (2, "share"), (3, "rollback"), (4, "resume")]
    assert events[1].state["candidates"][0]["share"] == 25
    assert store.deployment_version(resumed.record.id) == 4
    assert load("tickets", store=store).state == resumed.state


def test_bad_changes_are_one_line_errors_and_change_nothing(store):
    create_deployment("tickets", baseline="zero-shot:smollm2-135m", candidates=["adapter:run-1"], share=10, store=store)
    with pytest.raises(ConfigError, match="less than or equal to 100"):
        set_deployment("tickets", share=120, store=store)
    with pytest.raises(ConfigError, match="classic candidates are not served"):
        create_deployment("other", baseline="classic:tfidf", store=store)
    with pytest.raises(StoreError, match="already exists"):
        create_deployment("tickets", baseline="zero-shot:smollm2-135m", store=store)
    with pytest.raises(NotFoundError):
        load("missing", store=store)
    assert load("tickets", store=store).version == 1


def test_a_store_of_the_first_schema_upgrades_with_its_deployments(tmp_path):
    from alembic import command
    from alembic.config import Config

    from tunewise.store import _MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(text("INSERT INTO deployments (id, name, status, config, traffic, requests_logged, created_at) "
                                "VALUES ('dep-1', 'old', 'active', '{}', '{}', 0, '2026-11-30 00:00:00')"))
    engine.dispose()
    upgraded = Store.open(url)
    from alembic.script import ScriptDirectory

    assert upgraded.revision() == ScriptDirectory.from_config(config).get_current_head()  # every migration after 0001 ran
    assert upgraded.get_deployment("old").version == 1
    upgraded.close()

"""The store keeps every record a user relies on, on SQLite and on a real PostgreSQL server."""

import pytest

from tunewise.errors import NotFoundError, StoreError
from tunewise.store import Store


def exercise(store: Store, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"messages": []}\n')
    dataset = store.add_dataset(data, format="chat", rows=1, meta={"labels": 3})
    assert store.add_dataset(data, format="chat", rows=1).id == dataset.id  # same bytes, same record
    assert store.get_dataset(data).id == dataset.id
    assert store.get_dataset(dataset.id[:6]).id == dataset.id

    audit = store.add_audit(dataset.id, {"pii": {"email": 2}}, passed=False)
    assert store.latest_audit(dataset.id).id == audit.id

    run = store.create_run("lora", base_model="smollm2-135m", dataset_id=dataset.id, config={"epochs": 1})
    store.update_run(run.id, status="running")
    store.add_run_step(run.id, 10, {"loss": 1.5})
    store.add_run_step(run.id, 20, {"loss": 0.9})
    store.update_run(run.id, status="completed", metrics={"final_loss": 0.9}, cost_usd=0.01)
    loaded = store.get_run(run.id)
    assert loaded.status == "completed" and loaded.started_at and loaded.finished_at
    assert [s.values["loss"] for s in store.run_steps(run.id)] == [1.5, 0.9]

    evaluation = store.add_evaluation(
        dataset_id=dataset.id,
        config={},
        results={"verdict": "x"},
        candidates=[{"name": "lora", "spec": f"adapter:{run.id}", "run_id": run.id, "metrics": {"accuracy": 0.8}}],
    )
    assert store.evaluation_candidates(evaluation.id)[0].run_id == run.id
    decision = store.add_decision("lora", reasons=["r"], facts={"n": 1}, money={"net": 5.0}, evaluation_id=evaluation.id)
    assert store.latest_decision().id == decision.id
    with pytest.raises(NotFoundError):
        store.get_run("run-missing")


def test_sqlite_store_round_trip(store, tmp_path):
    exercise(store, tmp_path)
    assert store.revision() == "0003"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_store_reopens_without_migrating_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Store.open(url).close()
    again = Store.open(url)
    assert again.revision() == "0003"


def test_unreadable_store_is_a_one_line_error(tmp_path):
    bogus = tmp_path / "not-a-db.sqlite"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError) as info:
        Store.open(f"sqlite:///{bogus}")
    assert "not-a-db.sqlite" in str(info.value) and "\n" not in str(info.value)


@pytest.fixture
def closed(monkeypatch):
    """The stores `Store.close` was called on, in order (the real close still runs)."""
    calls: list[Store] = []
    real = Store.close

    def close(self):
        calls.append(self)
        real(self)

    monkeypatch.setattr(Store, "close", close)
    return calls


def test_borrow_hands_back_a_given_store_and_leaves_it_open(store, closed):
    with Store.borrow(store) as borrowed:
        assert borrowed is store
    with pytest.raises(RuntimeError):
        with Store.borrow(store):
            raise RuntimeError("boom")
    assert closed == []
    assert store.list_runs() == []  # the caller still uses it


def test_borrow_opens_the_workspace_store_and_closes_it_after_the_block(closed):
    from tunewise.store import default_url

    with Store.borrow(None) as opened:
        assert str(opened.engine.url) == default_url()
        assert closed == []
        run = opened.create_run("lora", base_model="smollm2-135m", config={})
    assert closed == [opened]
    with Store.borrow(None) as again:
        assert again is not opened and again.get_run(run.id).id == run.id  # the same workspace store


def test_borrow_closes_the_store_it_opened_when_the_block_raises(closed):
    with pytest.raises(RuntimeError):
        with Store.borrow(None) as opened:
            raise RuntimeError("boom")
    assert closed == [opened]


@pytest.mark.postgres
def test_postgres_store_round_trip(fresh_postgres_url, tmp_path):
    store = Store.open(fresh_postgres_url)
    try:
        assert store.engine.dialect.name == "postgresql"
        exercise(store, tmp_path)
    finally:
        store.close()

"""Managed provider jobs against real local HTTP servers that speak OpenAI's and Together's APIs.

Each test scripts a job's lifecycle on the fake server and checks both sides: the requests tunewise
sent (auth header, multipart fields, JSON bodies) and what it stored (run status, model id, billed
tokens, cost, events as run steps). Polling and retry waits are recorded, not slept.
"""

from __future__ import annotations

import json
from datetime import date
from importlib import metadata

import pytest

from tunewise.errors import ConfigError, DataError, ProviderError
from tunewise.train import providers as registry
from tunewise.train.providers import PollSettings, cancel_provider_run, follow_provider_run, train_with_provider
from tunewise.train.providers.openai import OpenAIProvider
from tunewise.train.providers.together import TogetherProvider

from .fake_provider_servers import FakeOpenAI, FakeServer, FakeTogether, error_body, stage

TODAY = date(2026, 6, 20)
KEY = FakeServer.api_key


@pytest.fixture(scope="module")
def openai_server():
    server = FakeOpenAI()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def together_server():
    server = FakeTogether()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(openai_server):
    openai_server.reset()
    return openai_server


@pytest.fixture
def fake_together(together_server):
    together_server.reset()
    return together_server


@pytest.fixture
def waits():
    return []


@pytest.fixture
def poll(waits):
    return PollSettings(interval=0.01, max_interval=0.05, sleep=waits.append)


def rows(n: int) -> list[dict]:
    labels = ["billing", "refund", "login"]
    return [
        {"messages": [
            {"role": "system", "content": "Route the ticket to one team."},
            {"role": "user", "content": f"ticket {i}: my {labels[i % 3]} problem needs help"},
            {"role": "assistant", "content": labels[i % 3]},
        ]}
        for i in range(n)
    ]


@pytest.fixture
def data(tmp_path):
    train, valid = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows(12)), encoding="utf-8")
    valid.write_text("".join(json.dumps(r) + "\n" for r in rows(3)), encoding="utf-8")
    return train, valid


def openai(server, waits, **kw) -> OpenAIProvider:
    return OpenAIProvider(api_key=KEY, base_url=server.url, sleep=waits.append, backoff_seconds=0.5, **kw)


def together(server, waits) -> TogetherProvider:
    return TogetherProvider(api_key=KEY, base_url=server.url, sleep=waits.append, backoff_seconds=0.5)


OPENAI_SUCCESS = [
    stage("running", events=[{"message": "Fine-tuning job started"},
                             {"message": "Step 1/2: training loss=1.20", "type": "metrics",
                              "data": {"step": 1, "total_steps": 2, "train_loss": 1.2}}]),
    stage("succeeded", fine_tuned_model="ft:gpt-4o-mini-2024-07-18:acme:tickets:abc123", trained_tokens=120_000,
          events=[{"message": "Step 2/2: training loss=0.40", "type": "metrics",
                   "data": {"step": 2, "total_steps": 2, "train_loss": 0.4}},
                  {"message": "The job has successfully completed"}]),
]


# -- OpenAI ----------------------------------------------------------------------------------------------
def test_openai_success_sends_the_api_shapes_and_records_the_run(fake_openai, data, store, poll, waits):
    train, valid = data
    fake_openai.script = [dict(s) for s in OPENAI_SUCCESS]
    hp = {"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 0.5, "suffix": "tickets", "seed": 7}
    run = train_with_provider(openai(fake_openai, waits), model="gpt-4o-mini-2024-07-18", dataset=str(train),
                              eval_dataset=str(valid), hyperparameters=hp, yes=True, store=store, poll=poll, today=TODAY)

    uploads = fake_openai.routed("upload")
    assert [u.fields["purpose"] for u in uploads] == ["fine-tune", "fine-tune"]
    assert uploads[0].fields["file"] == ("train.jsonl", train.read_bytes())
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in fake_openai.requests)
    (create,) = fake_openai.routed("create")
    assert create.json == {
        "model": "gpt-4o-mini-2024-07-18", "training_file": "file-0001", "validation_file": "file-0002",
        "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3, "batch_size": 4,
                                                                            "learning_rate_multiplier": 0.5}}},
        "suffix": "tickets", "seed": 7,
    }
    assert fake_openai.routed("events")[0].query["limit"] == ["100"]

    assert run.kind == "provider" and run.provider == "openai" and run.status == "completed"
    assert run.provider_job_id == "ftjob-0003"
    assert run.provider_model_id == "ft:gpt-4o-mini-2024-07-18:acme:tickets:abc123"
    assert run.billed_tokens == 120_000
    assert run.cost_usd == pytest.approx(0.12 * 5)  # the catalog's $5/M gpt-4o-mini row, on the billed tokens
    assert run.dataset_id and run.eval_dataset_id and run.finished_at
    estimate = run.config["estimate"]
    assert estimate["epochs"] == 3 and estimate["tokens"] > 0 and estimate["billable_tokens"] == 3 * estimate["tokens"]
    messages = [s.values["message"] for s in store.run_steps(run.id)]
    assert messages == ["Validating training file", "Fine-tuning job started", "Step 1/2: training loss=1.20",
                        "Step 2/2: training loss=0.40", "The job has successfully completed"]
    assert store.run_steps(run.id)[2].values["data"]["train_loss"] == 1.2


def test_openai_failed_job_surfaces_the_error_and_stores_a_failed_run(fake_openai, data, store, poll, waits):
    fake_openai.script = [stage("running"), stage("failed", error={
        "code": "invalid_training_file", "param": "training_file",
        "message": "The job failed due to an invalid training file. Expected 'messages' key."},
        events=[{"level": "error", "message": "The job failed due to an invalid training file."}])]
    with pytest.raises(ProviderError, match=r"OpenAI job ftjob-\d+ failed: The job failed due to an invalid training file"):
        train_with_provider(openai(fake_openai, waits), model="gpt-4o-mini-2024-07-18", dataset=str(data[0]),
                            hyperparameters={}, yes=True, store=store, poll=poll, today=TODAY)
    (run,) = store.list_runs()
    assert run.status == "failed" and run.provider_model_id is None
    assert "invalid training file" in run.error and "invalid_training_file" in run.error


def test_openai_rate_limit_waits_the_retry_after_then_succeeds(fake_openai, data, store, poll, waits):
    fake_openai.script = [dict(s) for s in OPENAI_SUCCESS]
    limited = (429, error_body("Rate limit reached for requests", type="requests", code="rate_limit_exceeded"), {"Retry-After": "7"})
    fake_openai.faults["retrieve"] = [limited, limited]
    run = train_with_provider(openai(fake_openai, waits), model="gpt-4o-mini-2024-07-18", dataset=str(data[0]),
                              hyperparameters={"n_epochs": 2}, yes=True, store=store, poll=poll, today=TODAY)
    assert run.status == "completed"
    assert waits.count(7.0) == 2  # the provider's Retry-After, not our own backoff


def test_openai_invalid_file_is_one_line_with_the_providers_message(fake_openai, data, store, poll, waits):
    fake_openai.faults["upload"] = [(400, error_body("Invalid file format for Fine-Tuning API. Must be .jsonl",
                                                      code="invalid_file_format", param="file"), {})]
    with pytest.raises(ProviderError) as caught:
        train_with_provider(openai(fake_openai, waits), model="gpt-4o-mini-2024-07-18", dataset=str(data[0]),
                            hyperparameters={}, yes=True, store=store, poll=poll, today=TODAY)
    message = str(caught.value)
    assert message == ("OpenAI upload train.jsonl: HTTP 400: Invalid file format for Fine-Tuning API. Must be .jsonl "
                       "(code invalid_file_format, param file)")
    assert "\n" not in message
    assert not fake_openai.routed("create")
    (run,) = store.list_runs()
    assert run.status == "failed" and run.error == message


def test_server_errors_are_retried_with_backoff_and_reported_after_the_last_try(fake_openai, data, store, poll, waits):
    boom = (500, error_body("The server had an error while processing your request.", type="server_error"), {})
    fake_openai.script = [dict(s) for s in OPENAI_SUCCESS]
    fake_openai.faults["retrieve"] = [boom, boom]
    run = train_with_provider(openai(fake_openai, waits), model="gpt-4o-mini-2024-07-18", dataset=str(data[0]),
                              hyperparameters={}, yes=True, store=store, poll=poll, today=TODAY)
    assert run.status == "completed" and waits[:2] == [0.5, 1.0]

    provider = openai(fake_openai, waits, max_retries=2)
    fake_openai.faults["retrieve"] = [boom] * 3
    with pytest.raises(ProviderError, match=rf"OpenAI job {run.provider_job_id}: HTTP 500 after 3 tries: The server had an error"):
        provider.retrieve_job(run.provider_job_id)


def test_job_creation_is_not_retried_on_a_500(fake_openai, data, waits):
    provider = openai(fake_openai, waits)
    uploaded = provider.upload_file(data[0])
    fake_openai.faults["create"] = [(500, error_body("Internal error", type="server_error"), {})]
    with pytest.raises(ProviderError, match="OpenAI create job: HTTP 500: Internal error"):
        provider.create_job(model="gpt-4o-mini", training_file=uploaded.id)
    assert len(fake_openai.routed("create")) == 1  # a retried create could start a second paid job


def test_openai_refuses_new_jobs_after_the_reported_closure_date(data, store, poll, waits, fake_openai):
    official = OpenAIProvider(api_key=KEY, sleep=waits.append)
    with pytest.raises(ProviderError, match=r"no new self-serve fine-tuning jobs since 2027-01-06.*--provider together"):
        train_with_provider(official, model="gpt-4o-mini", dataset=str(data[0]), yes=True, store=store, poll=poll,
                            today=date(2027, 1, 6))
    assert store.list_runs() == []
    # A compatible endpoint (here the local server) is not OpenAI's and keeps working after that date.
    fake_openai.script = [dict(s) for s in OPENAI_SUCCESS]
    run = train_with_provider(openai(fake_openai, waits), model="gpt-4o-mini", dataset=str(data[0]), yes=True,
                              store=store, poll=poll, today=date(2027, 2, 1))
    assert run.status == "completed"


def test_base_url_and_key_come_from_the_environment(fake_openai, data, store, poll, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY"):
        train_with_provider("openai", model="gpt-4o-mini", dataset=str(data[0]), yes=True, store=store, poll=poll)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.url)
    fake_openai.script = [dict(s) for s in OPENAI_SUCCESS]
    run = train_with_provider("openai", model="gpt-4o-mini", dataset=str(data[0]), yes=True, store=store, poll=poll)
    assert run.status == "completed" and run.config["base_url"] == fake_openai.url


def test_a_paid_job_needs_confirmation_when_not_at_a_terminal(fake_openai, data, store, poll, waits):
    with pytest.raises(ConfigError, match="pass --yes"):
        train_with_provider(openai(fake_openai, waits), model="gpt-4o-mini", dataset=str(data[0]), yes=False,
                            store=store, poll=poll, today=TODAY)
    assert fake_openai.requests == [] and store.list_runs() == []


def test_bad_rows_are_all_reported_before_anything_is_uploaded(fake_openai, tmp_path, store, poll, waits):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(rows(1)[0])
    no_reply = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    path.write_text("\n".join([good, "{not json", no_reply, good]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"2 rows break the chat fine-tuning format \(line 2: not JSON.*\| line 3: "):
        train_with_provider(openai(fake_openai, waits), model="gpt-4o-mini", dataset=str(path), yes=True,
                            store=store, poll=poll, today=TODAY)
    assert fake_openai.requests == []


def test_unknown_hyperparameters_name_what_the_provider_takes(fake_openai, data, store, poll, waits):
    with pytest.raises(ConfigError, match=r"OpenAI does not take the hyperparameter 'lora_r' \(it takes: n_epochs"):
        train_with_provider(openai(fake_openai, waits), model="gpt-4o-mini", dataset=str(data[0]),
                            hyperparameters={"lora_r": 8}, yes=True, store=store, poll=poll, today=TODAY)


def test_following_again_after_a_timeout(fake_openai, data, store, waits, monkeypatch):
    fake_openai.script = [stage("running")]
    stuck = PollSettings(interval=0.01, timeout=0.0, sleep=waits.append)
    with pytest.raises(ProviderError, match=r"still running after 0s; it keeps running .*follow_provider_run"):
        train_with_provider(openai(fake_openai, waits), model="gpt-4o-mini", dataset=str(data[0]), yes=True,
                            store=store, poll=stuck, today=TODAY)
    (run,) = store.list_runs()
    assert run.status == "running" and run.provider_job_id
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.url)
    fake_openai.script = [stage("succeeded", fine_tuned_model="ft:gpt-4o-mini:acme::xyz", trained_tokens=900,
                                events=[{"message": "done"}])]
    run = follow_provider_run(run.id, store=store, poll=PollSettings(interval=0.01, sleep=waits.append))
    assert run.status == "completed" and run.provider_model_id == "ft:gpt-4o-mini:acme::xyz"
    assert [s.values["message"] for s in store.run_steps(run.id)] == ["Validating training file", "done"]


# -- Together --------------------------------------------------------------------------------------------
TOGETHER_MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"


def test_together_success_with_lora_settings_price_and_weights(fake_together, data, store, poll, waits, tmp_path):
    train, valid = data
    fake_together.script = [
        stage("queued"),
        stage("running", events=[{"message": "Training started", "type": "training_start", "step": 0, "total_steps": 10},
                                 {"message": "Epoch 1 complete", "type": "epoch_complete", "step": 5, "total_steps": 10}]),
        stage("compressing"),
        stage("completed", model_output_name="acme/Meta-Llama-3.1-8B-Instruct-Reference-tickets-1a2b",
              token_count=4321, total_price=2_500_000_000,
              events=[{"message": "Job finished at 2026-06-20", "type": "job_complete"}]),
    ]
    hp = {"n_epochs": 2, "learning_rate": 1e-5, "batch_size": 8, "lora_r": 8, "lora_alpha": 16, "suffix": "tickets", "seed": 3}
    run = train_with_provider(together(fake_together, waits), model=TOGETHER_MODEL, dataset=str(train),
                              eval_dataset=str(valid), hyperparameters=hp, yes=True, store=store, poll=poll,
                              price_row="together-llama-4-8b-lora")

    upload = fake_together.routed("upload")[0]
    assert {k: v for k, v in upload.fields.items() if k != "file"} == {"purpose": "fine-tune", "file_name": "train.jsonl",
                                                                        "file_type": "jsonl"}
    assert upload.fields["file"][1] == train.read_bytes()
    (create,) = fake_together.routed("create")
    assert create.json == {
        "model": TOGETHER_MODEL, "training_file": "file-0001", "validation_file": "file-0002", "n_evals": 1,
        "n_epochs": 2, "batch_size": 8, "learning_rate": 1e-5, "suffix": "tickets", "random_seed": 3,
        "training_type": {"type": "Lora", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
                          "lora_trainable_modules": "all-linear"},
        "training_method": {"method": "sft", "train_on_inputs": "auto"},
    }
    assert run.status == "completed" and run.provider == "together" and run.provider_job_id == "ft-0003"
    assert run.provider_model_id == "acme/Meta-Llama-3.1-8B-Instruct-Reference-tickets-1a2b"
    assert run.billed_tokens == 4321
    assert run.cost_usd == pytest.approx(2.5)  # total_price is in nanodollars; the provider's bill wins over the catalog
    assert run.metrics["cost_basis"] == "billed by Together"
    assert run.config["estimate"]["usd"] == 50.0 and run.config["estimate"]["tokens_are_estimate"] is True
    assert run.artifacts["download"].endswith("/finetune/download?ft_id=ft-0003&checkpoint=adapter")
    steps = [s.values for s in store.run_steps(run.id)]
    assert [s["type"] for s in steps] == ["job_pending", "training_start", "epoch_complete", "job_complete"]
    assert steps[2]["data"]["step"] == 5

    weights = together(fake_together, waits).download_weights(run.provider_job_id, tmp_path / "adapter.tar.zst")
    assert weights.read_bytes() == FakeTogether.weights
    assert fake_together.routed("download")[0].query == {"ft_id": ["ft-0003"], "checkpoint": ["adapter"]}


def test_together_full_fine_tune_and_defaults(fake_together, waits):
    provider = together(fake_together, waits)
    full = provider.build_job_request(model="m", training_file="f", validation_file=None, hyperparameters={"lora": False})
    assert full["training_type"] == {"type": "Full"}
    default = provider.build_job_request(model="m", training_file="f", validation_file=None, hyperparameters={"epochs": 3.0})
    assert "training_type" not in default and default["n_epochs"] == 3  # Together's default is a LoRA
    with pytest.raises(ConfigError, match="whole epochs"):
        provider.build_job_request(model="m", training_file="f", validation_file=None, hyperparameters={"epochs": 1.5})


def test_together_failed_job_takes_its_reason_from_the_events(fake_together, data, store, poll, waits):
    fake_together.script = [stage("running"), stage("error", events=[
        {"level": "error", "type": "job_error", "message": "Training data has no assistant turns to learn from"}])]
    with pytest.raises(ProviderError, match=r"Together job ft-\d+ failed: Training data has no assistant turns"):
        train_with_provider(together(fake_together, waits), model=TOGETHER_MODEL, dataset=str(data[0]), yes=True,
                            store=store, poll=poll)
    (run,) = store.list_runs()
    assert run.status == "failed" and "no assistant turns" in run.error


def test_together_rejected_upload(fake_together, data, store, poll, waits):
    fake_together.faults["upload"] = [(400, error_body("File is empty or not valid JSONL", param="file"), {})]
    with pytest.raises(ProviderError, match=r"^Together upload train.jsonl: HTTP 400: File is empty or not valid JSONL \(param file\)$"):
        train_with_provider(together(fake_together, waits), model=TOGETHER_MODEL, dataset=str(data[0]), yes=True,
                            store=store, poll=poll)


def test_together_rate_limited_events_and_cancel(fake_together, data, store, poll, waits, monkeypatch):
    fake_together.script = [stage("running")]
    run = train_with_provider(together(fake_together, waits), model=TOGETHER_MODEL, dataset=str(data[0]), yes=True,
                              store=store, poll=poll, follow=False)
    assert run.status == "running" and run.provider_job_id
    fake_together.faults["events"] = [(429, error_body("rate limited", type="rate_limit"), {"Retry-After": "3"})]
    assert [e.type for e in together(fake_together, waits).list_events(run.provider_job_id)] == ["job_pending"]
    assert waits == [3.0]
    monkeypatch.setenv("TOGETHER_API_KEY", KEY)
    monkeypatch.setenv("TOGETHER_BASE_URL", fake_together.url)
    assert cancel_provider_run(run.id, store=store).status == "running"  # cancel_requested until Together confirms
    with pytest.raises(ProviderError, match="was cancelled"):
        follow_provider_run(run.id, store=store, poll=poll)
    assert store.get_run(run.id).status == "cancelled"


# -- the registry ----------------------------------------------------------------------------------------
def test_providers_are_entry_point_plugins(monkeypatch):
    assert {"openai", "together"} <= set(registry.available_providers())
    plugin = metadata.EntryPoint(name="acme", value="tunewise.train.providers.together:TogetherProvider",
                                 group=registry.ENTRY_POINT_GROUP)
    broken = metadata.EntryPoint(name="broken", value="tunewise.errors:ProviderError", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: [plugin, broken] if group == registry.ENTRY_POINT_GROUP else [])
    assert registry.provider_class("acme") is TogetherProvider
    assert registry.provider_class("openai") is OpenAIProvider  # built-ins still resolve
    with pytest.raises(ConfigError, match="not a tunewise Provider subclass"):
        registry.provider_class("broken")
    with pytest.raises(ConfigError, match=r"unknown provider 'nope' \(available: acme, broken, openai, together\)"):
        registry.provider_class("nope")

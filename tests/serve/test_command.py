"""`tunewise serve` as a user runs it: flags checked before anything loads, one-line errors, keys, recipes that serve
exactly what `tunewise eval` measured, and an evaluation replayed over real HTTP."""

from __future__ import annotations

import json

import pytest

from tunewise.cli import main
from tunewise.errors import ConfigError, TunewiseError
from tunewise.serve import build_backends, create_server, parse_pairs, serve

LABELS = ["billing", "refund", "outage"]


def run_main(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_served_names_and_pairs_are_checked_before_anything_loads():
    assert parse_pairs(["a=run-1", "b = ./x"], "--adapter") == {"a": "run-1", "b": "./x"}
    with pytest.raises(ConfigError, match="expected NAME=VALUE"):
        parse_pairs(["run-1"], "--adapter")
    with pytest.raises(ConfigError, match="given twice"):
        parse_pairs(["a=1", "a=2"], "--adapter")
    with pytest.raises(ConfigError, match="invalid served name"):
        build_backends("m", adapters={"../../etc": "x"})
    with pytest.raises(ConfigError, match="both as an adapter and as a recipe"):
        build_backends("m", adapters={"t": "x"}, recipes={"t": "zero-shot:m"})
    with pytest.raises(ConfigError, match="--recipe runs on the local backend"):
        build_backends("m", recipes={"r": "zero-shot:m"}, backend="vllm", vllm_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="choose one of local, vllm"):
        build_backends("m", backend="tgi")


def test_a_model_that_cannot_load_is_one_line_not_a_traceback(capsys, tmp_path):
    code, out, err = run_main(["serve", "--model", str(tmp_path / "missing-model"), "--port", "0"], capsys)
    assert code == 2
    assert "Traceback" not in err and "missing-model" in err
    with pytest.raises(TunewiseError):
        serve(str(tmp_path / "missing-model"))


def test_add_key_prints_the_key_once_and_the_server_then_requires_it(capsys, tmp_path, served_base_dir):
    import httpx

    from tunewise.serve.config import ServeConfig

    keys = tmp_path / "keys.txt"
    code, out, err = run_main(["serve", "add-key", "--api-key-file", str(keys), "--label", "billing-app"], capsys)
    assert code in (0, None)
    key = out.strip()
    assert key.startswith("tw-") and key not in keys.read_text() and "billing-app" in keys.read_text()

    app = create_server(str(served_base_dir), config=ServeConfig(api_key_file=str(keys)))
    transport = httpx.ASGITransport(app=app)

    async def call(headers):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get("/v1/models", headers=headers)).status_code

    import asyncio

    assert asyncio.run(call({})) == 401
    assert asyncio.run(call({"Authorization": "Bearer wrong"})) == 401
    assert asyncio.run(call({"Authorization": f"Bearer {key}"})) == 200


@pytest.fixture
def ticket_files(tmp_path):
    def rows(n, offset):
        return [{"messages": [{"role": "user", "content": f"ticket {i}: my {LABELS[i % 3]} problem number {i}"},
                              {"role": "assistant", "content": LABELS[i % 3]}]} for i in range(offset, offset + n)]

    train, evalset = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows(18, 0)))
    evalset.write_text("".join(json.dumps(r) + "\n" for r in rows(6, 100)))
    return train, evalset


def test_a_recipe_serves_what_the_evaluation_measured_over_real_http(served_base_dir, ticket_files, store):
    """Evaluate a few-shot candidate, serve the same spec as a recipe, replay the eval rows through it over loopback."""
    from tunewise.evaluate import evaluate
    from tunewise.serve.api import running
    from tunewise.serve.config import ServeConfig
    from tunewise.serve.replay import replay_evaluation

    train, evalset = ticket_files
    spec = f"few-shot:{served_base_dir}?k=3&constrained=1"
    results = evaluate(evalset, [spec], train_path=train, store=store, progress=False)
    app = create_server(str(served_base_dir), recipes={"tickets-fs": spec}, recipe_data=str(train),
                        config=ServeConfig(port=0, batch_wait_ms=20), store=store)
    with running(app) as port:
        url = f"http://127.0.0.1:{port}/v1"
        import openai

        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
        card = client.models.retrieve("tickets-fs")
        assert card.model_extra["parent"] == served_base_dir.name
        reply = client.chat.completions.create(model="tickets-fs", messages=[{"role": "user", "content": "ticket: my refund problem"}])
        assert reply.choices[0].message.content in LABELS  # constrained decoding: only a label can be spelled

        replay = replay_evaluation(url, "tickets-fs", results.evaluation_id, results.candidates[0].name, store=store, concurrency=4)
        assert replay.requests == 6 and replay.same_replies == 6
        assert replay.served == pytest.approx(replay.evaluated)


def test_an_adapter_is_named_by_run_id_folder_or_the_runs_gguf_export(store, adapter_dirs, tmp_path):
    from tunewise.serve.local import resolve_adapter
    from tunewise.serve.mixed_lora import AdapterLoadError

    run = store.create_run("lora", base_model="tiny", config={})
    gguf = tmp_path / "tickets.gguf"
    gguf.write_bytes(b"GGUF")
    store.update_run(run.id, status="completed", artifacts={"adapter": str(adapter_dirs["alpha"]), "gguf": str(gguf)})

    assert resolve_adapter(run.id, store) == (adapter_dirs["alpha"], run.id)
    assert resolve_adapter(run.id[:8], store) == (adapter_dirs["alpha"], run.id)  # a prefix, as `tunewise runs` shows
    assert resolve_adapter(str(gguf), store) == (adapter_dirs["alpha"], run.id)
    assert resolve_adapter(str(adapter_dirs["beta"]), store) == (adapter_dirs["beta"], None)
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF")
    with pytest.raises(AdapterLoadError, match="serve it with --model"):
        resolve_adapter(str(other), store)
    with pytest.raises(AdapterLoadError, match="not an adapter folder or a run"):
        resolve_adapter("run-nope", store)

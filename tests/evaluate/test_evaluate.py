"""`evaluate()` and `tunewise eval` end to end on tiny data: classic, prompt, adapter and endpoint candidates,
contamination refusal, failed endpoints, the store round trip and the CLI."""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tunewise.errors import EvaluationError
from tunewise.evaluate import EvalConfig, evaluate

WORDS = {
    "billing": ["invoice", "charge", "payment", "card", "price", "receipt"],
    "bug": ["crash", "error", "broken", "fails", "exception", "freeze"],
    "login": ["password", "login", "signin", "locked", "2fa", "reset"],
}
FILLER = ["today", "again", "team", "please", "urgent", "since", "monday", "office", "phone", "laptop", "yesterday",
          "customer", "account", "weekly", "report", "manager", "quickly", "still", "after", "update", "friday", "client"]
FAST = EvalConfig(bootstrap_samples=200, batch_size=8, endpoint_retries=1, endpoint_backoff_s=0.01, endpoint_timeout_s=2)


def _row(label: str, rng: random.Random) -> dict:
    words = rng.sample(WORDS[label], 3) + rng.sample(FILLER, 6)
    rng.shuffle(words)
    return {"messages": [
        {"role": "system", "content": "Classify the ticket."},
        {"role": "user", "content": " ".join(words)},
        {"role": "assistant", "content": label},
    ]}


def write_task(folder: Path, n_train: int = 45, n_eval: int = 12) -> tuple[Path, Path]:
    rng = random.Random(0)
    labels = list(WORDS)
    train, evals = folder / "train.jsonl", folder / "eval.jsonl"
    train.write_text("".join(json.dumps(_row(labels[i % 3], rng)) + "\n" for i in range(n_train)))
    evals.write_text("".join(json.dumps(_row(labels[i % 3], rng)) + "\n" for i in range(n_eval)))
    return train, evals


@pytest.fixture
def task_files(tmp_path):
    return write_task(tmp_path)


@pytest.fixture
def one_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is faster and immune to a busy machine
    yield
    torch.set_num_threads(previous)


class _ChatHandler(BaseHTTPRequestHandler):
    answers: dict = {}
    failures_left = [0]
    requests = [0]

    def do_POST(self):  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests[0] += 1
        if self.failures_left[0] > 0:
            self.failures_left[0] -= 1
            self.send_response(503)
            self.end_headers()
            return
        text = body["messages"][-1]["content"]
        label = next((lab for lab, words in WORDS.items() if any(w in text.split() for w in words)), "billing")
        reply = {"choices": [{"message": {"role": "assistant", "content": label}}], "usage": {"prompt_tokens": 50, "completion_tokens": 2}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    _ChatHandler.failures_left[0] = 1  # the first request gets a 503: the client must retry
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_classic_and_endpoint_with_a_down_endpoint_reported_as_failed(task_files, endpoint, store):
    train, evals = task_files
    down = f"endpoint:http://127.0.0.1:{_closed_port()}/v1#gpt-4o"
    results = evaluate(evals, ["classic:tfidf", f"endpoint:{endpoint}#gpt-5-mini", down], train_path=train, config=FAST, store=store, progress=False)
    by_kind = {c.name: c for c in results.candidates}
    classic = by_kind["classic:tfidf"]
    assert classic.status == "completed"
    assert classic.metrics["accuracy"].value >= 0.9
    ok = by_kind[f"endpoint:{endpoint}#gpt-5-mini"]
    assert ok.status == "completed" and ok.metrics["accuracy"].value == 1.0
    # Priced from the catalog: gpt-5-mini base $0.25/M in, $2/M out; 50 in + 2 out tokens per request.
    assert ok.operations.cost_per_1k_usd == pytest.approx(1000 * (50 * 0.25 + 2 * 2.0) / 1e6)
    failed = by_kind[down]
    assert failed.status == "failed" and "cannot connect" in failed.error
    assert results.baseline == f"endpoint:{endpoint}#gpt-5-mini"  # the only completed prompt candidate
    assert results.verdict.startswith("no significant difference between the TF-IDF classifier and gpt-5-mini")
    # The classic classifier and the endpoint answer one request at a time: their latency is measured per request.
    for measured in (classic, ok):
        assert 0 < measured.operations.latency_p50_ms <= measured.operations.latency_p95_ms
        assert measured.operations.amortized_ms_per_request is None and measured.operations.requests_per_second > 0


def test_prompt_and_adapter_candidates_share_the_model_and_round_trip_through_the_store(task_files, tiny_model_dir, store, tmp_path, one_thread):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir = tmp_path / "adapter"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter_dir)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(adapter_dir)
    (adapter_dir / "tunewise-base.txt").write_text(str(tiny_model_dir))
    run = store.create_run("lora", base_model=str(tiny_model_dir), config={})
    store.update_run(run.id, status="completed", artifacts={"adapter": str(adapter_dir)})

    train, evals = task_files
    m = str(tiny_model_dir)
    specs = [f"zero-shot:{m}", f"few-shot:{m}?k=3", f"knn-few-shot:{m}?k=2", f"adapter:{run.id[:8]}"]
    config = FAST.model_copy(update={"limit": 6})
    results = evaluate(evals, specs, train_path=train, config=config, store=store, progress=False)
    assert results.baseline == f"few-shot:{m}?k=3"
    assert [c.status for c in results.candidates] == ["completed"] * 4
    tuned = results.candidates[3]
    assert tuned.run_id == run.id and tuned.comparison.vs == f"few-shot:{m}?k=3"
    assert results.verdict == results.verdicts[tuned.name]
    assert "the fine-tune" in results.verdict
    assert results.rows == 6 and results.limit == 6

    stored = store.get_evaluation(results.evaluation_id)
    assert stored.results == results.to_store() and stored.verdict == results.verdict and stored.task_type == "classification"
    assert [c.name for c in store.evaluation_candidates(stored.id)] == [c.name for c in results.candidates]
    assert store.evaluation_candidates(stored.id)[3].run_id == run.id
    lines = [json.loads(line) for line in Path(results.outputs_path).read_text().splitlines()]
    assert len(lines) == 6 and set(lines[0]["candidates"]) == {c.name for c in results.candidates}
    assert {"output", "prediction", "correct", "tokens_in", "tokens_out"} <= set(lines[0]["candidates"][tuned.name])
    # Local models run batched: no per-request latency is claimed, only the amortised time per request.
    assert "latency_ms" not in lines[0]["candidates"][tuned.name]
    assert tuned.operations.latency_p50_ms is None and tuned.operations.amortized_ms_per_request > 0
    assert "amortised" in tuned.operations.cost_basis


def test_contaminated_eval_set_is_refused_unless_allowed(task_files, store):
    train, _ = task_files
    with pytest.raises(EvaluationError, match="duplicate training rows.*--allow-contamination"):
        evaluate(train, ["classic:tfidf"], train_path=train, config=FAST, store=store, progress=False)
    results = evaluate(train, ["classic:tfidf"], train_path=train, config=FAST, store=store, progress=False, allow_contamination=True)
    assert results.contamination.eval_rows_affected == 45


def test_bad_input_is_one_line(task_files, store):
    train, evals = task_files
    with pytest.raises(EvaluationError, match="no run 'run-missing'"):
        evaluate(evals, ["adapter:run-missing"], config=FAST, store=store, progress=False)
    with pytest.raises(EvaluationError, match="need a training set"):
        evaluate(evals, ["few-shot:smollm2-135m"], config=FAST, store=store, progress=False)
    with pytest.raises(EvaluationError, match="expected KIND:TARGET"):
        evaluate(evals, ["gpt-4o"], config=FAST, store=store, progress=False)


def test_json_task_counts_invalid_json_from_an_endpoint(tmp_path, store):
    class JsonHandler(_ChatHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            text = body["messages"][-1]["content"]
            content = '{"city": "%s"}' % text.split()[-1] if "good" in text else "{broken"
            data = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), JsonHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rows = [{"messages": [{"role": "user", "content": f"{'good' if i % 2 else 'bad'} city c{i}"},
                              {"role": "assistant", "content": json.dumps({"city": f"c{i}"})}]} for i in range(8)]
        evals = tmp_path / "eval.jsonl"
        evals.write_text("".join(json.dumps(r) + "\n" for r in rows))
        schema = tmp_path / "schema.json"
        schema.write_text(json.dumps({"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}))
        url = f"http://127.0.0.1:{server.server_address[1]}/v1#local-model"
        results = evaluate(evals, [f"endpoint:{url}"], schema_path=schema, config=FAST, store=store, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    (cand,) = results.candidates
    assert results.task_type == "json" and results.primary_metric == "schema_compliance"
    assert cand.metrics["json_validity"].value == 0.5 and cand.metrics["field_accuracy"].value == 0.5
    assert cand.operations.cost_per_1k_usd is None and "not in the pricing catalog" in cand.operations.cost_basis
    assert results.verdict.startswith("only local-model completed")


def test_cli_eval_json_and_one_line_errors(task_files, capsys):
    from tunewise.cli import main

    train, evals = task_files
    with pytest.raises(SystemExit) as done:
        main(["eval", "--data", str(evals), "--train", str(train), "-c", "classic:tfidf", "--limit", "9", "--json"])
    assert done.value.code == 0
    results = json.loads(capsys.readouterr().out)
    assert results["rows"] == 9 and results["candidates"][0]["metrics"]["accuracy"]["value"] >= 0.8
    assert results["kind"] == "evaluation-results" and results["schema_version"] == 1

    with pytest.raises(SystemExit) as done:
        main(["eval", "--data", str(evals), "-c", "adapter:run-nothere"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "no run 'run-nothere'" in err and "Traceback" not in err

    with pytest.raises(SystemExit) as done:
        main(["eval", "--data", str(train), "--train", str(train), "-c", "classic:tfidf"])
    assert done.value.code == 2
    assert "--allow-contamination" in capsys.readouterr().err


def test_cli_table_shows_candidates_and_verdict(task_files, endpoint, capsys):
    from tunewise.cli import main

    train, evals = task_files
    with pytest.raises(SystemExit) as done:
        main(["eval", "--data", str(evals), "--train", str(train), "-c", "classic:tfidf", "-c", f"endpoint:{endpoint}#gpt-5-mini"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "classic:" in out and "baseline" in out
    assert "no significant difference between the TF-IDF classifier and gpt-5-mini" in out


def test_free_text_with_an_llm_judge(tmp_path, store):
    class TextHandler(_ChatHandler):
        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            judging = body["messages"][0]["content"].startswith("You are a strict grader")
            content = "4" if judging else "the parcel ships on monday"
            data = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), TextHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        rows = [{"messages": [{"role": "user", "content": f"when does order {i} ship?"},
                              {"role": "assistant", "content": f"order {i} ships on monday morning"}]} for i in range(6)]
        evals = tmp_path / "eval.jsonl"
        evals.write_text("".join(json.dumps(r) + "\n" for r in rows))
        config = FAST.model_copy(update={"judge": f"{url}#judge-model"})
        results = evaluate(evals, [f"endpoint:{url}#writer"], config=config, store=store, progress=False)
    finally:
        server.shutdown()
        server.server_close()
    (cand,) = results.candidates
    assert results.task_type == "text" and results.primary_metric == "rouge_l"
    assert cand.metrics["judge_score"].value == pytest.approx(0.75)  # 4 on the 1-5 scale
    assert 0 < cand.metrics["rouge_l"].value < 1 and 0 <= cand.metrics["bleu"].value < 1

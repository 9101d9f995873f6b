"""Evaluations made by running the real code once per session, for the report and review tests to read.

`real_comparison` is a real `evaluate()` of a small classification task: the tiny model zero-shot (free
decoding), the same model as a constrained adapter, the TF-IDF classifier and an endpoint that is down.
`real_text` is a free-text evaluation, `real_curve` a learning curve (training stands in, evaluation is
real). `stored(store, results, folder)` puts one into a test's own store, as `evaluate()` would have.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tunewise.evaluate import EvalConfig

FAST = EvalConfig(bootstrap_samples=200, batch_size=8, endpoint_retries=0, endpoint_timeout_s=2, confidence=0.9, max_new_tokens=6)


@pytest.fixture(scope="session")
def real_workspace(tmp_path_factory):
    """A workspace and store of the session's own (the per-test workspace is too short-lived)."""
    from tunewise.store import Store

    folder = tmp_path_factory.mktemp("real-runs")
    with pytest.MonkeyPatch.context() as patch:
        (folder / "workspace").mkdir()
        patch.setenv("TUNEWISE_HOME", str(folder / "workspace"))
        patch.delenv("TUNEWISE_DB_URL", raising=False)
        patch.chdir(folder)
        store = Store.open()
        yield folder, store
        store.close()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def real_comparison(real_workspace, tiny_model_dir):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunewise.evaluate import evaluate

    from .test_evaluate import write_task

    folder, store = real_workspace
    train, evals = write_task(folder, n_train=3, n_eval=30)  # one training row a label: the TF-IDF classifier makes mistakes
    adapter = folder / "adapter"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(adapter)
    (adapter / "tunewise-base.txt").write_text(str(tiny_model_dir))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        specs = [f"zero-shot:{tiny_model_dir}", f"adapter:{adapter}?constrained=1", "classic:tfidf",
                 f"endpoint:http://127.0.0.1:{_closed_port()}/v1#m"]
        return evaluate(evals, specs, train_path=train, config=FAST, store=store, progress=False)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def real_text(real_workspace, tiny_model_dir):
    import json

    import torch

    from tunewise.evaluate import evaluate

    folder, store = real_workspace
    rows = [{"messages": [{"role": "user", "content": f"when does order {i} ship?"},
                          {"role": "assistant", "content": f"order {i} ships on monday morning"}]} for i in range(6)]
    evals = folder / "text-eval.jsonl"
    evals.write_text("".join(json.dumps(r) + "\n" for r in rows))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return evaluate(evals, [f"zero-shot:{tiny_model_dir}"], config=FAST, store=store, progress=False)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def real_curve(real_workspace, real_comparison):
    """A learning curve through `learning_curve()` and the real `evaluate()`; only training is a stand-in (a stored run)."""
    from tunewise.evaluate.curve import learning_curve
    from tunewise.train import TrainConfig

    folder, store = real_workspace

    def train_fn(config, *, store, progress):
        run = store.create_run("lora", base_model="tiny", config=config.model_dump(mode="json"))
        return store.update_run(run.id, status="completed")

    train = folder / "train.jsonl"
    return learning_curve(train, folder / "eval.jsonl", [1, 2, 3], base_config=TrainConfig(model="tiny", dataset=str(train)),
                          candidate_template="classic:tfidf", store=store, progress=False, train_fn=train_fn, eval_config=FAST,
                          plot_dir=folder / "plots")


def stored(store, results, folder: Path):
    """Store `results` (a record made by a real run) in `store` with a copy of its outputs, as `evaluate()` stores it."""
    from tunewise.records.evaluation import CurveResults

    if isinstance(results, CurveResults):
        record = store.add_evaluation(kind="curve", dataset_id=None, config={}, results=results.to_store(), verdict=results.statement)
        return store.update_evaluation(record.id, results=results.model_copy(update={"evaluation_id": record.id}).to_store())
    outputs = folder / f"outputs-{len(list(folder.glob('outputs-*')))}.jsonl"
    shutil.copyfile(results.outputs_path, outputs)
    record = store.add_evaluation(kind="compare", dataset_id=None, config=FAST.model_dump(), results=results.to_store(),
                                  task_type=results.task_type, verdict=results.verdict)
    copy = results.model_copy(update={"evaluation_id": record.id, "outputs_path": str(outputs)})
    return store.update_evaluation(record.id, results=copy.to_store())

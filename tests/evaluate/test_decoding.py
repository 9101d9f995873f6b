"""Classification decoding as a candidate option: `?constrained=1` in a spec, its name, its errors, and an
evaluation where the same models decode freely and constrained side by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunewise.errors import EvaluationError
from tunewise.evaluate import evaluate
from tunewise.evaluate.specs import parse_spec

from .test_evaluate import FAST, WORDS, write_task


@pytest.mark.parametrize(
    ("text", "name", "decoding"),
    [
        ("adapter:run-1?constrained=1", "adapter:run-1?constrained=1", "constrained"),
        ("adapter:run-1?decoding=constrained", "adapter:run-1?constrained=1", "constrained"),
        ("adapter:run-1?constrained=0", "adapter:run-1", "free"),
        ("adapter:run-1?decoding=free", "adapter:run-1", "free"),
        ("adapter:run-1", "adapter:run-1", "free"),
        ("zero-shot:smollm2-135m?constrained=1", "zero-shot:smollm2-135m?constrained=1", "constrained"),
        ("few-shot:smollm2-135m?k=8&constrained=1", "few-shot:smollm2-135m?k=8&constrained=1", "constrained"),
        ("few-shot:smollm2-135m?constrained=true", "few-shot:smollm2-135m?k=8&constrained=1", "constrained"),
        ("knn-few-shot:smollm2-135m?constrained=1&k=4", "knn-few-shot:smollm2-135m?k=4&constrained=1", "constrained"),
    ],
)
def test_specs_carry_the_decoding_in_their_name(text, name, decoding):
    spec = parse_spec(text)
    assert spec.name == name and spec.decoding == decoding
    assert parse_spec(spec.name) == parse_spec(spec.name)  # the name is itself a spec
    assert parse_spec(spec.name).name == name


def test_the_global_decoding_is_the_default_of_candidates_that_do_not_say():
    assert parse_spec("adapter:r", default_decoding="constrained").name == "adapter:r?constrained=1"
    assert parse_spec("adapter:r?constrained=0", default_decoding="constrained").name == "adapter:r"
    assert parse_spec("classic:tfidf", default_decoding="constrained").decoding is None
    assert parse_spec("endpoint:http://h/v1#m", default_decoding="constrained").decoding is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("endpoint:http://localhost:8000/v1#gpt-4o-mini?constrained=1", "apply to local models only; an endpoint"),
        ("classic:tfidf?constrained=1", "apply to local models only; classic:tfidf"),
        ("classic:tfidf?decoding=free", "apply to local models only"),
        ("adapter:r?constrained=maybe", "constrained='maybe': use constrained=1 or constrained=0"),
        ("adapter:r?decoding=beam", "decoding='beam': use decoding=free or decoding=constrained"),
        ("adapter:r?constrained=1&decoding=free", "the decoding is given twice"),
        ("zero-shot:m?temperature=1", "unknown option 'temperature' .known: constrained, decoding, k"),
    ],
)
def test_bad_decoding_options_are_one_line_errors(text, message):
    with pytest.raises(EvaluationError, match=message) as error:
        parse_spec(text)
    assert "\n" not in str(error.value) and repr(text) in str(error.value)


def test_constrained_on_a_free_text_task_names_the_candidate(tmp_path, store):
    rows = [{"messages": [{"role": "user", "content": f"write a sentence about topic {i}"},
                          {"role": "assistant", "content": f"Here is a long free reply number {i} about topic {i}."}]}
            for i in range(6)]
    evals = tmp_path / "eval.jsonl"
    evals.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(EvaluationError, match=r"'zero-shot:smollm2-135m\?constrained=1'.*text task.*drop constrained=1"):
        evaluate(evals, ["zero-shot:smollm2-135m?constrained=1"], config=FAST, store=store, progress=False)


def _adapter_run(store, tiny_model_dir, folder: Path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    (folder / "tunewise-base.txt").write_text(str(tiny_model_dir))
    run = store.create_run("lora", base_model=str(tiny_model_dir), config={})
    store.update_run(run.id, status="completed", artifacts={"adapter": str(folder)})
    return run


def test_free_and_constrained_decoding_of_one_model_side_by_side(tmp_path, tiny_model_dir, store, capsys):
    import torch

    train, evals = write_task(tmp_path, n_train=12, n_eval=6)
    run = _adapter_run(store, tiny_model_dir, tmp_path / "adapter")
    m = str(tiny_model_dir)
    specs = [f"zero-shot:{m}", f"zero-shot:{m}?constrained=1", f"adapter:{run.id}", f"adapter:{run.id}?decoding=constrained"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = evaluate(evals, specs, train_path=train, config=FAST, store=store, progress=True)
    finally:
        torch.set_num_threads(threads)

    names = [c.name for c in results.candidates]
    assert names == [f"zero-shot:{m}", f"zero-shot:{m}?constrained=1", f"adapter:{run.id}", f"adapter:{run.id}?constrained=1"]
    assert [c.decoding for c in results.candidates] == ["free", "constrained", "free", "constrained"]
    assert [c.status for c in results.candidates] == ["completed"] * 4
    assert store.get_evaluation(results.evaluation_id).results["candidates"][3]["decoding"] == "constrained"

    lines = [json.loads(line) for line in Path(results.outputs_path).read_text().splitlines()]
    for name in names[1::2]:  # the constrained ones spell nothing but labels, even from random weights
        assert all(line["candidates"][name]["output"] in WORDS for line in lines)
    for name in names[::2]:  # a random-init model decoding freely does not (which is why constrained exists)
        assert not all(line["candidates"][name]["output"] in WORDS for line in lines)

    # Outside a terminal the evaluation prints plain progress lines, one candidate after another.
    err = capsys.readouterr().err
    for name in names:
        assert f"eval {name}  6/6 rows (100%)" in err

    from tunewise.evaluate.report import write_report

    _, md = write_report(tmp_path / "report", store=store)
    table = md.read_text(encoding="utf-8").replace("**", "")  # the best candidate is bold
    assert f"| adapter:{run.id}?constrained=1 | adapter | constrained |" in table
    assert f"| zero-shot:{m} | zero-shot | free |" in table

"""The one task detector (tunewise.data.task): real label sets of 50-1,000 classes, JSON, text, and audit = eval."""

from __future__ import annotations

import json

import pytest

from tunewise.data.task import MAX_CLASSES, MAX_LABEL_CHARS, detect_task
from tunewise.errors import EvaluationError

VERBS = ["transfer", "check", "cancel", "open", "close", "report", "update", "dispute", "freeze", "request"]
NOUNS = ["money_to_account", "balance", "card", "loan", "savings", "fraud", "address", "charge", "pin", "statement",
         "mortgage", "overdraft", "limit", "refund", "beneficiary"]
LABELS_150 = [f"{verb}_{noun}" for verb in VERBS for noun in NOUNS]


def test_150_classes_of_five_rows_are_classification():
    assert len(set(LABELS_150)) == 150 and "transfer_money_to_account" in LABELS_150
    shape = detect_task([label for label in LABELS_150 for _ in range(5)])
    assert shape.type == "classification" and shape.n_classes == 150
    assert shape.labels == tuple(sorted(LABELS_150))
    assert "150" in shape.reason


def test_1000_classes_and_not_one_more():
    labels = [f"intent_{i:04d}" for i in range(MAX_CLASSES)]
    assert detect_task(labels * 3).n_classes == 1000
    too_many = labels + ["intent_extra"]
    shape = detect_task(too_many * 3)
    assert shape.type == "text" and "1,000" in shape.reason


def test_label_length_limit_is_64_characters():
    ok, long = "a" * MAX_LABEL_CHARS, "b" * (MAX_LABEL_CHARS + 1)
    assert detect_task([ok, "short"] * 5).type == "classification"
    assert detect_task([long, "short"] * 5).type == "text"
    assert detect_task(["line one\nline two", "short"] * 5).type == "text"


def test_labels_are_stripped_and_missing_replies_tolerated():
    shape = detect_task([" billing", "refund ", "billing", "refund"] * 10 + [None])
    assert shape.type == "classification" and shape.labels == ("billing", "refund")
    # Most rows without a reply: no label set is read from the rest.
    assert detect_task(["billing", "refund"] * 3 + [None] * 10).type == "text"


def test_free_text_json_and_schema():
    text = detect_task([f"Sure, here is answer number {i} to your question." for i in range(200)])
    assert text.type == "text" and text.labels == () and text.reason
    shape = detect_task([json.dumps({"name": f"n{i}", "amount": i}) for i in range(50)])
    assert shape.type == "json" and "JSON" in shape.reason
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    given = detect_task(["free text"] * 3, schema=schema)
    assert given.type == "json" and given.schema == schema


def test_small_eval_set_repeats_only_with_train():
    eval_replies = LABELS_150[:20]  # 20 rows, 20 labels: alone they do not repeat
    assert detect_task(eval_replies).type == "text"
    train_replies = [label for label in LABELS_150 for _ in range(4)]
    assert detect_task(train_replies + eval_replies).type == "classification"


def test_explicit_task_type_wins():
    replies = [f"free answer {i}" for i in range(10)]
    assert detect_task(replies, task_type="classification").n_classes == 10
    assert detect_task(["a", "b"] * 10, task_type="text").type == "text"
    assert detect_task(["a", "b"] * 10, task_type="json").type == "json"
    with pytest.raises(EvaluationError, match="two distinct labels"):
        detect_task(["only"] * 10, task_type="classification")
    with pytest.raises(EvaluationError, match="task type"):
        detect_task(["a"], task_type="regression")


def test_audit_and_eval_agree_on_a_150_class_file(tmp_path, tiny_model_dir):
    from tunewise.data.audit import audit
    from tunewise.evaluate.tasks import detect_task as eval_detect
    from tunewise.evaluate.tasks import load_rows

    lines = []
    for k, label in enumerate(LABELS_150):
        words = label.replace("_", " ")
        for j in range(5):
            text = f"customer {k * 5 + j} writes about {words} case {j} from branch {k}"
            lines.append(json.dumps({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": label}]}))
    path = tmp_path / "intents.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = audit(path, model=str(tiny_model_dir), progress=False, register=False, mislabels=False)
    labels = result.summary["labels"]
    assert labels["is_classification"] is True and labels["n_classes"] == 150
    assert labels["task_type"] == "classification"
    rows = load_rows(path)
    task = eval_detect(rows[:600], rows[600:])
    assert task.type == "classification" and len(task.labels) == 150

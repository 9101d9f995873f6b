"""The OpenAI fine-tuning rules for chat examples (tunewise.data.validate): each broken rule is named, with its line when read from a file."""

from __future__ import annotations

import json

import pytest

from tunewise.data.formats import load_examples
from tunewise.data.validate import openai_example, validate_chat_example

USER = {"role": "user", "content": "hi"}
ASSISTANT = {"role": "assistant", "content": "hello"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def _rules(example) -> list[str]:
    return [error.split(":")[0] for error in validate_chat_example(example)]


GOOD = [
    {"messages": [USER, ASSISTANT]},
    {"messages": [{"role": "system", "content": "s"}, USER, ASSISTANT, USER, {**ASSISTANT, "weight": 0}]},
    {"messages": [USER, {"role": "assistant", "content": None, "tool_calls": [CALL]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "42"}, ASSISTANT],
     "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
    {"messages": [USER, {"role": "assistant", "function_call": {"name": "f", "arguments": "{\"a\": 1}"}},
                  {"role": "function", "name": "f", "content": "1"}, ASSISTANT]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                               {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}, ASSISTANT]},
    {"messages": [{**USER, "name": "ana"}, ASSISTANT], "metadata": {"id": 3}},
]

BAD = [
    ("data_type", ["a string"]),
    ("missing_messages_list", {"prompt": "hi", "completion": "yo"}),
    ("missing_messages_list", {"messages": []}),
    ("messages_type", {"messages": {"role": "user"}}),
    ("message_type", {"messages": ["hi", ASSISTANT]}),
    ("message_missing_key", {"messages": [{"content": "hi"}, ASSISTANT]}),
    ("message_missing_key", {"messages": [{"role": "user"}, ASSISTANT]}),
    ("message_unrecognized_key", {"messages": [{**USER, "speaker": "me"}, ASSISTANT]}),
    ("unrecognized_role", {"messages": [{"role": "human", "content": "hi"}, ASSISTANT]}),
    ("missing_content", {"messages": [{"role": "user", "content": ""}, ASSISTANT]}),
    ("missing_content", {"messages": [USER, {"role": "assistant", "content": ""}]}),
    ("content_type", {"messages": [{"role": "user", "content": 42}, ASSISTANT]}),
    ("content_type", {"messages": [{"role": "user", "content": [{"type": "video"}]}, ASSISTANT]}),
    ("name_type", {"messages": [{**USER, "name": 7}, ASSISTANT]}),
    ("weight_value", {"messages": [USER, {**ASSISTANT, "weight": 0.5}]}),
    ("weight_value", {"messages": [USER, {**ASSISTANT, "weight": True}]}),
    ("weight_role", {"messages": [{**USER, "weight": 1}, ASSISTANT]}),
    ("tool_calls_shape", {"messages": [USER, {"role": "assistant", "tool_calls": []}, ASSISTANT]}),
    ("tool_calls_shape", {"messages": [USER, {"role": "assistant", "tool_calls": [{**CALL, "type": "tool"}]}, ASSISTANT]}),
    ("tool_calls_shape", {"messages": [USER, {"role": "assistant", "tool_calls": [{**CALL, "id": None}]}, ASSISTANT]}),
    ("tool_calls_shape", {"messages": [USER, {"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "f", "arguments": {"a": 1}}}]}, ASSISTANT]}),
    ("tool_calls_shape", {"messages": [USER, {"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "f", "arguments": "{not json"}}]}, ASSISTANT]}),
    ("tool_calls_shape", {"messages": [{**USER, "tool_calls": [CALL]}, ASSISTANT]}),
    ("function_call_shape", {"messages": [USER, {"role": "assistant", "function_call": {"arguments": "{}"}}, ASSISTANT]}),
    ("tool_message_missing_tool_call_id", {"messages": [USER, {"role": "tool", "content": "42"}, ASSISTANT]}),
    ("tools_shape", {"messages": [USER, ASSISTANT], "tools": {"name": "f"}}),
    ("tools_shape", {"messages": [USER, ASSISTANT], "tools": [{"name": "f"}]}),
    ("tools_shape", {"messages": [USER, ASSISTANT], "parallel_tool_calls": "yes"}),
    ("functions_shape", {"messages": [USER, ASSISTANT], "functions": [{"description": "no name"}]}),
    ("example_missing_assistant_message", {"messages": [USER]}),
    ("unrecognized_key", {"messages": [USER, ASSISTANT], "label": "x"}),
]


@pytest.mark.parametrize("example", GOOD)
def test_examples_the_api_accepts_have_no_problems(example):
    assert validate_chat_example(example) == []


@pytest.mark.parametrize("rule, example", BAD, ids=[f"{rule}-{i}" for i, (rule, _) in enumerate(BAD)])
def test_each_rule_is_reported_by_name(rule, example):
    assert rule in _rules(example)


def test_every_problem_is_reported_at_once():
    example = {"messages": [{"role": "bot", "content": 1}, {"role": "user", "content": "", "extra": 1}]}
    assert set(_rules(example)) >= {"unrecognized_role", "content_type", "missing_content", "message_unrecognized_key",
                                    "example_missing_assistant_message"}


def test_problems_from_a_file_carry_their_line(tmp_path):
    lines = [json.dumps({"messages": [USER, ASSISTANT]})] + [json.dumps(example) for _, example in BAD]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = load_examples(path, format="chat")
    assert [r.line for r in result.records] == [1]
    assert [p.line for p in result.problems] == list(range(2, len(BAD) + 2))
    for problem, (rule, _) in zip(result.problems, BAD):
        assert rule in problem.reason


def test_openai_example_strips_tunewise_metadata():
    example = {"messages": [USER, ASSISTANT], "metadata": {"source": "csv"}}
    assert openai_example(example) == {"messages": [USER, ASSISTANT]}
    assert validate_chat_example(openai_example(example)) == []

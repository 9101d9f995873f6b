"""The rules the OpenAI fine-tuning API enforces on chat examples, as one function.

`validate_chat_example(obj)` returns a list of problems, each `"<rule>: <detail>"`, empty when the
example would be accepted. The rule names follow the OpenAI cookbook's "data preparation and
analysis for chat model fine-tuning" checks (`data_type`, `missing_messages_list`,
`message_missing_key`, `message_unrecognized_key`, `unrecognized_role`, `missing_content`,
`example_missing_assistant_message`) plus the shapes the API checks for tools and weights:

    >>> validate_chat_example({"messages": [{"role": "user", "content": "hi"}]})
    ['example_missing_assistant_message: no message with role "assistant"']

It is on the hot path of `iter_records` (a million rows in the audit benchmark), so the common case
(string contents, three messages) runs through a few set lookups and no allocation.
"""

from __future__ import annotations

from typing import Any

import orjson

ROLES = frozenset({"system", "user", "assistant", "tool", "function"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "function_call", "tool_calls", "tool_call_id", "weight"})
# Top-level keys the API reads; `metadata` is tunewise's own (annotator labels, extra CSV columns) and
# is stripped by `openai_example` before upload.
EXAMPLE_KEYS = frozenset({"messages", "tools", "functions", "parallel_tool_calls", "metadata"})
CONTENT_PART_TYPES = frozenset({"text", "image_url", "input_audio", "file"})

RULES = (
    "data_type",
    "missing_messages_list",
    "messages_type",
    "message_type",
    "message_missing_key",
    "message_unrecognized_key",
    "unrecognized_role",
    "missing_content",
    "content_type",
    "name_type",
    "weight_value",
    "weight_role",
    "tool_calls_shape",
    "function_call_shape",
    "tool_message_missing_tool_call_id",
    "tools_shape",
    "functions_shape",
    "example_missing_assistant_message",
    "unrecognized_key",
)

_STR = str


def validate_chat_example(obj: Any, *, require_assistant: bool = True) -> list[str]:
    """Every reason the OpenAI fine-tuning API would reject `obj` as a chat example ([] if none)."""
    if type(obj) is not dict:
        return [f"data_type: an example must be a JSON object, got {_json_type(obj)}"]
    messages = obj.get("messages")
    if not messages:
        return ['missing_messages_list: no "messages" list (or it is empty)']
    if type(messages) is not list:
        return [f'messages_type: "messages" must be a list, got {_json_type(messages)}']
    errors: list[str] = []
    has_assistant = False
    for index, message in enumerate(messages):
        if type(message) is not dict:
            errors.append(f"message_type: message {index} must be an object, got {_json_type(message)}")
            continue
        role = message.get("role")
        content = message.get("content")
        # Fast path: a plain {role, content} message with a string content.
        if len(message) == 2 and type(content) is _STR and content and role in ("user", "assistant", "system"):
            if role == "assistant":
                has_assistant = True
            continue
        _check_message(index, message, errors)
        if role == "assistant":
            has_assistant = True
    if require_assistant and not has_assistant:
        errors.append('example_missing_assistant_message: no message with role "assistant"')
    if len(obj) > 1:
        _check_top_level(obj, errors)
    return errors


def _check_message(index: int, message: dict, errors: list[str]) -> None:
    where = f"message {index}"
    if "role" not in message:
        errors.append(f'message_missing_key: {where} has no "role"')
    role = message.get("role")
    unknown = [key for key in message if key not in MESSAGE_KEYS]
    if unknown:
        errors.append(f"message_unrecognized_key: {where} has {', '.join(map(repr, unknown))}")
    if "role" in message and role not in ROLES:
        errors.append(f"unrecognized_role: {where} has role {role!r} (expected one of {', '.join(sorted(ROLES))})")
    has_calls = bool(message.get("tool_calls")) or bool(message.get("function_call"))
    calls_instead = role == "assistant" and has_calls  # an assistant turn that only calls tools needs no content
    content = message.get("content")
    if "content" not in message:
        if not calls_instead:
            errors.append(f'message_missing_key: {where} has no "content"')
    elif type(content) is list:
        _check_parts(where, role, content, errors)
    elif content is not None and type(content) is not _STR:
        errors.append(f"content_type: {where} content must be a string or a list of parts, got {_json_type(content)}")
    elif not content and not calls_instead:
        errors.append(f"missing_content: {where} ({role}) has empty content")
    if "name" in message and type(message["name"]) is not _STR:
        errors.append(f"name_type: {where} name must be a string")
    if "weight" in message:
        weight = message["weight"]
        if weight not in (0, 1) or type(weight) is bool:
            errors.append(f"weight_value: {where} weight must be 0 or 1, got {weight!r}")
        if role != "assistant":
            errors.append(f"weight_role: {where} has a weight but only assistant messages may")
    if "tool_calls" in message:
        if role != "assistant":
            errors.append(f"tool_calls_shape: {where} has tool_calls but only assistant messages may")
        _check_tool_calls(where, message["tool_calls"], errors)
    if "function_call" in message:
        if role != "assistant":
            errors.append(f"function_call_shape: {where} has function_call but only assistant messages may")
        _check_function(f"{where} function_call", message["function_call"], errors, "function_call_shape")
    if role == "tool":
        call_id = message.get("tool_call_id")
        if type(call_id) is not _STR or not call_id:
            errors.append(f'tool_message_missing_tool_call_id: {where} (tool) needs a "tool_call_id" string')
    elif "tool_call_id" in message:
        errors.append(f"message_unrecognized_key: {where} has 'tool_call_id' but role is {role!r}, not 'tool'")
    if role == "function" and type(message.get("name")) is not _STR:
        errors.append(f'name_type: {where} (function) needs a "name" string')


def _check_parts(where: str, role: Any, parts: list, errors: list[str]) -> None:
    if not parts:
        errors.append(f"missing_content: {where} ({role}) has an empty list of content parts")
        return
    for number, part in enumerate(parts):
        if type(part) is not dict:
            errors.append(f"content_type: {where} part {number} must be an object")
            continue
        kind = part.get("type")
        if kind not in CONTENT_PART_TYPES:
            errors.append(f"content_type: {where} part {number} has type {kind!r} (expected text or image_url)")
        elif kind == "text" and type(part.get("text")) is not _STR:
            errors.append(f'content_type: {where} part {number} (text) needs a "text" string')
        elif kind != "text" and role != "user":
            errors.append(f"content_type: {where} part {number} ({kind}) is only allowed in user messages")


def _check_function(where: str, function: Any, errors: list[str], rule: str) -> None:
    if type(function) is not dict:
        errors.append(f"{rule}: {where} must be an object with name and arguments")
        return
    name = function.get("name")
    if type(name) is not _STR or not name:
        errors.append(f'{rule}: {where} needs a "name" string')
    arguments = function.get("arguments")
    if type(arguments) is not _STR:
        errors.append(f'{rule}: {where} "arguments" must be a JSON string, got {_json_type(arguments)}')
        return
    try:
        orjson.loads(arguments)
    except orjson.JSONDecodeError:
        errors.append(f'{rule}: {where} "arguments" is not valid JSON')


def _check_tool_calls(where: str, calls: Any, errors: list[str]) -> None:
    if type(calls) is not list or not calls:
        errors.append(f"tool_calls_shape: {where} tool_calls must be a non-empty list")
        return
    for number, call in enumerate(calls):
        at = f"{where} tool_calls[{number}]"
        if type(call) is not dict:
            errors.append(f"tool_calls_shape: {at} must be an object")
            continue
        if type(call.get("id")) is not _STR or not call.get("id"):
            errors.append(f'tool_calls_shape: {at} needs an "id" string')
        if call.get("type") != "function":
            errors.append(f'tool_calls_shape: {at} "type" must be "function", got {call.get("type")!r}')
        _check_function(f"{at}.function", call.get("function"), errors, "tool_calls_shape")


def _check_schema_function(where: str, function: Any, errors: list[str], rule: str) -> None:
    if type(function) is not dict:
        errors.append(f"{rule}: {where} must be an object")
        return
    if type(function.get("name")) is not _STR or not function.get("name"):
        errors.append(f'{rule}: {where} needs a "name" string')
    if "description" in function and type(function["description"]) is not _STR:
        errors.append(f'{rule}: {where} "description" must be a string')
    if "parameters" in function and type(function["parameters"]) is not dict:
        errors.append(f'{rule}: {where} "parameters" must be a JSON Schema object')


def _check_top_level(obj: dict, errors: list[str]) -> None:
    unknown = [key for key in obj if key not in EXAMPLE_KEYS]
    if unknown:
        errors.append(f"unrecognized_key: example has {', '.join(map(repr, unknown))}")
    if "tools" in obj:
        tools = obj["tools"]
        if type(tools) is not list:
            errors.append(f'tools_shape: "tools" must be a list, got {_json_type(tools)}')
        else:
            for number, tool in enumerate(tools):
                if type(tool) is not dict or tool.get("type") != "function":
                    errors.append(f'tools_shape: tools[{number}] must be {{"type": "function", "function": {{...}}}}')
                    continue
                _check_schema_function(f"tools[{number}].function", tool.get("function"), errors, "tools_shape")
    if "functions" in obj:
        functions = obj["functions"]
        if type(functions) is not list:
            errors.append(f'functions_shape: "functions" must be a list, got {_json_type(functions)}')
        else:
            for number, function in enumerate(functions):
                _check_schema_function(f"functions[{number}]", function, errors, "functions_shape")
    if "parallel_tool_calls" in obj and type(obj["parallel_tool_calls"]) is not bool:
        errors.append('tools_shape: "parallel_tool_calls" must be true or false')


def openai_example(example: dict) -> dict:
    """The example as the OpenAI API wants it: tunewise's own keys (`metadata`) removed."""
    if "metadata" not in example:
        return example
    return {key: value for key, value in example.items() if key != "metadata"}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


__all__ = ["validate_chat_example", "openai_example", "RULES", "ROLES", "MESSAGE_KEYS"]

"""The OpenAI chat-completions wire format that every backend speaks: the request, the response and chunk
objects, and the error object.

Requests are validated with pydantic so that a bad field is a 400 naming the field (`param`), as the
OpenAI API answers it; fields tunewise does not know are kept (`extra="allow"`) so that an upstream or
vLLM backend can pass them through untouched.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_STOP_SEQUENCES = 4  # as the OpenAI API allows
MAX_CHOICES = 16
# A served name (model, lora_name) is a plain token, never a path, so no name reaches outside the adapters' folders.
SERVED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class APIError(Exception):
    """An error answered as OpenAI does: `{"error": {"message", "type", "param", "code"}}` with an HTTP status."""

    def __init__(self, status: int, message: str, *, type: str | None = None, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.type = type or _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
}


def check_served_name(name: str) -> str:
    """`name` if it is a valid served name, else a 400 naming `lora_name`."""
    if not SERVED_NAME.match(name or ""):
        raise APIError(400, f"invalid served name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                       param="lora_name")
    return name


def model_not_found(name: str) -> APIError:
    return APIError(404, f"The model '{name}' does not exist (list the served models with GET /v1/models)", param="model", code="model_not_found")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict] | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's text: a string, or the text parts of a content list joined."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        parts = []
        for part in self.content:
            if part.get("type") != "text":
                raise APIError(400, f"content part of type {part.get('type')!r} is not supported: only text", param="messages")
            parts.append(str(part.get("text", "")))
        return "".join(parts)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: dict | None = None


class ChatCompletionRequest(BaseModel):
    """A `POST /v1/chat/completions` body."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=MAX_CHOICES)
    seed: int | None = None
    user: str | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None

    @field_validator("stop")
    @classmethod
    def _stop_sequences(cls, value):
        if isinstance(value, list) and len(value) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        return value

    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [s for s in ([self.stop] if isinstance(self.stop, str) else self.stop) if s]

    def token_limit(self, default: int) -> int:
        """max_completion_tokens (the current name) or max_tokens (the older one), else `default`."""
        return self.max_completion_tokens or self.max_tokens or default

    def chat(self) -> list[dict]:
        """The messages as plain `{"role", "content"}` dicts for a chat template (developer counts as system)."""
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in self.messages]

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}


def completion(model: str, choices: list[tuple[str, str]], prompt_tokens: int, completion_tokens: int, *, id: str | None = None) -> dict:
    """A `chat.completion` object; `choices` are (text, finish_reason) in index order."""
    return {
        "id": id or completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": reason}
            for i, (text, reason) in enumerate(choices)
        ],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chunk(id: str, model: str, *, index: int = 0, delta: dict | None = None, finish_reason: str | None = None,
          usage_: dict | None = None, created: int | None = None) -> dict:
    """A `chat.completion.chunk`; with `usage_` it is the final usage chunk (no choices), as OpenAI sends it."""
    body: dict[str, Any] = {"id": id, "object": "chat.completion.chunk", "created": created or int(time.time()), "model": model}
    if usage_ is not None:
        body["choices"], body["usage"] = [], usage_
    else:
        body["choices"] = [{"index": index, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}]
    return body


__all__ = [
    "APIError", "SERVED_NAME", "check_served_name", "model_not_found", "ChatMessage", "ChatCompletionRequest", "ResponseFormat", "StreamOptions",
    "completion", "chunk", "usage", "completion_id",
]

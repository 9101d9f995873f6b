"""What the gateway asks of a backend (local transformers + PEFT, an upstream OpenAI-compatible URL, vLLM).

The gateway (`tunewise.serve.api`) owns HTTP, keys, limits and metrics; a backend only turns a validated
`ChatCompletionRequest` into OpenAI objects for the names it serves:

- `complete(request)` returns one `chat.completion` dict (with `usage`);
- `stream(request)` yields `chat.completion.chunk` dicts: for each choice a first chunk with the role,
  content chunks, a chunk with its `finish_reason`; then, always, one final usage chunk (no choices).
  The gateway forwards that last chunk only when the client asked for `stream_options.include_usage`,
  and it writes `data: [DONE]` itself.

Both raise `APIError` for anything the client should see as an OpenAI error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from tunewise.serve.protocol import APIError, ChatCompletionRequest


@dataclass(frozen=True)
class ModelCard:
    """One served name, as `GET /v1/models` lists it."""

    id: str
    kind: str  # "base", "adapter", "recipe", "upstream" or "vllm"
    parent: str | None = None  # the base model of an adapter or recipe
    owned_by: str = "tunewise"
    source: str | None = None  # where it comes from: a folder, a run id, an upstream URL, a candidate spec

    def to_openai(self, created: int) -> dict:
        return {"id": self.id, "object": "model", "created": created, "owned_by": self.owned_by, "parent": self.parent, "root": self.source or self.id}


class Backend:
    """Base class: override `models`, `complete` and `stream`; the rest has working defaults."""

    name = "backend"

    def models(self) -> list[ModelCard]:
        raise NotImplementedError

    async def complete(self, request: ChatCompletionRequest) -> dict:
        raise NotImplementedError

    def stream(self, request: ChatCompletionRequest) -> AsyncIterator[dict]:
        raise NotImplementedError

    @property
    def loads_adapters(self) -> bool:
        """Whether `load_adapter` / `unload_adapter` work (POST /v1/load_lora_adapter routes to the first that says yes)."""
        return False

    async def load_adapter(self, name: str, path: str) -> ModelCard:
        raise APIError(400, f"the {self.name} backend does not load adapters at run time", param="lora_name")

    async def unload_adapter(self, name: str) -> None:
        raise APIError(400, f"the {self.name} backend does not unload adapters", param="lora_name")

    def missing(self, name: str) -> APIError | None:
        """The error for a name this backend was asked to serve but does not (an adapter that failed to load), else None."""
        return None

    def queue_depth(self) -> int:
        """Requests waiting or running (for /metrics and 429s)."""
        return 0

    def health(self) -> dict:
        """`{"status": "ok"}` when it can answer; anything else makes GET /health answer 503."""
        return {"status": "ok"}

    async def start(self) -> None:
        """Called once when the server starts (load weights, start workers, check the upstream)."""

    async def close(self) -> None:
        """Called once when the server stops."""


__all__ = ["Backend", "ModelCard"]

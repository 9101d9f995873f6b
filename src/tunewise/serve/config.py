"""Settings of `tunewise serve`: one typed object (the `serve:` section of tunewise.yaml), flags override it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address to listen on; the default is loopback only, 0.0.0.0 opens it to the network")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on (0 picks a free one)")
    api_key_file: str | None = Field(
        None, description="File of hashed API keys (`tunewise serve add-key` writes it); empty means no key is asked for"
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body accepted, in bytes (larger: 413)")
    max_prompt_chars: int = Field(32_000, ge=1, description="Largest total text of a request's messages, in characters (larger: 400)")
    max_tokens_cap: int = Field(2048, ge=1, description="Most tokens one request may ask to generate (max_tokens above it: 400)")
    default_max_tokens: int = Field(256, ge=1, description="Tokens generated when a request gives no max_tokens")
    max_queue: int = Field(256, ge=1, description="Requests waiting or running on one backend before new ones get 429")
    batch_wait_ms: float = Field(5.0, ge=0, description="Local backend: how long the scheduler waits for more requests after the last one arrived before it starts a batch (at most 20 times this in all), in milliseconds")
    max_batch_size: int = Field(16, ge=1, description="Local backend: most requests decoded together")
    request_timeout_s: float = Field(600, gt=0, description="Longest time one request may take, in seconds")
    ui: bool = Field(False, description="Also serve the web app (`tunewise ui`) at /ui/, in this process and over the same store")
    ui_allow_changes: bool = Field(False, description="With ui: turn on the web app's forms that write (ratings, deployment changes)")
    ui_token: str | None = Field(None, description="With ui: every web-app request must carry this token (required when host is not loopback)")


__all__ = ["ServeConfig"]

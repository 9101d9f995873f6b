"""The interface every managed fine-tuning provider implements, and the HTTP plumbing they share.

A provider is a small class: it knows its endpoints and request shapes (`upload_file`, `create_job`,
`retrieve_job`, `list_events`, `cancel_job`) and turns the provider's job object into a `ProviderJob`
with a tunewise status (`running`, `completed`, `failed`, `cancelled`). Everything else (validation,
token counts, prices, confirmation, following the job, the store) lives in `tunewise.train.providers.jobs`
and is the same for every provider.

The HTTP layer retries what is safe to retry: 429 after the `Retry-After` the provider sent, 5xx and
dropped connections with exponential backoff. Creating a job is not idempotent (a retried create can
start a second paid job), so it retries only on 429, 502/503/504 and failed connects.
Errors become one-line `ProviderError`s: provider, what failed, HTTP status, the provider's message.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import httpx

from tunewise.errors import ConfigError, ProviderError

# tunewise run statuses (see tunewise.store.models.Run.status)
RUNNING, COMPLETED, FAILED, CANCELLED = "running", "completed", "failed", "cancelled"
TERMINAL = frozenset({COMPLETED, FAILED, CANCELLED})


@dataclass
class UploadedFile:
    id: str
    filename: str | None = None
    bytes: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class ProviderJob:
    """A provider's job, reduced to what tunewise needs. `raw` keeps the provider's object."""

    id: str
    status: str  # tunewise status: running | completed | failed | cancelled
    provider_status: str  # the provider's own word (validating_files, queued, compressing, ...)
    model_id: str | None = None  # fine_tuned_model (OpenAI) / model_output_name (Together)
    billed_tokens: int | None = None
    cost_usd: float | None = None  # only when the provider reports a price
    error: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


@dataclass
class ProviderEvent:
    key: str  # stable identity, for de-duplication across polls
    created_at: str | int | None
    level: str
    message: str
    type: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def step(self) -> int | None:
        value = self.data.get("step")
        return int(value) if isinstance(value, (int, float)) else None

    @property
    def total_steps(self) -> int | None:
        value = self.data.get("total_steps")
        return int(value) if isinstance(value, (int, float)) and value else None


class Provider:
    """Base class of managed fine-tuning providers. Subclasses set the class attributes and the six methods."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    api_key_env: ClassVar[str] = ""
    base_url_env: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    default_epochs: ClassVar[int] = 1  # what the provider trains when n_epochs is not given (for estimates)
    hyperparameter_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        max_retries: int = 4,
        backoff_seconds: float = 1.0,
        max_wait_seconds: float = 120.0,
        timeout_seconds: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ):
        self.api_key = api_key
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_wait_seconds = max_wait_seconds
        self.sleep = sleep
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout_seconds, transport=transport)

    @classmethod
    def from_env(cls, **kwargs: Any) -> "Provider":
        """Base URL and key from the environment (`OPENAI_API_KEY`, `TOGETHER_BASE_URL`, ...)."""
        key = os.environ.get(cls.api_key_env, "").strip()
        if not key:
            raise ConfigError(f"{cls.title}: set {cls.api_key_env} to your API key (and {cls.base_url_env} for another endpoint)")
        base_url = os.environ.get(cls.base_url_env, "").strip() or None
        return cls(api_key=key, base_url=base_url, **kwargs)

    def close(self) -> None:
        self._client.close()

    def is_official_endpoint(self) -> bool:
        """True when the base URL is the provider's own public API (not a proxy or compatible server)."""
        return urlparse(self.base_url).hostname == urlparse(self.default_base_url).hostname

    # -- what each provider implements --------------------------------------------------------------
    def build_job_request(
        self, *, model: str, training_file: str, validation_file: str | None, hyperparameters: dict[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def upload_file(self, path: str | Path) -> UploadedFile:
        raise NotImplementedError

    def create_job(
        self, *, model: str, training_file: str, validation_file: str | None = None, hyperparameters: dict[str, Any] | None = None
    ) -> ProviderJob:
        body = self.build_job_request(
            model=model, training_file=training_file, validation_file=validation_file, hyperparameters=hyperparameters or {}
        )
        return self.parse_job(self._request("POST", self.jobs_path, what="create job", json=body, idempotent=False))

    def retrieve_job(self, job_id: str) -> ProviderJob:
        return self.parse_job(self._request("GET", f"{self.jobs_path}/{job_id}", what=f"job {job_id}"))

    def list_events(self, job_id: str) -> list[ProviderEvent]:
        """The job's events, oldest first."""
        raise NotImplementedError

    def cancel_job(self, job_id: str) -> ProviderJob:
        return self.parse_job(self._request("POST", f"{self.jobs_path}/{job_id}/cancel", what=f"cancel job {job_id}"))

    def parse_job(self, raw: dict[str, Any]) -> ProviderJob:
        raise NotImplementedError

    def result(self, job: ProviderJob) -> dict[str, Any]:
        """What a finished job produced: the model id, billed tokens, and where the weights are (if downloadable)."""
        return {"model_id": job.model_id, "billed_tokens": job.billed_tokens, "cost_usd": job.cost_usd}

    def epochs_for_estimate(self, hyperparameters: dict[str, Any], examples: int) -> tuple[int, str]:
        """Epochs the job will run, and a note when that is the provider's default rather than the user's choice."""
        epochs = self.normalize_hyperparameters(hyperparameters).get("n_epochs")
        if isinstance(epochs, int):
            return epochs, ""
        return self.default_epochs, f"n_epochs not set: {self.title}'s default of {self.default_epochs} assumed"

    jobs_path: ClassVar[str] = ""

    # -- shared helpers -----------------------------------------------------------------------------
    def normalize_hyperparameters(self, hyperparameters: dict[str, Any]) -> dict[str, Any]:
        """Accept a few common aliases (`epochs`, `lr`, `rank`) and reject names this provider does not take."""
        aliases = {"epochs": "n_epochs", "seed": "seed", "lr": "learning_rate", "rank": "lora_r", "alpha": "lora_alpha"}
        out: dict[str, Any] = {}
        for key, value in (hyperparameters or {}).items():
            if value is None:
                continue
            key = aliases.get(key, key)
            if key not in self.hyperparameter_names:
                allowed = ", ".join(self.hyperparameter_names)
                raise ConfigError(f"{self.title} does not take the hyperparameter {key!r} (it takes: {allowed})")
            out[key] = value
        if "n_epochs" in out and out["n_epochs"] != "auto":
            epochs = out["n_epochs"]
            if float(epochs) != int(float(epochs)) or int(float(epochs)) < 1:
                raise ConfigError(f"{self.title} trains whole epochs: n_epochs={epochs!r} must be a positive integer")
            out["n_epochs"] = int(float(epochs))
        return out

    def _upload(self, endpoint: str, path: str | Path, *, content_type: str, data: dict[str, Any]) -> UploadedFile:
        """Multipart upload of `path` as the form field `file`, with `data` as the other form fields."""
        path = Path(path)

        def files() -> dict[str, Any]:
            return {"file": (path.name, path.read_bytes(), content_type)}

        raw = self._request("POST", endpoint, what=f"upload {path.name}", data=data, files=files)
        return UploadedFile(id=raw["id"], filename=raw.get("filename"), bytes=raw.get("bytes"), raw=raw)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        params: dict[str, Any] | None = None,
        files: Callable[[], dict[str, Any]] | None = None,
        data: dict[str, Any] | None = None,
        idempotent: bool = True,
        raw: bool = False,
    ) -> Any:
        """One API call with retries; returns the decoded JSON (or the response when `raw`)."""
        attempt = 0
        while True:
            try:
                response = self._client.request(
                    method, path, json=json, params=params, data=data, files=files() if files else None, headers=self._headers()
                )
            except httpx.TransportError as exc:
                retryable = idempotent or isinstance(exc, httpx.ConnectError)
                if retryable and attempt < self.max_retries:
                    self._wait(self._backoff(attempt))
                    attempt += 1
                    continue
                raise ProviderError(f"{self.title} {what}: cannot reach {self.base_url} ({type(exc).__name__}: {exc})") from exc
            status = response.status_code
            if status < 400:
                if raw:
                    return response
                try:
                    return response.json()
                except ValueError as exc:
                    raise ProviderError(f"{self.title} {what}: HTTP {status} with a body that is not JSON") from exc
            retry = status == 429 or (status >= 500 and (idempotent or status in (502, 503, 504)))
            if retry and attempt < self.max_retries:
                wait = _retry_after(response) if status == 429 else None
                self._wait(wait if wait is not None else self._backoff(attempt))
                attempt += 1
                continue
            tries = f" after {attempt + 1} tries" if attempt else ""
            raise ProviderError(f"{self.title} {what}: HTTP {status}{tries}: {_error_message(response)}")

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_seconds * (2**attempt), self.max_wait_seconds)

    def _wait(self, seconds: float) -> None:
        self.sleep(max(0.0, min(seconds, self.max_wait_seconds)))


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(response: httpx.Response) -> str:
    """The provider's error message: `{"error": {"message", "code", "param"}}` (OpenAI and Together), else the body."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().splitlines()
        return text[0][:300] if text else response.reason_phrase or "no error message"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or error.get("type") or "no error message")
        extras = [f"{name} {error[name]}" for name in ("code", "param") if error.get(name)]
        return message + (f" ({', '.join(extras)})" if extras else "")
    if isinstance(error, str):
        return error
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(body)[:300]

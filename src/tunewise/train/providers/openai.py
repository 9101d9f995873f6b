"""OpenAI's fine-tuning API as a tunewise provider (`--provider openai`).

Shapes from the public API reference (platform.openai.com/docs/api-reference/fine-tuning and /files),
as mirrored by the official SDKs' generated types:
- POST /files, multipart: `file`, `purpose=fine-tune` -> File {id, object: "file", bytes, created_at, filename, purpose}
- POST /fine_tuning/jobs, JSON: {model, training_file, validation_file, suffix, seed,
  method: {type: "supervised", supervised: {hyperparameters: {n_epochs, batch_size, learning_rate_multiplier}}}}
  (the top-level `hyperparameters` field is deprecated in favour of `method`)
- GET /fine_tuning/jobs/{id} -> fine_tuning.job {id, status: validating_files|queued|running|succeeded|failed|
  cancelled, fine_tuned_model, trained_tokens, error: {code, message, param}, result_files, ...}
- GET /fine_tuning/jobs/{id}/events?limit=N -> {object: "list", data: [fine_tuning.job.event {id, created_at,
  level: info|warn|error, message, type: message|metrics, data}], has_more}, newest first
- POST /fine_tuning/jobs/{id}/cancel -> fine_tuning.job
- errors: {"error": {"message", "type", "param", "code"}}

Public reports say OpenAI accepts no new self-serve fine-tuning jobs from 2027-01-06; `RETIREMENT_DATE`
is checked by `tunewise.train.providers.jobs` before a job is created at api.openai.com.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from tunewise.train.providers.base import (
    CANCELLED,
    COMPLETED,
    FAILED,
    RUNNING,
    Provider,
    ProviderEvent,
    ProviderJob,
    UploadedFile,
)

RETIREMENT_DATE = date(2027, 1, 6)

_STATUS = {
    "validating_files": RUNNING,
    "queued": RUNNING,
    "running": RUNNING,
    "succeeded": COMPLETED,
    "failed": FAILED,
    "cancelled": CANCELLED,
}


class OpenAIProvider(Provider):
    name = "openai"
    title = "OpenAI"
    api_key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"
    jobs_path = "/fine_tuning/jobs"
    # "auto" picks epochs from the dataset size; 3 is what it picks for the small sets tunewise suggests starting with.
    default_epochs = 3
    hyperparameter_names = ("n_epochs", "batch_size", "learning_rate_multiplier", "suffix", "seed")
    retirement_date = RETIREMENT_DATE

    def upload_file(self, path: str | Path) -> UploadedFile:
        return self._upload("/files", path, content_type="application/jsonl", data={"purpose": "fine-tune"})

    def build_job_request(
        self, *, model: str, training_file: str, validation_file: str | None, hyperparameters: dict[str, Any]
    ) -> dict[str, Any]:
        params = self.normalize_hyperparameters(hyperparameters)
        tuned = {k: params[k] for k in ("n_epochs", "batch_size", "learning_rate_multiplier") if k in params}
        body: dict[str, Any] = {
            "model": model,
            "training_file": training_file,
            "method": {"type": "supervised", "supervised": {"hyperparameters": tuned}},
        }
        if validation_file:
            body["validation_file"] = validation_file
        for key in ("suffix", "seed"):
            if key in params:
                body[key] = params[key]
        return body

    def parse_job(self, raw: dict[str, Any]) -> ProviderJob:
        status = str(raw.get("status") or "")
        error = raw.get("error") or None
        message = None
        if isinstance(error, dict) and (error.get("message") or error.get("code")):
            message = str(error.get("message") or error.get("code"))
            extras = [f"{k} {error[k]}" for k in ("code", "param") if error.get(k)]
            if extras:
                message += f" ({', '.join(extras)})"
        return ProviderJob(
            id=str(raw.get("id")),
            status=_STATUS.get(status, RUNNING),
            provider_status=status,
            model_id=raw.get("fine_tuned_model"),
            billed_tokens=raw.get("trained_tokens"),
            error=message,
            raw=raw,
        )

    def list_events(self, job_id: str, *, limit: int = 100) -> list[ProviderEvent]:
        raw = self._request("GET", f"{self.jobs_path}/{job_id}/events", what=f"events of job {job_id}", params={"limit": limit})
        events = [
            ProviderEvent(
                key=str(item.get("id")),
                created_at=item.get("created_at"),
                level=str(item.get("level") or "info"),
                message=str(item.get("message") or ""),
                type=item.get("type"),
                data=item.get("data") if isinstance(item.get("data"), dict) else {},
            )
            for item in raw.get("data") or []
        ]
        # The API lists newest first; tunewise records and shows them in the order they happened.
        events.reverse()
        events.sort(key=lambda e: e.created_at or 0)
        return events

    def result(self, job: ProviderJob) -> dict[str, Any]:
        return {**super().result(job), "result_files": job.raw.get("result_files") or []}

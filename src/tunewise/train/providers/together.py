"""Together AI's fine-tuning API as a tunewise provider (`--provider together`): open-weight SFT/LoRA whose
weights can be downloaded and served by tunewise.

Shapes from Together's OpenAPI reference (docs.together.ai/reference/upload-file, /post-fine-tunes,
/get-fine-tunes-id, /get-fine-tunes-id-events; spec in github.com/togethercomputer/openapi) and the
together-py client (src/together/resources/fine_tuning.py, src/together/lib/resources/fine_tuning.py):
- POST /files/upload, multipart: `file`, `file_name`, `purpose=fine-tune`, `file_type=jsonl`
  -> FileResponse {id, object: "file", created_at, filename, bytes, purpose, Processed, FileType}
- POST /fine-tunes, JSON: {training_file, validation_file, model, n_epochs, n_evals, n_checkpoints,
  batch_size, learning_rate, warmup_ratio, suffix, random_seed,
  training_type: {type: "Lora", lora_r, lora_alpha, lora_dropout, lora_trainable_modules} | {type: "Full"},
  training_method: {method: "sft", train_on_inputs: "auto"}}. Older revisions of the API took top-level
  `lora: bool, lora_r, lora_alpha`; the current spec nests them in `training_type` (LoRA when omitted).
- GET /fine-tunes/{id} -> FinetuneResponse {id, status: pending|queued|running|compressing|uploading|
  cancel_requested|cancelled|error|user_error|completed, model_output_name, token_count,
  total_price (nanodollars), events, ...}
- GET /fine-tunes/{id}/events -> {data: [FineTuneEvent {object: "fine-tune-event", created_at, level, message,
  type, step, total_steps, token_count, hash, ...}]}
- POST /fine-tunes/{id}/cancel -> FinetuneResponseTruncated
- GET /finetune/download?ft_id=...&checkpoint=adapter|merged -> the weights as a compressed archive
- errors: {"error": {"message", "type", "param", "code"}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunewise.errors import ConfigError
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

_STATUS = {
    "pending": RUNNING,
    "queued": RUNNING,
    "running": RUNNING,
    "compressing": RUNNING,
    "uploading": RUNNING,
    "cancel_requested": RUNNING,
    "completed": COMPLETED,
    "error": FAILED,
    "user_error": FAILED,
    "cancelled": CANCELLED,
}
_NANODOLLARS = 1e9


class TogetherProvider(Provider):
    name = "together"
    title = "Together"
    api_key_env = "TOGETHER_API_KEY"
    base_url_env = "TOGETHER_BASE_URL"
    default_base_url = "https://api.together.xyz/v1"
    jobs_path = "/fine-tunes"
    default_epochs = 1
    hyperparameter_names = (
        "n_epochs",
        "batch_size",
        "learning_rate",
        "warmup_ratio",
        "n_evals",
        "n_checkpoints",
        "lora",
        "lora_r",
        "lora_alpha",
        "lora_dropout",
        "lora_trainable_modules",
        "train_on_inputs",
        "suffix",
        "seed",
    )

    def upload_file(self, path: str | Path) -> UploadedFile:
        data = {"purpose": "fine-tune", "file_name": Path(path).name, "file_type": "jsonl"}
        return self._upload("/files/upload", path, content_type="application/octet-stream", data=data)

    def build_job_request(
        self, *, model: str, training_file: str, validation_file: str | None, hyperparameters: dict[str, Any]
    ) -> dict[str, Any]:
        params = self.normalize_hyperparameters(hyperparameters)
        body: dict[str, Any] = {"model": model, "training_file": training_file}
        if validation_file:
            body["validation_file"] = validation_file
            body["n_evals"] = params.get("n_evals", 1)
        for key in ("n_epochs", "batch_size", "learning_rate", "warmup_ratio", "n_checkpoints", "suffix"):
            if key in params:
                body[key] = params[key]
        if "seed" in params:
            body["random_seed"] = params["seed"]
        lora = params.get("lora", True)
        if not lora:
            if any(k in params for k in ("lora_r", "lora_alpha", "lora_dropout", "lora_trainable_modules")):
                raise ConfigError("Together: lora_r/lora_alpha/lora_dropout only apply with lora=true")
            body["training_type"] = {"type": "Full"}
        elif "lora_r" in params or "lora_alpha" in params:
            rank = int(params.get("lora_r") or params["lora_alpha"] // 2)
            body["training_type"] = {
                "type": "Lora",
                "lora_r": rank,
                "lora_alpha": int(params.get("lora_alpha", rank * 2)),
                "lora_dropout": float(params.get("lora_dropout", 0.0)),
                "lora_trainable_modules": params.get("lora_trainable_modules", "all-linear"),
            }
        # else: no training_type, and Together trains a LoRA with the model's default rank.
        body["training_method"] = {"method": "sft", "train_on_inputs": params.get("train_on_inputs", "auto")}
        return body

    def parse_job(self, raw: dict[str, Any]) -> ProviderJob:
        status = str(raw.get("status") or "")
        price = raw.get("total_price")
        job = ProviderJob(
            id=str(raw.get("id")),
            status=_STATUS.get(status, RUNNING),
            provider_status=status,
            model_id=raw.get("model_output_name") or raw.get("output_name"),
            billed_tokens=raw.get("token_count"),
            cost_usd=(price / _NANODOLLARS) if isinstance(price, (int, float)) and price else None,
            raw=raw,
        )
        if job.status == FAILED:
            job.error = _last_error([_event(e) for e in raw.get("events") or [] if isinstance(e, dict)])
        return job

    def retrieve_job(self, job_id: str) -> ProviderJob:
        job = super().retrieve_job(job_id)
        if job.status == FAILED and not job.error:
            # The job object has no error field: the reason is in the job's events.
            job.error = _last_error(self.list_events(job_id))
        return job

    def list_events(self, job_id: str) -> list[ProviderEvent]:
        raw = self._request("GET", f"{self.jobs_path}/{job_id}/events", what=f"events of job {job_id}")
        return [_event(item) for item in raw.get("data") or [] if isinstance(item, dict)]

    def result(self, job: ProviderJob) -> dict[str, Any]:
        out = super().result(job)
        if job.status == COMPLETED:
            out["download"] = f"{self.base_url}/finetune/download?ft_id={job.id}&checkpoint=adapter"
        return out

    def download_weights(self, job_id: str, target: str | Path, *, checkpoint: str = "adapter") -> Path:
        """Save the job's weights (`adapter` or `merged`) as the compressed archive Together serves."""
        target = Path(target)
        response = self._request(
            "GET",
            "/finetune/download",
            what=f"download weights of job {job_id}",
            params={"ft_id": job_id, "checkpoint": checkpoint},
            raw=True,
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(response.content)
        return target


def _event(item: dict[str, Any]) -> ProviderEvent:
    data = {k: item[k] for k in ("step", "total_steps", "token_count", "param_count", "checkpoint_path") if item.get(k) is not None}
    key = item.get("hash") or f"{item.get('created_at')}|{item.get('type')}|{item.get('message')}"
    return ProviderEvent(
        key=str(key),
        created_at=item.get("created_at"),
        level=str(item.get("level") or "info").lower(),
        message=str(item.get("message") or ""),
        type=(str(item["type"]).lower() if item.get("type") else None),
        data=data,
    )


def _last_error(events: list[ProviderEvent]) -> str | None:
    for event in reversed(events):
        if event.level == "error" or (event.type or "") in {"job_error", "job_user_error"}:
            return event.message or event.type
    return None

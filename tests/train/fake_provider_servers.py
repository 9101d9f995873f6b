"""Real local HTTP servers that speak OpenAI's and Together's fine-tuning APIs, for the provider tests.

Each server runs a stdlib ThreadingHTTPServer on a free port, records every request it gets (method,
path, query, headers, JSON body or multipart fields), and answers with the public APIs' shapes
(see the docstrings of tunewise.train.providers.openai / .together for the references). A test scripts
a job's lifecycle (one stage per retrieve call) and injects faults per route:

    server.script = [stage("running", events=[...]), stage("succeeded", fine_tuned_model="ft:...")]
    server.faults["retrieve"] = [(429, {"error": {...}}, {"Retry-After": "1"})]
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any = None
    fields: dict[str, Any] = field(default_factory=dict)  # multipart: name -> str, or (filename, bytes) for files


def stage(status: str, *, events: list[dict] | None = None, **fields: Any) -> dict[str, Any]:
    """One step of a scripted job: the status the next retrieve reports, new events, and job fields to set."""
    return {"status": status, "events": events or [], "fields": fields}


def error_body(message: str, *, type: str = "invalid_request_error", code: str | None = None, param: str | None = None) -> dict:
    """The error envelope both APIs use: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class FakeServer:
    api_key = "sk-test-123"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()
        handler = type("Handler", (_Handler,), {"fake": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def reset(self) -> None:
        self.requests: list[Recorded] = []
        self.faults: dict[str, list[tuple[int, Any, dict[str, str]]]] = {}
        self.script: list[dict[str, Any]] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.file_bytes: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.counter = 0

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def routed(self, route: str) -> list[Recorded]:
        return [r for r in self.requests if getattr(r, "route", None) == route]

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:04d}"

    def advance(self, job_id: str) -> dict[str, Any]:
        """Apply the next scripted stage to a job (the last stage repeats once the script runs out)."""
        job = self.jobs[job_id]
        if self.script:
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            if step.get("applied") != job_id:
                self.apply_stage(job, step)
                step["applied"] = job_id
        return job

    # subclasses: handle(method, route path) -> (status, body, headers) and apply_stage(job, stage)
    def handle(self, request: Recorded) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError

    def apply_stage(self, job: dict[str, Any], step: dict[str, Any]) -> None:
        raise NotImplementedError


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _serve(self) -> None:
        parsed = urlparse(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Recorded(self.command, parsed.path, parse_qs(parsed.query), {k.lower(): v for k, v in self.headers.items()})
        ctype = self.headers.get("content-type", "")
        if ctype.startswith("application/json") and body:
            request.json = json.loads(body)
        elif ctype.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True) or b""
                filename = part.get_filename()
                request.fields[name] = (filename, payload) if filename else payload.decode()
        fake = self.fake
        with fake.lock:
            fake.requests.append(request)
            if request.headers.get("authorization") != f"Bearer {fake.api_key}":
                status, out, headers = 401, error_body("Incorrect API key provided", code="invalid_api_key"), {}
            else:
                status, out, headers = fake.handle(request)
        raw = out if isinstance(out, bytes) else json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if isinstance(out, bytes) else "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_DELETE = _serve


def _fault(fake: FakeServer, request: Recorded, route: str):
    request.route = route  # type: ignore[attr-defined]
    queue = fake.faults.get(route)
    if queue:
        return queue.pop(0)
    return None


def _valid_chat_jsonl(data: bytes) -> str | None:
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            return f"line {number} is not valid JSON"
        if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
            return f"line {number} has no messages"
    return None


class FakeOpenAI(FakeServer):
    """POST /v1/files, POST /v1/fine_tuning/jobs, GET .../{id}, GET .../{id}/events, POST .../{id}/cancel."""

    def handle(self, request: Recorded):
        parts = request.path.removeprefix("/v1").strip("/").split("/")
        now = int(time.time())
        if request.method == "POST" and parts == ["files"]:
            if fault := _fault(self, request, "upload"):
                return fault
            if request.fields.get("purpose") != "fine-tune" or not isinstance(request.fields.get("file"), tuple):
                return 400, error_body("'purpose' and 'file' are required", param="purpose"), {}
            filename, data = request.fields["file"]
            if problem := _valid_chat_jsonl(data):
                return 400, error_body(f"Invalid file format for Fine-Tuning API: {problem}", code="invalid_file_format", param="file"), {}
            file_id = self.next_id("file-")
            self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(data), "created_at": now,
                                   "filename": filename, "purpose": "fine-tune", "status": "processed"}
            self.file_bytes[file_id] = data
            return 200, self.files[file_id], {}
        if parts[:2] != ["fine_tuning", "jobs"]:
            return 404, error_body(f"Invalid URL ({request.method} {request.path})"), {}
        if request.method == "POST" and len(parts) == 2:
            if fault := _fault(self, request, "create"):
                return fault
            body = request.json or {}
            if body.get("training_file") not in self.files:
                return 400, error_body(f"invalid training_file: {body.get('training_file')}", param="training_file"), {}
            job_id = self.next_id("ftjob-")
            supervised = ((body.get("method") or {}).get("supervised") or {}).get("hyperparameters") or {}
            self.jobs[job_id] = {
                "object": "fine_tuning.job", "id": job_id, "model": body.get("model"), "created_at": now,
                "finished_at": None, "fine_tuned_model": None, "organization_id": "org-test", "result_files": [],
                "status": "validating_files", "validation_file": body.get("validation_file"),
                "training_file": body["training_file"], "hyperparameters": supervised, "trained_tokens": None,
                "error": {}, "seed": body.get("seed", 42), "method": body.get("method"),
            }
            self.events[job_id] = [_openai_event(job_id, 0, "info", "Validating training file")]
            return 200, self.jobs[job_id], {}
        job_id = parts[2] if len(parts) > 2 else ""
        if job_id not in self.jobs:
            return 404, error_body(f"Could not find fine tune: {job_id}", code="fine_tune_not_found"), {}
        if request.method == "GET" and len(parts) == 3:
            if fault := _fault(self, request, "retrieve"):
                return fault
            return 200, self.advance(job_id), {}
        if request.method == "GET" and parts[3:] == ["events"]:
            if fault := _fault(self, request, "events"):
                return fault
            limit = int(request.query.get("limit", ["20"])[0])
            newest_first = list(reversed(self.events[job_id]))
            return 200, {"object": "list", "data": newest_first[:limit], "has_more": len(newest_first) > limit}, {}
        if request.method == "POST" and parts[3:] == ["cancel"]:
            if fault := _fault(self, request, "cancel"):
                return fault
            self.jobs[job_id]["status"] = "cancelled"
            self.script = [stage("cancelled")]
            return 200, self.jobs[job_id], {}
        return 404, error_body(f"Invalid URL ({request.method} {request.path})"), {}

    def apply_stage(self, job: dict[str, Any], step: dict[str, Any]) -> None:
        job["status"] = step["status"]
        job.update(step["fields"])
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            job["finished_at"] = int(time.time())
        log = self.events[job["id"]]
        for event in step["events"]:
            log.append(_openai_event(job["id"], len(log), event.get("level", "info"), event["message"],
                                     type=event.get("type", "message"), data=event.get("data")))


def _openai_event(job_id: str, n: int, level: str, message: str, *, type: str = "message", data: Any = None) -> dict:
    return {"object": "fine_tuning.job.event", "id": f"ftevent-{job_id}-{n}", "created_at": 1_700_000_000 + n,
            "level": level, "message": message, "data": data or {}, "type": type}


class FakeTogether(FakeServer):
    """POST /v1/files/upload, POST /v1/fine-tunes, GET .../{id}, GET .../{id}/events, POST .../{id}/cancel,
    GET /v1/finetune/download."""

    weights = b"(\xb5/\xfd fake adapter archive"

    def handle(self, request: Recorded):
        parts = request.path.removeprefix("/v1").strip("/").split("/")
        now = "2026-06-20T10:00:00.000Z"
        if request.method == "POST" and parts == ["files", "upload"]:
            if fault := _fault(self, request, "upload"):
                return fault
            missing = [k for k in ("purpose", "file_name", "file") if k not in request.fields]
            if missing:
                return 400, error_body(f"missing form fields: {', '.join(missing)}", param=missing[0]), {}
            _, data = request.fields["file"]
            if problem := _valid_chat_jsonl(data):
                return 400, error_body(f"Invalid file: {problem}", param="file"), {}
            file_id = self.next_id("file-")
            self.files[file_id] = {"id": file_id, "object": "file", "created_at": 1_750_000_000,
                                   "filename": request.fields["file_name"], "bytes": len(data),
                                   "purpose": request.fields["purpose"], "Processed": True, "FileType": "jsonl"}
            return 200, self.files[file_id], {}
        if request.method == "GET" and parts == ["finetune", "download"]:
            request.route = "download"  # type: ignore[attr-defined]
            ft_id = request.query.get("ft_id", [""])[0]
            if ft_id not in self.jobs or self.jobs[ft_id]["status"] != "completed":
                return 404, error_body(f"no completed fine-tune {ft_id}"), {}
            return 200, self.weights, {}
        if parts[:1] != ["fine-tunes"]:
            return 404, error_body(f"not found: {request.path}"), {}
        if request.method == "POST" and len(parts) == 1:
            if fault := _fault(self, request, "create"):
                return fault
            body = request.json or {}
            if not body.get("model") or body.get("training_file") not in self.files:
                return 400, error_body("training_file and model are required", param="training_file"), {}
            job_id = self.next_id("ft-")
            self.jobs[job_id] = {
                "id": job_id, "status": "pending", "created_at": now, "updated_at": now, "model": body["model"],
                "training_file": body["training_file"], "validation_file": body.get("validation_file"),
                "n_epochs": body.get("n_epochs", 1), "training_type": body.get("training_type", {"type": "Lora"}),
                "training_method": body.get("training_method"), "suffix": body.get("suffix"), "events": [],
                "model_output_name": None, "token_count": None, "total_price": None, "user_id": "user-test",
            }
            self.events[job_id] = [_together_event(0, "info", "Fine tune request created", "job_pending")]
            return 200, {k: v for k, v in self.jobs[job_id].items() if k != "events"}, {}
        job_id = parts[1] if len(parts) > 1 else ""
        if job_id not in self.jobs:
            return 404, error_body(f"fine-tune job {job_id} not found"), {}
        if request.method == "GET" and len(parts) == 2:
            if fault := _fault(self, request, "retrieve"):
                return fault
            job = self.advance(job_id)
            return 200, {**job, "events": list(self.events[job_id])}, {}
        if request.method == "GET" and parts[2:] == ["events"]:
            if fault := _fault(self, request, "events"):
                return fault
            return 200, {"data": list(self.events[job_id])}, {}
        if request.method == "POST" and parts[2:] == ["cancel"]:
            if fault := _fault(self, request, "cancel"):
                return fault
            self.jobs[job_id]["status"] = "cancel_requested"
            self.script = [stage("cancelled")]
            return 200, {k: v for k, v in self.jobs[job_id].items() if k != "events"}, {}
        return 404, error_body(f"not found: {request.path}"), {}

    def apply_stage(self, job: dict[str, Any], step: dict[str, Any]) -> None:
        job["status"] = step["status"]
        job.update(step["fields"])
        log = self.events[job["id"]]
        for event in step["events"]:
            log.append(_together_event(len(log), event.get("level", "info"), event["message"], event.get("type", "job_start"),
                                       **{k: v for k, v in event.items() if k not in {"level", "message", "type"}}))


def _together_event(n: int, level: str, message: str, type: str, **extra: Any) -> dict:
    return {"object": "fine-tune-event", "created_at": f"2026-06-20T10:{n:02d}:00.000Z", "level": level, "message": message,
            "type": type, "param_count": 0, "token_count": 0, "total_steps": 0, "wandb_url": "", "step": 0,
            "checkpoint_path": "", "model_path": "", "training_offset": 0, "hash": f"h{n}", **extra}

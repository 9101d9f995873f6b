"""Exporting a deployment's request log as training data: the first half of the retrain loop.

    from tunewise.deploy.logs import export_logs
    exported = export_logs("tickets", "retrain.jsonl")          # chat JSONL, registered as a dataset
    exported.line()                                              # the counts, which add up to the rows logged

CLI: `tunewise deploy export-logs tickets -o retrain.jsonl --labeled-only`.

Which served request becomes which row (the last feedback on a request counts, as in `deploy status`):

- feedback with a label: the label is the assistant turn (`labelled`);
- feedback that says the reply was right (correct=True, or a score of 4-5): the logged reply is (`confirmed`);
- no feedback at all: the logged reply is, as an unreviewed row (`unreviewed`), because a reply nobody
  complained about is the best answer there is; `labeled_only` sends these to the sidecar instead;
- feedback that says the reply was wrong but gives no label, a request answered with an empty reply, or an
  unreviewed one under `labeled_only`: the request goes to `<out stem>.needs-label.jsonl` (its messages, no
  assistant turn, and its request id, so that a label can come back with `feedback`).

Failed requests (non-2xx) and shadow answers are counted and left out, as are requests whose last turn is not
a user's (`skipped`). The text is what the server logged: PII-redacted unless the deployment logs raw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tunewise.errors import ConfigError

SOURCE = "deploy export-logs"


@dataclass
class Exported:
    """What `export_logs` wrote; exported + needs_label + errors + skipped == logged."""

    deployment: str
    deployment_id: str
    path: Path
    needs_label_path: Path | None  # None when no request needs a label
    dataset_id: str | None  # None when no row was exported (nothing is registered)
    logged: int = 0  # request-log rows in the window, served and shadow
    labelled: int = 0
    confirmed: int = 0
    unreviewed: int = 0
    needs_label: int = 0
    errors: int = 0
    shadow: int = 0
    no_user_turn: int = 0
    unredacted: int = 0  # exported or queued rows logged raw (the deployment's log_raw was on)
    labeled_only: bool = False
    since: datetime | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exported(self) -> int:
        return self.labelled + self.confirmed + self.unreviewed

    @property
    def skipped(self) -> int:
        return self.shadow + self.no_user_turn

    def counts(self) -> dict[str, int]:
        return {"logged": self.logged, "exported": self.exported, "labelled": self.labelled, "confirmed": self.confirmed,
                "unreviewed": self.unreviewed, "needs_label": self.needs_label, "errors": self.errors,
                "skipped": self.skipped, "shadow": self.shadow, "no_user_turn": self.no_user_turn}

    def line(self) -> str:
        """One line of counts: `120 logged = 90 exported (...) + 12 need a label + 8 errors + 10 skipped (...)`."""
        return (f"{self.logged} logged = {self.exported} exported ({self.labelled} labelled, {self.confirmed} confirmed "
                f"correct, {self.unreviewed} unreviewed) + {self.needs_label} need a label + {self.errors} errors + "
                f"{self.skipped} skipped ({self.shadow} shadow, {self.no_user_turn} without a final user turn)")

    def privacy_line(self) -> str:
        if self.unredacted:
            return (f"{self.unredacted} of these rows were logged raw (the deployment logs unredacted): check them for "
                    "personal data before training or sharing; the rest were PII-redacted by the server.")
        return "The text is as the server logged it: PII-redacted before it was written (labels from feedback are as given)."


def export_logs(name: str, out: str | Path, *, labeled_only: bool = False, since: datetime | str | None = None,
                store=None) -> Exported:
    """Write deployment `name`'s served, successful requests to `out` as chat JSONL and register it as a dataset."""
    from tunewise.deploy.state import load
    from tunewise.store import Store

    out = Path(out)
    if out.suffix != ".jsonl":
        raise ConfigError(f"-o {out}: the export is chat JSONL; give a file name ending in .jsonl")
    start = _parse_since(since)
    sidecar = out.with_name(f"{out.stem}.needs-label.jsonl")
    with Store.borrow(store) as opened:
        loaded = load(name, store=opened)
        dep_id = loaded.record.id
        rows = opened.request_logs(dep_id, since=start, role=None)
        last: dict[str, Any] = {}
        for item in opened.feedback(dep_id, since=start):  # oldest first: the last one of each request wins
            last[item.request_id] = item
        result = Exported(deployment=loaded.name, deployment_id=dep_id, path=out, needs_label_path=None, dataset_id=None,
                          logged=len(rows), labeled_only=labeled_only, since=start)
        train: list[dict] = []
        queue: list[dict] = []
        for row in rows:
            left_out, messages = request_turns(row)
            if left_out:
                setattr(result, left_out, getattr(result, left_out) + 1)
                continue
            answer, kind = _answer(last.get(row.id), row.response, labeled_only=labeled_only)
            if not row.redacted:
                result.unredacted += 1
            if answer is None:
                result.needs_label += 1
                queue.append({"request_id": row.id, "messages": messages, "response": row.response, "variant": row.variant})
                continue
            setattr(result, kind, getattr(result, kind) + 1)
            train.append({"messages": [*messages, {"role": "assistant", "content": answer}]})
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_jsonl(out, train)
        if queue:
            _write_jsonl(sidecar, queue)
            result.needs_label_path = sidecar
        elif sidecar.exists():
            sidecar.unlink()  # from an earlier export: no request is waiting for a label now
        if train:
            meta = {"deployment_id": dep_id, "deployment": loaded.name, "source": SOURCE, "labeled_only": labeled_only,
                    "since": start.isoformat() if start else None, "counts": result.counts()}
            result.dataset_id = opened.add_dataset(out, format="chat", rows=len(train), role="train", meta=meta).id
        else:
            result.notes.append("no row was exported, so no dataset was registered")
    assert result.exported + result.needs_label + result.errors + result.skipped == result.logged
    return result


def request_turns(row) -> tuple[str | None, list[dict]]:
    """(None, messages) of a served, successful request that ends with a user turn; else (why it is left out, []).

    Why is one of the `Exported` counts: "shadow", "errors" or "no_user_turn". `tunewise distill label
    deployment:NAME` reads a deployment's traffic through this too.
    """
    if row.role != "served":
        return "shadow", []
    if not 200 <= (row.status or 0) < 300:
        return "errors", []
    messages = [dict(m) for m in (row.messages or []) if isinstance(m, dict)]
    if not messages or messages[-1].get("role") != "user":
        return "no_user_turn", []
    return None, messages


def _answer(feedback, response: str | None, *, labeled_only: bool) -> tuple[str | None, str]:
    """The assistant turn a request gets and which count it falls in; None: it needs a label."""
    reply = (response or "").strip()
    if feedback is not None:
        if feedback.label is not None and feedback.label.strip():
            return feedback.label, "labelled"
        right = feedback.correct if feedback.correct is not None else (feedback.score >= 4 if feedback.score is not None else None)
        if right is True and reply:
            return response, "confirmed"
        if right is False:
            return None, ""
    if labeled_only or not reply:
        return None, ""
    return response, "unreviewed"


def _parse_since(since: datetime | str | None) -> datetime | None:
    if since is None or since == "":
        return None
    if isinstance(since, str):
        try:
            since = datetime.fromisoformat(since)
        except ValueError:
            raise ConfigError(f"--since {since!r}: not an ISO 8601 date or time (for example 2026-03-01 or 2026-03-01T12:00)") from None
    return since if since.tzinfo is not None else since.replace(tzinfo=timezone.utc)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


__all__ = ["Exported", "export_logs", "request_turns", "SOURCE"]

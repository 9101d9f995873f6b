"""A distilled set as `tunewise distill label` leaves it in the store, for the tests that read one (advise, report)."""

from __future__ import annotations

import json


def register_distilled(store, tmp_path, *, teacher: str, rows: int, reviewed: int, summary: dict, distilled: bool = True):
    """`accepted.jsonl` and `summary.json` in tmp_path/distilled, registered with meta["distilled"] as label registers it."""
    folder = tmp_path / "distilled"
    folder.mkdir()
    accepted = folder / "accepted.jsonl"
    accepted.write_text(json.dumps({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]}) + "\n")
    (folder / "summary.json").write_text(json.dumps(summary))
    meta = {"distilled": {"teacher": teacher, "dir": str(folder), "source": "unlabeled.csv", "accepted": rows, "reviewed": reviewed}}
    return store.add_dataset(accepted, format="chat", rows=rows, meta=meta if distilled else {})

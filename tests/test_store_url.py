"""Every command that touches the store finds it the same way: TUNEWISE_DB_URL, then `store_url`, then SQLite."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tunewise.cli import app
from tunewise.store import Store, resolve_url

runner = CliRunner()
LABELS = ["billing", "refund", "login", "shipping"]


def _rows(n: int, seed: int) -> list[dict]:
    words = {"billing": "invoice charge", "refund": "money back", "login": "password locked", "shipping": "parcel late"}
    return [{"messages": [{"role": "user", "content": f"ticket {seed}-{i}: {words[LABELS[i % 4]]} {i}"},
                          {"role": "assistant", "content": LABELS[i % 4]}]} for i in range(n)]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute(f"select count(*) from {table}").fetchone()[0]


@pytest.fixture
def elsewhere(isolated_workspace, tmp_path, tiny_model_dir, monkeypatch) -> Path:
    """A workspace whose tunewise.yaml points the store at a file outside the workspace."""
    from tunewise.console import console

    monkeypatch.setattr(console, "_width", 400)  # status prints the URL whole
    db = tmp_path / "elsewhere" / "team.db"
    settings = {
        "model": str(tiny_model_dir),
        "store_url": f"sqlite:///{db}",
        "train": {"max_steps": 2, "batch_size": 8, "max_seq_length": 64, "lora_alpha": 8, "lora_dropout": 0.0,
                  "warmup_ratio": 0.0, "logging_steps": 1, "threads": 1},
    }
    (isolated_workspace / "tunewise.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
    return db


def test_the_environment_wins_over_the_yaml_which_wins_over_the_default(elsewhere, tmp_path, monkeypatch, isolated_workspace):
    assert resolve_url() == (f"sqlite:///{elsewhere}", f"store_url in {isolated_workspace / 'tunewise.yaml'}")
    monkeypatch.setenv("TUNEWISE_DB_URL", f"sqlite:///{tmp_path / 'ci.db'}")
    assert resolve_url() == (f"sqlite:///{tmp_path / 'ci.db'}", "TUNEWISE_DB_URL")
    monkeypatch.delenv("TUNEWISE_DB_URL")
    (isolated_workspace / "tunewise.yaml").write_text("model: smollm2-135m\n", encoding="utf-8")
    url, source = resolve_url()
    assert url == f"sqlite:///{isolated_workspace / '.tunewise' / 'tunewise.db'}" and source.startswith("default")


def test_every_command_reads_and_writes_the_configured_store(elsewhere, tmp_path, isolated_workspace):
    train = _write(tmp_path / "train.jsonl", _rows(48, seed=1))
    evals = _write(tmp_path / "eval.jsonl", _rows(12, seed=2))

    def ok(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, f"tunewise {' '.join(args)}:\n{result.output}"
        return result.output

    assert str(elsewhere) in ok("status")
    export = tmp_path / "tickets.csv"
    export.write_text("body,team\n" + "".join(f"ticket {i} {LABELS[i % 4]} words,{LABELS[i % 4]}\n" for i in range(40)), encoding="utf-8")
    ok("data", "import", str(export), "--text-column", "body", "--label-column", "team", "-o", str(tmp_path / "tickets.jsonl"))
    ok("data", "clean", str(tmp_path / "tickets.jsonl"), "--dedup", "-o", str(tmp_path / "tickets.clean.jsonl"))
    ok("data", "split", str(tmp_path / "tickets.clean.jsonl"), "--eval-size", "8")
    assert _count(elsewhere, "datasets") >= 4  # imported, cleaned, and the two halves of the split
    ok("data", "audit", str(train), "--eval", str(evals))
    assert _count(elsewhere, "audits") == 1

    ok("train", "--data", str(train), "--eval-data", str(evals))
    (run,) = Store.open(f"sqlite:///{elsewhere}").list_runs()
    assert run.status == "completed" and run.id in ok("runs")
    ok("export", run.id, "--merge", "-o", str(tmp_path / "merged"))
    assert "merged" in Store.open(f"sqlite:///{elsewhere}").get_run(run.id).artifacts

    # The evaluation must find the run that `train` just wrote: before one opener, it looked in the default store.
    ok("eval", "--data", str(evals), "--train", str(train), "-c", f"adapter:{run.id}", "-c", "classic:tfidf")
    ok("eval", "curve", "--data", str(train), "--eval", str(evals), "--sizes", "16,32")
    ok("eval", "export-review", "-o", str(tmp_path / "review"), "--limit", "3")
    (sheet,) = (tmp_path / "review").glob("review-*.csv")
    with sheet.open(encoding="utf-8", newline="") as handle:
        table = list(csv.reader(handle))
    table[1][table[0].index("rating: classic:tfidf")] = "4"
    with sheet.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(table)
    ok("eval", "import-review", str(sheet))
    answers = tmp_path / "answers.yaml"
    answers.write_text(yaml.safe_dump({"requests_per_month": 100_000, "cost_per_error_usd": 0.05}), encoding="utf-8")
    ok("advise", "--answers", str(answers))
    ok("report", "-o", str(tmp_path / "report"))

    assert _count(elsewhere, "runs") >= 3  # the run and the curve's two points
    assert _count(elsewhere, "evaluations") >= 2 and _count(elsewhere, "decisions") == 1
    with sqlite3.connect(elsewhere) as connection:
        assert connection.execute("select count(*) from evaluations where results like '%human_review%rows_rated%'").fetchone()[0] == 1
    assert not (isolated_workspace / ".tunewise" / "tunewise.db").exists()

"""`tunewise data import | clean | split` end to end: exit codes, what they print, and one-line errors on bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tunewise.cli import app, main
from tunewise.data.quarantine import read_quarantine

runner = CliRunner()


def _row(text: str, label: str) -> str:
    return json.dumps({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": label}]})


def _run_main(args, capsys) -> tuple[int, str]:
    """Through `tunewise.cli.main`, the edge that turns library errors into one line and an exit code."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


def test_import_csv_with_options(tmp_path):
    src = tmp_path / "tickets.csv"
    src.write_text("body,queue\nMy card was charged twice,billing\n,bug\nApp crashes,bug\n")
    result = runner.invoke(app, ["data", "import", str(src), "--text-column", "body", "--label-column", "queue",
                                 "--system-prompt", "Route it."])
    assert result.exit_code == 0, result.output
    assert "Imported 2 of 3 rows (csv)" in result.output
    assert "line 3: missing_content" in result.output
    out = tmp_path / "tickets.chat.jsonl"
    assert [json.loads(line)["messages"][0]["content"] for line in out.read_text().splitlines()] == ["Route it."] * 2
    assert [row["line"] for row in read_quarantine(tmp_path / "tickets.chat.quarantine.jsonl")] == [3]


@pytest.mark.parametrize("args, where", [
    (["data", "import", "{tmp}/missing.jsonl"], "missing.jsonl: file not found"),
    (["data", "import", "{tmp}/t.csv", "--text-column", "text"], "t.csv: missing column 'text'"),
    (["data", "import", "{tmp}/t.csv", "--format", "xml"], "t.csv: unknown format"),
    (["data", "clean", "{tmp}/t.csv", "--drop-contaminated"], "--eval"),
    (["data", "split", "{tmp}/t.csv", "--eval-size", "50"], "t.csv: --eval-size 50"),
])
def test_bad_input_is_one_line_naming_the_file_and_exit_2(tmp_path, capsys, args, where):
    (tmp_path / "t.csv").write_text("body,queue\nhi,a\nho,b\n")
    code, output = _run_main([a.format(tmp=tmp_path) for a in args], capsys)
    assert code == 2
    assert "Traceback" not in output
    [line] = [line for line in output.splitlines() if line.strip()]
    assert line.startswith("error:") and where in line


def test_clean_with_every_fix(tmp_path):
    texts = [f"ticket number {i} about topic {w} and nothing else whatsoever here" for i, w in enumerate("abcdefgh")]
    lines = [_row(t, "x") for t in texts] + [_row(texts[0], "x"), "{bad", _row("mail me at ann@example.com", "x")]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(lines) + "\n")
    evals = tmp_path / "eval.jsonl"
    evals.write_text(_row(texts[3], "x") + "\n")
    out = tmp_path / "clean.jsonl"
    result = runner.invoke(app, ["data", "clean", str(train), "--dedup", "--redact-pii", "--drop-contaminated",
                                 "--eval", str(evals), "-o", str(out)])
    assert result.exit_code == 0, result.output
    kept = out.read_text().splitlines()
    quarantined = read_quarantine(tmp_path / "clean.quarantine.jsonl")
    assert len(kept) == 8 and len(quarantined) == 3 and len(kept) + len(quarantined) == len(lines)
    assert sorted(row["reason"].split(":")[0] for row in quarantined) == ["contaminated", "duplicate", "invalid_json"]
    assert any("[EMAIL]" in line for line in kept)
    for label in ("rows read", "duplicates removed", "contaminated removed", "PII redacted"):
        assert label in result.output


def test_split_command_is_seeded_and_stratified(tmp_path):
    src = tmp_path / "data.jsonl"
    src.write_text("\n".join(_row(f"request {i} " + " ".join(f"w{i}x{j}" for j in range(8)), "ab"[i % 2]) for i in range(40)) + "\n")
    args = ["data", "split", str(src), "--eval-size", "10", "--seed", "5"]
    first = runner.invoke(app, [*args, "-o", str(tmp_path / "a")])
    second = runner.invoke(app, [*args, "-o", str(tmp_path / "b")])
    assert first.exit_code == second.exit_code == 0, first.output
    assert "stratified by label" in first.output and "seed 5" in first.output
    assert (tmp_path / "a" / "data.eval.jsonl").read_bytes() == (tmp_path / "b" / "data.eval.jsonl").read_bytes()
    assert len((tmp_path / "a" / "data.eval.jsonl").read_text().splitlines()) == 10


@pytest.mark.parametrize("command", ["import", "clean", "split"])
def test_help_has_an_example(command):
    result = runner.invoke(app, ["data", command, "--help"])
    assert result.exit_code == 0 and "Example" in result.output

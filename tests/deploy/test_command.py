"""`tunewise deploy create/set/list/history` as a user runs them: one-line errors, the trail of changes."""

import pytest
from typer.testing import CliRunner

from tunewise.cli import main

runner = CliRunner()


def run(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


@pytest.fixture(autouse=True)
def store_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEWISE_DB_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.chdir(tmp_path)


def test_create_set_and_history_record_who_changed_what(capsys, monkeypatch):
    monkeypatch.setenv("TUNEWISE_ACTOR", "ops@example")
    code, out = run(["deploy", "create", "tickets", "--baseline", "zero-shot:smollm2-135m", "--candidate", "adapter:run-3f2a",
                     "--share", "10"], capsys)
    assert code == 0, out
    assert "candidate 10%" in out and "tunewise serve --deployment tickets" in out
    run(["deploy", "set", "tickets", "--share", "25"], capsys)
    code, out = run(["deploy", "set", "tickets", "--rollback", "--reason", "refund complaints"], capsys)
    assert "off (rolled back)" in out
    code, out = run(["deploy", "history", "tickets"], capsys)
    assert "rollback" in out and "refund complaints" in out and "ops@example" in out
    code, out = run(["deploy", "list"], capsys)
    assert "tickets" in out


def test_bad_input_is_one_line_without_a_traceback(capsys):
    code, out = run(["deploy", "set", "missing", "--share", "5"], capsys)
    assert code == 2 and "no deployment 'missing'" in out and "Traceback" not in out
    code, out = run(["deploy", "create", "x", "--baseline", "bogus"], capsys)
    assert code == 2 and "--baseline" in out and "Traceback" not in out


def test_serving_an_unknown_deployment_names_the_list_command(capsys):
    code, out = run(["serve", "--deployment", "missing", "--port", "0"], capsys)
    assert code == 2 and "no deployment 'missing'" in out and "tunewise deploy list" in out and "Traceback" not in out

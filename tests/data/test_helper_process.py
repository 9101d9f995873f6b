"""The helper process that gives CPU-bound passes a second core (tunewise.data.helper_process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tunewise.data.helper_process import HelperFailed, HelperProcess


def test_answers_come_back_in_order_and_errors_as_helper_failed():
    helper = HelperProcess("math:factorial")
    try:
        futures = [helper.submit(n) for n in range(8)]
        assert [f.result(timeout=60) for f in futures] == [1, 1, 2, 6, 24, 120, 720, 5040]
        with pytest.raises(HelperFailed, match="ValueError"):
            helper.submit(-1).result(timeout=60)
        assert helper.submit(5).result(timeout=60) == 120  # one failed job does not end the helper
    finally:
        helper.close()


def test_a_helper_that_cannot_start_fails_its_jobs_instead_of_hanging():
    helper = HelperProcess("no_such_module_here:f")
    with pytest.raises(HelperFailed):
        helper.submit(1).result(timeout=60)
    with pytest.raises(HelperFailed):
        helper.submit(2)
    assert not helper.ready


def test_a_script_without_a_main_guard_runs_once(tmp_path):
    # multiprocessing's spawn would run this script's top level again in its worker; the helper must not.
    marker = tmp_path / "runs.txt"
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(f"""
        from tunewise.data.helper_process import HelperProcess
        with open({str(marker)!r}, "a") as out:
            out.write("run\\n")
        helper = HelperProcess("math:factorial")
        print(helper.submit(6).result(timeout=60))
        helper.close()
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "720"
    assert marker.read_text() == "run\n"

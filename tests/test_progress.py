"""The progress helper outside a terminal: plain lines every few percent, with the stats and an ETA."""

import io
import re

from rich.console import Console

from tunewise.progress import ProgressLine


def _plain_console():
    stream = io.StringIO()
    return Console(file=stream, force_terminal=False, width=200), stream


def test_a_hundred_steps_print_about_twenty_plain_lines():
    console, stream = _plain_console()
    with ProgressLine("train", total=100, console=console) as bar:
        for step in range(1, 101):
            bar.update(step, stats=f"loss {1 / step:.4f}")
    lines = stream.getvalue().splitlines()
    assert 18 <= len(lines) <= 22
    assert "\x1b" not in stream.getvalue()  # no escape codes in a log file
    first = lines[0]
    assert re.match(r"train  5/100 \(5%\)  loss 0\.2000  elapsed \d+:\d\d  ETA \d+:\d\d$", first), first
    assert lines[-1].startswith("train  100/100 (100%)  loss 0.0100  elapsed ")
    assert "ETA" not in lines[-1]  # nothing remains at the end
    assert [int(re.search(r"\((\d+)%\)", line).group(1)) for line in lines] == list(range(5, 101, 5))


def test_dict_stats_unknown_totals_and_the_final_line():
    console, stream = _plain_console()
    bar = ProgressLine("import tickets.csv", console=console, unit="rows")
    bar.update(10_000, stats={"rate": "1,000 rows/s", "loss": 1.5, "skipped": None})
    bar.update(20_000)
    bar.close()
    bar.close()  # closing twice prints once
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("import tickets.csv  10,000 rows  rate 1,000 rows/s  loss 1.5000  elapsed ")
    assert lines[-1].startswith("import tickets.csv  20,000 rows")
    assert len(lines) == 2


def test_waits_longer_than_the_interval_print_a_line(monkeypatch):
    console, stream = _plain_console()
    clock = [0.0]
    monkeypatch.setattr("tunewise.progress.time.monotonic", lambda: clock[0])
    bar = ProgressLine("eval", total=1000, console=console, interval_s=30)
    bar.update(1)
    assert stream.getvalue() == ""
    clock[0] = 31.0
    bar.update(2)
    assert stream.getvalue().startswith("eval  2/1,000 (0%)  elapsed 0:31  ETA ")


def test_disabled_prints_nothing():
    console, stream = _plain_console()
    with ProgressLine("train", total=10, console=console, enabled=False) as bar:
        for step in range(10):
            bar.advance()
        bar.note("hello")
    assert stream.getvalue() == ""


def test_in_a_terminal_it_draws_a_bar():
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120)
    with ProgressLine("train", total=4, console=console) as bar:
        for _ in range(4):
            bar.advance(stats="loss 1.0")
    assert "━" in stream.getvalue() and "4/4" in stream.getvalue()


def test_nothing_is_printed_when_no_update_came():
    console, stream = _plain_console()
    with ProgressLine("reading small.csv", console=console, unit="rows"):
        pass
    assert stream.getvalue() == ""

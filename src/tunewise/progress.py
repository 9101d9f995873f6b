"""Progress of long commands (training, evaluation, the audit, imports, provider jobs), seen everywhere.

In a terminal it is a Rich progress bar on stderr; anywhere else (output redirected to a file, CI) a
live bar is invisible, so it prints a plain line every few percent, at least every ~30 s while updates
come, and at the end:

    train  45/125 (36%)  loss 1.2345  eval 1.1000  182 tok/s  elapsed 1:10  ETA 2:05

    from tunewise.progress import ProgressLine
    with ProgressLine("train", total=125) as bar:
        for step in range(1, 126):
            bar.update(step, stats={"loss": 1.2345})
"""

from __future__ import annotations

import math
import time
from typing import Any


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _stats_text(stats: str | dict | None) -> str:
    if not stats:
        return ""
    if isinstance(stats, str):
        return stats
    parts = []
    for key, value in stats.items():
        if value is None or value == "":
            continue
        if isinstance(value, float):
            value = f"{value:.4f}"
        parts.append(f"{key} {value}")
    return "  ".join(parts)


class ProgressLine:
    """One progress display: a Rich bar in a terminal, plain lines elsewhere; silent when `enabled` is False.

    `total` may be None (a count without an end, e.g. rows read). `every` is the share of the total
    between plain lines and `interval_s` the longest wait between them (checked on each update); `unit`
    follows the counts ("rows"). Use it as a context manager, or call `close()`.
    Example: with ProgressLine("audit exact duplicates", total=10_000, unit="rows") as bar: bar.update(5_000)
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        completed: int = 0,
        unit: str = "",
        enabled: bool = True,
        console=None,
        every: float = 0.05,
        interval_s: float = 30.0,
        transient: bool = False,
    ):
        if console is None:
            from tunewise.console import err_console as console
        self.console = console
        self.label = label
        self.total = total
        self.completed = completed
        self.unit = unit
        self.stats = ""
        self.enabled = enabled
        self.every = every
        self.interval_s = interval_s
        self._start_completed = completed
        self._started = time.monotonic()
        self._last_print = self._started
        self._bucket = self._bucket_of(completed)
        self._printed: tuple | None = None
        self._bar = None
        self._closed = False
        self._updated = False
        if enabled and console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
            if unit:
                columns.append(TextColumn(unit))
            columns += [TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
            self._bar = Progress(*columns, console=console, transient=transient)
            self._task = self._bar.add_task(label, total=total, completed=completed, stats="")
            self._bar.start()

    # -- updates ------------------------------------------------------------------------------------------
    def update(self, completed: int | None = None, *, advance: int = 0, total: int | None = None,
               stats: str | dict | None = None, label: str | None = None) -> None:
        """Set the count (`completed`) or add to it (`advance`); new `stats`, `total` or `label` replace the old."""
        if completed is not None:
            self.completed = completed
        self.completed += advance
        if total is not None:
            self.total = total
        if stats is not None:
            self.stats = _stats_text(stats)
        if label is not None:
            self.label = label
        self._updated = True
        if not self.enabled or self._closed:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed, total=self.total, description=self.label, stats=self.stats)
            return
        now = time.monotonic()
        bucket = self._bucket_of(self.completed)
        first_count = self._printed is None and self.total is None  # a count without an end shows it has begun
        if first_count or bucket > self._bucket or now - self._last_print >= self.interval_s:
            self._bucket = max(bucket, self._bucket)
            self._print(now)

    def advance(self, n: int = 1, *, stats: str | dict | None = None) -> None:
        self.update(advance=n, stats=stats)

    def note(self, text: str, **print_kwargs: Any) -> None:
        """Print a message above the bar (or between the plain lines)."""
        if self.enabled:
            self.console.print(text, **{"highlight": False, "soft_wrap": True, **print_kwargs})

    def close(self) -> None:
        """Stop the bar, or print the final plain line unless it was the last one printed (or nothing ever came)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.stop()
        elif self.enabled and self._updated and self._printed != self._state():
            self._print(time.monotonic())

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- plain lines ---------------------------------------------------------------------------------------
    def _bucket_of(self, completed: int) -> int:
        if not self.total or self.every <= 0:
            return 0
        return math.floor(min(completed, self.total) / self.total / self.every + 1e-9)

    def _state(self) -> tuple:
        return (self.completed, self.total, self.stats, self.label)

    def line(self, now: float | None = None) -> str:
        """The plain line for the current state, e.g. `train  45/125 (36%)  loss 1.2345  elapsed 1:10  ETA 2:05`."""
        now = time.monotonic() if now is None else now
        elapsed = now - self._started
        unit = f" {self.unit}" if self.unit else ""
        if self.total:
            count = f"{self.completed:,}/{self.total:,}{unit} ({100 * self.completed / self.total:.0f}%)"
        else:
            count = f"{self.completed:,}{unit}"
        parts = [self.label, count]
        if self.stats:
            parts.append(self.stats)
        parts.append(f"elapsed {_clock(elapsed)}")
        done = self.completed - self._start_completed
        if self.total and 0 < done and self.completed < self.total and elapsed > 0:
            parts.append(f"ETA {_clock(elapsed / done * (self.total - self.completed))}")
        return "  ".join(parts)

    def _print(self, now: float) -> None:
        self.console.print(self.line(now), markup=False, highlight=False, soft_wrap=True)
        self._last_print = now
        self._printed = self._state()


__all__ = ["ProgressLine"]

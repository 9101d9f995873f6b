"""A second process that sketches rows for the near-duplicate check while this one sketches others.

Sketching (exact keys, shingle hashes, MinHash) is CPU-bound and holds the GIL for much of its time:
rensa hands its digests back as Python ints, six million of them per 50,000 rows. Threads therefore
gain nothing, and a second process halves the time on two cores. The process is started with
`subprocess`, not `multiprocessing`: spawn and forkserver re-import the caller's `__main__` (which
breaks scripts without a main guard), and fork can hang on locks that tokenizer threads hold.

The helper runs `main()` below and speaks length-prefixed frames over its stdin and stdout:
- parent to helper, once: the code-point class table (so the helper need not spend 0.5 s building it);
- helper to parent, once: an empty frame meaning "ready";
- parent to helper, per job: row lengths in characters (int64) and the rows as UTF-8 (lone surrogates kept);
- helper to parent, per job: exact keys (int64) and MinHash values (uint32, rows x SIGNATURE_WIDTH).
Closing its stdin ends it. Any failure on the parent's side makes `SketchHelper` raise `HelperFailed`;
the caller then sketches in-process, so a result never depends on whether the helper worked.
"""

from __future__ import annotations

import os
import queue
import struct
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import BinaryIO, Sequence

import numpy as np

_HEADER = struct.Struct("<qq")  # (rows, payload bytes); rows = -1 for the ready frame
_READY = -1


class HelperFailed(RuntimeError):
    """The helper process could not start, died, or answered out of protocol."""


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise EOFError(f"expected {size} bytes, got {0 if data is None else len(data)}")
    return data


def _pack_rows(texts: Sequence[str]) -> bytes:
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    codes = "".join(texts).encode("utf-8", "surrogatepass")
    return _HEADER.pack(len(texts), len(codes)) + lengths.tobytes() + codes


def _unpack_rows(stream: BinaryIO) -> list[str] | None:
    header = stream.read(_HEADER.size)
    if not header:
        return None
    rows, size = _HEADER.unpack(header)
    bounds = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.frombuffer(_read_exact(stream, 8 * rows), dtype=np.int64), out=bounds[1:])
    joined = _read_exact(stream, size).decode("utf-8", "surrogatepass")
    edges = bounds.tolist()
    return [joined[a:b] for a, b in zip(edges, edges[1:])]


class SketchHelper:
    """The parent's handle on one helper process: `submit` jobs while `has_room`, collect answers in order.

    Example (what `DedupIndex` does): `helper = SketchHelper(width, table)`, then while sketching blocks
    in-process, `helper.submit(rows)` whenever `helper.has_room`, and take `(keys, sigs)` with `helper.poll()`.
    """

    DEPTH = 2  # jobs in flight: the helper starts the next one while we read the last answer

    def __init__(self, width: int, char_table: np.ndarray):
        self.width = width
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        # The helper must import this same tunewise, wherever it was imported from (a checkout, a wheel).
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "from tunewise.data.sketch_helper import main; main()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        except OSError as error:
            raise HelperFailed(f"could not start: {error}") from error
        _widen_pipes(self._proc)
        self._jobs: queue.Queue = queue.Queue()
        self._answers: queue.Queue = queue.Queue()
        self._ready = threading.Event()
        self._failed: str | None = None
        self.outstanding = 0
        # Two threads do the pipe I/O on our side, so the caller never stalls on a full pipe: one writes the
        # table and the jobs (the helper may still be importing), one drains the answers as they come.
        table = char_table.astype(np.uint8).tobytes()
        self._jobs.put(_HEADER.pack(0, len(table)) + table)
        for target in (self._write, self._read):
            threading.Thread(target=target, daemon=True, name="tunewise-sketch-helper").start()
        self._finalizer = weakref.finalize(self, _shutdown, self._proc, self._jobs)

    def _write(self) -> None:
        try:
            while (frame := self._jobs.get()) is not None:
                self._proc.stdin.write(frame)
                self._proc.stdin.flush()
        except Exception as error:
            self._fail(error)

    def _read(self) -> None:
        stdout = self._proc.stdout
        try:
            rows, _ = _HEADER.unpack(_read_exact(stdout, _HEADER.size))
            if rows != _READY:
                raise HelperFailed("no ready frame")
            self._ready.set()
            while True:
                rows, size = _HEADER.unpack(_read_exact(stdout, _HEADER.size))
                keys = np.frombuffer(_read_exact(stdout, 8 * rows), dtype=np.int64)
                sigs = np.frombuffer(_read_exact(stdout, size), dtype=np.uint32).reshape(rows, self.width)
                self._answers.put((keys, sigs))
        except Exception as error:  # EOF after close is expected; before it, the helper is unusable
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        if self._failed is None:
            self._failed = f"{type(error).__name__}: {error}"
        self._answers.put(None)
        self._ready.set()

    @property
    def has_room(self) -> bool:
        """Ready, working, and fewer than DEPTH jobs in flight."""
        return self._ready.is_set() and self._failed is None and self.outstanding < self.DEPTH

    def submit(self, texts: Sequence[str]) -> None:
        if self._failed is not None:
            raise HelperFailed(self._failed)
        self._jobs.put(_pack_rows(texts))
        self.outstanding += 1

    def poll(self, timeout: float | None = 0.0) -> tuple[np.ndarray, np.ndarray] | None:
        """The oldest job's (keys, sigs), or None if it is not done within `timeout` seconds (None: wait)."""
        if not self.outstanding:
            return None
        try:
            answer = self._answers.get(timeout=timeout) if timeout != 0.0 else self._answers.get_nowait()
        except queue.Empty:
            return None
        if answer is None:
            raise HelperFailed(self._failed or "helper ended")
        self.outstanding -= 1
        return answer

    def close(self) -> None:
        self._finalizer()


def _widen_pipes(proc: subprocess.Popen) -> None:
    """Let a whole answer (about 0.5 MB per 1,000 rows) sit in the pipe: with the default 64 KB, the helper waits
    for our reader thread once per 64 KB, and that thread waits for the GIL each time (Linux only)."""
    try:
        import fcntl
    except ImportError:  # Windows: default pipes, slower but correct
        return

    for stream in (proc.stdin, proc.stdout):
        try:
            fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        except OSError:
            pass  # over /proc/sys/fs/pipe-max-size: slower, still correct


def _shutdown(proc: subprocess.Popen, jobs: queue.Queue) -> None:
    # The writer thread closes nothing itself: ending its queue and closing stdin ends the helper; it is
    # reaped in the background so that closing costs the caller nothing.
    jobs.put(None)
    try:
        proc.stdin.close()
    except OSError:
        pass
    threading.Thread(target=_reap, args=(proc,), daemon=True).start()


def _reap(proc: subprocess.Popen) -> None:
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    """The helper's side: read the table, say ready, then answer jobs until stdin closes."""
    from tunewise.data import dedup

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    _, size = _HEADER.unpack(_read_exact(stdin, _HEADER.size))
    dedup._use_char_classes(np.frombuffer(_read_exact(stdin, size), dtype=np.uint8))
    stdout.write(_HEADER.pack(_READY, 0))
    stdout.flush()
    while (texts := _unpack_rows(stdin)) is not None:
        keys, sigs = dedup._sketch_rows(texts)
        sigs = np.ascontiguousarray(sigs, dtype=np.uint32)
        stdout.write(_HEADER.pack(len(texts), sigs.nbytes) + keys.astype(np.int64).tobytes() + sigs.tobytes())
        stdout.flush()

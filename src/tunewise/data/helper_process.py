"""A second Python process that runs one function over jobs, so that a CPU-bound pass uses a second core.

Threads do not help the passes this serves (token counting and PII in the audit, MinHash sketching in
the near-duplicate check): they hold the GIL. The process is started with `subprocess`, not
`multiprocessing`: spawn and forkserver re-import the caller's `__main__`, which runs a script's top-level
code a second time when it has no `if __name__ == "__main__":` guard, and fork can hang on locks that
tokenizer threads hold. The helper imports only what its function needs.

Jobs and answers are pickled, length-prefixed frames over the helper's stdin and stdout; answers come
back in the order the jobs went. Any failure (the helper cannot start, dies, or its function raises)
makes the job's future raise `HelperFailed`; callers then do the work in-process, so a result never
depends on whether the helper worked.
"""

from __future__ import annotations

import collections
import importlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import weakref
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO

_LENGTH = struct.Struct("<q")


class HelperFailed(RuntimeError):
    """The helper process could not start, died, or its function raised."""


def _read_frame(stream: BinaryIO) -> bytes | None:
    header = stream.read(_LENGTH.size)
    if not header:
        return None
    (size,) = _LENGTH.unpack(header)
    data = stream.read(size)
    if len(data) != size:
        raise EOFError(f"expected {size} bytes, got {len(data)}")
    return data


def _frame(value: Any) -> bytes:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def _resolve(spec: str):
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


class HelperProcess:
    """Runs `target` ("module:function") in a helper process: `submit(*args)` returns a Future of its result.

    `init` ("module:function", called once with `init_args`) prepares the helper, e.g. loads a tokenizer.
    Example: `helper = HelperProcess("math:factorial")`, `helper.submit(20).result()`, `helper.close()`.
    """

    def __init__(self, target: str, *, init: str | None = None, init_args: tuple = ()):
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        # The helper must import this same tunewise, wherever it was imported from (a checkout, a wheel).
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "from tunewise.data.helper_process import serve; serve()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        except OSError as error:
            raise HelperFailed(f"could not start: {error}") from error
        _widen_pipes(self._proc)
        self._frames: queue.Queue = queue.Queue()
        self._pending: collections.deque[Future] = collections.deque()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.failed: str | None = None
        self._frames.put(_frame((target, init, init_args)))
        # Two threads do the pipe I/O on our side, so the caller never stalls on a full pipe: one writes the
        # jobs (the helper may still be importing), one reads the answers as they come.
        for work in (self._write, self._read):
            threading.Thread(target=work, daemon=True, name="tunewise-helper-io").start()
        self._finalizer = weakref.finalize(self, _shutdown, self._proc, self._frames)

    @property
    def ready(self) -> bool:
        """The helper has started and is working (jobs submitted earlier wait until then)."""
        return self._ready.is_set() and self.failed is None

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    def submit(self, *args) -> Future:
        future: Future = Future()
        with self._lock:
            if self.failed is not None:
                raise HelperFailed(self.failed)
            self._pending.append(future)
            self._frames.put(_frame(args))
        return future

    def close(self, *, cancel_futures: bool = False) -> None:
        """Stop the helper once its queued jobs are answered (or now, failing them, with `cancel_futures`)."""
        if cancel_futures:
            self._fail(HelperFailed("closed"))
            self._proc.kill()
        self._finalizer()

    def _write(self) -> None:
        try:
            while (frame := self._frames.get()) is not None:
                self._proc.stdin.write(frame)
                self._proc.stdin.flush()
            self._proc.stdin.close()  # after every queued job: the helper answers them, then ends on EOF
        except Exception as error:
            self._fail(error)

    def _read(self) -> None:
        try:
            first = _read_frame(self._proc.stdout)
            if first is None or pickle.loads(first) != "ready":
                raise HelperFailed("the helper did not start")
            self._ready.set()
            while (frame := _read_frame(self._proc.stdout)) is not None:
                ok, value = pickle.loads(frame)
                with self._lock:
                    future = self._pending.popleft()
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(HelperFailed(value))
            raise EOFError("the helper ended")
        except Exception as error:  # EOF after close is expected; before it, the helper is unusable
            self._fail(error)

    def _fail(self, error: Exception) -> None:
        with self._lock:
            if self.failed is None:
                self.failed = f"{type(error).__name__}: {error}"
            pending, self._pending = list(self._pending), collections.deque()
        for future in pending:
            if not future.done():
                future.set_exception(HelperFailed(self.failed))
        self._ready.set()


def _widen_pipes(proc: subprocess.Popen) -> None:
    """Let a whole answer (about 0.5 MB per 1,000 sketched rows) sit in the pipe: with the default 64 KB the
    helper waits for our reader thread once per 64 KB, and that thread waits for the GIL each time."""
    try:
        import fcntl
    except ImportError:  # Windows: default pipes, slower but correct
        return
    for stream in (proc.stdin, proc.stdout):
        try:
            fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        except OSError:
            pass  # over /proc/sys/fs/pipe-max-size: slower, still correct


def _shutdown(proc: subprocess.Popen, frames: queue.Queue) -> None:
    frames.put(None)  # the writer sends what is queued, then closes stdin
    threading.Thread(target=_reap, args=(proc,), daemon=True).start()  # closing costs the caller nothing


def _reap(proc: subprocess.Popen) -> None:
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve() -> None:
    """The helper's side: set up, say ready, then answer jobs until stdin closes."""
    stdin = sys.stdin.buffer
    # Our answers get their own copy of the stdout pipe; anything a library prints goes to stderr instead of
    # corrupting the frames.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    setup = _read_frame(stdin)
    if setup is None:
        return
    target_spec, init_spec, init_args = pickle.loads(setup)
    if init_spec:
        _resolve(init_spec)(*init_args)
    target = _resolve(target_spec)
    answers.write(_frame("ready"))
    answers.flush()
    while (frame := _read_frame(stdin)) is not None:
        try:
            answer = (True, target(*pickle.loads(frame)))
        except Exception as error:  # its message goes back; the exception itself might not pickle
            answer = (False, f"{type(error).__name__}: {error}")
        answers.write(_frame(answer))
        answers.flush()

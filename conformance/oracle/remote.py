"""The parent's side of a Keras worker process: start it, send it requests, read its replies.

Keras fixes its backend when it is first imported, so Keras on another backend (or another Keras
altogether, in its own virtual environment) runs in a worker process of its own
(``python -m conformance.oracle.worker``); one verify run can then hold the TensorFlow oracle and a
JAX implementation at once. Requests and replies are NumPy ``.npz`` archives read with
``allow_pickle=False`` (``wire.py``).
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
from typing import Any

from conformance.oracle import wire


class WorkerError(RuntimeError):
    """Keras raised inside the worker (the message is Keras's), or the worker died."""


class Worker:
    """One worker process, started on the first request with ``env`` added to this environment."""

    def __init__(self, name: str, env: dict[str, str], *, python: str = sys.executable,
                 module: str = "conformance.oracle.worker", script: str | None = None):
        """``script``: a file to run instead of ``module`` (a Python without this package)."""
        self.name, self.env, self.python, self.module, self.script = name, dict(env), python, module, script
        self._proc: subprocess.Popen | None = None
        self._log: Any = None

    def request(self, meta: dict, arrays: dict) -> dict:
        """Send one request; the reply's meta and arrays, or WorkerError."""
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        try:
            wire.send(self._proc.stdin, meta, arrays)
            reply = wire.receive(self._proc.stdout)
        except (BrokenPipeError, EOFError):
            self._proc = None
            raise WorkerError(f"the {self.name} worker died; its last output:\n{self._tail()}") from None
        if reply is None:
            raise WorkerError(f"the {self.name} worker closed; its last output:\n{self._tail()}")
        if not reply.get("ok"):
            raise WorkerError(reply.get("error", "unknown worker error"))
        return reply

    def _start(self) -> subprocess.Popen:
        self._log = tempfile.TemporaryFile()
        argv = [self.python, self.script] if self.script else [self.python, "-m", self.module]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=self._log, env={**os.environ, **self.env})
        atexit.register(self.close)
        return proc

    def _tail(self, n: int = 2000) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-n:]

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
        self._proc = None

    def __getstate__(self) -> dict:  # processes don't travel to pool workers; each starts its own
        return {**self.__dict__, "_proc": None, "_log": None}

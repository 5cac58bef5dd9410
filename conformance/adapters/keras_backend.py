"""``--impl keras-tensorflow | keras-jax | keras-torch``: Keras 3 itself, on a chosen backend.

Keras fixes its backend when it is first imported, so each adapter runs Keras in a worker
process of its own (``python -m conformance.adapters._keras_worker`` with ``KERAS_BACKEND`` set),
and one verify run can hold the TensorFlow oracle and a JAX implementation at once. Requests and
replies are NumPy ``.npz`` archives read with ``allow_pickle=False`` (``_wire.py``).

Each adapter runs on the CPU unless constructed with ``device="gpu"`` (docs/gpu.md).
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np

from conformance.adapters import _wire


class WorkerError(RuntimeError):
    """Keras raised inside the worker (the message is Keras's), or the worker died."""


class KerasBackend:
    """Keras 3 on ``backend``, in a worker process, with the full adapter protocol."""

    def __init__(self, backend: str, *, device: str = "cpu", env: dict | None = None):
        if backend not in ("tensorflow", "jax", "torch"):
            raise ValueError(f"backend={backend!r}, expected 'tensorflow', 'jax' or 'torch'")
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device={device!r}, expected 'cpu' or 'gpu'")
        self.backend, self.device, self.extra_env = backend, device, dict(env or {})
        self.name = f"keras-{backend}" + ("-gpu" if device == "gpu" else "")
        self._proc: subprocess.Popen | None = None
        self._versions: dict | None = None

    # --- the contract ------------------------------------------------------------------------
    @property
    def version(self) -> str:
        v = self.versions()
        return f"keras {v['keras']}, {self.backend} {v.get(self.backend, '?')}"

    def supports(self, config: dict) -> bool | str:
        if self.backend == "tensorflow" and self.device == "cpu" and _channels_first(config):
            return "TensorFlow's CPU convolutions reject data_format='channels_first'"
        return True

    def run(self, config: dict, weights: list, inputs: np.ndarray, *, mask=None, initial_state=None) -> list:
        calls = [{"inputs": inputs, "mask": mask, "initial_state": initial_state}]
        return self.run_calls(config, weights, calls)

    def run_calls(self, config: dict, weights: list, calls: list, *, training: bool = False,
                  dropout_masks: Any = None) -> list[np.ndarray]:
        reply = self._request({"op": "run", "config": config, "training": training},
                              {"weights": weights, "calls": calls, "dropout_masks": dropout_masks})
        return reply["outputs"]

    # --- the worker --------------------------------------------------------------------------
    def versions(self) -> dict:
        if self._versions is None:
            self._versions = self._request({"op": "versions"}, {})["versions"]
        return self._versions

    def _start(self) -> subprocess.Popen:
        # JAX computes float64 only with x64 enabled; without it Keras-JAX silently runs float64
        # layers in float32 (README: Keras on other backends). Enabled so float64 cases measure Keras.
        env = dict(os.environ, KERAS_BACKEND=self.backend, TF_CPP_MIN_LOG_LEVEL="3", JAX_ENABLE_X64="true",
                   **self.extra_env)
        if self.device == "cpu":
            env.update(CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
        self._log = tempfile.TemporaryFile()
        proc = subprocess.Popen([sys.executable, "-m", "conformance.adapters._keras_worker"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env)
        atexit.register(self.close)
        return proc

    def _request(self, meta: dict, arrays: dict) -> dict:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
        try:
            _wire.send(self._proc.stdin, meta, arrays)
            reply = _wire.receive(self._proc.stdout)
        except (BrokenPipeError, EOFError):
            self._proc = None
            raise WorkerError(f"the {self.name} worker died; its last output:\n{self._tail()}") from None
        if reply is None:
            raise WorkerError(f"the {self.name} worker closed; its last output:\n{self._tail()}")
        if not reply.get("ok"):
            raise WorkerError(reply.get("error", "unknown worker error"))
        return reply

    def _tail(self, n: int = 2000) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-n:]

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
        self._proc = None

    def __getstate__(self) -> dict:  # processes don't travel to pool workers; each starts its own
        return {**self.__dict__, "_proc": None, "_log": None}


def _channels_first(config: Any) -> bool:
    if isinstance(config, dict):
        return config.get("data_format") == "channels_first" or any(_channels_first(v) for v in config.values())
    if isinstance(config, list):
        return any(_channels_first(v) for v in config)
    return False


class KerasTensorFlow(KerasBackend):
    def __init__(self, **kwargs: Any):
        super().__init__("tensorflow", **kwargs)


class KerasJax(KerasBackend):
    def __init__(self, **kwargs: Any):
        super().__init__("jax", **kwargs)


class KerasTorch(KerasBackend):
    def __init__(self, **kwargs: Any):
        super().__init__("torch", **kwargs)

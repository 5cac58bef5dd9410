"""``--impl keras-tensorflow | keras-jax | keras-torch``: Keras 3 itself, on a chosen backend.

Keras fixes its backend when it is first imported, so each adapter runs Keras in a worker process
of its own (``conformance/oracle/remote.py``), where the live oracle's own code plays each case
(``KerasOracle.play_config``). One verify run can hold the TensorFlow oracle and a JAX
implementation at once.

Each adapter runs on the CPU unless constructed with ``device="gpu"`` (docs/gpu.md).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from conformance import configs
from conformance.oracle.remote import Worker, WorkerError  # noqa: F401  (WorkerError: what run raises)

EXTRAS = {"tensorflow": "keras", "jax": "jax", "torch": "torch"}  # backend -> pip extra that installs it


class KerasBackend:
    """Keras 3 on ``backend``, in a worker process, with the full adapter protocol."""

    def __init__(self, backend: str, *, device: str = "cpu", env: dict | None = None):
        if backend not in EXTRAS:
            raise ValueError(f"backend={backend!r}, expected 'tensorflow', 'jax' or 'torch'")
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device={device!r}, expected 'cpu' or 'gpu'")
        missing = [m for m in ("keras", backend) if importlib.util.find_spec(m) is None]
        if missing:
            raise ImportError(f"keras-{backend} needs {' and '.join(missing)} installed: "
                              f"pip install 'keras-rnn-conformance[{EXTRAS[backend]}]'")
        self.backend, self.device = backend, device
        self.name = f"keras-{backend}" + ("-gpu" if device == "gpu" else "")
        # JAX computes float64 only with x64 enabled; without it Keras-JAX silently runs float64
        # layers in float32 (README: Findings, Keras on JAX and torch). Enabled so float64 cases measure Keras.
        worker_env = {"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_ENABLE_X64": "true",
                      **({"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"} if device == "cpu" else {}),
                      **(env or {})}
        self.worker = Worker(self.name, worker_env)
        self._versions: dict | None = None

    # --- the contract ------------------------------------------------------------------------
    @property
    def version(self) -> str:
        v = self.versions()
        return f"keras {v['keras']}, {self.backend} {v.get(self.backend, '?')}"

    def supports(self, config: dict) -> bool | str:
        if self.backend == "tensorflow" and self.device == "cpu" and configs.channels_first(config):
            return "TensorFlow's CPU convolutions reject data_format='channels_first'"
        return True

    def run(self, config: dict, weights: list, inputs: np.ndarray, *, mask=None, initial_state=None) -> list:
        calls = [{"inputs": inputs, "mask": mask, "initial_state": initial_state}]
        return self.run_calls(config, weights, calls)

    def run_calls(self, config: dict, weights: list, calls: list, *, training: bool = False,
                  dropout_masks: Any = None) -> list[np.ndarray]:
        reply = self.worker.request({"op": "run", "config": config, "training": training},
                                    {"weights": weights, "calls": calls, "dropout_masks": dropout_masks})
        return reply["outputs"]

    def run_vjp(self, config: dict, weights: list, calls: list, cotangents: list, *, training: bool = False,
                dropout_masks: Any = None) -> dict:
        """Keras's own gradients on this backend (tf.GradientTape, torch.autograd, jax.vjp)."""
        reply = self.worker.request({"op": "vjp", "config": config, "training": training},
                                    {"weights": weights, "calls": calls, "dropout_masks": dropout_masks,
                                     "cotangents": cotangents})
        return reply["gradients"]

    def versions(self) -> dict:
        if self._versions is None:
            self._versions = self.worker.request({"op": "versions"}, {})["versions"]
        return self._versions

    def close(self) -> None:
        self.worker.close()


class KerasTensorFlow(KerasBackend):
    def __init__(self, **kwargs: Any):
        super().__init__("tensorflow", **kwargs)


class KerasJax(KerasBackend):
    def __init__(self, **kwargs: Any):
        super().__init__("jax", **kwargs)


class KerasTorch(KerasBackend):
    def __init__(self, **kwargs: Any):
        super().__init__("torch", **kwargs)

"""Which kernel ran: a recorder installed inside a Keras worker, and torch profiler evidence.

A silent fallback must not pass as a cuDNN result (torch's backend swallows cuDNN failures, every
backend falls back off a GPU), so a GPU run is judged by what ran, not by what was configured.

Inside a Keras worker (``conformance/oracle/worker.py``): ``worker_env`` names this module
in ``RNN_CONFORMANCE_WORKER_HOOK``, so the worker calls ``install`` right after importing Keras;
it wraps the functions Keras dispatches through (``TARGETS``) and each wrapped call appends one
JSON line to the log named by ``RNN_CONFORMANCE_DISPATCH_LOG``:

    torch  keras.src.backend.torch.rnn._cudnn_lstm/_cudnn_gru and the fused bidirectional calls
           run under torch.profiler: the path is "cudnn" only when aten::_cudnn_rnn ran (the op
           torch dispatches to when torch.backends.cudnn.is_acceptable); the CUDA kernel names
           come along as evidence. _fallback_lstm/_fallback_gru are "fused-loop".
    jax    jax.experimental.rnn.lstm returning on a GPU platform is "cudnn" (its rnn_fwd primitive
           lowers to the cudnn_rnn custom call on CUDA only); backend.gru returning is "fused-loop"
           (a lax.scan: JAX has no cuDNN GRU).
    all    keras.src.backend.rnn is the generic loop; backend.lstm/gru raising NotImplementedError
           is recorded as the fall-back it is.

The parent reads the lines a run appended (``DispatchLog.take``) and ``classify`` turns them into
``{"path": "cudnn" | "fused-loop" | "generic" | "mixed" | "none", "evidence": "..."}``.

``RNN_CONFORMANCE_SIMULATE_CUDNN=1`` (JAX only, for CPU tests): Keras's cuDNN LSTM wrapper runs with
``jax.experimental.rnn.lstm_ref`` in place of the kernel; such calls say "simulated-cudnn", never
"cudnn". ``RNN_CONFORMANCE_TF32=on|off`` sets torch's TF32 flags in the worker (JAX takes
``JAX_DEFAULT_MATMUL_PRECISION``, which ``worker_env`` sets).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from conformance.adapters.keras_backend import KerasBackend

LOG_ENV = "RNN_CONFORMANCE_DISPATCH_LOG"
TF32_ENV = "RNN_CONFORMANCE_TF32"
SIMULATE_ENV = "RNN_CONFORMANCE_SIMULATE_CUDNN"
TF32_MODES = ("off", "on", "default")
ROOT = Path(__file__).resolve().parents[2]  # the folder holding the conformance package
CUDNN, FUSED_LOOP, GENERIC, SIMULATED = "cudnn", "fused-loop", "generic", "simulated-cudnn"
PROFILE, JAX_RNN = "profile", "jax-rnn"  # paths decided when the call returns

_BK, _TORCH, _TF = "keras.src.backend", "keras.src.backend.torch.rnn", "keras.src.backend.tensorflow.rnn"
# (module, attribute, path when the call returns; None: recorded only when it raises, a fall-back)
TARGETS: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "torch": ((_BK, "rnn", GENERIC), (_BK, "lstm", None), (_BK, "gru", None),
              (_TORCH, "_cudnn_lstm", PROFILE), (_TORCH, "_cudnn_gru", PROFILE),
              (_TORCH, "_fallback_lstm", FUSED_LOOP), (_TORCH, "_fallback_gru", FUSED_LOOP),
              (_BK, "bidirectional_lstm", PROFILE), (_BK, "bidirectional_gru", PROFILE)),
    "jax": ((_BK, "rnn", GENERIC), (_BK, "lstm", None), (_BK, "gru", FUSED_LOOP),
            (_BK, "bidirectional_lstm", None), ("jax.experimental.rnn", "lstm", JAX_RNN)),
    # TensorFlow cannot be carried to the GPU machine; listed so a TF worker records too.
    "tensorflow": ((_BK, "rnn", GENERIC), (_BK, "lstm", None), (_BK, "gru", None),
                   (_TF, "_cudnn_lstm", CUDNN), (_TF, "_cudnn_gru", CUDNN)),
}
_RNN_OP = re.compile(r"rnn|lstm|gru", re.I)
_RNN_KERNEL = re.compile(r"rnn|lstm|gru|cudnn|persist", re.I)



# --- the parent's side ------------------------------------------------------------------------
def worker_env(log: Path, *, backend: str, tf32: str = "default", simulate: bool = False) -> dict[str, str]:
    """Environment for ``KerasBackend(..., env=...)`` that makes its worker record to ``log``."""
    if tf32 not in TF32_MODES:
        raise ValueError(f"tf32={tf32!r}, expected one of {TF32_MODES}")
    log = Path(log).resolve()
    log.touch()
    path = [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env = {"PYTHONPATH": os.pathsep.join(path), LOG_ENV: str(log), TF32_ENV: tf32,
           "RNN_CONFORMANCE_WORKER_HOOK": __name__}
    if backend == "jax":
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # leave GPU memory to torch in the parent
        if tf32 != "default":  # "tensorfloat32" lets cuDNN use TF32; "highest" forbids it
            env["JAX_DEFAULT_MATMUL_PRECISION"] = "tensorfloat32" if tf32 == "on" else "highest"
    if simulate:
        env[SIMULATE_ENV] = "1"
    return env


class DispatchLog:
    """The records a traced worker appended since the last ``take()``."""

    def __init__(self, path: Path):
        self.path, self.offset = Path(path), 0

    def take(self) -> list[dict]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def traced_keras(backend: str, *, workdir: Path, device: str = "gpu", tf32: str = "default",
                 simulate: bool = False) -> tuple[Any, DispatchLog]:
    """A Keras-on-``backend`` adapter whose worker records dispatch, and the log to read."""

    fd, name = tempfile.mkstemp(prefix=f"dispatch-{backend}-{device}-tf32-{tf32}-", suffix=".jsonl", dir=workdir)
    os.close(fd)
    log = Path(name)
    env = worker_env(log, backend=backend, tf32=tf32, simulate=simulate)
    return KerasBackend(backend, device=device, env=env), DispatchLog(log)


def classify(records: list[dict]) -> dict[str, Any]:
    """What one run's records say ran: the path of every recurrent loop it entered, and why."""
    records = [r for r in records if r.get("fn") != "install"]
    leaves = [r for r in records if r.get("path") and not r.get("raised")]
    paths = {r["path"] for r in leaves}
    path = paths.pop() if len(paths) == 1 else ("mixed" if paths else "none")
    lines = Counter(_describe(r) for r in records if r.get("path") or r.get("raised"))
    evidence = "; ".join(f"{n}x {line}" if n > 1 else line for line, n in lines.items())
    return {"path": path, "evidence": evidence or "no recurrent loop was recorded", "calls": len(leaves)}


def _describe(r: dict) -> str:
    if r.get("raised"):
        return f"{r['fn']} raised {r['raised']}"
    text = f"{r['fn']} -> {r['path']}"
    if "ops" in r:
        text += f" (ops: {', '.join(r['ops']) or 'none'}; kernels: {', '.join(r.get('kernels', [])) or 'none'})"
    if "platform" in r:
        text += f" (platform {r['platform']}, dtype {r.get('dtype')})"
    return text


# --- torch, in any process ----------------------------------------------------------------------
def profile_torch(fn: Callable, *args: Any, **kwargs: Any) -> tuple[Any, dict]:
    """``fn(*args, **kwargs)`` under torch.profiler: its result, and the recurrent ops and kernels
    that ran; path "cudnn" when aten::_cudnn_rnn did ("unverified" when no profiler would start)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    prof = profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else []))
    try:
        prof.__enter__()
    except Exception as e:  # noqa: BLE001 - no profiler (CUPTI) must not turn into a Keras fallback
        return fn(*args, **kwargs), {"path": "unverified", "ops": [], "kernels": [],
                                     "profiler": f"{type(e).__name__}: {str(e)[:120]}"}
    try:
        out = fn(*args, **kwargs)
        if cuda:
            torch.cuda.synchronize()
    finally:
        prof.__exit__(None, None, None)
    events = prof.events()
    ops = sorted({e.name for e in events if e.name.startswith("aten::") and _RNN_OP.search(e.name)})
    gpu = torch.autograd.DeviceType.CUDA
    kernels = sorted({e.name for e in events if getattr(e, "device_type", None) == gpu
                      and _RNN_KERNEL.search(e.name)})
    path = CUDNN if "aten::_cudnn_rnn" in ops else FUSED_LOOP
    return out, {"path": path, "ops": ops, "kernels": [k[:80] for k in kernels[:6]]}


def set_torch_tf32(mode: str) -> dict[str, Any]:
    """Set TF32 for cuBLAS matmuls and cuDNN (RNNs included) "on" or "off" ("default": leave
    torch's defaults); returns the flags as torch reports them afterwards."""
    import torch

    if mode not in TF32_MODES:
        raise ValueError(f"tf32={mode!r}, expected one of {TF32_MODES}")
    if mode != "default":
        value = "tf32" if mode == "on" else "ieee"
        if hasattr(torch.backends.cudnn, "rnn"):  # torch >= 2.9: mixing in the legacy flags raises
            torch.backends.cuda.matmul.fp32_precision = value
            for scope in (torch.backends.cudnn, torch.backends.cudnn.rnn, torch.backends.cudnn.conv):
                scope.fp32_precision = value
        else:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "on"
    return torch_tf32_flags()


def torch_tf32_flags() -> dict[str, Any]:
    import torch

    if hasattr(torch.backends.cudnn, "rnn"):
        return {"cuda.matmul.fp32_precision": torch.backends.cuda.matmul.fp32_precision,
                "cudnn.fp32_precision": torch.backends.cudnn.fp32_precision,
                "cudnn.rnn.fp32_precision": torch.backends.cudnn.rnn.fp32_precision,
                "cudnn.conv.fp32_precision": torch.backends.cudnn.conv.fp32_precision}
    return {"cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32}


# --- inside the worker ----------------------------------------------------------------------------
def install() -> None:
    """Wrap the dispatch points of the imported Keras's backend; record the precision flags."""
    import keras

    backend = keras.backend.backend()
    simulate = os.environ.get(SIMULATE_ENV) == "1"
    info: dict[str, Any] = {"fn": "install", "backend": backend, "simulate": simulate}
    if backend == "torch":
        info["tf32"] = set_torch_tf32(os.environ.get(TF32_ENV, "default"))
    if backend == "jax":
        info.update(_jax_info())
        if simulate:
            _simulate_jax_cudnn()
    for module_name, attr, path in TARGETS.get(backend, ()):
        module = importlib.import_module(module_name)
        setattr(module, attr, _wrap(getattr(module, attr), f"{module_name}.{attr}", path, simulate))
    _emit(info)


def _jax_info() -> dict[str, Any]:
    import jax

    info: dict[str, Any] = {"platform": jax.default_backend(),
                            "jax_default_matmul_precision": jax.config.jax_default_matmul_precision}
    try:  # private, informative only: what jax.experimental.rnn passes to cuDNN
        from jax.experimental.rnn import _lstm_cudnn_allow_tf32

        info["cudnn_allow_tf32"] = _lstm_cudnn_allow_tf32(None)
    except Exception as e:  # noqa: BLE001 - a version without it
        info["cudnn_allow_tf32"] = f"unknown ({type(e).__name__})"
    try:
        from jax._src.lib import cuda_versions

        info["cudnn"] = str(cuda_versions.cudnn_get_version()) if cuda_versions else ""
    except Exception:  # noqa: BLE001 - no CUDA plugin
        info["cudnn"] = ""
    return info


def _simulate_jax_cudnn() -> None:
    """Keras's cuDNN LSTM wrapper on CPU: report a GPU, run jax's reference LSTM for the kernel."""
    from jax.experimental import rnn

    # import_module, not "import ... as": keras.src.backend.jax.rnn the attribute is the function rnn
    keras_jax_rnn = importlib.import_module("keras.src.backend.jax.rnn")

    def lstm(x, h_0, c_0, weights, seq_lengths, *, input_size, hidden_size, num_layers, dropout,
             bidirectional, precision=None):
        w = rnn.unpack_lstm_weights(weights, input_size, hidden_size, num_layers, bidirectional)
        return rnn.lstm_ref(x, h_0, c_0, *w, seq_lengths, input_size, hidden_size, num_layers, dropout,
                            bidirectional)

    keras_jax_rnn._is_gpu_available = lambda: True
    rnn.lstm = lstm


def _wrap(fn: Callable, label: str, path: str | None, simulate: bool) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        record: dict[str, Any] = {"fn": label}
        try:
            if path == PROFILE:
                out, evidence = profile_torch(fn, *args, **kwargs)
                record.update(evidence)
            else:
                out = fn(*args, **kwargs)
        except BaseException as e:
            record["raised"] = f"{type(e).__name__}: {str(e)[:120]}".rstrip(": ")
            _emit(record)
            raise
        if path == JAX_RNN:
            import jax

            record.update(platform=jax.default_backend(), dtype=str(out[0].dtype),
                          path=SIMULATED if simulate else (CUDNN if jax.default_backend() == "gpu" else GENERIC))
        elif path is not None and path != PROFILE:
            record["path"] = path
        if path is not None:
            _emit(record)
        return out

    return wrapper


def _emit(record: dict) -> None:
    with open(os.environ[LOG_ENV], "a") as f:
        f.write(json.dumps(record, default=str) + "\n")

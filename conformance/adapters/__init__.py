"""Implementations under test: the adapter contract, and loading an adapter by name.

An adapter is any object (a module, a class instance) with::

    run(config, weights, inputs, *, mask=None, initial_state=None) -> list of numpy arrays

- ``config``: the dict ``keras.layers.serialize(layer)`` returns ({"class_name", "config", ...}), a
  copy of the recorded one (an adapter may change it);
- ``weights``: NumPy arrays in the order of Keras's ``layer.get_weights()``;
- ``inputs``: (batch, time, features...) in the case's dtype; ``mask``: (batch, time) bool or None;
  ``initial_state``: a list like Keras's (``[h]``, ``[h, c]``; Bidirectional: forward then backward
  states) or None;
- returns ``[output]``, or ``[output, *states]`` when the config has ``return_state``, in Keras's
  order and dtype.

Optional:

- ``supports(config) -> True | str``: a string says why a case does not apply (it is reported as
  skipped with that reason, never counted as passed);
- ``supports_masks = False`` (with ``mask_reason``): the adapter takes no ``mask``; cases with one
  are skipped with that reason;
- ``name``, ``version``: shown in reports and the pytest header;
- ``run_calls(config, weights, calls, *, training=False, dropout_masks=None)``: the full protocol
  for the cases ``run`` cannot express: ``calls`` is a list of ``{"inputs", "mask",
  "initial_state"}`` dicts and ``"reset_state"`` strings on one stateful layer
  (``conformance.recorded``), and ``dropout_masks`` are the exact masks to apply in training (see
  docs/adapters.md). Adapters without it are skipped on those cases, with that reason;
- ``run_vjp(config, weights, calls, cotangents, *, training=False, dropout_masks=None)``: the
  gradients of  sum_k <outputs[k], cotangents[k]>  (``cotangents``: one array per output of every
  call, flattened in order, as the outputs are) over the calls, as
  ``{"inputs": [one array per call], "initial_state": [per call: the gradients of its
  initial_state, nested the same, or None], "weights": [summed over the calls, in get_weights()
  order]}``. Adapters without it are skipped on the gradient check, with that reason;
  ``supports_vjp(config) -> True | str`` declines it for some configs;
- ``run_info``: an attribute the adapter sets while it runs a case: a dict of short strings about
  how it ran it (which ops a converter emitted, fused or looped). The harness clears it before each
  case and keeps it with the result (the JSON report's ``run_info``, the HTML report's table);
- any of these methods may take a ``keras_version`` keyword (0, 1, 2 or 3): the oracle's major
  version, which decides a few semantics (docs/semantics.md) when verifying against a Keras 2 (or
  Keras 0.2 / 1.2.2, docs/history.md) fixture set.

Declining at run time: ``run``, ``run_calls`` and ``run_vjp`` may raise ``Decline("why")`` when
only running shows that a case cannot be expressed (which op a converter fused, which kernel a
runtime lacks, a mask pattern the framework cannot take, a stateful sequence but not a dropout
one). The case (or its gradient check) is skipped with that reason, like ``supports``; never passed.

Select one with ``rnn-conformance verify --impl package.module:name`` or ``path/to/file.py:name``
(``name`` may be a class,
which is instantiated with no arguments, or any object), or with ``RNN_CONFORMANCE_IMPL`` for the
pytest plugin. Built in: see ``BUILTIN``; ``conformance/adapters/template.py`` is a starting point.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

import numpy as np

BUILTIN = {
    "refimpl": "conformance.adapters.refimpl_adapter:RefImpl",
    "keras-tensorflow": "conformance.adapters.keras_backend:KerasTensorFlow",
    "keras-jax": "conformance.adapters.keras_backend:KerasJax",
    "keras-torch": "conformance.adapters.keras_backend:KerasTorch",
    "torch": "conformance.adapters.torch_nn:TorchNN",
    "onnxruntime": "conformance.adapters.onnx_runtime:OnnxRuntime",
    "onnxruntime-mask-input": "conformance.adapters.onnx_runtime:OnnxRuntimeMaskInput",
    "litert": "conformance.adapters.litert:LiteRT",
    "litert-mask-input": "conformance.adapters.litert:LiteRTMaskInput",
    "openvino": "conformance.adapters.openvino_runtime:OpenVINO",
    "openvino-keras-export": "conformance.adapters.openvino_runtime:OpenVINOKerasExport",
    "flax": "conformance.adapters.flax_nnx:FlaxNNX",
    "flax-optimized-lstm": "conformance.adapters.flax_nnx:FlaxNNXOptimized",
}


class AdapterError(Exception):
    """The named adapter cannot be loaded or does not follow the contract."""


class Decline(Exception):
    """Raised by an adapter's ``run``/``run_calls``/``run_vjp``: it cannot express this case, as it
    found out while running it. The message says why; the case is reported as skipped with it."""


class Implementation:
    """An adapter seen through the contract: name, version, whether a case applies, and one
    way to run a recorded case whatever optional parts the adapter has."""

    def __init__(self, adapter: Any, spec: str = ""):
        if not callable(getattr(adapter, "run", None)):
            raise AdapterError(f"{spec or adapter!r} has no run(config, weights, inputs, *, mask, initial_state) "
                               "method; see conformance/adapters/__init__.py for the contract")
        self.adapter, self.spec = adapter, spec or type(adapter).__name__
        self.name = str(getattr(adapter, "name", None) or self.spec)
        self.version = str(getattr(adapter, "version", "") or _module_version(adapter))
        self.full_protocol = callable(getattr(adapter, "run_calls", None))
        self.gradients = callable(getattr(adapter, "run_vjp", None))

    def __repr__(self) -> str:
        return f"Implementation({self.name} {self.version})".replace(" )", ")")

    def why_not(self, rec: Any) -> str | None:
        """None when the recorded case applies to this adapter, else the reason it is skipped."""
        if not self.full_protocol:
            if rec.stateful:
                return ("stateful call sequence (call, call, reset_state, call): needs the optional "
                        "run_calls() of the adapter contract")
            if rec.training:
                return "training-mode dropout with supplied masks: needs the optional run_calls() of the adapter contract"
        if getattr(self.adapter, "supports_masks", True) is False and rec.masked:
            return getattr(self.adapter, "mask_reason", None) or f"{self.name} takes no masks"
        supports = getattr(self.adapter, "supports", None)
        if supports is None:
            return None
        answer = supports(copy.deepcopy(rec.config))
        if answer is True:
            return None
        if isinstance(answer, str) and answer:
            return answer
        raise AdapterError(f"{self.spec}: supports(config) returned {answer!r}, expected True or a string "
                           "saying why the case does not apply (see docs/adapters.md)")

    def why_not_gradients(self, rec: Any) -> str | None:
        """None when the adapter computes this case's gradients, else the reason it does not."""
        if not self.gradients:
            return "gradients: needs the optional run_vjp() of the adapter contract"
        supports = getattr(self.adapter, "supports_vjp", None)
        answer = True if supports is None else supports(copy.deepcopy(rec.config))
        if answer is True:
            return None
        if isinstance(answer, str) and answer:
            return answer
        raise AdapterError(f"{self.spec}: supports_vjp(config) returned {answer!r}, expected True or a string "
                           "saying why")

    def run_info(self) -> dict[str, str] | None:
        """What the adapter said about how it ran the last case (``run_info``), as strings."""
        info = getattr(self.adapter, "run_info", None)
        return {str(k): str(v) for k, v in info.items()} if isinstance(info, dict) and info else None

    def run_vjp(self, rec: Any, keras_version: int = 3) -> dict:
        """The adapter's gradients for the recorded case's cotangents (see ``run_vjp`` above)."""
        grads = _call(self.adapter.run_vjp, keras_version, copy.deepcopy(rec.config), rec.weights, rec.calls,
                      rec.cotangents, training=rec.training, dropout_masks=rec.dropout_masks)
        if not isinstance(grads, dict) or not {"inputs", "initial_state", "weights"} <= set(grads):
            raise AdapterError(f"{self.name}.run_vjp returned {type(grads).__name__}, expected a dict with "
                               "'inputs', 'initial_state' and 'weights'")
        return grads

    def run(self, rec: Any, keras_version: int = 3) -> list[np.ndarray]:
        """The recorded case's calls through the adapter; every output of every call, in order."""
        config = copy.deepcopy(rec.config)  # the adapter's own: it may change it
        if hasattr(self.adapter, "run_info"):
            self.adapter.run_info = None
        if self.full_protocol:
            outputs = _call(self.adapter.run_calls, keras_version, config, rec.weights, rec.calls,
                            training=rec.training, dropout_masks=rec.dropout_masks)
        else:
            call = rec.calls[0]
            outputs = _call(self.adapter.run, keras_version, config, rec.weights, call["inputs"],
                            mask=call["mask"], initial_state=call["initial_state"])
        if not isinstance(outputs, (list, tuple)):
            raise AdapterError(f"{self.name}.run returned {type(outputs).__name__}, expected a list of arrays")
        return [np.asarray(o) for o in outputs]


def right_padded_lengths(mask: Any, takes: str, empty_row: str | None = None) -> np.ndarray:
    """Each row's number of valid steps, for a framework that takes sequence lengths (``takes``
    names it in the reasons: torch's pack_padded_sequence, nnx.RNN's seq_lengths): ``Decline``
    for a mask that is not right padding, or that masks a whole row (``empty_row``: why not)."""
    mask = np.asarray(mask, bool)  # (batch, time)
    lengths = mask.sum(axis=1)  # (batch,)
    if not all(row[:n].all() for row, n in zip(mask, lengths)):
        raise Decline(f"{takes} takes right padding only (each row valid for its first steps), not holes or left padding")
    if (lengths == 0).any():
        raise Decline(empty_row or f"{takes} takes no fully masked row (a length of 0)")
    return lengths


def _call(fn: Any, keras_version: int, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, with ``keras_version`` when ``fn`` takes it (by name or as **kwargs)."""
    try:
        params = inspect.signature(fn).parameters.values()
        takes = any(p.name == "keras_version" or p.kind is p.VAR_KEYWORD for p in params)
    except (TypeError, ValueError):
        takes = False
    if takes:
        kwargs["keras_version"] = keras_version
    return fn(*args, **kwargs)


def _import(name: str) -> Any:
    if not name.endswith(".py"):
        return importlib.import_module(name)
    path = Path(name).resolve()
    if not path.is_file():
        raise ImportError(f"no file {path}")
    module_name = f"_rnn_conformance_adapter_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def _module_version(adapter: Any) -> str:
    module = inspect.getmodule(adapter if inspect.ismodule(adapter) else type(adapter))
    top = (module.__name__ if module else "").split(".")[0]
    try:
        return str(getattr(importlib.import_module(top), "__version__", "")) if top else ""
    except ImportError:
        return ""


def load(spec: str) -> Implementation:
    """``refimpl``, another built-in name, ``package.module:name`` or ``path/to/file.py:name``
    (a class is instantiated with no arguments)."""
    target = BUILTIN.get(spec, spec)
    if ":" not in target:
        raise AdapterError(f"impl={spec!r}, expected one of {sorted(BUILTIN)}, package.module:name "
                           "or path/to/file.py:name")
    module_name, _, attr = target.rpartition(":")
    try:
        module = _import(module_name)
    except ImportError as e:
        raise AdapterError(f"impl={spec!r}: cannot import {module_name} ({e})") from None
    except Exception as e:  # a SyntaxError, or the module raised as it ran
        raise AdapterError(f"impl={spec!r}: importing {module_name} raised {type(e).__name__}: {_line(e)}") from None
    obj = module
    for part in attr.split(".") if attr else []:
        if not hasattr(obj, part):
            raise AdapterError(f"impl={spec!r}: {module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    try:
        if inspect.isclass(obj):
            obj = obj()
        return Implementation(obj, spec)  # reads name and version: a worker may start here
    except AdapterError:
        raise
    except ImportError as e:  # e.g. the adapter's framework is not installed
        raise AdapterError(f"impl={spec!r}: {e}") from None
    except Exception as e:
        raise AdapterError(f"impl={spec!r}: setting it up raised {type(e).__name__}: {_line(e)}") from None


def _line(e: BaseException) -> str:
    """An exception's message as one line (its last non-empty line: where a worker says what failed)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__

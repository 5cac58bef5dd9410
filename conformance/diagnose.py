"""Pointing a failure at its likely cause.

When an implementation's outputs differ from Keras's, the usual causes are convention mistakes
in a port: gate blocks in another framework's order, GRU's two biases swapped, Keras 2's
hard_sigmoid, states returned as [c, h], a go_backwards sequence flipped, a mask or initial state
ignored. ``diagnose`` replays the case through refimpl (which matches Keras on the matrix) with
each such mistake made on purpose; a mistake whose outputs equal the implementation's, within the
case's tolerance, is reported as the likely cause. The verdict itself always comes from Keras.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Callable, Iterator, NamedTuple

import numpy as np

from conformance.adapters.refimpl_adapter import RefImpl
from conformance.compare import compare
from conformance.conventions import KERAS3
from conformance.tolerances import Tolerance

KERAS_GATES = {name: KERAS3.layers[name].gates for name in ("LSTM", "GRU")}  # weight-block order


def _cell_config(config: dict) -> dict:
    """The serialized layer or cell whose weights a config holds: a Bidirectional's layer, an
    RNN's single cell, or the layer itself."""
    inner = config.get("config", {})
    if config.get("class_name") == "Bidirectional":
        return _cell_config(inner.get("layer", {}))
    if config.get("class_name") == "RNN" and isinstance(inner.get("cell"), dict):
        return _cell_config(inner["cell"])
    return config


def _gates(config: dict) -> tuple[str, ...] | None:
    name = _cell_config(config).get("class_name", "")
    for key, gates in KERAS_GATES.items():
        if name.startswith(key) or (key == "LSTM" and name.startswith("ConvLSTM")):
            return gates
    return None


def _permute(w: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
    """Gate blocks on the last axis, reordered: block k of the result is block perm[k]."""
    blocks = np.split(w, len(perm), axis=-1)
    return np.concatenate([blocks[p] for p in perm], axis=-1)


def _identity(c: dict, w: list, calls: list) -> tuple[dict, list, list]:
    return c, w, calls


class Mistake(NamedTuple):
    description: str
    change: Callable[[dict, list, list], tuple[dict, list, list]] = _identity  # config, weights, calls
    post: Callable[[list], list] = lambda outs: outs  # on refimpl's outputs
    other_keras: bool = False  # run with the other Keras major version's semantics


def _mistakes(rec: Any) -> Iterator[Mistake]:
    inner = rec.config.get("config", {})
    gates = _gates(rec.config)
    bias = _cell_config(rec.config).get("config", {}).get("use_bias", True)
    per_layer = 3 if bias else 2  # [kernel, recurrent_kernel(, bias)] per direction (Bidirectional: two)
    if gates:
        parts = [((0, 1, 2), "kernel, recurrent_kernel and bias"), ((0,), "kernel"), ((1,), "recurrent_kernel")]
        parts += [((2,), "bias")] if bias else []
        for perm in itertools.permutations(range(len(gates))):
            if perm == tuple(range(len(gates))):
                continue
            order = ", ".join(gates[p] for p in perm)
            for which, names in parts:
                def weights(c, w, calls, perm=perm, which=which):
                    return c, [_permute(a, perm) if i % per_layer in which else a for i, a in enumerate(w)], calls
                yield Mistake(f"the {names} gate blocks are in the order ({order}), not Keras's ({', '.join(gates)}): "
                              "check the gate order of the weight conversion (docs/conventions.md)", weights)
    if gates == KERAS_GATES["GRU"] and bias and np.ndim(rec.weights[2]) == 2:
        def swap_rows(c, w, calls):
            return c, [a[::-1] if i % per_layer == 2 else a for i, a in enumerate(w)], calls
        yield Mistake("GRU's two bias rows are swapped: Keras's bias[0] is the input bias (torch bias_ih), "
                      "bias[1] the recurrent one (bias_hh)", swap_rows)
    if "hard_sigmoid" in str(rec.config):
        yield Mistake("hard_sigmoid is Keras 2's (0.2x + 0.5) where Keras 3 uses relu6(x + 3) / 6", other_keras=True)
    if inner.get("return_state") and gates and len(rec.outputs) >= 3:
        yield Mistake("the LSTM states are returned as [c, h]; Keras returns [output, h, c]",
                      post=lambda outs: [outs[0], outs[2], outs[1], *outs[3:]])
    if inner.get("go_backwards") and inner.get("return_sequences"):
        yield Mistake("with go_backwards=True the returned sequence is flipped in time: Keras returns it in the "
                      "order it was processed (last input step first)", post=lambda outs: [outs[0][:, ::-1], *outs[1:]])
    if any(c != "reset_state" and c["mask"] is not None for c in rec.calls):
        yield Mistake("the mask is ignored", lambda c, w, calls: (c, w, _set(calls, "mask", None)))
    if any(c != "reset_state" and c["initial_state"] is not None for c in rec.calls):
        yield Mistake("initial_state is ignored", lambda c, w, calls: (c, w, _set(calls, "initial_state", None)))
    if "zero_output_for_mask" in inner:
        zero = inner["zero_output_for_mask"]

        def flip(c, w, calls):
            c = copy.deepcopy(c)
            c["config"]["zero_output_for_mask"] = not zero
            return c, w, calls
        yield Mistake(f"masked steps are output as {'the previous output' if zero else 'zeros'}; Keras with "
                      f"zero_output_for_mask={zero} outputs {'zeros' if zero else 'the previous output'}", flip)


def _set(calls: list, key: str, value: Any) -> list:
    return [c if c == "reset_state" else {**c, key: value} for c in calls]


def diagnose(rec: Any, actual: list[np.ndarray], tol: Tolerance, keras_version: int = 3) -> list[str]:
    """The convention mistakes whose outputs equal ``actual`` within ``tol`` (usually none or one)."""
    with np.errstate(all="ignore"):  # a wrong guess may overflow (exponential activations)
        return _diagnose(rec, actual, tol, keras_version)


def _diagnose(rec: Any, actual: list[np.ndarray], tol: Tolerance, keras_version: int) -> list[str]:
    ref, found = RefImpl(), []
    for mistake in _mistakes(rec):
        try:
            config, weights, calls = mistake.change(rec.config, rec.weights, rec.calls)
            outs = mistake.post(ref.run_calls(config, weights, calls, training=rec.training,
                                              dropout_masks=rec.dropout_masks,
                                              keras_version=5 - keras_version if mistake.other_keras else keras_version))
        except Exception:  # the mistake isn't expressible for this case
            continue
        if compare(outs, actual, tol).ok:
            found.append(mistake.description)
    return found


def error_over_time(rec: Any, actual: list[np.ndarray]) -> list[dict] | None:
    """Per output: the worst absolute error at each time step (sequence outputs) or overall."""
    if len(actual) != len(rec.outputs):
        return None
    inner = rec.config.get("config", {})
    calls = [c for c in rec.calls if c != "reset_state"]
    per_call = max(1, len(rec.outputs) // max(1, len(calls)))
    sequences = (2 if inner.get("merge_mode", "concat") is None else 1) if inner.get("return_sequences") else 0
    out = []
    for k, (e, a) in enumerate(zip(rec.outputs, actual)):
        if e.shape != a.shape or not e.size:
            continue
        err = np.abs(a.astype(np.float64) - e.astype(np.float64))
        err = np.where(np.isnan(err), np.inf, err)
        is_seq = k % per_call < sequences and e.ndim >= 3
        label = f"outputs[{k}] {tuple(e.shape)}" + (" sequence" if is_seq else "")
        steps = [float(x) for x in err.reshape(e.shape[0], e.shape[1], -1).max(axis=(0, 2))] if is_seq else None
        out.append({"output": k, "label": label, "steps": steps, "max_abs": float(err.max())})
    return out

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
from typing import Any, Callable, Iterator

import numpy as np

from conformance.compare import compare
from conformance.conventions import KERAS3
from conformance.tolerances import tolerance_for

KERAS_GATES = {name: KERAS3.layers[name].gates for name in ("LSTM", "GRU")}  # weight-block order


def _gates(config: dict) -> tuple[str, ...] | None:
    name = config.get("class_name", "")
    inner = config.get("config", {})
    if name == "Bidirectional":
        return _gates(inner.get("layer", {}))
    if name == "RNN" and isinstance(inner.get("cell"), dict):
        return _gates(inner["cell"])
    for key, gates in KERAS_GATES.items():
        if name.startswith(key) or (key == "LSTM" and name.startswith("ConvLSTM")):
            return gates
    return None


def _permute(w: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
    """Gate blocks on the last axis, reordered: block k of the result is block perm[k]."""
    blocks = np.split(w, len(perm), axis=-1)
    return np.concatenate([blocks[p] for p in perm], axis=-1)


Mistake = tuple[str, Callable[[dict, list, list], tuple[dict, list, list]], Callable[[list], list]]


def _mistakes(rec: Any) -> Iterator[Mistake]:
    same = lambda outs: outs  # noqa: E731
    gates = _gates(rec.config)
    if gates:
        for perm in itertools.permutations(range(len(gates))):
            if perm == tuple(range(len(gates))):
                continue
            order = ", ".join(gates[p] for p in perm)
            for which, names in (((0, 1, 2), "kernel, recurrent_kernel and bias"), ((0,), "kernel"),
                                 ((1,), "recurrent_kernel"), ((2,), "bias")):
                def weights(c, w, calls, perm=perm, which=which):
                    step = 3 if len(w) % 3 == 0 else len(w)  # Bidirectional: forward then backward triple
                    return c, [_permute(a, perm) if i % step in which else a for i, a in enumerate(w)], calls
                yield (f"the {names} gate blocks are in the order ({order}), not Keras's ({', '.join(gates)}): "
                       "check the gate order of the weight conversion (docs/conventions.md)", weights, same)
    inner = rec.config.get("config", {})
    if gates == KERAS_GATES["GRU"] and len(rec.weights) == 3 and np.ndim(rec.weights[2]) == 2:
        yield ("GRU's two bias rows are swapped: Keras's bias[0] is the input bias (torch bias_ih), bias[1] "
               "the recurrent one (bias_hh)", lambda c, w, calls: (c, [w[0], w[1], w[2][::-1]], calls), same)
    if "hard_sigmoid" in str(rec.config):
        yield ("hard_sigmoid is Keras 2's (0.2x + 0.5) where Keras 3 uses relu6(x + 3) / 6", "keras2", same)
    if inner.get("return_state") and gates and len(rec.outputs) >= 3:
        yield ("the LSTM states are returned as [c, h]; Keras returns [output, h, c]",
               lambda c, w, calls: (c, w, calls), lambda outs: [outs[0], outs[2], outs[1], *outs[3:]])
    if inner.get("go_backwards") and inner.get("return_sequences"):
        yield ("with go_backwards=True the returned sequence is flipped in time: Keras returns it in the "
               "order it was processed (last input step first)", lambda c, w, calls: (c, w, calls),
               lambda outs: [outs[0][:, ::-1], *outs[1:]])
    if any(c != "reset_state" and c["mask"] is not None for c in rec.calls):
        yield ("the mask is ignored", lambda c, w, calls: (c, w, _set(calls, "mask", None)), same)
    if any(c != "reset_state" and c["initial_state"] is not None for c in rec.calls):
        yield ("initial_state is ignored", lambda c, w, calls: (c, w, _set(calls, "initial_state", None)), same)
    if "zero_output_for_mask" in inner:
        def flip(c, w, calls):
            c = copy.deepcopy(c)
            c["config"]["zero_output_for_mask"] = not inner["zero_output_for_mask"]
            return c, w, calls
        yield (f"masked steps are output as {'the previous output' if inner['zero_output_for_mask'] else 'zeros'}; "
               f"Keras with zero_output_for_mask={inner['zero_output_for_mask']} outputs "
               f"{'zeros' if inner['zero_output_for_mask'] else 'the previous output'}", flip, same)


def _set(calls: list, key: str, value: Any) -> list:
    return [c if c == "reset_state" else {**c, key: value} for c in calls]


def diagnose(rec: Any, actual: list[np.ndarray], keras_version: int = 3) -> list[str]:
    """The convention mistakes whose outputs equal ``actual`` (usually none or one)."""
    with np.errstate(all="ignore"):  # a wrong guess may overflow (exponential activations)
        return _diagnose(rec, actual, keras_version)


def _diagnose(rec: Any, actual: list[np.ndarray], keras_version: int) -> list[str]:
    from conformance.adapters.refimpl_adapter import RefImpl

    ref, tol, found = RefImpl(), tolerance_for(rec.dtype), []
    for description, change, post in _mistakes(rec):
        try:
            if change == "keras2":
                outs = ref.run_calls(rec.config, rec.weights, rec.calls, training=rec.training,
                                     dropout_masks=rec.dropout_masks, keras_version=5 - keras_version)
            else:
                config, weights, calls = change(rec.config, rec.weights, rec.calls)
                outs = post(ref.run_calls(config, weights, calls, training=rec.training,
                                          dropout_masks=rec.dropout_masks, keras_version=keras_version))
        except Exception:  # the mistake isn't expressible for this case
            continue
        if compare(outs, actual, tol, rec.dtype).ok:
            found.append(description)
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

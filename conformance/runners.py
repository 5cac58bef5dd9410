"""Run one case through Keras (the oracle) and through refimpl, from one Keras config.

The Keras layer is built from the case's spec and serialized with ``keras.layers.serialize``; the
refimpl twin is ``refimpl.deserialize`` of that same dict, so every case also exercises
deserialization. Weights are drawn with the shapes Keras reports and set on both.

Dropout with ``training=True``: Keras caches one mask per sequence on each cell
(``DropoutRNNCell.get_dropout_mask``); the harness replaces those two methods on the Keras cell
instances so they return the case's masks, and passes the same masks to refimpl as
``DropoutMasks``.

channels_first ConvLSTM: TensorFlow's CPU convolutions reject it, so the oracle is the same Keras
layer in channels_last, fed the case's inputs, states and dropout masks with the channel axis moved
last, its outputs moved back. The refimpl twin gets the channels_first config and the data as is.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from conformance.cases import Case
from conformance.data import CaseData, make_data

Array = np.ndarray


def flatten(tree: Any) -> list[Array]:
    if isinstance(tree, (list, tuple)):
        return [x for t in tree for x in flatten(t)]
    return [np.asarray(tree)]


# The oracle package: "keras" (Keras 3, any backend) or "tf_keras" (Keras 2). Set by `generate --keras2`.
PACKAGE = os.environ.get("RNN_CONFORMANCE_ORACLE", "keras")


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import importlib

    keras = importlib.import_module(PACKAGE)
    if PACKAGE == "tf_keras" or keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # When Keras raises inside its loop, TensorFlow logs "Object was never used (TensorArray)"
        # at ERROR level as the graph is collected; the harness reports the exception itself.
        tf.get_logger().setLevel("CRITICAL")
    return keras


def keras_versions() -> dict[str, str]:
    keras = _keras()
    versions = {"keras": keras.__version__, "package": PACKAGE.replace("_", "-"),
                "backend": keras.backend.backend()}
    if versions["backend"] == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    return versions


def _tensor(x: Any) -> Any:
    keras = _keras()
    if hasattr(keras, "ops"):
        return keras.ops.convert_to_tensor(x)
    import tensorflow as tf  # Keras 2 runs on TensorFlow only

    return tf.convert_to_tensor(x)


def _oracle_kwargs(spec_kwargs) -> dict:
    """A layer spec's kwargs as the oracle builds it: channels_first runs as channels_last."""
    kwargs = dict(spec_kwargs)
    if kwargs.get("data_format") == "channels_first":
        kwargs["data_format"] = "channels_last"
    return kwargs


def build_keras_layer(case: Case):
    keras = _keras()
    L = keras.layers
    kwargs = case.kwargs()
    if case.cells:
        cells = [getattr(L, name)(**dict(kw), dtype=case.dtype) for name, kw in case.cells]
        # RNN([cells]) would wrap them in a StackedRNNCells of the default dtype (float32), which
        # then casts float64 states down; passing the stack explicitly keeps the case's dtype.
        cell = L.StackedRNNCells(cells, dtype=case.dtype) if case.stacked else cells[0]
        return L.RNN(cell, **kwargs, dtype=case.dtype)
    if case.wrapped:
        inner = [getattr(L, name)(**_oracle_kwargs(kw), dtype=case.dtype) for name, kw in case.wrapped]
        return L.Bidirectional(inner[0], backward_layer=inner[1] if len(inner) > 1 else None,
                               **kwargs, dtype=case.dtype)
    return getattr(L, case.layer_name)(**_oracle_kwargs(kwargs), dtype=case.dtype)


def _rnn_layers(layer: Any) -> list:
    return [layer.forward_layer, layer.backward_layer] if hasattr(layer, "forward_layer") else [layer]


def _cells(layer: Any) -> list:
    cells = [sub.cell for sub in _rnn_layers(layer)]
    return [c for cell in cells for c in (cell.cells if hasattr(cell, "cells") else [cell])]


class Layout:
    """Moves channel axes between the case's layout and the oracle's (channels_last)."""

    def __init__(self, case: Case):
        self.on = case.channels_first
        self.step_rank = len(case.spatial) + 2  # (B, *spatial, C)

    def to_oracle(self, a: Array, channel_axis: int = 1) -> Array:
        return np.moveaxis(a, channel_axis, -1) if self.on else a

    def from_oracle(self, a: Array) -> Array:
        """Outputs and states back: sequences (B, T, *S, C) and steps (B, *S, C)."""
        if not self.on:
            return a
        return np.moveaxis(a, -1, 2 if a.ndim == self.step_rank + 1 else 1)

    def state_to_oracle(self, tree: Any) -> Any:
        return [self.state_to_oracle(t) for t in tree] if isinstance(tree, list) else self.to_oracle(tree)

    def mask_to_oracle(self, m: Array | None) -> Array | None:
        """Per-gate dropout masks (G, B, C, *S) -> (G, B, *S, C); dense (G, B, units) pass as they are."""
        return m if m is None or not self.on or m.ndim <= 3 else np.moveaxis(m, 2, -1)


def _shapes(tree: Any) -> Any:
    if isinstance(tree, (list, tuple)):
        return [_shapes(t) for t in tree]
    return tuple(np.shape(tree))


def _dropout_layout(case: Case, twin: Any, layer: Any) -> list[tuple]:
    """Per cell: (step input shape, state shape, masks per gate or None, dropout, recurrent_dropout),
    in the case's layout. Shapes are structural, so they are read off the refimpl twin; whether
    masks go per gate is read off the Keras cell (``implementation`` is not in Keras's config)."""
    import refimpl

    subs = [twin.forward_layer, twin.backward_layer] if isinstance(twin, refimpl.Bidirectional) else [twin]
    out, keras_cells = [], iter(_cells(layer))
    for sub in subs:
        step = (case.batch, *case.input_shape[2:])
        stacked = hasattr(sub.cell, "cells")
        for cell in getattr(sub.cell, "cells", [sub.cell]):
            state = (case.batch, cell.units) if stacked else sub.get_initial_state(case.batch)[0].shape
            count = getattr(next(keras_cells), "dropout_mask_count", cell.dropout_mask_count)
            out.append((step, state, count, cell.dropout, cell.recurrent_dropout))
            step = state
    return out


def prepare(case: Case) -> tuple[dict, CaseData, Any]:
    """Build the Keras layer; return (the twin's config, the case data, the Keras layer)."""
    import refimpl

    keras = _keras()
    layout = Layout(case)
    layer = build_keras_layer(case)
    shape = case.input_shape
    layer.build(tuple(layout.to_oracle(np.empty(shape, np.bool_), 2).shape))
    config = keras.layers.serialize(layer)
    if layout.on:
        config = _as_channels_first(config)
    twin = refimpl.deserialize(config, keras_version=2 if PACKAGE == "tf_keras" else 3)
    twin.build(shape)
    data = make_data(case, [w.shape for w in layer.get_weights()], _shapes(twin.get_initial_state(case.batch)),
                     _dropout_layout(case, twin, layer) if case.training else [])
    layer.set_weights([w.astype(case.dtype) for w in data.weights])
    return config, data, layer


def _as_channels_first(config: Any) -> Any:
    """The oracle's channels_last config as the case's channels_first one, nested layers included."""
    if isinstance(config, list):
        return [_as_channels_first(c) for c in config]
    if not isinstance(config, dict):
        return config
    out = {k: _as_channels_first(v) for k, v in config.items()}
    if out.get("data_format") == "channels_last":
        out["data_format"] = "channels_first"
    shape = (out.get("build_config") or {}).get("input_shape")
    if shape is not None and len(shape) >= 4:  # (B, T, *S, C) -> (B, T, C, *S)
        out["build_config"] = {"input_shape": [*shape[:2], shape[-1], *shape[2:-1]]}
    return out


def call_plan(case: Case, data: CaseData) -> list:
    """The case's calls: [(inputs, mask, initial_state)], or for stateful cases the first half,
    the second half, "reset" (reset_state()), and the first half again."""
    if not case.stateful_calls:
        return [(data.inputs, data.mask, data.initial_state)]
    half, m = case.steps // 2, data.mask
    first = (data.inputs[:, :half], None if m is None else m[:, :half], data.initial_state)
    second = (data.inputs[:, half:], None if m is None else m[:, half:], None)
    return [first, second, "reset", first]


def _calls(case: Case, data: CaseData, layer: Any, call) -> list[Array]:
    """Run the call plan on ``layer`` with ``call(x, mask, initial_state)``; every output of every
    call, flattened."""
    outputs = []
    for args in call_plan(case, data):
        if args == "reset":
            (layer.reset_state if hasattr(layer, "reset_state") else layer.reset_states)()  # Keras 3 / 2
        else:
            outputs += flatten(call(*args))  # np.asarray also reads eager tensors
    return outputs


def run_keras(case: Case, layer: Any, data: CaseData) -> list[Array]:
    keras = _keras()
    layout = Layout(case)
    if data.dropout_masks:
        for cell, (dp, rec) in zip(_cells(layer), data.dropout_masks):
            _pin_dropout_masks(keras, cell, layout.mask_to_oracle(dp), layout.mask_to_oracle(rec), case.dtype)

    def call(x: Array, mask: Array | None, init: Any) -> Any:
        kwargs = {"training": case.training}
        if mask is not None:
            kwargs["mask"] = _tensor(mask)
        if init is not None:
            kwargs["initial_state"] = _to_tensor(keras, layout.state_to_oracle(init), case.dtype)
        out = layer(_tensor(layout.to_oracle(x, 2).astype(case.dtype)), **kwargs)
        return [layout.from_oracle(o) for o in flatten(out)]
    return _calls(case, data, layer, call)


def _to_tensor(keras: Any, tree: Any, dtype: str) -> Any:
    if isinstance(tree, list):
        return [_to_tensor(keras, t, dtype) for t in tree]
    return _tensor(tree.astype(dtype))


def _pin_dropout_masks(keras: Any, cell: Any, dp: Array | None, rec: Array | None, dtype: str) -> None:
    if not hasattr(cell, "get_dropout_mask"):
        # tf-keras draws masks in get_dropout_mask_for_cell, also from its fused LSTM/GRU layer
        # paths; they cannot be pinned from outside, so training cases have no Keras 2 fixtures.
        raise NotImplementedError("dropout masks cannot be supplied to tf-keras layers")

    per_gate = getattr(cell, "dropout_mask_count", None) is not None

    def tensor(m: Array | None) -> Any:
        if m is None:
            return None
        if per_gate:  # Keras indexes dp_mask[g]
            return [_tensor(g.astype(dtype)) for g in m]
        return _tensor(m.astype(dtype))

    dp_t, rec_t = tensor(dp), tensor(rec)
    cell.get_dropout_mask = lambda step_input: dp_t
    cell.get_recurrent_dropout_mask = lambda step_input: rec_t


def record_live(case: Case):
    """The case run through the live Keras oracle, as a recorded case (``fixtures.FixtureCase``):
    what a fixture set would hold for it, in memory. Inputs, states and weights in the case's dtype."""
    from conformance.fixtures import FixtureCase

    config, data, layer = prepare(case)

    def cast(tree: Any) -> Any:
        if tree is None:
            return None
        if isinstance(tree, (list, tuple)):
            return [cast(t) for t in tree]
        a = np.asarray(tree)
        return a.astype(case.dtype) if a.dtype.kind == "f" else a

    calls = ["reset_state" if c == "reset" else {"inputs": cast(c[0]), "mask": c[1], "initial_state": cast(c[2])}
             for c in call_plan(case, data)]
    masks = None if not data.dropout_masks else [[cast(dp), cast(rec)] for dp, rec in data.dropout_masks]
    rec = FixtureCase(case.id, case.family, case.dtype, config, calls, cast(data.weights), case.training,
                      masks, [], "ok")
    try:
        rec.outputs = run_keras(case, layer, data)
    except Exception as e:  # Keras fails on a valid configuration
        rec.status, rec.error = "oracle-raised", f"{type(e).__name__}: {str(e)[:300]}"
    return rec

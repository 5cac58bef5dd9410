"""Run one case through Keras (the oracle) and through refimpl, from one Keras config.

The Keras layer is built from the case's spec and serialized with ``keras.layers.serialize``; the
refimpl twin is ``refimpl.deserialize`` of that same dict, so every case also exercises
deserialization. Weights are drawn with the shapes Keras reports and set on both.

Dropout with ``training=True``: Keras caches one mask per sequence on each cell
(``DropoutRNNCell.get_dropout_mask``); the harness replaces those two methods on the Keras cell
instances so they return the case's masks, and passes the same masks to refimpl as
``DropoutMasks``.
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


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # When Keras raises inside its loop, TensorFlow logs "Object was never used (TensorArray)"
        # at ERROR level as the graph is collected; the harness reports the exception itself.
        tf.get_logger().setLevel("CRITICAL")
    return keras


def keras_versions() -> dict[str, str]:
    keras = _keras()
    versions = {"keras": keras.__version__, "backend": keras.backend.backend()}
    if versions["backend"] == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    return versions


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
    return getattr(L, case.layer_name)(**kwargs, dtype=case.dtype)


def _cells(layer: Any) -> list:
    cell = layer.cell
    return list(cell.cells) if hasattr(cell, "cells") else [cell]


def _dropout_layout(case: Case, layer: Any) -> list[tuple]:
    layout, input_dim = [], case.features
    for cell in _cells(layer):
        layout.append((input_dim, cell.units, getattr(cell, "dropout_mask_count", None), cell.dropout,
                       cell.recurrent_dropout))
        input_dim = cell.units
    return layout


def prepare(case: Case) -> tuple[dict, CaseData, Any]:
    """Build the Keras layer; return (its serialized config, the case data, the layer)."""
    keras = _keras()
    layer = build_keras_layer(case)
    layer.build((case.batch, case.steps, case.features))
    config = keras.layers.serialize(layer)
    data = make_data(case, [w.shape for w in layer.get_weights()], layer.cell.state_size,
                     _dropout_layout(case, layer) if case.training else [])
    layer.set_weights([w.astype(case.dtype) for w in data.weights])
    return config, data, layer


def _calls(case: Case, data: CaseData, layer: Any, call) -> list[Array]:
    """Run the case's call protocol on ``layer`` with ``call(x, mask, initial_state)``: one call,
    or for stateful cases call(first half), call(second half), reset_state(), call(first half).
    Returns every output of every call, flattened."""
    calls = [(data.inputs, data.mask, data.initial_state)]
    if case.stateful_calls:
        half, m = case.steps // 2, data.mask
        first = (data.inputs[:, :half], None if m is None else m[:, :half], data.initial_state)
        second = (data.inputs[:, half:], None if m is None else m[:, half:], None)
        calls = [first, second, "reset", first]
    outputs = []
    for args in calls:
        if args == "reset":
            layer.reset_state()
        else:
            outputs += flatten(call(*args))  # np.asarray also reads eager tensors
    return outputs


def run_keras(case: Case, layer: Any, data: CaseData) -> list[Array]:
    keras = _keras()
    if data.dropout_masks:
        for cell, (dp, rec) in zip(_cells(layer), data.dropout_masks):
            _pin_dropout_masks(keras, cell, dp, rec, case.dtype)

    def call(x: Array, mask: Array | None, init: Any) -> Any:
        kwargs = {"training": case.training}
        if mask is not None:
            kwargs["mask"] = keras.ops.convert_to_tensor(mask)
        if init is not None:
            kwargs["initial_state"] = _to_tensor(keras, init, case.dtype)
        return layer(keras.ops.convert_to_tensor(x.astype(case.dtype)), **kwargs)
    return _calls(case, data, layer, call)


def _to_tensor(keras: Any, tree: Any, dtype: str) -> Any:
    if isinstance(tree, list):
        return [_to_tensor(keras, t, dtype) for t in tree]
    return keras.ops.convert_to_tensor(tree.astype(dtype))


def _pin_dropout_masks(keras: Any, cell: Any, dp: Array | None, rec: Array | None, dtype: str) -> None:
    def tensor(m: Array | None) -> Any:
        if m is None:
            return None
        if m.ndim == 3:  # one per gate: Keras indexes dp_mask[g]
            return [keras.ops.convert_to_tensor(g.astype(dtype)) for g in m]
        return keras.ops.convert_to_tensor(m.astype(dtype))

    dp_t, rec_t = tensor(dp), tensor(rec)
    cell.get_dropout_mask = lambda step_input: dp_t
    cell.get_recurrent_dropout_mask = lambda step_input: rec_t


def run_refimpl(case: Case, config: dict, data: CaseData) -> list[Array]:
    import refimpl

    layer = refimpl.deserialize(config)
    layer.set_weights(data.weights)
    masks = None
    if data.dropout_masks:
        masks = [refimpl.DropoutMasks(dp, rec) for dp, rec in data.dropout_masks]
        masks = masks if case.stacked else masks[0]

    def call(x: Array, mask: Array | None, init: Any) -> Any:
        init = None if init is None else _cast(init, case.dtype)
        return layer(x.astype(case.dtype), mask=mask, initial_state=init, training=case.training,
                     dropout_masks=masks)
    return _calls(case, data, layer, call)


def _cast(tree: Any, dtype: str) -> Any:
    return [_cast(t, dtype) for t in tree] if isinstance(tree, list) else tree.astype(dtype)

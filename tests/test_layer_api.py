"""The Layer machinery on refimpl alone: the class registry (user subclasses stay out of it, and
the import-time tables are checked in a fresh interpreter), initializers with Keras's defaults,
count_params, compute_output_shape of stacks, copies, trainable, time_major and use_cudnn in
configs, Keras 3's serialize form, user cells in configs. Found by mutation testing
(docs/mutation.md)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import numpy as np
import pytest

import refimpl
from refimpl import initializers as I  # noqa: N812
from refimpl.base import REGISTRY
from refimpl.rnn import _flatten


def _x(b=2, t=5, f=3):
    return np.random.default_rng(0).uniform(-1, 1, (b, t, f))


# user Layer subclasses are not registered; a script's class (module __main__) is fine
def test_user_subclasses_do_not_register():
    class MyCell(refimpl.SimpleRNNCell):
        pass
    class LSTM(refimpl.LSTM):  # a user class that shares a Keras name
        pass
    type("ScriptCell", (refimpl.SimpleRNNCell,), {"__module__": "__main__"})  # a class in a script
    try:
        assert "MyCell" not in REGISTRY and "ScriptCell" not in REGISTRY
        assert type(refimpl.deserialize(refimpl.serialize(refimpl.LSTM(2)))) is refimpl.LSTM
        cfg = refimpl.serialize(MyCell(2))
        with pytest.raises(NotImplementedError):  # not without custom_objects
            refimpl.deserialize(cfg)
        assert type(refimpl.deserialize(cfg, custom_objects={"MyCell": MyCell})) is MyCell
    finally:
        for n in ("MyCell", "ScriptCell"):
            REGISTRY.pop(n, None)
        REGISTRY["LSTM"] = refimpl.LSTM

# fresh interpreter: registry + initializer table (import-time code)
FRESH = r'''
import numpy as np, refimpl
from refimpl import initializers as I
from refimpl.base import REGISTRY
from refimpl.rnn import _flatten
for name in ("SimpleRNN", "LSTM", "GRU", "RNN", "SimpleRNNCell", "LSTMCell", "GRUCell", "StackedRNNCells",
             "Bidirectional", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "ConvLSTMCell"):
    assert REGISTRY.get(name) is getattr(refimpl, name), name
    assert "CellLayer" not in REGISTRY and "RNNCell" not in REGISTRY
for name in sorted(I.INITIALIZERS) + sorted(I.ALIASES):
    for dt in ("float16", "float32", "float64"):
        w = I.get(name)((3, 4), np.dtype(dt))
        assert w.shape == (3, 4) and w.dtype == dt, (name, dt)
assert np.all(I.get("zeros")((2,), np.float32) == 0) and np.all(I.get("ones")((2,), np.float32) == 1)
KERAS = {"glorot_uniform": (1.0, "fan_avg", "uniform"), "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
         "he_uniform": (2.0, "fan_in", "uniform"), "he_normal": (2.0, "fan_in", "truncated_normal"),
         "lecun_uniform": (1.0, "fan_in", "uniform"), "lecun_normal": (1.0, "fan_in", "truncated_normal")}
for name, (scale, mode, dist) in KERAS.items():
    a = I.get({"class_name": name, "config": {"seed": 7}})((30, 70), np.float64)
    b = I.variance_scaling(scale=scale, mode=mode, distribution=dist, seed=7)((30, 70), np.float64)
    assert np.array_equal(a, b), name
print("FRESH-OK")
'''
def test_fresh_interpreter():
    root = os.path.dirname(os.path.dirname(os.path.abspath(refimpl.__file__)))
    r = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True, cwd=root, timeout=120)
    assert "FRESH-OK" in r.stdout, r.stderr[-300:]


# initializers in-process
def test_initializers():
    for name in ("constant", "identity", "random_normal", "random_uniform", "truncated_normal"):
        for dt in ("float16", "float32"):
            assert I.get(name)((3, 3), np.dtype(dt)).dtype == dt, (name, dt)
    assert np.all(I.get({"class_name": "Constant", "config": {"value": 0.3}})((2,), np.float32) == np.float32(0.3))
    # bare names take Keras's defaults: Constant(0.0), Identity(gain=1.0), RandomNormal(0.0, 0.05)
    assert np.all(I.get("constant")((2, 2), np.float64) == 0.0)
    np.testing.assert_array_equal(I.get("identity")((2, 3), np.float64), np.eye(2, 3))
    w = I.get("random_normal")((20000,), np.float64)
    # Sampling bounds, not a numeric tolerance: with 20000 draws the standard errors of the mean and
    # of the stddev are 3.5e-4 and 2.5e-4, so these bounds sit > 14 standard errors away (they
    # cannot fail by chance) and still reject a wrong default (stddev 1, or a mean of 0.05).
    assert abs(w.mean()) < 0.005 and 0.045 < w.std() < 0.055
    for n in ("random_uniform", "random_normal", "truncated_normal"):
        c = {"class_name": n, "config": {"seed": 4}}
        np.testing.assert_array_equal(I.get(c)((50,), np.float64), I.get(c)((50,), np.float64))
    # truncated_normal = the normal with draws beyond 2 stddev redrawn
    for s in range(30):
        config = {"mean": 0.3, "stddev": 0.05, "seed": s}
        t = I.get({"class_name": "TruncatedNormal", "config": config})((50,), np.float64)
        n = I.get({"class_name": "RandomNormal", "config": config})((50,), np.float64)
        keep = np.abs(n - 0.3) <= 2 * 0.05
        assert np.all(np.abs(t - 0.3) <= 2 * 0.05 * (1 + 1e-12))  # 1e-12: the rounding of 0.3 + draw
        assert len(np.unique(t)) == t.size
        np.testing.assert_array_equal(t[keep], n[keep])


# count_params of a built cell; repr names the class
def test_cell_count_params_and_repr():
    cell = refimpl.LSTMCell(2)
    layer = refimpl.RNN(cell)
    layer.build((None, 5, 3))
    assert cell.count_params() == layer.count_params() == sum(w.size for w in cell.get_weights())
    assert repr(refimpl.LSTM(2, name="x")).startswith("<refimpl.LSTM ")


# compute_output_shape agrees with the call (flattened), stacked cells with list state sizes
def test_stacked_output_shape():
    layer = refimpl.RNN([refimpl.LSTMCell(2), refimpl.SimpleRNNCell(3)], return_state=True)
    out = layer(_x())
    shapes = [tuple(a.shape) for a in _flatten(out)]
    assert _shapes(layer.compute_output_shape((2, 5, 3))) == shapes


def _shapes(s):
    """A nest of shapes (tuples of ints) as a flat list."""
    if isinstance(s, (list, tuple)) and s and isinstance(s[0], (list, tuple)):
        return [t for i in s for t in _shapes(i)]
    return [tuple(s)]


# get_initial_state honours dtype
def test_initial_state_dtype():
    for dt in ("float32", "float16"):
        assert all(s.dtype == dt for s in refimpl.LSTM(2).get_initial_state(3, dt))


# Keras 2 time_major round-trips
def test_time_major_round_trip():
    layer = refimpl.LSTM(2, time_major=True, keras_version=2)
    assert layer.get_config()["time_major"] is True
    twin = refimpl.deserialize(refimpl.serialize(layer), keras_version=2)
    assert twin.time_major is True


# copy/deepcopy of a layer; attribute forwarding
def test_copy():
    layer, x = refimpl.GRU(2), _x()
    y = layer(x)
    np.testing.assert_array_equal(copy.deepcopy(layer)(x), y)
    np.testing.assert_array_equal(copy.copy(layer)(x), y)


# trainable set after construction shows in config
def test_trainable_flag():
    for cls in (refimpl.SimpleRNN, refimpl.LSTM, refimpl.GRU):
        layer = cls(2)
        layer.trainable = False
        assert layer.get_config()["trainable"] is False


# use_cudnn — Keras 3.15.1 never writes it (docs/gpu.md); default config has no use_cudnn
def test_default_config_has_no_use_cudnn():
    for cls in (refimpl.LSTM, refimpl.GRU):
        assert "use_cudnn" not in cls(2).get_config()


# a user stack wrapper of refimpl cells without call_vjp -> NotImplementedError
def test_user_wrapper_without_call_vjp():
    class Wrap:
        state_size = [2]

        def __init__(self):
            self.cells = [refimpl.SimpleRNNCell(2)]

        def call(self, inputs, states):
            return self.cells[0].call(inputs, states)
    layer = refimpl.RNN(Wrap(), return_sequences=True)
    with pytest.raises(NotImplementedError, match="the backward pass needs a refimpl cell"):
        refimpl.vjp(layer, _x(f=2), np.ones((2, 5, 2)))


# Keras 3 serialize form
def test_serialize_form():
    layer = refimpl.GRU(2)
    layer.build((None, 5, 3))
    s = refimpl.serialize(layer)
    assert s["module"] == "keras.layers" and s["registered_name"] is None and s["class_name"] == "GRU"
    assert s["build_config"] == {"input_shape": [None, 5, 3]}
    assert refimpl.deserialize(s).built
    r = refimpl.RNN(refimpl.SimpleRNNCell(2))
    r.build((None, 4, 3))
    cell = refimpl.serialize(r)["config"]["cell"]
    assert cell["module"] == "keras.layers" and cell["registered_name"] is None
    assert cell["build_config"] == {"input_shape": [None, 3]}
    assert "build_config" not in refimpl.serialize(refimpl.GRU(2))  # unbuilt: none, as Keras


# RNN(user cell with get_config) serializes
def test_user_cell_get_config():
    class Acc:
        state_size = 2
        def call(self, inputs, states):
            return states[0] + inputs, [states[0] + inputs]
        def get_config(self):
            return {}
    cfg = refimpl.RNN(Acc()).get_config()
    assert cfg["cell"]["class_name"] == "Acc"


def test_an_rnn_of_a_cell_without_weights_has_none():
    class Acc:
        state_size = 2

        def call(self, inputs, states):
            return states[0] + inputs, [states[0] + inputs]
    layer = refimpl.RNN(Acc())
    layer(np.ones((1, 3, 2)))
    assert layer.get_weights() == [] and layer.count_params() == 0


@pytest.mark.parametrize("dtype", ["float32", "float16", "mixed_float16"])
def test_set_weights_stores_them_in_the_variable_dtype(dtype):
    layer = refimpl.GRU(2, dtype=dtype)
    layer.build((None, 5, 3))
    layer.set_weights([w.astype(np.float64) for w in layer.get_weights()])
    assert {w.dtype for w in layer.get_weights()} == {np.dtype(layer.variable_dtype)}


class MyLSTMCell(refimpl.LSTMCell):  # a user's subclass: deserialized through custom_objects
    pass


class MyGRU(refimpl.GRU):
    pass


@pytest.mark.parametrize("make", [
    lambda: refimpl.RNN(MyLSTMCell(2)),
    lambda: refimpl.RNN(refimpl.StackedRNNCells([MyLSTMCell(2), refimpl.GRUCell(2)])),
    lambda: refimpl.Bidirectional(MyGRU(2)),
], ids=["RNN", "StackedRNNCells", "Bidirectional"])
def test_deserialize_hands_custom_objects_to_nested_layers(make):
    layer = refimpl.deserialize(refimpl.serialize(make()), custom_objects={"MyLSTMCell": MyLSTMCell, "MyGRU": MyGRU})
    assert any(isinstance(c, (MyLSTMCell, MyGRU)) for c in _nested(layer))


@pytest.mark.parametrize("make", [
    lambda: refimpl.RNN(refimpl.LSTMCell(2, recurrent_activation="hard_sigmoid")),
    lambda: refimpl.RNN(refimpl.StackedRNNCells([refimpl.LSTMCell(2), refimpl.GRUCell(2)])),
    lambda: refimpl.Bidirectional(refimpl.GRU(2), backward_layer=refimpl.LSTM(2, go_backwards=True)),
], ids=["RNN", "StackedRNNCells", "Bidirectional"])
def test_deserialize_hands_keras_version_to_nested_layers(make):
    """Keras 2's hard_sigmoid reaches every nested cell."""
    nested = _nested(refimpl.deserialize(refimpl.serialize(make()), keras_version=2))
    assert len(nested) >= 2 and all(c.keras_version == 2 for c in nested)


def _nested(layer):
    """The layer, its cell(s) and its directions, recursively."""
    out = [layer]
    for attr in ("cell", "forward_layer", "backward_layer"):
        if getattr(layer, attr, None) is not None and attr in vars(layer):
            out += _nested(vars(layer)[attr])
    for c in getattr(layer, "cells", []) if "cells" in vars(layer) else []:
        out += _nested(c)
    return out

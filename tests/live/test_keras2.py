"""keras_version=2: refimpl against tf-keras 2.21 (Keras 2), where the two Keras versions differ.

Runs in the tox env ``keras2``; needs ``pip install -e '.[keras2,test]'``.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

import refimpl
from conformance.data import mask_pattern
from conformance.tolerances import tolerance_for

if os.environ.get("RNN_CONFORMANCE_REQUIRE_KERAS") == "2":  # the tox env keras2: must not skip
    import tf_keras
else:
    tf_keras = pytest.importorskip("tf_keras", reason="tf-keras not installed: tox -e keras2 runs these")

TOL = tolerance_for("float64")
CASES = [
    (layer, dict(kw, **extra))
    for layer in ("SimpleRNN", "LSTM", "GRU")
    for kw in ({"activation": "hard_sigmoid"}, {"recurrent_activation": "hard_sigmoid"},
               {"go_backwards": True, "return_state": True}, {"time_major": True},
               {"implementation": 1}, {"reset_after": False})
    if not (layer == "SimpleRNN" and ("recurrent_activation" in kw or "implementation" in kw))
    and not (layer != "GRU" and "reset_after" in kw)
    for extra in ({}, {"return_sequences": True})
]


def _run(layer_name, kwargs, mask=None):
    rng = np.random.default_rng(len(str(kwargs)) + len(layer_name))
    layer = getattr(tf_keras.layers, layer_name)(units=3, dtype="float64", **kwargs)
    x = rng.uniform(-1, 1, (3, 6, 4))
    keras_x = np.swapaxes(x, 0, 1) if kwargs.get("time_major") else x
    layer.build(keras_x.shape)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) * 3 for w in layer.get_weights()])  # x3: reach saturation
    expected = layer(keras_x, mask=mask)
    expected = [np.asarray(e) for e in (expected if isinstance(expected, list) else [expected])]
    config = tf_keras.layers.serialize(layer)
    results = {}
    for version in (2, 3) if not kwargs.get("time_major") else (2,):  # Keras 3 has no time_major
        twin = refimpl.deserialize(config, keras_version=version)
        twin.set_weights(layer.get_weights())
        out = twin(keras_x, mask=mask)
        results[version] = [np.asarray(o) for o in (out if isinstance(out, list) else [out])]
    return expected, results


@pytest.mark.parametrize("layer_name, kwargs", CASES, ids=[f"{n}({kw})" for n, kw in CASES])
def test_keras_version_2_matches_tf_keras(layer_name, kwargs):
    expected, results = _run(layer_name, kwargs)
    assert len(results[2]) == len(expected)
    for e, a in zip(expected, results[2]):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=TOL.rtol, atol=TOL.atol)


@pytest.mark.parametrize("layer_name, kwargs", [c for c in CASES if "hard_sigmoid" in c[1].values()],
                         ids=lambda v: str(v))
def test_hard_sigmoid_makes_keras_3_semantics_differ_from_tf_keras(layer_name, kwargs):
    expected, results = _run(layer_name, kwargs)
    drift = max(np.abs(a - e).max() for a, e in zip(results[3], expected))
    assert drift > 1e-3, f"Keras 3 semantics should differ from Keras 2 here, drift={drift:.2g}"


@pytest.mark.parametrize("layer_name, mask_name, go_backwards", list(itertools.product(
    ("SimpleRNN", "LSTM", "GRU"), ("right_pad", "left_pad", "holes", "masked_row"), (False, True))))
def test_masking_matches_tf_keras(layer_name, mask_name, go_backwards):
    mask = mask_pattern(mask_name, 3, 6)
    expected, results = _run(layer_name, {"go_backwards": go_backwards, "return_sequences": True,
                                          "return_state": True}, mask=mask)
    for e, a in zip(expected, results[2]):
        np.testing.assert_allclose(a, e, rtol=TOL.rtol, atol=TOL.atol)


@pytest.mark.parametrize("make", [
    lambda L: L.ConvLSTM2D(2, 3, padding="same", return_sequences=True, dtype="float64"),  # hard_sigmoid default
    lambda L: L.ConvLSTM1D(2, 2, strides=2, return_state=True, dtype="float64"),
    lambda L: L.Bidirectional(L.LSTM(3, recurrent_activation="hard_sigmoid", return_sequences=True,
                                     dtype="float64"), dtype="float64"),
    lambda L: L.Bidirectional(L.GRU(3, return_state=True, dtype="float64"), merge_mode="sum", dtype="float64"),
], ids=["ConvLSTM2D", "ConvLSTM1D", "Bidirectional(LSTM)", "Bidirectional(GRU)"])
def test_convlstm_and_bidirectional_keras_2_configs_match_tf_keras(make):
    layer = make(tf_keras.layers)
    rng = np.random.default_rng(7)
    shape = {"ConvLSTM2D": (2, 4, 6, 5, 3), "ConvLSTM1D": (2, 4, 6, 3)}.get(type(layer).__name__, (2, 4, 3))
    x = rng.uniform(-1, 1, shape)
    layer.build(x.shape)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) * 3 for w in layer.get_weights()])
    expected = layer(x)
    expected = [np.asarray(e) for e in (expected if isinstance(expected, list) else [expected])]
    twin = refimpl.deserialize(tf_keras.layers.serialize(layer), keras_version=2)
    twin.set_weights(layer.get_weights())
    out = twin(x)
    out = out if isinstance(out, list) else [out]
    assert len(out) == len(expected)
    for e, a in zip(expected, out):
        np.testing.assert_allclose(a, e, rtol=TOL.rtol, atol=TOL.atol)


# --- old checkpoints ported to Keras 2 (refimpl.legacy.port, conformance/drift.py) -----------------------
def _ported_to_keras2():
    from conformance import drift
    from conformance.oracle.fixture import FixtureOracle, find_set

    for version, name in ((0, "keras-0.2.0_theano-1.0.5_cpu"), (1, "keras-1.2.2_theano-1.0.5_cpu")):
        for rec in drift.ported(FixtureOracle(find_set(name)).items, version, 2):
            yield pytest.param(rec, id=f"{name}::{rec.id}")


@pytest.mark.parametrize("rec", list(_ported_to_keras2()))
def test_tf_keras_computes_what_the_port_to_keras2_says(rec):
    """The drift table's 1.2.2 -> 2 row (nothing moves) and 0.2.0 -> 2 are tf-keras's numbers."""
    from conformance.compare import compare
    from conformance.oracle.live import KerasOracle

    outputs = KerasOracle("tf_keras").play_config(rec.config, rec.weights, rec.calls, training=False,
                                                  dropout_masks=None)
    c = compare(outputs, rec.outputs, TOL)
    assert c.ok, c.message

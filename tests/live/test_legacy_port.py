"""The drift table's later side is real Keras: every SimpleRNN/GRU/LSTM case of the Keras 0.2.0 and
1.2.2 sets, ported (refimpl.legacy.port), loads in Keras 3 with keras.layers.deserialize and
computes there what refimpl at keras_version=3 computes for it (conformance/drift.py), which is
what README's "Ten years of Keras" and docs/history.md report."""

from __future__ import annotations

import pytest

from conformance import drift
from conformance.compare import compare
from conformance.oracle.fixture import FixtureOracle, find_set
from conformance.oracle.live import KerasOracle
from conformance.tolerances import tolerance_for

ORACLE = KerasOracle()
SETS = {0: "keras-0.2.0_theano-1.0.5_cpu", 1: "keras-1.2.2_theano-1.0.5_cpu"}
PORTED = [pytest.param(rec, id=f"{SETS[v]}::{rec.id}") for v, name in SETS.items()
          for rec in drift.ported(FixtureOracle(find_set(name)).items, v, 3)]


@pytest.mark.parametrize("rec", PORTED)
def test_keras3_computes_what_the_port_says(rec):
    keras_outputs = ORACLE.play_config(rec.config, rec.weights, rec.calls, training=False, dropout_masks=None)
    c = compare(keras_outputs, rec.outputs, tolerance_for("float64"))
    assert c.ok, c.message

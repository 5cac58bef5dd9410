"""Meta-tests: the public strategies reach the corners the properties and the fuzzer rely on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, find, settings

from conformance import strategies as rs

SEARCH = settings(max_examples=3000, database=None, deadline=None, suppress_health_check=list(HealthCheck))


def _kw(config: dict) -> dict:
    return rs._inner(config)["config"]


CORNERS = {
    "go_backwards with a mask": (rs.layers_and_data(rs.DENSE + rs.CONV),
                                 lambda d: _kw(d.config).get("go_backwards") and d.mask is not None),
    "GRU with reset_after=False": (rs.layer_configs(["GRU"]), lambda c: c["config"].get("reset_after") is False),
    "Bidirectional returning states": (rs.layer_configs(["Bidirectional"]),
                                       lambda c: c["config"]["layer"]["config"].get("return_state")),
    "Bidirectional with merge_mode=None": (rs.layer_configs(["Bidirectional"]),
                                           lambda c: "merge_mode" in c["config"] and c["config"]["merge_mode"] is None),
    "a fully masked row": (rs.masks(3, 4), lambda m: m is not None and (~m).all(axis=1).any() and m.any()),
    "an all-false mask": (rs.masks(2, 3), lambda m: m is not None and not m.any()),
    "left padding": (rs.masks(3, 5), lambda m: m is not None and not m[:, 0].all() and m[:, -1].all()),
    "ConvLSTM3D channels_first with strides": (
        rs.layer_configs(["ConvLSTM3D"]),
        lambda c: c["config"]["data_format"] == "channels_first" and np.max(c["config"].get("strides", 1)) > 1),
    "'same' padding with dilation": (rs.layer_configs(rs.CONV),
                                    lambda c: c["config"]["padding"] == "same" and np.max(c["config"].get("dilation_rate", 1)) > 1),
    "every default kept (no activation given)": (rs.layer_configs(rs.DENSE), lambda c: "activation" not in c["config"]),
    "LSTM implementation=1 with dropout": (rs.layer_configs(["LSTM"], training=True),
                                           lambda c: c["config"].get("implementation") == 1 and c["config"].get("dropout")),
    "a stateful Bidirectional fuzz case": (rs.cases(["Bidirectional"]), lambda c: c.stateful_calls),
    "a ConvLSTM fuzz case in training with a mask": (rs.cases(rs.CONV), lambda c: c.training and c.mask),
    "an initial state for Bidirectional(LSTM)": (
        rs.layers_and_data(["Bidirectional"]),
        lambda d: d.initial_state is not None and d.config["config"]["layer"]["class_name"] == "LSTM"),
}


@pytest.mark.parametrize("corner", sorted(CORNERS))
def test_strategies_reach(corner):
    strategy, condition = CORNERS[corner]
    assert find(strategy, condition, settings=SEARCH) is not None


def test_weights_differ_per_gate_and_biases_are_never_zero():
    weights = find(rs.weights([(3, 12), (12,)]), lambda w: True, settings=SEARCH)
    kernel, bias = weights
    assert len({tuple(kernel[:, g * 3:(g + 1) * 3].ravel()) for g in range(4)}) == 4
    assert np.all(bias != 0) and np.abs(kernel).max() <= 0.6


def test_inputs_are_bounded_so_gates_do_not_saturate():
    x = find(rs.inputs((4, 6, 3)), lambda x: True, settings=SEARCH)
    assert np.abs(x).max() <= 1.0 and x.std() > 0.2

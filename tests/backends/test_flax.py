"""The Flax NNX adapter (conformance/adapters/flax_nnx.py) against the canonical fixture set.

The first tests need neither JAX nor Flax (what the adapter declines, and why, is decided from the
config alone). The rest run Flax: they are skipped without it, unless RNN_CONFORMANCE_REQUIRE_FLAX=1,
which makes a missing flax a failure (for the jobs that install it: flax==0.12.8, jax==0.10.2).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance.adapters import Decline, Implementation, flax_nnx
from conformance.compare import compare
from conformance.deviations import load_deviations
from conformance.judge import judge
from conformance.oracle.fixture import FixtureOracle, find_set
from conformance.report import failure_text
from conformance.tolerances import tolerance_for

ROOT = Path(__file__).resolve().parents[2]
ORACLE = FixtureOracle(find_set())
CASES = {fc.id: fc for fc in ORACLE.items}
DEVIATIONS = load_deviations()


def _case(case_id: str):
    assert case_id in CASES, f"{case_id!r} is not in the canonical fixture set"
    return CASES[case_id]


def _layer(name: str = "GRU", **cfg) -> dict:
    return {"class_name": name, "config": {"units": 3, **cfg}}


# --- without Flax -------------------------------------------------------------------------------
def test_importing_the_adapter_module_needs_neither_jax_nor_flax():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('jax', 'flax', 'jaxlib'):\n"
            "            raise ImportError(f'blocked: {name}')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import conformance.adapters.flax_nnx as m\n"
            "print(m.why_not({'class_name': 'ConvLSTM2D', 'config': {}}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no convolutional LSTM" in done.stdout


@pytest.mark.parametrize("config, reason", [
    (_layer(reset_after=False), "only the reset-after form"),
    (_layer("ConvLSTM2D"), "no convolutional LSTM"),
    (_layer(activation="sparsemax"), "activation='sparsemax'"),
    (_layer("LSTM", recurrent_activation={"class_name": "Custom"}), "recurrent_activation="),
    (_layer("LSTM", time_major=True), "time_major=..."),
    (_layer(dtype="int8"), "dtype='int8'"),
    ({"class_name": "Bidirectional", "config": {"layer": _layer("SimpleRNN", go_backwards=True)}}, "directions swap"),
    ({"class_name": "RNN", "config": {"cell": {"class_name": "PeepholeLSTMCell", "config": {}}}}, "own cells only"),
], ids=["GRU(reset_after=False)", "ConvLSTM2D", "GRU(activation='sparsemax')", "LSTM(a custom gate function)",
        "LSTM(time_major=True)", "GRU(dtype='int8')", "Bidirectional(go_backwards=True)", "RNN(PeepholeLSTMCell)"])
def test_what_nnx_cannot_express_is_declined_with_its_reason(config, reason):
    assert reason in (flax_nnx.why_not(config) or ""), flax_nnx.why_not(config)


@pytest.mark.parametrize("config", [
    _layer(), _layer("LSTM", activation="gelu", recurrent_activation="hard_sigmoid"), _layer("SimpleRNN", dtype="mixed_float16"),
    {"class_name": "RNN", "config": {"cell": {"class_name": "StackedRNNCells", "config": {"cells": [
        {"class_name": "SimpleRNNCell", "config": {"units": 2}}, {"class_name": "LSTMCell", "config": {"units": 3}}]}}}},
    {"class_name": "Bidirectional", "config": {"layer": _layer("LSTM"), "merge_mode": None}},
], ids=["GRU()", "LSTM(activation='gelu', recurrent_activation='hard_sigmoid')", "SimpleRNN(dtype='mixed_float16')",
        "RNN(StackedRNNCells([SimpleRNNCell, LSTMCell]))", "Bidirectional(LSTM(), merge_mode=None)"])
def test_what_nnx_expresses_is_accepted(config):
    assert flax_nnx.why_not(config) is None


@pytest.mark.parametrize("mask, return_sequences, reason", [
    ([[1, 1, 0], [1, 0, 1]], False, "right padding only"),
    ([[1, 1, 0], [0, 0, 0]], False, "fully masked row"),
    ([[1, 1, 0], [1, 1, 1]], True, "zero_output_for_mask=False"),
], ids=["holes", "a fully masked row", "return_sequences over padding, repeating the last output"])
def test_masks_seq_lengths_cannot_express_are_declined(mask, return_sequences, reason):
    stack = flax_nnx.Stack([("GRU", {})], False, return_sequences, False, None)
    with pytest.raises(Decline, match=reason):
        flax_nnx._lengths(np.array(mask, bool), [stack])


def test_a_right_padded_mask_becomes_seq_lengths():
    stack = flax_nnx.Stack([("GRU", {})], False, False, False, None)
    lengths = flax_nnx._lengths(np.array([[1, 1, 0], [1, 1, 1], [1, 0, 0]], bool), [stack])
    assert lengths.tolist() == [2, 3, 1]


def test_keras_gru_columns_are_taken_in_flaxs_r_z_n_order():
    assert flax_nnx._index("GRU", 2).tolist() == [2, 3, 0, 1, 4, 5]
    assert flax_nnx._index("LSTM", 1).tolist() == [0, 1, 2, 3]


# --- with Flax ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flax_impl() -> Implementation:
    if os.environ.get("RNN_CONFORMANCE_REQUIRE_FLAX") == "1":
        if importlib.util.find_spec("flax") is None:
            pytest.fail("RNN_CONFORMANCE_REQUIRE_FLAX=1 but flax is not installed: pip install flax==0.12.8",
                        pytrace=False)
    else:
        pytest.importorskip("flax", reason="flax not installed (pip install flax==0.12.8)")
    return Implementation(flax_nnx.FlaxNNX())


def test_verify_quick_passes_with_the_flax_deviations_recorded(flax_impl, tmp_path):
    done = subprocess.run([sys.executable, "-m", "conformance", "verify", "--impl",
                           "conformance.adapters.flax_nnx:FlaxNNX", "--cases", "quick", "-n", "2", "-q",
                           "--report", str(tmp_path / "r.json")], capture_output=True, text=True, cwd=ROOT,
                          timeout=1500, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    summary = report["summary"]
    assert summary["fail"] == summary["error"] == summary["xpass"] == 0, summary
    assert summary["pass"] >= 80, summary  # SimpleRNN, LSTM, stacks and Bidirectional run; most GRUs are declined
    gradients = [(c.get("gradient") or {}).get("status") for c in report["cases"] if c.get("status") == "pass"]
    assert gradients.count("pass") >= 80, f"{gradients.count('pass')} gradient checks agree"


@pytest.mark.parametrize("case_id", [
    "LSTM(units=3)-float64-B3T5F4",
    "LSTM(go_backwards=True, return_sequences=True, return_state=True, units=3)-float64-B3T5F4",
    ("LSTM(go_backwards=False, return_sequences=True, return_state=True, units=3, zero_output_for_mask=True)"
    "-float64-B3T5F4-mask=right_pad"),
    "LSTM(units=3)-float16-B3T5F4",
    "Bidirectional(merge_mode='concat', layer=LSTM(return_sequences=True, return_state=False, units=3))-float64-B3T5F4",
])
def test_optimized_lstm_cell_agrees_as_lstm_cell_does(case_id, flax_impl):
    fc = _case(case_id)
    result = judge(fc, Implementation(flax_nnx.FlaxNNXOptimized()), DEVIATIONS, ORACLE)
    assert result.status == "pass" and result.gradient == "pass", failure_text(result)


def test_a_gru_recurrent_candidate_bias_is_declined_not_dropped(flax_impl):
    fc = next(fc for fc in CASES.values() if fc.family == "GRU" and fc.dtype == "float64" and not fc.masked
              and fc.config["config"].get("reset_after", True) and fc.config["config"].get("use_bias", True)
              and not fc.stateful and not fc.training)
    with pytest.raises(Decline, match="no b_hn"):
        flax_impl.run(fc)
    weights = [w.copy() for w in fc.weights]
    units = fc.config["config"]["units"]
    weights[2][1, 2 * units:] = 0  # without the one bias nnx.GRUCell lacks, the same config runs
    out = flax_impl.adapter.run(fc.config, weights, fc.calls[0]["inputs"], initial_state=fc.calls[0]["initial_state"])
    assert len(out) == len(fc.outputs) and all(o.shape == e.shape for o, e in zip(out, fc.outputs))


def test_a_conversion_that_skips_the_gru_gate_permutation_fails_every_gru_case_it_runs(flax_impl, monkeypatch):
    gru = [fc for fc in CASES.values() if fc.family == "GRU" and fc.status == "ok" and not fc.masked
           and not fc.stateful and not fc.training and flax_nnx.why_not(fc.config) is None
           and not fc.config["config"].get("use_bias", True)]
    monkeypatch.setattr(flax_nnx, "gate_permutation", lambda name, src, dst: list(range({"GRU": 3, "LSTM": 4}[name])))
    passed = [fc.id for fc in gru if compare(fc.outputs, flax_impl.run(fc), tolerance_for(fc.dtype)).ok]
    assert gru and not passed, f"{len(passed)} of {len(gru)} GRU cases pass with z and r swapped: {passed[:3]}"


def test_padded_sequences_stacks_bidirectional_and_stateful_sequences_agree(flax_impl):
    ids = [("LSTM(go_backwards=False, return_sequences=True, return_state=True, units=3, zero_output_for_mask=True)"
           "-float64-B3T5F4-mask=right_pad"),
           ("Bidirectional(merge_mode='concat', layer=LSTM(return_sequences=True, return_state=True, units=3))"
           "-float64-B3T5F4-mask=right_pad"),
           "RNN(return_sequences=True, return_state=True, cell=[SimpleRNNCell(units=2), LSTMCell(units=3)])-float64-B3T5F4",
           "LSTM(go_backwards=False, return_sequences=True, return_state=True, stateful=True, units=3)-float64-B3T5F4-calls=3",
           "Bidirectional(merge_mode='concat', layer=LSTM(dtype='float32', return_sequences=True, return_state=True, units=3))-float64-B3T5F4"]
    for case_id in ids:
        result = judge(_case(case_id), flax_impl, DEVIATIONS, ORACLE)
        assert result.status == "pass" and result.gradient == "pass", failure_text(result)


def test_float64_is_computed_in_float64(flax_impl):
    import jax

    assert jax.config.jax_enable_x64, "the adapter's constructor turns jax_enable_x64 on"
    fc = _case("SimpleRNN(units=3)-float64-B3T5F4")
    (out,) = flax_impl.run(fc)
    assert out.dtype == np.float64 and np.abs(out - fc.outputs[0]).max() < 1e-12

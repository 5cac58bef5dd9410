"""The convention tables (conformance/conventions.py) and the torch.nn adapter that converts Keras
weights with them.

Keras-free. The adapter tests need torch: they are skipped without it, unless
RNN_CONFORMANCE_REQUIRE_TORCH=1, which makes a missing torch a failure (for jobs that install it).
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refimpl import activations
from conformance import conventions
from conformance.adapters import AdapterError, Implementation, load
from conformance.adapters import torch_nn
from conformance.compare import compare
from conformance.conventions import FRAMEWORKS, GATE_MEANING, LAYERS, gate_permutation, permute_gates
from conformance.deviations import load_deviations
from conformance.judge import judge
from conformance.oracle.fixture import FixtureOracle, find_set
from conformance.report import failure_text
from conformance.tolerances import tolerance_for

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "conventions.md"


# --- the tables ---------------------------------------------------------------------------------
@pytest.mark.parametrize("framework, layer", list(itertools.product(FRAMEWORKS, LAYERS)))
def test_every_framework_stores_each_keras_gate_once(framework, layer):
    entry = conventions.layer(layer, framework)
    assert sorted(entry.gates) == sorted(GATE_MEANING[layer]), f"{framework} {layer}: gates={entry.gates}"
    assert len(entry.symbols) == len(entry.gates), f"{framework} {layer}: symbols={entry.symbols}"


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_gru_variants_are_named_from_the_two_known_forms(framework):
    variants = FRAMEWORKS[framework].gru_variants
    assert variants and set(variants) <= {"reset_after", "reset_before"}, f"{framework}: {variants}"


@pytest.mark.parametrize("layer, src, dst", [(n, a, b) for n in ("LSTM", "GRU")
                                             for a, b in itertools.permutations(FRAMEWORKS, 2)])
def test_gate_permutations_invert(layer, src, dst):
    there, back = gate_permutation(layer, src, dst), gate_permutation(layer, dst, src)
    assert [there[k] for k in back] == list(range(len(there)))


@pytest.mark.parametrize("layer, src, dst", [(n, a, b) for n in ("LSTM", "GRU")
                                             for a, b in itertools.permutations(FRAMEWORKS, 2)])
def test_permute_gates_puts_each_block_where_the_destination_expects_it(layer, src, dst):
    units, src_gates = 2, conventions.layer(layer, src).gates
    labels = np.repeat(np.arange(len(src_gates)), units)[None, :]  # (1, G·units): block k holds k
    moved = permute_gates(labels, gate_permutation(layer, src, dst), units, axis=1)
    assert [src_gates[k] for k in moved[0, ::units]] == list(conventions.layer(layer, dst).gates)


@pytest.mark.parametrize("layer, dst, perm", [
    ("LSTM", "torch", [0, 1, 2, 3]), ("GRU", "torch", [1, 0, 2]), ("LSTM", "onnx", [0, 3, 1, 2]),
    ("GRU", "onnx", [0, 1, 2]), ("GRU", "cudnn", [1, 0, 2]), ("GRU", "flax", [1, 0, 2])],
    ids=lambda v: str(v))
def test_keras_to_framework_permutations_are_the_documented_ones(layer, dst, perm):
    assert gate_permutation(layer, "keras3", dst) == perm


def test_permute_gates_rejects_a_width_that_is_not_gates_times_units():
    with pytest.raises(ValueError, match=r"expected 3 gates x units=2 = 6"):
        permute_gates(np.zeros((4, 7)), [1, 0, 2], 2, axis=1)


def test_permute_gates_rejects_a_list_that_is_not_a_permutation():
    with pytest.raises(ValueError, match=r"perm=\[0, 0, 2\]"):
        permute_gates(np.zeros(6), [0, 0, 2], 2)


def test_unknown_names_are_reported_with_the_known_ones():
    with pytest.raises(ValueError, match="framework='tf'.*keras3"):
        gate_permutation("GRU", "tf", "torch")
    with pytest.raises(ValueError, match="layer='ConvLSTM2D'.*SimpleRNN"):
        conventions.layer("ConvLSTM2D", "torch")


@pytest.mark.parametrize("framework, reference", [("keras3", activations.hard_sigmoid),
                                                  ("keras2", activations.hard_sigmoid_keras2)])
def test_hard_sigmoid_slopes_match_refimpls_keras_definitions(framework, reference):
    hs = FRAMEWORKS[framework].hard_sigmoid
    x = np.linspace(-4.0, 4.0, 801)
    # The same function written two ways (clip(a*x + b) vs relu6(x + 3) / 6): rounding only, < 5 ulps at 1.
    np.testing.assert_allclose(np.clip(hs.slope * x + hs.offset, 0, 1), reference(x), rtol=0, atol=1e-15)


def test_docs_conventions_md_is_the_rendered_tables():
    assert DOC.read_text() == conventions.render_markdown(), (
        "docs/conventions.md is stale: python -m conformance.conventions > docs/conventions.md")


# --- the torch.nn adapter, without torch ----------------------------------------------------------
def test_importing_the_torch_adapter_does_not_import_torch():
    code = "import sys, conformance.adapters.torch_nn; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_a_missing_torch_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install torch==2\.13\.0"):
        torch_nn.TorchNN()
    with pytest.raises(AdapterError, match=r"pip install torch==2\.13\.0"):
        load("torch")


def _call(config: dict) -> str:
    """``GRU(units=2, reset_after=False)``: a config as the call that makes it."""
    return f"{config['class_name']}({', '.join(f'{k}={v!r}' for k, v in config['config'].items())})"


@pytest.mark.parametrize("config, reason", [
    ({"class_name": "GRU", "config": {"units": 2, "reset_after": False}}, "only the reset-after form"),
    ({"class_name": "LSTM", "config": {"units": 2, "activation": "relu"}}, "LSTM computes tanh only"),
    ({"class_name": "LSTM", "config": {"units": 2, "recurrent_activation": "hard_sigmoid"}}, "gates are sigmoid"),
    ({"class_name": "SimpleRNN", "config": {"units": 2, "activation": "linear"}}, "tanh or relu"),
    ({"class_name": "SimpleRNN", "config": {"units": 2, "peephole": True}}, "peephole=...): an option"),
    ({"class_name": "Bidirectional", "config": {"layer": {"class_name": "ConvLSTM2D", "config": {}}}},
     "bidirectional RNN, LSTM and GRU only"),
    ({"class_name": "Bidirectional", "config": {
        "layer": {"class_name": "GRU", "config": {"units": 2, "go_backwards": False}},
        "backward_layer": {"class_name": "GRU", "config": {"units": 3, "go_backwards": True}}}}, "one config both ways"),
    ({"class_name": "Bidirectional", "config": {"layer": {"class_name": "LSTM", "config": {"go_backwards": True}}}},
     "the directions swap"),
    ({"class_name": "ConvLSTM2D", "config": {}}, "no convolutional LSTM"),
    ({"class_name": "GRU", "config": {"units": 2, "dtype": "mixed_float16"}}, "dtype='mixed_float16'"),
], ids=lambda v: v if isinstance(v, str) else _call(v))
def test_what_torch_nn_cannot_express_is_declined_with_a_reason(config, reason):
    assert reason in (torch_nn.why_not(config) or "")


# --- the torch.nn adapter against the canonical fixture set ----------------------------------------
ORACLE = FixtureOracle(find_set())
CASES = ORACLE.items
DEVIATIONS = load_deviations()


def _applies(fc) -> bool:
    """The cases Implementation(TorchNN()) runs, worked out without torch: one call, inference, a
    config torch.nn can express, and Keras ran it (a mask it cannot pack it declines while running)."""
    call = fc.calls[0]
    return (fc.status == "ok" and len(fc.calls) == 1 and call != "reset_state" and not fc.training
            and torch_nn.why_not(fc.config) is None)


TORCH_CASES = [pytest.param(fc, id=fc.id) for fc in filter(_applies, CASES)]


@pytest.fixture(scope="module")
def torch_impl() -> Implementation:
    if os.environ.get("RNN_CONFORMANCE_REQUIRE_TORCH") == "1":
        if importlib.util.find_spec("torch") is None:
            pytest.fail("RNN_CONFORMANCE_REQUIRE_TORCH=1 but torch is not installed: pip install torch==2.13.0")
    else:
        pytest.importorskip("torch")
    return Implementation(torch_nn.TorchNN())


def test_torch_nn_applies_to_at_least_30_canonical_cases():
    assert len(TORCH_CASES) >= 30, f"{len(TORCH_CASES)} canonical cases fit torch.nn"


def test_the_torch_case_selection_is_the_adapter_contracts(torch_impl):
    differ = [fc.id for fc in CASES if fc.status == "ok" and (torch_impl.why_not(fc) is None) != _applies(fc)]
    assert not differ, f"{len(differ)} cases selected differently, e.g. {differ[:3]}"


@pytest.mark.parametrize("fc", TORCH_CASES)
def test_torch_nn_matches_the_recorded_keras_outputs(fc, torch_impl):
    # Judged as `rnn-conformance verify --impl torch` judges it, Keras's known deviations included;
    # only a mask may be declined while running (pack_padded_sequence takes right padding only).
    result = judge(fc, torch_impl, DEVIATIONS, ORACLE)
    if result.status == "skip":
        assert fc.masked and result.error.startswith("declined at run time: "), result.error
    else:
        assert result.status in ("pass", "xfail"), failure_text(result)


def test_right_padded_masks_and_bidirectional_layers_run_through_torch(torch_impl):
    """pack_padded_sequence for right padding, bidirectional=True for Bidirectional: both agree."""
    results = [judge(p.values[0], torch_impl, DEVIATIONS, ORACLE) for p in TORCH_CASES]
    masked = [r for r in results if "mask" in r.features and r.status == "pass"]
    bidirectional = [r for r in results if r.case.family.startswith("Bidirectional") and r.status == "pass"]
    assert len(masked) >= 20 and len(bidirectional) >= 100, (len(masked), len(bidirectional))
    assert any("mask" in r.features for r in bidirectional) and all(r.gradient == "pass" for r in bidirectional)


def test_a_conversion_that_skips_the_gru_gate_permutation_fails_every_gru_case(torch_impl, monkeypatch):
    monkeypatch.setattr(torch_nn, "gate_permutation", lambda name, src, dst: list(range(len(GATE_MEANING[name]))))
    gru = [p.values[0] for p in TORCH_CASES if p.values[0].family == "GRU" and not p.values[0].masked]
    passed = [fc.id for fc in gru if compare(fc.outputs, torch_impl.run(fc), tolerance_for(fc.dtype)).ok]
    assert gru and not passed, f"{len(passed)} of {len(gru)} GRU cases pass with z and r swapped: {passed[:3]}"

"""The harness's own helpers (no Keras needed): comparison, deviations, cases, masks, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conformance import cli
from conformance.case import MASKS, select
from conformance.cases import all_cases
from conformance.compare import compare
from conformance.data import mask_pattern
from conformance.deviations import DEVIATIONS_FILE, Deviation, glob, load_deviations
from conformance.tolerances import TOLERANCES, tolerance_for

TOL = tolerance_for("float64")


def test_compare_reports_count_then_shape_then_dtype_then_values():
    a = np.zeros((2, 3))
    assert compare([a], [a, a], TOL).message == "len(outputs)=2, but should be 1"
    assert compare([a], [np.zeros((3, 2))], TOL).message == "outputs[0].shape=(3, 2), but should be (2, 3)"
    assert compare([a], [a.astype("float32")], TOL).message == "outputs[0].dtype=float32, but should be float64"
    b = a.copy()
    b[1, 2] = 1e-9
    result = compare([a], [b], TOL)
    assert not result.ok and result.worst == (0, (1, 2))
    assert result.message.startswith("outputs[0][1, 2]=1e-09, but should be 0.0 (abs err 1e-09 > atol 1e-12")


def test_compare_accepts_errors_within_tolerance_and_flags_nan():
    a = np.linspace(0, 1, 6)
    assert compare([a], [a + 5e-13], TOL).ok
    b = a.copy()
    b[3] = np.nan
    assert not compare([a], [b], TOL).ok
    assert compare([b], [b.copy()], TOL).ok  # NaN where both are NaN agrees


def test_every_tolerance_is_named_per_dtype():
    assert set(TOLERANCES) == {"float64", "float32", "float16", "bfloat16"}
    assert TOLERANCES["float64"].atol <= 1e-12
    with pytest.raises(ValueError, match="dtype='int8'"):
        tolerance_for("int8")


def test_deviation_globs_treat_brackets_literally_and_support_negation():
    assert glob("RNN(cell=[LSTMCell(units=3)])-x", "RNN(*cell=[LSTMCell(units=3)])-*")
    assert not glob("RNN(cell=L)-x", "RNN(*cell=[L])-*")
    d = Deviation(("*implementation=1*", "!*recurrent_dropout*"), "raises", ("keras-tensorflow",), "r")
    assert d.applies("LSTM(dropout=0.3, implementation=1)", "keras-tensorflow")
    assert not d.applies("LSTM(implementation=1, recurrent_dropout=0.2)", "keras-tensorflow")
    assert not d.applies("LSTM(dropout=0.3, implementation=1)", "keras-jax")


def test_deviations_file_entries_have_reasons_and_each_matches_a_case():
    entries = load_deviations()
    raw = json.loads(DEVIATIONS_FILE.read_text())["deviations"]
    assert len(entries) == len(raw) and all(len(d.reason) > 40 for d in entries)
    ids = [c.id for c in all_cases()]
    for d in entries:
        impl = next((g for g in d.impls if not g.startswith("!") and "*" not in g), "refimpl")
        assert any(d.applies(i, d.oracle[0], impl) for i in ids), d.match


def test_deviation_impls_globs_select_implementations():
    d = Deviation(("*",), "values", ("keras-tensorflow",), "r", ("*", "!keras-jax"))
    assert d.applies("x", "keras-tensorflow", "torch") and not d.applies("x", "keras-tensorflow", "keras-jax")
    assert d.oracle_quirk
    only = Deviation(("*",), "any", ("keras-tensorflow",), "r", ("keras-jax",))
    assert only.applies("x", "keras-tensorflow", "keras-jax") and not only.applies("x", "keras-tensorflow")
    assert not only.oracle_quirk


def test_case_ids_are_unique_stable_and_read_like_the_call():
    cases = all_cases()
    assert len(cases) >= 300 and len({c.id for c in cases}) == len(cases)
    assert "GRU(units=3)-float64-B3T5F4" in {c.id for c in cases}
    assert all(c.seed == all_cases()[i].seed for i, c in enumerate(cases[:20]))


def test_select_filters_and_rejects_unknown_ids():
    cases = all_cases()
    assert {c.family for c in select(cases, layers=["LSTM"])} == {"LSTM"}
    assert {c.dtype for c in select(cases, dtypes=["float16"])} == {"float16"}
    with pytest.raises(ValueError, match="unknown case id"):
        select(cases, ids=["LSTM(units=99)"])


@pytest.mark.parametrize("name", MASKS)
def test_mask_patterns_have_the_shape_and_the_feature_they_are_named_for(name):
    m = mask_pattern(name, 3, 5)
    assert m.shape == (3, 5) and m.dtype == bool
    expect = {"all_true": m.all(), "right_pad": not m[:, -1].all() and m[:, 0].all(),
              "left_pad": not m[:, 0].all() and m[:, -1].all(), "holes": not m[0, 1] and m[:, 0].all(),
              "masked_row": not m[-1].any(), "first_masked": not m[:, 0].any()}
    assert expect[name]


def test_cli_list_prints_ids_and_bad_filters_exit_2(capsys):
    assert cli.main(["list", "--layers", "GRU", "--dtype", "float16"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("GRU(") and "-float16-" in line for line in lines)
    assert cli.main(["list", "--case", "nope"]) == 2
    assert "unknown case id" in capsys.readouterr().err


def test_deviation_globs_support_alternatives():
    assert glob("ConvLSTM2D(x)-mask=holes", "ConvLSTM*-mask={right_pad,holes}")
    assert not glob("ConvLSTM2D(x)-mask=left_pad", "ConvLSTM*-mask={right_pad,holes}")


def test_the_matrix_and_the_reference_name_the_same_merge_modes():
    # Written twice on purpose: the oracle side (the matrix) never imports refimpl.
    from conformance.case import MERGE_MODES
    from refimpl.bidirectional import MERGE_MODES as REFIMPL_MERGE_MODES

    assert MERGE_MODES == REFIMPL_MERGE_MODES


@pytest.mark.parametrize("dtype", ["float64", "mixed_float16", {"module": "keras", "class_name": "DTypePolicy",
                                                                  "config": {"name": "float16"}, "registered_name": None},
                                   None])
def test_the_harness_and_the_reference_read_dtype_policies_alike(dtype):
    # Written twice on purpose: configs.py is read by the oracle side, which never imports refimpl.
    from conformance.configs import policy_name
    from refimpl.base import policy_name as refimpl_policy_name

    assert policy_name(dtype) == refimpl_policy_name(dtype)

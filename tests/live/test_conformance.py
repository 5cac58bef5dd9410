"""The case matrix, one test per case: refimpl against live Keras, known deviations as strict xfail."""

from __future__ import annotations

import pytest

import refimpl
from conformance.cases import all_cases
from conformance.deviations import deviation_for, load_deviations, stale_deviations
from conformance.adapters import load
from conformance.judge import judge
from conformance.oracle.live import KerasOracle, Layout
from conformance.report import failure_text

CASES = all_cases()
ORACLE = KerasOracle()
DEVIATIONS = load_deviations()
REFIMPL = load("refimpl")


def _param(case):
    dev = deviation_for(case, DEVIATIONS, ORACLE.name)
    marks = [pytest.mark.xfail(reason=dev.reason, strict=True)] if dev else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_refimpl_matches_keras(case):
    result = judge(ORACLE.record(case), REFIMPL, [], ORACLE)  # deviations: the xfail mark above
    __tracebackhide__ = True
    if not result.ok:
        pytest.fail(failure_text(result), pytrace=False)


@pytest.mark.parametrize("case", [c for c in CASES if c.dtype == "float64" and not c.stateful_calls
                                  and not deviation_for(c, DEVIATIONS, ORACLE.name)], ids=lambda c: c.id)
def test_count_params_and_weight_shapes_match_keras(case):
    layer = ORACLE.build(case)
    layer.build(Layout(case).to_oracle_shape(case.input_shape))
    twin = refimpl.deserialize(ORACLE.keras.layers.serialize(layer))
    assert [w.shape for w in twin.get_weights()] == [w.shape for w in layer.get_weights()]
    assert twin.count_params() == layer.count_params()


def test_every_deviation_entry_matches_some_case():
    stale = stale_deviations(CASES, ORACLE.name)
    assert not stale, f"deviations.json entries that match no case: {[list(d.match) for d in stale]}"


def test_matrix_has_at_least_300_cases_with_unique_ids():
    assert len(CASES) >= 300
    assert len({c.id for c in CASES}) == len(CASES)

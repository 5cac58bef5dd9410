"""Differential fuzzing: hypothesis draws a config, sizes, mask, initial state and dropout, runs
it through live Keras and refimpl in float64 with the harness, and asserts agreement.

Documented Keras deviations (conformance/deviations.json) are discarded, not failed. A failure
shows the shrunk case and a one-line command that reruns it.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given

from conformance import strategies as rs
from conformance.deviations import deviation_for, load_deviations
from conformance.session import run_live
from conformance.oracle.live import KerasOracle
from conformance.report import failure_text

ORACLE = KerasOracle()
DEVIATIONS = load_deviations()


@given(rs.cases())
def test_refimpl_matches_keras_on_drawn_cases(case):
    assume(deviation_for(case, DEVIATIONS, ORACLE.name) is None)
    result = run_live(case, oracle=ORACLE)
    if not result.ok:
        pytest.fail(failure_text(result), pytrace=False)

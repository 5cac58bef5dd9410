"""Differential fuzzing: hypothesis draws a config, sizes, mask, initial state and dropout, runs
it through live Keras and refimpl in float64 with the harness, and asserts agreement.

Documented Keras deviations (conformance/deviations.json) are discarded, not failed. A failure
shows the shrunk case and a one-line command that reruns it.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given

from conformance import strategies as rs
from conformance.runners import keras_versions
from conformance.verify import deviation_for, load_deviations, run_case

ORACLE = f"keras-{keras_versions()['backend']}"
DEVIATIONS = load_deviations()


@given(rs.cases())
def test_refimpl_matches_keras_on_drawn_cases(case):
    assume(deviation_for(case, DEVIATIONS, ORACLE) is None)
    result = run_case(case, [], ORACLE)
    if not result.ok:
        pytest.fail(result.report(), pytrace=False)

"""Drift across major versions (conformance/drift.py, README "Ten years of Keras"): the Keras 0.2.0
and 1.2.2 sets' SimpleRNN/GRU/LSTM cases, ported to each later Keras, move exactly where the two
documented causes reach (Keras 0.2's masking; Keras 3's hard_sigmoid), and nowhere else."""

from __future__ import annotations

import pytest

from conformance import drift
from conformance.diff import diff_sets
from conformance.oracle.fixture import FixtureOracle, find_set

OLD = {0: FixtureOracle(find_set("keras-0.2.0_theano-1.0.5_cpu")),
       1: FixtureOracle(find_set("keras-1.2.2_theano-1.0.5_cpu"))}


def _moved(a: int, b: int) -> tuple[set[str], list]:
    old = OLD[a].items
    moves, totals = diff_sets(old, drift.ported(old, a, b))
    assert totals["common"] == sum(r.family in drift.PORTABLE for r in old) > 0
    return {m.id for m in moves}, old


@pytest.mark.parametrize("a, b", [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3)])
def test_every_moved_case_has_a_documented_cause(a, b):
    moved, old = _moved(a, b)
    lines = drift.explain(moved, old, a, b)
    assert lines[-1].strip().startswith("0 cases  no known cause"), lines


def test_keras1_to_keras2_moves_nothing():
    assert _moved(1, 2)[0] == set()


def test_keras0_to_keras1_moves_only_masked_cases_and_most_of_them():
    moved, old = _moved(0, 1)
    masked = {r.id for r in old if r.masked and r.family in drift.PORTABLE}
    assert moved <= masked and len(moved) >= len(masked) * 3 // 4


def test_keras3_moves_the_hard_sigmoid_cases():
    moved, old = _moved(1, 3)
    exposed = {r.id for r in old if "hard_sigmoid" in drift._activations(r)}
    assert moved <= exposed and len(moved) >= len(exposed) * 3 // 4


def test_drift_goes_forward_only():
    with pytest.raises(ValueError, match="later Keras"):
        drift.ported(OLD[1].items, 1, 1)

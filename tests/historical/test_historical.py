"""refimpl.legacy against the real Keras 0.2.0 and 1.2.2, live, and the committed sets against
them: every case of each version's matrix (conformance/cases_legacy.py), recorded once per run."""

from __future__ import annotations

import os

import pytest

from conformance import fixtures
from conformance.adapters import load
from conformance.cases_legacy import legacy_cases
from conformance.judge import judge
from conformance.oracle.fixture import find_set
from conformance.oracle.historical import RELEASES, HistoricalOracle

PYTHONS = {v: os.environ.get(f"RNN_CONFORMANCE_KERAS{v}_PYTHON") for v in (0, 1)}  # conftest.py says why
VERSIONS = [v for v, py in PYTHONS.items() if py]
REFIMPL = load("refimpl")
_oracles: dict[int, HistoricalOracle] = {}
_records: dict[str, object] = {}


def oracle(version: int) -> HistoricalOracle:
    if version not in _oracles:
        _oracles[version] = HistoricalOracle(version, PYTHONS[version])
    return _oracles[version]


def recorded(version: int, case):
    if case.id not in _records:
        _records[case.id] = oracle(version).record(case)
    return _records[case.id]


def committed_set(version: int):
    o = oracle(version)
    v = o.versions()
    return find_set(f"keras-{v['keras']}_theano-{v['theano']}_cpu")


PARAMS = [pytest.param(v, c, id=f"keras{RELEASES[v]}::{c.id}") for v in VERSIONS for c in legacy_cases(v)]


@pytest.mark.parametrize("version, case", PARAMS)
def test_refimpl_matches_the_historical_keras(version, case):
    from conformance.report import failure_text

    rec = recorded(version, case)
    assert rec.status == "ok", f"Keras {RELEASES[version]} raised: {rec.error}"
    result = judge(rec, REFIMPL, [], oracle(version))
    if not result.ok:
        pytest.fail(failure_text(result), pytrace=False)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_committed_set_is_what_this_keras_records(version):
    """Same ids, configs, weights, inputs and outputs, to the bit: a stale set fails here."""
    import numpy as np

    manifest, committed = fixtures.load(committed_set(version))
    assert manifest["oracle"] == oracle(version).versions(), "regenerate the set (docs/history.md)"
    cases = legacy_cases(version)
    assert [fc.id for fc in committed] == [c.id for c in cases], "the matrix changed: regenerate the set"
    for fc, case in zip(committed, cases):
        rec = recorded(version, case)
        assert fc.config == rec.config, case.id
        for got, want in zip(fc.weights + fc.outputs, rec.weights + rec.outputs):
            assert np.array_equal(got, want), case.id


def test_the_worker_reports_keras_errors_as_text():
    from conformance.oracle.remote import WorkerError

    o = oracle(VERSIONS[0])
    with pytest.raises(WorkerError, match="Keras raised"):
        o.worker.request({"op": "describe", "class_name": "NoSuchLayer", "kwargs": {}, "shape": [2, 3, 4]}, {})

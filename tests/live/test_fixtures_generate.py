"""The generator: deterministic (same versions, same bytes) and faithful to live Keras."""

from __future__ import annotations

import json

from conformance import fixtures
from conformance.cases import all_cases
from conformance.oracle.fixture import find_set
from conformance.oracle.live import KerasOracle

SUBSET = [c for c in all_cases() if c.family in ("GRU", "ConvLSTM1D", "Bidirectional(LSTM)")][::9]
ORACLE = KerasOracle()


def test_regenerating_gives_identical_bytes(tmp_path):
    a = ORACLE.generate(tmp_path / "a", SUBSET)
    b = ORACLE.generate(tmp_path / "b", SUBSET)
    files_a = json.loads((a / "manifest.json").read_text())["files"]
    files_b = json.loads((b / "manifest.json").read_text())["files"]
    assert files_a == files_b and len(files_a) >= 4


def test_the_committed_canonical_set_matches_the_installed_keras(tmp_path):
    from conformance.diff import diff_sets

    manifest, committed = fixtures.load(find_set())
    assert manifest["oracle"] == ORACLE.versions(), "regenerate the canonical set for this Keras"
    fresh_dir = ORACLE.generate(tmp_path / "fresh", SUBSET)
    _, fresh = fixtures.load(fresh_dir)
    moves, totals = diff_sets([fc for fc in committed if fc.id in {c.id for c in SUBSET}], fresh)
    assert totals["common"] == len(SUBSET) and moves == []


def test_generate_refuses_duplicate_case_ids(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="duplicate case ids"):
        ORACLE.generate(tmp_path / "dup", SUBSET[:1] * 2)

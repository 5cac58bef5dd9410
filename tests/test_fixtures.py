"""The committed fixture sets: intact, loadable without pickle, and replayed against refimpl with
no TensorFlow or Keras involved (this module must not import either)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conformance import fixtures
from conformance.adapters import load
from conformance.deviations import deviation_for, load_deviations
from conformance.judge import judge
from conformance.oracle.fixture import CANONICAL, FixtureOracle, find_set, shipped_sets

SETS = shipped_sets()
DEVIATIONS = load_deviations()
REFIMPL = load("refimpl")


def test_at_least_the_canonical_set_is_committed_and_small():
    assert CANONICAL in [s.name for s in SETS]
    total = sum(p.stat().st_size for s in SETS for p in s.rglob("*") if p.is_file())
    # 30 MB: the two 2026 Keras sets (18 + 10 MB; the float32 mirror, for runtimes, is 7 MB of it),
    # the two historical ones (1.5 MB). The wheel ships them all.
    assert total <= 30e6, f"fixtures/ holds {total / 1e6:.1f} MB, over the 30 MB budget"


def _params():
    for set_dir in SETS:
        oracle = FixtureOracle(set_dir)
        for fc in oracle.items:
            dev = deviation_for(fc, DEVIATIONS, oracle.name)
            marks = [pytest.mark.xfail(reason=dev.reason, strict=True)] if dev else []
            yield pytest.param(fc, oracle, id=f"{set_dir.name}::{fc.id}", marks=marks)


@pytest.mark.parametrize("fc, oracle", list(_params()))
def test_refimpl_matches_the_recorded_keras_outputs(fc, oracle):
    from conformance.report import failure_text

    result = judge(fc, REFIMPL, [], oracle)  # deviations are applied by the xfail mark above
    if not result.ok:
        pytest.fail(failure_text(result), pytrace=False)


# --- refimpl's defaults are Keras's, as Keras recorded them ------------------------------------------
INITIALIZER_KEYS = ("kernel_initializer", "recurrent_initializer", "bias_initializer")


def _initializer(identifier) -> tuple:
    """(name, config with its defaults filled in and Nones dropped): "orthogonal" and Keras's
    {"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": None}} are the same initializer."""
    import inspect

    from refimpl import initializers
    from refimpl.base import to_snake_case

    if isinstance(identifier, dict):
        name, config = to_snake_case(identifier["class_name"]), dict(identifier.get("config") or {})
    else:
        name, config = (identifier if identifier.islower() else to_snake_case(identifier)), {}
    name = initializers.ALIASES.get(name, name)
    params = inspect.signature(initializers.INITIALIZERS[name]).parameters
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    return name, {k: v for k, v in {**defaults, **config}.items() if v is not None}


def _comparable(config):
    """A serialized config without names and build records, initializers normalised."""
    if isinstance(config, dict):
        return {k: _initializer(v) if k in INITIALIZER_KEYS else _comparable(v) for k, v in config.items()
                if k not in ("name", "build_config")}
    if isinstance(config, list):
        return [_comparable(v) for v in config]
    return config


def test_refimpl_constructors_default_to_what_keras_recorded():
    """Each case's layer built in refimpl from the case's own arguments only (every other argument
    left at refimpl's default) has the config Keras wrote for the same arguments, every default
    spelled out: refimpl's defaults are Keras 3's, for every class the matrix builds."""
    import refimpl
    from conformance.case import instantiate
    from conformance.cases import all_cases

    matrix = {c.id: c for c in all_cases()}
    oracle = FixtureOracle(find_set())
    differ = []
    for rec in oracle.items:
        ours = refimpl.serialize(instantiate(matrix[rec.id], refimpl))
        json.dumps(ours)  # plain JSON, as Keras's: no function objects in it
        theirs = refimpl.serialize(refimpl.deserialize(rec.config))
        if _comparable(ours) != _comparable(theirs):
            differ.append(f"{rec.id}: {_first_difference(_comparable(ours), _comparable(theirs))}")
    assert not differ, f"{len(differ)} cases (refimpl's config vs Keras's), e.g.\n" + "\n".join(differ[:3])


def _first_difference(a, b, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}.{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path or 'config'}: {a!r} != {b!r}"


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'jax', 'torch'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
from conformance.cli import main
sys.exit(main(['verify', '-q']))
"""


def test_verify_with_the_fixture_oracle_runs_with_keras_and_tensorflow_unimportable():
    done = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "0 failing" in done.stdout


@pytest.mark.skipif(os.environ.get("RNN_CONFORMANCE_OFFLINE") != "1", reason="only the Keras-free tox env sets it")
def test_the_offline_env_really_has_no_tensorflow_or_keras():
    assert importlib.util.find_spec("tensorflow") is None and importlib.util.find_spec("keras") is None


@pytest.fixture
def copy_of_set(tmp_path):
    dst = tmp_path / "set"
    shutil.copytree(find_set(), dst)
    return dst


def test_an_altered_array_file_is_named(copy_of_set):
    path = copy_of_set / "arrays" / "LSTM.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(fixtures.FixtureError, match=r"arrays/LSTM.npz: sha256 .* does not match"):
        fixtures.load(copy_of_set)


def test_a_truncated_file_is_named(copy_of_set):
    path = copy_of_set / "cases.json"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(fixtures.FixtureError, match=r"cases.json: sha256 .* \(altered or truncated\)"):
        fixtures.load(copy_of_set)


def test_missing_and_unlisted_files_are_named(copy_of_set):
    (copy_of_set / "arrays" / "GRU.npz").rename(copy_of_set / "arrays" / "GRU2.npz")
    with pytest.raises(fixtures.FixtureError, match=r"arrays/GRU.npz: listed in the manifest but missing"):
        fixtures.load(copy_of_set)
    (copy_of_set / "arrays" / "GRU2.npz").rename(copy_of_set / "arrays" / "GRU.npz")
    (copy_of_set / "arrays" / "extra.npz").write_bytes(b"")
    with pytest.raises(fixtures.FixtureError, match=r"extra.npz: not listed in the manifest"):
        fixtures.load(copy_of_set)


def test_a_wrong_schema_is_refused(copy_of_set):
    manifest = json.loads((copy_of_set / "manifest.json").read_text())
    manifest["schema"] = "something/else"
    (copy_of_set / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(fixtures.FixtureError, match="schema='something/else'"):
        fixtures.load(copy_of_set)


def test_arrays_load_without_pickle_and_describe_every_call():
    manifest, cases = fixtures.load(find_set())
    assert manifest["oracle"]["keras"].startswith("3.") and manifest["device"]["kind"] == "cpu"
    stateful = next(fc for fc in cases if "calls=3" in fc.id)
    assert [c if c == "reset_state" else "call" for c in stateful.calls] == ["call", "call", "reset_state", "call"]
    assert all(fc.outputs or fc.status == "oracle-raised" for fc in cases)


def test_diff_of_a_set_with_itself_moves_nothing():
    from conformance.diff import diff_sets

    _, cases = fixtures.load(find_set())
    moves, totals = diff_sets(cases, cases)
    assert moves == [] and totals["common"] == len(cases)


def test_diff_from_keras_2_to_keras_3_shows_the_hard_sigmoid_change(capsys):
    from conformance.cli import main

    keras2 = [s.name for s in SETS if s.name.startswith("tf-keras-")]
    assert keras2, "the Keras 2 set is committed"
    assert main(["diff", keras2[0], CANONICAL]) == 0
    out = capsys.readouterr().out
    assert "recurrent_activation: 'hard_sigmoid' -> 'sigmoid'" in out  # ConvLSTM's default changed
    assert re.search(r"activation='hard_sigmoid'\s+9/9", out)  # the definition changed too


def test_diff_reads_what_a_case_exercises_off_its_id():
    from conformance.diff import id_tags

    got = id_tags("LSTM(activation='relu', go_backwards=True, units=3)-float64-B3T5F4-mask=holes-training")
    assert got == ["activation='relu'", "go_backwards=True", "mask=holes", "training"]

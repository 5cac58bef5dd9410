"""pytest plugin: the conformance suite in an adopter's own test run.

    RNN_CONFORMANCE_IMPL=mypkg.rnn_adapter:MyLSTM pytest --pyargs conformance -n auto

Installed with the package (entry point ``pytest11``); it does nothing until a test asks for the
``rnn_case`` fixture, which ``conformance/test_implementation.py`` does: one test per recorded case
of a fixture set, run through the implementation under test and compared with Keras's outputs.

Settings (option, or environment variable):

- ``--rnn-impl`` / ``RNN_CONFORMANCE_IMPL``: ``package.module:name`` or a built-in (default refimpl);
- ``--rnn-set`` / ``RNN_CONFORMANCE_SET``: fixture set name under fixtures/ or a directory (default:
  the canonical set);
- ``--rnn-cases`` / ``RNN_CONFORMANCE_CASES``: ``full`` (default) or ``quick``;
- ``--rnn-deviations`` / ``RNN_CONFORMANCE_DEVIATIONS``: the implementation's own known differences,
  a JSON object {case id or glob: reason}; each applies as a strict xfail, and entries that match
  no case are reported at the end.

The project's deviations (conformance/deviations.json: Keras quirks) apply too, as in
``rnn-conformance verify`` (conformance/verify.py): a listed case that no longer differs fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_SETTINGS = {"impl": ("RNN_CONFORMANCE_IMPL", "refimpl"), "set": ("RNN_CONFORMANCE_SET", ""),
             "cases": ("RNN_CONFORMANCE_CASES", "full"), "deviations": ("RNN_CONFORMANCE_DEVIATIONS", "")}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rnn-conformance", "conformance of an RNN implementation to Keras")
    for key, (env, default) in _SETTINGS.items():
        group.addoption(f"--rnn-{key}", default=None, help=f"(env {env}; default {default or 'none'})")


def _setting(config: pytest.Config, key: str) -> str:
    env, default = _SETTINGS[key]
    return config.getoption(f"--rnn-{key}") or os.environ.get(env) or default


class Suite:
    """What the tests share: the implementation, the fixture set, the deviations."""

    def __init__(self, config: pytest.Config):
        from conformance import fixtures
        from conformance.adapters import load
        from conformance.features import quick
        from conformance.verify import load_adopter_deviations, load_deviations

        self.impl = load(_setting(config, "impl"))
        name = _setting(config, "set")
        self.set_dir = Path(name) if name and Path(name).is_dir() else fixtures.ROOT / (name or fixtures.CANONICAL)
        self.manifest, recorded = fixtures.load(self.set_dir)
        self.oracle = fixtures.oracle_name(self.manifest)
        self.keras_version = fixtures.keras_major(self.manifest)
        mode = _setting(config, "cases")
        if mode not in ("full", "quick"):
            raise pytest.UsageError(f"rnn-cases={mode!r}, expected 'full' or 'quick'")
        self.cases = quick(recorded) if mode == "quick" else recorded
        self.deviations = load_deviations()
        path = _setting(config, "deviations")
        self.adopter = load_adopter_deviations(path) if path else []
        self.adopter_path = path

    def stale_adopter_entries(self) -> list[str]:
        return [d.match[0] for d in self.adopter
                if not any(d.applies(fc.id, self.oracle, self.impl.name) for fc in self.cases)]


_SUITE: dict = {}


def _suite(config: pytest.Config) -> Suite:
    if "suite" not in _SUITE:
        _SUITE["suite"] = Suite(config)
    return _SUITE["suite"]


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not (config.getoption("--rnn-impl") or os.environ.get("RNN_CONFORMANCE_IMPL")):
        return None
    s = _suite(config)
    o = s.manifest["oracle"]
    lines = [f"rnn-conformance: implementation {s.impl.name} {s.impl.version} (--rnn-impl {s.impl.spec})",
             f"rnn-conformance: oracle fixture set {s.set_dir.name} ({', '.join(f'{k} {v}' for k, v in o.items())}); "
             f"{len(s.cases)} cases ({_setting(config, 'cases')})"]
    if s.adopter_path:
        lines.append(f"rnn-conformance: {len(s.adopter)} deviations of the implementation from {s.adopter_path}")
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rnn_case" not in metafunc.fixturenames:
        return
    suite = _suite(metafunc.config)
    metafunc.parametrize("rnn_case", [pytest.param(fc, id=fc.id) for fc in suite.cases])


@pytest.fixture
def rnn_suite(request: pytest.FixtureRequest) -> Suite:
    return _suite(request.config)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    suite = _SUITE.get("suite")
    if suite is None or not suite.adopter:
        return
    stale = suite.stale_adopter_entries()
    if stale:
        terminalreporter.section("rnn-conformance: deviations that match no case")
        for entry in stale:
            terminalreporter.write_line(f"{suite.adopter_path}: {entry!r} matches no case of this run; remove it")

"""pytest plugin: the conformance suite in an adopter's own test run.

    RNN_CONFORMANCE_IMPL=mypkg.rnn_adapter:MyLSTM pytest --pyargs conformance -n auto

Installed with the package (entry point ``pytest11``); it does nothing until a test asks for the
``rnn_case`` fixture, which ``conformance/test_implementation.py`` does: one test per recorded case
of a fixture set, run through the implementation under test and compared with Keras's outputs.

Settings (option, or environment variable):

- ``--rnn-impl`` / ``RNN_CONFORMANCE_IMPL``: ``package.module:name`` or a built-in (default refimpl);
- ``--rnn-set`` / ``RNN_CONFORMANCE_SET``: a shipped fixture set's name or a set's directory
  (default: the canonical set);
- ``--rnn-cases`` / ``RNN_CONFORMANCE_CASES``: ``full`` (default) or ``quick``;
- ``--rnn-deviations`` / ``RNN_CONFORMANCE_DEVIATIONS``: the implementation's own known differences,
  a JSON object {case id or glob: reason}; each applies as a strict xfail, and entries that match
  no case are reported at the end.

The project's deviations (conformance/deviations.json: Keras quirks) apply too, as in
``rnn-conformance verify``: both build the same ``conformance.session.Session``. A listed case that
no longer differs fails.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conformance.session import Session

_SETTINGS = {"impl": ("RNN_CONFORMANCE_IMPL", "refimpl"), "set": ("RNN_CONFORMANCE_SET", ""),
             "cases": ("RNN_CONFORMANCE_CASES", "full"), "deviations": ("RNN_CONFORMANCE_DEVIATIONS", "")}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rnn-conformance", "conformance of an RNN implementation to Keras")
    for key, (env, default) in _SETTINGS.items():
        group.addoption(f"--rnn-{key}", default=None, help=f"(env {env}; default {default or 'none'})")


def _setting(config: pytest.Config, key: str) -> str:
    env, default = _SETTINGS[key]
    return config.getoption(f"--rnn-{key}") or os.environ.get(env) or default


_SUITE: dict = {}


def _suite(config: pytest.Config) -> Session:
    # Imported here: pytest loads this plugin in every run where the package is installed, and the
    # harness (NumPy, refimpl) is only needed once a test asks for it.
    from conformance.session import Session, UsageError

    if "suite" not in _SUITE:
        try:
            _SUITE["suite"] = Session.open(impl=_setting(config, "impl"), set_name=_setting(config, "set"),
                                           cases=_setting(config, "cases"), deviations=_setting(config, "deviations") or None)
        except UsageError as e:
            raise pytest.UsageError(f"rnn-conformance: {e}") from None
    return _SUITE["suite"]


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not (config.getoption("--rnn-impl") or os.environ.get("RNN_CONFORMANCE_IMPL")):
        return None
    return [f"rnn-conformance: {line}" for line in _suite(config).header()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "rnn_case" not in metafunc.fixturenames:
        return
    suite = _suite(metafunc.config)
    metafunc.parametrize("rnn_case", [pytest.param(rec, id=rec.id) for rec in suite.items])


@pytest.fixture
def rnn_suite(request: pytest.FixtureRequest) -> Session:
    return _suite(request.config)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    from conformance.report import stale_adopter_lines

    suite = _SUITE.get("suite")
    if suite is None or not suite.adopter:
        return
    lines = stale_adopter_lines(suite.adopter_path, suite.stale_adopter_entries())
    if lines:
        terminalreporter.section("rnn-conformance: deviations that match no case")
        for line in lines:
            terminalreporter.write_line(line)

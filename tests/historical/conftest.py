"""The historical suites: Keras 0.2.0 and 1.2.2 on Theano, each in its own venv (tox envs keras0
and keras1 build them; docs/history.md). RNN_CONFORMANCE_KERAS0_PYTHON / _KERAS1_PYTHON name the
venvs' Pythons; a version whose Python is not named is not collected, and naming neither is a
set-up error rather than a silent pass."""

from __future__ import annotations

import os

import pytest

PYTHONS = {v: os.environ.get(f"RNN_CONFORMANCE_KERAS{v}_PYTHON") for v in (0, 1)}
if not any(PYTHONS.values()):  # pragma: no cover - a set-up error, reported as one
    raise pytest.UsageError("tests/historical needs RNN_CONFORMANCE_KERAS0_PYTHON or RNN_CONFORMANCE_KERAS1_PYTHON "
                            "(the Python of a venv with Keras 0.2.0 / 1.2.2 and Theano): run `tox -e keras0,keras1`")


def pytest_report_header(config) -> list[str]:
    return [f"Keras {'0.2.0' if v == 0 else '1.2.2'} on Theano: {py}" for v, py in PYTHONS.items() if py]

"""The live suite: Keras (the oracle) must be importable; nothing here is skipped for lack of it."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
try:
    import keras  # noqa: F401
except ImportError as e:  # pragma: no cover - a set-up error, reported as one
    raise pytest.UsageError(
        f"tests/live needs Keras ({e}): pip install -e '.[keras,test]', or run the Keras-free "
        "suite with: pytest --ignore=tests/live") from None

from conformance.oracle.live import KerasOracle  # noqa: E402


def pytest_report_header(config) -> list[str]:
    return ["oracle: " + KerasOracle().describe()]

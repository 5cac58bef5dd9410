"""The built-in adapters for Keras on other backends and torch.nn, against the fixture sets.

Run by the tox env ``backends`` (keras, jax, torch, matplotlib; no TensorFlow). Elsewhere these
tests skip when a framework is missing, unless RNN_CONFORMANCE_REQUIRE_BACKENDS=1 (the tox env),
where a missing framework is an error."""

from __future__ import annotations

import importlib.util
import os

import pytest


@pytest.fixture
def require():
    """``require("jax", "keras")``: skip, or fail in the tox env, when a framework is missing."""
    return _require


def _require(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return
    if os.environ.get("RNN_CONFORMANCE_REQUIRE_BACKENDS") == "1":
        pytest.fail(f"RNN_CONFORMANCE_REQUIRE_BACKENDS=1 but {', '.join(missing)} not installed", pytrace=False)
    pytest.skip(f"{', '.join(missing)} not installed (the tox env 'backends' has them)")

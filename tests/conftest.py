"""Shared test setup: hypothesis profiles and a header naming what is under test."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, settings

import refimpl

# HYPOTHESIS_PROFILE=ci (default) | dev | thorough
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)


def pytest_report_header(config) -> list[str]:
    return [f"implementation under test: refimpl {refimpl.__version__} (numpy {np.__version__}); "
            f"hypothesis profile: {PROFILE} ({settings().max_examples} examples per property)"]

"""Shared test setup: hypothesis profiles and a header naming what is under test."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, settings

import refimpl

# HYPOTHESIS_PROFILE picks how hard the property tests and the Keras fuzzer search:
#   ci (default)  40 examples per property, derandomized: the same examples every run, so CI
#                 stays reproducible and inside its time budget
#   dev           200 examples, fresh randomness each run
#   thorough      2000 examples per property (over 30,000 drawn configs in all); minutes
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)


def pytest_report_header(config) -> list[str]:
    return [f"implementation under test: refimpl {refimpl.__version__} (numpy {np.__version__}); "
            f"hypothesis profile: {PROFILE} ({settings().max_examples} examples per property)"]

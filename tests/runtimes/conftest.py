"""The runtime adapters (ONNX Runtime, LiteRT, OpenVINO) against the canonical fixture set.

Each runs in a tox env of its own (``onnxruntime``, ``litert``, ``openvino``: TensorFlow, Keras and
the pinned runtime). Elsewhere these tests skip when the runtime is missing, unless
RNN_CONFORMANCE_REQUIRE_RUNTIME names it (the tox env), where a missing runtime is an error."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def runtime():
    """``runtime.require(name, *modules)``, ``runtime.verify(impl, tmp_path, *args)``,
    ``runtime.assert_no_failures(out, report, agree=N)``, ``runtime.ran(report)``."""
    return type("Runtime", (), {"require": staticmethod(require), "verify": staticmethod(verify),
                                "assert_no_failures": staticmethod(assert_no_failures), "ran": staticmethod(ran)})


def require(runtime: str, *modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return
    if os.environ.get("RNN_CONFORMANCE_REQUIRE_RUNTIME") == runtime:
        pytest.fail(f"RNN_CONFORMANCE_REQUIRE_RUNTIME={runtime} but {', '.join(missing)} not installed", pytrace=False)
    pytest.skip(f"{', '.join(missing)} not installed (the tox env {runtime!r} has them)")


def verify(impl: str, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """``rnn-conformance verify --impl IMPL ARGS --report``: the process and its JSON report."""
    report = tmp_path / f"{impl.replace('/', '_').replace(':', '_')}.json"
    out = subprocess.run([sys.executable, "-m", "conformance", "verify", "--impl", impl, "-q", "--report", str(report),
                          *args], capture_output=True, text=True, cwd=ROOT, timeout=3000)
    return out, (json.loads(report.read_text()) if report.exists() else {})


def ran(report: dict) -> list[dict]:
    """The cases the runtime computed: agreeing ones, and known deviations it ran (not the cases
    Keras itself raised on, which have nothing to compare)."""
    return [c for c in report["cases"] if c["status"] == "pass" or (c["status"] == "xfail" and c["max_abs"] is not None)]


def assert_no_failures(out: subprocess.CompletedProcess, report: dict, *, agree: int) -> None:
    """Exit 0, nothing failing, and at least ``agree`` cases really computed and agreeing."""
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    summary = report["summary"]
    assert summary["fail"] == summary["error"] == summary["xpass"] == 0, summary
    assert summary["pass"] >= agree, summary

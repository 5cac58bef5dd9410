"""Every built-in adapter through the CLI and the pytest plugin, against the canonical fixture set:
0 failing, each known divergence listed in conformance/deviations.json with its reason."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEEDS = {"keras-jax": ("keras", "jax"), "keras-torch": ("keras", "torch"), "torch": ("torch",), "refimpl": ()}


def _run(args: list[str], env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, timeout=1500,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("impl, cases", [("keras-jax", "quick"), ("keras-torch", "quick"), ("torch", "full"),
                                         ("refimpl", "full")])
def test_verify_passes_with_the_known_divergences_recorded(impl, cases, tmp_path, require):
    require(*NEEDS[impl])
    out = _run(["-m", "conformance", "verify", "--impl", impl, "--cases", cases, "-n", "2", "-q",
                "--report", str(tmp_path / "r.json")])
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    summary = report["summary"]
    assert summary["fail"] == summary["error"] == summary["xpass"] == 0
    # The adapter really ran cases (not only skips), and agrees outright on some: keras-jax's quick
    # set is mostly float64-with-tanh, a recorded divergence (docs/keras-backends.md).
    assert summary["pass"] + summary["xfail"] >= 30 and summary["pass"] >= 10, summary


def test_the_pytest_plugin_runs_a_builtin_adapter(tmp_path, require):
    require("torch")
    out = _run(["-m", "pytest", "--pyargs", "conformance", "-p", "no:cacheprovider", "-n", "2"],
               env={"RNN_CONFORMANCE_IMPL": "torch"}, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-4000:]
    assert "rnn-conformance: implementation under test: torch.nn" in out.stdout
    summary = out.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 30 and not re.search(r"\d+ failed", summary), summary

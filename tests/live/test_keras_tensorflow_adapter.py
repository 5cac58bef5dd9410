"""The keras-tensorflow adapter (Keras in a worker process, built from the serialized config)
against the canonical fixture set, which the same Keras wrote: a self-check of the adapter path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_keras_tensorflow_adapter_reproduces_the_canonical_set(tmp_path):
    done = subprocess.run([sys.executable, "-m", "conformance", "verify", "--impl", "keras-tensorflow",
                           "--cases", "quick", "-q", "--report", str(tmp_path / "r.json")],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    cases = json.loads((tmp_path / "r.json").read_text())["cases"]
    passed = [c for c in cases if c["status"] == "pass"]
    assert len(passed) >= 100
    # The same Keras, the same kernels, the same inputs: float64 outputs are bit-identical.
    assert all(c["max_abs"] == 0.0 for c in passed if c["dtype"] == "float64")
    skipped = {c["skip_reason"] for c in cases if c["status"] == "skip"}
    assert skipped <= {"TensorFlow's CPU convolutions reject data_format='channels_first'"}

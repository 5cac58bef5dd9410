"""The historical oracle: Keras 0.2.0 or 1.2.2 on Theano, in its own venv, through a worker.

    oracle = HistoricalOracle(0, python="/path/to/keras0-venv/bin/python")
    rec = oracle.record(case)                  # a RecordedCase, as the live oracle makes them
    oracle.generate(out_dir, legacy_cases(0))  # a fixture set, replayable offline

The venv (what tox's keras0 / keras1 envs build; docs/history.md): Python 3.11,
``"numpy<1.24" "scipy<1.11" six pyyaml theano==1.0.5``, then ``keras==0.2.0 --no-deps`` (or
1.2.2). The worker (theano_worker.py) runs Theano's Python implementations in float64; this side
draws each case's weights and inputs (conformance/data.py) and writes the set.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from conformance import fixtures
from conformance.case import Case, check_unique_ids
from conformance.data import call_plan, make_data
from conformance.machine import cpu_device
from conformance.oracle.remote import Worker, WorkerError
from conformance.recorded import RESET, RecordedCase

RELEASES = {0: "0.2.0", 1: "1.2.2"}
_SCRIPT = str(Path(__file__).with_name("theano_worker.py"))


class HistoricalOracle:
    kind = "historical"

    def __init__(self, version: int, python: str):
        if version not in RELEASES:
            raise ValueError(f"version={version!r}, expected one of {sorted(RELEASES)} (Keras 0.2.0, 1.2.2)")
        self.version, self.python = version, python
        self._home = tempfile.TemporaryDirectory(prefix="rnn-conformance-keras1-")
        (Path(self._home.name) / ".keras").mkdir()
        (Path(self._home.name) / ".keras" / "keras.json").write_text(json.dumps(
            {"floatx": "float64", "epsilon": 1e-07, "backend": "theano", "image_dim_ordering": "th"}))
        env = {"RNN_CONFORMANCE_HISTORICAL": str(version), "HOME": self._home.name, "KERAS_BACKEND": "theano",
               "THEANO_FLAGS": f"cxx=,blas.ldflags=,floatX=float64,base_compiledir={self._home.name}/theano"}
        self._versions: dict | None = None
        self.worker = Worker(f"Keras {RELEASES[version]}", env, python=python, script=_SCRIPT)

    def versions(self) -> dict:
        if self._versions is None:
            self._versions = self.worker.request({"op": "versions"}, {})["versions"]
        return self._versions

    @property
    def major(self) -> int:
        return self.version

    @property
    def name(self) -> str:
        """The name deviations.json uses (``fixtures.oracle_name``)."""
        return "keras-theano"

    @property
    def set_option(self) -> str:
        """The committed set a rerun line replays (``verify --set``)."""
        v = self.versions()
        return f"keras-{v['keras']}_theano-{v['theano']}_cpu"

    def record(self, case: Case) -> RecordedCase:
        """The case run through that Keras; a Keras exception while running is recorded as
        oracle-raised (one while building the layer is raised: the matrix is wrong)."""
        name, kwargs = case.layer_name, case.kwargs()
        shape = [case.batch, case.steps, case.features]
        described = self.worker.request({"op": "describe", "class_name": name, "kwargs": kwargs, "shape": shape}, {})
        data = make_data(case, [tuple(s) for s in described["weight_shapes"]], [], [])
        if data.mask is not None:  # what Masking(0.) hands on: masked steps all zero
            data.inputs[~data.mask] = 0.0
        calls = call_plan(case, data)
        rec = RecordedCase(case.id, case.family, case.dtype, described["config"], calls, data.weights, False, None,
                           [], "ok")
        try:
            wire_calls = [c if c == RESET else {k: v for k, v in c.items() if v is not None} for c in calls]
            reply = self.worker.request({"op": "run", "class_name": name, "kwargs": kwargs, "shape": shape},
                                        {"weights": data.weights, "calls": wire_calls})
            rec.outputs = [np.asarray(o) for o in reply["outputs"]]
        except WorkerError as e:
            rec.status, rec.error = "oracle-raised", str(e).splitlines()[0][:300]
        return rec

    def generate(self, out_dir: Path, cases: list[Case], progress: Callable[[int, int], None] | None = None) -> Path:
        """Run every case through this Keras and write a fixture set to ``out_dir``."""
        check_unique_ids(c.id for c in cases)
        arrays: dict = {}
        entries = []
        for n, case in enumerate(cases):
            entries.append(fixtures.entry(self.record(case), f"c{n:04d}", arrays))
            if progress:
                progress(n + 1, len(cases))
        return fixtures.write(out_dir, arrays, entries, {
            "generator": f"rnn-conformance generate --historical {RELEASES[self.version]}",
            "oracle": self.versions(), "device": cpu_device(), "not_generated": {},
            "seed": "numpy.random.default_rng(zlib.crc32(case id)) per case (conformance/data.py)"})

    def describe(self) -> str:
        return f"Keras {RELEASES[self.version]} on Theano ({self.python})"

    def close(self) -> None:
        self.worker.close()
        self._home.cleanup()

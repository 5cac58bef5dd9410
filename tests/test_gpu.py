"""cuDNN paths: the eligibility rules (conformance/gpu/cudnn.py), dispatch evidence
(conformance/gpu/dispatch.py) and the GPU runner (conformance/gpu/run.py).

Tests marked ``gpu`` need a CUDA GPU and skip elsewhere; they run on the device machine
(docs/gpu.md). The rest run on any machine: the rules need nothing, and the dispatch and runner
tests need Keras with torch or JAX (CPU) and skip, saying so, without them."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from conformance import fixtures
from conformance.adapters import Implementation
from conformance.compare import compare
from conformance.data import mask_pattern
from conformance.deviations import Deviation
from conformance.gpu import cudnn, dispatch
from conformance.oracle.fixture import find_set
from conformance.tolerances import tolerance_for

MANIFEST, RECORDED = fixtures.load(find_set())
BY_ID = {fc.id: fc for fc in RECORDED}
KERAS_BACKENDS = ("tensorflow", "torch", "jax")
NO_GPU = "no CUDA GPU on this machine (GPU checks run on the device machine: see docs/gpu.md)"


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _need(*modules: str) -> None:
    if not _has(*modules):
        pytest.skip(f"needs {' and '.join(modules)} installed here")


def _cuda() -> bool:
    if _has("torch"):
        import torch

        return torch.cuda.is_available()
    if _has("jax"):
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    return False


gpu = pytest.mark.gpu
needs_gpu = pytest.mark.skipif(not _cuda(), reason=NO_GPU)


def layer(name: str, **config) -> dict:
    return {"class_name": name, "config": config}


def mask(name: str) -> np.ndarray:
    return mask_pattern(name, 3, 5)  # (B, T) bool


# --- the rules ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", cudnn.BACKENDS)
@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_tanh_sigmoid_layers_without_a_mask_take_cudnn(name, backend):
    expected = "fused-loop" if (name, backend) == ("GRU", "jax") else "cudnn"
    assert cudnn.expected_path(layer(name, units=3), backend=backend) == expected


def test_jax_never_runs_a_gru_on_cudnn():
    reason = cudnn.eligible(layer("GRU", units=3), backend="jax")
    assert "JAX has no cuDNN GRU" in reason and "keras/src/backend/jax/rnn.py:gru" in reason


INELIGIBLE = [
    # (layer, backends, mask, what the reason says, the path that runs instead per backend)
    (layer("LSTM", recurrent_dropout=0.2), KERAS_BACKENDS, None, "recurrent_dropout=0", "generic"),
    (layer("GRU", recurrent_dropout=0.2), ("tensorflow", "torch"), None, "recurrent_dropout=0", "generic"),
    (layer("LSTM", use_cudnn=False), KERAS_BACKENDS, None, "use_cudnn", "generic"),
    (layer("GRU", reset_after=False), ("tensorflow", "torch"), None, "reset_after=True", "generic"),
    (layer("GRU", reset_after=False), ("jax",), None, "reset_after=True", "generic"),
    (layer("LSTM", activation="relu"), ("tensorflow", "jax"), None, "activation='tanh'", "generic"),
    (layer("LSTM", activation="relu"), ("torch",), None, "activation='tanh'", "fused-loop"),
    (layer("GRU", recurrent_activation="hard_sigmoid"), ("torch",), None, "recurrent_activation", "fused-loop"),
    (layer("LSTM", use_bias=False), ("torch",), None, "use_bias=True", "fused-loop"),
    (layer("LSTM", use_bias=False), ("tensorflow", "jax"), None, "use_bias=True", "generic"),
    (layer("LSTM", unroll=True), ("tensorflow", "jax"), None, "unroll=False", "generic"),
    (layer("LSTM"), ("tensorflow",), mask("left_pad"), "right-padded", "generic"),
    (layer("LSTM"), ("tensorflow",), mask("holes"), "right-padded", "generic"),
    (layer("GRU"), ("tensorflow",), mask("masked_row"), "no fully masked row", "generic"),
    (layer("LSTM"), ("torch", "jax"), mask("right_pad"), "no mask", "generic"),
    (layer("LSTM"), ("torch", "jax"), mask("all_true"), "no mask", "generic"),
    (layer("LSTM", dtype="float16"), ("jax",), None, "float32 or float64", "generic"),
    (layer("SimpleRNN"), KERAS_BACKENDS, None, "only LSTM and GRU", "generic"),
    (layer("ConvLSTM2D", filters=2, kernel_size=3), KERAS_BACKENDS, None, "only LSTM and GRU", "generic"),
    (layer("GRU", reset_after=False), ("torch.nn",), None, "reset-after form", "generic"),
    (layer("LSTM"), ("torch.nn",), mask("right_pad"), "no mask", "generic"),
]


def _call_id(config: dict, m) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in config["config"].items())
    return f"{config['class_name']}({args})" + ("" if m is None else "-masked")


@pytest.mark.parametrize("config, backend, m, says, path", [
    pytest.param(c, b, m, says, path, id=f"{_call_id(c, m)}-{b}") for c, bs, m, says, path in INELIGIBLE for b in bs])
def test_ineligible_configs_say_which_rule_and_where_it_falls_back(config, backend, m, says, path):
    reason = cudnn.eligible(config, backend=backend, mask=m)
    assert isinstance(reason, str) and says in reason, f"eligible(...)={reason!r}, but should mention {says!r}"
    assert cudnn.expected_path(config, backend=backend, mask=m) == path


def test_tensorflow_takes_cudnn_with_a_right_padded_mask():
    assert cudnn.eligible(layer("LSTM"), backend="tensorflow", mask=mask("right_pad")) is True


@pytest.mark.parametrize("name, expected", [("right_pad", True), ("all_true", True), ("left_pad", False),
                                            ("holes", False), ("masked_row", False), ("first_masked", False)])
def test_right_padded_means_trues_then_falses_and_no_empty_row(name, expected):
    assert cudnn.right_padded(mask(name)) is expected


def test_bidirectional_takes_the_fused_call_on_torch_and_jax_lstm():
    case = next(fc for fc in RECORDED if fc.family == "Bidirectional(LSTM)" and fc.dtype == "float32")
    for backend in ("torch", "jax", "tensorflow"):
        assert cudnn.eligible(case.config, backend=backend) is True
    gru = next(fc for fc in RECORDED if fc.family == "Bidirectional(GRU)" and fc.dtype == "float32")
    assert cudnn.expected_path(gru.config, backend="jax") == "fused-loop"


def test_a_masked_bidirectional_is_decided_per_direction():
    case = next(fc for fc in RECORDED if fc.family == "Bidirectional(LSTM)" and "mask=right_pad" in fc.id)
    assert cudnn.eligible(case.config, backend="tensorflow", mask=case.calls[0]["mask"]) is True
    assert "no mask" in cudnn.eligible(case.config, backend="torch", mask=case.calls[0]["mask"])


def test_eligible_rejects_an_unknown_backend_and_a_non_config():
    with pytest.raises(ValueError, match=r"backend='cuda', expected one of"):
        cudnn.eligible(layer("LSTM"), backend="cuda")
    with pytest.raises(TypeError, match="expected keras.layers.serialize"):
        cudnn.eligible("LSTM", backend="torch")


def _sources() -> list[str]:
    rules = [r for rules in cudnn.BACKEND_RULES.values() for r in rules] + list(cudnn.LAYER_RULES)
    out = set()
    for source in {r.source for r in rules}:
        path, _, fn = source.partition(":")
        m = re.search(r"\{([^}]*)\}", path)
        for variant in (m.group(1).split(",") if m else [""]):
            out.add(f"{path[:m.start()] + variant + path[m.end():] if m else path}:{fn}")
    return sorted(out)


@pytest.mark.parametrize("source", _sources())
def test_every_rule_cites_a_function_that_exists(source):
    path, fn = source.split(":")
    if path.startswith("conformance/"):
        file = Path(__file__).resolve().parents[1] / path
    else:
        top = path.split("/")[0]
        spec = importlib.util.find_spec(top)
        if spec is None:
            pytest.skip(f"{top} is not installed here")
        file = Path(spec.submodule_search_locations[0]).parent / path
    assert file.is_file(), f"{source}: no file {file}"
    name = fn.split(".")[-1]
    assert re.search(rf"^\s*(def|class) {re.escape(name)}\b", file.read_text(), re.M), f"{source}: no {name} in {file}"


@pytest.mark.parametrize("entry", cudnn.KNOWN_DIFFERENCES, ids=lambda e: e["id"])
def test_every_known_difference_is_a_complete_record_that_matches_cases(entry):
    assert set(entry) == {"id", "backends", "match", "effect", "source", "status"}
    assert set(entry["backends"]) <= set(cudnn.BACKENDS)
    rule = Deviation(tuple(entry["match"]), "values", ("*",), entry["effect"])
    ids = [fc.id for fc in RECORDED if rule.applies(fc.id, "any")]
    if entry["id"] != "fused-bidirectional-ignores-go-backwards":  # no such case in the matrix yet
        assert ids, f"{entry['id']}: match {entry['match']} selects no case of the canonical set"


KERAS_CUDNN_OK = """
import importlib, itertools, json, sys
import keras
from keras.src import activations
rnn = importlib.import_module(f"keras.src.backend.{sys.argv[1]}.rnn")
rnn._is_gpu_available = rnn._is_cuda_cudnn_available = lambda: True  # cudnn_ok asks for a GPU last
grid = itertools.product(("tanh", "relu", "sigmoid"), ("sigmoid", "hard_sigmoid", "tanh"), (False, True), (True, False))
print(json.dumps([[a, r, u, b, bool(rnn.cudnn_ok(activations.get(a), activations.get(r), u, b))] for a, r, u, b in grid]))
"""


@pytest.mark.parametrize("backend", KERAS_BACKENDS)
def test_lstm_rules_agree_with_keras_own_cudnn_ok(backend):
    _need("keras", backend)
    out = subprocess.run([sys.executable, "-c", KERAS_CUDNN_OK, backend], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    for activation, recurrent, unroll, use_bias, keras_says in json.loads(out.stdout.strip().splitlines()[-1]):
        config = layer("LSTM", activation=activation, recurrent_activation=recurrent, unroll=unroll, use_bias=use_bias)
        ours = cudnn.eligible(config, backend=backend) is True
        assert ours == keras_says, f"{backend} cudnn_ok={keras_says}, but eligible says {ours} for {config}"


# --- dispatch evidence, on the CPU ----------------------------------------------------------------
def test_classify_names_one_path_or_says_mixed():
    one = [{"fn": "install"}, {"fn": "b.lstm", "raised": "NotImplementedError"}, {"fn": "b.rnn", "path": "generic"}]
    assert dispatch.classify(one) == {"path": "generic", "calls": 1,
                                      "evidence": "b.lstm raised NotImplementedError; b.rnn -> generic"}
    two = [{"fn": "a", "path": "cudnn", "ops": ["aten::_cudnn_rnn"]}, {"fn": "b", "path": "generic"}]
    assert dispatch.classify(two)["path"] == "mixed"
    assert dispatch.classify([])["path"] == "none"


def test_torch_off_a_gpu_is_never_reported_as_cudnn():
    _need("torch")
    import torch

    lstm = torch.nn.LSTM(4, 3, batch_first=True)
    _, evidence = dispatch.profile_torch(lstm, torch.zeros(2, 5, 4))
    assert "aten::lstm" in evidence["ops"] and "aten::_cudnn_rnn" not in evidence["ops"]
    assert evidence["path"] == "fused-loop"


@pytest.mark.parametrize("mode, value", [("off", "ieee"), ("on", "tf32")])
def test_set_torch_tf32_reports_the_flags_it_set(mode, value):
    _need("torch")
    import torch

    if not hasattr(torch.backends.cudnn, "rnn"):
        pytest.skip(f"torch {torch.__version__} has the legacy allow_tf32 flags only")
    before = dispatch.torch_tf32_flags()
    try:
        flags = dispatch.set_torch_tf32(mode)
        assert flags["cudnn.rnn.fp32_precision"] == flags["cuda.matmul.fp32_precision"] == value
    finally:  # torch's defaults back, so later code may still read the legacy allow_tf32 flags
        for key, value in before.items():
            scope = torch.backends
            for part in key.split(".")[:-1]:
                scope = getattr(scope, part)
            scope.fp32_precision = value
        assert dispatch.torch_tf32_flags() == before


def _worker(tmp_path_factory, backend: str, **kwargs):
    _need("keras", backend)
    adapter, log = dispatch.traced_keras(backend, workdir=tmp_path_factory.mktemp(backend), device="cpu", **kwargs)
    adapter.versions()
    return Implementation(adapter, backend), log


@pytest.fixture(scope="module")
def torch_worker(tmp_path_factory):
    impl, log = _worker(tmp_path_factory, "torch")
    yield impl, log
    impl.adapter.close()


@pytest.fixture(scope="module")
def jax_worker(tmp_path_factory):
    impl, log = _worker(tmp_path_factory, "jax")
    yield impl, log
    impl.adapter.close()


@pytest.fixture(scope="module")
def jax_simulated(tmp_path_factory):
    impl, log = _worker(tmp_path_factory, "jax", simulate=True)
    yield impl, log
    impl.adapter.close()


def _run(worker, case_id: str) -> tuple[list, dict]:
    impl, log = worker
    log.take()
    outputs = impl.run(BY_ID[case_id])
    return outputs, dispatch.classify(log.take())


@pytest.mark.parametrize("case_id, path", [
    ("LSTM(units=3)-float32-B3T5F4", "fused-loop"),
    ("GRU(units=3)-float32-B3T5F4", "fused-loop"),
    ("LSTM(return_sequences=True, return_state=True, units=4)-float32-B3T5F4-mask=holes", "generic"),
])
def test_keras_torch_worker_records_what_ran_off_a_gpu(torch_worker, case_id, path):
    _, found = _run(torch_worker, case_id)
    assert found["path"] == path, found


def test_the_worker_reports_its_precision_flags(tmp_path):
    _need("keras", "torch")
    adapter, log = dispatch.traced_keras("torch", workdir=tmp_path, device="cpu", tf32="off")
    try:
        adapter.versions()
        install = next(r for r in log.take() if r["fn"] == "install")
    finally:
        adapter.close()
    assert install["backend"] == "torch" and "tf32" in install


@pytest.mark.parametrize("case_id, path", [
    ("LSTM(units=3)-float32-B3T5F4", "generic"),  # no GPU: cudnn_ok is False
    ("GRU(units=3)-float32-B3T5F4", "fused-loop"),  # jax/rnn.py gru: a lax.scan, on any device
])
def test_keras_jax_worker_records_what_ran_off_a_gpu(jax_worker, case_id, path):
    _, found = _run(jax_worker, case_id)
    assert found["path"] == path, found


GO_BACKWARDS = "LSTM(go_backwards=True, return_sequences=True, return_state=False, units=3)-float64-B3T5F4"
GO_FORWARDS = "LSTM(go_backwards=False, return_sequences=True, return_state=False, units=3)-float64-B3T5F4"


def test_keras_jax_cudnn_wrapper_returns_go_backwards_sequences_in_input_order(jax_simulated):
    """Keras's cuDNN LSTM code on JAX with jax.experimental.rnn.lstm_ref standing in for the kernel:
    it flips the sequence back, so output[:, 0] belongs to the first input step (the known
    difference 'jax-lstm-go-backwards-sequence-in-input-order'); the CPU fixtures, like every
    other path, keep processing order."""
    expected = BY_ID[GO_BACKWARDS].outputs[0]  # (B, T, units), processing order
    outputs, found = _run(jax_simulated, GO_BACKWARDS)
    assert found["path"] == "simulated-cudnn", found
    assert np.abs(outputs[0] - expected).max() > 0.01
    assert compare([expected], [outputs[0][:, ::-1]], tolerance_for("float64")).ok


def test_keras_jax_cudnn_wrapper_agrees_going_forwards(jax_simulated):
    outputs, found = _run(jax_simulated, GO_FORWARDS)
    assert found["path"] == "simulated-cudnn"
    assert compare(BY_ID[GO_FORWARDS].outputs[:1], outputs[:1], tolerance_for("float64")).ok


# --- the runner, as a CPU dry run -----------------------------------------------------------------
def test_runner_dry_run_writes_a_report_and_loadable_sets_with_dispatch(tmp_path):
    _need("keras", "torch")
    from conformance.gpu import run as gpu_run

    out = tmp_path / "out"
    assert gpu_run.main(["--device", "cpu", "--impls", "keras-torch", "--limit", "2", "--tf32", "off",
                         "--no-sweep", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert {r["path"] for r in report["rows"]} <= {"fused-loop", "generic"}  # never cudnn off a GPU
    with tarfile.open(out / "gpu-sets.tar.gz") as tar:
        tar.extractall(tmp_path / "sets", filter="data")
    (set_dir,) = (tmp_path / "sets").iterdir()
    manifest, cases = fixtures.load(set_dir)
    assert manifest["device"]["kind"] == "cpu" and manifest["device"]["tf32"] == "off"
    assert fixtures.oracle_name(manifest) == "keras-torch" and len(cases) == 2
    entries = json.loads((set_dir / "cases.json").read_text())
    assert all(e["dispatch"]["path"] in ("fused-loop", "generic") for e in entries)


def test_runner_refuses_a_gpu_run_without_a_gpu(capsys):
    _need("torch")
    if _cuda():
        pytest.skip("this machine has a GPU")
    from conformance.gpu import run as gpu_run

    assert gpu_run.main(["--out", "/nonexistent/never-written"]) == 2
    assert "no CUDA GPU on this machine" in capsys.readouterr().err


def test_runner_selects_only_eligible_cases_by_default():
    from conformance.gpu import run as gpu_run

    for impl, backend in gpu_run.IMPLS.items():
        picked = gpu_run.select(RECORDED, impl, scope="eligible", dtypes=("float32",))
        assert picked and all(cudnn.eligible(fc.config, backend=backend, mask=gpu_run._mask(fc)) is True
                              for fc in picked)


# --- on a GPU -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gpu_workers(tmp_path_factory):
    workers = {}
    for backend in ("torch", "jax"):
        if _has("keras", backend):
            adapter, log = dispatch.traced_keras(backend, workdir=tmp_path_factory.mktemp(backend), tf32="off")
            workers[backend] = (Implementation(adapter, backend), log)
    yield workers
    for impl, _ in workers.values():
        impl.adapter.close()


def _gpu_worker(gpu_workers, backend):
    if backend not in gpu_workers:
        pytest.skip(f"needs keras and {backend} on this machine")
    return gpu_workers[backend]


@gpu
@needs_gpu
@pytest.mark.parametrize("backend, case_id", [
    ("torch", "LSTM(units=3)-float32-B3T5F4"), ("torch", "GRU(units=3)-float32-B3T5F4"),
    ("jax", "LSTM(units=3)-float32-B3T5F4"), ("torch", "LSTM(units=3)-float64-B3T5F4"),
])
def test_eligible_keras_layers_run_the_cudnn_kernel(gpu_workers, backend, case_id):
    _, found = _run(_gpu_worker(gpu_workers, backend), case_id)
    assert found["path"] == "cudnn", found


@gpu
@needs_gpu
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_dispatch_on_a_gpu_is_what_the_rules_predict(gpu_workers, backend):
    impl, log = _gpu_worker(gpu_workers, backend)
    picked = [fc for fc in RECORDED if fc.family in ("LSTM", "GRU") and fc.dtype == "float32"]
    wrong = []
    for fc in picked:
        log.take()
        impl.run(fc)
        found = dispatch.classify(log.take())
        mask_ = next((c["mask"] for c in fc.calls if c != "reset_state" and c["mask"] is not None), None)
        expected = cudnn.expected_path(fc.config, backend=backend, mask=mask_)
        if found["path"] != expected:
            wrong.append(f"{fc.id}: expected {expected}, ran {found['path']} ({found['evidence']})")
    assert not wrong, "\n".join(wrong)


@gpu
@needs_gpu
def test_torch_nn_lstm_runs_the_cudnn_kernel():
    _need("torch")
    from conformance.gpu.run import TorchNNOnDevice

    adapter = TorchNNOnDevice("cuda")
    fc = BY_ID["LSTM(units=3)-float32-B3T5F4"]
    Implementation(adapter, "torch.nn").run(fc)
    assert adapter.last_dispatch["path"] == "cudnn", adapter.last_dispatch


@gpu
@needs_gpu
@pytest.mark.xfail(strict=True, reason="known difference jax-lstm-go-backwards-sequence-in-input-order "
                                       "(keras/src/backend/jax/rnn.py lstm flips the cuDNN output back)")
def test_keras_jax_cudnn_lstm_keeps_processing_order_going_backwards(gpu_workers):
    outputs, found = _run(_gpu_worker(gpu_workers, "jax"), GO_BACKWARDS)
    assert found["path"] == "cudnn", found
    c = compare(BY_ID[GO_BACKWARDS].outputs[:1], outputs[:1], tolerance_for("float64"))
    assert c.ok, c.message


@gpu
@needs_gpu
def test_with_tf32_off_cudnn_float32_agrees_with_the_cpu_fixtures(gpu_workers):
    impl, log = _gpu_worker(gpu_workers, "torch")
    for fc in [fc for fc in RECORDED if fc.family in ("LSTM", "GRU") and fc.dtype == "float32"
               and cudnn.eligible(fc.config, backend="torch", mask=fc.calls[0]["mask"]) is True]:
        c = compare(fc.outputs, impl.run(fc), tolerance_for("float32"))
        assert c.ok, f"{fc.id}: {c.message}"


@gpu
@needs_gpu
def test_the_runner_writes_gpu_sets_with_full_device_metadata(tmp_path):
    _need("keras", "torch")
    from conformance.gpu import run as gpu_run

    out = tmp_path / "out"
    assert gpu_run.main(["--impls", "keras-torch", "--limit", "3", "--no-sweep", "--out", str(out)]) == 0
    with tarfile.open(out / "gpu-sets.tar.gz") as tar:
        tar.extractall(tmp_path / "sets", filter="data")
    for set_dir in (tmp_path / "sets").iterdir():
        manifest, _ = fixtures.load(set_dir)
        device = manifest["device"]
        assert device["kind"] == "gpu" and all(device.get(k) for k in ("gpu", "driver", "cuda", "cudnn", "tf32"))


@pytest.mark.parametrize("mode, backend", list(itertools.product(["off", "on"], ["torch", "jax"])))
def test_worker_env_sets_the_precision_switches(tmp_path, mode, backend):
    env = dispatch.worker_env(tmp_path / "log.jsonl", backend=backend, tf32=mode)
    assert env[dispatch.TF32_ENV] == mode and env["RNN_CONFORMANCE_WORKER_HOOK"] == "conformance.gpu.dispatch"
    if backend == "jax":
        assert env["JAX_DEFAULT_MATMUL_PRECISION"] == {"off": "highest", "on": "tensorfloat32"}[mode]

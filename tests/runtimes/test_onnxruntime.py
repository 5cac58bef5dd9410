"""``--impl onnxruntime``: Keras's ONNX export run by ONNX Runtime, on the float32/float16 quick matrix."""

from __future__ import annotations

import pytest

NEEDS = ("onnxruntime", "onnx", "tf2onnx", "tensorflow", "keras")
QUICK = ("--cases", "quick", "--dtype", "float32", "float16", "-n", "2")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, runtime):
    runtime.require("onnxruntime", *NEEDS)
    return runtime.verify("onnxruntime", tmp_path_factory.mktemp("ort"), *QUICK)


def test_onnxruntime_agrees_on_the_quick_matrix_with_every_divergence_recorded(quick_run, runtime):
    runtime.assert_no_failures(*quick_run, agree=100)


def test_each_case_records_whether_the_onnx_graph_fused_the_rnn(quick_run, runtime):
    _, report = quick_run
    ran = runtime.ran(report)
    kinds = {c["run_info"]["onnx"] for c in ran}
    assert all(c["run_info"] and c["run_info"]["onnx ops"] for c in ran)
    # tf2onnx rewrites Keras 3's LSTM loop into ONNX's LSTM op where it can, and keeps a Loop elsewhere.
    assert {"LSTM (fused)", "Loop"} <= kinds, kinds


def test_an_explicit_mask_input_agrees_where_a_masking_layer_loses_the_mask(quick_run, tmp_path, runtime):
    _, report = quick_run
    lost = [c["id"] for c in report["cases"] if c["status"] == "xfail" and "Masking layer's mask is dropped"
            in (c["deviation"] or "")]
    assert lost, "the Masking-with-initial_state deviation matched no case"
    out, again = runtime.verify("onnxruntime-mask-input", tmp_path, *[a for i in lost for a in ("--case", i)])
    runtime.assert_no_failures(out, again, agree=len(lost))


def test_fused_lstm_gates_swapped_in_the_onnx_graph_fail_with_the_gate_order_named(tmp_path, runtime):
    runtime.require("onnxruntime", *NEEDS)
    out, report = runtime.verify("tests/adapters/broken_runtimes.py:SwappedGatesOnnx", tmp_path, *QUICK, "--layers", "LSTM")
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    failed = [c for c in report["cases"] if c["status"] == "fail"]
    fused = [c for c in report["cases"] if (c["run_info"] or {}).get("onnx") == "LSTM (fused)"]
    assert failed and {c["id"] for c in failed} <= {c["id"] for c in fused}
    # With a Masking layer and initial_state the mask is lost too (docs/runtimes.md): two
    # differences at once, which no single mistake explains; every other failure names the swap.
    single = [c for c in failed if "initial_state" not in c["id"]]
    assert single and all(any("(i, c, f, o)" in line for line in c["diagnosis"]) for c in single), \
        [c["diagnosis"] for c in single]


def test_float64_masked_cases_agree_with_the_masking_layer_in_the_input_dtype(tmp_path, runtime):
    # A Masking layer left at its default policy (float32) rounds float64 inputs before the RNN sees
    # them: 1e-8 errors on every masked float64 case. The adapter builds it in the input's dtype.
    runtime.require("onnxruntime", *NEEDS)
    out, report = runtime.verify("onnxruntime", tmp_path, "--cases", "quick", "--dtype", "float64", "--layers", "SimpleRNN")
    runtime.assert_no_failures(out, report, agree=20)
    masked = [c for c in runtime.ran(report) if "mask=" in c["id"] and c["status"] == "pass"]
    assert len(masked) >= 3, [c["id"] for c in report["cases"] if "mask=" in c["id"]]


STREAM = ("GRU(go_backwards=False, return_sequences=True, return_state=True, stateful=True, units=3)"
          "-float32-B3T5F4-mask=right_pad-calls=3")


def test_a_masked_stateful_stream_meets_the_masking_bug_and_agrees_with_a_mask_input(tmp_path, runtime):
    # The exported stream carries its states as initial_state inputs, so the Masking layer's mask is
    # dropped on every call (the full matrix found it; the quick matrix has no masked stream).
    runtime.require("onnxruntime", *NEEDS)
    out, report = runtime.verify("onnxruntime", tmp_path, "--case", STREAM)
    assert out.returncode == 0 and report["summary"]["xfail"] == 1, report.get("summary")
    assert "Masking layer's mask is dropped" in report["cases"][0]["deviation"]
    out, report = runtime.verify("onnxruntime-mask-input", tmp_path, "--case", STREAM)
    runtime.assert_no_failures(out, report, agree=1)

"""``--impl openvino``: Keras's ONNX export read and run by OpenVINO's CPU plugin."""

from __future__ import annotations

NEEDS = ("openvino", "onnx", "tf2onnx", "tensorflow", "keras")


def test_openvino_agrees_on_the_quick_matrix_with_every_divergence_recorded(tmp_path, runtime):
    runtime.require("openvino", *NEEDS)
    out, report = runtime.verify("openvino", tmp_path, "--cases", "quick", "--dtype", "float32", "float16", "-n", "2")
    # Few agree: OpenVINO's ONNX frontend rejects the Loop tf2onnx writes for Keras 3's RNN loop
    # (docs/runtimes.md); the fused LSTM and unrolled cases run.
    runtime.assert_no_failures(out, report, agree=15)
    ran = runtime.ran(report)
    # the precision the plugin was asked for is the case's own: f32 for float32 cases
    assert {c["run_info"]["precision"] for c in ran if c["dtype"] == "float32"} == {"f32"}


def test_float64_cases_are_declined_not_run_in_f32(tmp_path, runtime):
    # The CPU plugin's precision hint takes bf16, f16 and f32; given a float64 model it runs it in
    # f32 without a word, which misses float64 tolerance by ~1e-7 (an unrolled SimpleRNN shows it).
    runtime.require("openvino", *NEEDS)
    out, report = runtime.verify("openvino", tmp_path, "--cases", "quick", "--dtype", "float64", "--layers", "SimpleRNN")
    assert out.returncode == 1 and "nothing was verified" in out.stderr, out.stdout[-3000:] + out.stderr[-3000:]
    declined = [c for c in report["cases"] if "no float64 inference precision" in (c["skip_reason"] or "")]
    assert len(declined) >= 30 and report["summary"]["skip"] == len(report["cases"]), report["summary"]

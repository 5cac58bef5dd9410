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

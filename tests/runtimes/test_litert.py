"""``--impl litert``: Keras's LiteRT export (builtin ops only) run by the LiteRT interpreter."""

from __future__ import annotations


def test_litert_agrees_on_the_quick_matrix_with_every_divergence_recorded(tmp_path, runtime):
    runtime.require("litert", "ai_edge_litert", "tensorflow", "keras")
    out, report = runtime.verify("litert", tmp_path, "--cases", "quick", "--dtype", "float32", "float16", "-n", "2")
    runtime.assert_no_failures(out, report, agree=100)
    ran = runtime.ran(report)
    assert all(c["run_info"] and c["run_info"]["litert ops"] for c in ran)

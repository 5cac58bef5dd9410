"""The adapter contract, the CLI and the pytest plugin around it, and failure diagnosis (no Keras).

The broken adapters in tests/adapters/broken.py each make one classic porting mistake; the suite
must fail them and name the mistake."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance.configs import numpy_dtype
from conformance.adapters import AdapterError, Implementation, load
from conformance.deviations import load_adopter_deviations, load_deviations
from conformance.features import FEATURES, activation_values, features, quick
from conformance.judge import judge
from conformance.session import judge_all
from conformance.oracle import wire
from conformance.oracle.fixture import FixtureOracle, find_set, shipped_sets
from conformance.report import failure_text

ROOT = Path(__file__).resolve().parents[1]
BROKEN = "tests/adapters/broken.py"
ORACLE = FixtureOracle(find_set())
RECORDED = ORACLE.items
DEVIATIONS = load_deviations()


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def _cases(family: str, dtype: str = "float64") -> list:
    return [fc for fc in RECORDED if fc.family == family and fc.dtype == dtype]


# --- loading ----------------------------------------------------------------------------------------
def test_load_names_builtins_modules_and_files():
    assert load("refimpl").name == "refimpl"
    assert load("conformance.adapters.refimpl_adapter:RefImpl").full_protocol
    impl = load(f"{ROOT / BROKEN}:SwappedGRU")
    assert impl.name == "swapped-gru" and not impl.full_protocol


@pytest.mark.parametrize("spec, message", [
    ("nonsense", "impl='nonsense', expected one of"),
    ("no_such_module_xyz:Thing", "cannot import no_such_module_xyz"),
    ("conformance.adapters.refimpl_adapter:Nope", "has no attribute 'Nope'"),
    (f"{BROKEN}:NoRun", "has no run(config, weights, inputs"),
    ("missing/file.py:X", "no file"),
])
def test_load_failures_say_what_is_wrong(spec, message):
    with pytest.raises(AdapterError, match=message.replace("(", r"\(")):
        load(spec)


def test_supports_must_answer_true_or_a_reason():
    class Vague:
        def run(self, *a, **k):
            return []

        def supports(self, config):
            return False

    with pytest.raises(AdapterError, match="expected True or a string"):
        Implementation(Vague()).why_not(RECORDED[0])


def test_the_wire_round_trips_nested_arrays_without_pickle():
    import io

    buf = io.BytesIO()
    calls = [{"inputs": np.ones((2, 3), np.float16), "mask": None, "initial_state": [np.zeros(2)]}, "reset_state"]
    wire.send(buf, {"op": "run", "config": {"a": [1, None]}}, {"calls": calls})
    buf.seek(0)
    msg = wire.receive(buf)
    assert msg["op"] == "run" and msg["config"] == {"a": [1, None]} and msg["calls"][1] == "reset_state"
    assert msg["calls"][0]["inputs"].dtype == np.float16 and msg["calls"][0]["mask"] is None
    assert wire.receive(buf) is None


def test_the_wire_carries_bfloat16_exactly():
    import io

    bf16 = numpy_dtype("bfloat16")
    sent = (np.arange(-8, 8) / 7).astype(bf16)
    buf = io.BytesIO()
    wire.send(buf, {"op": "run"}, {"x": sent})
    buf.seek(0)
    got = wire.receive(buf)["x"]
    assert got.dtype == bf16 and got.tobytes() == sent.tobytes()


# --- statuses ---------------------------------------------------------------------------------------
def test_cases_an_adapter_declines_are_skipped_with_its_reason_never_passed():
    impl = load(f"{BROKEN}:SwappedGRU")
    result = judge(_cases("LSTM")[0], impl, DEVIATIONS, ORACLE)
    assert result.status == "skip" and result.error == "swapped-gru implements GRU only" and result.ok


def test_an_adapter_may_decline_at_run_time_and_the_case_is_skipped_with_its_reason():
    impl = load(f"{BROKEN}:DeclinesAtRunTime")
    results = [(fc, judge(fc, impl, DEVIATIONS, ORACLE)) for fc in _cases("LSTM")]
    assert {r.error for _, r in results if r.status == "skip"} == {
        "declined at run time: no dropout masks in training", "declined at run time: only right-padded masks"}
    assert all(r.status == "skip" for fc, r in results if fc.training and fc.status == "ok")
    assert any(r.status == "pass" for fc, r in results if fc.stateful and not fc.training)  # declined apart
    assert any(r.status == "pass" for fc, r in results if fc.masked)  # right-padded ones run
    passed = [r for _, r in results if r.status == "pass"]
    assert passed and {r.gradient_error for r in passed} <= {"declined at run time: no gradients for this one", ""}
    assert all(r.gradient == "skip" for r in passed if r.gradient_error)


def test_plain_contract_adapters_skip_stateful_and_training_cases_with_the_reason():
    impl = load(f"{BROKEN}:MaskIgnoringRNN")
    stateful = next(fc for fc in _cases("SimpleRNN") if len(fc.calls) > 1)
    training = next(fc for fc in _cases("SimpleRNN") if fc.training)
    assert "stateful call sequence" in judge(stateful, impl, DEVIATIONS, ORACLE).error
    assert "training-mode dropout" in judge(training, impl, DEVIATIONS, ORACLE).error


# adapter in tests/adapters/broken.py -> (the cause its failures must be diagnosed with, causes that
# give the same numbers on some cases and may be named instead there)
MISTAKES = {
    "SwappedGRU": ("gate blocks are in the order (r, z, h), not Keras's (z, r, h)", ()),
    "StatesSwappedLSTM": ("the LSTM states are returned as [c, h]", ()),
    "MaskIgnoringRNN": ("the mask is ignored", ("masked steps update the states",)),
    "ResetBeforeGRU": ("with the reset gate applied to h before the recurrent matmul", ()),
    "ResetAfterGRU": ("with the reset gate applied after the recurrent matmul", ()),
    "RecurrentBiasTwiceGRU": ("input bias is added again on the recurrent side", ()),
    "SwappedUpdateGRU": ("(z and 1 - z swapped)", ()),
    # recurrent_activation='hard_sigmoid' alone: replacing it by the default is computing it as sigmoid
    "DefaultActivations": ("are replaced by the defaults", ("hard_sigmoid is computed as sigmoid",)),
    "SigmoidForHardSigmoid": ("hard_sigmoid is computed as sigmoid", ()),
    "InitialCellStateIgnored": ("initial cell state c is ignored", ()),
    "Float32Inside": ("float32 arithmetic inside a float64 run", ()),
    "MaskNotReversed": ("with go_backwards=True the mask is not reversed", ()),
    "MaskLate": ("the mask is applied one step late", ()),
    # where the last step is unmasked and only the last output is returned, both give its numbers
    "StatesUpdatedOnMask": ("masked steps update the states", ("the mask is ignored",)),
}


SETS_ALL = {s.name: FixtureOracle(s) for s in shipped_sets()}
# The mistakes are made in Keras 2/3 configs; the Keras 0.2 / 1.2.2 sets have no twin of them.
SETS = {name: o for name, o in SETS_ALL.items() if o.major >= 2}


@pytest.mark.parametrize("adapter, set_name", [(a, s) for a in MISTAKES for s in SETS])
def test_a_broken_adapter_fails_and_the_diagnosis_names_its_mistake(adapter, set_name):
    cause, same_numbers = MISTAKES[adapter]
    impl, oracle = load(f"{BROKEN}:{adapter}"), SETS[set_name]
    results = [judge(fc, impl, DEVIATIONS, oracle) for fc in oracle.items]
    failed = [r for r in results if r.status == "fail"]
    assert len(failed) >= 3, f"{adapter} should fail: {[r.status for r in results]}"
    if adapter == "SwappedGRU":  # both directions of a Bidirectional, in Keras 3's configs and Keras 2's
        assert any(r.case.family == "Bidirectional(GRU)" for r in failed)
    assert not [r for r in results if r.status == "error"], "a broken adapter must compute, not raise"
    for r in failed:
        named = [d for d in r.diagnosis if cause in d]
        others = [d for d in r.diagnosis if cause not in d]
        assert (named or others) and all(any(s in d for s in same_numbers) for d in others), failure_text(r)
    assert any(len(r.diagnosis) == 1 and cause in r.diagnosis[0] for r in failed)
    assert "likely cause: " in failure_text(failed[0])
    assert failed[0].error_over_time and failed[0].error_over_time[0]["max_abs"] > 0


def test_diagnosis_finds_nothing_for_an_unrelated_error():
    from conformance.diagnose import diagnose
    from conformance.tolerances import tolerance_for

    fc = _cases("GRU")[0]
    noisy = [o + 0.01 for o in fc.outputs]
    assert diagnose(fc, noisy, tolerance_for("float64")) == []


# --- adopter deviations -----------------------------------------------------------------------------
def test_adopter_deviations_are_strict_for_any_impl(tmp_path):
    gru = _cases("GRU")[0]
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({gru.id: "we read gates in torch order, on purpose"}))
    devs = load_adopter_deviations(path)
    assert judge(gru, load(f"{BROKEN}:SwappedGRU"), devs, ORACLE).status == "xfail"
    assert judge(gru, load("refimpl"), devs, ORACLE).status == "xpass"  # strict: stale entry fails


@pytest.mark.parametrize("text", ["[]", '{"x": ""}', "not json"])
def test_adopter_deviation_files_are_validated(tmp_path, text):
    path = tmp_path / "dev.json"
    path.write_text(text)
    with pytest.raises(ValueError, match="deviations file"):
        load_adopter_deviations(path)


# --- features and the quick selection ---------------------------------------------------------------
def _pairs(recs: list) -> set:
    return ({(fc.family, f) for fc in recs for f in (*features(fc), *activation_values(fc))}
            | {(fc.family, fc.dtype) for fc in recs})


def test_quick_keeps_every_layer_feature_dtype_and_activation_value_pair():
    picked = quick(RECORDED)
    assert _pairs(picked) == _pairs(RECORDED)
    assert {(fc.family, "activation='gelu'") for fc in picked} & _pairs(picked)  # not only one activation
    assert len(picked) < len(RECORDED) / 4  # 249 of 1429


def test_quick_picks_among_the_filtered_cases():
    """--dtype float32 --cases quick: every float32 pair, not the few float32 cases of the whole quick set."""
    from conformance.session import Session

    session = Session.open(dtypes=["float32"], cases="quick")
    float32 = [fc for fc in RECORDED if fc.dtype == "float32"]
    assert _pairs(session.items) == _pairs(float32) and len(session.items) > 100


def test_every_feature_column_is_reached_by_the_matrix():
    """By the canonical matrix, but for the Keras 0.2 / 1.2.2 arguments, which their sets reach."""
    reached = {f for fc in RECORDED for f in features(fc)}
    old = {f for name, o in SETS_ALL.items() if o.major < 2 for fc in o.items for f in features(fc)}
    assert reached | old == set(FEATURES), set(FEATURES) - reached - old
    assert old - reached == {"consume_less", "depth"}


# --- parallel runs and the CLI ----------------------------------------------------------------------
def test_two_processes_give_the_same_results_as_one():
    picked, impl = quick(RECORDED)[:40], load(f"{BROKEN}:SwappedGRU")
    one = judge_all(ORACLE, picked, impl, DEVIATIONS)
    two = judge_all(ORACLE, picked, impl, DEVIATIONS, jobs=2)
    assert [(r.case.id, r.status, r.error) for r in one] == [(r.case.id, r.status, r.error) for r in two]


def test_cli_fails_a_broken_adapter_and_writes_reports(tmp_path):
    out = _cli("verify", "--impl", f"{BROKEN}:SwappedGRU", "--layers", "GRU", "--cases", "quick", "-q",
               "--report", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html"))
    assert out.returncode == 1, out.stderr
    assert "likely cause: the kernel, recurrent_kernel and bias gate blocks are in the order (r, z, h)" in out.stdout
    assert "--impl tests/adapters/broken.py:SwappedGRU" in out.stdout  # the rerun line
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["impl"]["name"] == "swapped-gru" and report["summary"]["fail"] > 0
    failing = [c for c in report["cases"] if c["status"] == "fail"]
    assert all(c["diagnosis"] and c["error_over_time"] and c["max_abs"] > 0 for c in failing)
    assert "FAIL" in (tmp_path / "r.html").read_text()


def test_cli_exits_nonzero_when_nothing_applied():
    out = _cli("verify", "--impl", f"{BROKEN}:SwappedGRU", "--layers", "LSTM", "--cases", "quick", "-q")
    assert out.returncode == 1 and "nothing was verified" in out.stderr


# --- the pytest plugin ------------------------------------------------------------------------------
def _pytest(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "conformance", "-p", "no:cacheprovider",
                           "-rfEX", *args], capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env={**os.environ, **(env or {})})


def test_plugin_runs_the_suite_for_an_impl_named_in_the_environment(tmp_path):
    out = _pytest(tmp_path, "--rnn-cases", "quick", env={"RNN_CONFORMANCE_IMPL": "refimpl"})
    assert out.returncode == 0, out.stdout[-3000:]
    assert "rnn-conformance: implementation under test: refimpl" in out.stdout
    summary = out.stdout.splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and not re.search(r"\d+ failed", summary), summary


def test_plugin_applies_adopter_deviations_strictly(tmp_path):
    gru = [fc.id for fc in quick(RECORDED) if fc.family == "GRU"]
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps({gru[0]: "known: torch gate order", "GRU(no_such_case)*": "stale"}))
    out = _pytest(tmp_path, "--rnn-cases", "quick", "-k", "GRU and not Bidirectional",
                  env={"RNN_CONFORMANCE_IMPL": str(ROOT / BROKEN) + ":SwappedGRU",
                       "RNN_CONFORMANCE_DEVIATIONS": str(dev)})
    assert out.returncode == 1
    summary = out.stdout.splitlines()[-1]
    assert "1 xfailed" in summary and re.search(r"\d+ failed", summary), summary
    assert "likely cause" in out.stdout
    assert "matches no case" not in out.stdout  # a quick run cannot tell a stale entry


def test_entries_of_the_adopter_that_match_no_case_are_named_after_a_full_run(tmp_path):
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps({"GRU(no_such_case)*": "stale"}))
    out = _cli("verify", "-q", "--deviations", str(dev))
    assert out.returncode == 0, out.stderr
    assert "'GRU(no_such_case)*' matches no case of this run; remove it" in out.stdout
    partial = _cli("verify", "-q", "--deviations", str(dev), "--layers", "LSTM")
    assert "matches no case" not in partial.stdout


# --- Keras's own quirks, for implementations other than refimpl ------------------------------------
class _Returns:
    """An adapter that returns fixed arrays (whatever it is asked)."""

    name = "fixed"

    def __init__(self, outputs):
        self.outputs = outputs

    def run(self, config, weights, inputs, *, mask=None, initial_state=None):
        return self.outputs


def test_on_a_keras_quirk_another_impl_may_match_keras_or_the_documented_value_but_nothing_else():
    from conformance.adapters.refimpl_adapter import RefImpl
    from conformance.deviations import deviation_for

    fc = next(fc for fc in RECORDED if fc.status == "ok" and len(fc.calls) == 1 and not fc.training
              and (d := deviation_for(fc, DEVIATIONS, ORACLE.name, "fixed")) and d.kind == "values" and d.oracle_quirk)
    call = fc.calls[0]
    documented = RefImpl().run(fc.config, fc.weights, call["inputs"], mask=call["mask"],
                               initial_state=call["initial_state"])
    verdict = lambda outs: judge(fc, Implementation(_Returns(outs)), DEVIATIONS, ORACLE)  # noqa: E731
    assert verdict(fc.outputs).status == "pass"
    assert verdict(documented).status == "xfail"
    neither = verdict([o + 0.5 for o in documented])
    assert neither.status == "fail" and "matches neither" in neither.error
    assert judge(fc, load("refimpl"), DEVIATIONS, ORACLE).status == "xfail"  # refimpl: strict, must differ


def test_the_template_adapter_loads_and_says_what_to_fill_in():
    impl = load("conformance/adapters/template.py:MyRNN")
    fc = next(fc for fc in _cases("LSTM") if impl.why_not(fc) is None)
    result = judge(fc, impl, DEVIATIONS, ORACLE)
    assert result.status == "error" and "call your implementation here" in result.error
    assert judge(_cases("GRU")[0], impl, DEVIATIONS, ORACLE).error == "my-rnn implements LSTM only, not GRU"


def test_a_failures_rerun_line_reruns_that_case(capsys):
    import shlex

    from conformance import cli

    impl = load(f"{BROKEN}:SwappedGRU")
    failed = next(r for fc in RECORDED if (r := judge(fc, impl, DEVIATIONS, ORACLE)).status == "fail")
    words = shlex.split(failure_text(failed).splitlines()[-1].removeprefix("  rerun: "))
    assert words[:2] == ["rnn-conformance", "verify"]
    assert cli.main(words[1:] + ["-q"]) == 1
    out = capsys.readouterr().out
    assert f"FAIL: {failed.case.id}" in out and "1 cases: 0 agree" in out


def test_an_adapter_with_right_outputs_and_wrong_gradients_fails_on_the_gradients():
    impl = load(f"{BROKEN}:GradientsIgnoreMask")
    results = [judge(fc, impl, DEVIATIONS, ORACLE) for fc in RECORDED]
    failed = [r for r in results if r.status == "fail"]
    masked = [r for r in results if r.status in ("pass", "fail") and "mask" in r.features]
    assert failed and all(r.gradient == "fail" and r.comparison.ok for r in failed)  # the outputs agree
    assert len(failed) >= 0.8 * len(masked), (len(failed), len(masked))
    assert not [r for r in results if r.status == "pass" and "mask" not in r.features and r.gradient != "pass"]
    text = failure_text(failed[0])
    assert "the outputs agree; the gradients do not:" in text and "d " in text


def test_an_adapter_without_run_vjp_is_skipped_on_the_gradients_with_the_reason():
    r = judge(_cases("SimpleRNN")[0], load(f"{BROKEN}:MaskIgnoringRNN"), DEVIATIONS, ORACLE)
    assert r.status == "pass" and r.gradient == "skip" and "run_vjp" in r.gradient_error


# --- failures grouped by cause ------------------------------------------------------------------------
class _RaisesWithShapes:
    """Raises on every GRU with a message that names the case's own shapes."""

    name = "raises-with-shapes"

    def run(self, config, weights, inputs, *, mask=None, initial_state=None):
        raise ValueError(f"cannot take inputs of shape {inputs.shape} with {len(weights)} weights")

    def supports(self, config):
        return True if config["class_name"] == "GRU" else "GRU only"


def test_failures_and_errors_are_grouped_by_cause_without_their_case_specific_parts():
    from conformance.report import failure_causes, failure_table, feature_table

    swapped = [judge(fc, load(f"{BROKEN}:SwappedGRU"), DEVIATIONS, ORACLE) for fc in _cases("GRU")]
    causes = failure_causes(swapped)
    assert len(causes) == 1 and "gate blocks are in the order (r, z, h)" in causes[0][0]
    assert causes[0][1] == sum(r.status == "fail" for r in swapped) >= 10
    raised = [judge(fc, Implementation(_RaisesWithShapes()), DEVIATIONS, ORACLE) for fc in _cases("GRU")]
    causes = failure_causes(raised)
    shapes = {r.error.splitlines()[0] for r in raised if r.status == "error"}
    assert len(shapes) > 1 and len(causes) == 1, causes  # many messages, one cause
    assert causes[0][0] == "raises-with-shapes raised ValueError: cannot take inputs of shape (N, N, N) with N weights"
    assert "failing cases by cause" in failure_table(raised) and failure_table(swapped[:0]) == ""
    assert re.search(r" 2F ", feature_table(swapped))  # GRU defaults: 2 failing, none agrees
    late = [judge(fc, load(f"{BROKEN}:MaskLate"), DEVIATIONS, ORACLE) for fc in _cases("SimpleRNN")]
    table = feature_table(late)
    assert re.search(r"\b\d+\+\d+F\b", table), table  # agreeing cases counted beside the failing ones


def test_the_json_and_html_reports_carry_the_causes(tmp_path):
    from conformance.report import build, render_html

    results = [judge(fc, load(f"{BROKEN}:SwappedGRU"), DEVIATIONS, ORACLE) for fc in _cases("GRU")[:12]]
    doc = build(results, impl=load(f"{BROKEN}:SwappedGRU"), oracle={"kind": "fixtures"}, seconds=1.0)
    failing = [c for c in doc["cases"] if c["status"] == "fail"]
    assert failing and all("likely cause: the kernel" in c["cause"] for c in failing)
    assert all(c["cause"] is None for c in doc["cases"] if c["status"] in ("pass", "skip", "xfail"))
    assert "Failures by cause" in render_html(doc)

"""Judging: a recorded case run through an implementation under test, compared with the oracle's
outputs, known deviations applied; the verdict is a ``CaseResult``.

Statuses: pass; fail (numbers, shapes or counts differ); error (the implementation raised, or the
oracle raised on a case not listed as a known deviation); xfail (a listed deviation failed as
documented); xpass (a listed deviation passed: the entry is stale, which counts as a failure, as
pytest's strict xfail does); skip (the case does not apply to the implementation: the reason is
kept and reported, and a skip is never counted as a pass).

Where Keras itself departs from its documented semantics (a deviations.json entry for every
implementation), refimpl must differ from Keras (strict). Another implementation may reproduce
Keras there (pass) or compute the documented value, as refimpl does (xfail); anything else fails.

The tolerance of a case is that of the least precise dtype any of its layers computes in
(``configs.precision``): a float64 Bidirectional around a float32 LSTM is judged as float32.

Where the outputs agree and the oracle recorded gradients (fixture schema 2), the implementation's
gradients for the same cotangents are checked too, at the gradient tolerance (``run_vjp`` of the
adapter contract; an adapter without it is skipped on that check, with the reason). A gradient
failure fails the case; ``CaseResult.gradient`` keeps the gradient check's own status.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance import configs
from conformance.adapters import AdapterError, Decline, Implementation
from conformance.adapters.refimpl_adapter import RefImpl
from conformance.compare import Comparison, compare
from conformance.deviations import Deviation, deviation_for
from conformance.diagnose import diagnose, error_over_time
from conformance.features import features
from conformance.recorded import RecordedCase
from conformance.tolerances import Tolerance, tolerance_for

OK_STATUSES = ("pass", "xfail", "skip")  # the rest (fail, error, xpass) fail a run
STATUSES = ("pass", "fail", "error", "xfail", "xpass", "skip")


@dataclass(frozen=True)
class CaseInfo:
    id: str
    family: str
    dtype: str


@dataclass
class CaseResult:
    case: CaseInfo
    status: str
    comparison: Comparison | None = None
    error: str = ""  # what raised, or why the case was skipped
    deviation: Deviation | None = None
    config: dict | None = None
    precision: str = ""  # the dtype the case is judged at: its least precise layer's
    tolerance: Tolerance | None = None
    seconds: float = 0.0
    oracle_kind: str = "fixtures"  # "fixtures" or "keras" (live)
    set_option: str | None = None  # the --set that selects the oracle's set again (None: the default)
    impl: str = "refimpl"  # the --impl that selects the implementation again
    features: tuple[str, ...] = ()
    error_over_time: list | None = None  # failing cases: per output, the worst error at each step
    diagnosis: list[str] = field(default_factory=list)
    drawn: str | None = None  # a case outside the matrix (the fuzzer's): its repr, to rerun it
    deviations_file: str | None = None  # the adopter's --deviations, to rerun with it
    # The gradient check, beside the outputs': "" (no gradients recorded), or a status of its own.
    gradient: str = ""
    gradient_comparison: Comparison | None = None
    gradient_error: str = ""  # why it was skipped, or what raised
    gradient_tolerance: Tolerance | None = None
    run_info: dict | None = None  # the adapter's own account of how it ran the case (adapters' run_info)

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


def judge(rec: RecordedCase, impl: Implementation, deviations: list[Deviation], oracle: Any) -> CaseResult:
    """A recorded case through ``impl``, judged against ``oracle``'s outputs (``oracle``: a
    FixtureOracle or KerasOracle; its name selects deviations, its major version the semantics)."""
    start = time.perf_counter()
    deviation = deviation_for(rec, deviations, oracle.name, impl.name)  # for the outputs
    precision = configs.precision(rec.config, rec.dtype)
    tol = tolerance_for(precision)
    base = dict(deviation=deviation, config=rec.config, precision=precision, tolerance=tol, oracle_kind=oracle.kind,
                set_option=oracle.set_option, impl=impl.spec, features=features(rec))

    def done(status: str, **kwargs: Any) -> CaseResult:
        return CaseResult(CaseInfo(rec.id, rec.family, rec.dtype), status,
                          seconds=time.perf_counter() - start, **{**base, **kwargs})

    try:
        why = impl.why_not(rec)
    except AdapterError:  # the adapter breaks the contract: the whole run stops, in one line
        raise
    except Exception as e:  # supports() itself raised: this case errs, the run goes on
        return done("error", error=f"{impl.name}.supports() raised {type(e).__name__}: {str(e)[:2000]}", deviation=None)
    if why:
        return done("skip", error=why, deviation=None)
    if rec.unreadable:
        return done("skip", error=rec.unreadable, deviation=None)
    if rec.status == "oracle-raised":
        status = "xfail" if deviation and deviation.kind in ("raises", "any") else "error"
        return done(status, error=f"Keras raised (the oracle, on this valid configuration): {rec.error}")
    try:
        actual = impl.run(rec, oracle.major)
    except Decline as e:
        return done("skip", error=f"declined at run time: {e}", deviation=None, run_info=impl.run_info())
    except Exception as e:
        if deviation and deviation.kind == "any":
            return done("xfail", error=f"{impl.name} raised {type(e).__name__}: {e}")
        tb = traceback.format_exc(limit=-3)
        return done("error", error=f"{impl.name} raised {type(e).__name__}: {str(e)[:2000]}\n{tb}")
    comparison = compare(rec.outputs, actual, tol)
    error = ""
    if deviation is None:
        status = "pass" if comparison.ok else "fail"
    elif deviation.kind == "values" and deviation.oracle_quirk and impl.name != "refimpl":
        status, error = _judge_quirk(rec, actual, comparison, tol, oracle.major)
    elif deviation.kind in ("values", "any"):
        status = "xpass" if comparison.ok else "xfail"
    else:  # listed as "Keras raises", but Keras ran
        status = "xpass"
    result = done(status, comparison=comparison, error=error, run_info=impl.run_info())
    if status == "fail":
        result.error_over_time = error_over_time(rec, actual)
        result.diagnosis = diagnose(rec, actual, tol, oracle.major)
    elif status == "pass":
        _judge_gradients(result, rec, impl, deviations, oracle)
    return result


def _judge_gradients(result: CaseResult, rec: RecordedCase, impl: Implementation, deviations: list[Deviation],
                     oracle: Any) -> None:
    """Where the outputs agree and Keras's gradients are recorded: the implementation's gradients
    for the same cotangents, compared at the gradient tolerance. A gradient failure fails the case."""
    if rec.gradients is None:
        result.gradient_error = f"Keras's backward pass raised: {rec.gradient_error}" if rec.gradient_error else ""
        return
    result.gradient_tolerance = tol = tolerance_for(result.precision, gradients=True)
    why = impl.why_not_gradients(rec)
    if why:
        result.gradient, result.gradient_error = "skip", why
        return
    deviation = deviation_for(rec, deviations, oracle.name, impl.name, gradients=True)
    try:
        actual = impl.run_vjp(rec, oracle.major)
        expected, got, labels = gradient_arrays(rec.gradients), gradient_arrays(actual), gradient_labels(rec.gradients)
    except Decline as e:
        result.gradient, result.gradient_error = "skip", f"declined at run time: {e}"
        return
    except Exception as e:
        result.gradient = "error" if deviation is None else "xfail"  # a listed deviation may be a raise
        result.gradient_error = f"{impl.name}.run_vjp raised {type(e).__name__}: {str(e)[:2000]}"
    else:
        c = result.gradient_comparison = compare(expected, [np.asarray(a) for a in got], tol, labels)
        if deviation is None:
            result.gradient = "pass" if c.ok else "fail"
        else:
            result.gradient = "xpass" if c.ok else "xfail"
    if deviation is not None and result.gradient in ("xfail", "xpass"):
        result.deviation = deviation
    if result.gradient in ("fail", "error", "xpass", "xfail"):
        result.status = result.gradient


def gradient_arrays(grads: dict) -> list:
    """A gradients dict flattened: each call's d inputs, then each given initial state's, then the weights'."""
    states = [s for per_call in grads["initial_state"] if per_call is not None for s in _leaves(per_call)]
    return [*grads["inputs"], *states, *grads["weights"]]


def gradient_labels(grads: dict) -> list[str]:
    """The names compare() reports ``gradient_arrays``'s entries by."""
    calls = len(grads["inputs"])
    labels = [f"d inputs{'' if calls == 1 else f' (call {k})'}" for k in range(calls)]
    for k, per_call in enumerate(grads["initial_state"]):
        if per_call is not None:
            labels += [f"d initial_state[{i}]{'' if calls == 1 else f' (call {k})'}" for i in range(len(_leaves(per_call)))]
    return labels + [f"d weights[{i}]" for i in range(len(grads["weights"]))]


def _leaves(tree: Any) -> list:
    return [x for t in tree for x in _leaves(t)] if isinstance(tree, (list, tuple)) else [tree]


def _judge_quirk(rec: RecordedCase, actual: list, comparison: Comparison, tol: Tolerance,
                 keras_version: int) -> tuple[str, str]:
    """Another implementation on a case where Keras departs from its documented semantics: it may
    reproduce Keras (pass) or compute the documented value, which refimpl computes (xfail); matching
    neither fails."""
    if comparison.ok:
        return "pass", ""
    documented = RefImpl().run_calls(rec.config, rec.weights, rec.calls, training=rec.training,
                                     dropout_masks=rec.dropout_masks, keras_version=keras_version)
    if compare(documented, actual, tol).ok:
        return "xfail", ""
    return "fail", ("matches neither Keras's recorded output nor the documented semantics that refimpl "
                    "computes")

"""Run cases through the oracle and refimpl, apply known deviations, and summarise.

Statuses: pass; fail (numbers, shapes or counts differ); error (refimpl raised); xfail (a listed
deviation failed as documented); xpass (a listed deviation passed: the entry is stale, which
counts as a failure, as pytest's strict xfail does).
"""

from __future__ import annotations

import json
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from conformance.cases import Case
from conformance.compare import Comparison, compare
from conformance.tolerances import tolerance_for

DEVIATIONS_FILE = Path(__file__).with_name("deviations.json")
OK_STATUSES = ("pass", "xfail")


@dataclass(frozen=True)
class Deviation:
    match: tuple[str, ...]
    kind: str
    oracle: tuple[str, ...]
    reason: str

    def applies(self, case_id: str, oracle: str) -> bool:
        if oracle not in self.oracle:
            return False
        return all(not _glob(case_id, g[1:]) if g.startswith("!") else _glob(case_id, g)
                   for g in self.match)


def _glob(text: str, pattern: str) -> bool:
    """'*' matches anything, '{a,b}' matches a or b; every other character (brackets included)
    matches itself."""
    regex = ""
    for part in re.split(r"(\*|\{[^}]*\})", pattern):
        if part == "*":
            regex += ".*"
        elif part.startswith("{") and part.endswith("}"):
            regex += "(" + "|".join(map(re.escape, part[1:-1].split(","))) + ")"
        else:
            regex += re.escape(part)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def load_deviations(path: Path = DEVIATIONS_FILE) -> list[Deviation]:
    entries = json.loads(path.read_text())["deviations"]
    for e in entries:
        if e["kind"] not in ("values", "raises") or not e.get("reason"):
            raise ValueError(f"{path}: entry {e['match']} needs kind 'values' or 'raises' and a reason")
    return [Deviation(tuple(e["match"]), e["kind"], tuple(_as_list(e["oracle"])), e["reason"]) for e in entries]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def deviation_for(case: Case, deviations: Iterable[Deviation], oracle: str) -> Deviation | None:
    return next((d for d in deviations if d.applies(case.id, oracle)), None)


def rerun_command(case: Case, oracle: str = "keras") -> str:
    """``rnn-conformance verify --case ID`` for matrix cases; a Python one-liner for drawn ones."""
    from conformance.cases import all_cases

    if case.id in _matrix_ids(all_cases) or oracle == "fixtures":
        return f"rnn-conformance verify --oracle {oracle} --case {_shell_quote(case.id)}"
    code = ("from conformance.cases import Case; from conformance.verify import run_case, load_deviations; "
            f"print(run_case({case!r}, [], 'keras-tensorflow').report())")
    return f"python -c {_shell_quote(code)}"


_MATRIX_IDS: set[str] = set()


def _matrix_ids(all_cases) -> set[str]:
    if not _MATRIX_IDS:
        _MATRIX_IDS.update(c.id for c in all_cases())
    return _MATRIX_IDS


def _shell_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


@dataclass
class CaseResult:
    case: Case  # or a FixtureCase: anything with id, family and dtype
    status: str
    comparison: Comparison | None = None
    error: str = ""
    deviation: Deviation | None = None
    config: dict | None = None
    seconds: float = 0.0
    oracle_kind: str = "keras"  # "keras" (live) or "fixtures"

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    def report(self) -> str:
        """What a person needs to act on a failure: what differs, where, the config, a rerun line."""
        lines = [f"{self.status.upper()}: {self.case.id}"]
        if self.status == "xpass":
            lines.append(f"  listed as a known deviation but it now agrees: remove the entry "
                         f"({self.deviation.reason[:80]}...)")
        if self.comparison is not None and not self.comparison.ok:
            c = self.comparison
            lines.append(f"  {c.message}")
            lines.append(f"  max abs err {c.max_abs:.3g}, max rel err {c.max_rel:.3g}")
        if self.error:
            lines.append("  " + self.error.strip().replace("\n", "\n  "))
        if self.config is not None:
            lines.append(f"  config: {json.dumps(self.config.get('config', self.config), default=str)}")
        lines.append(f"  rerun: {rerun_command(self.case, self.oracle_kind)}")
        return "\n".join(lines)


def run_case(case: Case, deviations: list[Deviation], oracle: str) -> CaseResult:
    from conformance.runners import prepare, run_keras, run_refimpl

    start = time.perf_counter()
    deviation = deviation_for(case, deviations, oracle)
    try:
        config, data, layer = prepare(case)
        expected = run_keras(case, layer, data)
    except Exception as e:  # the oracle itself failed
        status = "xfail" if deviation and deviation.kind == "raises" else "error"
        return CaseResult(case, status, error=f"Keras raised {type(e).__name__}: {str(e)[:500]}",
                          deviation=deviation, seconds=time.perf_counter() - start)
    try:
        actual = run_refimpl(case, config, data)
    except Exception as e:
        tb = traceback.format_exc(limit=-3)
        return CaseResult(case, "error", error=f"refimpl raised {type(e).__name__}: {e}\n{tb}",
                          config=config, seconds=time.perf_counter() - start)
    comparison = compare(expected, actual, tolerance_for(case.dtype), case.dtype)
    if deviation is None:
        status = "pass" if comparison.ok else "fail"
    elif deviation.kind == "values":
        status = "xpass" if comparison.ok else "xfail"
    else:  # listed as "Keras raises", but Keras ran
        status = "xpass"
    return CaseResult(case, status, comparison, deviation=deviation, config=config,
                      seconds=time.perf_counter() - start)


def replay_case(fc, deviations: list[Deviation], oracle: str, keras_version: int) -> CaseResult:
    """One fixture case through refimpl, judged against the outputs Keras recorded."""
    from conformance.fixtures import run_refimpl

    start = time.perf_counter()
    deviation = deviation_for(fc, deviations, oracle)
    if fc.status == "oracle-raised":
        status = "xfail" if deviation and deviation.kind == "raises" else "error"
        return CaseResult(fc, status, error=f"Keras raised when the set was generated: {fc.error}",
                          deviation=deviation, config=fc.config, oracle_kind="fixtures")
    try:
        actual = run_refimpl(fc, keras_version)
    except Exception as e:
        tb = traceback.format_exc(limit=-3)
        return CaseResult(fc, "error", error=f"refimpl raised {type(e).__name__}: {e}\n{tb}",
                          config=fc.config, seconds=time.perf_counter() - start, oracle_kind="fixtures")
    comparison = compare(fc.outputs, actual, tolerance_for(fc.dtype), fc.dtype)
    if deviation is None:
        status = "pass" if comparison.ok else "fail"
    elif deviation.kind == "values":
        status = "xpass" if comparison.ok else "xfail"
    else:
        status = "xpass"
    return CaseResult(fc, status, comparison, deviation=deviation, config=fc.config,
                      seconds=time.perf_counter() - start, oracle_kind="fixtures")


def run_cases(cases: list[Case], *, oracle: str, progress: Callable[[int, int, CaseResult], None] | None = None
              ) -> list[CaseResult]:
    deviations = load_deviations()
    results = []
    for i, case in enumerate(cases, 1):
        result = run_case(case, deviations, oracle)
        results.append(result)
        if progress:
            progress(i, len(cases), result)
    return results


def stale_deviations(cases: list[Case], oracle: str) -> list[Deviation]:
    """Entries that match no case of the matrix (typos, or cases that were removed)."""
    return [d for d in load_deviations() if oracle in d.oracle and not any(d.applies(c.id, oracle) for c in cases)]


def table(results: list[CaseResult]) -> str:
    """One row per layer family and dtype: counts by status and the worst absolute error (over
    every compared case except documented deviations)."""
    rows: dict[tuple[str, str], dict] = {}
    for r in results:
        row = rows.setdefault((r.case.family, r.case.dtype), {"n": 0, "pass": 0, "xfail": 0, "bad": 0, "worst": 0.0})
        row["n"] += 1
        row["pass" if r.status == "pass" else "xfail" if r.status == "xfail" else "bad"] += 1
        if r.status in ("pass", "fail") and r.comparison is not None:
            row["worst"] = max(row["worst"], r.comparison.max_abs)
    header = f"{'layer':<26} {'dtype':<8} {'cases':>5} {'pass':>5} {'known':>5} {'FAIL':>5}  {'max abs err':>11}  tolerance"
    lines = [header, "-" * len(header)]
    order = {"SimpleRNN": 0, "LSTM": 1, "GRU": 2, "ConvLSTM1D": 3, "ConvLSTM2D": 4, "ConvLSTM3D": 5}
    for (family, dtype), row in sorted(rows.items(), key=lambda kv: (order.get(kv[0][0], 6 + kv[0][0].startswith("Bi")), kv[0][0],
                                                                      ("float64", "float32", "float16").index(kv[0][1]))):
        tol = tolerance_for(dtype)
        lines.append(f"{family:<26} {dtype:<8} {row['n']:>5} {row['pass']:>5} {row['xfail']:>5} {row['bad']:>5}  "
                     f"{row['worst']:>11.2e}  atol={tol.atol:g} rtol={tol.rtol:g}")
    total = len(results)
    bad = sum(not r.ok for r in results)
    known = sum(r.status == "xfail" for r in results)
    lines.append("-" * len(header))
    lines.append(f"{total} cases: {total - bad - known} agree, {known} known Keras deviations "
                 f"(conformance/deviations.json), {bad} failing")
    return "\n".join(lines)


def print_progress(stream=sys.stderr) -> Callable[[int, int, CaseResult], None]:
    """Progress on stderr: a live counter on a terminal, a line every 50 cases otherwise."""
    tty = stream.isatty()
    failing = 0

    def show(i: int, n: int, r: CaseResult) -> None:
        nonlocal failing
        failing += not r.ok
        line = f"[{i}/{n}] {r.case.family:<26} {failing} failing"
        if tty:
            stream.write("\r" + line + ("\n" if i == n else ""))
        elif i % 50 == 0 or i == n:
            stream.write(line + "\n")
        stream.flush()
    return show

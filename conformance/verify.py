"""Run cases through the oracle and an implementation under test, apply known deviations, summarise.

Statuses: pass; fail (numbers, shapes or counts differ); error (the implementation raised, or the
oracle raised on a case not listed as a known deviation); xfail (a listed deviation failed as
documented); xpass (a listed deviation passed: the entry is stale, which counts as a failure, as
pytest's strict xfail does); skip (the case does not apply to the implementation: the reason is
kept and reported, and a skip is never counted as a pass).

Where Keras itself departs from its documented semantics (a deviations.json entry for every
implementation), refimpl must differ from Keras (strict). Another implementation may reproduce
Keras there (pass) or compute the documented value, as refimpl does (xfail); anything else fails.
"""

from __future__ import annotations

import json
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from conformance.cases import Case
from conformance.compare import Comparison, compare
from conformance.tolerances import tolerance_for

DEVIATIONS_FILE = Path(__file__).with_name("deviations.json")
OK_STATUSES = ("pass", "xfail", "skip")  # the rest (fail, error, xpass) fail a run


@dataclass(frozen=True)
class Deviation:
    match: tuple[str, ...]
    kind: str  # "values" (numbers differ), "raises" (the oracle raises), "any" (differs, or the impl raises)
    oracle: tuple[str, ...]
    reason: str
    impls: tuple[str, ...] = ("*",)  # the implementations that disagree with the oracle here

    @property
    def oracle_quirk(self) -> bool:
        """Keras itself departs from its documented semantics (not one implementation's difference)."""
        return [g for g in self.impls if not g.startswith("!")] in ([], ["*"])

    def applies(self, case_id: str, oracle: str, impl: str = "refimpl") -> bool:
        return (_matches(oracle, self.oracle) and _matches(impl, self.impls)
                and all(not _glob(case_id, g[1:]) if g.startswith("!") else _glob(case_id, g)
                        for g in self.match))


def _matches(name: str, globs: tuple[str, ...]) -> bool:
    """Some positive glob matches and no '!glob' does."""
    positive = [g for g in globs if not g.startswith("!")] or ["*"]
    return any(_glob(name, g) for g in positive) and not any(_glob(name, g[1:]) for g in globs if g.startswith("!"))


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
    entries = json.loads(Path(path).read_text())["deviations"]
    for e in entries:
        if e["kind"] not in ("values", "raises", "any") or not e.get("reason"):
            raise ValueError(f"{path}: entry {e['match']} needs kind 'values', 'raises' or 'any' and a reason")
    return [Deviation(tuple(e["match"]), e["kind"], tuple(_as_list(e["oracle"])), e["reason"],
                      tuple(_as_list(e.get("impls", "*")))) for e in entries]


def load_adopter_deviations(path: str | Path) -> list[Deviation]:
    """An implementation's own known differences: a JSON object {case id or glob: reason}. Each
    entry is a strict xfail for whichever implementation is being verified, against any oracle."""
    try:
        entries = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"deviations file {path}: {e}") from None
    if not isinstance(entries, dict) or not all(isinstance(r, str) and r.strip() for r in entries.values()):
        raise ValueError(f"deviations file {path}: expected a JSON object {{case id or glob: non-empty reason}}")
    return [Deviation((key,), "any", ("*",), reason) for key, reason in entries.items()]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def deviation_for(case: Case, deviations: Iterable[Deviation], oracle: str, impl: str = "refimpl"
                  ) -> Deviation | None:
    return next((d for d in deviations if d.applies(case.id, oracle, impl)), None)


def rerun_command(case: Case, oracle: str = "keras", impl: str = "refimpl") -> str:
    """``rnn-conformance verify --case ID`` for matrix cases; a Python one-liner for drawn ones."""
    from conformance.cases import all_cases

    if case.id in _matrix_ids(all_cases) or oracle == "fixtures":
        flag = "" if impl == "refimpl" else f" --impl {_shell_word(impl)}"
        return f"rnn-conformance verify{flag} --oracle {oracle} --case {_shell_quote(case.id)}"
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


def _shell_word(s: str) -> str:
    return s if re.fullmatch(r"[\w.:/=-]+", s) else _shell_quote(s)


@dataclass
class CaseResult:
    case: Any  # a Case, or a FixtureCase / CaseInfo: anything with id, family and dtype
    status: str
    comparison: Comparison | None = None
    error: str = ""  # what raised, or why the case was skipped
    deviation: Deviation | None = None
    config: dict | None = None
    seconds: float = 0.0
    oracle_kind: str = "keras"  # "keras" (live) or "fixtures"
    impl: str = "refimpl"
    features: tuple[str, ...] = ()
    error_over_time: list | None = None  # failing cases: per output, the worst error at each step
    diagnosis: list[str] = field(default_factory=list)

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
            if c.worst is not None:
                lines.append(f"  max abs err {c.max_abs:.3g}, max rel err {c.max_rel:.3g}")
        if self.error:
            lines.append("  " + self.error.strip().replace("\n", "\n  "))
        if self.deviation is not None and self.status == "fail":
            lines.append(f"  known Keras deviation on this case: {self.deviation.reason}")
        for hint in self.diagnosis:
            lines.append(f"  likely cause: {hint}")
        if self.config is not None:
            lines.append(f"  config: {json.dumps(self.config.get('config', self.config), default=str)}")
        lines.append(f"  rerun: {rerun_command(self.case, self.oracle_kind, self.impl)}")
        return "\n".join(lines)

    def slim(self) -> "CaseResult":
        """The result without the case's arrays (for sending across processes)."""
        from dataclasses import replace

        return replace(self, case=CaseInfo(self.case.id, self.case.family, self.case.dtype))


@dataclass(frozen=True)
class CaseInfo:
    id: str
    family: str
    dtype: str


def _judge_quirk(rec, actual: list, comparison: Comparison, keras_version: int) -> tuple[str, str]:
    """Another implementation on a case where Keras departs from its documented semantics: it may
    reproduce Keras (pass) or compute the documented value, which refimpl computes (xfail); matching
    neither fails."""
    if comparison.ok:
        return "pass", ""
    from conformance.adapters.refimpl_adapter import RefImpl

    documented = RefImpl().run_calls(rec.config, rec.weights, rec.calls, training=rec.training,
                                     dropout_masks=rec.dropout_masks, keras_version=keras_version)
    if compare(documented, actual, tolerance_for(rec.dtype), rec.dtype).ok:
        return "xfail", ""
    return "fail", ("matches neither Keras's recorded output nor the documented semantics that refimpl "
                    "computes")


def _default_impl():
    from conformance.adapters import load

    global _REFIMPL
    if _REFIMPL is None:
        _REFIMPL = load("refimpl")
    return _REFIMPL


_REFIMPL = None


def run_case(case: Case, deviations: list[Deviation], oracle: str, impl: Any = None) -> CaseResult:
    """One matrix case through the live Keras oracle, then through ``impl`` (default refimpl)."""
    from conformance.runners import record_live

    start = time.perf_counter()
    rec = record_live(case)
    result = judge(rec, impl or _default_impl(), deviations, oracle, oracle_kind="keras",
                   keras_version=2 if oracle.startswith("tf-keras") else 3)
    result.case, result.seconds = case, time.perf_counter() - start
    return result


def replay_case(fc, deviations: list[Deviation], oracle: str, keras_version: int, impl: Any = None) -> CaseResult:
    """One fixture case through ``impl`` (default refimpl), judged against the outputs Keras recorded."""
    return judge(fc, impl or _default_impl(), deviations, oracle, oracle_kind="fixtures", keras_version=keras_version)


def judge(rec, impl: Any, deviations: list[Deviation], oracle: str, *, oracle_kind: str,
          keras_version: int = 3) -> CaseResult:
    """A recorded case (inputs, weights, the oracle's outputs) through an implementation."""
    from conformance.features import features

    start = time.perf_counter()
    deviation = deviation_for(rec, deviations, oracle, impl.name)
    base = dict(deviation=deviation, config=rec.config, oracle_kind=oracle_kind, impl=impl.spec,
                features=features(rec))

    def done(status: str, **kwargs: Any) -> CaseResult:
        return CaseResult(rec, status, seconds=time.perf_counter() - start, **{**base, **kwargs})

    why = impl.why_not(rec)
    if why:
        return done("skip", error=why, deviation=None)
    if rec.status == "oracle-raised":
        status = "xfail" if deviation and deviation.kind in ("raises", "any") else "error"
        return done(status, error=f"Keras raised (the oracle, on this valid configuration): {rec.error}")
    try:
        actual = impl.run(rec, keras_version)
    except Exception as e:
        if deviation and deviation.kind == "any":
            return done("xfail", error=f"{impl.name} raised {type(e).__name__}: {e}")
        tb = traceback.format_exc(limit=-3)
        return done("error", error=f"{impl.name} raised {type(e).__name__}: {str(e)[:2000]}\n{tb}")
    comparison = compare(rec.outputs, actual, tolerance_for(rec.dtype), rec.dtype)
    error = ""
    if deviation is None:
        status = "pass" if comparison.ok else "fail"
    elif deviation.kind == "values" and deviation.oracle_quirk and impl.name != "refimpl":
        status, error = _judge_quirk(rec, actual, comparison, keras_version)
    elif deviation.kind in ("values", "any"):
        status = "xpass" if comparison.ok else "xfail"
    else:  # listed as "Keras raises", but Keras ran
        status = "xpass"
    result = done(status, comparison=comparison, error=error)
    if status == "fail":
        from conformance.diagnose import diagnose, error_over_time

        result.error_over_time = error_over_time(rec, actual)
        result.diagnosis = diagnose(rec, actual, keras_version)
    return result


def run_cases(cases: list[Case], *, oracle: str, impl: Any = None, deviations: list[Deviation] | None = None,
              jobs: int = 1, progress: Callable[[int, int, CaseResult], None] | None = None) -> list[CaseResult]:
    """Matrix cases through the live oracle and ``impl`` (an adapter spec or Implementation)."""
    return _run(("keras", None, [c.id for c in cases]), cases, oracle, impl, deviations, 3, jobs, progress)


def replay_set(set_dir: Path, recorded: list, *, oracle: str, keras_version: int, impl: Any = None,
               deviations: list[Deviation] | None = None, jobs: int = 1,
               progress: Callable[[int, int, CaseResult], None] | None = None) -> list[CaseResult]:
    """Recorded cases of the fixture set in ``set_dir`` through ``impl``."""
    return _run(("fixtures", str(set_dir), [fc.id for fc in recorded]), recorded, oracle, impl, deviations,
                keras_version, jobs, progress)


def _run(source: tuple, items: list, oracle: str, impl: Any, deviations: list[Deviation] | None,
         keras_version: int, jobs: int, progress: Callable | None) -> list[CaseResult]:
    from conformance.adapters import Implementation, load

    deviations = load_deviations() if deviations is None else deviations
    spec = impl if isinstance(impl, str) else (impl.spec if isinstance(impl, Implementation) else "refimpl")
    if jobs > 1 and len(items) > 1:
        import concurrent.futures
        import multiprocessing

        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
            initargs=(source, spec, deviations, oracle, keras_version))
        with pool:
            stream = pool.map(_worker_case, range(len(items)), chunksize=max(1, min(16, len(items) // (4 * jobs))))
            return _collect(stream, len(items), progress)
    impl = load(impl) if isinstance(impl, str) else (impl or _default_impl())
    one = ((lambda c: run_case(c, deviations, oracle, impl)) if source[0] == "keras" else
           (lambda fc: replay_case(fc, deviations, oracle, keras_version, impl)))
    return _collect(map(one, items), len(items), progress)


def _collect(stream: Iterable[CaseResult], n: int, progress: Callable | None) -> list[CaseResult]:
    results = []
    for i, result in enumerate(stream, 1):
        results.append(result)
        if progress:
            progress(i, n, result)
    return results


_WORKER: dict = {}


def _worker_init(source: tuple, spec: str, deviations: list[Deviation], oracle: str, keras_version: int) -> None:
    from conformance.adapters import load

    kind, set_dir, ids = source
    if kind == "fixtures":
        from conformance.fixtures import load as load_set

        by_id = {fc.id: fc for fc in load_set(Path(set_dir))[1]}
    else:
        from conformance.cases import all_cases

        by_id = {c.id: c for c in all_cases()}
    _WORKER.update(kind=kind, items=[by_id[i] for i in ids], impl=load(spec), deviations=deviations,
                   oracle=oracle, keras_version=keras_version)


def _worker_case(index: int) -> CaseResult:
    w = _WORKER
    item = w["items"][index]
    if w["kind"] == "keras":
        result = run_case(item, w["deviations"], w["oracle"], w["impl"])
    else:
        result = replay_case(item, w["deviations"], w["oracle"], w["keras_version"], w["impl"])
    return result.slim()


def stale_deviations(cases: list, oracle: str, impl: str = "refimpl",
                     deviations: list[Deviation] | None = None) -> list[Deviation]:
    """Entries that match no case (typos, or cases that were removed)."""
    deviations = load_deviations() if deviations is None else deviations
    return [d for d in deviations if _matches(oracle, d.oracle) and _matches(impl, d.impls)
            and not any(d.applies(c.id, oracle, impl) for c in cases)]


def table(results: list[CaseResult]) -> str:
    """One row per layer family and dtype: counts by status and the worst absolute error (over
    every compared case except documented deviations)."""
    rows: dict[tuple[str, str], dict] = {}
    for r in results:
        row = rows.setdefault((r.case.family, r.case.dtype),
                              {"n": 0, "pass": 0, "xfail": 0, "skip": 0, "bad": 0, "worst": 0.0})
        row["n"] += 1
        row[r.status if r.status in ("pass", "xfail", "skip") else "bad"] += 1
        if r.status in ("pass", "fail") and r.comparison is not None:
            row["worst"] = max(row["worst"], r.comparison.max_abs)
    header = (f"{'layer':<26} {'dtype':<8} {'cases':>5} {'pass':>5} {'known':>5} {'skip':>5} {'FAIL':>5}  "
              f"{'max abs err':>11}  tolerance")
    lines = [header, "-" * len(header)]
    order = {"SimpleRNN": 0, "LSTM": 1, "GRU": 2, "ConvLSTM1D": 3, "ConvLSTM2D": 4, "ConvLSTM3D": 5}
    for (family, dtype), row in sorted(rows.items(), key=lambda kv: (order.get(kv[0][0], 6 + kv[0][0].startswith("Bi")), kv[0][0],
                                                                      ("float64", "float32", "float16").index(kv[0][1]))):
        tol = tolerance_for(dtype)
        lines.append(f"{family:<26} {dtype:<8} {row['n']:>5} {row['pass']:>5} {row['xfail']:>5} {row['skip']:>5} {row['bad']:>5}  "
                     f"{row['worst']:>11.2e}  atol={tol.atol:g} rtol={tol.rtol:g}")
    total = len(results)
    bad = sum(not r.ok for r in results)
    known = sum(r.status == "xfail" for r in results)
    skipped = sum(r.status == "skip" for r in results)
    lines.append("-" * len(header))
    lines.append(f"{total} cases: {total - bad - known - skipped} agree, {known} known deviations, "
                 f"{skipped} skipped, {bad} failing")
    return "\n".join(lines)


def print_progress(stream=sys.stderr) -> Callable[[int, int, CaseResult], None]:
    """Progress on stderr: a live counter on a terminal, a line every 50 cases otherwise."""
    tty = stream.isatty()
    failing = 0

    skipped = 0

    def show(i: int, n: int, r: CaseResult) -> None:
        nonlocal failing, skipped
        failing += not r.ok
        skipped += r.status == "skip"
        line = f"[{i}/{n}] {r.case.family:<26} {failing} failing, {skipped} skipped"
        if tty:
            stream.write("\r" + line + ("\n" if i == n else ""))
        elif i % 50 == 0 or i == n:
            stream.write(line + "\n")
        stream.flush()
    return show

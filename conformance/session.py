"""One conformance run, as the CLI and the pytest plugin both describe it: which implementation,
against which oracle (a fixture set, or live Keras), on which cases, with which deviations.

``Session.open(...)`` turns the user's options into those objects and says in one line what is
wrong when it cannot (``UsageError``); ``session.run()`` judges the selected cases, in worker
processes if asked (``judge_all``). Choosing a fixture set and the ``--cases quick`` selection live
here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from conformance.adapters import AdapterError, Implementation, load
from conformance.case import select
from conformance.deviations import Deviation, load_adopter_deviations, load_deviations, stale_deviations
from conformance.features import quick
from conformance.fixtures import FixtureError
from conformance.cases import all_cases
from conformance.judge import CaseResult, judge
from conformance.oracle.fixture import CANONICAL, FixtureOracle, SetNotFound, find_set
from conformance.oracle.live import KerasOracle

CASE_MODES = ("full", "quick")


class UsageError(Exception):
    """A user's mistake in the options: the message is one line that says what to do instead."""


@dataclass
class Session:
    impl: Implementation
    oracle: Any  # FixtureOracle or KerasOracle
    items: list  # the selected cases: recorded ones (fixtures) or matrix cases (live)
    deviations: list[Deviation]  # the project's and the adopter's
    adopter: list[Deviation]  # the adopter's own, from --deviations
    adopter_path: str | None
    mode: str  # "full" or "quick"
    full_matrix: bool  # no filter narrowed the cases

    @classmethod
    def open(cls, *, impl: str = "refimpl", oracle: str = "fixtures", set_name: str | None = None,
             cases: str = "full", layers: Iterable[str] | None = None, dtypes: Iterable[str] | None = None,
             ids: Iterable[str] | None = None, deviations: str | None = None) -> Session:
        if cases not in CASE_MODES:
            raise UsageError(f"--cases {cases}: expected one of {', '.join(CASE_MODES)}")
        source = open_oracle(oracle, set_name)
        try:
            chosen = select(source.items, layers=layers, dtypes=dtypes, ids=ids)
        except ValueError as e:
            raise UsageError(str(e)) from None
        full_matrix = {c.id for c in all_cases()} <= {c.id for c in chosen}
        if cases == "quick":  # among the cases the filters chose: --dtype float32 --cases quick covers float32
            keep = quick_ids(source, {c.id for c in chosen})
            chosen = [c for c in chosen if c.id in keep]
        if not chosen:
            raise UsageError("no case matches those filters (list them with `rnn-conformance list`)")
        try:
            implementation = load(impl)
            adopter = load_adopter_deviations(deviations) if deviations else []
        except (AdapterError, ValueError) as e:
            raise UsageError(str(e)) from None
        return cls(implementation, source, chosen, load_deviations() + adopter, adopter, deviations, cases,
                   full_matrix and cases == "full")

    def run(self, *, jobs: int = 1, progress: Callable[[int, int, CaseResult], None] | None = None
            ) -> list[CaseResult]:
        try:
            results = judge_all(self.oracle, self.items, self.impl, self.deviations, jobs=jobs, progress=progress)
        except AdapterError as e:  # the adapter breaks the contract (e.g. supports() answers False)
            raise UsageError(str(e)) from None
        for r in results:
            r.deviations_file = self.adopter_path
        return results

    def stale_project_deviations(self) -> list[Deviation]:
        """deviations.json entries for this oracle and implementation that match no case; empty
        unless the run covers the whole matrix (a filtered run proves nothing stale)."""
        if not self.full_matrix:
            return []
        return stale_deviations(self.items, self.oracle.name, self.impl.name,
                                [d for d in self.deviations if d not in self.adopter])

    def stale_adopter_entries(self) -> list[str]:
        """The adopter's entries that match no case; empty unless the run covers the whole matrix."""
        if not self.full_matrix:
            return []
        return [d.match[0] for d in stale_deviations(self.items, self.oracle.name, self.impl.name, self.adopter)]

    def header(self) -> list[str]:
        impl = " ".join(filter(None, (self.impl.name, self.impl.version)))
        lines = [f"oracle: {self.oracle.describe()}",
                 f"implementation under test: {impl} (--impl {self.impl.spec}); {len(self.items)} cases ({self.mode})"]
        if self.adopter_path:
            lines.append(f"{len(self.adopter)} deviations of the implementation from {self.adopter_path}")
        return lines


def open_oracle(kind: str, set_name: str | None = None) -> Any:
    """The oracle the options name: a fixture set (``kind="fixtures"``), or the installed Keras."""
    if kind == "keras":
        if set_name:
            raise UsageError("--set chooses a fixture set; it does not go with --oracle keras")
        return live_oracle()
    if kind != "fixtures":
        raise UsageError(f"--oracle {kind}: expected 'fixtures' or 'keras'")
    try:
        return FixtureOracle(find_set(set_name))
    except (SetNotFound, FixtureError) as e:
        raise UsageError(str(e)) from None


def live_oracle(package: str = "keras") -> Any:
    """The installed Keras as the oracle, or UsageError saying which extra installs it."""
    oracle = KerasOracle(package)
    try:
        oracle.versions()
    except ImportError as e:
        extra = "keras2" if package == "tf_keras" else "keras"
        raise UsageError(f"the live Keras oracle needs {package} ({e}): pip install "
                         f"'keras-rnn-conformance[{extra}]', or use the fixture oracle (the default)") from None
    return oracle


def quick_ids(oracle: Any, among: set[str] | None = None) -> set[str]:
    """The ``--cases quick`` selection: the fewest of the cases ``among`` (default: all) that still
    cover every layer x feature, layer x dtype and layer x activation pair they cover
    (``features.quick``); the live oracle reads features off the canonical set's recording."""
    def pick(items: list) -> set[str]:
        return {r.id for r in quick([r for r in items if among is None or r.id in among])}

    if isinstance(oracle, FixtureOracle):
        return pick(oracle.items)
    try:
        return pick(FixtureOracle(find_set(CANONICAL)).items)
    except (SetNotFound, FixtureError) as e:
        raise UsageError(f"--cases quick needs the canonical fixture set to read features off: {e}") from None


def set_dir_of(name: str) -> Path:
    """A set's directory for ``diff`` and ``fixtures check``, or UsageError listing the sets."""
    try:
        return find_set(name)
    except SetNotFound as e:
        raise UsageError(str(e)) from None


def run_live(case: Any, *, oracle: Any = None, impl: Implementation | None = None,
             deviations: list[Deviation] = ()) -> CaseResult:
    """One case (a matrix case, or any ``Case``: the fuzzer draws them) recorded by the live Keras
    oracle and judged."""
    oracle = oracle or KerasOracle()
    result = judge(oracle.record(case), impl or load("refimpl"), list(deviations), oracle)
    if case.id not in {c.id for c in all_cases()}:
        result.drawn = repr(case)
    return result


def judge_all(oracle: Any, items: list, impl: Implementation, deviations: list[Deviation], *, jobs: int = 1,
              progress: Callable[[int, int, CaseResult], None] | None = None) -> list[CaseResult]:
    """``oracle``'s items (matrix cases for the live oracle, recorded cases for a fixture set)
    through ``impl``, in this process or in ``jobs`` worker processes (same results, same order)."""
    if jobs > 1 and len(items) > 1:
        import concurrent.futures
        import multiprocessing

        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
            initargs=(oracle, [i.id for i in items], impl.spec, deviations))
        with pool:
            chunk = max(1, min(16, len(items) // (4 * jobs)))
            return _collect(pool.map(_worker_case, range(len(items)), chunksize=chunk), len(items), progress)
    return _collect((judge(oracle.recorded(i), impl, deviations, oracle) for i in items), len(items), progress)


def _collect(stream: Iterable[CaseResult], n: int, progress: Callable | None) -> list[CaseResult]:
    results = []
    for i, result in enumerate(stream, 1):
        results.append(result)
        if progress:
            progress(i, n, result)
    return results


_WORKER: dict = {}


def _worker_init(oracle: Any, ids: list[str], spec: str, deviations: list[Deviation]) -> None:
    by_id = {i.id: i for i in oracle.items}
    _WORKER.update(oracle=oracle, items=[by_id[i] for i in ids], impl=load(spec), deviations=deviations)


def _worker_case(index: int) -> CaseResult:
    w = _WORKER
    return judge(w["oracle"].recorded(w["items"][index]), w["impl"], w["deviations"], w["oracle"])

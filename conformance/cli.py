"""``rnn-conformance`` (also ``python -m conformance``): check an RNN implementation against Keras.

    rnn-conformance verify                      refimpl against the canonical fixture set (no TensorFlow)
    rnn-conformance verify --impl torch         another implementation: a built-in or package.module:name
    rnn-conformance verify --oracle keras       against the installed Keras, live
    rnn-conformance verify --layers LSTM --dtype float32 --cases quick -n auto --report r.json --html r.html
    rnn-conformance list [--features]           the case ids (and what each exercises)
    rnn-conformance generate [--out DIR]        write a fixture set from the installed Keras
    rnn-conformance generate --historical 0.2.0 --python VENV/bin/python   ... from Keras 0.2.0 / 1.2.2
    rnn-conformance fixtures check [SET ...]    verify fixture sets' schema and checksums
    rnn-conformance diff A B                    which numbers moved between two sets (or A --installed);
                                                A of Keras 0.2.0 / 1.2.2: its cases ported to B's Keras

A mistake in the options prints one line and exits with 2; a failing case exits with 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

from conformance import diff, drift, fixtures, report
from conformance.adapters import BUILTIN
from conformance.case import DTYPES, POLICIES, select
from conformance.cases import all_cases, mirror_ids
from conformance.cases_legacy import legacy_cases
from conformance.features import features
from conformance.oracle.fixture import (
    SHIPPED,
    FixtureOracle,
    shipped_root,
    shipped_sets,
)
from conformance.oracle.historical import RELEASES, HistoricalOracle
from conformance.session import (
    Session,
    UsageError,
    live_oracle,
    open_oracle,
    set_dir_of,
)

PROG = "rnn-conformance"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise UsageError(f"{message} (see {self.prog} --help)")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers", nargs="+", metavar="LAYER",
                   help="SimpleRNN LSTM GRU ConvLSTM2D ..., RNN(LSTMCell), StackedRNNCells, Bidirectional(GRU), "
                        "or a group: RNN, Bidirectional")
    p.add_argument("--dtype", nargs="+", metavar="DTYPE", help=" ".join(DTYPES + POLICIES) + " (a case's dtype or dtype policy)")
    p.add_argument("--case", action="append", metavar="ID", help="one case id (repeatable)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Check an RNN implementation against Keras, case by case.",
                epilog="examples:\n" + __doc__.split("\n\n")[1] + "\n\n" + __doc__.split("\n\n")[2],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    verify = sub.add_parser("verify", help="run cases through an implementation and compare with the oracle")
    _filters(verify)
    verify.add_argument("--oracle", choices=["fixtures", "keras"], default="fixtures",
                        help="recorded outputs (default; no TensorFlow needed) or the installed Keras")
    verify.add_argument("--impl", default="refimpl", metavar="IMPL",
                        help="the implementation under test: package.module:name or path/file.py:name (an "
                             "adapter, see docs/adapters.md) or a built-in: " + ", ".join(BUILTIN) + " (default refimpl)")
    verify.add_argument("--set", metavar="NAME_OR_DIR",
                        help="fixture set: a shipped set's name or a set's directory (default: the canonical one)")
    verify.add_argument("--cases", choices=["quick", "full"], default="full",
                        help="quick: the fewest cases that still cover every layer x feature, layer x dtype and "
                             "layer x activation pair")
    verify.add_argument("-n", "--jobs", default="1", metavar="N", help="worker processes (a number or 'auto')")
    verify.add_argument("--deviations", metavar="FILE.json",
                        help="the implementation's own known differences: {case id or glob: reason}, strict xfail")
    verify.add_argument("--report", metavar="OUT.json", help="write per-case results as JSON")
    verify.add_argument("--html", metavar="OUT.html", help="write a self-contained HTML report")
    verify.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    verify.add_argument("-v", "--verbose", action="store_true", help="failures show the full config as JSON")
    lst = sub.add_parser("list", help="print the case ids")
    _filters(lst)
    lst.add_argument("--features", action="store_true", help="also what each case exercises")
    gen = sub.add_parser("generate", help="write a fixture set from the installed Keras")
    _filters(gen)
    gen.add_argument("--out", metavar="DIR", help="default: fixtures/<keras>_<backend>_<device> in a checkout")
    gen.add_argument("--keras2", action="store_true", help="use tf-keras (Keras 2) as the oracle")
    gen.add_argument("--historical", choices=sorted(RELEASES.values()),
                     help="Keras 0.2.0 or 1.2.2 on Theano, run by --python (docs/history.md), on its own matrix")
    gen.add_argument("--python", metavar="PY", help="with --historical: the Python of that Keras's venv")
    fx = sub.add_parser("fixtures", help="fixture-set maintenance")
    fx_sub = fx.add_subparsers(dest="fixtures_command", required=True, parser_class=_Parser)
    chk = fx_sub.add_parser("check", help="verify schema and sha256 of fixture sets")
    chk.add_argument("sets", nargs="*", metavar="SET", help="set names or directories (default: every shipped set)")
    d = sub.add_parser("diff", help="compare two fixture sets case by case")
    d.add_argument("a", metavar="A", help="a fixture set (a shipped set's name or a directory)")
    d.add_argument("b", metavar="B", nargs="?", help="another set; or use --installed")
    d.add_argument("--installed", action="store_true", help="compare A with the installed Keras, live")
    d.add_argument("--top", type=_positive, default=10, help="how many moved cases to list (default 10)")
    return p


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except UsageError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `rnn-conformance list | head`
        sys.stderr.close()
        return 0


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    command = {"verify": _verify, "list": _list, "generate": _generate, "fixtures": _check_sets, "diff": _diff}
    return command[args.command](args)


def _cases(args: argparse.Namespace) -> list:
    try:
        cases = select(all_cases(), layers=args.layers, dtypes=args.dtype, ids=args.case)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not cases:
        raise UsageError("no case matches those filters")
    return cases


def _jobs(value: str) -> int:
    if value == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not value.isdigit() or int(value) < 1:
        raise UsageError(f"-n={value!r}, expected a positive number or 'auto'")
    return int(value)


# --- verify -----------------------------------------------------------------------------------------
def _writable(path: str | None, option: str) -> None:
    """A report path must be writable before a run that may take minutes starts."""
    if path is None:
        return
    folder = Path(path).resolve().parent
    if not folder.is_dir() or not os.access(folder, os.W_OK) or Path(path).is_dir():
        raise UsageError(f"{option} {path}: cannot write there (the folder {folder} must exist and be writable)")


def _verify(args: argparse.Namespace) -> int:
    jobs = _jobs(args.jobs)
    _writable(args.report, "--report")
    _writable(args.html, "--html")
    session = Session.open(impl=args.impl, oracle=args.oracle, set_name=args.set, cases=args.cases,
                           layers=args.layers, dtypes=args.dtype, ids=args.case, deviations=args.deviations)
    for line in session.header():
        print(line)
    start = time.perf_counter()
    results = session.run(jobs=jobs, progress=None if args.quiet else report.progress_printer())
    elapsed = time.perf_counter() - start
    bad = [r for r in results if not r.ok]
    for r in sorted(bad, key=lambda r: -(r.comparison.max_abs if r.comparison else float("inf")))[:20]:
        print(report.failure_text(r, verbose=args.verbose), end="\n\n")
    if len(bad) > 20:
        print(f"... and {len(bad) - 20} more failing cases (all of them: --report / --html)\n")
    print(report.feature_table(results), end="\n\n")
    print(report.dtype_table(results))
    for table in (report.failure_table(results), report.skip_table(results)):
        if table:
            print(table)
    print(f"({elapsed:.1f} s, {jobs} process{'es' if jobs > 1 else ''})")
    if session.impl.name == "refimpl":
        for d in session.stale_project_deviations():
            print(f"stale deviation entry (matches no case): {list(d.match)}")
    for line in report.stale_adopter_lines(session.adopter_path, session.stale_adopter_entries()):
        print(line)
    if args.report or args.html:
        oracle = session.oracle
        info = {"kind": oracle.kind, "name": oracle.name, "description": oracle.describe(),
                "set": getattr(oracle, "set_dir", None) and oracle.set_dir.name}
        doc = report.build(results, impl=session.impl, oracle=info, seconds=elapsed)
        if args.report:
            report.write_json(args.report, doc)
            print(f"wrote {args.report}")
        if args.html:
            report.write_html(args.html, doc)
            print(f"wrote {args.html}")
    if not any(r.status != "skip" for r in results):
        print(f"{PROG}: no case applied to {session.impl.name}: nothing was verified", file=sys.stderr)
        return 1
    return 0 if not bad else 1


# --- list, generate, fixtures check, diff -------------------------------------------------------------
def _list(args: argparse.Namespace) -> int:
    cases = _cases(args)
    if not args.features:
        for c in cases:
            print(c.id)
        return 0
    recorded = {r.id: r for r in open_oracle("fixtures").items}
    for c in cases:
        r = recorded.get(c.id)
        print(f"{c.id}\t{','.join(features(r)) if r else '(not in the canonical set)'}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    if args.historical:
        if not args.python or not Path(args.python).is_file():
            raise UsageError(f"--historical needs --python PY, the Python of a venv with Keras {args.historical} "
                             f"and Theano (got --python={args.python!r}; docs/history.md)")
        version = next(k for k, v in RELEASES.items() if v == args.historical)
        try:
            cases = select(legacy_cases(version), layers=args.layers, dtypes=args.dtype, ids=args.case)
        except ValueError as e:
            raise UsageError(str(e)) from None
        oracle = HistoricalOracle(version, args.python)
    else:
        if args.python:
            raise UsageError("--python goes with --historical")
        cases = _cases(args)
        if args.keras2:  # the float32 mirror is for Keras 3's deployments (conformance/cases.py)
            mirror = mirror_ids()
            cases = [c for c in cases if c.id not in mirror]
        oracle = live_oracle("tf_keras" if args.keras2 else "keras")
    v = oracle.versions()
    name = f"{v['package']}-{v['keras']}_{v['backend']}-{v.get(v['backend'], '')}_cpu".replace("-_", "_")
    if args.out:
        out = Path(args.out)
    elif shipped_root() == SHIPPED[-1] and SHIPPED[-1].is_dir():  # a checkout: next to the committed sets
        out = SHIPPED[-1] / name
    else:
        raise UsageError("generate needs --out DIR outside a checkout of the project")
    start = time.perf_counter()

    def counter(i: int, n: int) -> None:
        if i % (25 if args.historical else 100) == 0 or i == n:
            print(f"[{i}/{n}] generated", file=sys.stderr, flush=True)

    try:
        oracle.generate(out, cases, progress=counter)
    except OSError as e:
        raise UsageError(f"--out {out}: {e.strerror or e}") from None
    finally:
        if args.historical:  # its worker process and the temporary HOME holding keras.json
            oracle.close()
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    manifest = json.loads((out / "manifest.json").read_text())
    print(f"wrote {manifest['cases']} cases to {out} ({size / 1e6:.2f} MB, {time.perf_counter() - start:.1f} s); "
          f"{len(manifest['not_generated'])} not expressible with this oracle (listed in the manifest)")
    return 0


def _check_sets(args: argparse.Namespace) -> int:
    dirs = [set_dir_of(n) for n in args.sets] or shipped_sets()
    if not dirs:
        raise UsageError(f"no fixture sets found in {shipped_root()}; name a set's directory")
    bad = 0
    for d in dirs:
        try:
            manifest, cases = fixtures.load(d)
        except fixtures.FixtureError as e:
            print(f"FAIL {d}: {e}")
            bad += 1
            continue
        print(f"ok   {d}: {len(cases)} cases, {len(manifest['files'])} files, schema {manifest['schema']}")
    return 1 if bad else 0


def _diff(args: argparse.Namespace) -> int:
    a = open_oracle("fixtures", args.a)
    if bool(args.b) == args.installed:
        raise UsageError("diff compares two sets: give A and B, or A --installed")
    if args.installed:
        oracle = live_oracle("tf_keras" if a.major == 2 else "keras")
        ids = {r.id for r in a.items}
        with tempfile.TemporaryDirectory(prefix="rnn-conformance-") as tmp:
            b = FixtureOracle(oracle.generate(Path(tmp) / "installed", [c for c in all_cases() if c.id in ids]))
            _print_diff(a, b.items, args.top, b.describe())
            return 0
    b = open_oracle("fixtures", args.b)
    if a.major != b.major and a.major in (0, 1):  # an old checkpoint in a later Keras (conformance/drift.py)
        if b.major < a.major:
            raise UsageError(f"diff A B across versions goes forward in time: A is Keras {a.major}, B Keras {b.major}")
        ported = drift.ported(a.items, a.major, b.major)
        moves = _print_diff(a, ported, args.top, f"A's SimpleRNN/GRU/LSTM cases ported to Keras {b.major} "
                                                 f"(refimpl.legacy.port; run as refimpl keras_version={b.major})")
        print("\n" + "\n".join(drift.explain({m.id for m in moves}, a.items, a.major, b.major)))
        return 0
    _print_diff(a, b.items, args.top, b.describe())
    return 0


def _print_diff(a: FixtureOracle, b: list, top: int, b_name: str) -> list:
    moves, totals = diff.diff_sets(a.items, b)
    ids_b = {c.id for c in b}
    common = {r.id: r.family for r in a.items if r.id in ids_b}
    print(diff.render(moves, totals, a.describe(), b_name, top, common))
    return moves


if __name__ == "__main__":
    sys.exit(main())

"""``rnn-conformance`` (also ``python -m conformance``): check an RNN implementation against Keras.

    rnn-conformance verify                      refimpl against the canonical fixture set (no TensorFlow)
    rnn-conformance verify --impl torch         another implementation: a built-in or package.module:name
    rnn-conformance verify --oracle keras       against the installed Keras, live
    rnn-conformance verify --layers LSTM --dtype float32 --cases quick -n auto --report r.json --html r.html
    rnn-conformance list [--features]           the case ids (and what each exercises)
    rnn-conformance generate [--out DIR]        write a fixture set from the installed Keras
    rnn-conformance fixtures check [SET ...]    verify the committed sets' schema and checksums
    rnn-conformance diff A B                    which numbers moved between two sets (or --installed)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from conformance.cases import DTYPES, all_cases, select


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layers", nargs="+", metavar="LAYER",
                   help="SimpleRNN LSTM GRU ConvLSTM2D ..., RNN(LSTMCell), StackedRNNCells, Bidirectional(GRU)")
    p.add_argument("--dtype", nargs="+", choices=DTYPES)
    p.add_argument("--case", action="append", metavar="ID", help="one case id (repeatable)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnn-conformance", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="run cases through refimpl and compare with the oracle")
    _filters(verify)
    verify.add_argument("--oracle", choices=["fixtures", "keras"], default="fixtures",
                        help="recorded outputs (default; no TensorFlow needed) or the installed Keras")
    verify.add_argument("--impl", default="refimpl", metavar="IMPL",
                        help="the implementation under test: package.module:name (an adapter, see "
                             "docs/adapters.md) or a built-in: " + ", ".join(_builtin()) + " (default refimpl)")
    verify.add_argument("--set", metavar="NAME", help="fixture set: a name under fixtures/ or a directory (default: the canonical one)")
    verify.add_argument("--cases", choices=["quick", "full"], default="full",
                        help="quick: the fewest cases that still cover every layer x feature and layer x dtype pair")
    verify.add_argument("-n", "--jobs", default="1", metavar="N", help="worker processes (a number or 'auto')")
    verify.add_argument("--deviations", metavar="FILE.json",
                        help="the implementation's own known differences: {case id or glob: reason}, strict xfail")
    verify.add_argument("--report", metavar="OUT.json", help="write per-case results as JSON")
    verify.add_argument("--html", metavar="OUT.html", help="write a self-contained HTML report")
    verify.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    lst = sub.add_parser("list", help="print the case ids")
    _filters(lst)
    lst.add_argument("--features", action="store_true", help="also what each case exercises")
    gen = sub.add_parser("generate", help="write a fixture set from the installed Keras")
    _filters(gen)
    gen.add_argument("--out", metavar="DIR", help="default: fixtures/<keras>_<backend>_<device>")
    gen.add_argument("--keras2", action="store_true", help="use tf-keras (Keras 2) as the oracle")
    fx = sub.add_parser("fixtures", help="fixture-set maintenance")
    fx_sub = fx.add_subparsers(dest="fixtures_command", required=True)
    chk = fx_sub.add_parser("check", help="verify schema and sha256 of fixture sets")
    chk.add_argument("sets", nargs="*", metavar="SET", help="set directories (default: all under fixtures/)")
    diff = sub.add_parser("diff", help="compare two fixture sets case by case")
    diff.add_argument("a", metavar="A", help="a fixture set (directory or name under fixtures/)")
    diff.add_argument("b", metavar="B", nargs="?", help="another set; or use --installed")
    diff.add_argument("--installed", action="store_true", help="compare A with the installed Keras, live")
    diff.add_argument("--top", type=int, default=10, help="how many moved cases to list (default 10)")
    return p


def _builtin() -> list[str]:
    from conformance.adapters import BUILTIN

    return list(BUILTIN)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `rnn-conformance list | head`
        sys.stderr.close()
        return 0


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "fixtures":
        return _check_sets(args.sets)
    if args.command == "diff":
        from conformance.diff import main as diff_main

        return diff_main(args)
    try:
        cases = select(all_cases(), layers=args.layers, dtypes=args.dtype, ids=args.case)
    except ValueError as e:
        print(f"rnn-conformance: {e}", file=sys.stderr)
        return 2
    if not cases:
        print("rnn-conformance: no case matches those filters", file=sys.stderr)
        return 2
    if args.command == "list":
        return _list(args, cases)
    if args.command == "generate":
        return _generate(args, cases)
    return _verify(args, cases)


def _keras_or_exit() -> dict | None:
    try:
        from conformance.runners import keras_versions

        return keras_versions()
    except ImportError as e:
        print(f"rnn-conformance: the Keras oracle is not installed ({e}); install it with "
              "pip install 'keras-rnn-conformance[keras]', or use the fixture oracle", file=sys.stderr)
        return None


def _generate(args: argparse.Namespace, cases: list) -> int:
    from conformance import fixtures, runners

    if args.keras2:
        runners.PACKAGE = "tf_keras"
    versions = _keras_or_exit()
    if versions is None:
        return 2
    name = f"{versions['package']}-{versions['keras']}_{versions['backend']}-{versions.get(versions['backend'], '')}_cpu"
    out = Path(args.out) if args.out else fixtures.ROOT / name.replace("-_", "_")
    start = time.perf_counter()
    fixtures.generate(out, cases, progress=_counter("generated"))
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    manifest = json.loads((out / "manifest.json").read_text())
    print(f"wrote {manifest['cases']} cases to {out} ({size / 1e6:.2f} MB, {time.perf_counter() - start:.1f} s); "
          f"{len(manifest['not_generated'])} not expressible with this oracle (listed in the manifest)")
    return 0


def _check_sets(names: list[str]) -> int:
    from conformance import fixtures

    dirs = [Path(n) for n in names] or fixtures.sets()
    if not dirs:
        print("rnn-conformance: no fixture sets found", file=sys.stderr)
        return 2
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


def _list(args: argparse.Namespace, cases: list) -> int:
    if not args.features:
        for c in cases:
            print(c.id)
        return 0
    from conformance import fixtures
    from conformance.features import features

    recorded = {fc.id: fc for fc in fixtures.load(fixtures.ROOT / fixtures.CANONICAL)[1]}
    for c in cases:
        fc = recorded.get(c.id)
        print(f"{c.id}\t{','.join(features(fc)) if fc else '(not in the canonical set)'}")
    return 0


def _jobs(value: str) -> int:
    import os

    if value == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"-n={value!r}, expected a positive number or 'auto'")
    return int(value)


def _verify(args: argparse.Namespace, cases: list) -> int:
    import numpy as np

    from conformance import fixtures, report
    from conformance.adapters import AdapterError, load
    from conformance.features import quick
    from conformance.verify import (load_adopter_deviations, load_deviations, print_progress, replay_set,
                                    run_cases, stale_deviations, table)

    try:
        jobs = _jobs(args.jobs)
        impl = load(args.impl)
        deviations = load_deviations() + (load_adopter_deviations(args.deviations) if args.deviations else [])
    except (AdapterError, ValueError) as e:
        print(f"rnn-conformance: {e}", file=sys.stderr)
        return 2
    progress = None if args.quiet else print_progress()
    full = len(cases) == len(all_cases()) and args.cases == "full"
    if args.cases == "quick":
        canonical = fixtures.load(fixtures.ROOT / fixtures.CANONICAL)[1]
        keep = {fc.id for fc in quick(canonical)}
        cases = [c for c in cases if c.id in keep]
    start = time.perf_counter()
    if args.oracle == "keras":
        versions = _keras_or_exit()
        if versions is None:
            return 2
        oracle = fixtures.oracle_name({"oracle": versions})  # keras-tensorflow, tf-keras-tensorflow
        oracle_info = {"kind": "keras", "name": oracle, "set": None, "versions": versions}
        print("oracle: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + f"; numpy {np.__version__}")
        print(f"implementation under test: {impl.name} {impl.version}; {len(cases)} cases")
        results = run_cases(cases, oracle=oracle, impl=impl, deviations=deviations, jobs=jobs, progress=progress)
    else:
        named = Path(args.set) if args.set else None
        set_dir = named if named is not None and named.is_dir() else fixtures.ROOT / (args.set or fixtures.CANONICAL)
        try:
            manifest, recorded = fixtures.load(set_dir)
        except fixtures.FixtureError as e:
            print(f"rnn-conformance: {e}", file=sys.stderr)
            return 2
        wanted = {c.id for c in cases}
        recorded = [fc for fc in recorded if fc.id in wanted]
        oracle = fixtures.oracle_name(manifest)
        o = manifest["oracle"]
        oracle_info = {"kind": "fixtures", "name": oracle, "set": set_dir.name, "versions": o}
        print(f"oracle: fixture set {set_dir.name} (" + ", ".join(f"{k} {v}" for k, v in o.items())
              + f", {manifest['device']['cpu']}); numpy {np.__version__}")
        print(f"implementation under test: {impl.name} {impl.version}; {len(recorded)} recorded cases")
        results = replay_set(set_dir, recorded, oracle=oracle, keras_version=fixtures.keras_major(manifest),
                             impl=impl, deviations=deviations, jobs=jobs, progress=progress)
    elapsed = time.perf_counter() - start
    bad = [r for r in results if not r.ok]
    for r in sorted(bad, key=lambda r: -(r.comparison.max_abs if r.comparison else np.inf))[:20]:
        print(r.report(), end="\n\n")
    if len(bad) > 20:
        print(f"... and {len(bad) - 20} more failing cases (all of them: --report / --html)\n")
    print(report.feature_table(results), end="\n\n")
    print(table(results))
    skips = report.skip_table(results)
    if skips:
        print(skips)
    print(f"({elapsed:.1f} s, {jobs} process{'es' if jobs > 1 else ''})")
    if full and impl.name == "refimpl":
        for d in stale_deviations(cases, oracle, impl.name, deviations):
            print(f"stale deviation entry (matches no case): {list(d.match)}")
    if args.report or args.html:
        doc = report.build(results, impl=impl, oracle=oracle_info, seconds=elapsed)
        if args.report:
            report.write_json(args.report, doc)
            print(f"wrote {args.report}")
        if args.html:
            report.write_html(args.html, doc)
            print(f"wrote {args.html}")
    if not any(r.status != "skip" for r in results):
        print(f"rnn-conformance: no case applied to {impl.name}: nothing was verified", file=sys.stderr)
        return 1
    return 0 if not bad else 1


def _counter(what: str):
    def show(i: int, n: int) -> None:
        if i % 100 == 0 or i == n:
            print(f"[{i}/{n}] {what}", file=sys.stderr, flush=True)
    return show


if __name__ == "__main__":
    sys.exit(main())

"""``rnn-conformance`` (also ``python -m conformance``): check refimpl against Keras, live or recorded.

    rnn-conformance verify                      against the canonical fixture set (no TensorFlow needed)
    rnn-conformance verify --oracle keras       against the installed Keras, live
    rnn-conformance verify --layers LSTM --dtype float32 --case ID ...
    rnn-conformance list                        the case ids
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
    verify.add_argument("--impl", choices=["refimpl"], default="refimpl",
                        help="the implementation under test (refimpl is the one built in)")
    verify.add_argument("--set", metavar="NAME", help="fixture set under fixtures/ (default: the canonical one)")
    verify.add_argument("--report", metavar="OUT.json", help="write per-case results as JSON")
    verify.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    _filters(sub.add_parser("list", help="print the case ids"))
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
        for c in cases:
            print(c.id)
        return 0
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


def _verify(args: argparse.Namespace, cases: list) -> int:
    import numpy as np

    import refimpl
    from conformance.verify import (load_deviations, print_progress, replay_case, run_cases,
                                    stale_deviations, table)

    progress = None if args.quiet else print_progress()
    start = time.perf_counter()
    if args.oracle == "keras":
        versions = _keras_or_exit()
        if versions is None:
            return 2
        oracle = f"keras-{versions['backend']}"
        print("oracle: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + f"; numpy {np.__version__}")
        print(f"implementation under test: refimpl {refimpl.__version__}; {len(cases)} cases")
        results = run_cases(cases, oracle=oracle, progress=progress)
    else:
        from conformance import fixtures

        set_dir = fixtures.ROOT / (args.set or fixtures.CANONICAL)
        try:
            manifest, recorded = fixtures.load(set_dir)
        except fixtures.FixtureError as e:
            print(f"rnn-conformance: {e}", file=sys.stderr)
            return 2
        wanted = {c.id for c in cases}
        recorded = [fc for fc in recorded if fc.id in wanted]
        oracle = fixtures.oracle_name(manifest)
        o = manifest["oracle"]
        print(f"oracle: fixture set {set_dir.name} (" + ", ".join(f"{k} {v}" for k, v in o.items())
              + f", {manifest['device']['cpu']}); numpy {np.__version__}")
        print(f"implementation under test: refimpl {refimpl.__version__}; {len(recorded)} recorded cases")
        deviations, major = load_deviations(), fixtures.keras_major(manifest)
        results = []
        for i, fc in enumerate(recorded, 1):
            results.append(replay_case(fc, deviations, oracle, major))
            if progress:
                progress(i, len(recorded), results[-1])
    elapsed = time.perf_counter() - start
    for r in results:
        if not r.ok:
            print(r.report(), end="\n\n")
    print(table(results))
    print(f"({elapsed:.1f} s)")
    if len(cases) == len(all_cases()):
        for d in stale_deviations(cases, oracle):
            print(f"stale deviation entry (matches no case): {list(d.match)}")
    if args.report:
        with open(args.report, "w") as f:
            json.dump({"oracle": args.oracle, "cases": [_as_json(r) for r in results]}, f, indent=1)
        print(f"wrote {args.report}")
    return 0 if all(r.ok for r in results) else 1


def _counter(what: str):
    def show(i: int, n: int) -> None:
        if i % 100 == 0 or i == n:
            print(f"[{i}/{n}] {what}", file=sys.stderr, flush=True)
    return show


def _as_json(r) -> dict:
    from conformance.tolerances import tolerance_for
    from conformance.verify import rerun_command

    c = r.comparison
    return {"id": r.case.id, "layer": r.case.family, "dtype": r.case.dtype, "status": r.status,
            "tolerance": tolerance_for(r.case.dtype)._asdict(),
            "max_abs": None if c is None else c.max_abs, "max_rel": None if c is None else c.max_rel,
            "worst_index": None if c is None else c.worst, "message": (c.message if c else "") or r.error,
            "deviation": None if r.deviation is None else r.deviation.reason,
            "config": r.config, "seconds": round(r.seconds, 4), "rerun": rerun_command(r.case, r.oracle_kind)}


if __name__ == "__main__":
    sys.exit(main())

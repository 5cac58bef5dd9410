"""``rnn-conformance`` (also ``python -m conformance``): verify installed Keras against refimpl.

    rnn-conformance verify                 the whole matrix, a per-layer table, exit 1 on failure
    rnn-conformance verify --layers LSTM --dtype float32
    rnn-conformance verify --case 'LSTM(units=3)-float64-B3T5F4'
    rnn-conformance list [--layers ...]    the case ids
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from conformance.cases import DTYPES, all_cases, select


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnn-conformance", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, help_ in (("verify", "run cases through Keras and refimpl and compare"),
                        ("list", "print the case ids")):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--layers", nargs="+", metavar="LAYER",
                       help="SimpleRNN LSTM GRU, RNN(LSTMCell) ..., or StackedRNNCells")
        s.add_argument("--dtype", nargs="+", choices=DTYPES)
        s.add_argument("--case", action="append", metavar="ID", help="one case id (repeatable)")
    verify = sub.choices["verify"]
    verify.add_argument("--report", metavar="OUT.json", help="write per-case results as JSON")
    verify.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `rnn-conformance list | head`
        sys.stderr.close()
        return 0


def _main(argv: list[str] | None) -> int:
    args = _parser().parse_args(argv)
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
    return _verify(args, cases)


def _verify(args: argparse.Namespace, cases: list) -> int:
    from conformance.verify import print_progress, run_cases, stale_deviations, table

    try:
        from conformance.runners import keras_versions

        versions = keras_versions()
    except ImportError as e:
        print(f"rnn-conformance: the Keras oracle is not installed ({e}); "
              "install it with: pip install 'keras-rnn-conformance[keras]'", file=sys.stderr)
        return 2
    oracle = f"keras-{versions['backend']}"
    import numpy as np
    import refimpl

    print("oracle: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + f"; numpy {np.__version__}")
    print(f"implementation under test: refimpl {refimpl.__version__}; {len(cases)} cases")
    start = time.perf_counter()
    results = run_cases(cases, oracle=oracle, progress=None if args.quiet else print_progress())
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
            json.dump({"versions": versions, "cases": [_as_json(r) for r in results]}, f, indent=1)
        print(f"wrote {args.report}")
    return 0 if all(r.ok for r in results) else 1


def _as_json(r) -> dict:
    from conformance.tolerances import tolerance_for
    from conformance.verify import rerun_command

    c = r.comparison
    return {"id": r.case.id, "layer": r.case.family, "dtype": r.case.dtype, "status": r.status,
            "tolerance": tolerance_for(r.case.dtype)._asdict(),
            "max_abs": None if c is None else c.max_abs, "max_rel": None if c is None else c.max_rel,
            "worst_index": None if c is None else c.worst, "message": (c.message if c else "") or r.error,
            "deviation": None if r.deviation is None else r.deviation.reason,
            "config": r.config, "seconds": round(r.seconds, 4), "rerun": rerun_command(r.case)}


if __name__ == "__main__":
    sys.exit(main())

"""What a verify run produces: the layer x feature table, the skip reasons, and the JSON and HTML
reports (schema ``keras-rnn-conformance/report/1``, one entry per case)."""

from __future__ import annotations

import datetime
import json
import platform
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from conformance.features import FEATURES
from conformance.tolerances import tolerance_for

SCHEMA = "keras-rnn-conformance/report/1"
LAYER_ORDER = ("SimpleRNN", "LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "RNN(SimpleRNNCell)",
               "RNN(LSTMCell)", "RNN(GRUCell)", "StackedRNNCells", "Bidirectional(SimpleRNN)",
               "Bidirectional(LSTM)", "Bidirectional(GRU)", "Bidirectional(ConvLSTM2D)")
SHORT = {"defaults": "def", "return_sequences": "seq", "return_state": "state", "go_backwards": "back",
         "mask": "mask", "zero_output_for_mask": "zero", "initial_state": "init", "stateful": "stful",
         "dropout": "drop", "unroll": "unrol", "activation": "act", "recurrent_activation": "ract",
         "use_bias=False": "nobia", "unit_forget_bias=False": "noufb", "reset_after=False": "noraf",
         "conv_geometry": "conv", "channels_first": "chfst", "merge_mode": "merge", "backward_layer": "bwdl",
         "cells": "cells"}


def _layers(results: list) -> list[str]:
    names = {r.case.family for r in results}
    return [n for n in LAYER_ORDER if n in names] + sorted(names - set(LAYER_ORDER))


def feature_table(results: list) -> str:
    """Rows: layers; columns: features. A cell: N (all N cases agree or are known deviations),
    kF (k failing), s (all skipped), N/M (N of M agree, the rest skipped), '.' (no case)."""
    cells: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in results:
        for f in r.features:
            cells[r.case.family, f][_bucket(r.status)] += 1
    feats = [f for f in FEATURES if any(f == k[1] for k in cells)]
    width = 6
    head = f"{'layer':<26}" + "".join(f"{SHORT.get(f, f)[:width - 1]:>{width}}" for f in feats)
    lines = [head, "-" * len(head)]
    for layer in _layers(results):
        row = f"{layer:<26}"
        for f in feats:
            c = cells.get((layer, f))
            row += f"{_cell(c):>{width}}"
        lines.append(row)
    legend = ", ".join(f"{SHORT.get(f, f)}={f}" for f in feats)
    lines.append("cells: N agree (known deviations included), kF failing, N/M with M-N skipped, s all skipped")
    lines.append(f"columns: {legend}")
    return "\n".join(lines)


def _bucket(status: str) -> str:
    return "ok" if status in ("pass", "xfail") else "skip" if status == "skip" else "bad"


def _cell(c: Counter | None) -> str:
    if not c:
        return "."
    if c["bad"]:
        return f"{c['bad']}F"
    if not c["ok"]:
        return "s"
    return f"{c['ok']}" if not c["skip"] else f"{c['ok']}/{c['ok'] + c['skip']}"


def skip_reasons(results: list) -> list[tuple[str, int, list[str]]]:
    """(reason, how many cases, which layers), most frequent first."""
    by: dict[str, list] = defaultdict(list)
    for r in results:
        if r.status == "skip":
            by[r.error].append(r.case.family)
    return sorted(((reason, len(fams), sorted(set(fams))) for reason, fams in by.items()), key=lambda t: -t[1])


def skip_table(results: list) -> str:
    rows = skip_reasons(results)
    if not rows:
        return ""
    lines = [f"skipped ({sum(n for _, n, _ in rows)} cases; never counted as passed):"]
    for reason, n, layers in rows:
        shown = ", ".join(layers[:4]) + (f" +{len(layers) - 4}" if len(layers) > 4 else "")
        lines.append(f"  {n:>4}  {reason}  [{shown}]")
    return "\n".join(lines)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return str(x)
    return x


def case_entry(r: Any) -> dict:
    from conformance.verify import rerun_command

    c = r.comparison
    compared = c is not None and r.status != "skip"
    return _jsonable({
        "id": r.case.id, "layer": r.case.family, "dtype": r.case.dtype, "features": list(r.features),
        "status": r.status, "skip_reason": r.error if r.status == "skip" else None,
        "message": "" if r.status == "skip" else ((c.message if c else "") or r.error),
        "tolerance": tolerance_for(r.case.dtype)._asdict(),
        "max_abs": c.max_abs if compared else None, "max_rel": c.max_rel if compared else None,
        "worst_index": [c.worst[0], list(c.worst[1])] if compared and c.worst else None,
        "expected_value": c.expected_value if compared else None,
        "actual_value": c.actual_value if compared else None,
        "deviation": None if r.deviation is None else r.deviation.reason,
        "config": r.config, "seconds": round(r.seconds, 4),
        "rerun": rerun_command(r.case, r.oracle_kind, r.impl),
        "diagnosis": list(r.diagnosis), "error_over_time": r.error_over_time,
    })


def build(results: list, *, impl: Any, oracle: dict, seconds: float) -> dict:
    counts = Counter(r.status for r in results)
    return {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 2),
        "impl": {"name": impl.name, "version": impl.version, "spec": impl.spec},
        "oracle": oracle,
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "platform": platform.platform(), "cpu": _cpu()},
        "summary": {s: counts.get(s, 0) for s in ("pass", "fail", "error", "xfail", "xpass", "skip")},
        "features": [f for f in FEATURES if any(f in r.features for r in results)],
        "layers": _layers(results),
        "cases": [case_entry(r) for r in results],
    }


def _cpu() -> str:
    from conformance.fixtures import _device

    return _device()["cpu"]


def write_json(path: str, report: dict) -> None:
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")


def write_html(path: str, report: dict) -> None:
    from conformance.report_html import render_html

    with open(path, "w") as f:
        f.write(render_html(report))

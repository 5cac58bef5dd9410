"""Everything a run shows or writes: the failure blocks, the rerun line, the layer x feature and
per-dtype tables, the skip reasons, progress lines, and the JSON report (schema
``keras-rnn-conformance/report/1``; ``report_html.py`` renders it as a page).

Tables size every column from its content, so no cell runs into the next.
"""

from __future__ import annotations

import datetime
import inspect
import json
import platform
import re
import sys
from collections import Counter, defaultdict
from typing import Any, Callable, Sequence

import numpy as np

from conformance import configs
from conformance.case import DTYPES, ordered
from conformance.features import FEATURES, explicit_backward
from conformance.judge import STATUSES, CaseResult
from conformance.machine import cpu_name
from conformance.report_html import render_html
from refimpl.base import REGISTRY

SCHEMA = "keras-rnn-conformance/report/1"
SHORT = {"defaults": "def", "return_sequences": "seq", "return_state": "state", "go_backwards": "back",
         "mask": "mask", "zero_output_for_mask": "zero", "initial_state": "init", "stateful": "stful",
         "dropout": "drop", "unroll": "unrol", "activation": "act", "recurrent_activation": "ract",
         "use_bias=False": "nobia", "unit_forget_bias=False": "noufb", "reset_after=False": "noraf",
         "conv_geometry": "conv", "channels_first": "chfst", "merge_mode": "merge", "backward_layer": "bwdl",
         "cells": "cells", "dtype_policy": "dtpol", "consume_less": "cless", "depth": "depth"}


# --- one case -----------------------------------------------------------------------------------------
def failure_text(r: CaseResult, *, verbose: bool = False) -> str:
    """What a person needs to act on a failure: what differs, where, the config, a rerun line.
    The config is one compact line (arguments that differ from Keras's defaults); ``verbose``
    adds the full serialized config as JSON."""
    lines = [f"{r.status.upper()}: {r.case.id}"]
    if r.status == "xpass":
        lines.append(f"  listed as a known deviation but it now agrees: remove the entry "
                     f"({r.deviation.reason[:80]}...)")
    c = r.comparison
    if c is not None and not c.ok:
        lines.append(f"  {c.message}")
        if c.worst is not None:
            lines.append(f"  max abs err {c.max_abs:.3g}, max rel err {c.max_rel:.3g}")
    g = r.gradient_comparison
    if r.gradient in ("fail", "xpass", "xfail", "error"):
        lines.append(f"  the outputs agree; the gradients {'do not' if r.gradient in ('fail', 'error') else 'are a known deviation'}:")
        if g is not None and not g.ok:
            lines.append(f"  {g.message}")
        if r.gradient_error:
            lines.append(f"  {r.gradient_error}")
    if r.error:
        lines.append("  " + r.error.strip().replace("\n", "\n  "))
    if r.deviation is not None and r.status == "fail":
        lines.append(f"  known Keras deviation on this case: {r.deviation.reason}")
    for hint in r.diagnosis:
        lines.append(f"  likely cause: {hint}")
    if r.config is not None:
        lines.append(f"  config: {compact_config(r.config)}")
        if verbose:
            lines.append(f"  full config: {json.dumps(r.config, default=str)}")
    lines.append(f"  rerun: {rerun_command(r)}")
    return "\n".join(lines)


def rerun_command(r: CaseResult) -> str:
    """``rnn-conformance verify ... --case ID``, or a Python one-liner for a case outside the matrix."""
    if r.drawn is not None:
        code = ("from conformance.case import Case; from conformance.session import run_live; "
                f"from conformance.report import failure_text; print(failure_text(run_live({r.drawn})))")
        return f"python -c {_shell_quote(code)}"
    words = ["rnn-conformance", "verify"]
    if r.impl != "refimpl":
        words += ["--impl", _shell_word(r.impl)]
    if r.oracle_kind == "keras":
        words += ["--oracle", "keras"]
    if r.set_option:
        words += ["--set", _shell_word(r.set_option)]
    if r.deviations_file:
        words += ["--deviations", _shell_word(r.deviations_file)]
    return " ".join(words + ["--case", _shell_quote(r.case.id)])


def compact_config(serialized: dict, parent_dtype: str | None = None) -> str:
    """``GRU(units=6, return_sequences=True, dtype='float32')``: a serialized layer with only the
    arguments that differ from Keras's defaults (initializers, regularizers, constraints, names and
    seeds left out: they do not change the numbers of a recorded case)."""
    name, config = serialized.get("class_name", "?"), serialized.get("config", {})
    defaults = _keras_defaults(name)
    dtype = configs.policy_name(config.get("dtype"))
    parts = []
    for key, value in config.items():
        if key in ("name", "trainable", "seed", "dtype") or key.endswith(("_initializer", "_regularizer", "_constraint")):
            continue
        if key == "backward_layer" and not explicit_backward(config):  # Bidirectional's own copy
            continue
        if isinstance(value, dict) and "class_name" in value:
            parts.append(f"{key}={compact_config(value, dtype)}")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            parts.append(f"{key}=[{', '.join(compact_config(v, dtype) for v in value)}]")
        elif key not in defaults or not _same(defaults[key], value):
            parts.append(f"{key}={value!r}")
    if dtype is not None and dtype != parent_dtype:
        parts.append(f"dtype={dtype!r}")
    return f"{name}({', '.join(parts)})"


def _keras_defaults(class_name: str) -> dict[str, Any]:
    """Keras's constructor defaults for a layer class, read off refimpl's signatures (which
    tests/live checks against Keras's own)."""
    defaults: dict[str, Any] = {"time_major": False, "implementation": 2}  # Keras 2 writes these too
    for cls in reversed(getattr(REGISTRY.get(class_name), "__mro__", ())):  # a subclass's defaults win
        if "__init__" in vars(cls):
            defaults.update({k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
                             if p.default is not inspect.Parameter.empty})
    return defaults


def _same(default: Any, value: Any) -> bool:
    """A config value equals a constructor default: 1 == [1, 1] for per-axis tuples, and
    data_format None (Keras's image_data_format) == "channels_last"."""
    if default == value or (default is None and value == "channels_last"):
        return True
    if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, (list, tuple)):
        return all(v == default for v in value)
    return isinstance(default, tuple) and list(default) == value


def _shell_quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


def _shell_word(s: str) -> str:
    return s if re.fullmatch(r"[\w.:/=-]+", s) else _shell_quote(s)


# --- tables -------------------------------------------------------------------------------------------
def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, left: int = 1) -> list[str]:
    """Columns as wide as their widest entry plus one space; the first ``left`` columns left-aligned,
    the rest right-aligned. Returns the header, a rule and the rows."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [" ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for row in cells]
    rule = "-" * max(len(line) for line in lines)
    return [lines[0], rule, *lines[1:]]


def _bucket(status: str) -> str:
    return "ok" if status in ("pass", "xfail") else "skip" if status == "skip" else "bad"


def _cell(c: Counter | None) -> str:
    if not c:
        return "."
    if not c["ok"] and not c["bad"]:
        return "s"
    cell = (f"{c['ok']}+" if c["ok"] else "") + f"{c['bad']}F" if c["bad"] else f"{c['ok']}"
    return cell if not c["skip"] else f"{cell}/{c['ok'] + c['bad'] + c['skip']}"


def feature_table(results: list[CaseResult]) -> str:
    """Rows: layers; columns: features. A cell: N (N cases agree or are known deviations), N+kF
    (and k failing; kF when none agrees), .../M (of M, the rest skipped), s (all skipped), '.' (no case)."""
    cells: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for r in results:
        for f in r.features:
            cells[r.case.family, f][_bucket(r.status)] += 1
    feats = [f for f in FEATURES if any(f == k[1] for k in cells)]
    rows = [[layer] + [_cell(cells.get((layer, f))) for f in feats] for layer in ordered(r.case.family for r in results)]
    lines = text_table(["layer"] + [SHORT.get(f, f) for f in feats], rows)
    lines.append("cells: N agree (known deviations included), +kF k failing, /M of M (the rest skipped), s all skipped")
    lines.append("columns: " + ", ".join(f"{SHORT.get(f, f)}={f}" for f in feats))
    return "\n".join(lines)


def dtype_table(results: list[CaseResult]) -> str:
    """One row per layer and the dtype its cases compute in: counts by status and the worst
    absolute error (over every compared case except documented deviations), beside the tolerance."""
    rows: dict[tuple[str, str], dict] = {}
    for r in results:
        row = rows.setdefault((r.case.family, r.precision),
                              {"n": 0, "pass": 0, "xfail": 0, "skip": 0, "bad": 0, "worst": 0.0, "tol": r.tolerance,
                               "grad": None, "grad_tol": None})
        row["n"] += 1
        row[r.status if r.status in ("pass", "xfail", "skip") else "bad"] += 1
        if r.status in ("pass", "fail") and r.comparison is not None:
            row["worst"] = max(row["worst"], r.comparison.max_abs)
        if r.gradient in ("pass", "fail") and r.gradient_comparison is not None:
            row["grad"] = max(row["grad"] or 0.0, r.gradient_comparison.max_abs)
            row["grad_tol"] = r.gradient_tolerance
    order = {f: i for i, f in enumerate(ordered(f for f, _ in rows))}
    table = []
    for (family, dtype), row in sorted(rows.items(), key=lambda kv: (order[kv[0][0]], _dtype_rank(kv[0][1]))):
        tol, grad_tol = row["tol"], row["grad_tol"]
        table.append([family, dtype, row["n"], row["pass"], row["xfail"], row["skip"], row["bad"],
                      f"{row['worst']:.2e}", "" if tol is None else f"{tol.atol:g}/{tol.rtol:g}",
                      "-" if row["grad"] is None else f"{row['grad']:.2e}",
                      "" if grad_tol is None else f"{grad_tol.atol:g}/{grad_tol.rtol:g}"])
    lines = text_table(["layer", "dtype", "cases", "pass", "known", "skip", "FAIL", "max abs err", "atol/rtol",
                        "grad err", "atol/rtol"], table, left=2)
    total, bad = len(results), sum(not r.ok for r in results)
    known, skipped = sum(r.status == "xfail" for r in results), sum(r.status == "skip" for r in results)
    lines.append("-" * len(lines[1]))
    lines.append(f"{total} cases: {total - bad - known - skipped} agree, {known} known deviations, "
                 f"{skipped} skipped, {bad} failing")
    checked = Counter(r.gradient for r in results if r.gradient)
    if checked:
        lines.append(f"gradients: {checked['pass']} agree, {checked['xfail']} known deviations, {checked['skip']} "
                     f"skipped, {checked['fail'] + checked['error'] + checked['xpass']} failing (of the cases whose "
                     "outputs agree and whose gradients Keras recorded)")
    return "\n".join(lines)


def _dtype_rank(dtype: str) -> int:
    return DTYPES.index(dtype) if dtype in DTYPES else len(DTYPES)


def skip_reasons(results: list[CaseResult], *, gradients: bool = False) -> list[tuple[str, int, list[str]]]:
    """(reason, how many cases, which layers), most frequent first: of the skipped cases, or with
    ``gradients`` of the gradient checks skipped on cases whose outputs agree."""
    by: dict[str, list] = defaultdict(list)
    for r in results:
        if gradients and r.gradient == "skip":
            by[r.gradient_error].append(r.case.family)
        elif not gradients and r.status == "skip":
            by[r.error].append(r.case.family)
    return sorted(((reason, len(fams), sorted(set(fams))) for reason, fams in by.items()), key=lambda t: -t[1])


def skip_table(results: list[CaseResult]) -> str:
    lines = []
    for gradients, what in ((False, "cases"), (True, "gradient checks")):
        rows = skip_reasons(results, gradients=gradients)
        if rows:
            lines.append(f"skipped {what} ({sum(n for _, n, _ in rows)}; never counted as passed):")
            for reason, n, layers in rows:
                shown = ", ".join(layers[:4]) + (f" +{len(layers) - 4}" if len(layers) > 4 else "")
                lines.append(f"  {n:>4}  {reason}  [{shown}]")
    return "\n".join(lines)


def cause_of(r: CaseResult) -> str | None:
    """What a failing case has in common with others failing the same way: its likely cause, or
    its message without the case-specific parts (numbers, shapes, indices). None for cases that
    did not fail."""
    if r.ok:
        return None
    if r.status == "xpass" or r.gradient == "xpass":
        return "listed as a known deviation, but it agrees now: remove the entry"
    outputs_agree = r.comparison is not None and r.comparison.ok
    prefix = "gradients: " if outputs_agree and r.gradient in ("fail", "error") else ""
    if r.diagnosis:
        return prefix + "likely cause: " + "; ".join(r.diagnosis)
    if r.status == "error" or (prefix and r.gradient == "error"):
        text = next((line for line in (r.error or r.gradient_error).splitlines() if line.strip()), "raised")
        return prefix + _generic(text)
    c = r.gradient_comparison if prefix else r.comparison
    if c is not None and c.worst is None:  # count, shape or dtype
        return prefix + _generic(c.message)
    return prefix + "values differ beyond tolerance (no likely cause found)"


def _generic(text: str) -> str:
    """A message with its case-specific parts replaced: numbers by N, quoted names by '...'."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'...'", text.strip())
    text = re.sub(r"(?<![A-Za-z_])[-+]?\d+(\.\d+)?([eE][-+]?\d+)?", "N", text)
    return text[:240]


def failure_causes(results: list[CaseResult]) -> list[tuple[str, int, list[str]]]:
    """(cause, how many cases, which layers), most frequent first, of the cases that did not pass."""
    by: dict[str, list] = defaultdict(list)
    for r in results:
        cause = cause_of(r)
        if cause is not None:
            by[cause].append(r.case.family)
    return sorted(((cause, len(fams), sorted(set(fams))) for cause, fams in by.items()), key=lambda t: -t[1])


def failure_table(results: list[CaseResult]) -> str:
    """The failing cases grouped by cause, as the skip table groups skips by reason."""
    rows = failure_causes(results)
    if not rows:
        return ""
    lines = [f"failing cases by cause ({sum(n for _, n, _ in rows)}; each case's own lines above or in --report):"]
    for cause, n, layers in rows:
        shown = ", ".join(layers[:4]) + (f" +{len(layers) - 4}" if len(layers) > 4 else "")
        lines.append(f"  {n:>4}  {cause}  [{shown}]")
    return "\n".join(lines)


def stale_adopter_lines(path: str | None, entries: list[str]) -> list[str]:
    """What to say about the adopter's deviations that match no case of a full run."""
    return [f"{path}: {entry!r} matches no case of this run; remove it" for entry in entries]


def progress_printer(stream: Any = None) -> Callable[[int, int, CaseResult], None]:
    """Progress on stderr: a live counter on a terminal, a line every 50 cases otherwise."""
    stream = stream or sys.stderr
    tty = stream.isatty()
    failing = skipped = 0

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


# --- the JSON report ----------------------------------------------------------------------------------
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


def case_entry(r: CaseResult) -> dict:
    c = r.comparison
    compared = c is not None and r.status != "skip"
    return _jsonable({
        "id": r.case.id, "layer": r.case.family, "dtype": r.case.dtype, "features": list(r.features),
        "status": r.status, "skip_reason": r.error if r.status == "skip" else None, "cause": cause_of(r),
        "message": "" if r.status == "skip" else ((c.message if c else "") or r.error),
        "tolerance": None if r.tolerance is None else r.tolerance._asdict(),
        "max_abs": c.max_abs if compared else None, "max_rel": c.max_rel if compared else None,
        "worst_index": [c.worst[0], list(c.worst[1])] if compared and c.worst else None,
        "expected_value": c.expected_value if compared else None,
        "actual_value": c.actual_value if compared else None,
        "deviation": None if r.deviation is None else r.deviation.reason,
        "config": r.config, "seconds": round(r.seconds, 4), "rerun": rerun_command(r),
        "diagnosis": list(r.diagnosis), "error_over_time": r.error_over_time, "run_info": r.run_info,
        "gradient": {"status": r.gradient or None, "message": (r.gradient_comparison.message if r.gradient_comparison else "")
                     or r.gradient_error,
                     "max_abs": r.gradient_comparison.max_abs if r.gradient_comparison else None,
                     "tolerance": None if r.gradient_tolerance is None else r.gradient_tolerance._asdict()},
    })


def build(results: list[CaseResult], *, impl: Any, oracle: dict, seconds: float) -> dict:
    counts = Counter(r.status for r in results)
    return {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 2),
        "impl": {"name": impl.name, "version": impl.version, "spec": impl.spec},
        "oracle": oracle,
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "platform": platform.platform(), "cpu": cpu_name()},
        "summary": {s: counts.get(s, 0) for s in STATUSES},
        "gradient_summary": {s: sum(r.gradient == s for r in results) for s in STATUSES},
        "features": [f for f in FEATURES if any(f in r.features for r in results)],
        "layers": ordered(r.case.family for r in results),
        "cases": [case_entry(r) for r in results],
    }


def write_json(path: str, report: dict) -> None:
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")


def write_html(path: str, report: dict) -> None:
    with open(path, "w") as f:
        f.write(render_html(report))

"""A conformance run's JSON report (schema ``keras-rnn-conformance/report/1``) as one HTML page.

The page is self-contained: inline CSS, plots as base64 PNG data URIs, no scripts, no external
resources, so it can be attached to a CI run or mailed as it is. Sections, top to bottom: header
(implementation vs oracle, verdict, counts), layer x feature matrix, skip reasons, known
deviations, then one section per failing case (fail, error, xpass), worst first by ``max_abs``.

Plots need matplotlib, imported lazily; without it the page is rendered without them and says so.
Missing report fields are tolerated: ``layers`` and ``features`` default to their order of first
appearance in ``cases``, and ``summary`` to counts over ``cases``.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections import Counter, defaultdict
from html import escape
from typing import Any

from conformance.judge import OK_STATUSES, STATUSES

BAD = tuple(s for s in STATUSES if s not in OK_STATUSES)
MAX_PLOTS = 50  # each plot is ~30 kB of base64; 50 keeps a bad run's page under ~2 MB

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0;background:#f6f8fa}
main{max-width:1200px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 10px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
h3{font-size:14px;margin:0 0 8px;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:8px 10px;margin:6px 0}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 20px;margin:12px 0}
.head{display:flex;gap:24px;align-items:flex-start;justify-content:space-between}
.verdict{font-size:28px;font-weight:700;letter-spacing:1px;padding:6px 22px;border-radius:8px;color:#fff}
.verdict.PASS{background:#1a7f37}.verdict.FAIL{background:#cf222e}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin-top:10px;color:#57606a}
.meta b{color:#1f2328;font-weight:600}
.chips{margin-top:12px}.chip{display:inline-block;padding:1px 9px;border-radius:10px;margin-right:6px;font-weight:600;font-size:13px}
.chip.zero{opacity:.35}
.s-pass{background:#dafbe1;color:#116329}.s-fail,.s-error,.s-xpass{background:#ffebe9;color:#a40e26}
.s-xfail{background:#ddf4ff;color:#0a3069}.s-skip{background:#eaeef2;color:#57606a}
table{border-collapse:collapse;background:#fff}td,th{padding:4px 10px;border:1px solid #d0d7de;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600;white-space:nowrap}
table.matrix td,table.matrix th{text-align:center;padding:3px 6px;font-size:12.5px;white-space:nowrap}
table.matrix th.f{writing-mode:vertical-rl;transform:rotate(180deg);font-weight:500;padding:6px 3px}
table.matrix th.l{text-align:right;font-weight:600}
td.c{font-variant-numeric:tabular-nums;min-width:34px}
td.green{background:#aceebb;color:#0b4d20}td.red{background:#ff8182;color:#5c0011;font-weight:700}
td.amber{background:#ffd8a0;color:#6b3d00}td.grey{background:#d8dee4;color:#57606a}td.none{background:#fff;color:#c0c6cc}
td.all{border-left:3px solid #8c959f}
sup{font-size:9px;margin-left:1px}
.legend span{display:inline-block;padding:0 8px;margin-right:8px;border-radius:4px;font-size:12px}
.diag{background:#fff8c5;border-left:4px solid #d4a72c;padding:8px 12px;margin:8px 0;border-radius:4px;font-weight:500}
.kv{color:#57606a;font-size:13px}.kv b{color:#1f2328}
.note{color:#57606a;font-style:italic}
img.plot{display:block;max-width:100%;margin-top:8px}
details summary{cursor:pointer;color:#0969da}
a{color:#0969da;text-decoration:none}
pre.cmd::before{content:"$ ";color:#8c959f;user-select:none}
"""


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global state, Agg renders the PNG
    except ImportError:
        Figure = None
    cases = report.get("cases", [])
    body = [_header(report, cases), _matrix(report, cases),
            _reasons(cases, ("fail", "error", "xpass"), "cause", "Failures by cause"),
            _reasons(cases, ("skip",), "skip_reason", "Skip reasons"),
            _reasons(cases, ("xfail",), "deviation", "Known deviations (expected failures)"),
            _run_info(cases), _failures(cases, Figure)]
    title = f"{_verdict(report, cases)}: {report.get('impl', {}).get('name', '?')} vs Keras"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head>\n<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
            ).encode("ascii", "xmlcharrefreplace").decode("ascii")  # ASCII: safe to write in any locale


def _tally(cases: list[dict], summary: dict | None = None) -> dict[str, int]:
    counted = summary or Counter(c.get("status") for c in cases)
    return {s: int(counted.get(s, 0)) for s in STATUSES}


def _verdict(report: dict, cases: list[dict]) -> str:
    counts = _tally(cases, report.get("summary"))
    return "FAIL" if any(counts[s] for s in BAD) else "PASS"


def _header(report: dict, cases: list[dict]) -> str:
    impl, oracle, env = report.get("impl", {}), report.get("oracle", {}), report.get("environment", {})
    versions = ", ".join(f"{k} {v}" for k, v in oracle.get("versions", {}).items())
    source = f"fixture set {oracle['set']}" if oracle.get("set") else f"live {oracle.get('kind', 'keras')}"
    rows = [("implementation", f"<b>{escape(str(impl.get('name', '?')))} {escape(str(impl.get('version', '')))}</b>"
             f" <span class=mono>--impl {escape(str(impl.get('spec', '')))}</span>"),
            ("oracle", f"<b>{escape(str(oracle.get('name', '?')))}</b> ({escape(source)}; {escape(versions)})"),
            ("environment", escape(", ".join(f"{k} {v}" for k, v in env.items()))),
            ("run", escape(f"{report.get('created', '?')}, {report.get('seconds') or 0:.1f} s, {len(cases)} cases")),
            ("gradients", escape(_gradient_tally(cases)))]
    meta = "".join(f"<span>{k}</span><span>{v}</span>" for k, v in rows)
    counts = _tally(cases, report.get("summary"))
    chips = "".join(f'<span class="chip s-{s}{"" if n else " zero"}">{n} {s}</span>' for s, n in counts.items())
    verdict = _verdict(report, cases)
    return (f'<div class="card head"><div><h1>Keras RNN conformance: {escape(str(impl.get("name", "?")))}</h1>'
            f'<div class="meta">{meta}</div><div class="chips">{chips}</div></div>'
            f'<div class="verdict {verdict}">{verdict}</div></div>')


def _gradient_tally(cases: list[dict]) -> str:
    """The gradient checks, beside the outputs': how many agree, differ, were skipped."""
    n = Counter((c.get("gradient") or {}).get("status") for c in cases)
    if not any(n[s] for s in STATUSES):
        return "not checked (no gradients recorded in this oracle)"
    return (f"{n['pass']} agree, {n['xfail']} known deviations, {n['skip']} skipped, "
            f"{n['fail'] + n['error'] + n['xpass']} failing (of the cases whose outputs agree)")


def _order(given: list[str] | None, found: list[str]) -> list[str]:
    """The report's order, then anything the cases name that it left out, in order of appearance."""
    return list(dict.fromkeys([*(given or []), *found]))


def _cell(cases: list[dict], where: str, extra: str = "") -> str:
    if not cases:
        return f'<td class="c none{extra}" title="{escape(where)}: no cases">·</td>'
    n = _tally(cases)
    ok, run = n["pass"] + n["xfail"], len(cases) - n["skip"]
    colour = ("red" if any(n[s] for s in BAD) else "grey" if not run
              else "amber" if n["skip"] else "green")
    tip = f"{where}: " + ", ".join(f"{v} {s}" for s, v in n.items() if v)
    mark = f'<sup title="{n["xfail"]} expected failure(s)">x</sup>' if n["xfail"] else ""
    return f'<td class="c {colour}{extra}" title="{escape(tip)}">{ok}/{len(cases)}{mark}</td>'


def _matrix(report: dict, cases: list[dict]) -> str:
    layers = _order(report.get("layers"), [c.get("layer", "?") for c in cases])
    features = _order(report.get("features"), [f for c in cases for f in c.get("features", [])])
    by_layer = defaultdict(list)
    for c in cases:
        by_layer[c.get("layer", "?")].append(c)
    head = '<tr><th></th><th class="f">all</th>' + "".join(f'<th class="f">{escape(f)}</th>' for f in features)
    rows = [head + "</tr>"]
    for layer in layers:
        mine = by_layer[layer]
        cells = [_cell(mine, f"{layer}, all cases", " all")]
        cells += [_cell([c for c in mine if f in c.get("features", [])], f"{layer} × {f}") for f in features]
        rows.append(f'<tr><th class="l">{escape(layer)}</th>{"".join(cells)}</tr>')
    legend = ('<p class="legend">cell = passing/total (x = some passes are expected failures); '
              '<span class="s-pass">all pass</span><span class="s-fail">fail, error or xpass</span>'
              '<span style="background:#ffd8a0">some skipped</span><span class="s-skip">all skipped</span>'
              'hover a cell for its counts</p>')
    return f'<h2>Layers × features</h2><table class="matrix">{"".join(rows)}</table>{legend}'


def _reasons(cases: list[dict], statuses: tuple[str, ...], key: str, title: str) -> str:
    groups: dict[str, Counter] = defaultdict(Counter)
    for c in cases:
        if c.get("status") in statuses:
            groups[c.get(key) or "(no reason given)"][c.get("layer", "?")] += 1
    if not groups:
        return ""
    rows = "".join(f"<tr><td>{escape(reason)}</td><td class=c>{sum(layers.values())}</td>"
                   f"<td>{escape(', '.join(f'{l} ({n})' for l, n in layers.most_common()))}</td></tr>"
                   for reason, layers in sorted(groups.items(), key=lambda kv: -sum(kv[1].values())))
    return f"<h2>{title}</h2><table><tr><th>reason</th><th>cases</th><th>layers</th></tr>{rows}</table>"


def _run_info(cases: list[dict]) -> str:
    """What the adapter said about how it ran each case (its run_info: e.g. the ONNX graph fused
    the LSTM or looped), per value: how many cases, agreeing or not, and of which layers."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in cases:
        for key, value in (c.get("run_info") or {}).items():
            if len(str(value)) <= 80:  # the short facts; long ones (every op) stay in the JSON
                groups[(key, str(value))].append(c)
    if not groups:
        return ""
    rows = []
    for (key, value), members in sorted(groups.items()):
        statuses = Counter(c.get("status") for c in members)
        layers = Counter(c.get("layer", "?") for c in members)
        rows.append(f"<tr><td>{escape(key)}</td><td>{escape(value)}</td><td class=c>{len(members)}</td>"
                    f"<td>{escape(', '.join(f'{s} {n}' for s, n in statuses.most_common()))}</td>"
                    f"<td>{escape(', '.join(f'{l} ({n})' for l, n in layers.most_common()))}</td></tr>")
    return ("<h2>How the implementation ran the cases</h2><table><tr><th></th><th>value</th><th>cases</th>"
            f"<th>statuses</th><th>layers</th></tr>{''.join(rows)}</table>")


def _float(x: Any) -> float | None:
    """A number from the report, where non-finite floats may be written as "nan" or "inf"."""
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None


def _severity(case: dict) -> float:
    """Sort key, worst first: errors (no numbers to compare) lead, then fails by max_abs."""
    max_abs = _float(case.get("max_abs"))
    if max_abs is not None:  # a NaN output is as bad as an infinitely wrong one
        return math.inf if math.isnan(max_abs) else max_abs
    return math.inf if case.get("status") == "error" else -1.0


def _failures(cases: list[dict], Figure) -> str:
    bad = sorted((c for c in cases if c.get("status") in BAD), key=_severity, reverse=True)
    if not bad:
        return "<h2>Failing cases</h2><p>None.</p>"
    notes = []
    if Figure is None:
        notes.append("matplotlib is not installed, so the error-over-time plots are left out.")
    elif len(bad) > MAX_PLOTS:
        notes.append(f"Only the {MAX_PLOTS} worst cases are plotted; the other {len(bad) - MAX_PLOTS} "
                     "are shown without plots.")
    index = "".join(f'<tr><td><span class="chip s-{c["status"]}">{c["status"]}</span></td>'
                    f'<td class=mono><a href="#case-{i}">{escape(c.get("id", "?"))}</a></td>'
                    f'<td class=mono>{_num(c.get("max_abs"))}</td>'
                    f'<td class=mono>{escape((c.get("gradient") or {}).get("status") or "–")}</td>'
                    f'<td>{escape(_gist(c))}</td></tr>'
                    for i, c in enumerate(bad))
    sections = [_failure(i, c, Figure if i < MAX_PLOTS else None) for i, c in enumerate(bad)]
    return (f"<h2>Failing cases ({len(bad)}, worst first)</h2>"
            + "".join(f'<p class="note">{escape(n)}</p>' for n in notes)
            + f"<table><tr><th>status</th><th>case</th><th>max abs err</th><th>gradients</th><th>gist</th></tr>{index}</table>"
            + "".join(sections))


def _gist(c: dict) -> str:
    """One line for the index: the diagnosis if there is one, else the message's last line."""
    lines = (c.get("message") or "").strip().splitlines() or [""]
    text = c["diagnosis"][0] if c.get("diagnosis") else lines[-1]  # a traceback ends with the exception
    return text if len(text) <= 100 else text[:99] + "…"


def _num(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}g}" if isinstance(x, (int, float)) else escape(str(x))


def _failure(i: int, c: dict, Figure) -> str:
    tol = c.get("tolerance") or {}
    facts = [("tolerance", f"atol {_num(tol.get('atol'))}, rtol {_num(tol.get('rtol'))}"),
             ("max abs err", _num(c.get("max_abs"))) if c.get("max_abs") is not None else None,
             ("max rel err", _num(c.get("max_rel"))) if c.get("max_rel") is not None else None,
             ("worst element", escape(str(c.get("worst_index")))) if c.get("worst_index") is not None else None,
             ("expected / actual", f"{_num(c.get('expected_value'), 8)} / {_num(c.get('actual_value'), 8)}")
             if c.get("expected_value") is not None else None,
             ("dtype", escape(str(c.get("dtype", "?")))), ("time", f"{c.get('seconds') or 0:.3f} s")]
    kv = " · ".join(f"{k} <b>{v}</b>" for k, v in (f for f in facts if f))
    parts = [f'<div class="card" id="case-{i}"><h3><span class="chip s-{c["status"]}">{c["status"]}</span> '
             f'{escape(c.get("id", "?"))}</h3>', f'<div class="kv">{kv}</div>']
    parts += [f'<div class="diag"><b>Diagnosis:</b> {escape(d)}</div>' for d in c.get("diagnosis") or []]
    if c.get("message"):
        parts.append(f"<pre>{escape(c['message'])}</pre>")
    gradient = c.get("gradient") or {}
    if gradient.get("status") in BAD + ("xfail",):
        parts.append(f'<p class="kv">the outputs agree; gradients <b>{escape(gradient["status"])}</b>, '
                     f'max abs err <b>{_num(gradient.get("max_abs"))}</b></p><pre>{escape(gradient.get("message") or "")}</pre>')
    if c.get("deviation"):
        parts.append(f'<p class="kv">listed deviation: {escape(c["deviation"])}</p>')
    if c.get("rerun"):
        parts.append(f'<pre class="cmd">{escape(c["rerun"])}</pre>')
    if Figure is not None and c.get("error_over_time"):
        parts.append(f'<img class="plot" alt="error over time steps" src="data:image/png;base64,{_plot(c, Figure)}">')
    config = json.dumps(c.get("config", {}), indent=2, sort_keys=True, default=str)
    parts.append(f"<details><summary>layer config</summary><pre>{escape(config)}</pre></details></div>")
    return "".join(parts)


def _plot(c: dict, Figure) -> str:
    """Max abs error per time step, one line per sequence output; final states as stems beside."""
    seqs = [dict(s, steps=[_float(v) for v in s["steps"]]) for s in c["error_over_time"] if s.get("steps")]
    finals = [dict(s, max_abs=_float(s.get("max_abs"))) for s in c["error_over_time"] if not s.get("steps")]
    atol = _float((c.get("tolerance") or {}).get("atol"))
    values = [v for s in seqs for v in s["steps"]] + [s["max_abs"] for s in finals] + [atol]
    span = [v for v in values if v is not None and 0 < v < math.inf] or [1e-16, 1.0]  # NaN fails 0 < v
    lo, hi = min(span) / 30, max(span) * 4  # room below the atol line for its label and the 0 markers
    widths = [4, 0.6 + 0.5 * len(finals)] if seqs and finals else [1]
    fig = Figure(figsize=(8.6 if seqs else 1.8 + 0.8 * len(finals), 2.5), dpi=110, layout="constrained")
    axes = fig.subplots(1, len(widths), sharey=True, gridspec_kw={"width_ratios": widths}, squeeze=False)[0]
    for ax in axes:
        ax.set_yscale("log")
        ax.set_ylim(lo, hi)
        ax.grid(True, which="major", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
        if atol:  # green: within tolerance
            ax.axhspan(lo, atol, color="#1a7f37", alpha=0.07, lw=0)
            ax.axhline(atol, color="#1a7f37", ls="--", lw=1)
    axes[0].set_ylabel("max |actual − expected|", fontsize=9)
    if atol:
        axes[0].annotate(f"atol {atol:g}", (1, atol), xycoords=("axes fraction", "data"), xytext=(-3, -10),
                         textcoords="offset points", fontsize=8, color="#1a7f37", ha="right")
    for k, s in enumerate(seqs):
        t = range(len(s["steps"]))
        err = [v if v is not None and 0 < v < math.inf else math.nan for v in s["steps"]]  # (T,)
        axes[0].plot(t, err, marker="o", ms=4, lw=1.6, color=f"C{k}", label=s.get("label"))
        # a log scale shows neither an exact 0 nor a NaN/inf error: mark them at the bottom and top edge
        for marker, y, label, hit in (("v", 0.03, "exact 0", lambda v: v <= 0),
                                      ("^", 0.97, "NaN or inf", lambda v: not v < math.inf)):
            at = [i for i, v in zip(t, s["steps"]) if v is not None and hit(v)]
            axes[0].plot(at, [y] * len(at), marker, mfc="none", color=f"C{k}", ms=6, ls="none",
                         transform=axes[0].get_xaxis_transform(), label=label if at else None)
        axes[0].set_xlim(-0.3, max(len(s["steps"]) for s in seqs) - 0.7)
    if seqs:
        axes[0].set_xlabel("time step", fontsize=9)
        axes[0].xaxis.get_major_locator().set_params(integer=True)
        axes[0].legend(fontsize=8, frameon=False, loc="best")
    if finals:
        ax, x = axes[-1], range(len(finals))
        heights = [min(s["max_abs"] or math.nan, hi) for s in finals]  # inf drawn at the top
        ax.vlines(x, lo, heights, colors="#8c959f", lw=1.5)
        ax.scatter(x, heights, s=40, marker="D", zorder=3, clip_on=False, color=[f"C{len(seqs) + k}" for k in x])
        ax.set_xticks(x, [s.get("label", f"outputs[{s.get('output')}]").split(" (")[0].replace(" ", "\n")
                          for s in finals], fontsize=8)
        ax.set_xlim(-0.6, len(finals) - 0.4)
        ax.set_title("final states", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")

"""The HTML rendering of a conformance report (conformance/report_html.py); no Keras needed."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conformance import report_html
from conformance.report_html import render_html

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def case(id: str, layer: str, status: str, features: list[str], **fields) -> dict:
    return {"id": id, "layer": layer, "dtype": "float64", "features": features, "status": status,
            "skip_reason": None, "message": "", "tolerance": {"atol": 1e-12, "rtol": 1e-12},
            "max_abs": None, "max_rel": None, "worst_index": None, "expected_value": None,
            "actual_value": None, "deviation": None, "config": {"units": 3}, "seconds": 0.01,
            "rerun": f"rnn-conformance verify --impl torch --case '{id}'", "diagnosis": [],
            "error_over_time": None, **fields}


GATE_ORDER = "outputs match Keras when the GRU gate blocks are read as (r, z, h) instead of (z, r, h)"
FAILING = case("GRU(units=3, go_backwards=True)<x>-float64-B3T5F4", "GRU", "fail", ["go_backwards"],
               message="outputs[0][1, 2]=0.1, but should be 0.2 (abs err 0.1 > atol 1e-12)",
               max_abs=0.1, max_rel=0.5, worst_index=[0, [1, 2]], expected_value=0.2, actual_value=0.1,
               diagnosis=[GATE_ORDER],
               error_over_time=[{"output": 0, "label": "outputs[0] (B, T, units)",
                                 "steps": [0.0, 1e-9, 1e-5, 1e-3, 0.1], "max_abs": 0.1},
                                {"output": 1, "label": "outputs[1] h_T (B, units)", "steps": None, "max_abs": 0.1}])


def report(*, failing: bool) -> dict:
    cases = [
        case("LSTM(units=3)-float64-B3T5F4", "LSTM", "pass", ["defaults"]),
        case("LSTM(units=3, go_backwards=True)-float64-B3T5F4", "LSTM", "pass", ["go_backwards"]),
        case("LSTM(units=3, dropout=0.5)-float64-B3T5F4", "LSTM", "xfail", ["dropout"],
             deviation="Keras draws one dropout mask per batch"),
        case("LSTM(units=3, time_major=True)-float64-B3T5F4", "LSTM", "skip", ["time_major"],
             skip_reason="torch.nn.LSTM has no time_major option"),
        case("GRU(units=3)-float64-B3T5F4", "GRU", "pass", ["defaults"]),
        case("GRU(units=3, reset_after=False)-float64-B3T5F4", "GRU", "skip", ["reset_after"],
             skip_reason="torch.nn.GRU has only the reset-after form"),
        FAILING if failing else case("GRU(units=3, go_backwards=True)-float64-B3T5F4", "GRU", "pass", ["go_backwards"]),
    ]
    if failing:
        cases.append(case("GRU(units=3, unroll=True)-float64-B3T5F4", "GRU", "error", ["unroll"],
                          message="RuntimeError: <boom>"))
    summary = {s: sum(c["status"] == s for c in cases) for s in ("pass", "fail", "error", "xfail", "xpass", "skip")}
    return {"schema": "keras-rnn-conformance/report/1", "created": "2026-11-23T12:00:00Z", "seconds": 1.5,
            "impl": {"name": "torch.nn", "version": "2.13.0", "spec": "torch"},
            "oracle": {"kind": "fixtures", "name": "keras-tensorflow", "set": "keras-3.15.1_tensorflow-2.21.0_cpu",
                       "versions": {"keras": "3.15.1", "backend": "tensorflow"}},
            "environment": {"python": "3.11.7", "numpy": "2.4.6"}, "summary": summary,
            "features": ["defaults", "go_backwards", "dropout", "unroll", "reset_after", "time_major"],
            "layers": ["LSTM", "GRU"], "cases": cases}


def verdict(html: str) -> str:
    return re.search(r'<div class="verdict (\w+)">', html).group(1)


def test_page_is_self_contained():
    html = render_html(report(failing=True))
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html and "<link" not in html and "@import" not in html


def test_verdict_is_fail_when_a_case_fails():
    assert verdict(render_html(report(failing=True))) == "FAIL"


def test_verdict_is_pass_when_no_case_fails_errors_or_xpasses():
    assert verdict(render_html(report(failing=False))) == "PASS"


def test_verdict_is_fail_on_a_stale_deviation():
    r = report(failing=False)
    r["cases"][2]["status"] = "xpass"
    r["summary"].update(xfail=0, xpass=1)
    assert verdict(render_html(r)) == "FAIL"


def test_matrix_shows_passing_over_total_per_layer_and_feature():
    html = render_html(report(failing=True))
    assert re.search(r'<td class="c green"[^>]*title="LSTM &#215; defaults: 1 pass">1/1</td>', html)
    assert re.search(r'<td class="c red"[^>]*title="GRU &#215; go_backwards: 1 fail">0/1</td>', html)
    assert re.search(r'<td class="c grey"[^>]*title="GRU &#215; reset_after: 1 skip">0/1</td>', html)
    assert re.search(r'title="LSTM &#215; dropout: 1 xfail">1/1<sup', html)  # xfail counts as ok, marked


def test_skip_reasons_are_listed_with_their_layers():
    html = render_html(report(failing=True))
    assert "torch.nn.GRU has only the reset-after form</td><td class=c>1</td><td>GRU (1)" in html
    assert "torch.nn.LSTM has no time_major option" in html


def test_failing_case_shows_message_diagnosis_rerun_and_config():
    html = render_html(report(failing=True))
    assert "outputs[0][1, 2]=0.1, but should be 0.2" in html
    assert f'<div class="diag"><b>Diagnosis:</b> {GATE_ORDER}</div>' in html
    assert "rnn-conformance verify --impl torch --case &#x27;GRU(units=3, go_backwards=True)&lt;x&gt;" in html
    assert "<details><summary>layer config</summary>" in html


def test_text_from_the_report_is_escaped():
    html = render_html(report(failing=True))
    assert "GRU(units=3, go_backwards=True)&lt;x&gt;-float64" in html and "<x>" not in html
    assert "RuntimeError: &lt;boom&gt;" in html


def test_page_is_ascii_so_it_can_be_written_in_any_locale():
    render_html(report(failing=True)).encode("ascii")


def test_non_finite_errors_written_as_strings_are_plotted_and_sorted_first():
    r = report(failing=True)
    r["cases"].append(case("GRU(units=4)-float64-B3T5F4", "GRU", "fail", ["defaults"], max_abs="nan",
                           error_over_time=[{"output": 0, "label": "outputs[0] (B, T, units)",
                                             "steps": [1e-3, "nan", "inf"], "max_abs": "inf"},
                                            {"output": 1, "label": "outputs[1]", "steps": None, "max_abs": "nan"}]))
    html = render_html(r)
    assert re.findall(r'id="case-(\d+)"><h3>.*?</span> GRU\(units=4\)', html) == ["1"]  # after the error
    if importlib.util.find_spec("matplotlib"):
        assert html.count("data:image/png") == 2


def test_failing_cases_are_ordered_errors_first_then_by_max_abs():
    r = report(failing=True)
    r["cases"].append(case("GRU(units=5)-float64-B3T5F4", "GRU", "fail", ["defaults"], max_abs=0.5))
    cards = re.findall(r'<div class="card" id="case-\d+"><h3>.*?</span> (.*?)</h3>', render_html(r))
    assert cards == ["GRU(units=3, unroll=True)-float64-B3T5F4", "GRU(units=5)-float64-B3T5F4",
                     "GRU(units=3, go_backwards=True)&lt;x&gt;-float64-B3T5F4"]


def test_failing_case_has_an_error_over_time_plot():
    pytest.importorskip("matplotlib")
    html = render_html(report(failing=True))
    assert html.count('src="data:image/png;base64,') == 1  # the error case has no error_over_time


def test_page_without_matplotlib_has_no_plots_and_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import raise ImportError
    html = render_html(report(failing=True))
    assert "data:image/png" not in html and "matplotlib is not installed" in html


def test_layers_and_features_default_to_their_order_in_cases():
    r = report(failing=True)
    del r["layers"], r["features"], r["summary"]
    html = render_html(r)
    assert html.index('<th class="l">LSTM</th>') < html.index('<th class="l">GRU</th>')
    assert '<th class="f">time_major</th>' in html and verdict(html) == "FAIL"


def test_plots_beyond_the_cap_are_left_out_and_the_page_says_how_many(monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(report_html, "MAX_PLOTS", 0)
    html = render_html(report(failing=True))
    assert "data:image/png" not in html and "Only the 0 worst cases are plotted; the other 2 are shown without plots." in html


@pytest.mark.skipif(CHROMIUM is None, reason="chromium isn't installed, so the page can't be screenshotted")
def test_page_renders_to_a_screenshot_in_headless_chromium(tmp_path):
    page, shot = tmp_path / "report.html", tmp_path / "shot.png"
    page.write_text(render_html(report(failing=True)), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={profile}", "--window-size=1400,2000", f"--screenshot={shot}",
                        page.as_uri()], timeout=60, capture_output=True, check=False)
    assert shot.exists(), "chromium wrote no screenshot"
    assert shot.stat().st_size > 10_000, f"screenshot is {shot.stat().st_size} bytes: an empty page?"


"""The conformance suite as pytest tests, for an implementation under test (see pytest_plugin.py):

    RNN_CONFORMANCE_IMPL=mypkg.rnn_adapter:MyLSTM pytest --pyargs conformance -n auto
"""

from __future__ import annotations

import pytest

from conformance.judge import judge
from conformance.report import failure_text


def test_matches_keras(rnn_case, rnn_suite):
    __tracebackhide__ = True
    s = rnn_suite
    result = judge(rnn_case, s.impl, s.deviations, s.oracle)
    if result.status == "skip":
        pytest.skip(f"{s.impl.name}: {result.error}")
    if result.status == "xfail":
        pytest.xfail(result.deviation.reason)
    if not result.ok:  # fail, error, or xpass (a listed deviation that now agrees: strict)
        pytest.fail(failure_text(result), pytrace=False)

"""The README's Keras-doc examples give Keras's numbers: same weights, same outputs, same counts."""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np

from conformance.tolerances import tolerance_for

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)


def _run(snippet_containing: str) -> dict:
    code = next(s for s in SNIPPETS if snippet_containing in s)
    namespace: dict = {}
    exec(code, namespace)
    return namespace


def test_lstm1_example_matches_keras():
    ns = _run("refimpl.LSTM(1,")
    layer = keras.layers.LSTM(1, return_sequences=True, return_state=True, dtype="float64")
    layer.build(ns["x"].shape)
    layer.set_weights(ns["lstm"].get_weights())
    expected = [np.asarray(o) for o in layer(ns["x"])]
    tol = tolerance_for("float64")
    for name, e in zip(("sequence", "h", "c"), expected):
        np.testing.assert_allclose(ns[name], e, rtol=tol.rtol, atol=tol.atol, err_msg=name)


def test_lstm4_with_dense2_has_the_counts_the_readme_states():
    _run("refimpl.LSTM(4)")  # its own asserts: 128 and 138
    model = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4), keras.layers.Dense(2)])
    assert [layer.count_params() for layer in model.layers] == [128, 10]
    assert model.count_params() == 138

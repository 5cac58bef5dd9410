"""The case matrix is strong enough to fail a wrong implementation.

A case whose expected outputs do not depend on the layer's weights proves nothing: a port that
returns, say, zeros passes it. Here every output of every recorded case must move beyond its
tolerance when refimpl runs the case with perturbed weights. (refimpl stands in for "some other
implementation"; what is judged is the recorded Keras outputs, which are compared as the judge
compares them.) Mutation testing of refimpl against this suite is documented in docs/mutation.md.
"""

from __future__ import annotations

import numpy as np
import pytest

from conformance import configs
from conformance.adapters.refimpl_adapter import build, play
from conformance.compare import compare
from conformance.oracle.fixture import FixtureOracle, shipped_sets
from conformance.recorded import flatten
from conformance.tolerances import tolerance_for


def _perturbed(weights: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Each weight scaled by 1 + 0.2 N(0, 1) and shifted by 0.1 N(0, 1): far beyond every
    tolerance, small enough that no activation overflows (exponential, softplus)."""
    rng = np.random.default_rng(seed)
    out = []
    for w in weights:
        w64 = w.astype(np.float64)
        out.append((w64 * (1 + 0.2 * rng.standard_normal(w.shape)) + 0.1 * rng.standard_normal(w.shape)).astype(w.dtype))
    return out


def _cases():
    for set_dir in shipped_sets():
        oracle = FixtureOracle(set_dir)
        for item in oracle.items:
            yield pytest.param(oracle, item, id=f"{set_dir.name}::{item.id}")


@pytest.mark.parametrize("oracle, item", list(_cases()))
def test_every_recorded_output_depends_on_the_weights(oracle, item):
    rec = oracle.recorded(item)
    if rec.status != "ok":
        pytest.skip(f"Keras raised on this case ({rec.error.splitlines()[0][:80]}): it has no outputs")
    if rec.unreadable:
        pytest.skip(rec.unreadable)
    layer = build(rec.config, _perturbed(rec.weights, seed=0), oracle.major)
    actual = flatten(play(layer, rec.calls, training=rec.training, dropout_masks=rec.dropout_masks))
    tol = tolerance_for(configs.precision(rec.config, rec.dtype))
    unchanged = [k for k, (e, a) in enumerate(zip(rec.outputs, actual)) if compare([e], [a], tol).ok]
    assert not unchanged, (
        f"{item.id}: outputs {unchanged} of {len(actual)} still agree with Keras at {tol} after every "
        f"weight was perturbed, so any implementation passes them: change the case (mask, options) "
        f"so that its outputs depend on the weights")

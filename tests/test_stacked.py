"""StackedRNNCells beyond refimpl's own cells: the Keras cell protocol (any object with
``state_size`` and ``call``), direct calls, initial states given bare or in lists, building, dropout
masks per cell, and the backward pass. Keras-free: a stack is compared with its cells run one
after another, or chained as layers, so no cell math is restated. The rules checked (state nesting,
a stack's output size, a one-cell stack returning its cell's states unnested, which objects are
cells) are Keras 3.15.1's ``layers/rnn/stacked_rnn_cells.py``. Written to kill the mutants of
refimpl/stacked.py that the fixture replay let through (docs/mutation.md)."""

from __future__ import annotations

import numpy as np
import pytest

import refimpl
from conformance.tolerances import REARRANGED
from refimpl.cell import WeightGrads

RNG = np.random.default_rng(7)


def flat(out) -> list:
    return [y for x in out for y in flat(x)] if isinstance(out, (list, tuple)) else [out]


def same_nesting(a, b) -> bool:
    """Same list/array nesting (arrays compared only by position)."""
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b) \
            and all(same_nesting(x, y) for x, y in zip(a, b))
    return True


def assert_same(a, b):
    assert same_nesting(a, b), (a, b)
    for x, y in zip(flat(a), flat(b)):
        np.testing.assert_array_equal(x, y)


def _weights(layer, seed=0):
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape) for w in layer.get_weights()])


# --- user cells (Keras's cell protocol, no refimpl base class) -----------------------------------
class Plain:
    """int state_size; no output_size, get_initial_state, build, training flag."""
    state_size = 2

    def call(self, inputs, states):
        h = 0.5 * states[0] + np.tanh(inputs[:, :1] + inputs[:, -1:])
        return h, [h]


class Wide:
    """list state_size, output_size different from state_size[0]."""
    state_size = [4, 2]
    output_size = 3

    def call(self, inputs, states, training=False):
        s, t = states
        s = 0.5 * s + inputs.mean(axis=1, keepdims=True)
        t = t + 1
        return s[:, :3] * t[:, :1], [s, t]


class ListNoOutput:
    """list state_size [3, 5] without output_size: the output is state 0's size (Keras's rule)."""
    state_size = [3, 5]

    def call(self, inputs, states):
        a, b = states
        a = np.tanh(a + inputs.sum(axis=1, keepdims=True))
        return a, [a, b - 1]


class OwnInitialState:
    """A get_initial_state(batch_size=None) (no dtype argument) giving non-zero states."""
    state_size = 2
    output_size = 2

    def get_initial_state(self, batch_size=None):
        return [np.full((batch_size, 2), 0.25)]

    def call(self, inputs, states):
        h = states[0] * 0.9 + inputs[:, :1]
        return h, [h]


class Buildable:
    """built=False and a build(): the container builds it; it records what it was built for."""
    state_size = 2
    output_size = 2

    def __init__(self):
        self.built, self.built_for, self.scale = False, [], 1.0

    def build(self, input_shape):
        self.built_for.append(tuple(input_shape))
        self.scale = 2.0
        self.built = True

    def call(self, inputs, states):
        h = self.scale * inputs[:, :2] + states[0]
        return h, [h]


class BuildNoFlag:
    """A build() but no ``built`` attribute: neither RNN nor a stack builds it."""
    state_size = 2
    output_size = 2

    def __init__(self):
        self.scale = 1.0

    def build(self, input_shape):
        self.scale = 3.0

    def call(self, inputs, states):
        h = self.scale * inputs[:, :2] + states[0]
        return h, [h]


class BareReturn:
    """Returns its one state bare (not in a list), which RNN accepts."""
    state_size = 2

    def call(self, inputs, states):
        h = np.tanh(states[0] + inputs[:, :2])
        return h, h


@pytest.mark.parametrize("make", [
    lambda: [Plain(), refimpl.GRUCell(3)],
    lambda: [Wide(), refimpl.LSTMCell(2)],
    lambda: [ListNoOutput(), refimpl.SimpleRNNCell(2)],
    lambda: [OwnInitialState(), refimpl.GRUCell(2)],
    lambda: [refimpl.GRUCell(2), Buildable(), Plain()],
    lambda: [refimpl.LSTMCell(3), BuildNoFlag()],
    lambda: [refimpl.GRUCell(2), BareReturn()],
], ids=["plain", "wide", "list-no-output", "own-initial-state", "buildable", "build-no-flag", "bare-return"])
def test_stacks_of_user_cells_equal_chained_layers(make):
    """RNN([c1, c2, ...]) == RNN(c_n)(...RNN(c1)(x)), user cells included; each cell is built for
    the inputs it sees; the stack's output_size is the last cell's."""
    x = RNG.uniform(-1, 1, (3, 5, 4))
    cells, twins = make(), make()
    stacked = refimpl.RNN(cells, return_sequences=True)
    stacked.build(x.shape)
    chained = []
    inp = x.shape
    for c in twins:
        layer = refimpl.RNN(c, return_sequences=True)
        layer.build(inp)
        chained.append(layer)
        inp = layer.compute_output_shape(inp)
    refimpl_cells = [c for c in cells if isinstance(c, refimpl.base.Layer)]
    for c, t in zip(cells, twins):
        if isinstance(c, refimpl.base.Layer):
            _weights(t, seed=len(t.get_weights()))
            c.set_weights(t.get_weights())
            assert c.build_input_shape == t.build_input_shape
    assert refimpl_cells
    y = stacked(x)
    z = x
    for layer in chained:
        z = layer(z)
    np.testing.assert_allclose(y, z, rtol=0, atol=REARRANGED.atol)
    assert stacked.compute_output_shape(x.shape) == y.shape
    for c, t in zip(cells, twins):
        if isinstance(c, Buildable):
            assert c.built_for == t.built_for


def test_a_refimpl_cell_after_a_user_cell_gets_dropout_masks_for_its_own_inputs():
    x = RNG.uniform(-1, 1, (3, 5, 4))
    gru = refimpl.GRUCell(2, dropout=0.5)
    layer = refimpl.RNN([Wide(), gru], return_sequences=True)
    layer.build(x.shape)
    masks = refimpl.DropoutMasks(input=np.ones((3, 3)))  # Wide's output: 3 features
    twin = refimpl.RNN(refimpl.GRUCell(2, dropout=0.5), return_sequences=True)
    twin.build((3, 5, 3))
    twin.set_weights(layer.get_weights())
    np.testing.assert_allclose(layer(x, training=True, dropout_masks=[None, masks]),
                               twin(refimpl.RNN(Wide(), return_sequences=True)(x), training=True, dropout_masks=masks),
                               rtol=0, atol=REARRANGED.atol)
    with pytest.raises(ValueError):
        layer(x, training=True, dropout_masks=[masks, None])  # Wide takes no masks


def test_stack_get_initial_state_gives_each_cells_states_in_the_dtype_asked():
    cells = [refimpl.LSTMCell(3), refimpl.GRUCell(2), Plain(), ListNoOutput(), OwnInitialState()]
    stack = refimpl.StackedRNNCells(cells)
    for dtype in (None, "float16", "float64"):
        states = stack.get_initial_state(4) if dtype is None else stack.get_initial_state(4, dtype=dtype)
        want = np.dtype(dtype or "float32")
        expected = [cells[0].get_initial_state(4, dtype=want), cells[1].get_initial_state(4, dtype=want),
                    np.zeros((4, 2), want), [np.zeros((4, 3), want), np.zeros((4, 5), want)],
                    cells[4].get_initial_state(batch_size=4)]
        assert_same(states, expected)
        assert [s.dtype for s in flat(states[:4])] == [want] * 6
    layer = refimpl.RNN(cells)
    assert [s.dtype for s in flat(layer.get_initial_state(2, dtype="float16"))][:6] == [np.dtype("float16")] * 6


def test_stack_rejects_objects_that_are_not_cells():
    class NoCall:
        state_size = 2

    class NoStateSize:
        def call(self, x, states):
            return x, states

    for cells in ([], [NoCall()], [NoStateSize()], [refimpl.GRUCell(2), NoStateSize()]):
        with pytest.raises(ValueError):
            refimpl.StackedRNNCells(cells)


def test_stack_call_keeps_each_cells_state_nesting_and_equals_calling_the_cells_in_turn():
    """Keras's StackedRNNCells.call: a cell given a bare state gets one back, a list gets a list;
    a one-cell stack returns that cell's states unnested; training defaults to False."""
    x = RNG.uniform(-1, 1, (3, 4))
    cells = [refimpl.SimpleRNNCell(2, dropout=0.5), refimpl.GRUCell(3), refimpl.LSTMCell(2), Plain()]
    stack = refimpl.StackedRNNCells(cells)
    states = [RNG.uniform(-1, 1, (3, 2)), [RNG.uniform(-1, 1, (3, 3))],
              [RNG.uniform(-1, 1, (3, 2)), RNG.uniform(-1, 1, (3, 2))], [RNG.uniform(-1, 1, (3, 2))]]
    out, new = stack.call(x, states)
    h, expected = x, []
    for cell, s in zip(cells, states):
        h, s2 = cell.call(h, s)
        expected.append(s2)
    np.testing.assert_array_equal(out, h)
    assert_same(new, expected)
    for s in ([RNG.uniform(-1, 1, (3, 2))], RNG.uniform(-1, 1, (3, 2))):
        cell = refimpl.SimpleRNNCell(2, dropout=0.5)
        alone = refimpl.SimpleRNNCell(2, dropout=0.5)
        cell.build(x.shape)
        alone.build(x.shape)
        alone.set_weights(cell.get_weights())
        assert_same(refimpl.StackedRNNCells([cell]).call(x, [s]), alone.call(x, s))


def test_initial_state_may_give_a_cell_its_one_state_bare():
    """initial_state=[h1, [h2, c2]] (a bare state for a one-state cell) == [[h1], [h2, c2]]: outputs,
    states and gradients (the backward pass walks the same nesting)."""
    x = RNG.uniform(-1, 1, (3, 5, 4))
    mask = np.array([[1, 1, 0, 1, 1], [0, 1, 1, 1, 0], [1, 1, 1, 1, 1]], bool)
    layer = refimpl.RNN([refimpl.SimpleRNNCell(2), refimpl.LSTMCell(3), refimpl.GRUCell(2)],
                        return_sequences=True, return_state=True)
    layer.build(x.shape)
    _weights(layer)
    h1, h2, c2, h3 = (RNG.uniform(-1, 1, (3, n)) for n in (2, 3, 3, 2))
    bare, listed = [h1, [h2, c2], h3], [[h1], [h2, c2], [h3]]
    for m in (None, mask):
        a, b = layer(x, mask=m, initial_state=bare), layer(x, mask=m, initial_state=listed)
        for u, v in zip(flat(a), flat(b)):
            np.testing.assert_array_equal(u, v)
        cot = [RNG.uniform(-1, 1, np.shape(o)) for o in flat(a)]
        ga = refimpl.vjp(layer, x, [cot[0], cot[1], [cot[2], cot[3]], cot[4]], mask=m, initial_state=bare)
        gb = refimpl.vjp(layer, x, [cot[0], [cot[1]], [cot[2], cot[3]], [cot[4]]], mask=m, initial_state=listed)
        np.testing.assert_allclose(ga.inputs, gb.inputs, rtol=0, atol=REARRANGED.atol)
        for u, v in zip(ga.weights + flat(ga.initial_state), gb.weights + flat(gb.initial_state)):
            np.testing.assert_allclose(u, v, rtol=0, atol=REARRANGED.atol)
        assert same_nesting(ga.initial_state, bare)


def test_building_a_stack_marks_it_built_and_keeps_built_cells_weights():
    cell = refimpl.GRUCell(2)
    cell.build((3, 4))
    _weights(cell, seed=3)
    before = cell.get_weights()
    stack = refimpl.StackedRNNCells([cell, refimpl.SimpleRNNCell(3)])
    stack.build((3, 4))
    assert stack.built
    assert stack.count_params() == sum(w.size for w in stack.get_weights())
    for a, b in zip(cell.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    layer = refimpl.RNN([cell])
    layer.build((3, 5, 4))
    assert layer.cell.built
    for a, b in zip(cell.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_a_cell_used_in_a_stack_is_left_as_a_fresh_cell():
    """After a call, each cell of the stack has dropped its sequence's dropout masks, as a cell
    run alone does: calling it directly afterwards draws a fresh mask."""
    x = RNG.uniform(-1, 1, (3, 5, 4))
    a, b = refimpl.GRUCell(2, dropout=0.5, seed=1), refimpl.GRUCell(2, dropout=0.5, seed=1)
    stacked, alone = refimpl.RNN([a]), refimpl.RNN(b)
    stacked.build(x.shape)
    alone.build(x.shape)
    _weights(alone)
    stacked.set_weights(alone.get_weights())
    masks = refimpl.DropoutMasks(input=np.zeros((3, 4)))  # given: nothing drawn from the cells' generators
    np.testing.assert_allclose(stacked(x, training=True, dropout_masks=[masks]),
                               alone(x, training=True, dropout_masks=masks), rtol=0, atol=REARRANGED.atol)
    s = np.zeros((3, 2))
    assert_same(a.call(x[:, 0], [s], training=True), b.call(x[:, 0], [s], training=True))


def test_the_backward_pass_needs_refimpl_cells():
    stack = refimpl.StackedRNNCells([Plain()])
    with pytest.raises(NotImplementedError):
        stack.call(np.zeros((2, 3)), [np.zeros((2, 2))], tape=[])


def test_a_one_cell_stacks_backward_is_its_cells():
    x = RNG.uniform(-1, 1, (3, 4))
    cell, alone = refimpl.GRUCell(2, dropout=0.5, seed=2), refimpl.GRUCell(2, dropout=0.5, seed=2)
    cell.build(x.shape)
    alone.build(x.shape)
    alone.set_weights(cell.get_weights())
    stack = refimpl.StackedRNNCells([cell])
    s = np.zeros((3, 2))
    tape_s, tape_c = [], []
    stack.call(x, [[s]], tape=tape_s)
    alone.call(x, [s], tape=tape_c)
    d_h = RNG.uniform(-1, 1, (3, 2))
    g_s, g_c = {cell: WeightGrads(cell, x.dtype)}, {alone: WeightGrads(alone, x.dtype)}
    d_x_s, d_states_s = stack.call_vjp(tape_s[0], d_h, [[np.zeros((3, 2))]], g_s, training=False)
    d_x_c, d_states_c = alone.call_vjp(tape_c[0], d_h, [np.zeros((3, 2))], g_c, training=False)
    np.testing.assert_array_equal(d_x_s, d_x_c)
    assert_same(d_states_s, [d_states_c])

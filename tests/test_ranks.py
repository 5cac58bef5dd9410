"""Every layer and cell checks the rank of what it is given: inputs, masks, initial states and step
states of the wrong rank raise ValueError naming the shape it got and the one it expects; none
slips through to an IndexError deep inside, or to numbers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import refimpl

# name -> (a fresh layer, the rank of its inputs, the rank of each state, its state count)
LAYERS = {
    "SimpleRNN": (lambda: refimpl.SimpleRNN(2), 3, 2, 1),
    "LSTM": (lambda: refimpl.LSTM(2), 3, 2, 2),
    "GRU": (lambda: refimpl.GRU(2), 3, 2, 1),
    "ConvLSTM1D": (lambda: refimpl.ConvLSTM1D(2, 1), 4, 3, 2),
    "ConvLSTM2D": (lambda: refimpl.ConvLSTM2D(2, 1), 5, 4, 2),
    "ConvLSTM3D": (lambda: refimpl.ConvLSTM3D(2, 1), 6, 5, 2),
    "ConvLSTM2D(channels_first)": (lambda: refimpl.ConvLSTM2D(2, 1, data_format="channels_first"), 5, 4, 2),
    "RNN(LSTMCell)": (lambda: refimpl.RNN(refimpl.LSTMCell(2)), 3, 2, 2),
    "RNN([GRUCell, SimpleRNNCell])": (lambda: refimpl.RNN([refimpl.GRUCell(2), refimpl.SimpleRNNCell(2)]), 3, 2, 2),
    "Bidirectional(LSTM)": (lambda: refimpl.Bidirectional(refimpl.LSTM(2)), 3, 2, 4),
    "Bidirectional(ConvLSTM2D)": (lambda: refimpl.Bidirectional(refimpl.ConvLSTM2D(2, 1)), 5, 4, 4),
}
WRONG_RANKS = range(0, 8)


def _shape(rank: int, size: int = 2) -> tuple:
    return (size,) * rank


def _expect_value_error(call) -> str:
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert "shape=" in message and "expected" in message, message
    return message


@pytest.mark.parametrize("name, rank", [(n, r) for n, (_, good, _, _) in LAYERS.items() for r in WRONG_RANKS
                                        if r != good])
def test_inputs_of_the_wrong_rank_are_rejected_with_both_shapes(name, rank):
    make, good, _, _ = LAYERS[name]
    message = _expect_value_error(lambda: make()(np.zeros(_shape(rank))))
    assert f"rank {good}" in message, message


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("mask_shape", [(), (2,), (2, 2, 2), (2, 2, 1, 1), (3, 2), (2, 3)],
                         ids=lambda s: f"mask{s}")
def test_masks_of_the_wrong_shape_are_rejected(name, mask_shape):
    make, good, _, _ = LAYERS[name]
    x = np.zeros(_shape(good))  # batch 2, 2 steps
    _expect_value_error(lambda: make()(x, mask=np.ones(mask_shape, bool)))


MASK_FORMS = {"trailing axis of one": lambda m: m[..., None], "float": lambda m: m.astype(np.float32),
              "int": lambda m: m.astype(np.int64), "trailing axis, float": lambda m: m[..., None].astype(np.float64)}


@pytest.mark.parametrize("form", MASK_FORMS)
@pytest.mark.parametrize("make", [lambda: refimpl.GRU(2, return_sequences=True),
                                  lambda: refimpl.LSTM(2, return_state=True, zero_output_for_mask=True),
                                  lambda: refimpl.Bidirectional(refimpl.SimpleRNN(2, return_sequences=True))],
                         ids=["GRU", "LSTM", "Bidirectional"])
def test_a_mask_with_a_trailing_axis_of_one_or_of_numbers_is_the_boolean_mask_as_keras_does(make, form):
    """Keras 3 accepts a (batch, timesteps, 1) mask and 0/1 numbers (tests/live/test_keras_api.py)."""
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 4))
    mask = np.array([[1, 1, 0], [1, 0, 1]], bool)
    layer = make()
    want = layer(x, mask=mask)
    got = layer(x, mask=MASK_FORMS[form](mask))
    for a, b in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name, state_rank", [(n, r) for n, (_, _, good, _) in LAYERS.items()
                                              for r in WRONG_RANKS if r != good])
def test_initial_states_of_the_wrong_rank_are_rejected(name, state_rank):
    make, good, _, count = LAYERS[name]
    x = np.zeros(_shape(good))
    states = [np.zeros(_shape(state_rank)) for _ in range(count)]
    _expect_value_error(lambda: make()(x, initial_state=states))


@pytest.mark.parametrize("name", LAYERS)
def test_an_initial_state_with_the_wrong_number_of_arrays_is_rejected(name):
    make, good, state_rank, count = LAYERS[name]
    x = np.zeros(_shape(good))
    with pytest.raises(ValueError, match="initial_state"):
        make()(x, initial_state=[np.zeros(_shape(state_rank))] * (count + 1))


CELLS = {
    "SimpleRNNCell": (lambda: refimpl.SimpleRNNCell(2), 2, 1),
    "LSTMCell": (lambda: refimpl.LSTMCell(2), 2, 2),
    "GRUCell": (lambda: refimpl.GRUCell(2), 2, 1),
    "ConvLSTMCell(rank=2)": (lambda: refimpl.ConvLSTMCell(2, 2, 1), 4, 2),
}


@pytest.mark.parametrize("name, rank", [(n, r) for n, (_, good, _) in CELLS.items() for r in WRONG_RANKS if r != good])
def test_a_cell_rejects_a_step_input_of_the_wrong_rank(name, rank):
    make, good, count = CELLS[name]
    states = [np.zeros(_shape(good)[:-1] + (2,)) for _ in range(count)]
    _expect_value_error(lambda: make()(np.zeros(_shape(rank)), states))


@pytest.mark.parametrize("name, rank", [(n, r) for n, (_, good, _) in CELLS.items() for r in WRONG_RANKS if r != good])
def test_a_cell_rejects_states_of_the_wrong_rank(name, rank):
    make, good, count = CELLS[name]
    _expect_value_error(lambda: make()(np.zeros(_shape(good)), [np.zeros(_shape(rank)) for _ in range(count)]))


@pytest.mark.parametrize("name", ["SimpleRNN", "LSTM", "GRU", "ConvLSTM2D"])
def test_the_right_ranks_run(name):
    make, good, state_rank, count = LAYERS[name]
    out = make()(np.zeros(_shape(good)), mask=np.ones((2, 2), bool),
                 initial_state=[np.zeros(_shape(state_rank)) for _ in range(count)])
    assert np.shape(out)[0] == 2


@pytest.mark.parametrize("rank", [r for r in WRONG_RANKS if r != 2])
def test_a_stack_of_cells_rejects_a_step_input_of_the_wrong_rank(rank):
    stack = refimpl.StackedRNNCells([refimpl.GRUCell(2), refimpl.LSTMCell(2)])
    states = [[np.zeros((2, 2))], [np.zeros((2, 2)), np.zeros((2, 2))]]
    _expect_value_error(lambda: stack.call(np.zeros(_shape(rank)), states))


@pytest.mark.parametrize("rank", [r for r in WRONG_RANKS if r != 2])
def test_a_stack_of_cells_rejects_states_of_the_wrong_rank(rank):
    stack = refimpl.StackedRNNCells([refimpl.GRUCell(2), refimpl.LSTMCell(2)])
    states = [[np.zeros(_shape(rank))], [np.zeros(_shape(rank)), np.zeros(_shape(rank))]]
    _expect_value_error(lambda: stack.call(np.zeros((2, 2)), states))


def test_every_public_layer_and_cell_is_covered_here():
    covered = {n.split("(")[0] for n in itertools.chain(LAYERS, CELLS)} | {"StackedRNNCells"}  # the two tests above
    public = {n for n in refimpl.__all__ if isinstance(getattr(refimpl, n), type)
              and issubclass(getattr(refimpl, n), refimpl.base.Layer)}
    assert public <= covered, public - covered

"""A starting point for your own adapter: copy this file next to your code and fill in ``forward``.

    rnn-conformance verify --impl path/to/my_adapter.py:MyRNN --layers LSTM --cases quick

The harness calls ``run`` with a Keras config, Keras-ordered weights and NumPy inputs, and compares
what it returns with Keras's outputs. Everything Keras-specific you need to convert is in
docs/conventions.md (gate order, weight and bias layout, state order); ``torch_nn.py`` next to
this file is a complete worked example. docs/adapters.md walks through it. For a converter or a
runtime (export the Keras model, run the artifact), subclass ``exported.ExportedModel`` instead
(docs/adapters.md, "Converters and runtimes").
"""

from __future__ import annotations

import numpy as np


class MyRNN:
    name = "my-rnn"  # shown in reports and the pytest header
    version = "0.0.0"

    # Set to False (and say why in mask_reason) if your implementation takes no per-step masks.
    supports_masks = False
    mask_reason = "my-rnn has no per-step masks"

    def supports(self, config: dict) -> bool | str:
        """True, or a sentence saying why a case does not apply (reported as skipped)."""
        layer, c = config["class_name"], config["config"]
        if layer not in ("LSTM",):
            return f"my-rnn implements LSTM only, not {layer}"
        if c["activation"] != "tanh" or c["recurrent_activation"] != "sigmoid":
            return "my-rnn has fixed tanh/sigmoid activations"
        if c["go_backwards"] or c["stateful"]:
            return "my-rnn has no go_backwards / stateful mode"
        return True

    def run(self, config: dict, weights: list, inputs: np.ndarray, *, mask=None, initial_state=None) -> list:
        """Raise conformance.adapters.Decline("why") for a case you find you cannot express while
        running it (a mask pattern, a missing kernel): it is skipped with that reason."""
        c = config["config"]
        kernel, recurrent_kernel, *bias = weights  # Keras: (F, 4u), (u, 4u), [(4u,)]; gates i, f, c, o
        params = {"kernel": kernel, "recurrent_kernel": recurrent_kernel,
                  "bias": bias[0] if bias else np.zeros(kernel.shape[1], kernel.dtype)}
        # ... convert params to your layout here (docs/conventions.md) ...
        sequence, h, cell = self.forward(inputs, params, initial_state)  # (B, T, u), (B, u), (B, u)
        output = sequence if c["return_sequences"] else sequence[:, -1]
        return [output, h, cell] if c["return_state"] else [output]

    def forward(self, inputs: np.ndarray, params: dict, initial_state: list | None):
        """Call your implementation here; return (all outputs, last h, last c) as NumPy arrays in
        the inputs' dtype."""
        raise NotImplementedError("MyRNN.forward: call your implementation here (see docs/adapters.md)")

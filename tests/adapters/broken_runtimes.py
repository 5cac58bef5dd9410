"""A runtime adapter with a converter's mistake, for tests/runtimes: it must fail, and the
diagnosis must name the mistake."""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.adapters.onnx_runtime import OnnxRuntime


class SwappedGatesOnnx(OnnxRuntime):
    """A converter that writes ONNX's fused LSTM with the forget and cell gate blocks swapped (ONNX
    orders them i, o, f, c): every W, R and B of an ``LSTM`` node is rewritten before loading."""

    name = "onnxruntime-swapped-gates"

    def load(self, path: str) -> Any:
        from onnx import numpy_helper

        model = self.onnx.load(path)
        initializers = {t.name: t for t in model.graph.initializer}
        for node in model.graph.node:
            if node.op_type != "LSTM":
                continue
            for name in node.input[1:4]:  # W (dirs, 4H, in), R (dirs, 4H, H), B (dirs, 8H)
                if name in initializers:
                    w = numpy_helper.to_array(initializers[name])
                    initializers[name].CopyFrom(numpy_helper.from_array(_swap_f_c(w), name))
        self.onnx.save(model, path)
        return super().load(path)


def _swap_f_c(w: np.ndarray) -> np.ndarray:
    """Blocks f and c (the 3rd and 4th of i, o, f, c) swapped along axis 1, in each half of B."""
    halves = 2 if w.ndim == 2 else 1
    blocks = np.split(w, 4 * halves, axis=1)
    for h in range(halves):
        blocks[4 * h + 2], blocks[4 * h + 3] = blocks[4 * h + 3], blocks[4 * h + 2]
    return np.concatenate(blocks, axis=1)

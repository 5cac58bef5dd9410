"""``--impl onnxruntime``: the case's Keras model exported to ONNX, run by ONNX Runtime on the CPU.

The route Keras documents: ``model.export(path, format="onnx")`` on the TensorFlow backend (tf2onnx
converts the traced function), then ``onnxruntime.InferenceSession(path)``. The model around the
layer, masks, initial states and stateful streaming: conformance/adapters/exported.py.

Each case records which ONNX ops the graph holds (``run_info``, shown in the JSON and HTML
reports): ``fused`` names ONNX's own LSTM/GRU/RNN op where tf2onnx rewrote the loop into one,
else the loop construct (``Loop``, ``Scan``) that carries Keras's step function op by op.

``--impl onnxruntime-mask-input`` feeds masks as a bool model input instead of a Masking layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conformance.adapters import Decline
from conformance.adapters.exported import ExportedModel, clean

FUSED = ("LSTM", "GRU", "RNN")
LOOPS = ("Loop", "Scan")


class OnnxRuntime(ExportedModel):
    name = "onnxruntime"
    format = "onnx"
    suffix = ".onnx"

    def __init__(self, *, masks: str = "masking"):
        try:
            import onnx
            import onnxruntime
        except ImportError as e:
            raise ImportError(f"the onnxruntime adapter needs onnxruntime, onnx and tf2onnx ({e}): "
                              "pip install 'keras-rnn-conformance[onnxruntime]'") from None
        super().__init__(masks=masks)
        self.onnx, self.ort = onnx, onnxruntime
        self.version = f"onnxruntime {onnxruntime.__version__}, tf2onnx {self.tf2onnx_version()}, keras {self.keras.__version__}"

    def export(self, model: Any, path: str) -> None:
        self.export_onnx(model, path)

    def load(self, path: str) -> Any:
        options = self.ort.SessionOptions()
        options.log_severity_level = 4  # fatal only: a kernel error is raised to us and becomes the reason
        try:
            return self.ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # NOT_IMPLEMENTED: no CPU kernel for an op in this dtype
            message = str(e)
            if "NOT_IMPLEMENTED" in message or "Could not find an implementation" in message:
                raise Decline(f"ONNX Runtime's CPU provider has no kernel: {_kernel(message)}") from None
            raise

    def invoke(self, artifact: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        names = sorted(i.name for i in artifact.get_inputs())
        if names != sorted(feeds):
            raise RuntimeError(f"the ONNX graph takes the inputs {names}; the case feeds {sorted(feeds)}")
        return artifact.run(None, feeds)

    def describe(self, artifact: Any, path: str) -> dict:
        graph = self.onnx.load(path).graph
        ops = _ops(graph)
        fused = [op for op in FUSED if op in ops]
        loops = [op for op in LOOPS if op in ops]
        return {"onnx": ", ".join(fused) + " (fused)" if fused else ", ".join(loops) or "unrolled",
                "onnx ops": " ".join(sorted(ops))}


def _ops(graph: Any) -> set[str]:
    """Every op type in an ONNX graph, including the bodies of Loop/Scan/If."""
    ops = set()
    for node in graph.node:
        ops.add(node.op_type)
        for attribute in node.attribute:
            if attribute.g is not None and attribute.g.node:
                ops |= _ops(attribute.g)
    return ops


def _kernel(message: str) -> str:
    """ONNX Runtime's message reduced to the op and its types: 'Could not find an implementation
    for LSTM(14) node with name ...'."""
    for line in message.splitlines():
        if "Could not find an implementation" in line:
            return clean(line[line.index("Could not find"):].split(" node with name")[0])
    return clean(message.splitlines()[0])


class OnnxRuntimeMaskInput(OnnxRuntime):
    def __init__(self) -> None:
        super().__init__(masks="input")

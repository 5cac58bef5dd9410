"""``--impl litert``: the case's Keras model converted to LiteRT (TFLite), run by the LiteRT interpreter.

The route Keras documents: ``model.export(path, format="litert")`` on the TensorFlow backend (the
TFLite converter: TensorFlow's while loop of an LSTM becomes the fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` where the converter recognises it, otherwise a ``WHILE`` of
builtin ops; what has no builtin kernel would need TensorFlow's select ops, ``Flex*``), then
``ai_edge_litert.interpreter.Interpreter`` (the standalone runtime that replaces ``tf.lite``),
called through the model's serving signature. The model around the layer, masks, initial states
and stateful streaming: conformance/adapters/exported.py.

Each case records the ops of the converted graph (``run_info``): fused, ``WHILE``, or Flex.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from conformance.adapters import Decline
from conformance.adapters.exported import ExportedModel

FUSED = ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN",
         "BIDIRECTIONAL_SEQUENCE_RNN")


class LiteRT(ExportedModel):
    name = "litert"
    format = "litert"
    suffix = ".tflite"
    # As a TFLite model is deployed: for one batch size and length. With a dynamic length the
    # converter keeps Keras 3's TensorList loop as select ops (FlexTensorListReserve, ...).
    fixed_shapes = True

    def __init__(self, *, masks: str = "masking"):
        try:
            from ai_edge_litert import interpreter
        except ImportError as e:
            raise ImportError(f"the litert adapter needs ai-edge-litert ({e}): "
                              "pip install 'keras-rnn-conformance[litert]'") from None
        super().__init__(masks=masks)
        import ai_edge_litert
        import tensorflow as tf

        self.interpreter = interpreter
        self.version = (f"ai-edge-litert {getattr(ai_edge_litert, '__version__', '?')}, converter: tensorflow "
                        f"{tf.__version__}, keras {self.keras.__version__}")

    def export(self, model: Any, path: str) -> None:
        import tensorflow as tf

        # Builtin ops only: what the LiteRT interpreter runs. (Keras's default adds TensorFlow's
        # select ops, which need the Flex delegate of a full TensorFlow.)
        try:
            super().export(model, path, target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]})
        except Exception as e:
            select = re.search(r"TF Select ops: ([\w, ]+)", str(e))
            if select:
                # One reason per dtype (the op lists differ from case to case; a run groups by reason).
                raise Decline(f"the TFLite converter has no builtin kernels for some of this model's {_dtypes(str(e))} "
                              "ops: they would need TensorFlow's select ops (Flex)") from None
            raise

    def load(self, path: str) -> Any:
        interpreter = self.interpreter.Interpreter(model_path=path)
        ops = {op["op_name"] for op in interpreter._get_ops_details()}
        flex = sorted(op for op in ops if op.startswith("Flex") or op == "DELEGATE")
        if flex:
            raise Decline(f"the converted model needs TensorFlow select ops ({', '.join(flex)}), which the "
                          "LiteRT interpreter has no kernels for")
        return interpreter

    def invoke(self, artifact: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        runner = artifact.get_signature_runner()
        inputs = runner.get_input_details()
        if sorted(inputs) != sorted(feeds):
            raise RuntimeError(f"the LiteRT signature takes the inputs {sorted(inputs)}; the case feeds {sorted(feeds)}")
        outputs = runner(**feeds)
        return [np.array(outputs[name]) for name in sorted(outputs, key=_output_order)]

    def describe(self, artifact: Any, path: str) -> dict:
        ops = {op["op_name"] for op in artifact._get_ops_details()}
        fused = [op for op in FUSED if op in ops]
        return {"litert": ", ".join(fused) + " (fused)" if fused else ("WHILE" if "WHILE" in ops else "unrolled"),
                "litert ops": " ".join(sorted(ops))}


def _dtypes(message: str) -> str:
    """The tensor element types the converter's unsupported-op details mention ('f16', 'f64')."""
    found = sorted(set(re.findall(r"tensor<[^>]*x(f16|f32|f64|bf16)>", message)))
    return "/".join(found) or "this model"


def _output_order(name: str) -> tuple:
    """The signature's outputs ('output_0', 'output_1', ...) in the model's order."""
    tail = name.rsplit("_", 1)[-1]
    return (0, int(tail), name) if tail.isdigit() else (1, 0, name)


class LiteRTMaskInput(LiteRT):
    def __init__(self) -> None:
        super().__init__(masks="input")

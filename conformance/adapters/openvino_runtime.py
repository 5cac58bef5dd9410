"""``--impl openvino``: the case's Keras model exported to ONNX, read and run by OpenVINO on the CPU.

Two routes in, both documented: ``openvino`` exports ONNX (``model.export(path, format="onnx")``,
tf2onnx) and hands the file to ``openvino.Core().read_model``; ``openvino-keras-export`` uses
Keras's own ``model.export(path, format="openvino")``, which gives the traced TensorFlow function to
OpenVINO's TensorFlow frontend (``openvino.convert_model``) and writes the IR (.xml + .bin). The
second fails on every RNN that runs as a loop: the frontend has no conversion rule for the
TensorList ops of Keras 3's while loop (docs/runtimes.md), so the ONNX route is the default.
Either way ``Core().compile_model(model, "CPU")``. The model around the layer, masks, initial
states and stateful streaming: conformance/adapters/exported.py.

Precision: the CPU plugin's default ``INFERENCE_PRECISION_HINT`` is bf16 on CPUs with bfloat16
instructions (AVX-512 BF16, AMX), f32 elsewhere, whatever the model's dtype. ``--impl openvino``
asks for the case's own precision (f32, or f16 for float16 cases) and says so in each case's
``run_info``; it declines float64 cases (the plugin takes bf16, f16 and f32 only, and would run a
float64 model in f32). ``--impl openvino-default-precision`` keeps the plugin's default, as a model
deployed without the hint runs.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from conformance.adapters import Decline
from conformance.adapters.exported import ExportedModel, clean

HINTS = {"float16": "f16", "float32": "f32", "bfloat16": "bf16"}  # the CPU plugin's only precisions


class OpenVINO(ExportedModel):
    name = "openvino"
    format = "onnx"
    suffix = ".onnx"

    def __init__(self, *, masks: str = "masking", precision: str = "case", route: str = "onnx"):
        if precision not in ("case", "default"):
            raise ValueError(f"precision={precision!r}, expected 'case' or 'default'")
        if route not in ("onnx", "keras"):
            raise ValueError(f"route={route!r}, expected 'onnx' or 'keras'")
        try:
            import openvino
        except ImportError as e:
            raise ImportError(f"the openvino adapter needs openvino ({e}): "
                              "pip install 'keras-rnn-conformance[openvino]'") from None
        super().__init__(masks=masks)
        self.ov, self.core, self.precision, self.route = openvino, openvino.Core(), precision, route
        if precision == "default":
            self.name += "-default-precision"
        if route == "keras":
            self.name, self.format, self.suffix = self.name + "-keras-export", "openvino", ".xml"
        self.default_hint = _type(self.core.get_property("CPU", "INFERENCE_PRECISION_HINT"))
        self.version = (f"openvino {openvino.__version__.split('-')[0]} (CPU, default inference precision "
                        f"{self.default_hint}), keras {self.keras.__version__}")
        self._dtype = "float32"

    def keras_model(self, config: dict, weights: list, inputs: np.ndarray, **kwargs: Any) -> tuple[Any, list]:
        self._dtype = str(inputs.dtype)
        if self._dtype not in HINTS and self.precision == "case":
            raise Decline(f"OpenVINO's CPU plugin has no {self._dtype} inference precision "
                          "(INFERENCE_PRECISION_HINT takes bf16, f16, f32): it would run the model in f32")
        return super().keras_model(config, weights, inputs, **kwargs)

    def export(self, model: Any, path: str) -> None:
        if self.route == "onnx":
            self.export_onnx(model, path)
        else:
            try:
                super().export(model, path)
            except Exception as e:  # the TensorFlow frontend's conversion report
                if "OpConversionFailure" in str(e):
                    raise Decline(_frontend_failure(str(e))) from None
                raise

    def load(self, path: str) -> Any:
        try:
            model = self.core.read_model(path)
        except RuntimeError as e:
            raise Decline(_frontend_failure(str(e))) from None
        config = {} if self.precision == "default" else {"INFERENCE_PRECISION_HINT": HINTS[self._dtype]}
        return self.core.compile_model(model, "CPU", config)

    def invoke(self, artifact: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        by_name = {}
        for port in artifact.inputs:
            name = next((n for n in port.get_names() if n.split(":")[0] in feeds), None)
            if name is None:
                raise RuntimeError(f"the OpenVINO model's input {sorted(port.get_names())} is none of {sorted(feeds)}")
            by_name[port] = feeds[name.split(":")[0]]
        result = artifact.infer_new_request(by_name)
        return [np.array(result[port]) for port in artifact.outputs]

    def describe(self, artifact: Any, path: str) -> dict:
        ops = {op.get_type_name() for op in self.core.read_model(path).get_ops()}  # as converted, before the plugin's passes
        fused = sorted(ops & {"LSTMSequence", "GRUSequence", "RNNSequence", "LSTMCell", "GRUCell", "RNNCell"})
        loops = sorted(ops & {"TensorIterator", "Loop"})
        return {"openvino": ", ".join(fused) + " (fused)" if fused else ", ".join(loops) or "unrolled",
                "precision": _type(artifact.get_property("INFERENCE_PRECISION_HINT")), "openvino ops": " ".join(sorted(ops))}


def _type(element_type: Any) -> str:
    """An OpenVINO element type as its short name ('f32', 'bf16')."""
    return element_type.to_string() if hasattr(element_type, "to_string") else str(element_type)


def _frontend_failure(message: str) -> str:
    """OpenVINO's conversion report reduced to what failed: 'no conversion rule found for
    operations: TensorList', or the failed node's check, without its case-specific numbers."""
    lines = [line.strip().removeprefix("-- ") for line in message.splitlines() if line.strip()]
    rule = next((line for line in lines if line.startswith("No conversion rule found")), None)
    failed = next((line for line in lines if line.startswith("Conversion is failed for:")), "")
    where = next((m.group(1) for line in lines if (m := re.search(r"failed at (src/frontends/\S+/op/\S+?):?$", line))), "")
    check = next((line for line in lines if line.startswith("The provided")), "")
    check = re.sub(r"\(\d+\)", "(N)", check)
    what = rule or (f"{re.sub(r'-[0-9]+', '', failed)}: {check} ({where})" if failed else lines[-1] if lines else "?")
    return f"OpenVINO's frontend cannot convert the exported model: {clean(what)}"


class OpenVINODefaultPrecision(OpenVINO):
    def __init__(self) -> None:
        super().__init__(precision="default")


class OpenVINOKerasExport(OpenVINO):
    def __init__(self) -> None:
        super().__init__(route="keras")

"""When Keras 3 runs an LSTM or GRU on cuDNN, per backend: the rules and known differences as data.

Read from the Keras 3.15.1 source (``keras/src/layers/rnn/{lstm,gru,bidirectional}.py`` and
``keras/src/backend/{tensorflow,torch,jax}/rnn.py``); each rule cites the function it comes from.
Not yet confirmed on a GPU: ``conformance/gpu/run.py`` records which kernel actually ran
(``conformance/gpu/dispatch.py``) and compares it with ``expected_path``. docs/gpu.md has the prose.

How the fallback works: ``LSTM.inner_loop`` / ``GRU.inner_loop`` try ``backend.lstm`` /
``backend.gru`` when ``use_cudnn`` is "auto" or True and ``recurrent_dropout`` is 0; a backend that
cannot run the configuration raises ``NotImplementedError`` and the layer runs the generic loop
(``backend.rnn``), or raises ValueError when ``use_cudnn=True``. ``use_cudnn`` is not in
``get_config``, so a serialized config always means "auto". The paths a layer call can take:

    cudnn        the backend's cuDNN kernel
    fused-loop   a backend's own non-cuDNN loop (torch ``_fallback_lstm``/``_fallback_gru``,
                 JAX's ``gru`` lax.scan): same equations, other rounding
    generic      Keras's step loop over the cell (``backend.rnn``)

``eligible(config, backend=..., mask=...)`` says whether a layer config takes the cuDNN kernel on a
GPU (True) or why not (the first rule it fails, with its source); ``expected_path`` names the path.
Both assume a GPU that the backend sees; off a GPU every backend falls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from conformance import configs
from conformance.adapters.torch_nn import why_not

KERAS_VERSION = "3.15.1"
BACKENDS = ("tensorflow", "torch", "jax", "torch.nn")
CUDNN, FUSED_LOOP, GENERIC = "cudnn", "fused-loop", "generic"
FUSED_LAYERS = ("LSTM", "GRU")
TORCH_NN_LAYERS = ("SimpleRNN", "LSTM", "GRU")  # torch.nn.RNN(tanh/relu) has a cuDNN kernel too


@dataclass(frozen=True)
class Rule:
    """One condition of the cuDNN path: ``ok(cfg, mask, dtype)`` is True when the config meets it."""
    layers: tuple[str, ...]
    needs: str  # what the rule asks for, as a reason reads
    ok: Callable[[dict, Any, str], bool]
    fallback: str  # the path that runs when the rule fails
    source: str  # keras/src/...py:function (or the library's file) that makes the decision


def _tanh(cfg, mask, dtype):
    return cfg.get("activation", "tanh") == "tanh"


def _sigmoid(cfg, mask, dtype):
    return cfg.get("recurrent_activation", "sigmoid") == "sigmoid"


def _rolled(cfg, mask, dtype):
    return not cfg.get("unroll", False)


def _bias(cfg, mask, dtype):
    return cfg.get("use_bias", True)


def _reset_after(cfg, mask, dtype):
    return cfg.get("reset_after", True)


def _no_mask(cfg, mask, dtype):
    return mask is None


def right_padded(mask: Any) -> bool:
    """Each row is some True steps then only False steps, and no row is fully masked."""
    m = np.asarray(mask, bool)  # (B, T)
    lengths = m.sum(axis=1)  # (B,)
    return bool((lengths > 0).all() and (m == (np.arange(m.shape[1]) < lengths[:, None])).all())


def _right_padded_or_none(cfg, mask, dtype):
    return mask is None or right_padded(mask)


_LAYER = "keras/src/layers/rnn/{lstm,gru}.py:inner_loop"
# Checked by LSTM/GRU.inner_loop before any backend is asked.
LAYER_RULES = (
    Rule(FUSED_LAYERS, "use_cudnn='auto' or True", lambda c, m, d: c.get("use_cudnn", "auto") in ("auto", True),
         GENERIC, _LAYER),
    Rule(FUSED_LAYERS, "recurrent_dropout=0 (checked even at inference)",
         lambda c, m, d: not c.get("recurrent_dropout", 0.0), GENERIC, _LAYER),
)

_TF = "keras/src/backend/tensorflow/rnn.py"
_TORCH = "keras/src/backend/torch/rnn.py"
_JAX = "keras/src/backend/jax/rnn.py"
# Per backend, in the order its source checks them; the first failure decides the fallback.
BACKEND_RULES: dict[str, tuple[Rule, ...]] = {
    "tensorflow": (
        Rule(FUSED_LAYERS, "activation='tanh'", _tanh, GENERIC, f"{_TF}:cudnn_ok"),
        Rule(FUSED_LAYERS, "recurrent_activation='sigmoid'", _sigmoid, GENERIC, f"{_TF}:cudnn_ok"),
        Rule(FUSED_LAYERS, "unroll=False", _rolled, GENERIC, f"{_TF}:cudnn_ok"),
        Rule(FUSED_LAYERS, "use_bias=True", _bias, GENERIC, f"{_TF}:cudnn_ok"),
        Rule(("GRU",), "reset_after=True", _reset_after, GENERIC, f"{_TF}:_do_gru_arguments_support_cudnn"),
        # A mask that fails tf.Assert raises InvalidArgumentError, which lstm()/gru() turn into
        # NotImplementedError: eagerly the layer falls back; inside tf.function the assert fails
        # at run time instead (see KNOWN_DIFFERENCES).
        Rule(FUSED_LAYERS, "no mask, or a strictly right-padded mask with no fully masked row",
             _right_padded_or_none, GENERIC, f"{_TF}:_assert_valid_mask"),
    ),
    "torch": (
        Rule(("GRU",), "reset_after=True", _reset_after, GENERIC, f"{_TORCH}:gru"),
        Rule(FUSED_LAYERS, "no mask (any mask, right-padded or all True, goes to the generic loop)",
             _no_mask, GENERIC, f"{_TORCH}:lstm"),
        Rule(FUSED_LAYERS, "activation='tanh'", _tanh, FUSED_LOOP, f"{_TORCH}:cudnn_ok"),
        Rule(FUSED_LAYERS, "recurrent_activation='sigmoid'", _sigmoid, FUSED_LOOP, f"{_TORCH}:cudnn_ok"),
        Rule(FUSED_LAYERS, "unroll=False", _rolled, FUSED_LOOP, f"{_TORCH}:cudnn_ok"),
        Rule(FUSED_LAYERS, "use_bias=True", _bias, FUSED_LOOP, f"{_TORCH}:cudnn_ok"),
    ),
    "jax": (
        Rule(("GRU",), "reset_after=True", _reset_after, GENERIC, f"{_JAX}:gru"),
        Rule(("GRU",), "unroll=False", _rolled, GENERIC, f"{_JAX}:gru"),
        Rule(("GRU",), "no mask", _no_mask, GENERIC, f"{_JAX}:gru"),
        Rule(("GRU",), "to be an LSTM: JAX has no cuDNN GRU (jax.experimental.rnn has lstm only), "
             "so this GRU runs a lax.scan", lambda c, m, d: False, FUSED_LOOP, f"{_JAX}:gru"),
        Rule(("LSTM",), "no mask (any mask goes to the generic loop)", _no_mask, GENERIC, f"{_JAX}:lstm"),
        Rule(("LSTM",), "activation='tanh'", _tanh, GENERIC, f"{_JAX}:cudnn_ok"),
        Rule(("LSTM",), "recurrent_activation='sigmoid'", _sigmoid, GENERIC, f"{_JAX}:cudnn_ok"),
        Rule(("LSTM",), "unroll=False", _rolled, GENERIC, f"{_JAX}:cudnn_ok"),
        Rule(("LSTM",), "use_bias=True", _bias, GENERIC, f"{_JAX}:cudnn_ok"),
        # The lowering of jax.experimental.rnn's rnn_fwd primitive knows float32 and float64 only;
        # its ValueError becomes NotImplementedError in lstm().
        Rule(("LSTM",), "dtype float32 or float64", lambda c, m, d: d in ("float32", "float64"), GENERIC,
             "jaxlib/gpu_rnn.py:_rnn_fwd_lowering"),
    ),
    # torch.nn.RNN/LSTM/GRU themselves (after the adapter's own why_not): cuDNN whenever
    # torch.backends.cudnn.is_acceptable(input); otherwise torch's native CUDA kernels.
    "torch.nn": (
        Rule(TORCH_NN_LAYERS, "no mask (the torch.nn adapter takes none)", _no_mask, GENERIC,
             "conformance/adapters/torch_nn.py:TorchNN"),
        Rule(TORCH_NN_LAYERS, "dtype float16, float32 or float64",
             lambda c, m, d: d in ("float16", "float32", "float64"), FUSED_LOOP,
             "torch/backends/cudnn/__init__.py:is_acceptable"),
    ),
}

# Bidirectional(LSTM|GRU) on torch and JAX first tries one fused two-direction call.
_BIDI = "keras/src/layers/rnn/bidirectional.py:_can_attempt_fused_lstm"
FUSED_BIDIRECTIONAL = {"torch": ("LSTM", "GRU"), "jax": ("LSTM",)}  # jax: bidirectional_gru always raises


def _policy(cfg: dict) -> str:
    return configs.policy_name(cfg.get("dtype")) or "float32"


def _check(config: dict, backend: str, mask: Any) -> tuple[bool | str, str]:
    """(True or the reason, the path that runs) for one LSTM/GRU layer config."""
    name, cfg = config.get("class_name"), config.get("config", {})
    if backend == "torch.nn":
        reason = why_not(config)
        if reason:
            return f"torch.nn: {reason}", GENERIC
        rules = BACKEND_RULES[backend]
    elif name not in FUSED_LAYERS:
        return (f"{name}: only LSTM and GRU have a cuDNN path; {name} runs the generic loop "
                "(keras/src/layers/rnn/rnn.py:RNN.inner_loop)"), GENERIC
    else:
        rules = LAYER_RULES + BACKEND_RULES[backend]
    dtype = _policy(cfg)
    for rule in rules:
        if name in rule.layers and not rule.ok(cfg, mask, dtype):
            return f"{name} on {backend} needs {rule.needs} ({rule.source})", rule.fallback
    return True, CUDNN


def _fused_bidirectional(cfg: dict, backend: str, mask: Any) -> bool:
    """The conditions of Bidirectional._can_attempt_fused_lstm/_gru, then the backend's cudnn_ok."""
    fwd = cfg.get("layer", {})
    bwd = cfg.get("backward_layer", fwd)
    names = {fwd.get("class_name"), bwd.get("class_name")}
    if mask is not None or len(names) != 1 or names.pop() not in FUSED_BIDIRECTIONAL.get(backend, ()):
        return False
    f, b = fwd.get("config", {}), bwd.get("config", {})
    same = all(f.get(k, v) == b.get(k, v) for k, v in
               (("units", None), ("activation", "tanh"), ("recurrent_activation", "sigmoid")))
    quiet = not any(c.get(k) for c in (f, b) for k in ("dropout", "recurrent_dropout", "stateful"))
    return same and quiet and all(_check(layer, backend, None)[0] is True for layer in (fwd, bwd))


def eligible(config: dict, *, backend: str, mask: Any = None) -> bool | str:
    """True when this serialized layer config runs on cuDNN on a GPU with ``backend`` (one of
    ``BACKENDS``) given ``mask`` ((batch, time) bool or None); otherwise the reason, naming the
    rule and the Keras function that applies it."""
    return _decide(config, backend, mask)[0]


def expected_path(config: dict, *, backend: str, mask: Any = None) -> str:
    """The path a GPU run should take: "cudnn", "fused-loop" or "generic" ("mixed" for a
    Bidirectional whose two directions take different paths)."""
    return _decide(config, backend, mask)[1]


def _decide(config: dict, backend: str, mask: Any) -> tuple[bool | str, str]:
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}, expected one of {BACKENDS}")
    if not isinstance(config, dict) or "class_name" not in config:
        raise TypeError(f"config={type(config).__name__}, expected keras.layers.serialize(layer)'s dict")
    if config["class_name"] != "Bidirectional" or backend == "torch.nn":
        return _check(config, backend, mask)
    cfg = config.get("config", {})
    if _fused_bidirectional(cfg, backend, mask):
        return True, CUDNN
    directions = [_check(cfg[k], backend, mask) for k in ("layer", "backward_layer") if k in cfg]
    reasons = [r for r, _ in directions if r is not True]
    paths = {p for _, p in directions}
    return (reasons[0] if reasons else True), (paths.pop() if len(paths) == 1 else "mixed")


# --- where a cuDNN path differs from the generic loop -------------------------------------------
# Each entry: backends it concerns, case-id globs in deviations.json's style (every glob must
# match), what differs, the source, and whether a GPU run has confirmed it ("from source" until
# conformance/gpu/run.py has run). Confirmed entries become deviations.json entries for the GPU oracles.
KNOWN_DIFFERENCES: tuple[dict, ...] = (
    {"id": "padded-steps-are-zeros", "backends": ["tensorflow"],
     "match": ["{LSTM,GRU}(*return_sequences=True*", "*-mask=right_pad*", "!*zero_output_for_mask=True*"],
     "effect": "CudnnRNNV3 with sequence_lengths emits zeros at padded steps, where the generic loop "
               "repeats the last output (zero_output_for_mask=False); states and last output agree",
     "source": f"{_TF}:_cudnn_lstm", "status": "from source; out of reach (no TensorFlow on the GPU machine)"},
    {"id": "invalid-mask-eager-falls-back-graph-raises", "backends": ["tensorflow"],
     "match": ["{LSTM,GRU}(*", "*-mask={left_pad,holes,masked_row,first_masked}*"],
     "effect": "a mask that is not strictly right-padded, or has a fully masked row, fails tf.Assert: "
               "eagerly InvalidArgumentError becomes NotImplementedError and the generic loop runs "
               "(same numbers); inside tf.function the assert fails at run time instead",
     "source": f"{_TF}:_assert_valid_mask, lstm", "status": "from source; out of reach"},
    {"id": "torch-jax-never-use-cudnn-with-a-mask", "backends": ["torch", "jax"],
     "match": ["*-mask=*"],
     "effect": "no padded-step difference on these backends: any mask (even all True or right-padded) "
               "raises NotImplementedError and the generic loop runs",
     "source": f"{_TORCH}:lstm, {_TORCH}:gru, {_JAX}:lstm", "status": "from source"},
    {"id": "jax-lstm-go-backwards-sequence-in-input-order", "backends": ["jax"],
     "match": ["LSTM(*go_backwards=True*return_sequences=True*", "!*unroll=True*", "!*-mask=*"],
     "effect": "the cuDNN LSTM flips its output sequence back (outputs = jnp.flip(outputs, axis=1)), "
               "so output[:, 0] belongs to the first input step; every other path returns processing "
               "order (output[:, 0] belongs to the last input step). Last output and states agree",
     "source": f"{_JAX}:lstm", "status": "from source; Keras's wrapping reproduced on CPU with "
                                         "jax.experimental.rnn.lstm_ref (tests/test_gpu.py)"},
    {"id": "jax-bidirectional-unfused-backward-reversed", "backends": ["jax"],
     "match": ["Bidirectional(*layer=LSTM(*return_sequences=True*", "!*-mask=*"],
     "effect": "consequence of the entry above, when the fused two-direction call is not taken "
               "(dropout>0, stateful): Bidirectional flips the backward sequence that the cuDNN LSTM "
               "already returned in input order, so the backward half comes out reversed",
     "source": f"{_JAX}:lstm, keras/src/layers/rnn/bidirectional.py:call",
     "status": "from source; reproduced on CPU with lstm_ref for the stateful sum case (max abs "
               "error 0.2 against the CPU fixtures); to confirm on a GPU"},
    {"id": "fused-bidirectional-ignores-go-backwards", "backends": ["torch", "jax"],
     "match": ["Bidirectional(*layer=*go_backwards=True*backward_layer=*"],
     "effect": "the fused two-direction call runs the forward layer forwards and the backward layer "
               "backwards whatever their go_backwards say (only an explicit backward_layer can make "
               "the forward layer go backwards)",
     "source": f"{_BIDI}, {_TORCH}:bidirectional_lstm", "status": "question: to confirm on a GPU"},
    {"id": "torch-cudnn-failure-is-silent", "backends": ["torch"], "match": ["{LSTM,GRU}(*"],
     "effect": "_cudnn_lstm/_cudnn_gru failures are swallowed (except Exception: pass) and the "
               "per-step _fallback_* loop runs: a result is a cuDNN result only with dispatch evidence",
     "source": f"{_TORCH}:lstm, {_TORCH}:gru", "status": "from source"},
    {"id": "tf32-on-by-default", "backends": ["torch", "torch.nn", "jax"], "match": ["*-float32-*"],
     "effect": "float32 cuDNN RNNs use TF32 by default: torch.backends.cudnn.rnn.fp32_precision is "
               "'tf32' (legacy torch.backends.cudnn.allow_tf32=True), and JAX allows TF32 unless "
               "jax_default_matmul_precision is 'highest'/'float32'; the generic loop's matmuls "
               "follow other flags (torch: cuda.matmul, default IEEE)",
     "source": "torch/backends/cudnn/__init__.py, jax/experimental/rnn.py:_lstm_cudnn_allow_tf32",
     "status": "from source; sizes measured by conformance/gpu/run.py"},
    {"id": "jax-float64-lstm", "backends": ["jax"], "match": ["LSTM(*", "*-float64-*"],
     "effect": "jax.experimental.rnn documents float32 only (its TODO), yet its lowering accepts "
               "float64 and Keras attempts it: whether cuDNN computes in float64 is to be seen",
     "source": "jax/experimental/rnn.py (module docstring), jaxlib/gpu_rnn.py:_rnn_fwd_lowering",
     "status": "question: to confirm on a GPU"},
)

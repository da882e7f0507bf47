"""ONNX Runtime as subject "onnxruntime" (`pip install nlpspec[onnx]`): models run by ONNX Runtime's
CPU execution provider, by two paths, each its own option set:

- "onnx_op" (and "onnx_op_linear_before_reset", "onnx_op_float", "onnx_attention"): ONNX's own standard
  operators, a graph built with onnx.helper whose weights are graph inputs (one session per shape signature and dtype,
  cached; the spec's parameters are fed at every call):
  - rnn.layers, lstm.layers, gru.layers: one `RNN` / `LSTM` / `GRU` node (opset 22) per layer,
    direction "forward" or "bidirectional", chained by Transpose/Reshape. W (D, k·H, I) and
    R (D, k·H, H) act as X·Wᵀ, gates stacked in ONNX's orders: LSTM i, o, f, c (ONNX_LSTM_ORDER), GRU
    z, r, h; B (D, 2·k·H) is [Wb, Rb], the spec's b split exactly between the two (glue.split_bias).
    ONNX's GRU update gate keeps the state (H_t = (1 - z) h̃ + z H_{t-1}): with linear_before_reset=0
    it is the article's GRU, z mapped with its sign flipped (σ(-a) = 1 - σ(a)); with
    linear_before_reset=1 it is the variant gru.reset_after (Wb_h = b_in, Rb_h = b_hn), z as it is.
    layout=0 (sequence major, X (T, B, I)): ONNX Runtime's CPU kernels refuse layout=1 ("Batchwise
    recurrent operations (layout == 1) are not supported"), so no set runs it. rnn.cell, lstm.cell,
    gru.cell: the same graph, one layer, one direction, one step.
  - layernorm: `LayerNormalization` (opset 17, axis -1, epsilon=1e-5: see below).
  - attention, attention.causal: `Attention` (opset 23) on 4-D inputs (B, 1, n, d), its attn_mask
    boolean, True where a query may attend (mask.bool_true_attends, "onnx_op"), or additive float
    ("onnx_op_float", the article's form); is_causal=1 for attention.causal; the weights are its
    qk_matmul_output in mode 3 (after the softmax).
  - mha ("onnx_attention"): the projections as MatMul + Add, `Attention` on 3-D inputs with
    q_num_heads = kv_num_heads = h, its boolean mask (B, 1, n, m) from the spec's two masks.
- "export_torchscript": torch.nn modules exported by torch.onnx.export's TorchScript exporter
  (dynamo=False, opset 17, dynamic axes on every length and batch; export_params=False and
  do_constant_folding=False, so the module's parameters are graph inputs under their own names: one
  export per module shape and dtype, cached, the spec's parameters loaded into the module as
  subjects/torch_nn.py does and fed by name): nn.RNN / nn.LSTM / nn.GRU (batch_first; PyTorch's GRU is
  gru.reset_after), nn.MultiheadAttention (its masks boolean, True where hidden: mask.bool_true_masked;
  per-head weights returned), nn.LayerNorm.
- "export_dynamo", "export_dynamo_pre_ln", "export_dynamo_gelu": the same through the dynamo exporter
  (torch.onnx.export(dynamo=True, optimize=False), opset 18, dynamic batch and length; the parameters,
  initializers under their own names, moved to the graph's inputs): nn.TransformerEncoderLayer with
  its key padding mask (mask.bool_true_masked), and the decoder-only block (nn.TransformerEncoderLayer
  under a causal mask built inside the graph from the input's length, is_causal=True), post-LN, pre-LN
  (norm_first) or GELU, as the torch subject's. The TorchScript exporter is not used for them: its graph
  of nn.MultiheadAttention's self-attention path keeps the traced sequence length, so ONNX Runtime
  refuses every other length ("The input tensor cannot be reshaped to the requested shape").
- LayerNormalization's epsilon is a float32 attribute (the exporters write the same): 1e-5 is
  9.99999974737875e-06 in every dtype, declared as the ε of layernorm and of the layers.

Arrays cross into ONNX Runtime as NumPy arrays and come back as tensors on the run's device and dtype.
ONNX Runtime has no autograd: what it returns carries no graph, so the suite's gradient check notes
"no autograd graph: the gradient check is not made" for every component of this subject (forward only).
Dtypes, as tried: ONNX Runtime's CPU kernels of RNN, LSTM and GRU take no double (RNN has no double
kernel; LSTM and GRU refuse it at run time: "… operator does not support double yet"): those components
declare float32 and float16, and so do the GELU layers (no double Erf kernel). None runs in bfloat16 (no
CPU kernel for MatMul, Where, Expand; NumPy has no bfloat16 of its own): the others declare float32,
float64, float16. In float64, ORT has no Attention
kernel and runs ONNX's function body instead, whose scale is computed in float32 (a precision shortfall
the suite reports); in float32 and float16 it runs its own CPU kernel.
"""
from __future__ import annotations

import io
import threading
import warnings

import numpy as np
import torch

from .protocol import Declaration, Subject
from .glue import gate_rows, split_bias
from .torch_nn import sizes

PROVIDERS = ["CPUExecutionProvider"]
ONNX_LSTM_ORDER = "iofC"  # ONNX's LSTM gates: input, output, forget, cell (the spec's C: the candidate)
RNN_OPSET = 22      # RNN, LSTM, GRU (layout since 14; 22 adds bfloat16 types)
NORM_OPSET = 17     # LayerNormalization
ATTENTION_OPSET = 23  # Attention
EXPORT_OPSET = 17   # torch.onnx.export's TorchScript exporter

_SESSIONS: dict = {}
_LOCK = threading.Lock()


# -- crossing into ONNX Runtime ---------------------------------------------------------------------
def numpy(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy())


def back(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).to(like.device)


def elem_type(dtype: torch.dtype) -> int:
    from onnx import TensorProto
    return {torch.float32: TensorProto.FLOAT, torch.float64: TensorProto.DOUBLE, torch.float16: TensorProto.FLOAT16,
            torch.bfloat16: TensorProto.BFLOAT16}[dtype]


def new_session(model) -> "onnxruntime.InferenceSession":  # noqa: F821
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3  # its errors come back as exceptions, not as log lines
    options.intra_op_num_threads = 1
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=PROVIDERS)


MAX_SESSIONS = 256  # the most recently used are kept (one per shape signature, dtype and option set)


def cached(key, make):
    """The session for `key`, made once while it stays among the MAX_SESSIONS most recently used (make()
    returns a model or its bytes)."""
    with _LOCK:
        if key in _SESSIONS:
            _SESSIONS[key] = _SESSIONS.pop(key)  # most recently used last
        else:
            _SESSIONS[key] = new_session(make())
            while len(_SESSIONS) > MAX_SESSIONS:
                _SESSIONS.pop(next(iter(_SESSIONS)))
        return _SESSIONS[key]


def graph_model(nodes, inputs, outputs, opset, initializers=()):
    """A model of `nodes`; inputs/outputs: (name, elem_type) pairs, shapes left free."""
    from onnx import helper
    graph = helper.make_graph(nodes, "nlpspec", [helper.make_tensor_value_info(n, t, None) for n, t in inputs],
                              [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
                              initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def int64s(name, values):
    from onnx import helper, TensorProto
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], list(values))


# -- ONNX's RNN, LSTM, GRU --------------------------------------------------------------------------
OPS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


def onnx_weights(kind: str, p: dict, linear_before_reset: int):
    """One direction's spec params -> (W (k·H, I), R (k·H, H), B (2·k·H,)) in ONNX's layout."""
    if kind == "rnn":
        b_w, b_r = split_bias(p["b_h"])
        return p["W_xh"], p["W_hh"], torch.cat([b_w, b_r])
    H = sizes(kind, p)[1]
    if kind == "lstm":
        W, R = gate_rows([p[f"W_{g}"] for g in ONNX_LSTM_ORDER], H)
        b_w, b_r = split_bias(torch.cat([p[f"b_{g}"] for g in ONNX_LSTM_ORDER]))
        return W, R, torch.cat([b_w, b_r])
    (w_r, r_r) = split_bias(p["b_r"])
    if linear_before_reset and "W_h" in p:  # the article's params given to the reset-after kernel (as the
        # torch subject maps them): z's sign flipped, W_h cut into W_in, W_hn, b_hn = 0; the reset still
        # acts after the product, so this computes another function than gru.candidate's
        W, R = gate_rows([-p["W_z"], p["W_r"], p["W_h"]], H)
        w_z, r_z = split_bias(-p["b_z"])
        return W, R, torch.cat([w_z, w_r, p["b_h"], r_z, r_r, torch.zeros_like(p["b_h"])])
    if linear_before_reset:  # gru.reset_after: ONNX's z keeps the state, as the variant's does
        W, R = gate_rows([p["W_z"], p["W_r"]], H)
        w_z, r_z = split_bias(p["b_z"])
        return (torch.cat([W, p["W_in"]]), torch.cat([R, p["W_hn"]]),
                torch.cat([w_z, w_r, p["b_in"], r_z, r_r, p["b_hn"]]))
    # the article's GRU: ONNX's z keeps the state, the article's writes the candidate: σ(-a) = 1 - σ(a)
    W, R = gate_rows([-p["W_z"], p["W_r"], p["W_h"]], H)
    (w_z, r_z), (w_h, r_h) = split_bias(-p["b_z"]), split_bias(p["b_h"])
    return W, R, torch.cat([w_z, w_r, w_h, r_z, r_r, r_h])


def recurrent_model(kind, L, D, H, dtype, layout, linear_before_reset):
    from onnx import helper
    t = elem_type(dtype)
    nodes, inputs, outputs, inits = [], [("X", t)], [], [int64s("flat", [0, 0, -1])]
    x = "X"
    for l in range(L):
        states = [f"h{l}"] + ([f"c{l}"] if kind == "lstm" else [])
        inputs += [(f"W{l}", t), (f"R{l}", t), (f"B{l}", t)] + [(s, t) for s in states]
        outs = [f"Y{l}", f"Yh{l}"] + ([f"Yc{l}"] if kind == "lstm" else [])
        attrs = {"hidden_size": H, "direction": "bidirectional" if D == 2 else "forward", "layout": layout}
        if kind == "gru":
            attrs["linear_before_reset"] = linear_before_reset
        nodes.append(helper.make_node(OPS[kind], [x, f"W{l}", f"R{l}", f"B{l}", ""] + states, outs, **attrs))
        outputs += [(o, t) for o in outs[1:]]
        y = f"Y{l}"
        if layout == 0:  # Y (T, D, B, H) -> (T, B, D, H)
            nodes.append(helper.make_node("Transpose", [y], [f"Yt{l}"], perm=[0, 2, 1, 3]))
            y = f"Yt{l}"
        x = f"X{l + 1}"  # (T, B, D·H) or (B, T, D·H): the forward half first
        nodes.append(helper.make_node("Reshape", [y, "flat"], [x]))
    outputs.insert(0, (x, t))
    return graph_model(nodes, inputs, outputs, RNN_OPSET, inits)


def recurrent_op_builder(kind: str):
    def build(params, layout=0, linear_before_reset=0):
        layers = params["layers"]
        L, D = len(layers), len(layers[0])
        first = next(iter(layers[0][0].values()))
        I, H = sizes(kind, layers[0][0])
        session = cached(("op", kind, L, D, I, H, first.dtype, layout, linear_before_reset),
                         lambda: recurrent_model(kind, L, D, H, first.dtype, layout, linear_before_reset))
        feeds = {}
        for l, directions in enumerate(layers):
            W, R, B = zip(*(onnx_weights(kind, p, linear_before_reset) for p in directions))
            feeds |= {f"W{l}": numpy(torch.stack(W)), f"R{l}": numpy(torch.stack(R)), f"B{l}": numpy(torch.stack(B))}

        def state(s, l):  # the spec's (B, L, D, H) -> ONNX's (D, B, H) (layout 0) or (B, D, H) (layout 1)
            return numpy(s[:, l] if layout else s[:, l].transpose(0, 1))

        def fn(x, h_prev, C_prev=None):
            given = dict(feeds, X=numpy(x if layout else x.transpose(0, 1)))
            for l in range(L):
                given[f"h{l}"] = state(h_prev, l)
                if kind == "lstm":
                    given[f"c{l}"] = state(C_prev, l)
            out, *finals = session.run(None, given)
            k = 2 if kind == "lstm" else 1

            def spec_state(arrays):  # per layer (D, B, H) or (B, D, H) -> (B, L, D, H)
                s = np.stack(arrays, axis=1)
                return back(s if layout else s.transpose(2, 1, 0, 3), x)
            result = {"out": back(out if layout else out.transpose(1, 0, 2), x), "h": spec_state(finals[0::k])}
            if kind == "lstm":
                result["C"] = spec_state(finals[1::k])
            return result
        return fn
    return build


# -- torch modules through torch.onnx.export --------------------------------------------------------
class Exported:
    """A torch module exported once per key (its shape and dtype) with its parameters as graph inputs;
    run(module, **inputs) feeds that module's current parameters by name.

    exporter="torchscript": torch.onnx.export(dynamo=False), export_params=False and
    do_constant_folding=False, so the parameters are graph inputs under their own names.
    exporter="dynamo": torch.onnx.export(dynamo=True, optimize=False) with dynamic shapes; its
    parameters, initializers under their own names, are made graph inputs."""

    def __init__(self, key, wrapper: torch.nn.Module, example: dict, outputs, dynamic_axes, exporter="torchscript"):
        def export():
            # The TorchScript exporter merges parameters of equal values into one input (a drawn γ = β = 0
            # would leave β unread): the module is traced with distinct random values, put back afterwards.
            kept = [(p, p.detach().clone()) for p in wrapper.parameters()]
            generator = torch.Generator().manual_seed(0)
            try:
                with warnings.catch_warnings(), torch.no_grad():
                    warnings.simplefilter("ignore")  # the exporter's notes on tracing and on its deprecation
                    for p, _ in kept:
                        p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64).to(p.dtype))
                    if exporter == "dynamo":
                        return parameters_as_inputs(dynamo_export(wrapper, example, outputs, dynamic_axes),
                                                    [name for name, _ in wrapper.named_parameters()])
                    buffer = io.BytesIO()
                    torch.onnx.export(wrapper, tuple(example.values()), buffer, dynamo=False,
                                      input_names=list(example), output_names=list(outputs), dynamic_axes=dynamic_axes,
                                      opset_version=EXPORT_OPSET, export_params=False, do_constant_folding=False)
                    return buffer.getvalue()
            finally:
                with torch.no_grad():
                    for p, value in kept:
                        p.copy_(value)
        self.session = cached(("export", exporter) + key, export)
        self.outputs = list(outputs)
        self.wanted = {i.name for i in self.session.get_inputs()}
        unfed = [name for name, _ in wrapper.named_parameters() if name not in self.wanted]
        if unfed:  # a parameter the exported graph does not take would be silently ignored
            raise RuntimeError(f"the exported graph takes no input for {', '.join(unfed)}")

    def run(self, wrapper: torch.nn.Module, like: torch.Tensor, **inputs) -> dict:
        feeds = {name: numpy(p) for name, p in wrapper.named_parameters() if name in self.wanted}
        feeds |= {name: numpy(t) for name, t in inputs.items() if name in self.wanted}
        return {name: back(a, like) for name, a in zip(self.outputs, self.session.run(None, feeds))}


def dynamo_export(wrapper, example: dict, outputs, dynamic_axes):
    """torch.onnx.export(dynamo=True) (torch.export, then ONNX), every axis of dynamic_axes dynamic."""
    import logging
    dims = {}
    shapes = tuple({axis: dims.setdefault(name, torch.export.Dim(name))
                    for axis, name in dynamic_axes.get(arg, {}).items()} or None for arg in example)
    logging.disable(logging.WARNING)  # its notes on optional packages (torchvision) and on the steps it takes
    try:
        program = torch.onnx.export(wrapper, tuple(example.values()), dynamo=True, input_names=list(example),
                                    output_names=list(outputs), dynamic_shapes=(shapes,),
                                    opset_version=EXPORT_OPSET + 1, optimize=False, verbose=False)
    finally:
        logging.disable(logging.NOTSET)
    return program.model_proto


def parameters_as_inputs(model, names):
    """The model with the initializers named in `names` moved to its graph inputs (fed at every run)."""
    from onnx import helper
    graph = model.graph
    moved = [init for init in graph.initializer if init.name in set(names)]
    for init in moved:
        graph.initializer.remove(init)
        graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    return model


def on_cpu(params):
    """The spec's parameters, detached, on the CPU (the exported module is traced there)."""
    if isinstance(params, dict):
        return {k: on_cpu(v) for k, v in params.items()}
    if isinstance(params, list):
        return [on_cpu(v) for v in params]
    return params.detach().cpu()


class Call(torch.nn.Module):
    """A module and how to call it, as one module whose forward takes tensors only (for the exporter)."""

    def __init__(self, module, call):
        super().__init__()
        self.m, self.call = module, call

    def forward(self, *args):
        return self.call(self.m, *args)


def recurrent_export_builder(kind: str):
    from .torch_nn import from_torch_state, sequence_module, to_torch_state

    def call(m, x, h, c=None):
        out, final = m(x, h if c is None else (h, c))
        return (out, final) if c is None else (out, *final)

    def build(params):
        layers = on_cpu(params["layers"])
        L, D = len(layers), len(layers[0])
        I, H = sizes(kind, layers[0][0])
        dtype = next(iter(layers[0][0].values())).dtype
        module = Call(sequence_module(kind, layers, batch_first=True), call)
        states = ["h0", "c0"] if kind == "lstm" else ["h0"]
        example = {"x": torch.zeros(2, 3, I, dtype=dtype)} | {s: torch.zeros(L * D, 2, H, dtype=dtype) for s in states}
        outputs = ["out", "h", "C"] if kind == "lstm" else ["out", "h"]
        dynamic = {"x": {0: "B", 1: "T"}, "out": {0: "B", 1: "T"}} | {n: {1: "B"} for n in states + outputs[1:]}
        exported = Exported((kind, L, D, I, H, dtype), module, example, outputs, dynamic)

        def fn(x, h_prev, C_prev=None):
            given = {"x": x, "h0": to_torch_state(h_prev)} | ({"c0": to_torch_state(C_prev)} if kind == "lstm" else {})
            found = exported.run(module, x, **given)
            return {name: value if name == "out" else from_torch_state(value, L, D) for name, value in found.items()}
        return fn
    return build


def cell_builder(kind):
    """KIND.cell: the operator's graph with one layer, one direction, one step."""
    layers = recurrent_op_builder(kind)

    def build(params, linear_before_reset=0):
        fn = layers({"layers": [[params]]}, linear_before_reset=linear_before_reset)

        def step(x, h_prev, C_prev=None):
            found = fn(x[:, None], h_prev[:, None, None], None if C_prev is None else C_prev[:, None, None])
            return {"h": found["h"][:, 0, 0]} | ({"C": found["C"][:, 0, 0]} if kind == "lstm" else {})
        return step
    return build


def recurrent_builder(kind):
    op, export = recurrent_op_builder(kind), recurrent_export_builder(kind)

    def build(params, path="onnx_op", **knobs):
        return op(params, **knobs) if path == "onnx_op" else export(params)
    return build


# -- LayerNorm --------------------------------------------------------------------------------------
def layernorm_builder(params, path="onnx_op"):
    gamma, beta = params["gamma"], params["beta"]
    if path == "onnx_op":
        from onnx import helper
        t = elem_type(gamma.dtype)
        session = cached(("op", "layernorm", gamma.dtype), lambda: graph_model(
            [helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["out"], axis=-1, epsilon=1e-5)],
            [("x", t), ("gamma", t), ("beta", t)], [("out", t)], NORM_OPSET))
        feeds = {"gamma": numpy(gamma), "beta": numpy(beta)}
        return lambda x: {"out": back(session.run(None, feeds | {"x": numpy(x)})[0], x)}
    d = gamma.shape[0]
    norm = torch.nn.LayerNorm(d, dtype=gamma.dtype)
    with torch.no_grad():
        norm.weight.copy_(on_cpu(gamma))
        norm.bias.copy_(on_cpu(beta))
    module = Call(norm, lambda m, x: m(x))
    exported = Exported(("layernorm", d, gamma.dtype), module, {"x": torch.zeros(2, 3, d, dtype=gamma.dtype)},
                        ["out"], {"x": {0: "B", 1: "n"}, "out": {0: "B", 1: "n"}})
    return lambda x: exported.run(module, x, x=x)


# -- attention through ONNX's Attention operator ----------------------------------------------------
def attention_model(dtype, mask, causal):
    """Attention (opset 23) on (B, 1, n, d) inputs: mask None, "bool" or "float"; weights from
    qk_matmul_output after the softmax (mode 3)."""
    from onnx import helper, TensorProto
    t = elem_type(dtype)
    inputs = [("q", t), ("k", t), ("v", t)] + ([("mask", TensorProto.BOOL if mask == "bool" else t)] if mask else [])
    node = helper.make_node("Attention", [n for n, _ in inputs], ["out", "", "", "weights"], qk_matmul_output_mode=3,
                            **({"is_causal": 1} if causal else {}))
    return graph_model([node], inputs, [("out", t), ("weights", t)], ATTENTION_OPSET)


def attention_builder(params, mask_dtype="bool"):
    def fn(q, k, v, mask):
        session = cached(("op", "attention", q.dtype, mask_dtype), lambda: attention_model(q.dtype, mask_dtype, False))
        feeds = {"q": numpy(q[:, None]), "k": numpy(k[:, None]), "v": numpy(v[:, None]), "mask": numpy(mask[:, None])}
        out, weights = session.run(None, feeds)
        return {"out": back(out[:, 0], q), "weights": back(weights[:, 0], q)}
    return fn


def causal_builder(params):
    def fn(q, k, v):
        session = cached(("op", "attention.causal", q.dtype), lambda: attention_model(q.dtype, None, True))
        out, weights = session.run(None, {"q": numpy(q[:, None]), "k": numpy(k[:, None]), "v": numpy(v[:, None])})
        return {"out": back(out[:, 0], q), "weights": back(weights[:, 0], q)}
    return fn


def attention_variants(options):
    return "mask.bool_true_attends" if options.get("mask_dtype", "bool") == "bool" else ()


# -- multi-head attention ---------------------------------------------------------------------------
def mha_op_model(dtype, heads):
    """Q = query W_Q + b_Q (heads side by side), the same for K and V; Attention with q_num_heads =
    kv_num_heads = heads on the 3-D projections, its boolean mask (B, 1, n, m) True where a query may
    attend; out = heads W_O + b_O."""
    from onnx import helper, TensorProto
    t = elem_type(dtype)
    nodes = []
    for name, x in (("Q", "query"), ("K", "key"), ("V", "value")):
        nodes += [helper.make_node("MatMul", [x, f"W_{name}"], [f"{name}w"]),
                  helper.make_node("Add", [f"{name}w", f"b_{name}"], [name])]
    nodes += [helper.make_node("Attention", ["Q", "K", "V", "mask"], ["heads", "", "", "weights"],
                               q_num_heads=heads, kv_num_heads=heads, qk_matmul_output_mode=3),
              helper.make_node("MatMul", ["heads", "W_O"], ["Ow"]),
              helper.make_node("Add", ["Ow", "b_O"], ["out"])]
    inputs = [(n, t) for n in ("query", "key", "value", "W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O")]
    return graph_model(nodes, inputs + [("mask", TensorProto.BOOL)], [("out", t), ("heads", t), ("weights", t)],
                       ATTENTION_OPSET)


def mha_op_builder(params):
    from .glue import stack_heads
    heads = params["W_Q"].shape[0]
    session = cached(("op", "mha", params["W_Q"].dtype, heads), lambda: mha_op_model(params["W_Q"].dtype, heads))
    feeds = {W: numpy(stack_heads(params[W])) for W in ("W_Q", "W_K", "W_V")}
    feeds |= {b: numpy(params[b].reshape(-1)) for b in ("b_Q", "b_K", "b_V")}
    feeds |= {"W_O": numpy(params["W_O"]), "b_O": numpy(params["b_O"])}

    def fn(query, key, value, attn_mask, key_padding_mask):  # mask.bool_true_attends: True where it may attend
        attends = attn_mask[None] & key_padding_mask[:, None, :]
        out, heads_, weights = session.run(None, feeds | {"query": numpy(query), "key": numpy(key),
                                                           "value": numpy(value), "mask": numpy(attends[:, None])})
        return {"out": back(out, query), "heads": back(heads_, query), "weights": back(weights, query)}
    return fn


def mha_export_builder(params):
    from .torch_attention import mha_module
    p = on_cpu(params)
    heads, d_model, _ = p["W_Q"].shape
    kdim, vdim = p["W_K"].shape[1], p["W_V"].shape[1]
    module = Call(mha_module(p), lambda m, q, k, v, am, kp: m(q, k, v, attn_mask=am, key_padding_mask=kp,
                                                               need_weights=True, average_attn_weights=False))
    dtype = p["W_Q"].dtype
    example = {"query": torch.zeros(2, 3, d_model, dtype=dtype), "key": torch.zeros(2, 4, kdim, dtype=dtype),
               "value": torch.zeros(2, 4, vdim, dtype=dtype), "attn_mask": torch.zeros(3, 4, dtype=torch.bool),
               "key_padding_mask": torch.zeros(2, 4, dtype=torch.bool)}
    dynamic = {"query": {0: "B", 1: "n"}, "key": {0: "B", 1: "m"}, "value": {0: "B", 1: "m"},
               "attn_mask": {0: "n", 1: "m"}, "key_padding_mask": {0: "B", 1: "m"},
               "out": {0: "B", 1: "n"}, "weights": {0: "B", 2: "n", 3: "m"}}
    exported = Exported(("mha", heads, d_model, kdim, vdim, dtype), module, example, ["out", "weights"], dynamic)

    def fn(query, key, value, attn_mask, key_padding_mask):
        return exported.run(module, query, query=query, key=key, value=value, attn_mask=attn_mask,
                            key_padding_mask=key_padding_mask)
    return fn


def mha_builder(params, path="export"):
    return mha_op_builder(params) if path == "onnx_attention" else mha_export_builder(params)


def mha_variants(options):
    return "mask.bool_true_attends" if options.get("path") == "onnx_attention" else "mask.bool_true_masked"


# -- Transformer layers, exported -------------------------------------------------------------------
def encoder_layer_builder(params, norm_first=False, activation="relu"):
    from .torch_transformer import encoder_layer_module
    p = on_cpu(params)
    heads, d_model, _ = p["attn"]["W_Q"].shape
    d_ff, dtype = p["W_1"].shape[1], p["W_1"].dtype
    module = Call(encoder_layer_module(p, norm_first, activation, True),
                  lambda m, x, kp: m(x, src_key_padding_mask=kp))
    example = {"x": torch.zeros(2, 3, d_model, dtype=dtype), "key_padding_mask": torch.zeros(2, 3, dtype=torch.bool)}
    dynamic = {"x": {0: "B", 1: "n"}, "key_padding_mask": {0: "B", 1: "n"}, "out": {0: "B", 1: "n"}}
    exported = Exported(("encoder.layer", heads, d_model, d_ff, norm_first, activation, dtype), module, example,
                        ["out"], dynamic, exporter="dynamo")
    return lambda x, key_padding_mask: exported.run(module, x, x=x, key_padding_mask=key_padding_mask)


def causal_block(m, x):
    """The block under the causal mask, built in the graph from x's length (True: hidden)."""
    n = x.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
    return m(x, src_mask=causal, is_causal=True)


def decoder_only_layer_builder(params, norm_first=False, activation="relu"):
    from .torch_transformer import layer, load_mha, load_norm
    p = on_cpu(params)
    heads, d_model, _ = p["self_attn"]["W_Q"].shape
    d_ff, dtype = p["W_1"].shape[1], p["W_1"].dtype
    block = layer(torch.nn.TransformerEncoderLayer, p, "self_attn", norm_first, activation, True)
    load_mha(block.self_attn, p["self_attn"])
    load_norm(block.norm1, p, 1)
    load_norm(block.norm2, p, 2)
    module = Call(block, causal_block)
    dynamic = {"x": {0: "B", 1: "n"}, "out": {0: "B", 1: "n"}}
    exported = Exported(("decoder_only.layer", heads, d_model, d_ff, norm_first, activation, dtype), module,
                        {"x": torch.zeros(2, 3, d_model, dtype=dtype)}, ["out"], dynamic, exporter="dynamo")
    return lambda x: exported.run(module, x, x=x)


TRANSFORMER_SETS = {"export_dynamo": {}, "export_dynamo_pre_ln": {"norm_first": True},
                    "export_dynamo_gelu": {"activation": "gelu"}}


def transformer_variants(pre_ln, mask_form=()):
    def variants(options):
        return ((pre_ln if options.get("norm_first") else ()) +
                (("ffn.gelu",) if options.get("activation") == "gelu" else ()) + mask_form)
    return variants


# -- the subject ------------------------------------------------------------------------------------
def gru_variant(options):
    return "gru.reset_after" if options.get("linear_before_reset") or options.get("path") == "export" else ()


RECURRENT = Declaration(dtypes=(torch.float32, torch.float16),
                        note="ONNX Runtime's CPU kernels of RNN, LSTM and GRU take no double (RNN has none; LSTM and "
                             "GRU: \"operator does not support double yet\") and no bfloat16")
NO_BFLOAT16 = "ONNX Runtime's CPU provider has no bfloat16 kernels for MatMul, Where, Expand (NOT_IMPLEMENTED)"

# ONNX's attributes are float32 (AttributeProto.f): LayerNormalization's epsilon=1e-5, the exporter's too,
# is 1e-5 rounded to float32, the constant the op then uses in every dtype (a float64 run tells it)
ONNX_EPSILON = float(np.float32(1e-5))  # 9.99999974737875e-06
EPSILON = Declaration(constants={"layernorm.epsilon": ONNX_EPSILON},
                      dtypes=(torch.float32, torch.float64, torch.float16),
                      note="ONNX's epsilon attribute is a float32: 1e-5 becomes 9.99999974737875e-06; " + NO_BFLOAT16)
NO_DOUBLE_ERF = Declaration(constants={"layernorm.epsilon": ONNX_EPSILON}, dtypes=(torch.float32, torch.float16),
                            note="ONNX's epsilon attribute is a float32: 1e-5 becomes 9.99999974737875e-06; ONNX "
                                 "Runtime's CPU provider has no double kernel for Erf (GELU), " + NO_BFLOAT16)


def transformer_declaration(options):
    return NO_DOUBLE_ERF if options.get("activation") == "gelu" else EPSILON


ANY_BUT_BFLOAT16 = Declaration(dtypes=(torch.float32, torch.float64, torch.float16), note=NO_BFLOAT16)
# ONNX Runtime has no double Attention kernel: in float64 it runs ONNX's function body, whose scale is a
# float32 (about 44 correct bits of 53 in the weights: a precision shortfall the suite reports undeclared)
ATTENTION_OP = Declaration(dtypes=(torch.float32, torch.float16),
                           note="ONNX Runtime runs its Attention op's float64 through ONNX's function body, whose "
                                "scale is a float32 (a precision shortfall in float64); " + NO_BFLOAT16)


def mha_declaration(options):
    return ATTENTION_OP if options.get("path") == "onnx_attention" else ANY_BUT_BFLOAT16

# ONNX's layout=1 (batch major) is refused by ONNX Runtime's CPU kernels ("Batchwise recurrent operations
# (layout == 1) are not supported"): the sets run layout 0, X (T, B, I), Y (T, D, B, H)
RECURRENT_SETS = {"onnx_op": {"path": "onnx_op"}, "export_torchscript": {"path": "export"}}
GRU_SETS = {"onnx_op": {"path": "onnx_op"},
            "onnx_op_linear_before_reset": {"path": "onnx_op", "linear_before_reset": 1},
            "export_torchscript": {"path": "export"}}


def subject() -> Subject:
    """The subject (importing onnx and onnxruntime only here: `pip install nlpspec[onnx]`)."""
    import onnx
    import onnxruntime as ort
    ort.set_default_logger_severity(3)  # its kernels' errors come back as exceptions, not also as log lines
    return Subject(
        name="onnxruntime", version=f"{ort.__version__} (onnx {onnx.__version__}, CPUExecutionProvider)",
        builders={"rnn.cell": cell_builder("rnn"), "lstm.cell": cell_builder("lstm"), "gru.cell": cell_builder("gru"),
                  "rnn.layers": recurrent_builder("rnn"), "lstm.layers": recurrent_builder("lstm"),
                  "gru.layers": recurrent_builder("gru"), "layernorm": layernorm_builder,
                  "attention": attention_builder, "attention.causal": causal_builder, "mha": mha_builder,
                  "encoder.layer": encoder_layer_builder, "decoder_only.layer": decoder_only_layer_builder},
        variants={"gru.cell": gru_variant, "gru.layers": gru_variant, "attention": attention_variants,
                  "mha": mha_variants,
                  "encoder.layer": transformer_variants(("enc.attn.pre_ln", "enc.ffn.pre_ln"),
                                                        ("mask.bool_true_masked",)),
                  "decoder_only.layer": transformer_variants(("dec.self.pre_ln", "enc.ffn.pre_ln"))},
        options={"gru.cell": {"onnx_op": {}, "onnx_op_linear_before_reset": {"linear_before_reset": 1}},
                 "rnn.layers": RECURRENT_SETS, "lstm.layers": RECURRENT_SETS, "gru.layers": GRU_SETS,
                 "layernorm": {"onnx_op": {"path": "onnx_op"}, "export_torchscript": {"path": "export"}},
                 "attention": {"onnx_op": {"mask_dtype": "bool"}, "onnx_op_float": {"mask_dtype": "float"}},
                 "mha": {"export_torchscript": {"path": "export"}, "onnx_attention": {"path": "onnx_attention"}},
                 "encoder.layer": TRANSFORMER_SETS, "decoder_only.layer": TRANSFORMER_SETS},
        declarations={**{name: RECURRENT for kind in OPS for name in (f"{kind}.cell", f"{kind}.layers")},
                      "attention": ATTENTION_OP, "attention.causal": ATTENTION_OP, "mha": mha_declaration,
                      "layernorm": EPSILON, "encoder.layer": transformer_declaration,
                      "decoder_only.layer": transformer_declaration})

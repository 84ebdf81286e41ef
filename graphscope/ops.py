"""Canonical op vocabulary: every framework's op name mapped to one framework-neutral name.

The canonical names are what a cross-framework diff matches on: a torch ``aten::linear``, a
``call_module:Linear``, an ONNX ``Gemm`` and TF ``MatMul`` + ``BiasAdd`` should all read as
``linear``/``matmul`` + ``add``. Where no mapping exists, the op's own leaf name, lowercased,
is used, so an unknown op still reads sensibly and can be mapped later.

>>> canonical("aten::linear")
'linear'
>>> canonical("call_module:Conv2d")
'conv2d'
>>> canonical("aten.relu.default")
'relu'
>>> canonical("FusedBatchNormV3")
'batch_norm'
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["CANONICAL", "LAYOUT_OPS", "canonical", "layer_ops"]

# Keys are lowercased leaf op names with framework prefixes and overload suffixes removed.
_TABLE: dict[str, tuple[str, ...]] = {
    "linear": ("linear", "gemm", "dense", "addmm"),
    "matmul": (
        "matmul",
        "mm",
        "bmm",
        "batchmatmul",
        "batchmatmulv2",
        "batchmatmulv3",
        "__matmul__",
        "einsum_matmul",
    ),
    "conv2d": (
        "conv2d",
        "convolution",
        "_convolution",
        "conv",
        "conv2dbackpropinput_",
        "depthwiseconv2dnative",
    ),
    "conv1d": ("conv1d",),
    "conv_transpose": ("conv_transpose2d", "convtranspose", "conv_transpose1d", "conv2dbackpropinput"),
    "add": ("add", "add_", "addv2", "biasadd", "__add__", "__iadd__", "iadd", "sum_binary"),
    "sub": ("sub", "rsub", "sub_", "__sub__", "__rsub__"),
    "mul": ("mul", "mul_", "__mul__", "__rmul__", "multiply"),
    "div": ("div", "div_", "truediv", "realdiv", "__truediv__", "divnonan"),
    "neg": ("neg", "__neg__"),
    "pow": ("pow", "__pow__"),
    "sqrt": ("sqrt",),
    "rsqrt": ("rsqrt",),
    "exp": ("exp",),
    "log": ("log",),
    "abs": ("abs",),
    "relu": ("relu", "relu_", "relu6", "hardtanh"),
    "gelu": ("gelu", "gelu_new", "newgeluactivation"),
    "sigmoid": ("sigmoid", "logistic"),
    "tanh": ("tanh",),
    "silu": ("silu", "swish"),
    "softmax": ("softmax", "_softmax", "safe_softmax", "_safe_softmax"),
    "log_softmax": ("log_softmax", "logsoftmax", "_log_softmax"),
    "batch_norm": (
        "batch_norm",
        "batchnorm2d",
        "batchnorm1d",
        "_native_batch_norm_legit_no_training",
        "_native_batch_norm_legit",
        "native_batch_norm",
        "batchnormalization",
        "fusedbatchnorm",
        "fusedbatchnormv2",
        "fusedbatchnormv3",
        "_batch_norm_impl_index",
    ),
    "layer_norm": ("layer_norm", "layernorm", "native_layer_norm", "layernormalization"),
    "dropout": ("dropout", "dropout_", "native_dropout"),
    "max_pool": ("max_pool2d", "maxpool2d", "maxpool", "max_pool2d_with_indices", "adaptive_max_pool2d"),
    "avg_pool": ("avg_pool2d", "avgpool2d", "avgpool", "averagepool"),
    "global_avg_pool": (
        "adaptive_avg_pool2d",
        "adaptiveavgpool2d",
        "globalaveragepool",
        "_adaptive_avg_pool2d",
    ),
    "mean": ("mean", "reducemean"),
    "sum": ("sum", "reducesum"),
    "max": ("max", "amax", "reducemax"),
    "min": ("min", "amin", "reducemin"),
    "reshape": (
        "reshape",
        "view",
        "_unsafe_view",
        "flatten",
        "unflatten",
        "squeeze",
        "unsqueeze",
        "expanddims",
        "_reshape_alias",
    ),
    "transpose": ("transpose", "permute", "t", "numpy_t", "contiguous_permute"),
    "concat": ("cat", "concat", "concatv2", "concatenate"),
    "split": ("split", "split_with_sizes", "splitv", "chunk", "unbind", "unpack"),
    "stack": ("stack", "pack"),
    "slice": ("slice", "stridedslice", "narrow", "select"),
    "getitem": ("getitem", "__getitem__", "tupleindex", "listindex"),
    "gather": ("gather", "gatherv2", "index_select", "index", "gathernd"),
    "embedding": ("embedding", "resourcegather"),
    "identity": (
        "identity",
        "clone",
        "contiguous",
        "alias",
        "detach",
        "lift_fresh_copy",
        "_to_copy_identity",
        "stopgradient",
    ),
    "cast": ("cast", "to", "_to_copy", "type_as", "float", "long", "int"),
    "expand": ("expand", "broadcastto", "expand_as", "tile", "repeat"),
    "where": ("where", "select_v2", "selectv2"),
    "scaled_dot_product_attention": (
        "scaled_dot_product_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
        "multiheadattention",
        "_native_multi_head_attention",
    ),
    "gru": ("gru", "gru_cell"),
    "lstm": ("lstm", "lstm_cell"),
    "if": ("if", "statelessif", "prim::if"),
    "while": ("while", "statelesswhile", "loop", "prim::loop"),
    "call": ("partitionedcall", "statefulpartitionedcall", "call_module"),
    "placeholder": ("placeholder", "placeholderv2", "placeholderwithdefault", "prim::param"),
    "const": ("const", "constant", "prim::constant"),
    "variable": ("variable", "variablev2", "varhandleop", "readvariableop", "get_attr"),
    "output": ("output", "_retval", "return"),
    "zeros": ("zeros", "zeros_like", "zeroslike", "new_zeros"),
    "ones": ("ones", "ones_like", "oneslike", "new_ones", "fill", "full"),
    "arange": ("arange", "range"),
}

CANONICAL: dict[str, str] = {alias: name for name, aliases in _TABLE.items() for alias in aliases}

# Ops that move data around without computing: `diff --ignore layout` skips these when it
# matches a TF (NHWC) graph against a PyTorch (NCHW) one.
LAYOUT_OPS = frozenset({"reshape", "transpose", "identity", "cast", "expand", "contiguous"})

_PREFIX = re.compile(r"^(call_module|call_function|call_method|get_attr|placeholder|output):")
_OVERLOAD = re.compile(r"\.(default|Tensor|Scalar|int|dim|self|using_ints|Tensor_Tensor|Tensor_Scalar|\w+)$")


@functools.lru_cache(maxsize=8192)
@functools.lru_cache(maxsize=16384)  # a graph repeats a few hundred ops in thousands of nodes
def canonical(op: str) -> str:
    """The canonical name of a framework op (see the module docstring)."""
    raw = op.strip()
    kind_prefix = _PREFIX.match(raw)
    leaf = raw[kind_prefix.end() :] if kind_prefix else raw
    leaf = leaf.split("::")[-1]  # aten::linear, prim::If (kept below), onnx::Gemm
    if raw.lower() in CANONICAL:
        return CANONICAL[raw.lower()]
    # torch.export targets look like aten.relu.default; keep the op, drop the overload.
    if leaf.startswith("aten."):
        leaf = leaf[len("aten.") :]
        leaf = _OVERLOAD.sub("", leaf)
    leaf = leaf.rsplit(".", 1)[-1] if "." in leaf and not leaf.startswith("_") else leaf
    key = leaf.lower()
    if key in CANONICAL:
        return CANONICAL[key]
    if kind_prefix and kind_prefix.group(1) in ("placeholder", "output", "get_attr"):
        return CANONICAL.get(kind_prefix.group(1), kind_prefix.group(1))
    return key or "unknown"


def layer_ops(graph: Any) -> list[str]:
    """The graph's computation as a framework-neutral op sequence, layer by layer.

    Canonical ops of ``op`` nodes in graph order, without layout ops and identities, with a
    ``matmul`` whose result is added to a weight (TF's ``MatMul`` + ``BiasAdd``, ONNX's
    ``MatMul`` + ``Add``) read as one ``linear``, as torch's ``linear`` and ONNX's ``Gemm`` are.

    >>> from graphscope.ir import Graph
    >>> g = Graph()
    >>> for node_id, op, kind in [("x", "Placeholder", "input"), ("w", "VarHandleOp", "param"),
    ...                           ("mm", "MatMul", "op"), ("b", "VarHandleOp", "param"),
    ...                           ("add", "BiasAdd", "op"), ("s", "Sigmoid", "op")]:
    ...     _ = g.add_node(node_id, op=op, kind=kind)
    >>> for u, v in [("x", "mm"), ("w", "mm"), ("mm", "add"), ("b", "add"), ("add", "s")]:
    ...     g.add_edge(u, v)
    >>> layer_ops(g)
    ['linear', 'sigmoid']
    """
    nodes = {n["id"]: n for n in graph.nodes()}
    folded: set[str] = set()
    out: list[str] = []
    for n in graph.nodes():
        if n["kind"] != "op" or n["id"] in folded or n["canonical_op"] in LAYOUT_OPS:
            continue
        op = n["canonical_op"]
        if op == "matmul":
            users = list(graph.successors(n["id"]))
            if len(users) == 1 and nodes[users[0]]["canonical_op"] == "add":
                others = [p for p in graph.predecessors(users[0]) if p != n["id"]]
                if others and all(nodes[p]["kind"] in ("param", "const") for p in others):
                    folded.add(users[0])
                    op = "linear"
        out.append(op)
    return out

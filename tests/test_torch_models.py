"""Real-size models: ResNet-50, a 12-layer nn.TransformerEncoder and GPT-2 (slow, still in CI)."""

from __future__ import annotations

import pytest

from graphscope import ir, tracers
from graphscope.errors import GraphscopeError

from . import torch_models

pytestmark = [pytest.mark.torch, pytest.mark.slow]


def shape_coverage(graph: ir.Graph) -> float:
    """The share of op nodes whose every output has a complete shape and a dtype."""
    ops = [n for n in graph.nodes() if n["kind"] == "op"]
    complete = [
        n
        for n in ops
        if n["outputs"]
        and all(o["dtype"] and o["shape"] is not None and None not in o["shape"] for o in n["outputs"])
    ]
    return len(complete) / len(ops)


@pytest.mark.parametrize("method", ["export", "fx"])
def test_resnet50_has_shapes_on_99_percent_of_ops(method: str) -> None:
    model, inputs = torch_models.resnet50()
    g = tracers.capture(model, inputs, fw="torch", method=method, name="resnet50")
    assert shape_coverage(g) >= 0.99
    convs = [n for n in g.nodes() if n["canonical_op"] == "conv2d"]
    assert len(convs) == 53
    assert g.node(g.outputs[0])["outputs"] == [{"shape": [1, 1000], "dtype": "float32"}]
    # Scopes follow the module hierarchy: the first conv of the first bottleneck of stage 1.
    assert ["layer1", "0", "conv1"] in [n["scope"] for n in convs]


def test_transformer_encoder_export_has_shapes_and_fx_says_use_export() -> None:
    model, inputs = torch_models.transformer_encoder()
    g = tracers.capture(model, inputs, fw="torch", method="export", name="encoder")
    assert shape_coverage(g) >= 0.99
    assert {n["scope"][:2] == ["layers", "11"] for n in g.nodes() if n["kind"] == "op"} >= {True}
    with pytest.raises(
        GraphscopeError,
        match=r"torch.fx.symbolic_trace cannot capture this model: .*; --method export captures it$",
    ):
        tracers.capture(model, inputs, fw="torch", method="fx")


@pytest.mark.parametrize("method", ["export", "dynamo"])
def test_gpt2_from_config(method: str) -> None:
    pytest.importorskip("transformers")
    model, inputs = torch_models.gpt2()
    g = tracers.capture(model, inputs, fw="torch", method=method, name="gpt2")
    body = g if method == "export" else g.subgraphs["graph_0"]
    ops = {n["canonical_op"] for n in body.nodes()}
    assert {"embedding", "layer_norm", "softmax"} & ops or "scaled_dot_product_attention" in ops
    assert shape_coverage(body) >= 0.95
    ir.loads(ir.dumps(g))

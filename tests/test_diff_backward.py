"""Diffing training steps: backward nodes match through the forward nodes they differentiate."""

from __future__ import annotations

from typing import Any

import pytest

from graphscope import diffing, ir, tracers

pytestmark = pytest.mark.torch


def mlp(extra_layer: bool = False, activation: str = "relu") -> Any:
    import torch
    from torch import nn

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = nn.Linear(3, 8)
            self.mid = nn.Linear(8, 8) if extra_layer else None
            self.out = nn.Linear(8, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            act = getattr(torch, activation)
            h = act(self.hidden(x))
            if self.mid is not None:
                h = act(self.mid(h))
            return self.out(h)

    torch.manual_seed(0)
    return MLP()


def training_graph(model: Any) -> ir.Graph:
    import torch

    return tracers.capture_backward(
        model,
        (torch.randn(4, 3),),
        fw="torch",
        example_targets=(torch.randn(4, 1),),
        loss_fn=torch.nn.functional.mse_loss,
        name="mlp",
    )


def twin_gradients(order: tuple[str, str]) -> ir.Graph:
    """Two relus of one input, summed, and their gradients, which look alike: the backward
    nodes are added in ``order`` (of the relu each differentiates), as two autograd walks may."""
    g = ir.Graph("twins", framework="torch", capture="eager")
    g.add_node("x", op="placeholder", kind="input", outputs=[{"shape": [4], "dtype": "float32"}])
    for r in ("relu", "relu_1"):
        g.add_node(r, op="aten.relu.default", outputs=[{"shape": [4], "dtype": "float32"}])
        g.add_edge("x", r)
    g.add_node("add", op="aten.add.Tensor", outputs=[{"shape": [4], "dtype": "float32"}])
    g.add_edge("relu", "add")
    g.add_edge("relu_1", "add", dst_port=1)
    g.add_node("seed", op="grad_seed", kind="const", phase="backward")
    g.add_node("add_grad", op="AddBackward0", canonical_op="grad:add", phase="backward", grad_of="add")
    g.add_edge("seed", "add_grad")
    for i, r in enumerate(order):
        node_id = f"grad_{i}"
        g.add_node(node_id, op="ReluBackward0", canonical_op="grad:relu", phase="backward", grad_of=r)
        g.add_edge("add_grad", node_id, src_port=["relu", "relu_1"].index(r))
    g.inputs, g.outputs = ["x"], ["add"]
    return g


def test_look_alike_gradients_pair_through_grad_of_not_their_ids() -> None:
    a, b = twin_gradients(("relu", "relu_1")), twin_gradients(("relu_1", "relu"))
    ab = diffing.diff(a, b).ab_map()
    assert ab["relu"] == "relu" and ab["relu_1"] == "relu_1"
    assert ab["grad_0"] == "grad_1" and ab["grad_1"] == "grad_0"  # same ids, other relus


def assert_gradients_follow_their_forward_nodes(d: diffing.Diff) -> None:
    ab = d.ab_map()
    for x, y in d.matched:
        gx, gy = d.a.node(x)["grad_of"], d.b.node(y)["grad_of"]
        if gx is not None:
            assert ab.get(gx) == gy, (x, y, gx, gy)


def test_a_training_graph_against_itself_is_identical() -> None:
    g = training_graph(mlp())
    d = diffing.diff(g, g)
    assert d.identical and all(x == y for x, y in d.matched)


def test_inserted_layer_adds_its_gradients_and_keeps_the_others_matched() -> None:
    a, b = training_graph(mlp()), training_graph(mlp(extra_layer=True))
    d = diffing.diff(a, b)
    assert_gradients_follow_their_forward_nodes(d)
    added = {b.node(y)["op"] for y in d.added if b.node(y)["phase"] == "backward"}
    assert {"AddmmBackward0", "ReluBackward0", "TBackward0", "AccumulateGrad"} <= added
    assert all(b.node(y)["scope"] in (["mid"], []) for y in d.added)
    ab = d.ab_map()
    for param in ("hidden_weight", "hidden_bias", "out_weight", "out_bias"):
        assert ab[f"{param}_grad"] == f"{param}_grad"  # each accumulation finds its parameter's
    assert not d.removed


def test_a_swapped_activation_changes_its_gradient_too() -> None:
    a, b = training_graph(mlp()), training_graph(mlp(activation="tanh"))
    d = diffing.diff(a, b)
    assert_gradients_follow_their_forward_nodes(d)
    swapped = {(c["a"], c["b"]) for c in d.changed if "canonical_op" in c["fields"]}
    assert ("relu", "tanh") in swapped and ("relu_grad", "tanh_grad") in swapped
    assert not d.added and not d.removed


def test_torch_and_tf_training_steps_pair_a_gradient_through_its_forward_op() -> None:
    from pathlib import Path

    golden = Path(__file__).resolve().parent / "golden"
    a = ir.load(golden / "torch" / "mlp_train.eager-backward.json")
    b = ir.load(golden / "tf" / "mlp_train_tf.tf-function-backward.json")
    d = diffing.diff(a, b, ignore=diffing.LAYOUT_OPS)
    ab = d.ab_map()
    assert ab["relu"] == "mlp/hidden/Relu"
    assert ab["relu_grad"] == "gradient_tape/mlp/hidden/ReluGrad"  # ReluBackward0 is ReluGrad
    assert all(a.node(x)["phase"] == b.node(y)["phase"] for x, y in d.matched)


def pass_through_chain(joint: bool) -> ir.Graph:
    """x -> clone -> relu and its gradients: autograd makes one node per op (CloneBackward0,
    ReluBackward0); AOTAutograd's joint graph none for the clone, whose gradient is the
    incoming one, and two for the relu (threshold_backward, reading the relu's output through
    a detach), so threshold_backward follows the seed directly."""
    g = ir.Graph("chain", framework="torch", capture="export" if joint else "eager")
    shape = [{"shape": [4], "dtype": "float32"}]
    g.add_node("x", op="placeholder", kind="input", outputs=shape)
    g.add_node("clone", op="aten.clone.default", outputs=shape)
    g.add_node("relu", op="aten.relu.default", outputs=shape)
    g.add_edge("x", "clone")
    g.add_edge("clone", "relu")
    g.add_node("seed", op="grad_seed", kind="const", phase="backward", outputs=shape)
    backward: dict[str, Any] = {"phase": "backward", "outputs": shape}
    if joint:
        g.add_node("detach_1", op="aten.detach.default", grad_of="relu", **backward)
        g.add_node("threshold_backward", op="aten.threshold_backward.default", grad_of="relu", **backward)
        g.add_edge("seed", "threshold_backward")
        g.add_edge("detach_1", "threshold_backward", dst_port=1)
    else:
        g.add_node(
            "clone_grad", op="CloneBackward0", canonical_op="grad:identity", grad_of="clone", **backward
        )
        g.add_node("relu_grad", op="ReluBackward0", canonical_op="grad:relu", grad_of="relu", **backward)
        g.add_edge("seed", "clone_grad")
        g.add_edge("clone_grad", "relu_grad")
    g.inputs, g.outputs = ["x"], ["relu"]
    return g


def test_a_gradient_is_never_paired_with_the_gradient_of_another_op() -> None:
    """The seed's successor is the clone's gradient on one side and the relu's on the other:
    neighbours, but not one gradient of one op."""
    a, b = pass_through_chain(joint=False), pass_through_chain(joint=True)
    d = diffing.diff(a, b)
    assert d.ab_map().get("clone_grad") is None and "clone_grad" in d.removed
    assert d.ab_map()["seed"] == "seed"
    assert_gradients_follow_their_forward_nodes(d)

"""The eager recorder builds each node's dict itself (``ir.Graph.add_node_dict``) and maps tensors
to nodes by identity (``torch_eager.TensorMap``): both must give what ``add_node`` and torch's
``WeakTensorKeyDictionary`` gave, field for field."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest

from graphscope import ir, tracers

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # source paths in the IR are relative to the working directory


def _model() -> tuple[Any, tuple[Any, ...]]:
    """A model whose ops take every kind of argument the recorder turns into attributes."""
    import torch

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)
            self.norm = torch.nn.LayerNorm(4)
            self.register_buffer("shift", torch.ones(4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.norm(self.fc(x)) + self.shift
            mask = torch.triu(torch.ones(3, 3, dtype=torch.bool), diagonal=1)
            scores = (h @ h.t()).masked_fill(mask, float("-inf"))  # a non-finite float argument
            h = scores.softmax(dim=-1) @ h
            h = h.clamp(min=-1.5, max=float("inf")).to(torch.float64).float()  # keyword dtypes
            h = h.permute(1, 0).reshape(2, 6)  # list arguments
            h = h.sum(dim=[0], keepdim=True)
            return torch.tanh_(h * 0.5)  # an in-place op

    torch.manual_seed(0)
    return Block(), (torch.randn(3, 4),)


def _as_add_node_makes_it(data: dict[str, Any]) -> dict[str, Any]:
    fields = {k: data[k] for k in ir.NODE_KEYS if k != "id"}
    return ir.Graph().add_node(data["id"], **fields)


@pytest.mark.parametrize("backward", [False, True], ids=["eager", "eager-backward"])
def test_every_recorded_node_is_what_add_node_makes_of_its_fields(backward: bool) -> None:
    """A field left out, or a value left unconverted (a tuple, an infinite float), differs from
    the dict ``add_node`` makes of the same fields (it fills and converts every one)."""
    model, inputs = _model()
    if backward:
        graph = tracers.capture_backward(model, inputs, fw="torch", loss_fn=lambda out: out.pow(2).mean())
    else:
        graph = tracers.capture(model, inputs, fw="torch", method="eager")
    for data in graph.nodes():
        assert list(data) == list(ir.NODE_KEYS), data["id"]
        assert data == _as_add_node_makes_it(data), data["id"]
    by_op: dict[str, dict[str, Any]] = {}  # each op's first node
    for data in graph.nodes():
        by_op.setdefault(data["op"], data)
    fill = by_op["aten.masked_fill.Scalar"]
    assert fill["attrs"] == {"arg2": "-inf"}
    assert fill["source"] == {"file": "tests/test_torch_recorder.py", "line": 40}
    assert by_op["aten.native_layer_norm.default"]["scope"] == ["norm"]
    assert by_op["aten.permute.default"]["attrs"] == {"arg1": [1, 0]}
    assert by_op["aten.clamp.default"]["attrs"] == {"arg1": -1.5, "arg2": "inf"}
    assert by_op["aten._to_copy.default"]["attrs"] == {"dtype": "float64"}
    assert by_op["aten.sum.dim_IntList"]["attrs"] == {"arg1": [0], "arg2": True}
    assert graph.node("shift")["kind"] == "param"
    if backward:
        grad = graph.node("masked_fill_grad")
        assert (grad["phase"], grad["grad_of"], grad["scope"]) == ("backward", "masked_fill", [])
        assert grad["source"] == fill["source"] and grad["source"] is not fill["source"]
        assert graph.node("fc_weight_grad")["op"] == "AccumulateGrad"


def test_tensor_map_matches_only_the_very_tensor_stored_and_keeps_none_alive() -> None:
    import torch

    from graphscope.stepping.torch_eager import TensorMap

    m = TensorMap()
    t = torch.zeros(3)
    view = t.view(3)  # the same memory, another tensor: not the stored one
    m[t] = ("a", 0)
    assert m.get(t) == ("a", 0) and t in m
    assert m.get(view) is None and view not in m
    m[t] = ("b", 1)  # an in-place op now owns it
    assert m.get(t) == ("b", 1)
    gone = weakref.ref(t)
    old_id = id(t)
    del t, view
    gc.collect()
    assert gone() is None  # the map held no reference
    # A new tensor that takes the freed one's id is not taken for it.
    for _ in range(1000):
        u = torch.zeros(3)
        if id(u) == old_id:
            assert m.get(u) is None
            break


def _nested_model() -> tuple[Any, tuple[Any, ...]]:
    """User modules within user modules, torch.nn layers (the source is the user's line that
    called them), ops before and after each call, and a helper function called in forward."""
    import torch

    def helper(x: torch.Tensor) -> torch.Tensor:
        return x.relu() * 2

    class Inner(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x + 1
            x = self.fc(x)
            return helper(x) - 1

    class Outer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = Inner()
            self.layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
            self.seq = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU(), Inner())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = x * 3
            x = self.inner(x)
            x = x.tanh()
            x = self.layer(x)
            x = self.seq(x)
            return x.sum(dim=-1)

    torch.manual_seed(0)
    return Outer(), (torch.randn(2, 3, 8),)


def test_a_module_calls_walked_outside_gives_every_op_the_same_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The frames outside a module call are walked once when it begins (``_source.ModuleCall``):
    every op's source must be the one a walk of its whole stack finds (the call cache off)."""
    from graphscope.stepping import torch_eager

    model, inputs = _nested_model()
    cached = tracers.capture(model, inputs, fw="torch", method="eager", name="m")
    monkeypatch.setattr(torch_eager, "frame_kind_is_other", lambda frame: False)
    walked = tracers.capture(model, inputs, fw="torch", method="eager", name="m")
    sources = {n["id"]: n["source"] for n in cached.nodes()}
    assert sources == {n["id"]: n["source"] for n in walked.nodes()}
    lines = {s["line"] for s in sources.values() if s is not None}
    assert {s["file"] for s in sources.values() if s is not None} == {"tests/test_torch_recorder.py"}
    assert len(lines) >= 8  # each of forward's lines, the helper's and Inner's: not one per call

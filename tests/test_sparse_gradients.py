"""Sparse gradients: ``nn.Embedding(sparse=True)`` gives its weight a sparse COO gradient, with
repeated rows not yet summed. ``step --train`` summarises it as the dense gradient it stands for
(a NaN in it is found), ``watch`` measures its norm after summing the repeats."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from graphscope import loader, stepping
from graphscope.stepping import torch_watch

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

MODEL = """
import torch
from torch import nn
torch.manual_seed(0)
class Bag(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8, sparse=True)
        self.out = nn.Linear(8, 1)
    def forward(self, ids):
        return self.out(self.emb(ids).mean(1))
model = Bag()
example_inputs = (torch.tensor([[1, 2, 3, 4, 5], [3, 3, 9, 0, 1]]),)  # rows 1 and 3 repeat
example_targets = (torch.ones(2, 1),)
def loss_fn(out, t):
    return ((out - t) ** 2).mean(){scale}
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
"""


def load(tmp_path: Path, scale: str = "") -> loader.Target:
    path = tmp_path / "bag.py"
    path.write_text(MODEL.replace("{scale}", scale))
    return loader.load_target(path, fw="torch")


def reference_gradient(found: loader.Target) -> torch.Tensor:
    model = found.model
    model.zero_grad(set_to_none=True)
    found.loss_fn(model(*found.example_inputs), *found.example_targets).backward()
    grad = model.emb.weight.grad.to_dense().clone()
    model.zero_grad(set_to_none=True)
    return grad


def test_step_train_summarises_a_sparse_gradient_as_its_dense_values(tmp_path: Path) -> None:
    found = load(tmp_path)
    steps = stepping.step_train_target(found)
    dense = reference_gradient(found)
    graph = steps.graph
    rec = next(
        r
        for r in steps
        if r.op == "AccumulateGrad" and graph.node(graph.node(r.node)["grad_of"])["name"] == "emb.weight"
    )
    summary = rec.summary
    assert summary is not None and summary["shape"] == [20, 8]
    assert summary["min"] == pytest.approx(float(dense.min()), rel=1e-6)
    assert summary["max"] == pytest.approx(float(dense.max()), rel=1e-6)
    assert summary["mean"] == pytest.approx(float(dense.mean()), rel=1e-5, abs=1e-9)
    assert summary["zeros"] == int((dense == 0).sum())


def test_a_nan_in_a_sparse_gradient_is_found(tmp_path: Path) -> None:
    # the loss times 0 * log(0) (= nan): every gradient NaN, the sparse one too
    found = load(tmp_path, " * (torch.zeros(()) * torch.log(torch.zeros(()))).exp()")
    steps = stepping.step_train_target(found)
    grads = [r for r in steps if r.op == "AccumulateGrad"]
    assert grads and all(r.summary is not None and r.summary["nan"] > 0 for r in grads)


def test_watch_measures_a_sparse_gradients_norm_after_summing_repeated_rows(tmp_path: Path) -> None:
    found = load(tmp_path)
    dense = reference_gradient(found)
    result = torch_watch.watch_target(found, steps=1)
    norms = result.history[0]["module_grad_norms"]
    assert norms["emb"] == pytest.approx(float(dense.norm()), rel=1e-5)
    assert result.history[0]["nonfinite"] == 0
    assert math.isfinite(result.history[0]["grad_norm"])

"""A non-finite value that no output ever holds is not the first non-finite value (issues 18/19,
trust on real models). T5's relative-position buckets take log(0) = -inf near the diagonal, cast
it to an integer and select around it: the model's output is finite, and blaming that log for a
NaN born later in the model would be a wrong culprit. Such a value is *dropped*: said aside, not
named first. A NaN made finite by ``where`` (``where(x > 0, sqrt(x), 0)``) is dropped in the
forward pass, and the NaN its gradient becomes in backward still counts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

import graphscope
from graphscope.cli import main

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


class Buckets(torch.nn.Module):
    """T5's relative-position bucketing, as modeling_t5.py writes it, and a linear after it."""

    def __init__(self, nan_later: bool = False) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(8, 4)
        self.nan_later = nan_later

    def forward(self, x: Any) -> Any:
        t = x.shape[1]
        rel = (torch.arange(t)[None, :] - torch.arange(t)[:, None]).abs()
        is_small = rel < 2
        large = 2 + (torch.log(rel.float() / 2) / math.log(8 / 2) * 2).to(torch.long)
        large = torch.min(large, torch.full_like(large, 7))
        buckets = torch.where(is_small, rel, large)
        out = x @ self.emb(buckets).sum(-1)
        if self.nan_later:
            out = torch.sqrt(out - 1e6)  # a real NaN, later than the dropped -inf
        return out


def test_a_log_of_zero_dropped_on_the_way_is_not_the_culprit() -> None:
    torch.manual_seed(0)
    steps = graphscope.step(Buckets(), (torch.randn(2, 5),), fw="torch")
    log = next(r for r in steps if r.op == "aten.log.default")
    assert log.summary is not None and log.summary["neginf"] == 5  # torch's own: log(0) on the diagonal
    assert torch.isfinite(Buckets()(torch.randn(2, 5))).all()
    assert steps.first_nonfinite is None
    assert steps.until("nonfinite").records == steps.records
    dropped = steps.dropped()
    assert dropped is not None
    assert dropped["first"]["node"] == log.node
    assert dropped["first"]["source"]["file"].endswith("test_dropped.py")
    assert dropped["absorbed_by"] == [
        next(r.node for r in steps if r.op == "aten._to_copy.default" and r.index > log.index)
    ]
    assert dropped["neginf"] == dropped["values"] >= 5 and dropped["nan"] == dropped["posinf"] == 0
    doc = steps.as_dict()
    assert doc["first_nonfinite"] is None and doc["dropped"] == dropped


def test_a_nan_after_a_dropped_log_is_named_with_its_inputs() -> None:
    torch.manual_seed(0)
    steps = graphscope.step(Buckets(nan_later=True), (torch.randn(2, 5),), fw="torch")
    bad = steps.first_nonfinite
    assert bad is not None and bad.op == "aten.sqrt.default"
    assert bad.born is True  # its inputs were kept, though a -inf came first
    assert steps.dropped() is not None


def test_the_verdict_says_what_was_dropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model.py"
    model.write_text(
        "import torch\n"
        "class M(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        y = torch.sqrt(x)\n"
        "        return torch.where(x > 0, y, torch.zeros_like(x))\n"
        "model = M()\n"
        "example_inputs = (torch.tensor([4.0, -1.0, 9.0]),)\n"
    )
    assert main(["step", str(model), "--fw", "torch"]) == 0
    out = capsys.readouterr().out
    assert "No NaN or Inf reached an output in 5 steps" in out, out
    assert "1 nan in 1 node dropped on the way (first: sqrt at " in out
    assert "model.py:4, made finite by where); not counted." in out.replace("\n", " ").replace("  ", " ")
    assert main(["step", str(model), "--fw", "torch", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["first_nonfinite"] is None
    assert doc["dropped"]["first"]["op"] == "aten.sqrt.default"


def test_the_gradient_of_a_dropped_nan_still_counts() -> None:
    """where(x > 0, sqrt(x), 0): forward finite, but sqrt's gradient at -1 is 0 / NaN = NaN."""

    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor([4.0, -1.0, 9.0]))

        def forward(self, x: Any) -> Any:
            return torch.where(self.w > 0, torch.sqrt(self.w), torch.zeros_like(self.w)).sum() * x

    m = M()
    x = torch.tensor(1.0)
    m(x).backward()
    assert m.w.grad is not None and math.isnan(m.w.grad[1])  # torch's own gradient
    steps = graphscope.step(M(), (x,), fw="torch", train=True)
    bad = steps.first_nonfinite
    assert bad is not None and bad.op == "aten.sqrt.default"  # sqrt made the NaN its gradient reads
    doc = steps.as_dict()["first_nonfinite"]
    assert doc["phase"] == "forward" and doc["born"] is True
    assert doc["through_backward"] == {"made_finite_by": ["where"], "gradient": "sqrt_grad"}
    grad = steps.record("sqrt_grad")
    assert grad is not None and grad.born is False  # it read sqrt's saved NaN
    assert steps.origin(grad) == {"node": "sqrt", "kind": "op", "name": "sqrt"}
    assert steps.dropped() is None  # sqrt's NaN is not dropped: the gradient holds it


def test_a_value_nobody_reads_still_counts() -> None:
    """Nothing reads it, and nothing says it is harmless (a value a user logs): counted."""

    class M(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            self.seen = torch.log(x - 1)  # log(-1): NaN, kept aside
            return x * 2

    steps = graphscope.step(M(), (torch.zeros(3),), fw="torch")
    bad = steps.first_nonfinite
    assert bad is not None and bad.op == "aten.log.default"
    assert steps.dropped() is None

"""ONNX files from PyTorch keep the module path of every node: the dynamo exporter in each
node's ``namespace`` metadata, both exporters in the weights' names. graphscope reads them as
scopes, and the exporter's stack trace as the node's source line (issue 19)."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphscope import loader, tracers

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.torch, pytest.mark.onnx]


class Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)
        self.act = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(x))


def read(path: Path) -> dict[str, dict[str, object]]:
    graph = tracers.capture_target(loader.load_target(path))
    return {n["id"]: n for n in graph.nodes()}


def test_the_dynamo_exporters_module_paths_are_scopes(tmp_path: Path) -> None:
    path = tmp_path / "net.onnx"
    torch.onnx.export(Net(), (torch.randn(2, 4),), dynamo=True).save(str(path))
    nodes = read(path)
    ops = {n["op"]: n["scope"] for n in nodes.values() if n["kind"] == "op"}
    assert ops["Relu"] == ["block", "act"]
    assert sorted(n["scope"] for n in nodes.values() if n["op"] == "Gemm") == [["block", "fc"], ["head"]]
    assert nodes["block.fc.weight"]["scope"] == ["block", "fc"]
    relu = next(n for n in nodes.values() if n["op"] == "Relu")
    # the user's line that called the ReLU (this file's Block.forward), not torch's own
    assert relu["source"] is not None and relu["source"]["file"].endswith("test_onnx_scopes.py")
    assert relu["source"]["line"] == 24


def test_the_legacy_exporters_weight_names_are_scopes(tmp_path: Path) -> None:
    path = tmp_path / "net.onnx"
    torch.onnx.export(Net(), (torch.randn(2, 4),), str(path), dynamo=False)
    nodes = read(path)
    weights = {n["id"]: n["scope"] for n in nodes.values() if n["kind"] == "param"}
    assert weights["block.fc.weight"] == ["block", "fc"] and weights["head.bias"] == ["head"]

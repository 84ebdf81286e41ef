"""Shared fixtures: small hand-built graphs, and markers that skip when a framework is absent."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from graphscope import ir


def or_gate_graph() -> ir.Graph:
    """The OR-gate MLP as torch.fx sees it, built by hand (no torch needed)."""
    g = ir.Graph("or_gate", framework="torch", capture="fx", framework_version="2.13.0", notes=["a note"])
    f32 = "float32"
    g.add_node("x", op="placeholder", kind="input", outputs=[{"shape": [4, 2], "dtype": f32}])
    prev = "x"
    for i, width in enumerate([4, 4, 1]):
        lin, act = f"fc{i}", f"sigmoid_{i}"
        g.add_node(
            lin,
            op="call_module:Linear",
            scope=[lin],
            outputs=[{"shape": [4, width], "dtype": f32}],
            attrs={"in_features": 2 if i == 0 else 4, "out_features": width},
        )
        g.add_node(act, op="call_function:sigmoid", outputs=[{"shape": [4, width], "dtype": f32}])
        g.add_edge(prev, lin)
        g.add_edge(lin, act)
        prev = act
    g.add_node("output", op="output", kind="output", outputs=[{"shape": [4, 1], "dtype": f32}])
    g.add_edge(prev, "output")
    g.add_edge("x", "output", dst_port=1, control=True)
    g.inputs, g.outputs = ["x"], ["output"]
    return g


def save_doubler(path: Path) -> Path:
    """A SavedModel at ``path`` whose serving signature takes a float32[None, 3] and returns
    relu(x) * 2 (the tests of reading one and of stepping one)."""
    import tensorflow as tf

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            return tf.nn.relu(x) * 2.0

    tf.saved_model.save(Doubler(), str(path))
    return path


def assert_golden(golden: Path, text: str) -> None:
    """Compare ``text`` with a golden file; GRAPHSCOPE_UPDATE_GOLDENS=1 rewrites it (review the diff)."""
    update = os.environ.get("GRAPHSCOPE_UPDATE_GOLDENS", "") not in ("", "0")
    if update or not golden.exists():
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
        if not update:
            pytest.fail(f"wrote missing golden {golden.name}; review and commit it")
    assert text == golden.read_text(), (
        f"{golden.name} differs; rerun with GRAPHSCOPE_UPDATE_GOLDENS=1 and review"
    )


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker, module in (("torch", "torch"), ("tf", "tensorflow"), ("onnx", "onnx")):
            if item.get_closest_marker(marker) and not _have(module):
                item.add_marker(
                    pytest.mark.skip(reason=f"{module} is not installed (pip install -e '.[{marker}]')")
                )

"""Models on PyTorch's meta device: a graph with full shapes and no weights, refusals that say
what works, and one sentence for models that mix meta and real tensors (issue 20)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from graphscope import tracers  # noqa: E402
from graphscope.cli import main  # noqa: E402
from graphscope.errors import GraphscopeError  # noqa: E402

pytestmark = pytest.mark.torch


class Net(torch.nn.Module):
    """Weights and buffers (BatchNorm's running statistics): the buffers' check failed on meta."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(16, 32)
        self.norm = torch.nn.BatchNorm1d(32)
        self.head = torch.nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.norm(self.fc(x))))


def meta_net() -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    with torch.device("meta"):
        model = Net().eval()
    return model, (torch.ones(8, 16, device="meta"),)


@pytest.mark.parametrize("method", ["export", "dynamo", "fx", None])
def test_shape_only_methods_capture_a_meta_model_with_full_shapes(method: str | None) -> None:
    model, inputs = meta_net()
    graph = tracers.capture(model, inputs, fw="torch", method=method, name="net")
    assert graph.capture == (method or "export")
    ops = [n for n in graph.nodes() if n["kind"] == "op"]
    if method == "dynamo":  # one call of a graph: its ops are in the subgraph
        ops = [n for _, sub in graph.walk_subgraphs() for n in sub.nodes() if n["kind"] == "op"]
    assert ops and all(o["shape"] is not None and o["dtype"] for n in ops for o in n["outputs"])
    last = [o for n in ops for o in n["outputs"]][-1]
    assert last["shape"] == [8, 4] and last["dtype"] == "float32"
    assert all(p.is_meta for p in model.parameters())  # left as it was


@pytest.mark.parametrize(
    ("method", "what"),
    [("eager", "eager capture"), ("jit-trace", "torch.jit.trace"), ("jit-script", "torch.jit.script")],
)
def test_methods_that_need_values_refuse_a_meta_model_and_name_one_that_captures_it(
    method: str, what: str
) -> None:
    model, inputs = meta_net()
    with pytest.raises(GraphscopeError) as caught:
        tracers.capture(model, inputs, fw="torch", method=method)
    assert str(caught.value) == (
        f"{what} needs real values, and this model is on PyTorch's meta device (no data); "
        "--method export captures it"
    )


def test_step_refuses_a_meta_model_in_one_sentence() -> None:
    from graphscope import stepping

    model, inputs = meta_net()
    with pytest.raises(GraphscopeError, match=r"^step runs the model and needs real values, .*meta device"):
        stepping.step(model, inputs, fw="torch")


def test_a_model_half_on_meta_is_one_sentence() -> None:
    model = Net().eval()
    with torch.device("meta"):
        model.head = torch.nn.Linear(32, 4)
    with pytest.raises(
        GraphscopeError, match=r"^2 of the model's 9 weights and buffers are on PyTorch's meta"
    ):
        tracers.capture(model, (torch.ones(8, 16),), fw="torch")


def test_meta_inputs_to_a_real_model_and_real_inputs_to_a_meta_model_are_one_sentence() -> None:
    with pytest.raises(
        GraphscopeError, match=r"^the example inputs are on PyTorch's meta device but the model"
    ):
        tracers.capture(Net().eval(), (torch.ones(8, 16, device="meta"),), fw="torch")
    model, _ = meta_net()
    with pytest.raises(
        GraphscopeError, match=r"^the model's weights are on PyTorch's meta device but its example"
    ):
        tracers.capture(model, (torch.ones(8, 16),), fw="torch")


@pytest.mark.slow
def test_a_meta_llama_traces_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's recipe (examples/llama70b_meta_torch.py) at two layers."""
    monkeypatch.setenv("LAYERS", "2")
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "llama.json"
    code = main(
        [
            "trace",
            str(root / "examples" / "llama70b_meta_torch.py"),
            "--fw",
            "torch",
            "-o",
            str(out),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    import json

    doc = json.loads(captured.out)
    assert doc["capture"] == "export"
    assert doc["outputs"][0]["outputs"] == [{"shape": [1, 32, 128256], "dtype": "float32"}]
    code = main(["step", str(root / "examples" / "llama70b_meta_torch.py"), "--fw", "torch"])
    assert code == 1 and "meta device" in capsys.readouterr().err


def test_a_meta_model_file_traced_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meta_model.py").write_text(
        textwrap.dedent(
            """
            import torch
            with torch.device("meta"):
                model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8)).eval()
            example_inputs = (torch.ones(2, 4, device="meta"),)
            """
        )
    )
    assert main(["trace", "meta_model.py", "--fw", "torch"]) == 0
    assert "float32[2,8]" in capsys.readouterr().out

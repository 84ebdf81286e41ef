"""`graphscope step` on an ONNX file: run by onnxruntime, every intermediate value of the top
level summarised, the final value equal to the framework's own (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graphscope import loader, stepping
from graphscope.cli import main

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytestmark = [pytest.mark.torch, pytest.mark.onnx]


class LogOfLinear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(self.fc(x)).sum(-1)  # a negative pre-activation: NaN born at the Log


@pytest.fixture
def exported(tmp_path: Path) -> tuple[Path, Path, torch.Tensor]:
    torch.manual_seed(0)
    model = LogOfLinear().eval()
    x = torch.randn(3, 4)
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"])
    inputs = tmp_path / "x.npz"
    np.savez(inputs, x=x.numpy())
    with torch.no_grad():
        return path, inputs, model(x)


def test_every_value_is_summarised_and_the_last_equals_torchs(
    exported: tuple[Path, Path, torch.Tensor],
) -> None:
    path, inputs, expected = exported
    found = loader.load_target(path)
    found.example_inputs = tuple(np.load(inputs).values())
    steps = stepping.step_target(found, keep=stepping.KEEP_ALL)
    assert [r.op for r in steps if r.kind == "op"] == ["Gemm", "Log", "ReduceSum"]
    last = steps[len(steps) - 1]
    np.testing.assert_allclose(
        steps.values[last.node][0], expected.numpy(), rtol=1e-5, atol=1e-6, equal_nan=True
    )
    bad = steps.first_nonfinite
    assert bad is not None and bad.op == "Log" and bad.born


def test_step_cli_names_the_log_and_without_inputs_says_they_were_random(
    exported: tuple[Path, Path, torch.Tensor], capsys: pytest.CaptureFixture[str]
) -> None:
    path, inputs, _ = exported
    assert main(["step", str(path), "--inputs", str(inputs), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["first_nonfinite"]["op"] == "Log" and doc["first_nonfinite"]["born"] is True
    assert main(["step", str(path)]) == 0
    out = capsys.readouterr().out
    assert "stepped on random ones (seed 0)" in " ".join(out.split())

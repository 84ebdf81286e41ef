"""`graphscope step --train`: one PyTorch training step stepped, forward, loss and backward, in
autograd's order; the first non-finite value's phase, and for a gradient the forward op and
source line it belongs to (issue 18, first part)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphscope import loader, stepping
from graphscope.cli import main

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_the_gradient_of_sqrt_at_zero_is_born_in_backward_at_the_forward_line() -> None:
    found = loader.load_target(Path("examples/sqrt_grad_torch.py"), fw="torch")
    steps = stepping.step_train_target(found)
    phases = [steps.graph.node(r.node)["phase"] for r in steps]
    assert (
        phases.index("backward") > phases.index("forward")
        and "forward" not in phases[phases.index("backward") :]
    )
    bad = steps.first_nonfinite
    assert bad is not None and bad.op == "SqrtBackward0" and bad.born
    assert bad.summary is not None and bad.summary["posinf"] == 1
    doc = steps.as_dict()["first_nonfinite"]
    assert doc["phase"] == "backward"
    assert doc["grad_of"] == {
        "node": "sqrt",
        "op": "aten.sqrt.default",
        "source": {"file": "examples/sqrt_grad_torch.py", "line": 21},
    }
    # the step ran on a copy: the user's parameter has no gradient
    assert found.model.offset.grad is None


def test_the_parameter_gradients_are_torchs_own() -> None:
    found = loader.load_target(Path("examples/mlp_train_torch.py"), fw="torch")
    steps = stepping.step_train_target(found)
    reference = __import__("copy").deepcopy(found.model)
    found.loss_fn(reference(*found.example_inputs), *found.example_targets).backward()
    grads = {name.replace(".", "_"): p.grad for name, p in reference.named_parameters()}
    accumulated = {r.node.removesuffix("_grad"): r.summary for r in steps if r.op == "AccumulateGrad"}
    assert set(accumulated) == set(grads)
    for name, grad in grads.items():
        summary = accumulated[name]
        assert summary is not None and summary["shape"] == list(grad.shape)
        assert summary["min"] == pytest.approx(float(grad.min()), rel=1e-5, abs=1e-7)
        assert summary["max"] == pytest.approx(float(grad.max()), rel=1e-5, abs=1e-7)
        assert summary["mean"] == pytest.approx(float(grad.mean()), rel=1e-4, abs=1e-7)
    assert steps.first_nonfinite is None


def test_step_train_cli_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["step", "examples/sqrt_grad_torch.py", "--fw", "torch", "--train"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "First non-finite value: sqrt_grad (SqrtBackward0) at examples/sqrt_grad_torch.py:21" in out
    assert "Phase: backward. It is the gradient of sqrt (sqrt) at examples/sqrt_grad_torch.py:21." in out
    assert main(["step", "examples/sqrt_grad_torch.py", "--fw", "torch", "--train", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["first_nonfinite"]["phase"] == "backward"


def test_step_train_refusals_are_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["step", "examples/or_gate_tf1.py", "--fw", "tf1", "--train"]) == 1
    assert "step --train steps PyTorch models" in capsys.readouterr().err
    assert main(["step", "examples/or_gate_torch.py", "--fw", "torch", "--train"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a scalar" in err and "loss_fn" in err
    code = main(["step", "examples/sqrt_grad_torch.py", "--fw", "torch", "--train", "--save-values", "v"])
    assert code == 1 and "--save-values does not go with --train" in capsys.readouterr().err


OPTIMIZED = """
import torch
from torch import nn
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
optimizer = torch.optim.SGD(model.parameters(), lr={lr}, momentum=0.9)
example_inputs = (torch.randn(8, 3),)
example_targets = (torch.randn(8, 1),)
def loss_fn(out, y):
    return nn.functional.mse_loss(out, y)
"""


def test_the_optimizers_update_is_stepped_on_copies_with_its_ratio(tmp_path: Path) -> None:
    path = tmp_path / "opt.py"
    path.write_text(OPTIMIZED.format(lr=0.1))
    found = loader.load_target(path, fw="torch")
    before = [p.detach().clone() for p in found.model.parameters()]
    steps = stepping.step_train_target(found)
    updates = [r for r in steps if steps.graph.node(r.node)["phase"] == "optimizer"]
    assert [steps.graph.node(r.node)["name"] for r in updates] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    # what SGD computes, on a copy of our own
    import copy

    model, optimizer = copy.deepcopy((found.model, found.optimizer))
    found.loss_fn(model(*found.example_inputs), *found.example_targets).backward()
    optimizer.step()
    for rec, param in zip(updates, model.parameters(), strict=True):
        assert rec.summary is not None and rec.summary["mean"] == pytest.approx(float(param.mean()), rel=1e-5)
        ratio = steps.graph.node(rec.node)["attrs"]["update_to_weight"]
        assert 0 < ratio < 1
    # the user's model and optimizer are as they were
    assert all(torch.equal(a, b) for a, b in zip(before, found.model.parameters(), strict=True))
    assert all(p.grad is None for p in found.model.parameters()) and not found.optimizer.state
    assert [u["parameter"] for u in steps.as_dict()["updates"]] == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
    ]


def test_an_update_that_diverges_is_named_in_the_optimizer_phase(tmp_path: Path) -> None:
    path = tmp_path / "opt.py"
    path.write_text(OPTIMIZED.format(lr="float('inf')"))
    steps = stepping.step_train_target(loader.load_target(path, fw="torch"))
    doc = steps.as_dict()["first_nonfinite"]
    assert doc["phase"] == "optimizer" and doc["born"] is True


def test_an_optimizer_over_other_parameters_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "other.py"
    path.write_text(
        OPTIMIZED.format(lr=0.1).replace("model.parameters()", "[torch.nn.Parameter(torch.ones(2))]")
    )
    with pytest.raises(Exception, match=r"the optimizer updates parameters that are not the model's"):
        stepping.step_train_target(loader.load_target(path, fw="torch"))


def test_the_python_api_steps_a_training_step_of_a_live_model() -> None:
    import graphscope

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    steps = graphscope.step(
        model, (x,), targets=(y,), loss_fn=torch.nn.functional.mse_loss, optimizer=optimizer
    )
    phases = {steps.graph.node(r.node)["phase"] for r in steps}
    assert phases == {"forward", "backward", "optimizer"}
    assert steps.first_nonfinite is None
    assert all(p.grad is None for p in model.parameters()) and not optimizer.state
    # a model file gives its own targets and loss
    file_steps = graphscope.step("examples/sqrt_grad_torch.py", fw="torch", train=True)
    assert file_steps.first_nonfinite is not None and file_steps.first_nonfinite.op == "SqrtBackward0"


def test_the_update_starts_from_no_gradients_and_the_model_is_left_as_found() -> None:
    """A model with gradients and optimizer state from an earlier step: the stepped update is
    the one training takes after zero_grad() (not one on the stale gradients added to the new),
    and model, gradients and optimizer are as they were afterwards."""
    import copy

    from graphscope.stepping import torch_train

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(8, 3), torch.randn(8, 1)

    def loss_fn(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.mse_loss(out, target)

    loss_fn(model(x), y).backward()
    optimizer.step()  # momentum buffers, and gradients left on the parameters
    saved = copy.deepcopy((model.state_dict(), optimizer.state_dict(), [p.grad for p in model.parameters()]))
    reference, ref_optimizer = copy.deepcopy((model, optimizer))
    ref_optimizer.zero_grad(set_to_none=True)
    loss_fn(reference(x), y).backward()
    ref_optimizer.step()

    steps = torch_train.step_train(
        model, (x,), name="m", example_targets=(y,), loss_fn=loss_fn, optimizer=optimizer
    )
    updates = {steps.graph.node(r.node)["name"]: r for r in steps if r.op.startswith("optimizer:")}
    assert set(updates) == {name for name, _ in reference.named_parameters()}
    for name, param in reference.named_parameters():
        summary = updates[name].summary
        assert summary is not None
        assert (summary["min"], summary["max"]) == pytest.approx(
            (float(param.min()), float(param.max())), rel=1e-6
        )
    states, opt_state, grads = saved
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in states.items())
    assert all(torch.equal(a, b) for a, b in zip(grads, [p.grad for p in model.parameters()], strict=True))
    now = optimizer.state_dict()
    assert all(
        torch.equal(opt_state["state"][i]["momentum_buffer"], now["state"][i]["momentum_buffer"])
        for i in opt_state["state"]
    )

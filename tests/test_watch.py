"""`graphscope watch`: many PyTorch training steps kept cheap, the first one that went
non-finite replayed in full from the state before it (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from graphscope import loader
from graphscope.cli import main
from graphscope.stepping import torch_watch

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def run(found: loader.Target, steps: int) -> torch_watch.Watch:
    return torch_watch.watch_target(found, steps=steps)


def test_a_diverging_learning_rate_is_found_at_its_step_and_replayed() -> None:
    found = loader.load_target(Path("examples/diverge_torch.py"), fw="torch")
    before = [p.detach().clone() for p in found.model.parameters()]
    result = run(found, 100)
    step = result.first_nonfinite_step
    assert step is not None and 3 < step < 100
    assert len(result.history) == step  # it stops there
    assert all(row["nonfinite"] == 0 for row in result.history[:-1])
    assert all(isinstance(row["loss"], float) for row in result.history[:-1])
    losses = [row["loss"] for row in result.history[:-1]]
    assert losses == sorted(losses)  # diverging: every step's loss above the last
    assert result.replay is not None
    culprit = result.as_dict()["first_nonfinite"]
    assert (
        culprit["phase"] == "forward" and culprit["op"] == "aten.mse_loss.default" and culprit["born"] is True
    )
    # the user's model and optimizer are as they were
    assert all(torch.equal(a, b) for a, b in zip(before, found.model.parameters(), strict=True))
    assert not found.optimizer.state


def test_a_run_without_nan_keeps_every_steps_numbers(tmp_path: Path) -> None:
    path = tmp_path / "calm.py"
    path.write_text(
        (ROOT / "examples" / "diverge_torch.py").read_text().replace("lr=1.5", "lr=0.001")
        + "\n\ndef batches():\n    for i in range(5):\n        yield example_inputs, example_targets\n"
    )
    result = run(loader.load_target(path, fw="torch"), 20)
    assert result.first_nonfinite_step is None and result.replay is None
    assert len(result.history) == 5  # batches() ran out first
    assert set(result.history[0]["module_grad_norms"]) == {"(top level)"}


def test_watch_cli_json_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", "examples/diverge_torch.py", "--fw", "torch", "--steps", "100", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (
        doc["first_nonfinite_step"] == len(doc["history"])
        and doc["first_nonfinite"]["op"] == "aten.mse_loss.default"
    )
    assert main(["watch", "examples/sqrt_grad_torch.py", "--fw", "torch", "--steps", "3"]) == 1
    assert "defines no optimizer" in capsys.readouterr().err
    bad = tmp_path / "bad.py"
    bad.write_text(
        (ROOT / "examples" / "diverge_torch.py").read_text()
        + "\n\ndef batches():\n    yield example_inputs\n"
    )
    assert main(["watch", str(bad), "--fw", "torch", "--steps", "3"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "batches() must yield (inputs, targets) pairs" in err
    assert main(["watch", "examples/diverge_torch.py", "--fw", "torch", "--steps", "0"]) == 2


def test_the_python_api_watches_a_live_model() -> None:
    import graphscope

    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.5)
    x, y = torch.randn(64, 8) * 3, torch.randn(64, 1)
    result = graphscope.watch(
        model, (x,), steps=100, targets=(y,), loss_fn=torch.nn.functional.mse_loss, optimizer=optimizer
    )
    assert result.first_nonfinite_step is not None and result.replay is not None
    assert model.weight.grad is None and not optimizer.state
    assert (
        graphscope.watch("examples/diverge_torch.py", steps=100).first_nonfinite_step
        == result.first_nonfinite_step
    )


def test_gradients_too_large_for_a_float32_norm_are_finite_and_measured() -> None:
    """watch reads the norms from one float32 torch._foreach_norm; values whose squares
    overflow float32 (a norm of inf while every value is finite) are measured in float64."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-30)
    x = torch.ones(2, 4)

    def loss_fn(out: torch.Tensor) -> torch.Tensor:
        return (out * 1e20).sum()  # d loss / d weight = 2e20 in each of 4 places

    result = torch_watch.watch(model, (x,), steps=3, name="m", loss_fn=loss_fn, optimizer=optimizer)
    assert result.first_nonfinite_step is None and len(result.history) == 3
    first = result.history[0]
    assert first["nonfinite"] == 0
    assert first["grad_norm"] == pytest.approx(4e20, rel=1e-6)
    assert first["module_grad_norms"] == {"(top level)": pytest.approx(4e20, rel=1e-6)}


DROPOUT = """
import random
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.5), nn.Linear(16, 1))
optimizer = torch.optim.SGD(model.parameters(), lr={lr})
example_inputs = (torch.randn(64, 8) * 3,)
example_targets = (torch.randn(64, 1),)


def loss_fn(output, target):
    return nn.functional.mse_loss(output * {scale}, target)
"""


def watch_keeping_every(
    monkeypatch: pytest.MonkeyPatch, path: Path, every: int, steps: int = 100
) -> tuple[torch_watch.Watch, int]:
    """watch with the state kept every ``every`` steps; and how many times it was kept."""
    from graphscope.stepping import torch_train, watching

    monkeypatch.setattr(watching, "_every", lambda *_: every)
    saved = []
    real_save = torch_train.TrainingState.save
    monkeypatch.setattr(
        torch_train.TrainingState, "save", lambda self, **kw: (saved.append(1), real_save(self, **kw))[1]
    )
    result = run(loader.load_target(path, fw="torch"), steps)
    return result, len(saved)


def test_the_state_kept_steps_before_is_rebuilt_by_taking_those_steps_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state is kept every few steps, not before each (copying a ResNet-50's weights and
    moments took a fifth of a step). At the non-finite step, the kept state and the steps
    since it, taken again with the same dropout masks, give the state before that step: the
    same history and the same replay as keeping it before every step."""
    path = tmp_path / "dropout.py"
    path.write_text(DROPOUT.format(lr=0.07, scale="1.0"))
    each, kept_each = watch_keeping_every(monkeypatch, path, 1)
    sparse, kept_sparse = watch_keeping_every(monkeypatch, path, 3)
    step = each.first_nonfinite_step
    assert step is not None and step > 4 and step % 3 != 1, (
        "the example must diverge steps after a kept state"
    )
    # (and once more each by the replay's step --train)
    assert kept_each == step + 1 and kept_sparse == -(-step // 3) + 1
    assert sparse.first_nonfinite_step == step and sparse.history == each.history
    assert sparse.notes == []
    assert each.replay is not None and sparse.replay is not None
    assert sparse.as_dict()["first_nonfinite"] == each.as_dict()["first_nonfinite"]
    assert [r.summary for r in sparse.replay] == [r.summary for r in each.replay]


def test_a_model_that_is_not_deterministic_gets_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's own random numbers are not kept with the state: a step taken again differs, and
    the replay says it may start from a state the run did not have."""
    path = tmp_path / "noisy.py"
    path.write_text(DROPOUT.format(lr=0.07, scale="(1 + random.random())"))
    result, _ = watch_keeping_every(monkeypatch, path, 100)
    assert result.first_nonfinite_step is not None
    [note] = result.notes
    assert "taken again gave loss" in note and "not deterministic" in note
    assert result.as_dict()["notes"] == [note]


def test_a_watched_run_trains_exactly_as_a_plain_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """watch's steps are plain training steps: the same losses and, at the end, the same
    parameters as a plain loop, bit for bit (the state kept every two steps). The parameters
    are checked only when the state is kept and after the last step. watch trains the user's
    model in place and writes its starting state back at the end: no copy of the model is made."""
    import copy

    from graphscope.stepping import watching

    monkeypatch.setattr(watching, "_every", lambda *_: 2)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.2), torch.nn.Linear(16, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 8), torch.randn(32, 1)
    mse = torch.nn.functional.mse_loss
    plain_model, plain_opt = copy.deepcopy((model, optimizer))
    started = [p.detach().clone() for p in model.parameters()]
    rng = torch.get_rng_state()
    losses = []
    for _ in range(7):
        plain_opt.zero_grad(set_to_none=True)
        loss = mse(plain_model(x), y)
        loss.backward()
        plain_opt.step()
        losses.append(loss.item())
    torch.set_rng_state(rng)
    monkeypatch.setattr(copy, "deepcopy", lambda obj: pytest.fail("watch copied the model"))
    read: list[list[torch.Tensor]] = []  # what each torch._foreach_norm pass read
    real_norms = torch_watch._norms
    monkeypatch.setattr(
        torch_watch, "_norms", lambda t, ts: read.append([x.clone() for x in ts]) or real_norms(t, ts)
    )
    result = torch_watch.watch(
        model, (x,), steps=7, name="m", example_targets=(y,), loss_fn=mse, optimizer=optimizer
    )
    assert result.first_nonfinite_step is None
    # the gradients are read after each step; the parameters only before the state is kept
    # (steps 3, 5 and 7) and after the last step, not after each step
    assert len(read) == 7 + 4
    assert [row["loss"] for row in result.history] == losses
    after_last = read[-1]  # the parameters, read after the last step
    assert all(torch.equal(a, b) for a, b in zip(after_last, plain_model.parameters(), strict=True))
    # and the user's model and optimizer are back where they started
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), started, strict=True))
    assert not optimizer.state and all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("fails_at", ["batches", "loss"])
def test_a_run_that_fails_midway_leaves_the_model_as_it_was(fails_at: str) -> None:
    """watch trains in place: when a later step raises (batches() or the loss), the state it
    started from is written back before the error reaches the user."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    model(x).sum().backward()  # the user's gradients, set aside as values and put back
    started = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.clone() for p in model.parameters()]
    calls = []

    def loss_fn(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        if fails_at == "loss" and len(calls) == 3:
            raise RuntimeError("the loss broke")
        return torch.nn.functional.mse_loss(out, target)

    def batches() -> Any:
        for i in range(10):
            if fails_at == "batches" and i == 2:
                raise ValueError("the data broke")
            yield (x,), (y,)

    with pytest.raises(Exception, match="broke"):
        torch_watch.watch(
            model,
            (x,),
            steps=5,
            name="m",
            example_targets=(y,),
            loss_fn=loss_fn,
            optimizer=optimizer,
            batches=batches,
        )
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), started, strict=True))
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True))
    assert not optimizer.state


def test_copies_of_the_state_equal_it_in_storage_of_their_own() -> None:
    """TrainingState's copies (one block per dtype and device, views into it): equal values,
    shapes and dtypes, whatever the mix (non-contiguous, 0-dim, empty, sparse, int), and none
    shares memory with what it copies."""
    from graphscope.stepping.torch_train import copy_tensors

    tensors = [
        torch.randn(3, 4).t(),  # non-contiguous
        torch.tensor(7.0),  # Adam's step count
        torch.empty(0, 5),
        torch.arange(6, dtype=torch.int64).view(2, 3),
        torch.randn(4, 4).to_sparse(),
        torch.randn(2, dtype=torch.float64),
        torch.randn(5, 1),
    ]
    copies = copy_tensors(torch, tensors)
    for t, c in zip(tensors, copies, strict=True):
        assert c.shape == t.shape and c.dtype == t.dtype and c.layout == t.layout
        assert torch.equal(c.to_dense(), t.to_dense())
        if t.layout == torch.strided and t.numel():
            assert c.untyped_storage().data_ptr() != t.untyped_storage().data_ptr()
    tensors[0].add_(1)
    assert not torch.equal(copies[0], tensors[0])


def test_a_parameter_made_infinite_by_a_finite_update_is_found_at_its_step() -> None:
    """Step 1's loss and gradients are finite, its update (lr 1e20 times gradients of 2e20)
    makes every weight -inf, and step 2's loss is the first non-finite loss: watch checks the
    parameters only when it keeps the state or finds a non-finite value, and then takes the
    steps since again, checked, to name step 1 (as a check after every step does)."""
    model = torch.nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e20)
    result = torch_watch.watch(
        model,
        (torch.ones(2, 4),),
        steps=5,
        name="m",
        loss_fn=lambda out: (out * 1e20).sum(),
        optimizer=optimizer,
    )
    assert result.first_nonfinite_step == 1 and len(result.history) == 1
    assert result.history[0]["nonfinite"] == 4 and isinstance(result.history[0]["loss"], float)
    assert result.replay is not None and result.as_dict()["first_nonfinite"]["phase"] == "optimizer"
    assert torch.equal(model.weight, torch.full((1, 4), 0.5)) and not optimizer.state


@pytest.mark.parametrize("every", [2, 100])
def test_a_parameter_gone_infinite_behind_a_clamp_is_found_when_the_state_is_checked(
    monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    """The weight goes -inf at step 1 and the loss reads it through a clamp: every later loss
    and gradient is finite. The check before keeping the state (every 2 steps), or after the
    last step (every 100), finds it, and the steps since are taken again to name step 1."""
    from graphscope.stepping import watching

    monkeypatch.setattr(watching, "_every", lambda *_: every)

    def loss_fn(out: torch.Tensor) -> torch.Tensor:
        return out.sum()

    model = torch.nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.5)

    class Clamped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.linear(x, self.inner.weight.clamp(-1, 1)) * 1e20

    clamped = Clamped()
    optimizer = torch.optim.SGD(clamped.parameters(), lr=1e20)
    result = torch_watch.watch(
        clamped, (torch.ones(2, 4),), steps=5, name="m", loss_fn=loss_fn, optimizer=optimizer
    )
    assert result.first_nonfinite_step == 1 and len(result.history) == 1
    assert result.history[0]["nonfinite"] == 4 and result.notes == []
    assert result.replay is not None


def test_another_optimizers_parameters_are_checked_after_every_step() -> None:
    """An optimizer not of torch.optim may make a parameter finite again: its parameters are
    checked after each step. This one writes inf at step 2 and puts the weight back at step 3."""

    class Flaky(torch.optim.SGD):
        calls = 0

        def step(self, closure: Any = None) -> Any:
            Flaky.calls += 1
            for p in self.param_groups[0]["params"]:
                if Flaky.calls == 2:
                    p.fill_(float("inf"))
                elif Flaky.calls == 3:
                    p.fill_(0.5)
            return None

    model = torch.nn.Linear(4, 1, bias=False)
    optimizer = Flaky(model.parameters(), lr=0.1)
    result = torch_watch.watch(
        model, (torch.ones(2, 4),), steps=5, name="m", loss_fn=lambda o: o.sum(), optimizer=optimizer
    )
    assert result.first_nonfinite_step == 2 and result.history[1]["nonfinite"] == 4

"""An optimizer's update taken a chunk of parameters at a time (``torch_update``, issue 18's
memory bound): the values are a real ``optimizer.step()``'s bit for bit, and parameters, state
and groups come back exactly; optimizers that are not known to be per-parameter take the whole
step."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from graphscope.stepping import torch_train, torch_update

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

OPTIMIZERS: list[tuple[str, dict[str, Any]]] = [
    ("AdamW", {"lr": 1e-2, "weight_decay": 0.1}),
    ("AdamW", {"lr": 1e-2, "foreach": True}),
    ("AdamW", {"lr": 1e-2, "fused": True}),
    ("Adam", {"lr": 1e-2}),
    ("Adam", {"lr": 1e-2, "amsgrad": True, "foreach": True}),
    ("Adam", {"lr": 1e-2, "fused": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "foreach": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "fused": True}),
    ("SGD", {"lr": 0.1}),
    ("RMSprop", {"lr": 1e-2, "momentum": 0.5, "centered": True}),
    ("Adagrad", {"lr": 1e-2}),
    ("Adadelta", {}),
    ("Adamax", {"lr": 1e-2}),
    ("NAdam", {"lr": 1e-2}),
    ("RAdam", {"lr": 1e-2, "decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("ASGD", {"lr": 1e-2, "t0": 0}),
    ("Rprop", {"lr": 1e-2}),
    ("Adafactor", {"lr": 1e-2}),
]


def _setup(name: str, options: dict[str, Any], *, earlier_steps: int) -> tuple[Any, Any]:
    """A small model in two parameter groups (two learning rates), ``earlier_steps`` real steps
    taken (0: a first step, no state yet), and fresh gradients on every parameter but one."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 7), torch.nn.LayerNorm(7), torch.nn.Linear(7, 3), torch.nn.Linear(3, 2)
    )
    params = list(model.parameters())
    groups = [{"params": params[:2]}, {"params": params[2:], "lr": 3e-3}]
    optimizer = getattr(torch.optim, name)(groups, **options)
    for _ in range(earlier_steps):
        for p in params:
            p.grad = torch.randn_like(p)
        optimizer.step()
    for p in params:
        p.grad = torch.randn_like(p)
    params[-1].grad = None  # a parameter without a gradient this step
    return model, optimizer


def _state(optimizer: Any) -> tuple[list[Any], dict[Any, dict[str, Any]], list[dict[str, Any]]]:
    """The optimizer as the user holds it: state entries (the same tensor objects) and values."""
    entries = {p: dict(entry) for p, entry in optimizer.state.items()}
    values = copy.deepcopy(optimizer.state_dict())
    return [values], entries, [dict(g) for g in optimizer.param_groups]


def _equal(a: Any, b: Any) -> bool:
    """Bitwise: tensors by their bytes (NaN included), containers item by item."""
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool((a.view(-1).view(torch.uint8) == b.view(-1).view(torch.uint8)).all())
            if a.numel()
            else a.shape == b.shape
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize("earlier_steps", [0, 2])
@pytest.mark.parametrize("chunk_values", [1, 40])
@pytest.mark.parametrize(("name", "options"), OPTIMIZERS)
def test_a_chunked_update_is_a_real_step_bit_for_bit_and_is_undone(
    name: str, options: dict[str, Any], chunk_values: int, earlier_steps: int
) -> None:
    model, optimizer = _setup(name, options, earlier_steps=earlier_steps)
    assert torch_update.per_parameter(torch, optimizer)
    reference, ref_optimizer = copy.deepcopy((model, optimizer))
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        q.grad = None if p.grad is None else p.grad.clone()  # deepcopy leaves gradients out
    ref_optimizer.step()
    params_before = [p.detach().clone() for p in model.parameters()]
    [values], entries, groups = _state(optimizer)
    versions = [t._version for t in model.parameters()]
    versions += [v._version for e in entries.values() for v in e.values() if isinstance(v, torch.Tensor)]

    seen: dict[int, Any] = {}
    calls = 0

    def step() -> None:
        nonlocal calls
        calls += 1
        optimizer.step()

    def visit(p: Any, new: Any) -> None:
        seen[id(p)] = new.clone()

    torch_update.step_in_chunks(torch, optimizer, visit, step=step, chunk_values=chunk_values)

    params = list(model.parameters())
    assert calls == (len(params) if chunk_values == 1 else 3)
    assert list(seen) == [id(p) for p in params]  # every parameter, in the groups' order
    for p, want, before in zip(params, reference.parameters(), params_before, strict=True):
        assert _equal(seen[id(p)], want.detach()), name
        assert _equal(p.detach(), before)
    # the user's parameters and state tensors were not even written
    now = [t._version for t in model.parameters()]
    now += [v._version for e in entries.values() for v in e.values() if isinstance(v, torch.Tensor)]
    assert now == versions
    # the optimizer as it was: no entry made by a first step, the same state tensors, same values
    assert {id(p) for p in optimizer.state} == {id(p) for p in entries}
    for p, entry in entries.items():
        assert optimizer.state[p].keys() == entry.keys()
        assert all(optimizer.state[p][k] is v for k, v in entry.items() if isinstance(v, torch.Tensor))
    assert _equal(optimizer.state_dict(), values)
    assert [dict(g) for g in optimizer.param_groups] == groups
    assert all(g["params"] is kept["params"] for g, kept in zip(optimizer.param_groups, groups, strict=True))
    if earlier_steps == 0 and name != "Adagrad":  # Adagrad makes its state in __init__
        assert not optimizer.state


def test_an_update_that_raises_leaves_the_optimizer_as_it_was() -> None:
    model, optimizer = _setup("Adam", {"lr": 1e-2}, earlier_steps=1)
    [values], _, groups = _state(optimizer)
    before = [p.detach().clone() for p in model.parameters()]
    calls = 0

    def step() -> None:
        nonlocal calls
        calls += 1
        optimizer.step()
        if calls == 2:
            raise RuntimeError("the second chunk failed")

    with pytest.raises(RuntimeError, match="second chunk"):
        torch_update.step_in_chunks(torch, optimizer, lambda p, old: None, step=step, chunk_values=1)
    assert all(_equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True))
    assert _equal(optimizer.state_dict(), values)
    assert [dict(g) for g in optimizer.param_groups] == groups


def _clip_hook(optimizer: Any, args: Any, kwargs: Any) -> None:
    torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1e-3)


def _clipping_sgd(params: Any, **options: Any) -> Any:
    """A user's SGD whose update of one parameter depends on all the gradients: its step clips
    them by their global norm."""

    sgd: Any = torch.optim.SGD

    class ClippingSGD(sgd):
        def step(self, closure: Any = None) -> Any:
            _clip_hook(self, (), {})
            return super().step(closure)

    return ClippingSGD(params, **options)


@pytest.mark.parametrize("kind", ["subclass", "pre-hook", "LBFGS"])
def test_an_optimizer_not_known_per_parameter_takes_the_whole_step(kind: str) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    if kind == "subclass":
        optimizer: Any = _clipping_sgd(model.parameters(), lr=0.5, momentum=0.9)
    elif kind == "pre-hook":
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        optimizer.register_step_pre_hook(_clip_hook)
    else:
        optimizer = torch.optim.LBFGS(model.parameters())
    assert not torch_update.per_parameter(torch, optimizer)
    x, y = torch.randn(8, 3), torch.randn(8, 1)

    def loss_fn(out: Any, target: Any) -> Any:
        return torch.nn.functional.mse_loss(out, target)

    before = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    if kind == "LBFGS":  # its step needs a closure: one sentence, and nothing changed
        from graphscope.errors import GraphscopeError

        with pytest.raises(GraphscopeError):
            torch_train.step_train(
                model, (x,), name="m", example_targets=(y,), loss_fn=loss_fn, optimizer=optimizer
            )
    else:
        reference, ref_optimizer = copy.deepcopy((model, optimizer))
        if kind == "pre-hook":  # a deep copy leaves the hooks out
            ref_optimizer.register_step_pre_hook(_clip_hook)
        loss_fn(reference(x), y).backward()
        ref_optimizer.step()
        steps = torch_train.step_train(
            model, (x,), name="m", example_targets=(y,), loss_fn=loss_fn, optimizer=optimizer
        )
        updates = {
            steps.graph.node(r.node)["name"]: r.summary for r in steps if r.op.startswith("optimizer:")
        }
        assert set(updates) == {name for name, _ in reference.named_parameters()}
        for name, param in reference.named_parameters():
            summary = updates[name]
            assert summary is not None
            assert (summary["min"], summary["max"]) == (
                float(param.detach().min()),
                float(param.detach().max()),
            )
    assert _equal(model.state_dict(), before[0]) and _equal(optimizer.state_dict(), before[1])
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", ["AdamW", "Adam", "SGD"])
def test_step_train_chunked_update_values_are_a_real_steps(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through step_train, several chunks: each update record is the real step's value, its
    ratio the real |new - old| / |old|, and model and optimizer (first step: no state) are left
    as found."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.Linear(16, 1)
    )
    model[2].bias.requires_grad_(False)  # a frozen parameter in the optimizer: no hook, no update
    options = {"lr": 0.05, "momentum": 0.9} if name == "SGD" else {"lr": 1e-2}
    optimizer = getattr(torch.optim, name)(model.parameters(), **options)
    x, y = torch.randn(8, 6), torch.randn(8, 1)
    monkeypatch.setattr(torch_update, "CHUNK_VALUES", 100)  # the 401 values in four chunks

    def loss_fn(out: Any, target: Any) -> Any:
        return torch.nn.functional.mse_loss(out, target)

    reference, ref_optimizer = copy.deepcopy((model, optimizer))
    loss_fn(reference(x), y).backward()
    ref_optimizer.step()
    before = copy.deepcopy(model.state_dict())
    old = {k: v.detach().clone() for k, v in model.named_parameters()}
    steps = torch_train.step_train(
        model, (x,), name="m", example_targets=(y,), loss_fn=loss_fn, optimizer=optimizer
    )
    updates = {steps.graph.node(r.node)["name"]: r for r in steps if r.op.startswith("optimizer:")}
    assert list(updates) == [n for n, _ in reference.named_parameters()]
    for pname, param in reference.named_parameters():
        rec, new = updates[pname], param.detach()
        assert rec.summary is not None
        assert (rec.summary["min"], rec.summary["max"]) == (float(new.min()), float(new.max()))
        assert rec.summary["mean"] == pytest.approx(float(new.double().mean()), rel=1e-6)
        ratio = steps.graph.node(rec.node)["attrs"]["update_to_weight"]
        want = float(
            torch.linalg.vector_norm((new - old[pname]).double())
            / torch.linalg.vector_norm(old[pname].double())
        )
        assert ratio == pytest.approx(want, rel=1e-12)
    assert _equal(model.state_dict(), before)
    assert not optimizer.state and all(p.grad is None for p in model.parameters())


def test_the_activations_are_freed_by_backward_before_the_update() -> None:
    """Backward releases the forward's saved activations as it goes, as in plain training: the
    update (and its copies) does not stack on them. The backward graph read them for its saved
    edges and once kept every one of them until the step ended."""
    import weakref

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    seen: list[Any] = []
    model[1].register_forward_hook(lambda module, args, out: seen.append(weakref.ref(out)))
    alive_at_update: list[bool] = []
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.register_step_pre_hook(lambda *_: alive_at_update.append(seen[0]() is not None))

    def loss_fn(out: Any, target: Any) -> Any:
        return torch.nn.functional.mse_loss(out, target)

    x, y = torch.randn(8, 3), torch.randn(8, 1)
    torch_train.step_train(model, (x,), name="m", example_targets=(y,), loss_fn=loss_fn, optimizer=optimizer)
    assert alive_at_update == [False]


def test_the_update_is_taken_during_backward_and_frees_each_gradient_it_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A parameter's gradient, once final, is used by its chunk's update and freed while
    backward goes on, as training's next zero_grad() would: the step does not hold every new
    gradient beside the user's own, set aside. Records still come forward, backward, update."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(8, 8) for _ in range(4)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    monkeypatch.setattr(torch_update, "CHUNK_VALUES", 1)
    held: list[int] = []

    def first_layer_backward(module: Any, grad_in: Any, grad_out: Any) -> None:
        held.append(sum(p.grad is not None for p in model[1:].parameters()))

    model[0].register_full_backward_hook(first_layer_backward)
    x = torch.randn(4, 8, requires_grad=True)
    steps = torch_train.step_train(
        model, (x,), name="m", loss_fn=lambda out: out.square().mean(), optimizer=optimizer
    )
    assert held == [0]  # the later layers' six gradients, used and freed
    phases = [steps.graph.node(r.node)["phase"] for r in steps]
    assert phases == sorted(phases, key=["forward", "backward", "optimizer"].index)
    assert phases.count("optimizer") == 8

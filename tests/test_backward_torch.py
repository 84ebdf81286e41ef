"""``trace --backward`` for PyTorch: the autograd graph linked to the forward graph, the
training conventions of model.py, and each way they can be wrong.

Set GRAPHSCOPE_UPDATE_GOLDENS=1 to rewrite the goldens, then review the diff before committing.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from graphscope import ir, loader, tracers
from graphscope.cli import main
from graphscope.errors import GraphscopeError

from .conftest import assert_golden

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "torch"
EXAMPLES = ["mlp_train", "sqrt_grad"]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # source paths in the IR are relative to the working directory


def capture_example(example: str, entry: str | None = None) -> ir.Graph:
    found = loader.load_target(Path("examples") / f"{example}_torch.py", fw="torch", entry=entry)
    found.name = example
    return tracers.capture_target(found, backward=True)


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_matches_golden(example: str) -> None:
    graph = capture_example(example)
    text = ir.dumps(graph)
    assert_golden(GOLDEN / f"{example}.eager-backward.json", text)
    assert ir.loads(text) == graph


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_backward_node_differentiates_a_forward_node_and_shares_its_scope(example: str) -> None:
    g = capture_example(example)
    backward = [n for n in g.nodes() if n["phase"] == "backward"]
    assert backward and all(n["phase"] in ("forward", "backward") for n in g.nodes())
    for n in backward:
        if n["op"] == "grad_seed":  # the one bookkeeping node: d loss / d loss
            assert n["grad_of"] is None and n["kind"] == "const"
            continue
        fwd = g.node(n["grad_of"])
        assert fwd["phase"] == "forward"
        assert n["scope"] == fwd["scope"] and n["source"] == fwd["source"]
        if n["op"] == "AccumulateGrad":
            assert fwd["kind"] == "param" and n["outputs"] == fwd["outputs"]
        else:
            assert n["op"].endswith("Backward0") and fwd["kind"] == "op"
            assert n["canonical_op"] == "grad:" + fwd["canonical_op"]
    assert [n["id"] for n in g.nodes() if n["phase"] == "forward" and n["grad_of"] is not None] == []


def test_mlp_backward_graph_is_what_autograd_built() -> None:
    import torch

    g = capture_example("mlp_train")
    ops = sorted(n["op"] for n in g.nodes() if n["phase"] == "backward")
    assert ops == sorted(
        ["grad_seed", "MseLossBackward0", "AddmmBackward0", "AddmmBackward0", "TBackward0", "TBackward0"]
        + ["ReluBackward0"]
        + ["AccumulateGrad"] * 4
    )
    # each parameter gets exactly one gradient accumulation, shaped as the parameter
    found = loader.load_target(Path("examples/mlp_train_torch.py"), fw="torch")
    params = dict(found.model.named_parameters())
    accumulated = {g.node(n["grad_of"])["name"]: n for n in g.nodes() if n["op"] == "AccumulateGrad"}
    assert sorted(accumulated) == sorted(params)
    for pname, node in accumulated.items():
        assert node["outputs"][0]["shape"] == list(params[pname].shape)
        assert node["scope"] == pname.split(".")[:-1]
    # gradients flow from the seed to the loss's grad_fn, and from there to every parameter
    assert g.successors("grad_seed") == ["mse_loss_grad"]
    assert g.node("mse_loss_grad")["grad_of"] == "mse_loss"
    assert g.node("mse_loss")["scope"] == ["loss"] and g.outputs == ["output", "loss"]
    assert g.inputs == ["x", "target"]
    # the loss really is what model.py computes, and capture wrote no .grad
    assert all(p.grad is None for p in params.values())
    out = found.model(*found.example_inputs)
    loss = found.loss_fn(out, *found.example_targets)
    assert torch.isfinite(loss)
    assert not [n for n in g.nodes() if n["op"] == "aten.detach.default"]  # autograd's own


def test_sqrt_gradient_links_to_the_sqrt_line() -> None:
    g = capture_example("sqrt_grad")
    grad = g.node("sqrt_grad")
    assert grad["op"] == "SqrtBackward0" and grad["grad_of"] == "sqrt"
    assert grad["source"] == {"file": "examples/sqrt_grad_torch.py", "line": 21}
    assert g.node("offset_grad")["grad_of"] == "offset"
    assert g.outputs == ["output", "loss"]  # the output is the loss: no loss_fn needed


def test_entry_may_return_model_inputs_targets_and_loss_fn() -> None:
    by_entry = capture_example("mlp_train", entry="train_step")
    by_names = capture_example("mlp_train")
    assert by_entry == by_names


def test_python_api_traces_a_training_step_of_a_file_or_a_live_model() -> None:
    import torch

    import graphscope

    g = graphscope.trace("examples/mlp_train_torch.py", fw="torch", backward=True, name="mlp_train")
    assert g == capture_example("mlp_train")
    model = torch.nn.Linear(3, 1)
    live = graphscope.trace(
        model,
        (torch.randn(4, 3),),
        backward=True,
        example_targets=(torch.randn(4, 1),),
        loss_fn=torch.nn.functional.l1_loss,
    )
    assert live.name == "Linear" and live.capture == "eager"
    assert {n["op"] for n in live.nodes() if n["phase"] == "backward"} >= {"AbsBackward0", "AccumulateGrad"}
    with pytest.raises(GraphscopeError, match=r"^Linear: the model's output is a tensor of shape"):
        graphscope.trace(model, (torch.randn(4, 3),), backward=True)


def test_trace_backward_command_writes_the_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.json"
    assert main(["trace", "examples/mlp_train_torch.py", "--fw", "torch", "--backward", "-o", str(out)]) == 0
    g = ir.load(out)
    assert g.capture == "eager" and any(n["phase"] == "backward" for n in g.nodes())
    text, _ = capsys.readouterr()
    assert "phases    forward 14, backward 11" in text
    assert main(["info", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr()[0])
    assert doc["phases"] == {"forward": 14, "backward": 11}


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "model.py"
    path.write_text("import torch\nfrom torch import nn\n\n" + textwrap.dedent(body))
    return path


BAD = {
    "output-not-scalar": (
        """
        model = nn.Linear(3, 2)
        example_inputs = (torch.randn(4, 3),)
        """,
        "the model's output is a tensor of shape [4, 2], not a scalar, and the file defines no loss_fn",
    ),
    "loss-fn-raises": (
        """
        model = nn.Linear(3, 1)
        example_inputs = (torch.randn(4, 3),)
        example_targets = (torch.randn(4, 1),)
        def loss_fn(output, target):
            raise ValueError("no loss today")
        """,
        "loss_fn(output, *example_targets) raised ValueError: no loss today at ",
    ),
    "loss-fn-not-scalar": (
        """
        model = nn.Linear(3, 1)
        example_inputs = (torch.randn(4, 3),)
        example_targets = (torch.randn(4, 1),)
        def loss_fn(output, target):
            return (output - target) ** 2
        """,
        "loss_fn(output, *example_targets) returned a tensor of shape [4, 1], not a scalar",
    ),
    "targets-wrong-batch": (
        """
        model = nn.Linear(3, 1)
        example_inputs = (torch.randn(4, 3),)
        example_targets = (torch.randn(5, 1),)
        loss_fn = nn.functional.mse_loss
        """,
        "example_targets[0] has shape [5, 1], but the model's output has shape [4, 1]",
    ),
    "targets-broadcast": (
        """
        model = nn.Linear(3, 1)
        example_inputs = (torch.randn(4, 3),)
        example_targets = (torch.randn(4),)
        loss_fn = nn.functional.mse_loss
        """,
        "example_targets do not fit the model's output: Using a target size (torch.Size([4]))",
    ),
    "targets-do-not-fit": (
        """
        model = nn.Linear(3, 2)
        example_inputs = (torch.randn(4, 3),)
        example_targets = (torch.randn(4, 3),)
        loss_fn = nn.functional.mse_loss
        """,
        "example_targets do not fit the model's output (a tensor of shape [4, 2]): loss_fn raised RuntimeError",
    ),
    "no-trainable-parameters": (
        """
        model = nn.Linear(3, 1).requires_grad_(False)
        example_inputs = (torch.randn(4, 3),)
        example_targets = (torch.randn(4, 1),)
        loss_fn = nn.functional.mse_loss
        """,
        "the model has no parameters that require grad",
    ),
    "loss-fn-not-callable": (
        """
        model = nn.Linear(3, 1)
        example_inputs = (torch.randn(4, 3),)
        loss_fn = 3
        """,
        "loss_fn must be a function loss_fn(output, *targets), not an int",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_training_conventions_are_one_sentence_naming_the_file(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, words = BAD[case]
    path = _write(tmp_path, body)
    code = main(["trace", str(path), "--fw", "torch", "--backward"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"graphscope: error: {path}: "), lines[0]
    assert words in lines[0], lines[0]


def test_entry_returning_three_things_says_what_it_must_return(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        def step():
            return nn.Linear(3, 1), (torch.randn(4, 3),), (torch.randn(4, 1),)
        """,
    )
    with pytest.raises(GraphscopeError, match=r"or \(model, example_inputs, example_targets, loss_fn\)"):
        loader.load_target(path, fw="torch", entry="step")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--method", "fx"],
            "--backward with --fw torch --method fx is not supported; use --method eager or --method export",
        ),
        (["--check-dynamic"], "cannot be used together"),
    ],
)
def test_backward_with_other_options(args: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["trace", "examples/mlp_train_torch.py", "--fw", "torch", "--backward", *args])
    _, err = capsys.readouterr()
    assert code in (1, 2) and words in err


def test_backward_of_a_saved_graph_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["trace", str(GOLDEN / "or_gate.eager.json"), "--backward"])
    _, err = capsys.readouterr()
    assert code == 1 and "--backward needs a model.py" in err


def _live(model: object, *shapes: tuple[int, ...], loss: bool = True) -> ir.Graph:
    import torch

    torch.manual_seed(0)
    inputs = tuple(torch.randn(*s) for s in shapes)
    return tracers.capture_backward(
        model,
        inputs,
        fw="torch",
        example_targets=(torch.randn(shapes[0][0], 1),) if loss else None,
        loss_fn=torch.nn.functional.mse_loss if loss else None,
        name="m",
    )


def test_an_in_place_op_gets_its_own_gradient_not_its_input_s() -> None:
    from torch import nn

    g = _live(nn.Sequential(nn.Linear(3, 4), nn.ReLU(inplace=True), nn.Linear(4, 1)), (2, 3))
    grads = {n["op"]: n["grad_of"] for n in g.nodes() if n["phase"] == "backward"}
    assert g.node(grads["ReluBackward0"])["op"] == "aten.relu_.default"
    addmm = [n for n in g.nodes() if n["op"] == "AddmmBackward0"]
    assert sorted(g.node(n["grad_of"])["op"] for n in addmm) == ["aten.addmm.default"] * 2


def test_batch_norm_statistics_and_grads_are_left_as_they_were() -> None:
    import torch
    from torch import nn

    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = _live(model, (8, 3))
    assert any(n["op"] == "NativeBatchNormBackward0" for n in g.nodes())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters()) and model.training


def test_an_input_that_requires_grad_gets_its_accumulation_too() -> None:
    import torch
    from torch import nn

    model = nn.Linear(3, 1)
    x = torch.randn(2, 3, requires_grad=True)
    g = tracers.capture_backward(model, (x,), fw="torch", loss_fn=lambda out: out.sum(), name="m")
    accumulated = {g.node(n["grad_of"])["kind"] for n in g.nodes() if n["op"] == "AccumulateGrad"}
    assert accumulated == {"input", "param"} and x.grad is None


def test_a_model_on_the_meta_device_has_its_backward_graph_too() -> None:
    """Nothing is computed from values (the autograd graph is read, not run): no weights needed."""
    import torch
    from torch import nn

    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    g = tracers.capture_backward(
        model,
        (torch.randn(4, 3, device="meta"),),
        fw="torch",
        example_targets=(torch.randn(4, 1, device="meta"),),
        loss_fn=nn.functional.mse_loss,
        name="meta",
    )
    meta = capture_example("mlp_train")
    ops = sorted(n["op"] for n in g.nodes() if n["phase"] == "backward")
    assert ops == sorted(n["op"] for n in meta.nodes() if n["phase"] == "backward")
    assert g.node("0_weight_grad")["outputs"] == [{"shape": [8, 3], "dtype": "float32"}]

"""``trace --backward --method export`` for PyTorch: AOTAutograd's joint forward+backward ATen
graph, each backward op linked to the forward op it differentiates, checked against the eager
method's autograd graph of the same training step.

Set GRAPHSCOPE_UPDATE_GOLDENS=1 to rewrite the goldens, then review the diff before committing.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from graphscope import diffing, ir, loader, tracers
from graphscope.cli import main

from .conftest import assert_golden

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "torch"
EXAMPLES = ["mlp_train", "sqrt_grad"]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # source paths in the IR are relative to the working directory


def capture_example(example: str, method: str = "export") -> ir.Graph:
    found = loader.load_target(Path("examples") / f"{example}_torch.py", fw="torch")
    found.name = example
    return tracers.capture_target(found, method=method, backward=True)


def differentiated(g: ir.Graph) -> set[str]:
    """The forward ops (not parameters) that some backward node differentiates."""
    return {
        n["grad_of"]
        for n in g.nodes()
        if n["phase"] == "backward" and n["grad_of"] and g.node(n["grad_of"])["kind"] == "op"
    }


def assert_well_linked(g: ir.Graph) -> None:
    """Every backward node but the seed differentiates a forward node, whose scope and source
    it has; a parameter has at most one gradient output, shaped as the parameter (a buffer
    none)."""
    for n in g.nodes():
        if n["phase"] == "forward":
            assert n["grad_of"] is None
            continue
        if n["op"] == "tangent":  # d loss / d loss, where the backward pass starts
            assert n["grad_of"] is None and n["canonical_op"] == "grad_seed" and n["id"] in g.inputs
            continue
        if n["grad_of"] is None:  # the sum of the gradients of a value used twice, value unknown
            assert n["attrs"] == {"gradient_sum": True} and n["op"] == "aten.add.Tensor", n["id"]
            continue
        fwd = g.node(n["grad_of"])
        assert fwd["phase"] == "forward", n["id"]
        assert n["scope"] == fwd["scope"] and n["source"] == fwd["source"], n["id"]
        assert n["outputs"] and all(o["shape"] is not None and o["dtype"] for o in n["outputs"]), n["id"]
    grads = [n for n in g.nodes() if n["op"] == "grad_output"]
    linked = [n["grad_of"] for n in grads]
    assert len(set(linked)) == len(linked) and {g.node(i)["kind"] for i in linked} <= {"param", "input"}
    for n in grads:
        param = g.node(n["grad_of"])
        assert n["outputs"] == param["outputs"] and n["scope"] == param["scope"]
        assert n["canonical_op"] == "accumulate_grad" and n["id"] in g.outputs
    assert [n["op"] for n in g.nodes() if n["phase"] == "backward" and n["grad_of"] is None][:1] == [
        "tangent"
    ]


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_matches_golden(example: str) -> None:
    graph = capture_example(example)
    text = ir.dumps(graph)
    assert_golden(GOLDEN / f"{example}.export-backward.json", text)
    assert ir.loads(text) == graph
    assert_well_linked(graph)


def test_mlp_joint_graph_is_what_aot_autograd_built() -> None:
    import torch

    g = capture_example("mlp_train")
    assert g.capture == "export"
    backward = sorted(n["op"] for n in g.nodes() if n["phase"] == "backward" and n["kind"] == "op")
    # mse_loss_backward, relu's threshold_backward, and each linear's three matmul-shaped ops
    assert backward == sorted(
        ["aten.mse_loss_backward.default", "aten.threshold_backward.default", "aten.detach.default"]
        + ["aten.mm.default"] * 3
        + ["aten.t.default"] * 7
        + ["aten.sum.dim_IntList", "aten.view.default"] * 2
    )
    assert g.node("mse_loss_backward")["grad_of"] == "mse_loss"
    assert g.node("threshold_backward")["grad_of"] == "relu"
    assert {g.node(i)["grad_of"] for i in ("mm", "mm_1", "sum_1", "view")} == {"addmm_1"}
    assert g.node("mse_loss")["scope"] == ["loss"]
    # the loss's line is the loss_fn's in model.py, not graphscope's wrapper
    assert g.node("mse_loss")["source"] == {"file": "examples/mlp_train_torch.py", "line": 31}
    assert g.node("addmm")["source"] == {"file": "examples/mlp_train_torch.py", "line": 27}
    assert g.inputs == ["x", "target", "grad_seed"]
    assert g.outputs[:2] == ["output", "loss"]
    assert g.node("output")["outputs"] == [{"shape": [4, 1], "dtype": "float32"}]
    assert g.predecessors("output") == ["addmm_1"]  # the wrapper's detach is not the model's
    # the gradients are wired to the ops that compute them, shaped as torch's own .grad
    found = loader.load_target(Path("examples/mlp_train_torch.py"), fw="torch")
    model = found.model
    inputs, targets = tuple(found.example_inputs or ()), tuple(found.example_targets or ())
    loss = found.loss_fn(model(*inputs), *targets)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    for (pname, _), grad in zip(model.named_parameters(), grads):
        node = g.node(pname.replace(".", "_") + "_grad")
        assert node["outputs"][0]["shape"] == list(grad.shape)
        assert g.node(node["grad_of"])["name"] == pname
    assert sorted(n["grad_of"] for n in g.nodes() if n["op"] == "grad_output") == sorted(
        n["id"] for n in g.nodes() if n["kind"] == "param"
    )
    assert all(p.grad is None for p in model.parameters())  # capture wrote no .grad


def test_sqrt_gradient_links_to_the_sqrt_line() -> None:
    g = capture_example("sqrt_grad")
    grads = {n["op"]: n["grad_of"] for n in g.nodes() if n["phase"] == "backward"}
    assert grads["aten.div.Tensor"] == "sqrt"  # 1 / (2 sqrt(x)): the Inf at 0
    assert g.node("div")["source"] == {"file": "examples/sqrt_grad_torch.py", "line": 21}
    assert g.node("offset_grad")["grad_of"] == "offset"
    assert g.outputs == ["output", "loss", "offset_grad"]  # the output is the loss


# Forward ops whose gradient is the incoming gradient itself (an add's, a clone's, an expand that
# broadcasts nothing: GPT-2's attention has them): autograd makes a node for them
# (AddBackward0, CloneBackward0), AOTAutograd no ATen op.
PASS_THROUGH = {"add", "identity", "expand"}


def assert_same_forward_ops_differentiated(eager: ir.Graph, joint: ir.Graph) -> diffing.Diff:
    d = diffing.diff(eager, joint)
    ab = d.ab_map()
    for x, y in d.matched:  # a gradient is only ever paired with a gradient of the same op
        gx, gy = eager.node(x)["grad_of"], joint.node(y)["grad_of"]
        assert eager.node(x)["phase"] == joint.node(y)["phase"], (x, y)
        assert (gx is None) == (gy is None) and (gx is None or ab.get(gx) == gy), (x, y, gx, gy)
    in_eager, in_joint = differentiated(eager), differentiated(joint)
    assert {ab.get(f) for f in in_eager} >= in_joint
    missing = [eager.node(f) for f in in_eager if ab.get(f) not in in_joint]
    assert {n["canonical_op"] for n in missing} <= PASS_THROUGH, missing
    for n in missing:  # an expand without a gradient op expanded nothing
        if n["canonical_op"] == "expand":
            (src,) = eager.predecessors(n["id"])
            assert eager.node(src)["outputs"][0]["shape"] == n["outputs"][0]["shape"], n["id"]
    return d


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_same_forward_ops_are_differentiated_as_in_eager(example: str) -> None:
    eager, joint = capture_example(example, "eager"), capture_example(example)
    d = assert_same_forward_ops_differentiated(eager, joint)
    ab = d.ab_map()
    fwd = [n["id"] for n in eager.nodes() if n["phase"] == "forward" and n["kind"] == "op"]
    assert all(x in ab for x in fwd)  # every forward op of eager is in the joint graph
    for n in eager.nodes():
        if n["op"] == "AccumulateGrad":  # each parameter's gradient is the same parameter's
            assert joint.node(ab[n["id"]])["grad_of"] == ab[n["grad_of"]]
    if example == "mlp_train":
        assert differentiated(joint) == {ab[f] for f in differentiated(eager)}
    else:  # offset + x passes its gradient through: AddBackward0, and no ATen op
        assert {eager.node(f)["op"] for f in differentiated(eager)} - {
            joint.node(ab[f])["op"] for f in differentiated(eager) & set(ab) if ab[f] in differentiated(joint)
        } == {"aten.add.Tensor"}


def test_diff_command_between_the_two_methods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = {}
    for method in ("eager", "export"):
        paths[method] = tmp_path / f"{method}.json"
        args = ["trace", "examples/mlp_train_torch.py", "--fw", "torch", "--backward", "--method", method]
        assert main([*args, "-o", str(paths[method])]) == 0
    capsys.readouterr()
    assert main(["diff", str(paths["eager"]), str(paths["export"]), "--json"]) == 0
    doc = json.loads(capsys.readouterr()[0])
    eager, joint = ir.load(paths["eager"]), ir.load(paths["export"])
    ab = dict(doc["matched"])
    for x, y in doc["matched"]:  # only gradients of one forward op are paired
        assert eager.node(x)["phase"] == joint.node(y)["phase"]
        gx = eager.node(x)["grad_of"]
        assert gx is None or ab.get(gx) == joint.node(y)["grad_of"], (x, y)
    # no forward op is said to have changed: the two methods captured the same forward ops
    fwd_changes = [c for c in doc["changed"] if eager.node(c["a"])["phase"] == "forward"]
    assert {c["a"] for c in fwd_changes} <= {"x", "target", "hidden_weight", "out_weight"}, fwd_changes
    # eager's AddmmBackward0 computes what seven ATen ops do: it is none of them
    assert {"addmm_grad", "addmm_1_grad", "relu_grad"} <= set(doc["removed"])
    for c in doc["changed"]:
        x, y = c["a"], c["b"]
        if eager.node(x)["phase"] == "backward" and eager.node(x)["grad_of"]:
            siblings = [n for n in joint.nodes() if n["grad_of"] == joint.node(y)["grad_of"]]
            assert len(siblings) == 1, (x, y)
    # the joint graph's own backward ops are added, each the gradient of a matched forward op
    for y in doc["added"]:
        node = joint.node(y)
        assert node["phase"] == "backward" or node["op"] == "aten.detach.default", y
        assert node["grad_of"] is None or node["grad_of"] in ab.values()


def test_trace_command_prints_the_phases(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["trace", "examples/mlp_train_torch.py", "--fw", "torch", "--backward", "--method", "export"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "captured  torch" in out and "· export" in out
    assert "phases    forward 15, backward 22" in out


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "model.py"
    path.write_text("import torch\nfrom torch import nn\n\n" + textwrap.dedent(body))
    return path


def test_a_model_export_cannot_capture_is_refused_naming_eager(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        """
        class Branchy(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(3, 1)

            def forward(self, x):
                y = self.lin(x)
                if y.sum() > 0:
                    return y.sum()
                return -y.sum()

        model = Branchy()
        example_inputs = (torch.randn(4, 3),)
        """,
    )
    code = main(["trace", str(path), "--fw", "torch", "--backward", "--method", "export"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("graphscope: error: torch.export cannot capture this model: ")
    assert f"(at {path}:12)" in lines[0] and lines[0].endswith("; --method eager captures it")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            """
            model = nn.Linear(3, 2)
            example_inputs = (torch.randn(4, 3),)
            """,
            "the model's output is a tensor of shape [4, 2], not a scalar, and the file defines no loss_fn",
        ),
        (
            """
            model = nn.Linear(3, 1)
            example_inputs = (torch.randn(4, 3),)
            example_targets = (torch.randn(5, 1),)
            loss_fn = nn.functional.mse_loss
            """,
            "example_targets[0] has shape [5, 1], but the model's output has shape [4, 1]",
        ),
        (
            """
            model = nn.Linear(3, 1).requires_grad_(False)
            example_inputs = (torch.randn(4, 3),)
            example_targets = (torch.randn(4, 1),)
            loss_fn = nn.functional.mse_loss
            """,
            "the model has no parameters that require grad",
        ),
    ],
)
def test_bad_training_conventions_read_as_with_eager(
    body: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, body)
    code = main(["trace", str(path), "--fw", "torch", "--backward", "--method", "export"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"graphscope: error: {path}: ") and words in err


def _live(model: Any, loss_fn: Any, *shapes: tuple[int, ...]) -> ir.Graph:
    import torch

    torch.manual_seed(0)
    inputs = tuple(torch.randn(*s) for s in shapes)
    return tracers.capture_backward(
        model,
        inputs,
        fw="torch",
        method="export",
        example_targets=(torch.randn(shapes[0][0], 1),),
        loss_fn=loss_fn,
        name="m",
    )


def test_a_loss_module_is_under_loss_and_no_stack_anchor_is_left_behind() -> None:
    from torch import nn
    from torch.fx import proxy

    before = set(proxy._STACK_TRACE_ANCHORS)
    g = _live(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1)), nn.MSELoss(), (2, 3))
    assert g.node("mse_loss")["scope"] == ["loss"]
    assert g.node("mse_loss_backward")["scope"] == ["loss"]
    assert {n["scope"][0] for n in g.nodes() if n["kind"] == "param"} == {"0", "2"}
    assert_well_linked(g)

    def loss_fn(output: Any, target: Any) -> Any:
        return ((output - target) ** 2).mean()

    g = _live(nn.Linear(3, 1), loss_fn, (2, 3))
    assert g.node("pow_1")["source"]["line"] == loss_fn.__code__.co_firstlineno + 1
    assert set(proxy._STACK_TRACE_ANCHORS) == before


def test_the_gradient_sum_of_a_value_used_twice_differentiates_that_value_s_op() -> None:
    """A residual connection: the relu's output is used twice, and the engine sums the two
    gradients it gets back (an add marked ``is_gradient_acc``, whose seq_nr is stale: it named
    the loss). The sum is the gradient of the relu's output, read by threshold_backward."""
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = nn.Linear(4, 4)
            self.inner = nn.Linear(4, 4)
            self.out = nn.Linear(4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.first(x))
            return self.out(self.inner(h) + h)

    g = _live(Residual(), nn.functional.mse_loss, (2, 4))
    (total,) = [n for n in g.nodes() if n["attrs"].get("gradient_sum")]
    assert total["op"] == "aten.add.Tensor" and total["phase"] == "backward"
    assert total["grad_of"] == "relu" and g.successors(total["id"]) == ["threshold_backward"]
    assert total["scope"] == [] and total["source"] == g.node("relu")["source"]
    assert [n["id"] for n in g.nodes() if n["grad_of"] == "mse_loss"] == ["mse_loss_backward"]
    assert_well_linked(g)


def test_batch_norm_statistics_and_grads_are_left_as_they_were() -> None:
    import torch
    from torch import nn

    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    g = _live(model, nn.functional.mse_loss, (8, 3))
    assert any(n["canonical_op"] == "grad_seed" for n in g.nodes())
    assert any("batch_norm_backward" in n["op"] for n in g.nodes() if n["phase"] == "backward")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters()) and model.training
    assert any("mutated buffer" in note for note in g.notes)
    assert_well_linked(g)


def test_an_input_that_requires_grad_gets_its_gradient_output_too() -> None:
    import torch
    from torch import nn

    model = nn.Linear(3, 1)
    x = torch.randn(2, 3, requires_grad=True)
    g = tracers.capture_backward(
        model, (x,), fw="torch", method="export", loss_fn=lambda out: out.sum(), name="m"
    )
    linked = {g.node(n["grad_of"])["kind"] for n in g.nodes() if n["op"] == "grad_output"}
    assert linked == {"input", "param"} and x.grad is None


def test_a_model_on_the_meta_device_has_its_joint_graph_too() -> None:
    import torch
    from torch import nn

    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    g = tracers.capture_backward(
        model,
        (torch.randn(4, 3, device="meta"),),
        fw="torch",
        method="export",
        example_targets=(torch.randn(4, 1, device="meta"),),
        loss_fn=nn.functional.mse_loss,
        name="meta",
    )
    ops = sorted(n["op"] for n in g.nodes() if n["phase"] == "backward")
    assert ops == sorted(n["op"] for n in capture_example("mlp_train").nodes() if n["phase"] == "backward")
    assert g.node("0_weight_grad")["outputs"] == [{"shape": [8, 3], "dtype": "float32"}]


GPT2_FILE = """
import torch
from transformers import GPT2Config, GPT2Model

torch.manual_seed(0)
config = GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=64, vocab_size=100, use_cache=False,
                    return_dict=False)
model = GPT2Model(config)
example_inputs = (torch.randint(0, 100, (2, 8)),)
example_targets = (torch.randn(2, 8, 32),)


def loss_fn(output, target):
    return torch.nn.functional.mse_loss(output[0], target)
"""


@pytest.mark.slow
def test_gpt2_training_step_from_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tiny GPT-2 (training mode: dropout) through the CLI: every backward op is linked,
    scoped and sourced like its forward op, sources are the library's or the user's lines,
    and a diff with the eager method pairs gradients only through their forward ops."""
    pytest.importorskip("transformers")
    model = tmp_path / "gpt2_train.py"
    model.write_text(GPT2_FILE)
    out = {m: tmp_path / f"{m}.json" for m in ("export", "eager")}
    for method, path in out.items():
        args = ["trace", str(model), "--fw", "torch", "--backward", "--method", method, "-o", str(path)]
        assert main(args) == 0, capsys.readouterr()[1]
    joint, eager = ir.load(out["export"]), ir.load(out["eager"])
    assert_well_linked(joint)
    ops = [n for n in joint.nodes() if n["kind"] == "op"]
    assert {"aten.native_layer_norm_backward.default", "aten.embedding_dense_backward.default"} <= {
        n["op"] for n in ops
    }
    assert sum(n["phase"] == "backward" for n in ops) > 150
    files = {Path(n["source"]["file"]) for n in ops if n["source"]}
    assert all("graphscope" not in f.parts for f in files), files
    assert {f.name for f in files} >= {"modeling_gpt2.py", "gpt2_train.py"}
    assert joint.node("mse_loss")["source"]["file"].endswith("gpt2_train.py")
    # residual connections: a gradient sum differentiates the op whose value was used twice, or
    # (the residual stream itself, whose add passes gradients through) says it does not know
    sums = [n for n in joint.nodes() if n["attrs"].get("gradient_sum")]
    linked = [n for n in sums if n["grad_of"]]
    assert len(linked) >= len(sums) / 2
    assert all(len(joint.successors(n["grad_of"])) >= 2 for n in linked)
    assert [n["op"] for n in joint.nodes() if n["grad_of"] == "mse_loss"] == [
        "aten.mse_loss_backward.default"
    ]
    assert {tuple(n["scope"][:2]) for n in ops if n["phase"] == "backward"} >= {("h", "0"), ("h", "1")}
    assert_same_forward_ops_differentiated(eager, joint)


def test_a_plain_function_is_refused_naming_eager() -> None:
    import torch

    from graphscope.errors import GraphscopeError

    w = torch.randn(3, 1, requires_grad=True)
    with pytest.raises(
        GraphscopeError, match=r"^export cannot capture the backward graph of a plain function"
    ):
        try:
            tracers.capture_backward(
                lambda x: (x @ w).sum(), (torch.randn(2, 3),), fw="torch", method="export", name="f"
            )
        except GraphscopeError as exc:
            assert str(exc).endswith("; --method eager captures it")
            raise

"""``trace --fw tf --backward``: the gradient ops of a tf.function train step, each linked to the
forward op whose gradient function made it, and the training conventions' refusals.

Set GRAPHSCOPE_UPDATE_GOLDENS=1 to rewrite the goldens, then review the diff before committing.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from graphscope import ir, loader, tracers
from graphscope.cli import main

from .conftest import assert_golden

pytestmark = pytest.mark.tf

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "tf"
EXAMPLES = ["mlp_train_tf", "sqrt_grad_tf"]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def capture_example(example: str) -> ir.Graph:
    found = loader.load_target(Path("examples") / f"{example}.py", fw="tf")
    found.name = example
    return tracers.capture_target(found, backward=True)


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_matches_golden(example: str) -> None:
    graph = capture_example(example)
    text = ir.dumps(graph)
    assert_golden(GOLDEN / f"{example}.tf-function-backward.json", text)
    assert ir.loads(text) == graph


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_gradient_op_is_backward_and_linked_to_a_forward_node(example: str) -> None:
    g = capture_example(example)
    for n in g.nodes():
        if n["name"].startswith("gradient_tape/"):
            assert n["phase"] == "backward" and n["grad_of"] is not None, n["id"]
            fwd = g.node(n["grad_of"])
            assert fwd["phase"] == "forward" and n["scope"] == fwd["scope"]
            assert fwd["op"] != "ReadVariableOp"
    seeds = [n for n in g.nodes() if n["phase"] == "backward" and n["grad_of"] is None]
    assert [n["op"] for n in seeds] == ["Const"]  # the ones tape.gradient starts from


def test_mlp_gradients_come_from_their_forward_ops_and_reach_each_variable() -> None:
    g = capture_example("mlp_train_tf")
    grad_of = {n["id"]: n["grad_of"] for n in g.nodes() if n["phase"] == "backward"}
    assert grad_of["gradient_tape/mlp/hidden/ReluGrad"] == "mlp/hidden/Relu"
    assert grad_of["gradient_tape/mlp/hidden/BiasAdd/BiasAddGrad"] == "mlp/hidden/BiasAdd"
    assert grad_of["gradient_tape/mlp/out/MatMul/MatMul_1"] == "mlp/out/MatMul"
    assert grad_of["gradient_tape/loss/sub/Neg"] == "loss/sub"
    # each returned gradient is its variable's, shaped as the variable
    returned = {g.node(grad_of[o])["name"]: g.node(o) for o in g.outputs if o in grad_of}
    assert sorted(returned) == ["mlp/hidden/bias", "mlp/hidden/kernel", "mlp/out/bias", "mlp/out/kernel"]
    assert returned["mlp/hidden/kernel"]["outputs"][0]["shape"] == [3, 8]
    assert g.inputs == ["inputs", "target"]
    assert g.node("loss/Mean")["scope"] == ["loss"]


def test_sqrt_gradient_links_to_the_sqrt() -> None:
    g = capture_example("sqrt_grad_tf")
    (sqrt_grad,) = [n for n in g.nodes() if n["op"] == "SqrtGrad"]
    assert g.node(sqrt_grad["grad_of"])["op"] == "Sqrt"


def test_a_tf_function_the_model_calls_differentiates_as_one_call() -> None:
    import tensorflow as tf

    import graphscope

    found = loader.load_target(Path("examples/or_gate_tf.py"), fw="tf")  # __call__ is a tf.function
    g = graphscope.trace(
        found.model,
        found.example_inputs,
        fw="tf",
        backward=True,
        example_targets=(tf.ones((4, 1)),),
        loss_fn=lambda output, target: tf.reduce_mean((output - target) ** 2),
    )
    (call_grad,) = [n for n in g.nodes() if n["op"] == "PartitionedCall"]
    assert (
        call_grad["phase"] == "backward" and g.node(call_grad["grad_of"])["op"] == "StatefulPartitionedCall"
    )
    returned = [g.node(o) for o in g.outputs if g.node(o)["phase"] == "backward"]
    assert sorted(g.node(n["grad_of"])["name"] for n in returned) == sorted(
        v.path if hasattr(v, "path") else v.name.removesuffix(":0") for v in found.model.trainable_variables
    )


def test_the_tape_is_left_as_it_was() -> None:
    from tensorflow.python import pywrap_tfe  # noqa: F401
    from tensorflow.python.eager import backprop

    capture_example("sqrt_grad_tf")
    import tensorflow as tf

    v = tf.Variable(2.0)
    with tf.GradientTape() as tape:
        y = v * v
    assert float(tape.gradient(y, v)) == 4.0  # the original gradient function is back
    assert backprop._gradient_function.__name__ == "_gradient_function"


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "model.py"
    path.write_text("import keras\nimport tensorflow as tf\n\n" + textwrap.dedent(body))
    return path


DENSE = """
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(UNITS)])
example_inputs = (tf.ones((4, 3)),)
"""

BAD = {
    "output-not-scalar": (
        DENSE.replace("UNITS", "2"),
        "the model's output is a tensor of shape [4, 2], not a scalar, and the file defines no loss_fn",
    ),
    "loss-fn-raises": (
        DENSE.replace("UNITS", "1")
        + "example_targets = (tf.ones((4, 1)),)\ndef loss_fn(output, target):\n    raise ValueError('no loss today')\n",
        "loss_fn(output, *example_targets) raised ValueError: no loss today",
    ),
    "loss-fn-not-scalar": (
        DENSE.replace("UNITS", "1")
        + "example_targets = (tf.ones((4, 1)),)\ndef loss_fn(output, target):\n    return (output - target) ** 2\n",
        "loss_fn(output, *example_targets) returned a tensor of shape [4, 1], not a scalar",
    ),
    "targets-wrong-batch": (
        DENSE.replace("UNITS", "1")
        + "example_targets = (tf.ones((5, 1)),)\ndef loss_fn(output, target):\n    return tf.reduce_mean(output - target)\n",
        "example_targets[0] has shape [5, 1], but the model's output has shape [4, 1]",
    ),
    "targets-do-not-fit": (
        DENSE.replace("UNITS", "2")
        + "example_targets = (tf.ones((4, 3)),)\ndef loss_fn(output, target):\n    return tf.reduce_mean(output - target)\n",
        "example_targets do not fit the model's output (a tensor of shape [4, 2])",
    ),
    "no-trainable-variables": (
        DENSE.replace("UNITS", "1") + "model.trainable = False\n",
        "the model has no trainable variables",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_training_conventions_are_one_sentence_naming_the_file(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, words = BAD[case]
    path = _write(tmp_path, body)
    code = main(["trace", str(path), "--fw", "tf", "--backward"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"graphscope: error: {path}: "), lines[0]
    assert words in lines[0], lines[0]


def test_tf1_training_graph_matches_golden_with_its_three_phases() -> None:
    found = loader.load_target(Path("examples/mlp_train_tf1.py"), fw="tf1")
    found.name = "mlp_train_tf1"
    g = tracers.capture_target(found, backward=True)
    text = ir.dumps(g)
    assert_golden(GOLDEN / "mlp_train_tf1.tf1-backward.json", text)
    assert ir.loads(text) == g
    phases = {n["id"]: n["phase"] for n in g.nodes()}
    assert phases["hidden/MatMul"] == "forward" and phases["loss/Mean"] == "forward"
    relu_grad = g.node("gradients/hidden/Relu_grad/ReluGrad")
    assert relu_grad["phase"] == "backward" and relu_grad["grad_of"] == "hidden/Relu"
    assert relu_grad["scope"] == ["hidden"]
    assert g.node("gradients/grad_ys_0")["grad_of"] is None  # the seed: bookkeeping
    updates = [n for n in g.nodes() if n["op"] == "ResourceApplyGradientDescent"]
    assert len(updates) == 4 and all(n["phase"] == "optimizer" for n in updates)
    assert phases["GradientDescent"] == "optimizer"
    for n in g.nodes():
        if n["name"].startswith("gradients/"):
            assert n["phase"] == "backward"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gradients/dense/MatMul_grad/MatMul_1", "dense/MatMul"),
        ("gradients_1/loss/Mean_grad/Tile", "loss/Mean"),
        ("gradients/out/add_grad/tuple/control_dependency", "out/add"),
        ("gradients/AddN", None),
        ("gradients/grad_ys_0", None),
    ],
)
def test_tf1_gradient_names_say_what_they_differentiate(name: str, expected: str | None) -> None:
    from graphscope.tracers.tf1_gradients import forward_name

    assert forward_name(name) == expected


def test_tf1_graph_without_gradients_is_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["trace", "examples/or_gate_tf1.py", "--fw", "tf1", "--backward"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.strip() == (
        "graphscope: error: examples/or_gate_tf1.py: the TF1 graph holds no gradient ops (gradients/...): "
        "build them into it with tf.compat.v1.gradients(loss, variables) or an optimizer's minimize(loss)"
    )

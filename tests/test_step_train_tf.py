"""`graphscope step --fw tf --train`: one Keras / tf.Module training step stepped, forward, loss,
the gradient ops of `tape.gradient` and the Keras optimizer's update; the first non-finite
value's phase, origin and, for a gradient, the forward op and source line (issue 18, TF side)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from graphscope import loader, stepping
from graphscope.cli import main

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.tf
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def phase(steps: stepping.Steps, rec: stepping.Record) -> str:
    return str(steps.graph.node(rec.node)["phase"])


def test_the_gradient_of_sqrt_at_zero_is_born_in_backward_at_the_forward_line() -> None:
    found = loader.load_target(Path("examples/sqrt_grad_tf.py"), fw="tf")
    before = found.model.offset.numpy().copy()
    steps = stepping.step_train_target(found)
    phases = [phase(steps, r) for r in steps]
    first_backward = phases.index("backward")
    # forward and loss first, then the gradients (the returned Identity ops of output and loss aside)
    assert "Sqrt" in [r.op for r in steps[:first_backward]]
    bad = steps.first_nonfinite
    assert bad is not None and bad.op == "SqrtGrad" and bad.born
    assert bad.summary is not None and bad.summary["posinf"] == 1
    doc = steps.as_dict()["first_nonfinite"]
    assert doc["phase"] == "backward" and doc["born"] is True
    assert doc["grad_of"] == {
        "node": "Sqrt",
        "op": "Sqrt",
        "source": {"file": "examples/sqrt_grad_tf.py", "line": 18},
    }
    assert (found.model.offset.numpy() == before).all()


def test_the_gradients_are_tensorflows_own() -> None:
    found = loader.load_target(Path("examples/mlp_train_tf.py"), fw="tf")
    steps = stepping.step_train_target(found)
    with tf.GradientTape() as tape:
        loss = found.loss_fn(found.model(*found.example_inputs, training=True), *found.example_targets)
    variables = found.model.trainable_variables
    grads = tape.gradient(loss, variables)
    # each returned gradient is linked (grad_of) to its variable's node, named by the variable
    returned = {
        steps.graph.node(steps.graph.node(r.node)["grad_of"])["name"]: r.summary
        for r in steps
        if phase(steps, r) == "backward" and r.op == "Identity"
    }
    assert set(returned) == {v.path for v in variables}
    for v, g in zip(variables, grads, strict=True):
        summary = returned[v.path]
        assert summary is not None and summary["shape"] == list(g.shape)
        assert summary["min"] == pytest.approx(float(tf.reduce_min(g)), rel=1e-5, abs=1e-7)
        assert summary["max"] == pytest.approx(float(tf.reduce_max(g)), rel=1e-5, abs=1e-7)
        assert summary["mean"] == pytest.approx(float(tf.reduce_mean(g)), rel=1e-4, abs=1e-7)
    loss_rec = next(r for r in steps if r.node == "Identity_1")
    assert loss_rec.summary is not None and loss_rec.summary["mean"] == pytest.approx(float(loss), rel=1e-6)
    assert steps.first_nonfinite is None
    assert "no optimizer in the model file" in steps.notes[0]


STATEFUL = """
import keras
import tensorflow as tf
keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input((3,)),
        keras.layers.Dense(8, activation="relu", name="hidden"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Dropout(0.5, name="drop"),
        keras.layers.Dense(1, name="out"),
    ],
    name="mlp",
)
optimizer = keras.optimizers.{optimizer}
example_inputs = (tf.random.normal((8, 3), seed=1),)
example_targets = (tf.random.normal((8, 1), seed=2),)
def loss_fn(output, target):
    return tf.reduce_mean(tf.square(output - target))
"""


def write(tmp_path: Path, optimizer: str = "SGD(learning_rate=0.1)", extra: str = "") -> Path:
    path = tmp_path / "model.py"
    path.write_text(STATEFUL.format(optimizer=optimizer) + textwrap.dedent(extra))
    return path


def state(found: loader.Target) -> list:
    values = [v.numpy().copy() for v in found.model.variables]
    if found.optimizer is not None and found.optimizer.built:
        values += [v.numpy().copy() for v in found.optimizer.variables]
    return values


def test_the_update_is_kerass_and_the_users_state_is_left_as_found(tmp_path: Path) -> None:
    # Adam with one step taken already: slots, iterations, batch-norm statistics all non-zero
    path = write(
        tmp_path,
        "Adam(learning_rate=0.01)",
        """
        with tf.GradientTape() as tape:
            first = loss_fn(model(*example_inputs, training=True), *example_targets)
        optimizer.apply(tape.gradient(first, model.trainable_variables), model.trainable_variables)
        """,
    )
    found = loader.load_target(path, fw="tf")
    before = state(found)
    steps = stepping.step_train_target(found)
    after = state(found)
    assert len(before) == len(after) and all((a == b).all() for a, b in zip(before, after, strict=True))
    updates = [r for r in steps if phase(steps, r) == "optimizer"]
    names = [steps.graph.node(r.node)["name"] for r in updates]
    assert names == [v.path for v in found.model.trainable_variables]
    assert [u["parameter"] for u in steps.as_dict()["updates"]] == names
    # Keras' own update, on the user's model (dropout's seed is put back, so the mask is the same)
    model, optimizer = found.model, found.optimizer
    with tf.GradientTape() as tape:
        loss = found.loss_fn(model(*found.example_inputs, training=True), *found.example_targets)
    optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
    old_values = {v.path: value for v, value in zip(model.variables, before, strict=False)}
    for rec, v in zip(updates, model.trainable_variables, strict=True):
        old = old_values[v.path]
        assert rec.summary is not None
        assert rec.summary["mean"] == pytest.approx(float(tf.reduce_mean(v)), rel=1e-5, abs=1e-7)
        assert rec.summary["max"] == pytest.approx(float(tf.reduce_max(v)), rel=1e-5, abs=1e-7)
        ratio = steps.graph.node(rec.node)["attrs"]["update_to_weight"]
        expected = float(tf.norm(v - old)) / float(tf.norm(old)) if float(tf.norm(old)) else None
        assert ratio == (pytest.approx(expected, rel=1e-4) if expected is not None else None)


def test_an_optimizer_not_built_is_left_unbuilt(tmp_path: Path) -> None:
    found = loader.load_target(write(tmp_path, "SGD(learning_rate=0.1, momentum=0.9)"), fw="tf")
    before = state(found)
    steps = stepping.step_train_target(found)
    assert not found.optimizer.built
    assert all((a == b).all() for a, b in zip(before, state(found), strict=True))
    assert {phase(steps, r) for r in steps} == {"forward", "backward", "optimizer"}


def test_a_nan_stored_in_a_weight_has_that_variable_as_origin(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        extra="\nk = model.get_layer('out').kernel\nk.assign(tf.tensor_scatter_nd_update(k, [[2, 0]], [float('nan')]))\n",
    )
    steps = stepping.step_train_target(loader.load_target(path, fw="tf"))
    doc = steps.as_dict()["first_nonfinite"]
    assert doc["phase"] == "forward" and doc["op"] == "ReadVariableOp" and doc["born"] is False
    assert doc["origin"]["kind"] == "param" and doc["origin"]["name"] == "mlp/out/kernel"


def test_an_update_that_diverges_is_named_in_the_optimizer_phase(tmp_path: Path) -> None:
    found = loader.load_target(write(tmp_path, "SGD(learning_rate=1e38)"), fw="tf")
    doc = stepping.step_train_target(found).as_dict()["first_nonfinite"]
    assert doc["phase"] == "optimizer" and doc["born"] is True and doc["op"] == "optimizer:SGD"


def test_step_train_cli_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["step", "examples/sqrt_grad_tf.py", "--fw", "tf", "--train"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "First non-finite value: gradient_tape/SqrtGrad (SqrtGrad) at examples/sqrt_grad_tf.py:18" in out
    assert "Phase: backward. It is the gradient of Sqrt (Sqrt) at examples/sqrt_grad_tf.py:18." in out
    assert (
        main(["step", "examples/sqrt_grad_tf.py", "--fw", "tf", "--train", "--json", "--until", "nonfinite"])
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["first_nonfinite"]["phase"] == "backward" and doc["steps"][-1]["op"] == "SqrtGrad"


@pytest.mark.parametrize(
    ("replace", "message", "expected"),
    [
        (
            "optimizer = keras.optimizers.",
            "optimizer = 'sgd' or keras.optimizers.",
            "must be a Keras optimizer",
        ),
        ("example_targets = (", "unused = (", "takes 1 target(s), and the file gives none"),
        ("example_targets = (", "example_targets = None and (", "example_targets[0] is None"),
        ("def loss_fn(output, target):", "def loss_function(output, target):", "not a scalar"),
    ],
    ids=["not-keras", "no-targets", "none-targets", "no-loss"],
)
def test_bad_training_files_are_one_sentence_and_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], replace: str, message: str, expected: str
) -> None:
    path = tmp_path / "model.py"
    path.write_text(STATEFUL.format(optimizer="SGD(0.1)").replace(replace, message))
    assert main(["step", str(path), "--fw", "tf", "--train"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and expected in err


def test_an_optimizer_over_other_variables_is_one_sentence(tmp_path: Path) -> None:
    path = write(tmp_path, extra="\noptimizer.build([keras.Variable([1.0, 2.0])])\n")
    found = loader.load_target(path, fw="tf")
    before = state(found)
    with pytest.raises(Exception, match=r"the optimizer updates variables that are not the model's"):
        stepping.step_train_target(found)
    assert all((a == b).all() for a, b in zip(before, state(found), strict=True))


def test_the_python_api_steps_a_training_step_of_a_live_keras_model() -> None:
    import graphscope

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)]
    )
    optimizer = keras.optimizers.Adam(1e-3)
    x, y = tf.random.normal((8, 3)), tf.random.normal((8, 1))
    weights = [v.numpy().copy() for v in model.variables]
    steps = graphscope.step(
        model, (x,), targets=(y,), loss_fn=keras.losses.MeanSquaredError(), optimizer=optimizer
    )
    assert {phase(steps, r) for r in steps} == {"forward", "backward", "optimizer"}
    assert steps.first_nonfinite is None and not optimizer.built
    assert all((a == v.numpy()).all() for a, v in zip(weights, model.variables, strict=True))
    file_steps = graphscope.step("examples/sqrt_grad_tf.py", fw="tf", train=True)
    assert file_steps.first_nonfinite is not None and file_steps.first_nonfinite.op == "SqrtGrad"


def test_the_python_api_tells_a_subclassed_keras_model_is_tensorflow() -> None:
    import graphscope

    class Net(keras.Model):  # defined here: its class's module is no framework's
        def __init__(self) -> None:
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x: tf.Tensor) -> tf.Tensor:
            return self.dense(x)

    model = Net()
    x, y = tf.ones((2, 3)), tf.zeros((2, 1))
    model(x)
    steps = graphscope.step(
        model, (x,), targets=(y,), loss_fn=lambda out, t: tf.reduce_mean(tf.square(out - t))
    )
    assert {phase(steps, r) for r in steps} == {"forward", "backward"}


def test_a_keras_loss_object_is_called_as_keras_calls_it_targets_first() -> None:
    import graphscope

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    x = tf.reshape(tf.linspace(-1.0, 1.0, 8), (2, 4))
    y = tf.constant([0, 2], tf.int64)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # loss_fn(output, target) would refuse: Keras' Loss objects take (y_true, y_pred)
    steps = graphscope.step(model, (x,), targets=(y,), loss_fn=loss_fn)
    losses = [
        r
        for r in steps
        if phase(steps, r) == "forward"
        and r.node.startswith("loss/")
        and r.summary
        and r.summary["shape"] == []
    ]
    assert losses
    expected = float(loss_fn(y, model(x, training=True)))
    assert losses[-1].summary is not None
    assert losses[-1].summary["mean"] == pytest.approx(expected, rel=1e-6)


EMBEDDING = """
import keras
import tensorflow as tf
keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input((5,), dtype="int32"),
        keras.layers.Embedding(20, 8, name="emb"),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(1, name="out"),
    ],
    name="bag",
)
optimizer = keras.optimizers.Adam(learning_rate=0.1)
example_inputs = (tf.constant([[1, 2, 3, 4, 5], [3, 3, 9, 0, 1]], dtype=tf.int32),)
example_targets = (tf.ones((2, 1)),)
def loss_fn(output, target):
    return tf.reduce_mean(tf.square(output - target))
"""


def test_an_embeddings_sparse_gradient_is_its_rows_and_the_update_is_kerass(tmp_path: Path) -> None:
    # tape.gradient gives an Embedding an IndexedSlices (10 looked-up rows of 8, and their row
    # indices): the function returns three tensors for it, not one, and each variable after it
    # must still get its own gradient, and the update Keras' sparse one.
    path = tmp_path / "model.py"
    path.write_text(EMBEDDING)
    found = loader.load_target(path, fw="tf")
    before = state(found)
    steps = stepping.step_train_target(found)
    assert all((a == b).all() for a, b in zip(before, state(found), strict=True))
    model, variables = found.model, found.model.trainable_variables
    with tf.GradientTape() as tape:
        loss = found.loss_fn(model(*found.example_inputs, training=True), *found.example_targets)
    grads = tape.gradient(loss, variables)
    returned = {
        steps.graph.node(steps.graph.node(r.node)["grad_of"])["name"]: r.summary
        for r in steps
        if phase(steps, r) == "backward" and r.op == "Identity" and r.summary["dtype"] == "float32"
    }
    assert set(returned) == {v.path for v in variables}
    for v, g in zip(variables, grads, strict=True):
        dense = tf.convert_to_tensor(g.values if isinstance(g, tf.IndexedSlices) else g)
        assert returned[v.path]["shape"] == list(dense.shape)
        assert returned[v.path]["max"] == pytest.approx(float(tf.reduce_max(dense)), rel=1e-5)
    found.optimizer.apply(grads, variables)
    updates = {steps.graph.node(r.node)["name"]: r.summary for r in steps if phase(steps, r) == "optimizer"}
    for v in variables:
        assert updates[v.path]["shape"] == list(v.shape)
        assert updates[v.path]["mean"] == pytest.approx(float(tf.reduce_mean(v)), rel=1e-5, abs=1e-7)

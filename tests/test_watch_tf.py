"""`graphscope watch --fw tf`: many Keras training steps in a compiled train step, the first one
that went non-finite replayed in full with `step --train` from the state before it (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphscope import loader
from graphscope.cli import main
from graphscope.errors import GraphscopeError
from graphscope.stepping import tf_watch, torch_watch

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.tf
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def state(found: loader.Target) -> list:
    values = [v.numpy().copy() for v in found.model.variables]
    if found.optimizer.built:
        values += [v.numpy().copy() for v in found.optimizer.variables]
    return values


def same(a: list, b: list) -> bool:
    return len(a) == len(b) and all((x == y).all() for x, y in zip(a, b, strict=True))


def test_a_diverging_learning_rate_is_found_at_its_step_and_replayed() -> None:
    found = loader.load_target(Path("examples/diverge_tf.py"), fw="tf")
    before = state(found)
    result = tf_watch.watch_target(found, steps=100)
    step = result.first_nonfinite_step
    assert step is not None and 3 < step < 100
    assert len(result.history) == step
    assert all(row["nonfinite"] == 0 for row in result.history[:-1])
    losses = [row["loss"] for row in result.history[:-1]]
    assert all(isinstance(x, float) for x in losses) and losses == sorted(losses)
    culprit = result.as_dict()["first_nonfinite"]
    assert culprit["phase"] == "forward" and culprit["op"] == "Square" and culprit["born"] is True
    assert culprit["source"] == {"file": "examples/diverge_tf.py", "line": 22}
    assert same(before, state(found)) and not found.optimizer.built


def test_the_history_is_kerass_own_training() -> None:
    """Each step's loss and gradient norm are those of Keras training the same model by hand."""
    found = loader.load_target(Path("examples/diverge_tf.py"), fw="tf")
    result = tf_watch.watch_target(found, steps=5)
    model, optimizer = found.model, found.optimizer
    for row in result.history:
        with tf.GradientTape() as tape:
            loss = found.loss_fn(model(*found.example_inputs), *found.example_targets)
        grads = tape.gradient(loss, model.trainable_variables)
        assert row["loss"] == pytest.approx(float(loss), rel=1e-5)
        assert row["grad_norm"] == pytest.approx(float(tf.linalg.global_norm(grads)), rel=1e-5)
        assert set(row["module_grad_norms"]) == {"linear_model/linear"}
        optimizer.apply(grads, model.trainable_variables)


def test_a_built_optimizers_state_is_put_back(tmp_path: Path) -> None:
    path = tmp_path / "calm.py"
    path.write_text(
        (ROOT / "examples" / "diverge_tf.py").read_text().replace("SGD(learning_rate=1.5)", "Adam(1e-3)")
        + "\noptimizer.build(model.trainable_variables)\n"
        + "\n\ndef batches():\n    for i in range(3):\n        yield example_inputs, example_targets\n"
    )
    found = loader.load_target(path, fw="tf")
    before = state(found)
    result = tf_watch.watch_target(found, steps=20)
    assert result.first_nonfinite_step is None and len(result.history) == 3  # batches() ran out
    assert same(before, state(found))


BAD_BATCHES = {
    "raises": (
        "def batches():\n    raise RuntimeError('no data here')\n    yield\n",
        "batches() raised RuntimeError",
    ),
    "targets-misfit": (
        "def batches():\n    yield example_inputs, (tf.zeros((32, 1)),)\n",
        "example_targets[0] has shape [32, 1], but the model's output has shape [64, 1]",
    ),
    "not-pairs": (
        "def batches():\n    yield example_inputs\n",
        "batches() must yield (inputs, targets) pairs",
    ),
    "wrong-shape": (
        "def batches():\n    yield (tf.zeros((4, 5)),), example_targets\n",
        "step 1 (a batch from batches()) failed: Input 0 with name 'None' of layer 'linear' is incompatible",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_BATCHES))
def test_a_bad_batches_is_one_sentence_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    code, expected = BAD_BATCHES[case]
    path = tmp_path / "bad.py"
    path.write_text((ROOT / "examples" / "diverge_tf.py").read_text() + "\n\n" + code)
    assert main(["watch", str(path), "--fw", "tf", "--steps", "3"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and str(path) in err


def test_watch_cli_json_and_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", "examples/diverge_tf.py", "--fw", "tf", "--steps", "100", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["first_nonfinite_step"] == len(doc["history"]) and doc["first_nonfinite"]["op"] == "Square"
    assert doc["history"][-1]["loss"] == "inf"
    assert main(["watch", "examples/sqrt_grad_tf.py", "--fw", "tf", "--steps", "3"]) == 1
    assert "defines no optimizer" in capsys.readouterr().err
    assert main(["watch", "examples/diverge_tf.py", "--fw", "tf", "--steps", "0"]) == 2


def test_the_python_api_watches_a_live_keras_model() -> None:
    import graphscope

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.SGD(learning_rate=1.5)
    x, y = tf.random.normal((64, 8), seed=1) * 3, tf.random.normal((64, 1), seed=2)
    weights = [v.numpy().copy() for v in model.variables]
    result = graphscope.watch(
        model,
        (x,),
        steps=100,
        targets=(y,),
        loss_fn=lambda out, t: tf.reduce_mean(tf.square(out - t)),
        optimizer=optimizer,
    )
    assert isinstance(result, torch_watch.Watch)
    assert result.first_nonfinite_step is not None and result.replay is not None
    assert same(weights, [v.numpy() for v in model.variables]) and not optimizer.built
    with pytest.raises(GraphscopeError, match=r"at least one step"):
        graphscope.watch(model, (x,), steps=0, targets=(y,), optimizer=optimizer)
    assert graphscope.watch("examples/diverge_tf.py", fw="tf", steps=100).first_nonfinite_step == 13


class _Elementwise(keras.layers.Layer):
    """out = f(w) * x, one weight per input feature."""

    def __init__(self, f: object, start: list[float]) -> None:
        super().__init__()
        self.f, self.start = f, start

    def build(self, shape: object) -> None:
        self.w = self.add_weight(shape=(len(self.start),), initializer="ones")
        self.w.assign(self.start)

    def call(self, x: object) -> object:
        return self.f(self.w) * x  # type: ignore[operator]


def _watch_one(f: object, start: list[float], lr: float) -> dict:
    model = keras.Sequential([keras.Input((len(start),)), _Elementwise(f, start)])
    x = tf.ones((1, len(start)))
    result = tf_watch.watch(
        model, (x,), steps=1, name="m", example_targets=(), loss_fn=lambda out: tf.reduce_sum(out),
        optimizer=keras.optimizers.SGD(learning_rate=lr),
    )  # fmt: skip
    return result.history[0]


def test_a_huge_finite_gradient_has_its_norm_and_no_nonfinite_count() -> None:
    """Gradients of 1e20: their float32 squares overflow, the values do not. The norm is the
    float64 one, and nothing is counted non-finite."""
    row = _watch_one(lambda w: w * 1e20, [1.0] * 8, lr=1e-30)
    assert row["nonfinite"] == 0
    assert row["grad_norm"] == pytest.approx(8**0.5 * 1e20, rel=1e-6)


def test_nonfinite_gradients_and_weights_are_counted_exactly() -> None:
    """The gradient of sqrt at three zeros is +inf three times, and SGD then makes those three
    weights -inf: six values, counted one by one."""
    row = _watch_one(tf.sqrt, [0.0, 0.0, 0.0, 1.0, 4.0], lr=0.1)
    assert row["nonfinite"] == 6 and row["grad_norm"] == "inf"


DROPOUT = """
import keras
import tensorflow as tf

keras.utils.set_random_seed(0)
model = keras.Sequential(
    [keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dropout(0.5), keras.layers.Dense(1)]
)
optimizer = keras.optimizers.SGD(learning_rate={lr})
example_inputs = (tf.random.normal((64, 8), seed=1) * 3,)
example_targets = (tf.random.normal((64, 1), seed=2),)


def loss_fn(output, target):
    return tf.reduce_mean(tf.square(output - target))
"""


def test_the_state_kept_steps_before_is_rebuilt_by_taking_those_steps_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in PyTorch: the state kept every few steps (Keras' dropout seed among the variables put
    back) and the steps since it taken again give the same history and the same replay."""
    from graphscope.stepping import watching

    path = tmp_path / "dropout.py"
    path.write_text(DROPOUT.format(lr=0.07))
    results = []
    for every in (1, 3):
        monkeypatch.setattr(watching, "_every", lambda *_, every=every: every)
        results.append(tf_watch.watch_target(loader.load_target(path, fw="tf"), steps=100))
    each, sparse = results
    step = each.first_nonfinite_step
    assert step is not None and step > 4 and step % 3 != 1, (
        "the example must diverge steps after a kept state"
    )
    # (Keras names the layers of a second load dense_2, dense_3: the numbers are compared)
    numbers = [[(r["loss"], r["grad_norm"], r["nonfinite"]) for r in w.history] for w in results]
    assert sparse.first_nonfinite_step == step and numbers[0] == numbers[1] and sparse.notes == []
    culprits = [w.as_dict()["first_nonfinite"] for w in results]
    assert [(c["op"], c["phase"], c["born"], c["source"]) for c in culprits] == [
        (culprits[0]["op"], culprits[0]["phase"], culprits[0]["born"], culprits[0]["source"])
    ] * 2
    assert each.replay is not None and sparse.replay is not None
    assert [r.summary for r in sparse.replay] == [r.summary for r in each.replay]


def test_the_exact_pass_keeps_each_gradients_norm_in_its_place() -> None:
    """The exact pass lays every gradient end to end (one cond, not one per tensor): each squared
    norm must come back to its own gradient, across dtypes, with missing and integer ones 0."""
    import numpy as np

    grads = [
        None,
        tf.constant([1e20, 2e20, 0.0], tf.float32),  # overflows a float32 sum of squares
        tf.constant([3, 4], tf.int32),
        tf.constant([[1.0, 2.0], [3.0, float("inf")]], tf.float16),
        tf.constant([0.5, -0.5], tf.float64),
        tf.constant([float("nan"), 1.0], tf.float32),
    ]
    squares, bad = tf.function(lambda: tf_watch._squared_norms(tf, grads))()
    expected = [0.0, 5e40, 0.0, float("inf"), 0.5, float("nan")]
    np.testing.assert_allclose(squares.numpy(), expected, rtol=1e-6)
    assert int(bad) == 2
    calm = [tf.constant([1.0, 2.0]), None, tf.constant([3.0], tf.float64)]
    squares, bad = tf.function(lambda: tf_watch._squared_norms(tf, calm))()
    assert squares.numpy().tolist() == [5.0, 0.0, 9.0] and int(bad) == 0
    variables = [
        tf.constant([1.0, float("-inf")]),
        tf.constant([7], tf.int64),
        tf.constant([float("nan")], tf.float16),
    ]
    assert int(tf.function(lambda: tf_watch._nonfinite_after(tf, variables))()) == 2

"""Stepping TensorFlow models: in-graph summaries, where a NaN is born, TF1 vs TF2, control flow."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from graphscope import loader, stepping, tracers
from graphscope.errors import GraphscopeError
from graphscope.stepping import numerics

from .conftest import save_doubler

pytestmark = pytest.mark.tf

ROOT = Path(__file__).resolve().parents[1]
STATS = ("min", "max", "mean", "std")
COUNTS = ("nan", "posinf", "neginf", "zeros")


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def load(example: str) -> loader.Target:
    fw = "tf1" if example.endswith("tf1") else "tf"
    return loader.load_target(Path("examples") / f"{example}.py", fw=fw)


def step_example(example: str) -> stepping.Steps:
    return stepping.step_target(load(example))


def _close(a: object, b: object, tol: float = 1e-5) -> bool:
    if a is None or b is None:
        return a is b
    assert isinstance(a, (int, float)) and isinstance(b, (int, float))
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


def assert_same_summary(ours: dict | None, ref: dict | None, tol: float = 1e-5) -> None:
    assert ours is not None and ref is not None
    assert ours["shape"] == ref["shape"] and ours["dtype"] == ref["dtype"], (ours, ref)
    assert [ours[k] for k in COUNTS] == [ref[k] for k in COUNTS], (ours, ref)
    for key in STATS:
        assert _close(ours[key], ref[key], tol), (key, ours, ref)


# -- summaries built in the graph --------------------------------------------------------------


def tf_summary(array: np.ndarray, *, graph: bool = False) -> dict:
    import tensorflow as tf

    t = tf.constant(array)
    if graph:  # inside a tf.function, as the stepper builds it
        vector = tf.function(lambda x: numerics.summarize_tf_graph(tf.identity(x)))(t).numpy()
    else:
        vector = numerics.summarize_tf_graph(t).numpy()
    summary, end = numerics.read_tf_summary(vector, t.dtype)
    assert end == len(vector)
    return summary


HAND_MADE = {
    "int32": np.array([1, 2, 0, 5], np.int32),
    "int64 2-d": np.array([[-7, 3], [0, 2**40]], np.int64),
    "uint8": np.array([[1, 2], [3, 4]], np.uint8),
    "bool": np.array([True, False, True]),
    "empty float": np.zeros((0, 3), np.float32),
    "empty int": np.zeros((2, 0), np.int32),
    "all NaN": np.full((2, 2), np.nan, np.float32),
    "all inf": np.array([np.inf, -np.inf], np.float64),
    "mixed": np.array([1, np.nan, np.inf, -np.inf, 0, 3, -2], np.float32),
    "float16": np.array([0.5, 1.5, -2, 0], np.float16),
    "float16 with NaN": np.array([0.5, np.nan, 65504], np.float16),
    "scalar float64": np.array(3.0),
}


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "in-graph"])
@pytest.mark.parametrize("name", list(HAND_MADE))
def test_tf_summaries_agree_with_numpy(name: str, graph: bool) -> None:
    array = HAND_MADE[name]
    assert_same_summary(tf_summary(array, graph=graph), numerics.summarize_numpy(array), tol=1e-6)


def test_mixed_non_finite_values_describe_the_finite_rest() -> None:
    s = tf_summary(HAND_MADE["mixed"])
    assert (s["nan"], s["posinf"], s["neginf"], s["zeros"]) == (1, 1, 1, 1)
    assert (s["min"], s["max"], s["mean"]) == (-2, 3, pytest.approx(0.5))
    assert not numerics.is_finite(s)


def test_strings_and_resources_get_shape_and_dtype_only() -> None:
    import tensorflow as tf

    for t, dtype, shape in [
        (tf.constant([["a", "b"]]), "string", [1, 2]),
        (tf.Variable(1.0).handle, "resource", []),
    ]:
        summary, _ = numerics.read_tf_summary(numerics.summarize_tf_graph(t).numpy(), t.dtype)
        assert summary == numerics.make(shape, dtype)


# TensorFlow's CPU kernels flush subnormal floats to zero (a 1e-42 is counted as a zero).
def test_stepped_summaries_of_every_dtype_agree_with_numpy() -> None:
    """The stepper's summaries are NodeDefs added to the GraphDef (not summarize_tf_graph's ops)."""
    import tensorflow as tf

    arrays = {f"c{i}": a for i, a in enumerate(HAND_MADE.values())}
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float16, [3], name="x")
        tf.identity(x * 2, name="doubled")
        for name, a in arrays.items():
            tf.identity(tf.constant(a), name=name)
        tf.constant([["a", "bc"]], name="text")
    half = np.array([1, np.inf, -3], np.float16)
    steps = stepping.step(graph, (half,), fw="tf1", name="dtypes")
    expected = {**arrays, "x": half, "doubled": half * 2}
    for name, a in expected.items():
        assert_same_summary(steps.record(name).summary, numerics.summarize_numpy(a), tol=1e-6)
    assert steps.record("text").summary == numerics.make([1, 2], "string")


# Large float32 tensors are reduced by multi-threaded ops (float32 sums) instead of
# DebugNumericSummary, which still describes those with NaN/Inf or a variance too small for them.
BIG = numerics.FAST_MIN_SIZE * 2


def _big(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(4, BIG // 4)).astype(np.float32)
    with_nan = normal.copy()
    with_nan[1, 7] = np.nan
    with_inf = normal.copy()
    with_inf[0, :3] = [np.inf, -np.inf, np.inf]
    huge = normal * np.float32(1e30)  # the sum of squares overflows float32
    return {
        "normal": normal,
        "relu": np.maximum(normal, 0),  # half zeros
        "shifted": normal + np.float32(3),  # variance / mean² = 0.11: reductions still used
        "offset": normal * np.float32(1e-3) + np.float32(100),  # |mean| >> std: the exact op
        "nan": with_nan,
        "inf": with_inf,
        "huge": huge,
        "zeros": np.zeros_like(normal),
        "constant": np.full_like(normal, 2.5),
        "odd size": rng.normal(size=(BIG + 1,)).astype(np.float32),  # no row length >= 16
        "blocks": np.maximum(rng.normal(size=(8, 1 << 18)), 0).astype(np.float32),  # zeros in 2 blocks
    }


@pytest.mark.parametrize("fw", ["tf", "tf1"])
def test_large_tensors_agree_with_numpy(fw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow as tf

    read = numerics.read_tf_summaries
    reduced = []  # the summaries that used the reductions ([-1] in the exact stream)

    def spy(streams: dict, summaries: list) -> list:
        reduced.append(int((streams["exact"] == -1).sum()))
        return read(streams, summaries)

    monkeypatch.setattr(numerics, "read_tf_summaries", spy)
    arrays = _big(0)
    names = list(arrays)
    if fw == "tf":

        @tf.function
        def model(*xs: tf.Tensor) -> list[tf.Tensor]:
            return [tf.identity(x, name=f"t{i}") for i, x in enumerate(xs)]

        inputs: tuple = tuple(tf.constant(a) for a in arrays.values())
        steps = stepping.step(model, inputs, fw="tf", name="big", keep=stepping.KEEP_ALL)
    else:
        graph = tf.Graph()
        with graph.as_default():
            for i, a in enumerate(arrays.values()):
                tf.identity(tf.compat.v1.placeholder(tf.float32, a.shape, name=f"x{i}") * 1.0, name=f"t{i}")
        inputs = tuple(arrays.values())
        steps = stepping.step(graph, inputs, fw="tf1", name="big", keep=stepping.KEEP_ALL)
    for i, name in enumerate(names):
        record = steps.record(f"t{i}")
        assert record is not None, name
        (value,) = steps.values[f"t{i}"]
        np.testing.assert_array_equal(value, arrays[name])
        assert_same_summary(record.summary, numerics.summarize_numpy(arrays[name]))
    # normal, relu, shifted and blocks: the inputs (and in TF1 the products x * 1.0; the
    # Identity ops are views of them)
    assert reduced == [4 if fw == "tf" else 8]


def test_views_share_their_inputs_summary() -> None:
    import tensorflow as tf

    @tf.function
    def model(x: tf.Tensor) -> tf.Tensor:
        flat = tf.reshape(x * 2.0, [-1], name="flat")
        return tf.expand_dims(tf.identity(flat, name="same"), 0, name="row")

    x = tf.constant(np.arange(BIG, dtype=np.float32).reshape(2, -1))
    steps = stepping.step(model, (x,), fw="tf", name="views")
    doubled = numerics.summarize_numpy(x.numpy() * 2)
    for node, shape in [("mul", [2, BIG // 2]), ("flat", [BIG]), ("same", [BIG]), ("row", [1, BIG])]:
        assert_same_summary(steps.record(node).summary, {**doubled, "shape": shape})


FLOATS = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False, width=32)
ARRAYS = st.one_of(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5), elements=FLOATS),
    hnp.arrays(
        np.int64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5), elements=st.integers(-1000, 1000)
    ),
    hnp.arrays(np.bool_, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5)),
)


@settings(max_examples=60, deadline=None)
@given(ARRAYS)
def test_tf_and_numpy_summaries_agree_on_any_array(array: np.ndarray) -> None:
    ref = numerics.summarize_numpy(array)
    big = ref["max"] is not None and max(abs(ref["max"]), abs(ref["min"])) > 1e30
    ours = tf_summary(array)
    assert [ours[k] for k in ("shape", *COUNTS)] == [ref[k] for k in ("shape", *COUNTS)]
    for key in STATS:
        if key in ("mean", "std") and big:
            continue  # sums of huge float32 values overflow differently in double and in float32
        assert _close(ours[key], ref[key], 1e-4), (key, ours, ref)


# -- where a NaN is born -----------------------------------------------------------------------


def test_nan_is_found_where_it_is_born() -> None:
    found = load("nan_tf")
    steps = stepping.step_target(found)
    bad = steps.first_nonfinite
    assert bad is not None
    assert (bad.node, bad.op) == ("compress/Log", "Log")
    assert bad.born_here
    assert bad.input_nodes == ["encoder/Tanh"]
    assert all(r.finite for r in steps[: bad.index])
    model, (x,) = found.model, found.example_inputs
    tanh = np.tanh(x.numpy() @ model.w1.numpy() + model.b1.numpy())
    assert bad.summary is not None and bad.summary["nan"] == int((tanh < 0).sum()) > 0
    assert bad.summary["neginf"] == int((tanh == 0).sum())
    assert steps.records[-1].summary["nan"] == 16  # the head spreads it to the whole output
    assert steps.graph.node("compress/Log")["outputs"][0]["stats"]["nan"] == bad.summary["nan"]  # attached


NAN_WEIGHT_TF = """
import numpy as np
import tensorflow as tf


class M(tf.Module):
    def __init__(self):
        w = np.ones((4, 3), np.float32)
        w[1, 2] = np.nan
        self.w = tf.Variable(w, name="w")

    @tf.function
    def __call__(self, x):
        return tf.nn.relu(tf.matmul(x, self.w))


model = M()
example_inputs = (np.ones((2, 4), np.float32),)
"""

NAN_WEIGHT_TF1 = """
import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1
kernel = np.ones((2, 3), np.float32)
kernel[1, 1] = np.nan
graph = tf.Graph()
with graph.as_default():
    x = tf1.placeholder(tf.float32, [4, 2], name="x")
    with tf1.variable_scope("dense"):
        w = tf1.get_variable("kernel", kernel.shape, initializer=tf1.constant_initializer(kernel))
    y = tf.nn.relu(tf.matmul(x, w), name="y")
example_inputs = (np.ones((4, 2), np.float32),)
"""


@pytest.mark.parametrize(
    ("fw", "code", "variable"),
    [("tf", NAN_WEIGHT_TF, "w"), ("tf1", NAN_WEIGHT_TF1, "dense/kernel")],
    ids=["tf", "tf1"],
)
def test_nan_held_by_a_variable_is_not_born_at_its_read(
    fw: str, code: str, variable: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ReadVariableOp that reads a NaN from a variable did not make it: ``born`` is false
    and the ``origin`` is the variable, as PyTorch's steppers say of a weight."""
    import json

    from graphscope.cli import main

    path = tmp_path / "nan_weight.py"
    path.write_text(code)
    assert main(["step", str(path), "--fw", fw, "--json"]) == 0
    bad = json.loads(capsys.readouterr().out)["first_nonfinite"]
    assert bad["op"] == "ReadVariableOp"
    assert bad["born"] is False
    assert bad["origin"]["kind"] == "param" and bad["origin"]["name"] == variable, bad["origin"]
    assert main(["step", str(path), "--fw", fw, "--until", "nonfinite"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"It is the weight {variable}: the value was stored in the model, not made." in out
    assert "Born here" not in out
    assert main(["step", "examples/nan_tf.py", "--fw", "tf", "--json"]) == 0
    bad = json.loads(capsys.readouterr().out)["first_nonfinite"]
    assert (bad["node"], bad["born"]) == ("compress/Log", True) and "origin" not in bad


def test_values_are_kept_for_the_nodes_asked() -> None:
    found = load("nan_tf")
    handle = "encoder/MatMul/ReadVariableOp/resource"  # a variable's handle: no values to keep
    steps = stepping.step(found.model, found.example_inputs, fw="tf", keep=["compress/Log", handle])
    assert handle not in steps.values
    (log,) = steps.values["compress/Log"]
    assert log.shape == (4, 16)
    assert int(np.isnan(log).sum()) == steps.record("compress/Log").summary["nan"]


# -- healthy models, TF1 and TF2 ---------------------------------------------------------------


def test_or_gate_is_finite_and_its_output_matches_numpy() -> None:
    found = load("or_gate_tf")
    steps = stepping.step_target(found)
    assert steps.first_nonfinite is None
    expected = numerics.summarize_numpy(found.model(*found.example_inputs).numpy())
    assert_same_summary(steps.record("out/Sigmoid").summary, expected)
    x = found.example_inputs[0].numpy()
    for w, b in found.model.layers:
        x = 1 / (1 + np.exp(-(x @ w.numpy() + b.numpy())))
    assert_same_summary(steps.record("out/Sigmoid").summary, numerics.summarize_numpy(x))
    assert steps.record("out/MatMul/ReadVariableOp/resource").summary == numerics.make([], "resource")


def test_record_ids_are_the_captures_node_ids() -> None:
    found = load("keras_tf")
    steps = stepping.step_target(found)
    graph = tracers.capture_target(found)
    ids = [n["id"] for n in graph.nodes()]
    assert [n["id"] for n in steps.graph.nodes()] == ids
    assert {r.node for r in steps} == {n["id"] for n in graph.nodes() if n["outputs"]}
    conv = next(r for r in steps if r.op == "Conv2D")
    assert conv.scope[:2] == ["small_cnn", "conv"] and conv.summary["shape"] == [1, 8, 8, 4]
    position = {r.node: r.index for r in steps}
    for e in graph.edges():  # an execution order
        if e.src in position and e.dst in position:
            assert position[e.src] < position[e.dst]


def test_tf1_and_tf2_or_gates_give_the_same_values() -> None:
    tf2, tf1 = step_example("or_gate_tf"), step_example("or_gate_tf1")
    for op in ("Sigmoid", "MatMul", "AddV2"):
        a = [r for r in tf2 if r.op == op]
        b = [r for r in tf1 if r.op == op]
        assert len(a) == len(b) == 3
        for ra, rb in zip(a, b):
            assert ra.scope == rb.scope
            assert_same_summary(ra.summary, rb.summary)


# -- control flow ------------------------------------------------------------------------------


def test_tf2_control_flow_is_stepped_at_the_calling_nodes() -> None:
    steps = step_example("control_flow_tf")
    for node in ("cond", "while"):
        assert steps.record(node).summary is not None
    result = steps.record("cond").summary
    assert (result["min"], result["max"]) == (2, 2)  # sum(x) > 0: the x * 2 branch
    assert _close(steps.records[-1].summary["mean"], math.tanh(math.tanh(math.tanh(2) + 1) + 1) + 1)
    assert "values inside the while loop 'while' are not stepped: only its outputs" in steps.notes
    assert "values inside the cond 'cond' are not stepped: only its outputs" in steps.notes


@pytest.mark.parametrize(
    ("sign", "taken", "dead", "not_run"),
    [(1, "cond/mul", "cond/Neg", 2), (-1, "cond/Neg", "cond/mul", 3)],  # switch_f, Neg | switch_t, mul, mul/y
)
def test_tf1_control_flow_steps_the_branch_taken_and_the_loop_outputs(
    sign: int, taken: str, dead: str, not_run: int
) -> None:
    found = load("control_flow_tf1")
    x = sign * found.example_inputs[0]
    steps = stepping.step(found.model, (x,), fw="tf1", name="control_flow_tf1")
    assert steps.record(taken) is not None and steps.record(dead) is None
    assert steps.record("cond/Merge").summary["mean"] == (2 if sign > 0 else 1)
    exit_ = steps.record("loop/Exit_1")
    assert exit_ is not None and steps.record("loop/Tanh") is None
    tf2 = stepping.step(load("control_flow_tf").model, (x,), fw="tf")
    assert_same_summary(exit_.summary, tf2.records[-1].summary)
    assert any(n.startswith("values inside the while loop 'loop' are not stepped") for n in steps.notes)
    assert f"{not_run} op(s) in cond branches not taken on this input did not run" in steps.notes


def test_tf1_nested_conds_are_evaluated() -> None:
    import tensorflow as tf

    tf1 = tf.compat.v1
    tf1.disable_control_flow_v2()
    try:
        graph = tf.Graph()
        with graph.as_default():
            x = tf1.placeholder(tf.float32, [3], name="x")
            inner = lambda: tf.cond(x[0] > 5.0, lambda: x * 10.0, lambda: x - 1.0, name="inner")  # noqa: E731
            tf.identity(tf.cond(tf.reduce_sum(x) > 0, inner, lambda: -x, name="outer"), name="y")
    finally:
        tf1.enable_control_flow_v2()
    steps = stepping.step(graph, (np.array([1.0, 2.0, 3.0], np.float32),), fw="tf1", name="nested")
    assert steps.record("y").summary["mean"] == 1  # x - 1
    assert steps.record("outer/inner/sub") is not None and steps.record("outer/inner/mul") is None
    assert steps.record("outer/Neg") is None


# -- errors ------------------------------------------------------------------------------------


def test_a_model_that_fails_while_running_is_one_sentence() -> None:
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])  # shapes known only when run
    def model(x: tf.Tensor) -> tf.Tensor:
        return tf.reshape(x, [-1, 7])

    with pytest.raises(
        GraphscopeError, match=r"failed while running on its example inputs at node 'Reshape'"
    ) as err:
        stepping.step(model, (tf.ones([2, 3]),), fw="tf", name="m")
    assert "\n" not in str(err.value) and "requested shape" in str(err.value)
    assert "tests/test_step_tf.py:" in str(err.value)  # the line that made the op


def test_a_model_that_raises_while_traced_is_one_sentence() -> None:
    import tensorflow as tf

    @tf.function
    def model(x: tf.Tensor) -> tf.Tensor:
        raise ValueError("no such layer")

    with pytest.raises(
        GraphscopeError, match=r"cannot trace this model: ValueError: no such layer \(at "
    ) as err:
        stepping.step(model, (tf.ones([2]),), fw="tf", name="m")
    assert "\n" not in str(err.value)


def test_inputs_that_do_not_fit_are_one_sentence() -> None:
    import tensorflow as tf

    signature = [tf.TensorSpec([None, 3], tf.float32)]
    model = tf.function(lambda x: x * 2.0)
    with pytest.raises(
        GraphscopeError, match=r"input 1 of m has shape \[2, 4\], but the model takes \[None, 3\]"
    ):
        stepping.step(model, (tf.ones([2, 4]),), fw="tf", name="m", signature=signature)
    with pytest.raises(
        GraphscopeError, match=r"needs input values: example_inputs in the model file, or --inputs FILE\.npz"
    ):
        stepping.step(model, None, fw="tf", name="m", signature=signature)
    graph = load("or_gate_tf1").model
    with pytest.raises(
        GraphscopeError, match=r"input 1 \(x\) has shape \[3, 2\], but the placeholder takes \[4, 2\]"
    ):
        stepping.step(graph, (np.zeros((3, 2), np.float32),), fw="tf1", name="g")
    with pytest.raises(GraphscopeError, match=r"placeholders to feed \(x\): define example_inputs"):
        stepping.step(graph, None, fw="tf1", name="g")


def test_a_saved_model_is_stepped_on_the_arrays_given_with_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SavedModel has no model file to hold example_inputs: --inputs gives the values."""
    import json

    from graphscope.cli import main

    saved = save_doubler(tmp_path / "doubler")
    assert main(["step", str(saved)]) == 1
    err = capsys.readouterr().err
    assert (
        "stepping doubler needs input values: example_inputs in the model file, or --inputs FILE.npz" in err
    )
    given = tmp_path / "x.npz"
    np.savez(given, np.array([[1, -2, 3], [-4, 5, -6]], dtype=np.float32))
    assert main(["step", str(saved), "--inputs", str(given), "--json"]) == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    assert steps[0]["summary"]["shape"] == [2, 3]
    assert steps[-1]["summary"]["max"] == 10.0 and steps[-1]["summary"]["zeros"] == 3
    np.savez(given, np.zeros((2, 4), dtype=np.float32))
    assert main(["step", str(saved), "--inputs", str(given)]) == 1
    assert "input 1 of doubler has shape [2, 4], but the model takes [None, 3]" in capsys.readouterr().err


def test_a_saved_model_is_stepped_inside_its_call(tmp_path: Path) -> None:
    """A SavedModel's signature is one StatefulPartitionedCall of the function it serves: each
    op of that function's body gets its own record (not only the call's outputs), and the last
    values are the signature's own output. A Keras model written by ``model.export``."""
    import keras
    import tensorflow as tf

    import graphscope
    from graphscope.stepping.values import to_numpy

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.LayerNormalization(),
            keras.layers.Dense(4),
        ]
    )
    saved = tmp_path / "exported"
    model.export(str(saved), verbose=False)
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    read = graphscope.trace(saved)  # as data: the served function's body is a subgraph
    body = {
        n["name"]
        for _, sub in read.walk_subgraphs()
        for n in sub.nodes()
        if n["kind"] == "op" and n["op"] not in ("NoOp", "StatefulPartitionedCall", "PartitionedCall")
    }
    assert {"MatMul", "BiasAdd", "Relu", "Rsqrt", "SquaredDifference"} <= {
        n["op"] for _, sub in read.walk_subgraphs() for n in sub.nodes()
    }
    found = loader.load_target(saved)
    found.example_inputs = (x,)
    steps = stepping.step_target(found, keep=stepping.KEEP_ALL)
    stepped = {r.node.partition("/")[2] for r in steps.records if r.outputs and r.outputs[0] is not None}
    assert body and body - stepped == set()  # every op of the body, below the call's name
    assert "values inside the function call" not in " ".join(steps.notes)
    out = steps.graph.outputs[0]
    (src,) = [e.src for e in steps.graph.edges() if e.dst == out and not e.control]
    got = to_numpy(steps.values[src][0])
    signature = tf.saved_model.load(str(saved)).signatures["serving_default"]
    (want,) = signature(tf.constant(x)).values()
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-6)
    np.testing.assert_allclose(got, model(x, training=False).numpy(), rtol=1e-5, atol=1e-6)

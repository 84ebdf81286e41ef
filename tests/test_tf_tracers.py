"""TensorFlow and ONNX capture: TF1 GraphDefs, tf.function, Keras, SavedModel, tf2onnx, .onnx files.

Set GRAPHSCOPE_UPDATE_GOLDENS=1 to rewrite the goldens, then review the diff before committing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graphscope import ir, loader, ops, tracers
from graphscope.cli import main

from .conftest import assert_golden, save_doubler

pytestmark = pytest.mark.tf

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "tf"

CASES = [
    ("or_gate_tf1", "tf1", "tf1"),
    ("or_gate_tf", "tf", "tf-function"),
    ("or_gate_tf", "tf", "onnx"),
    ("tensor_sum_tf1", "tf1", "tf1"),
    ("tensor_sum_tf", "tf", "tf-function"),
    ("tensor_sum_tf", "tf", "onnx"),
    ("control_flow_tf", "tf", "tf-function"),
    ("control_flow_tf1", "tf1", "tf1"),
    ("keras_tf", "tf", "tf-function"),
]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def capture_example(example: str, fw: str, method: str) -> ir.Graph:
    found = loader.load_target(Path("examples") / f"{example}.py", fw=fw)
    return tracers.capture(
        found.model,
        found.example_inputs,
        fw=found.fw or fw,
        method=method,
        name=example,
        signature=found.extras.get("input_signature"),
    )


@pytest.mark.parametrize(("example", "fw", "method"), CASES, ids=[f"{e}-{m}" for e, _, m in CASES])
def test_example_matches_golden(example: str, fw: str, method: str) -> None:
    graph = capture_example(example, fw, method)
    text = ir.dumps(graph)
    golden = GOLDEN / f"{example}.{method}.json"
    assert_golden(golden, text)


@pytest.mark.torch
@pytest.mark.onnx
def test_or_gate_has_the_same_layers_in_tf1_tf2_onnx_and_torch() -> None:
    layers = {
        "tf1": ops.layer_ops(capture_example("or_gate_tf1", "tf1", "tf1")),
        "tf-function": ops.layer_ops(capture_example("or_gate_tf", "tf", "tf-function")),
        "onnx": ops.layer_ops(capture_example("or_gate_tf", "tf", "onnx")),
    }
    found = loader.load_target("examples/or_gate_torch.py", fw="torch")
    for method in ("export", "fx", "jit-trace"):
        layers[f"torch {method}"] = ops.layer_ops(
            tracers.capture(found.model, found.example_inputs, fw="torch", method=method)
        )
    assert all(v == ["linear", "sigmoid"] * 3 for v in layers.values()), layers


def test_tf_function_control_flow_bodies_are_subgraphs() -> None:
    g = capture_example("control_flow_tf", "tf", "tf-function")
    calls = {n["op"]: n["subgraphs"] for n in g.nodes() if n["subgraphs"]}
    assert calls == {
        "StatelessIf": ["cond.then_branch", "cond.else_branch"],
        "StatelessWhile": ["while.cond", "while.body"],
    }
    body_ops = {n["op"] for n in g.subgraphs["while.body"].nodes()}
    assert "Tanh" in body_ops
    assert {n["op"] for n in g.subgraphs["cond.then_branch"].nodes()} >= {"Mul"}
    total = next(n for n in g.nodes() if n["op"] == "Sum")
    assert total["source"] == {"file": "examples/control_flow_tf.py", "line": 11}


def test_tf1_loop_keeps_its_frame_and_back_edge() -> None:
    g = capture_example("control_flow_tf1", "tf1", "tf1")
    back = [(g.node(u)["op"], g.node(v)["op"]) for u, v, _ in g.back_edges()]
    assert back and set(back) == {("NextIteration", "Merge")}
    tanh = next(n for n in g.nodes() if n["op"] == "Tanh")
    assert tanh["attrs"]["frame"].startswith("loop/")
    assert any("while frame" in note for note in g.notes)
    assert {n["op"] for n in g.nodes()} >= {"Switch", "Merge", "Enter", "Exit", "NextIteration", "LoopCond"}


def test_variables_are_params_named_by_the_variable() -> None:
    g = capture_example("or_gate_tf", "tf", "tf-function")
    params = sorted({n["name"] for n in g.nodes() if n["kind"] == "param"})
    assert "hidden1/kernel" in params and "out/bias" in params
    kernel = next(n for n in g.nodes() if n["name"] == "hidden1/kernel" and n["op"] == "ReadVariableOp")
    assert kernel["outputs"] == [{"shape": [2, 4], "dtype": "float32"}]


def test_keras_layer_names_are_scopes() -> None:
    g = capture_example("keras_tf", "tf", "tf-function")
    scopes = {tuple(n["scope"][:2]) for n in g.nodes() if n["kind"] == "op" and n["scope"]}
    assert {("small_cnn", "conv"), ("small_cnn", "classifier")} <= scopes
    conv = next(n for n in g.nodes() if n["op"] == "Conv2D")
    assert conv["outputs"] == [{"shape": [1, 8, 8, 4], "dtype": "float32"}]


def test_tensorflow_state_is_restored() -> None:
    import tensorflow as tf

    graph_before = tf.compat.v1.get_default_graph()
    capture_example("control_flow_tf1", "tf1", "tf1")
    capture_example("or_gate_tf1", "tf1", "tf1")
    capture_example("control_flow_tf", "tf", "tf-function")
    assert tf.executing_eagerly()
    assert tf.compat.v1.get_default_graph() is graph_before
    assert tf.compat.v1.control_flow_v2_enabled()


def _write_tf_files(tmp_path: Path) -> dict[str, Path]:
    import tensorflow as tf

    found = loader.load_target("examples/or_gate_tf1.py", fw="tf1")
    graph_def = found.model.as_graph_def()
    tf.io.write_graph(graph_def, str(tmp_path), "model.pb", as_text=False)
    tf.io.write_graph(graph_def, str(tmp_path), "model.pbtxt", as_text=True)
    (tmp_path / "model.pb").rename(tmp_path / "binary.dat")  # recognised by content
    (tmp_path / "model.pbtxt").rename(tmp_path / "text.txt")

    saved = save_doubler(tmp_path / "saved")
    return {"pb": tmp_path / "binary.dat", "pbtxt": tmp_path / "text.txt", "saved": saved}


def test_pb_pbtxt_and_savedmodel_load_by_content(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = _write_tf_files(tmp_path)
    assert loader.detect(files["pb"]) == "graphdef"
    assert loader.detect(files["pbtxt"]) == "graphdef-text"
    assert loader.detect(files["saved"]) == "savedmodel"
    docs = {}
    for key, path in files.items():
        assert main(["trace", str(path), "--json"]) == 0
        docs[key] = json.loads(capsys.readouterr().out)
    assert docs["pb"]["capture"] == docs["pbtxt"]["capture"] == "tf1"
    assert docs["pb"]["ops"] == docs["pbtxt"]["ops"]
    assert docs["pb"]["ops"]["Sigmoid"] == 3
    # Read from saved_model.pb: the call to the signature's wrapper, which calls the function.
    assert docs["saved"]["capture"] == "savedmodel"
    assert docs["saved"]["ops"] == {"PartitionedCall": 1, "Placeholder": 1}
    assert docs["saved"]["subgraph_names"] == ["PartitionedCall.f", "PartitionedCall.f_2"]
    assert docs["saved"]["inputs"][0]["outputs"] == [{"shape": [None, 3], "dtype": "float32"}]
    assert docs["saved"]["outputs"][0]["outputs"] == [{"shape": [None, 3], "dtype": "float32"}]
    # A graph file is one fixed graph: nothing to capture twice.
    for path in files.values():
        assert main(["trace", str(path), "--check-dynamic"]) == 1
        err = capsys.readouterr().err
        assert f"{path} is a saved graph: --check-dynamic needs a model to capture twice" in err


def _save_model_whose_initialiser_writes(folder: Path, written: Path, *, with_input: bool) -> Path:
    """A SavedModel with a resource whose initialiser writes ``written``: tf.saved_model.load
    runs it. ``with_input``: a signature taking x; else one taking nothing (steppable as is)."""
    import tensorflow as tf

    class Writer(tf.saved_model.experimental.TrackableResource):  # type: ignore[misc]
        def _create_resource(self) -> tf.Tensor:
            return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="")

        def _initialize(self) -> tf.Operation:
            tf.io.write_file(str(written), "written while loading")
            return tf.raw_ops.AssignVariableOp(resource=self.resource_handle, value=tf.constant(1.0))

    class Dense(tf.Module):
        def __init__(self) -> None:
            self.writer = Writer()
            self.w = tf.Variable(tf.ones([3, 4]), name="w")

    model = Dense()
    if with_input:
        model.call = tf.function(
            lambda x: tf.nn.relu(tf.matmul(x, model.w)),
            input_signature=[tf.TensorSpec([None, 3], tf.float32)],
        )
    else:
        model.call = tf.function(lambda: tf.nn.relu(model.w * 2.0), input_signature=[])
    saved = folder / ("saved_in" if with_input else "saved_none")
    tf.saved_model.save(model, str(saved), signatures=model.call)
    written.unlink(missing_ok=True)
    return saved


def test_savedmodel_is_read_without_running_its_initialisers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = tmp_path / "written.txt"
    saved = _save_model_whose_initialiser_writes(tmp_path, written, with_input=True)
    assert main(["trace", str(saved), "--json", "-o", str(tmp_path / "g.json")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert main(["diff", str(saved), str(tmp_path / "g.json")]) == 0
    capsys.readouterr()
    assert not written.exists()  # tf.saved_model.load would have written it
    assert doc["capture"] == "savedmodel"
    assert doc["ops"] == {"Placeholder": 1, "StatefulPartitionedCall": 1, "VarHandleOp": 1}
    graph = loader.load_target(saved)
    from graphscope import tracers

    g = tracers.capture_target(graph)
    assert not written.exists()
    assert [n["id"] for n in g.nodes()] == ["w", "serving_default_x", "StatefulPartitionedCall"]
    assert g.node("w")["kind"] == "param" and g.outputs == ["StatefulPartitionedCall"]
    # The saver (saver_filename, the save and restore calls) is left out; the function is there.
    body = g.subgraphs["StatefulPartitionedCall.f_2"]
    ops = {n["op"]: n["outputs"] for n in body.nodes()}
    assert ops["MatMul"] == ops["Relu"] == [{"shape": [None, 4], "dtype": "float32"}]
    assert ops["ReadVariableOp"] == [{"shape": [3, 4], "dtype": "float32"}]
    assert main(["tui", str(saved)]) == 1  # browsed, not stepped; then: stdout is no terminal
    assert "needs a terminal" in capsys.readouterr().err
    assert main(["trace", str(saved), "--method", "tf-function"]) == 1
    assert "would load it, which runs its initialisers" in capsys.readouterr().err
    assert not written.exists()


@pytest.mark.parametrize(
    ("name", "content"),
    [("saved_model.pb", b"\x0a\xff\xff\x03trunc"), ("saved_model.pbtxt", b"meta_graphs { nope")],
)
def test_damaged_savedmodel_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes
) -> None:
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / name).write_bytes(content)
    assert main(["trace", str(saved)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and f"{saved} is not a readable SavedModel" in err
    (saved / name).write_bytes(b"")  # parses as a SavedModel with no graph in it
    assert main(["trace", str(saved)]) == 1
    assert "holds no graph" in capsys.readouterr().err


def test_step_on_a_savedmodel_loads_and_runs_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    written = tmp_path / "written.txt"
    saved = _save_model_whose_initialiser_writes(tmp_path, written, with_input=False)
    assert main(["step", str(saved), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # the call is stepped inside (see test_a_saved_model_is_stepped_inside_its_call): its
    # results keep its name
    call = next(r["summary"] for r in doc["steps"] if r["node"] == "StatefulPartitionedCall")
    assert (call["shape"], call["min"], call["max"]) == ([3, 4], 2.0, 2.0)  # relu(ones * 2)
    assert written.exists()  # step is asked to run the model: loading it runs the initialiser


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("model.pb", b"\x0a\x05trunc", "is not a readable binary GraphDef (.pb)"),
        ("model.pbtxt", b"node { name: 'x' op: ", "is not a readable text GraphDef (.pbtxt)"),
        ("model.onnx", b"\x08\x07garbage-bytes-that-are-not-onnx", "is not a readable ONNX model"),
    ],
)
def test_damaged_graph_files_are_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, message: str
) -> None:
    pytest.importorskip("onnx")
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["trace", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and message in err and err.count("\n") == 1 and str(path) in err


@pytest.mark.onnx
def test_onnx_if_and_loop_bodies_are_subgraphs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import onnx
    from onnx import TensorProto, helper

    def branch(name: str, op: str) -> onnx.GraphProto:
        out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [2])
        return helper.make_graph([helper.make_node(op, ["x"], [f"{name}_out"])], name, [], [out])

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    c = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    node = helper.make_node(
        "If",
        ["c"],
        ["y"],
        name="choose",
        then_branch=branch("then", "Relu"),
        else_branch=branch("else", "Neg"),
    )
    model = helper.make_model(
        helper.make_graph([node], "g", [x, c], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    path = tmp_path / "if.model"  # recognised by content, not suffix
    onnx.save(model, str(path))
    assert loader.detect(path) == "onnx"
    g = tracers.capture(loader.load_target(path).model, None, fw="onnx", method="onnx", name="if")
    assert g.node("choose")["subgraphs"] == ["choose.then_branch", "choose.else_branch"]
    assert [n["op"] for n in g.subgraphs["choose.then_branch"].nodes()] == ["Relu"]
    assert g.node("choose")["outputs"] == [{"shape": [2], "dtype": "float32"}]
    assert main(["trace", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["subgraphs"] == 2


def test_check_dynamic_reports_retracing(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["trace", "examples/or_gate_tf.py", "--fw", "tf", "--check-dynamic", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["dynamic"]["static"] is True
    assert doc["dynamic"]["retraced"] is True
    assert any("traced a second concrete function" in n for n in doc["notes"])


SWISH_MODEL = """
import keras
import numpy as np

inputs = keras.Input((4,))
hidden = keras.layers.Dense(8, activation="swish")(inputs)
model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
example_inputs = (np.ones((2, 4), np.float32),)
"""


def test_check_dynamic_ignores_the_per_trace_gradient_counter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keras' swish is a tf.custom_gradient: each trace numbers its IdentityN's
    _gradient_op_type anew (CustomGradient-N). That is not the input changing the graph."""
    path = tmp_path / "swish.py"
    path.write_text(SWISH_MODEL)
    code = main(["trace", str(path), "--fw", "tf", "--check-dynamic", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["dynamic"]["verdict"] == "static", doc["dynamic"]
    assert doc["dynamic"]["changed"] == [] and doc["dynamic"]["specialised"] == []


@pytest.mark.parametrize(
    ("example", "verdict"), [("keras_tf", "shape-specialised"), ("control_flow_tf", "static")]
)
def test_check_dynamic_verdicts_of_tf_examples(
    example: str, verdict: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """keras_tf's Flatten folds the batch into a constant shape; control_flow_tf's If and While
    only record their output shapes (output_shapes), which follow the input."""
    code = main(["trace", f"examples/{example}.py", "--fw", "tf", "--check-dynamic", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)["dynamic"]
    assert doc["verdict"] == verdict, doc
    if verdict == "shape-specialised":
        assert {s["attr"] for s in doc["specialised"]} == {"value"}


@pytest.mark.slow
@pytest.mark.parametrize("app", ["ResNet50", "MobileNetV2"])
def test_keras_applications_have_shapes_on_99_percent_of_ops(app: str) -> None:
    import keras
    import numpy as np

    model = getattr(keras.applications, app)(weights=None)
    g = tracers.capture(
        model, (np.zeros((1, 224, 224, 3), np.float32),), fw="tf", method="tf-function", name=app
    )
    op_nodes = [n for n in g.nodes() if n["kind"] == "op"]
    complete = [
        n
        for n in op_nodes
        if n["outputs"]
        and all(o["dtype"] and o["shape"] is not None and None not in o["shape"] for o in n["outputs"])
    ]
    assert len(complete) / len(op_nodes) >= 0.99
    assert sum(1 for n in g.nodes() if n["op"] in ("Conv2D", "DepthwiseConv2dNative")) >= 50


def test_input_signature_stands_in_for_example_inputs(tmp_path: Path) -> None:
    import graphscope

    path = tmp_path / "model.py"
    path.write_text(
        "import keras\nimport tensorflow as tf\n"
        "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name='d')])\n"
        "input_signature = [tf.TensorSpec([None, 3], tf.float32)]\n"
    )
    for g in (graphscope.trace(path, fw="tf"), tracers.capture_target(loader.load_target(path, fw="tf"))):
        assert g.node(g.inputs[0])["outputs"] == [{"shape": [None, 3], "dtype": "float32"}]


@pytest.mark.onnx
def test_tf2onnx_of_a_keras_model_that_captures_constants_runs_as_keras_does() -> None:
    """A Normalization layer's mean and variance are constants the function captures: they were
    taken for inputs (the conversion failed, or asked for them as inputs)."""
    import keras
    import numpy as np
    import onnxruntime
    import tensorflow as tf

    from graphscope.tracers import tf_onnx

    norm = keras.layers.Normalization()
    norm.adapt(np.random.RandomState(0).randn(32, 4).astype("float32"))
    model = keras.Sequential([keras.Input((4,)), norm, keras.layers.Dense(3)])
    x = np.random.RandomState(1).randn(2, 4).astype("float32")
    proto = tf_onnx.convert(model, (tf.constant(x),))
    assert [i.name for i in proto.graph.input] == ["input_0"]
    session = onnxruntime.InferenceSession(proto.SerializeToString())
    (out,) = session.run(None, {"input_0": x})
    np.testing.assert_allclose(out, model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_a_tensorflow_error_raised_while_tracing_is_told_by_its_last_line() -> None:
    from graphscope.tracers.tf_onnx import tf_reason

    exc = ValueError(
        'in user code:\n\n    File "model.py", line 12, in call\n        return x @ self.w\n\n'
        "    ValueError: Dimensions must be equal, but are 3 and 4\n"
    )
    assert tf_reason(exc) == "ValueError: Dimensions must be equal, but are 3 and 4"
    assert tf_reason(RuntimeError("one line")) == "one line"


def test_a_tf1_graph_with_a_v2_while_has_only_its_real_output(tmp_path: Path) -> None:
    """Control flow v2 puts an Identity on every output of its While (the counter, the limit, an
    unused loop variable): they were listed as the graph's outputs beside the real one."""
    model = tmp_path / "while_v2.py"
    model.write_text(
        "import tensorflow as tf\n"
        "graph = tf.Graph()  # built in graph mode; TF2's while_loop is control flow v2\n"
        "with graph.as_default():\n"
        "    x = tf.compat.v1.placeholder(tf.float32, [2, 3], name='x')\n"
        "    _, h = tf.while_loop(lambda i, h: i < 3, lambda i, h: (i + 1, tf.tanh(h) + 1.0), [tf.constant(0), x], name='loop')\n"
        "    y = tf.identity(h * 2.0, name='y')\n"
    )
    found = loader.load_target(model, fw="tf1")
    graph = tracers.capture_target(found)
    assert graph.outputs == ["y"]
    assert any(n["op"] in ("While", "StatelessWhile") for n in graph.nodes())


def test_tf2onnx_converts_a_model_that_takes_a_dict() -> None:
    """keras-hub's backbones take a dict of tensors: tf2onnx feeds the flat tensors positionally,
    which the model refused ('expects 2 named input(s) ... but it received 1 input tensors')."""
    pytest.importorskip("tf2onnx")
    import keras
    import numpy as np

    import graphscope

    keras.utils.set_random_seed(0)
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    model = keras.Model({"a": a, "b": b}, keras.layers.Dense(2)(keras.layers.Add()([a, b * 2.0])))
    x = {"a": np.ones((2, 4), np.float32), "b": np.full((2, 4), 3.0, np.float32)}
    g = graphscope.trace(model, (x,), fw="tf", method="onnx")
    assert len(g.inputs) == 2
    assert [g.node(i)["outputs"][0]["shape"] for i in g.inputs] == [[2, 4], [2, 4]]


@pytest.mark.onnx
def test_check_dynamic_of_tf2onnx_is_not_fooled_by_its_node_numbering() -> None:
    """tf2onnx numbers the nodes it adds (``Relu6_min__5``) from one counter per process: the
    second conversion of --check-dynamic named them anew, and a static model was reported
    input-dependent."""
    import keras
    import numpy as np

    import graphscope
    from graphscope import dynamic

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu6"), keras.layers.Reshape((4, 4)),
         keras.layers.Flatten(), keras.layers.Dense(4), keras.layers.Softmax()]
    )  # fmt: skip
    x = np.ones((2, 8), np.float32)
    first = graphscope.trace(model, (x,), fw="tf", method="onnx")
    assert any("__" in n["name"] for n in first.nodes())  # nodes tf2onnx named
    second = graphscope.trace(model, dynamic.alternative_inputs((x,)), fw="tf", method="onnx")
    report = dynamic.compare(first, second, method="onnx")
    # Not input-dependent: the same nodes. tf2onnx folded Flatten's target to the batch's size
    # ([2, 16]), which the integer initializer's recorded value shows: shape-specialised.
    assert report.verdict == "shape-specialised", report
    assert [(c["a"], c["b"]) for c in report.specialised] == [([2, 16], [3, 16])]

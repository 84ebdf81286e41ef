"""Files that promise data (.pb, .pbtxt, SavedModels, .onnx, .json) are read as data: reading one
runs nothing in it and reads no other file, however it is built.

Each hostile file is written by hand here (protobufs built field by field), beside a secret
file it tries to reach; the secret's bytes must appear nowhere in what graphscope prints or
writes, and nothing may hang.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from .test_bad_inputs import assert_one_sentence, assert_refused, graphscope, run

SECRET = b"TOPSECRETxyz"  # 12 bytes: three int32 dims if a shape is computed from it
SECRET_DIMS = [str(d) for d in struct.unpack("<3i", SECRET)]


def assert_secret_nowhere(*texts: str) -> None:
    for text in texts:
        assert "TOPSECRET" not in text
        for dim in SECRET_DIMS:
            assert dim not in text, f"the secret's bytes ({dim}) leaked"


# -- GraphDefs and SavedModels: TensorFlow's import evaluates ops feeding a shape --------------------


def _const(nodes: Any, name: str, value: Any) -> None:
    from tensorflow.python.framework import tensor_util

    node = nodes.add(name=name, op="Const")
    proto = tensor_util.make_tensor_proto(value)
    node.attr["dtype"].type = proto.dtype
    node.attr["value"].tensor.CopyFrom(proto)


def _leaking_nodes(nodes: Any, secret: str, *, in_function: bool = False) -> None:
    """``Fill(DecodeRaw(ReadFile(secret)), 1.0)``: the file's bytes as a shape, if anything runs."""
    from tensorflow.core.framework import types_pb2

    def out(name: str, arg: str) -> str:
        return f"{name}:{arg}:0" if in_function else name

    _const(nodes, "path", secret.encode())
    nodes.add(name="read", op="ReadFile", input=[out("path", "output")])
    raw = nodes.add(name="raw", op="DecodeRaw", input=[out("read", "contents")])
    raw.attr["out_type"].type = types_pb2.DT_INT32
    _const(nodes, "one", 1.0)
    fill = nodes.add(name="fill", op="Fill", input=[out("raw", "output"), out("one", "output")])
    fill.attr["T"].type = types_pb2.DT_FLOAT
    fill.attr["index_type"].type = types_pb2.DT_INT32


def leaking_graph_def(secret: str, *, in_function: bool = False) -> Any:
    """A GraphDef whose ``fill`` (or a library function called by ``call``) reads ``secret``."""
    from tensorflow.core.framework import graph_pb2, types_pb2

    graph_def = graph_pb2.GraphDef()
    graph_def.versions.producer = 1994
    if not in_function:
        _leaking_nodes(graph_def.node, secret)
        return graph_def
    function = graph_def.library.function.add()
    function.signature.name = "leak"
    function.signature.output_arg.add(name="y", type=types_pb2.DT_FLOAT)
    _leaking_nodes(function.node_def, secret, in_function=True)
    function.ret["y"] = "fill:output:0"
    call = graph_def.node.add(name="call", op="PartitionedCall")
    call.attr["f"].func.name = "leak"
    call.attr["Tin"].list.SetInParent()
    call.attr["Tout"].list.type.append(types_pb2.DT_FLOAT)
    return graph_def


def leaking_saved_model(folder: Path, secret: str) -> Path:
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    meta = saved.meta_graphs.add()
    meta.meta_info_def.tags.append("serve")
    meta.graph_def.CopyFrom(leaking_graph_def(secret))
    meta.signature_def["serving_default"].outputs["y"].name = "fill:0"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(saved.SerializeToString())
    return folder


@pytest.mark.tf
@pytest.mark.parametrize("form", ["pb", "pbtxt", "function", "savedmodel"])
def test_a_graph_def_that_reads_a_file_into_a_shape_runs_nothing(
    form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without care, TensorFlow's import runs ``ReadFile`` to infer ``fill``'s shape, and the
    secret's bytes become the IR's dims (ReadFile is not a stateful op to TensorFlow)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    graph_def = leaking_graph_def("secret.txt", in_function=form == "function")
    if form == "savedmodel":
        target = leaking_saved_model(tmp_path / "saved", "secret.txt")
    elif form == "pbtxt":
        target = tmp_path / "graph.pbtxt"
        target.write_text(str(graph_def))
    else:
        target = tmp_path / "graph.pb"
        target.write_bytes(graph_def.SerializeToString())
    code, out, err = run(capsys, "trace", str(target), "-o", "out.json", "--json")
    assert code == 0, err
    saved = (tmp_path / "out.json").read_text()
    assert_secret_nowhere(out, err, saved)
    doc = json.loads(saved)["graph"]
    if form == "function":
        doc = next(iter(doc["subgraphs"].values()))
    fill = next(n for n in doc["nodes"] if n["name"] == "fill")
    assert fill["outputs"] == [{"dtype": "float32", "shape": None}]  # unknown: nothing ran to know it
    assert all("_kernel" not in n["attrs"] for n in doc["nodes"])


@pytest.mark.tf
def test_a_graph_def_reading_a_fifo_or_dev_zero_neither_hangs_nor_crashes(tmp_path: Path) -> None:
    """Run, ``ReadFile`` blocks forever on a FIFO with no writer and crashes on /dev/zero."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for source in (str(fifo), "/dev/zero"):
        target = tmp_path / "graph.pb"
        target.write_bytes(leaking_graph_def(source).SerializeToString())
        proc = graphscope("trace", str(target), "--json", timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["nodes"] == 5


# -- ONNX: tensors whose data lives in another file -------------------------------------------------


def external_onnx(path: Path, locations: list[str]) -> Path:
    """A model whose initializer, ``Constant`` and ``Reshape`` shape keep their data in
    ``locations`` (onnx resolves them against the working directory or the model's folder)."""
    import onnx
    from onnx import TensorProto, helper

    def external(name: str, dtype: int, dims: list[int], location: str) -> Any:
        tensor = TensorProto(name=name, data_type=dtype, dims=dims)
        tensor.data_location = TensorProto.EXTERNAL
        tensor.external_data.add(key="location", value=location)
        tensor.external_data.add(key="length", value=str(len(SECRET)))
        return tensor

    first, *others = locations
    constants = [
        helper.make_node("Constant", [], [f"c{i}"], name=f"const{i}", value=external(f"c{i}", 6, [3], loc))
        for i, loc in enumerate(others)
    ]
    graph = helper.make_graph(
        [
            *constants,
            helper.make_node("Constant", [], ["shape"], value=external("shape", 7, [1], first)),
            helper.make_node("Reshape", ["x", "shape"], ["y"]),
            helper.make_node("Add", ["y", "w"], ["z"]),
        ],
        "leaky",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        initializer=[external("w", TensorProto.FLOAT, [3], first)],
    )
    onnx.save(helper.make_model(graph), str(path))  # save_as_external_data is off: nothing copied
    return path


@pytest.mark.onnx
def test_onnx_external_data_is_never_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.chdir(models)
    for folder in (tmp_path, models):
        (folder / "secret.txt").write_bytes(SECRET)
    (models / "link").symlink_to(tmp_path / "secret.txt")
    os.mkfifo(models / "fifo")  # opened, it would block the test forever
    locations = ["secret.txt", str(tmp_path / "secret.txt"), "../secret.txt", "link", "fifo", "/dev/zero"]
    model = external_onnx(models / "model.onnx", locations)
    code, out, err = run(capsys, "trace", str(model), "-o", "out.json", "--json")
    assert code == 0, err
    saved = (models / "out.json").read_text()
    assert_secret_nowhere(out, err, saved)
    doc = json.loads(saved)["graph"]
    assert (
        "onnx: 7 tensor(s) keep their data in files outside the model; graphscope records their "
        "shape and dtype and reads no file but the .onnx"
    ) in doc["notes"]
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert nodes["const1"]["attrs"]["value"] == {"shape": [3], "dtype": "int32", "data": "external, not read"}
    assert nodes["w"]["outputs"] == [{"shape": [3], "dtype": "float32"}]


# -- code under a name that promises data --------------------------------------------------------


@pytest.fixture(scope="module")
def torchscript_archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    torch = pytest.importorskip("torch")
    path = tmp_path_factory.mktemp("ts") / "model.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    return path.read_bytes()


@pytest.mark.torch
@pytest.mark.parametrize("name", ["model.onnx", "graph.pb", "graph.pbtxt", "MODEL.ONNX"])
def test_a_torchscript_archive_named_as_data_is_not_loaded(
    name: str,
    torchscript_archive: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """torch.jit.load runs an archive's code (its modules' __setstate__): never for a data file."""
    import torch

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("torch.jit.load was called")

    monkeypatch.setattr(torch.jit, "load", never)
    path = tmp_path / name
    path.write_bytes(torchscript_archive)
    out = tmp_path / "out.json"
    for extra in ([], ["--fw", "torch"]):
        code, _, err = run(capsys, "trace", str(path), "-o", str(out), *extra)
        sentence = assert_refused(code, err, path, (out,))
        assert "is a TorchScript archive, not the " in sentence and "its name promises" in sentence
        assert "graphscope reads a data file as data only" in sentence


@pytest.mark.torch
def test_a_torchscript_archive_needs_a_torchscript_suffix_or_fw_torch(
    torchscript_archive: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "weights.bin"
    archive.write_bytes(torchscript_archive)
    code, _, err = run(capsys, "trace", str(archive), "--json")
    sentence = assert_refused(code, err, archive)
    assert sentence.endswith(
        "is a TorchScript archive, and loading one runs its code: graphscope loads it only from a "
        ".pt, .pth, .ptl or .torchscript file, or with --fw torch"
    )
    code, out, err = run(capsys, "trace", str(archive), "--fw", "torch", "--json")
    assert code == 0, err
    assert json.loads(out)["capture"] == "jit-script"


@pytest.mark.parametrize("name", ["model.onnx", "graph.pb", "graph.pbtxt", "graph.ONNX"])
def test_a_python_script_named_as_data_is_not_imported(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """(importlib would not import a file with such a suffix either: the loader no longer asks it)"""
    marker = tmp_path / "ran"
    path = tmp_path / name
    path.write_text(f"#!/usr/bin/env python\nopen({str(marker)!r}, 'w').close()\nmodel = 1\n")
    code, _, err = run(capsys, "trace", str(path), "--fw", "torch")
    sentence = assert_refused(code, err, path)
    assert "Python" not in sentence  # read as the data it claims to be, not taken for a script
    assert not marker.exists()


def recursive_graph_def(names: list[str], attr: str = "f") -> Any:
    """``c`` calls ``names[0]``, which calls ``names[1]``... and the last calls the first."""
    from tensorflow.core.framework import graph_pb2, types_pb2

    graph_def = graph_pb2.GraphDef()
    graph_def.versions.producer = 1994

    def call(nodes: Any, name: str, callee: str, source: str) -> None:
        node = nodes.add(name=name, op="PartitionedCall", input=[source])
        node.attr[attr if nodes is not graph_def.node else "f"].func.name = callee
        node.attr["Tin"].list.type.append(types_pb2.DT_FLOAT)
        node.attr["Tout"].list.type.append(types_pb2.DT_FLOAT)

    for i, name in enumerate(names):
        function = graph_def.library.function.add()
        function.signature.name = name
        function.signature.input_arg.add(name="x", type=types_pb2.DT_FLOAT)
        function.signature.output_arg.add(name="y", type=types_pb2.DT_FLOAT)
        call(function.node_def, "call", names[(i + 1) % len(names)], "x")
        function.ret["y"] = "call:output:0"
    graph_def.node.add(name="x", op="Placeholder").attr["dtype"].type = types_pb2.DT_FLOAT
    call(graph_def.node, "c", names[0], "x")
    return graph_def


@pytest.mark.tf
@pytest.mark.parametrize("names", [["f"], ["f", "g"], ["a", "b", "c"]])
def test_a_recursive_function_library_is_refused_not_a_crash(names: list[str], tmp_path: Path) -> None:
    """TensorFlow's import crashed (exit 139, no message) on a function that calls itself."""
    target = tmp_path / "recursive.pb"
    target.write_bytes(recursive_graph_def(names).SerializeToString())
    proc = graphscope("trace", str(target), timeout=120)
    cycle = " calls ".join(repr(n) for n in [*names, names[0]])
    assert_one_sentence(proc, target, f"the GraphDef's function library is recursive ({cycle})")
    saved = leaking_saved_model(tmp_path / "saved", "unused")
    bundle = saved / "saved_model.pb"
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString(bundle.read_bytes())
    proto.meta_graphs[0].graph_def.library.CopyFrom(recursive_graph_def(names, attr="body").library)
    bundle.write_bytes(proto.SerializeToString())
    proc = graphscope("trace", str(saved), timeout=120)
    assert_one_sentence(proc, saved, "function library is recursive")


# The peak of this process's own memory: VmHWM, which starts afresh at exec. ru_maxrss does
# not: a child forked from a big pytest process reports the parent's size as its peak.
PEAK = """
import re, sys
from graphscope.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    print(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1), file=sys.stderr)  # KB
sys.exit(code)
"""


@pytest.mark.tf
@pytest.mark.parametrize(
    "dtype, dims, value",
    [("DT_INT32", [40000, 40000], "int_val: 7"), ("DT_STRING", [300000000], 'string_val: "x"')],
)
def test_a_constant_declaring_a_huge_shape_is_not_expanded(
    dtype: str, dims: list[int], value: str, tmp_path: Path
) -> None:
    """A 300-byte .pbtxt Const of shape [40000, 40000] and one value: MakeNdarray filled it out
    (6.8 GB and 33 s; the string one 5.2 GB). Its shape and dtype are all the IR keeps."""
    shape = " ".join(f"dim {{ size: {d} }}" for d in dims)
    target = tmp_path / "bomb.pbtxt"
    tensor = f"tensor {{ dtype: {dtype} tensor_shape {{ {shape} }} {value} }}"
    target.write_text(
        f'node {{ name: "big" op: "Const" attr {{ key: "dtype" value {{ type: {dtype} }} }}\n'
        f'  attr {{ key: "value" value {{ {tensor} }} }} }}\n'
    )
    assert len(target.read_bytes()) < 300
    out = tmp_path / "out.json"
    proc = graphscope("trace", str(target), "-o", str(out), code=PEAK, timeout=300)
    assert proc.returncode == 0, proc.stderr
    peak_mb = int(proc.stderr.split()[-1]) / 1024
    assert peak_mb < 1500, f"{peak_mb:.0f} MB"  # TensorFlow itself: about 520 MB
    (node,) = json.loads(out.read_text())["graph"]["nodes"]
    assert node["attrs"]["value"] == {"shape": dims, "dtype": "object" if dtype == "DT_STRING" else "int32"}


@pytest.mark.onnx
def test_many_onnx_nodes_of_one_name_are_numbered_in_linear_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ids were de-duplicated by appending "_" until free: cubic (10,000 nodes took 65 s)."""
    import time

    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Relu", [f"t{i}"], [f"t{i + 1}"], name="same") for i in range(10_000)]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("t10000", TensorProto.FLOAT, [1])],
    )
    model = tmp_path / "same.onnx"
    onnx.save(helper.make_model(graph), str(model))
    start = time.perf_counter()
    code, _, err = run(capsys, "trace", str(model), "-o", str(tmp_path / "out.json"))
    seconds = time.perf_counter() - start
    assert code == 0, err
    assert seconds < 20, f"{seconds:.1f} s"
    ids = [n["id"] for n in json.loads((tmp_path / "out.json").read_text())["graph"]["nodes"]]
    assert ids[:4] == ["t0", "same", "same_2", "same_3"] and ids[-1] == "same_10000"


# -- step --inputs: an .npz of arrays, read as data --------------------------------------------------


def test_npz_inputs_declaring_too_much_or_odd_kinds_are_one_sentence(tmp_path: Path) -> None:
    import zipfile

    import numpy as np

    from graphscope.errors import GraphscopeError
    from graphscope.stepping.inputs import from_npz

    bomb = tmp_path / "bomb.npz"  # 80 GB declared, nothing behind it (a zip bomb in short)
    with zipfile.ZipFile(bomb, "w") as zf, zf.open("x.npy", "w") as fh:
        header = {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)}
        np.lib.format.write_array_header_1_0(fh, header)
    raw = tmp_path / "raw.npz"
    with zipfile.ZipFile(raw, "w") as zf:
        zf.writestr("x.bin", b"\x00" * 16)
    np.savez(tmp_path / "dates.npz", np.array(["2024-01-01"], dtype="datetime64[D]"))
    np.savez(tmp_path / "fields.npz", np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]))
    np.savez(tmp_path / "text.npz", np.array(["a", "b"]))
    cases = {
        bomb: "its arrays declare more than 2 GB ('x' is 100000x100000 float64)",
        raw: "'x.bin' is not an array (.npy) inside the archive",
        tmp_path / "dates.npz": "array 'arr_0' is datetime64[D] (dates); inputs are arrays of numbers",
        tmp_path / "fields.npz": "(structured); inputs are arrays of numbers",
        tmp_path / "text.npz": "array 'arr_0' is <U1 (text); inputs are arrays of numbers",
    }
    for path, words in cases.items():
        with pytest.raises(GraphscopeError) as caught:
            from_npz(path, "torch")
        assert words in str(caught.value) and str(path) in str(caught.value)
    assert from_npz(tmp_path / "text.npz", "tf")[0].tolist() == ["a", "b"]  # TensorFlow takes strings
    np.savez(tmp_path / "big_endian.npz", np.arange(3, dtype=">f4"))
    (array,) = from_npz(tmp_path / "big_endian.npz", "tf")
    assert array.dtype.isnative and array.tolist() == [0.0, 1.0, 2.0]


@pytest.mark.torch
def test_npz_inputs_from_a_fifo_do_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "inputs.npz"
    os.mkfifo(fifo)
    model = Path(__file__).parents[1] / "examples" / "or_gate_torch.py"
    proc = graphscope("step", str(model), "--fw", "torch", "--inputs", str(fifo), timeout=120)
    assert_one_sentence(proc, fifo, "is not a regular file (a pipe, a socket or a device)")

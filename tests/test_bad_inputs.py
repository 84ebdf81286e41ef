"""Files people download, tried as an attacker would.

Every bad input is generated here (truncated and bit-flipped archives, broken JSON and text
protobufs, model files that raise, exit, loop or hide), run through the real CLI, and must end
the same way: exit code 1, ONE sentence on stderr naming the file and the problem, no
traceback, and no output file written or replaced. A few cases run in a subprocess, to prove
that nothing reaches the real stderr but that sentence.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graphscope import ir
from graphscope.cli import main

from .conftest import or_gate_graph

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
PRECIOUS = "an output the user already had\n"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def shown(path: Path) -> str:
    """How an error sentence spells ``path`` (a byte that is not UTF-8 as ``\\xff``)."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def assert_refused(code: int, err: str, path: Path, outputs: tuple[Path, ...] = ()) -> str:
    """Exit 1, one 'graphscope: error:' sentence naming ``path``, nothing written."""
    assert code == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("graphscope: error: "), err
    assert shown(path) in lines[0] or path.name in lines[0], err
    for out in outputs:
        if out.name.startswith("precious"):
            assert out.read_text() == PRECIOUS, f"{out} was touched"
        else:
            assert not out.exists(), f"{out} was left behind"
    for out in outputs:  # no temporary file of an interrupted atomic write either
        assert not list(out.parent.glob(f".{out.name}.*")), list(out.parent.iterdir())
    return lines[0]


def outputs_in(folder: Path, *, precious: bool = False) -> tuple[Path, Path]:
    """An -o and an --svg path: fresh ones, or files that exist and must stay as they are."""
    folder.mkdir(exist_ok=True)
    if precious:
        pair = (folder / "precious.json", folder / "precious.svg")
        for p in pair:
            p.write_text(PRECIOUS)
        return pair
    return folder / "out.json", folder / "out.svg"


# -- saved graphs (.json): no framework needed ----------------------------------------------------


def good_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ir.dumps(or_gate_graph()))
    return doc


def _nest(doc: dict[str, Any], depth: int) -> None:
    inner = good_doc()["graph"]
    graph = doc["graph"]
    for _ in range(depth):
        sub = copy.deepcopy(inner)
        graph["subgraphs"] = {"s": sub}
        graph = sub


def _node(doc: dict[str, Any], i: int = 0) -> dict[str, Any]:
    node: dict[str, Any] = doc["graph"]["nodes"][i]
    return node


# Each mutates a valid document; the file it makes must be refused with the word given.
DOC_CASES: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "other-version": (lambda d: d.update(version=3), "version 3"),
    "version-as-string": (lambda d: d.update(version="1"), "version '1'"),
    "another-format": (lambda d: d.update(format="onnx"), "not a graphscope graph"),
    "no-graph": (lambda d: d.pop("graph"), '"graph"'),
    "graph-is-array": (lambda d: d.update(graph=[]), "must be a JSON object"),
    "no-nodes": (lambda d: d["graph"].pop("nodes"), "'nodes'"),
    "nodes-is-object": (lambda d: d["graph"].update(nodes={}), "'nodes' must be a JSON array"),
    "node-without-op": (lambda d: _node(d).pop("op"), "'op'"),
    "node-id-number": (lambda d: _node(d).update(id=5), "'id'"),
    "node-kind-array": (lambda d: _node(d).update(kind=["op"]), "'kind'"),
    "node-kind-unknown": (lambda d: _node(d).update(kind="evil"), "'kind'"),
    "duplicate-node-id": (lambda d: d["graph"]["nodes"].append(copy.deepcopy(_node(d))), "twice"),
    "negative-dim": (lambda d: _node(d)["outputs"][0].update(shape=[-1, 2]), "'shape'"),
    "float-dim": (lambda d: _node(d)["outputs"][0].update(shape=[1.5]), "'shape'"),
    "dtype-number": (lambda d: _node(d)["outputs"][0].update(dtype=3), "'dtype'"),
    "attrs-array": (lambda d: _node(d).update(attrs=[]), "'attrs'"),
    "source-line-string": (lambda d: _node(d).update(source={"file": "m.py", "line": "3"}), "'source'"),
    "dangling-edge": (lambda d: d["graph"]["edges"][0].update(dst="nowhere"), "'nowhere'"),
    "edge-end-array": (lambda d: d["graph"]["edges"][0].update(src=["x"]), "does not exist"),
    "edge-port-float": (lambda d: d["graph"]["edges"][0].update(src_port=0.5), "'src_port'"),
    "edge-control-string": (lambda d: d["graph"]["edges"][0].update(control="yes"), "'control'"),
    "inputs-unknown-node": (lambda d: d["graph"].update(inputs=["ghost"]), "'ghost'"),
    "undefined-subgraph": (lambda d: _node(d, 1).update(subgraphs=["ghost"]), "'ghost'"),
    "subgraph-not-object": (lambda d: d["graph"].update(subgraphs={"s": 5}), "must be a JSON object"),
    "subgraphs-200-deep": (lambda d: _nest(d, 200), "nest deeper than 64"),
    # A stepped graph's value summary, as render and the TUI read it (a string crashed both).
    "stats-string": (
        lambda d: _node(d)["outputs"][0].update(stats={"min": "low"}),
        "'stats' must be null or",
    ),
    "stats-list": (lambda d: _node(d)["outputs"][0].update(stats=[1, 2]), "'stats' must be null or"),
    "stats-negative-count": (lambda d: _node(d)["outputs"][0].update(stats={"nan": -1}), "'stats' must be"),
}

_VALID = ir.dumps(or_gate_graph())
RAW_CASES: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "is empty"),
    "whitespace": (b" \n\t\n", "is empty"),
    "truncated": (_VALID[: len(_VALID) // 2].encode(), "ends early"),
    "random-bytes": (random.Random(0).randbytes(400), "not UTF-8"),
    "not-utf8": (b'{"format": "graphscope.ir", "name": "\xff\xfe"}', "byte 37 is not UTF-8"),
    "utf8-bom": (b"\xef\xbb\xbf" + _VALID.encode(), "not valid JSON"),
    "nan": (_VALID.replace('"framework": "torch"', '"framework": NaN').encode(), "NaN is not a JSON number"),
    "huge-integer": (
        _VALID.replace(f'"version": {ir.VERSION}', f'"version": {ir.VERSION}' + "0" * 5000).encode(),
        "too long",
    ),
    "deep-arrays": (b"[" * 100_000 + b"]" * 100_000, "too deeply"),
    "lone-surrogate": (_VALID.replace('"or_gate"', '"\\ud800"').encode(), "surrogate"),
    # Valid JSON, but Python reads it as infinity, which info --json then printed as Infinity.
    "1e999": (_VALID.replace('"framework": "torch"', '"framework": 1e999').encode(), "too large for a float"),
    "400-digit-float": (
        _VALID.replace(f'"version": {ir.VERSION}', f'"version": {ir.VERSION}' + "0" * 400 + ".5").encode(),
        "too large",
    ),
    "nul-bytes": (b"\x00" * 64, "not valid JSON"),
}


def _json_commands(bad: Path, good: Path, outs: tuple[Path, Path]) -> list[list[str]]:
    out_json, out_svg = outs
    return [
        ["info", str(bad)],
        ["info", "--json", str(bad)],
        ["render", str(bad), "-o", str(out_svg)],
        ["diff", str(good), str(bad), "--svg", str(out_svg)],
        ["trace", str(bad), "-o", str(out_json), "--svg", str(out_svg)],
        ["step", str(bad), "-o", str(out_json), "--svg", str(out_svg)],
    ]


@pytest.mark.parametrize("case", sorted(DOC_CASES))
def test_broken_graph_json_is_one_sentence(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mutate, words = DOC_CASES[case]
    doc = good_doc()
    mutate(doc)
    bad, good = tmp_path / f"{case}.json", tmp_path / "good.json"
    bad.write_text(json.dumps(doc))
    good.write_text(_VALID)
    for precious in (False, True):
        outs = outputs_in(tmp_path / ("keep" if precious else "new"), precious=precious)
        for args in _json_commands(bad, good, outs):
            code, out, err = run(capsys, *args)
            line = assert_refused(code, err, bad, outs)
            assert words in line, (args, line)
            assert out == ""


@pytest.mark.parametrize("case", sorted(RAW_CASES))
def test_damaged_json_bytes_are_one_sentence(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, words = RAW_CASES[case]
    bad, good = tmp_path / f"{case}.json", tmp_path / "good.json"
    bad.write_bytes(content)
    good.write_text(_VALID)
    outs = outputs_in(tmp_path / "out", precious=case == "truncated")
    for args in _json_commands(bad, good, outs):
        code, out, err = run(capsys, *args)
        line = assert_refused(code, err, bad, outs)
        assert words in line, (args, line)
        assert out == ""


def huge_shape_graph() -> ir.Graph:
    g = or_gate_graph()
    g.node("x")["outputs"] = [{"shape": [2**62, 2**62], "dtype": "float32"}]
    g.node("fc0")["outputs"] = [{"shape": list(range(100_000)), "dtype": "float32"}]  # 100k dims
    return g


def test_huge_declared_shapes_are_only_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A shape is a label: [2**62, 2**62] and a 100k-dim shape allocate nothing, overflow nothing."""
    path = tmp_path / "huge.json"
    ir.save(huge_shape_graph(), path)
    code, out, err = run(capsys, "info", str(path))
    assert code == 0, err
    assert f"float32[{2**62},{2**62}]" in out.replace("\n", "") or str(2**62) in out
    code, out, err = run(capsys, "info", "--json", str(path))
    assert code == 0, err
    assert json.loads(out)["inputs"][0]["outputs"] == [{"shape": [2**62, 2**62], "dtype": "float32"}]
    again = tmp_path / "again.json"
    code, _, err = run(capsys, "trace", str(path), "-o", str(again))
    assert code == 0, err
    assert ir.load(again) == ir.load(path)

    from graphscope.tui.model import Level

    rows = {r.id: r for r in Level(ir.load(path)).rows_in("")}
    assert rows["x"].shape == f"[{2**62},{2**62}]"
    assert rows["fc0"].shape.startswith("[0,1,2,")


@needs_dot
def test_huge_declared_shapes_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, svg = tmp_path / "huge.json", tmp_path / "huge.svg"
    ir.save(huge_shape_graph(), path)
    code, _, err = run(capsys, "render", str(path), "-o", str(svg))
    assert code == 0, err  # the 100k-dim label used to make Graphviz refuse the drawing
    text = svg.read_text()
    ET.fromstring(text)
    assert str(2**62) in text and "[0,1,2,3," in text and "…" in text


# -- model.py files that misbehave (no framework needed: they fail before using one) ----------------

MODEL_CASES: dict[str, tuple[str | bytes, list[str], str]] = {
    # name: (source, extra CLI arguments, words the sentence must hold)
    "raises": ("raise ValueError('boom')\n", [], "raised ValueError: boom at line 1"),
    "exits": ("import sys\nsys.exit(3)\n", [], "called sys.exit(3)"),
    "os-exit": ("import os\nos._exit(5)\n", [], "called os._exit(5)"),
    "no-expected-names": ("x = 1\ndef helper():\n    pass\n", [], "it defines: helper, x"),
    "syntax-error": ("def f(:\n", [], "syntax error at line 1"),
    "not-utf8": (b"x = '\xff\xfe'\n", [], "line 1"),
    "empty": ("", [], "is empty"),
    "entry-raises": ("def make():\n    raise KeyError('k')\n", ["--entry", "make"], "make() raised KeyError"),
    "entry-exits": ("import sys\ndef make():\n    sys.exit(0)\n", ["--entry", "make"], "sys.exit(0)"),
    "entry-missing": ("def other():\n    pass\n", ["--entry", "make"], "no function 'make'"),
    "inputs-raise": (
        "model = object()\ndef example_inputs():\n    return 1 / 0\n",
        [],
        "example_inputs() raised ZeroDivisionError",
    ),
    "recursion": ("def f():\n    return f()\nf()\n", [], "RecursionError"),
    "loops-forever": (
        "while True:\n    pass\n",
        ["--timeout", "0.5"],
        "did not finish within 0.5 s (--timeout)",
    ),
    "sleeps-forever": (
        "import time\ntime.sleep(3600)\n",
        ["--timeout", "0.5"],
        "did not finish within 0.5 s",
    ),
    "catches-exception": (
        "while True:\n    try:\n        x = sum(range(1000))\n    except Exception:\n        pass\n",
        ["--timeout", "0.5"],
        "did not finish",
    ),
}


def _model_commands(path: Path, extra: list[str], outs: tuple[Path, Path]) -> list[list[str]]:
    out_json, out_svg = outs
    base = [str(path), "--fw", "torch", *extra]
    slow = "--timeout" in extra  # each run waits for the limit: two commands are enough
    entry = "--entry" in extra  # which diff does not take
    commands = [
        ["trace", *base, "-o", str(out_json), "--svg", str(out_svg)],
        ["step", *base, "-o", str(out_json), "--svg", str(out_svg)],
    ]
    if not slow and not entry:
        commands.append(["diff", str(path), str(path), "--fw", "torch", "--svg", str(out_svg)])
    if not slow:
        commands.append(["tui", *base])
    return commands


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_misbehaving_model_file_is_one_sentence(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, extra, words = MODEL_CASES[case]
    path = tmp_path / "model.py"
    path.write_bytes(source if isinstance(source, bytes) else source.encode())
    outs = outputs_in(tmp_path / "out", precious=case in ("exits", "loops-forever"))
    for args in _model_commands(path, extra, outs):
        code, out, err = run(capsys, *args)
        line = assert_refused(code, err, path, outs)
        assert words in line, (args, line)
        assert out == ""


def test_a_failed_import_leaves_no_module_behind(tmp_path: Path) -> None:
    from graphscope import loader
    from graphscope.errors import GraphscopeError

    path = tmp_path / "model.py"
    path.write_text("import sys\nsys.exit(3)\n")
    before = set(sys.modules)
    with pytest.raises(GraphscopeError, match=r"called sys.exit\(3\)"):
        loader.import_model_file(path)
    assert set(sys.modules) == before


def test_directory_fifo_loop_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "model.py"
    folder.mkdir()
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)  # reading it would wait for a writer forever
    loop = tmp_path / "loop.py"
    loop.symlink_to(loop)
    expected = {
        folder: "is a directory",
        fifo: "not a regular file",
        loop: "cannot read",
        tmp_path / "nope.py": "does not exist",
    }
    outs = outputs_in(tmp_path / "out")
    for path, words in expected.items():
        for args in _model_commands(path, [], outs):
            code, _, err = run(capsys, *args)
            assert words in assert_refused(code, err, path, outs), args
    for command in (["info", str(fifo)], ["render", str(fifo), "-o", str(outs[1])]):
        code, _, err = run(capsys, *command)
        assert "not a regular file" in assert_refused(code, err, fifo, outs)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads a chmod 000 file")
def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("model.py", "graph.json"):
        path = tmp_path / name
        path.write_text("x = 1\n")
        path.chmod(0)
        outs = outputs_in(tmp_path / "out")
        for args in [*_model_commands(path, [], outs), ["info", str(path)]]:
            code, _, err = run(capsys, *args)
            assert "Permission denied" in assert_refused(code, err, path, outs)
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_file_name_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(os.fsdecode(os.fsencode(tmp_path) + b"/m\xff\xfe.py"))
    path.write_text("raise ValueError('boom')\n")
    code, _, err = run(capsys, "trace", str(path), "--fw", "torch")
    line = assert_refused(code, err, path)
    assert "m\\xff\\xfe.py raised ValueError: boom" in line


def test_damaged_zip_and_fake_torchscript(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Archives refused by their bytes alone: no framework is loaded for them."""
    not_zip = tmp_path / "model.pt"
    not_zip.write_bytes(b"PK\x03")  # a zip cut after three bytes
    plain = tmp_path / "weights.pt"
    with zipfile.ZipFile(plain, "w") as zf:  # what torch.save makes: data.pkl, no code/
        zf.writestr("weights/data.pkl", b"\x80\x02}q\x00.")
    bad_name = tmp_path / "bad_name.pt"
    with zipfile.ZipFile(bad_name, "w") as zf:
        zf.writestr("archive/code/\u00e9.py", b"")  # a UTF-8 name (flag 0x800)...
    bad_name.write_bytes(bad_name.read_bytes().replace("\u00e9".encode(), b"\xe4\x01"))  # ...not UTF-8
    expected = {
        not_zip: "not a zip archive",
        plain: "torch.save checkpoint is not read",
        bad_name: "damaged zip archive",
    }
    outs = outputs_in(tmp_path / "out")
    for path, words in expected.items():
        for args in (
            ["trace", str(path), "-o", str(outs[0]), "--svg", str(outs[1])],
            ["step", str(path), "-o", str(outs[0])],
            ["diff", str(path), str(path), "--svg", str(outs[1])],
        ):
            code, _, err = run(capsys, *args)
            assert words in assert_refused(code, err, path, outs), args


# -- real archives, truncated and bit-flipped ----------------------------------------------------


def truncations(data: bytes) -> list[tuple[str, bytes]]:
    n = len(data)
    return [(f"cut{k}", data[:k]) for k in sorted({1, 2, 22, n // 4, n // 2, n - 22, n - 1}) if 0 < k < n]


def flips(data: bytes, count: int) -> list[tuple[str, bytes]]:
    """``count`` copies of ``data``, each with 1 to 8 bytes set at random (seeded: repeatable)."""
    out = []
    for seed in range(count):
        rng = random.Random(seed)
        blob = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        out.append((f"flip{seed}", bytes(blob)))
    return out


def assert_read_or_refused(code: int, err: str, path: Path, out_json: Path) -> None:
    """A flipped byte may land where nothing reads it: then the graph must be whole."""
    if code == 0:
        ir.load(out_json)  # a complete, valid graph
        out_json.unlink()
    else:
        assert_refused(code, err, path, (out_json,))


_TINY_ARCHIVE = """
import sys
import torch


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)

    def forward(self, x):  # unannotated: TorchScript takes it as a Tensor
        return torch.relu(self.fc(x)) + 1


torch.jit.save(torch.jit.script(Tiny()), sys.argv[1])
"""


@pytest.fixture(scope="module")
def torchscript_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """Saved in a fresh process: in this one, the names TorchScript gives its types (and so the
    archive's bytes, and where the seeded flips land) depend on what was scripted before."""
    pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("ts")
    (folder / "tiny.py").write_text(_TINY_ARCHIVE)
    subprocess.run([sys.executable, str(folder / "tiny.py"), str(folder / "tiny.pt")], check=True)
    return (folder / "tiny.pt").read_bytes()


@pytest.mark.torch
def test_an_archive_whose_debug_information_asks_for_too_much_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the flips below in one run order (the archive's bytes depend on which modules
    were scripted before in the process): printing its graph raised std::bad_alloc."""
    path = Path(__file__).parent / "data" / "torchscript_bad_alloc.pt"
    out = tmp_path / "out.json"
    code, _, err = run(capsys, "trace", str(path), "-o", str(out))
    assert_refused(code, err, path, (out,))
    assert "the TorchScript graph cannot be read (a damaged archive?): std::bad_alloc" in err


@pytest.mark.torch
def test_damaged_torchscript_archives(
    torchscript_bytes: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outs = outputs_in(tmp_path / "out")
    for name, blob in truncations(torchscript_bytes):
        path = tmp_path / f"{name}.pt"
        path.write_bytes(blob)
        for args in (["trace", str(path), "-o", str(outs[0])], ["step", str(path), "-o", str(outs[0])]):
            code, _, err = run(capsys, *args)
            assert_refused(code, err, path, outs)
    for name, blob in [*flips(torchscript_bytes, 40), ("random", random.Random(1).randbytes(2000))]:
        path = tmp_path / f"{name}.pt"
        path.write_bytes(blob)
        code, _, err = run(capsys, "trace", str(path), "-o", str(outs[0]))
        assert_read_or_refused(code, err, path, outs[0])


@pytest.fixture(scope="module")
def onnx_bytes() -> bytes:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1.0, 0.0, 0.0, 1.0])
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="block/MatMul"),
        helper.make_node("Relu", ["h"], ["y"], name="block/Relu"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        initializer=[weight],
    )
    data: bytes = helper.make_model(graph).SerializeToString()
    onnx.load_from_string(data)
    return data


@pytest.mark.onnx
def test_damaged_onnx_files(onnx_bytes: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outs = outputs_in(tmp_path / "out")
    for name, blob in truncations(onnx_bytes):
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(blob)
        code, _, err = run(capsys, "trace", str(path), "-o", str(outs[0]), "--svg", str(outs[1]))
        assert_refused(code, err, path, outs)
    for name, blob in [*flips(onnx_bytes, 60), ("random", random.Random(2).randbytes(300))]:
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(blob)
        code, _, err = run(capsys, "trace", str(path), "-o", str(outs[0]))
        assert_read_or_refused(code, err, path, outs[0])


@pytest.mark.onnx
def test_onnx_with_unknown_dtype_and_lying_tensor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    x.type.tensor_type.elem_type = 37  # no such element type (yet): shown, not a crash
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g", [x], [helper.make_tensor_value_info("y", 1, [1, 2])]
    )
    unknown = tmp_path / "unknown_dtype.onnx"
    onnx.save(helper.make_model(graph), str(unknown))
    code, out, err = run(capsys, "trace", str(unknown), "--json")
    assert code == 0, err
    assert json.loads(out)["inputs"][0]["outputs"][0]["dtype"] == "onnx:37"

    lying = TensorProto(name="c", data_type=TensorProto.FLOAT, dims=[1000], raw_data=b"\x00" * 8)  # 2 of 1000
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["y"], value=lying)],
        "g",
        [],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1000])],
    )
    bad = tmp_path / "lying_tensor.onnx"
    onnx.save(helper.make_model(graph), str(bad))
    outs = outputs_in(tmp_path / "out", precious=True)
    code, _, err = run(capsys, "trace", str(bad), "-o", str(outs[0]), "--svg", str(outs[1]))
    assert "malformed" in assert_refused(code, err, bad, outs)


@pytest.fixture(scope="module")
def graph_def_bytes() -> tuple[bytes, str]:
    tf = pytest.importorskip("tensorflow")
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, 2], name="x")
        w = tf.constant([[1.0, 0.0], [0.0, 1.0]], name="dense/w")
        tf.nn.relu(tf.matmul(x, w, name="dense/MatMul"), name="y")
    graph_def = graph.as_graph_def()
    return graph_def.SerializeToString(), str(graph_def)


PBTXT_CASES = {
    "missing-brace": (lambda t: t.replace("}", "", 1), "readable text GraphDef"),
    "unknown-field": (lambda t: t.replace("op:", "opp:", 1), "no field named"),
    "unterminated-string": (lambda t: t.replace('name: "x"', 'name: "x', 1), "readable text GraphDef"),
    "bad-enum": (lambda t: t.replace("DT_FLOAT", "DT_FLOOT", 1), "readable text GraphDef"),
    "no-nodes": (lambda t: "versions { producer: 1 }\n", "holds no graph nodes"),
    "input-to-nowhere": (lambda t: t.replace('input: "x"', 'input: "ghost"', 1), "cannot be imported"),
}


@pytest.mark.tf
@pytest.mark.parametrize("case", sorted(PBTXT_CASES))
def test_pbtxt_syntax_errors(
    case: str, graph_def_bytes: tuple[bytes, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mutate, words = PBTXT_CASES[case]
    text = mutate(graph_def_bytes[1])
    assert text != graph_def_bytes[1]
    path = tmp_path / f"{case}.pbtxt"
    path.write_text(text)
    outs = outputs_in(tmp_path / "out", precious=case == "missing-brace")
    for args in (
        ["trace", str(path), "-o", str(outs[0]), "--svg", str(outs[1])],
        ["step", str(path), "-o", str(outs[0])],
    ):
        code, _, err = run(capsys, *args)
        assert words in assert_refused(code, err, path, outs), args


@pytest.mark.tf
def test_damaged_graph_defs(
    graph_def_bytes: tuple[bytes, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary, text = graph_def_bytes
    outs = outputs_in(tmp_path / "out")
    not_utf8 = tmp_path / "latin1.pbtxt"
    not_utf8.write_bytes(text.encode().replace(b'"x"', b'"\xff"', 1))
    code, _, err = run(capsys, "trace", str(not_utf8), "-o", str(outs[0]))
    assert "not UTF-8" in assert_refused(code, err, not_utf8, outs)
    for name, blob in truncations(binary):
        path = tmp_path / f"{name}.pb"
        path.write_bytes(blob)
        code, _, err = run(capsys, "trace", str(path), "-o", str(outs[0]))
        assert_read_or_refused(code, err, path, outs[0])
    for name, blob in [*flips(binary, 40), ("random", random.Random(3).randbytes(300))]:
        path = tmp_path / f"{name}.pb"
        path.write_bytes(blob)
        code, _, err = run(capsys, "trace", str(path), "-o", str(outs[0]))
        assert_read_or_refused(code, err, path, outs[0])


# -- models that misbehave while they run (a framework is needed to reach that point) ---------------

TORCH_MODEL = """
import torch

class M(torch.nn.Module):
    def forward(self, x):
        {body}
        return x + 1

model = M()
example_inputs = (torch.ones(2),)
"""


@pytest.mark.torch
@pytest.mark.parametrize(
    ("body", "extra", "words"),
    [
        ("import sys; sys.exit(4)", [], "called sys.exit(4)"),
        ("import os; os._exit(6)", [], "called os._exit(6)"),
        ("while True: pass", ["--timeout", "0.5"], "did not finish within 0.5 s (--timeout)"),
    ],
    ids=["sys-exit", "os-exit", "loops"],
)
def test_model_that_exits_or_loops_while_running(
    body: str, extra: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "model.py"
    path.write_text(TORCH_MODEL.format(body=body))
    outs = outputs_in(tmp_path / "out", precious=True)
    for args in (
        ["trace", str(path), "--fw", "torch", "--method", "fx", "-o", str(outs[0]), *extra],
        ["step", str(path), "--fw", "torch", "-o", str(outs[0]), "--svg", str(outs[1]), *extra],
    ):
        code, out, err = run(capsys, *args)
        assert words in assert_refused(code, err, path, outs), args
        assert out == ""


@pytest.mark.torch
def test_model_print_does_not_corrupt_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model.py"
    path.write_text("print('hello from the model')\n" + TORCH_MODEL.format(body="print('forward ran')"))
    for args in (["trace", "--method", "fx"], ["step"]):
        code, out, err = run(capsys, args[0], str(path), "--fw", "torch", "--json", *args[1:])
        assert code == 0, err
        json.loads(out)  # stdout is one JSON document, and nothing else
        assert "hello from the model" in err and "forward ran" in err


# -- subprocess: what really reaches the terminal ----------------------------------------------------


def graphscope(*args: str, timeout: float = 60, code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "graphscope", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def assert_one_sentence(proc: subprocess.CompletedProcess[str], path: Path, words: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"graphscope: error: {shown(path)}"), proc.stderr
    assert words in proc.stderr, proc.stderr


def test_subprocess_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"format": "graphscope.ir", "version": 1, "graph": {"nodes": [{"id"')
    assert_one_sentence(graphscope("info", str(bad)), bad, "ends early")
    exits = tmp_path / "exits.py"
    exits.write_text("import sys\nsys.exit(3)\n")
    assert_one_sentence(graphscope("trace", str(exits), "--fw", "torch"), exits, "called sys.exit(3)")
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/odd\xff.py"))
    odd.write_text("import os\nos._exit(7)\n")
    assert_one_sentence(graphscope("step", str(odd), "--fw", "torch"), odd, "called os._exit(7)")


def test_subprocess_timeout_ends_a_loop(tmp_path: Path) -> None:
    loop = tmp_path / "model.py"
    loop.write_text("while True:\n    pass\n")
    out = tmp_path / "out.json"
    proc = graphscope("trace", str(loop), "--fw", "torch", "--timeout", "0.5", "-o", str(out))
    assert_one_sentence(proc, loop, "did not finish within 0.5 s (--timeout)")
    assert not out.exists()


def test_subprocess_timeout_ends_a_model_that_swallows_the_stop(tmp_path: Path) -> None:
    stubborn = tmp_path / "model.py"
    stubborn.write_text(
        "import time\nwhile True:\n    try:\n        time.sleep(3600)\n    except BaseException:\n        pass\n"
    )
    code = (  # the grace period shortened from 2 s
        "import sys; import graphscope.loader as loader; loader._GRACE = 0.3\n"
        "from graphscope.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = graphscope("trace", str(stubborn), "--fw", "torch", "--timeout", "0.5", code=code)
    assert_one_sentence(
        proc, stubborn, "did not finish within 0.5 s (--timeout), and it ignored being stopped"
    )


def test_subprocess_timeout_ends_a_loop_inside_c(tmp_path: Path) -> None:
    """A loop in C never returns to Python, so no sentence can be written: the process still
    ends, with exit code 1, once the grace periods pass (shortened here)."""
    c_loop = tmp_path / "model.py"
    c_loop.write_text("sum(range(10**13))\n")
    code = (
        "import sys; import graphscope.loader as loader; loader._GRACE = 0.3; loader._C_GRACE = 0.5\n"
        "from graphscope.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = graphscope("trace", str(c_loop), "--fw", "torch", "--timeout", "0.5", code=code, timeout=30)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "Thread" not in proc.stderr, proc.stderr


# -- hostile names: text from a file never becomes markup, DOT syntax or terminal commands ---------

HOSTILE = [
    "<script>alert(1)</script>",
    'a"b\\',
    "line1\nline2",
    "rtl\u202eevil",
    "nul\x00byte",
    "esc\x1b]0;pwned\x07title\x1b[2Jclear",
    "]]><!--&amp;",
    "{record}|<port> -> n0 [label=x]",
]


def hostile_graph() -> ir.Graph:
    g = ir.Graph("<script>alert('graph')</script>", framework="torch", capture="fx")
    previous = None
    for i, text in enumerate(HOSTILE):
        g.add_node(
            text,
            op=f"{text}op",
            name=text,
            kind="input" if i == 0 else "op",
            scope=[text, f"s{i}"],
            attrs={text: text, "reason": text},
            outputs=[{"shape": [1, text], "dtype": text}],
        )
        if previous is not None:
            g.add_edge(previous, text)
        previous = text
    g.inputs, g.outputs = [HOSTILE[0]], [HOSTILE[-1]]
    g.notes.append(f"note \x1b[2J {HOSTILE[0]}")
    return g


TERMINAL_CONTROLS = ["\x1b", "\x07", "\x00", "\u202e"]


def test_hostile_names_round_trip_and_never_reach_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "hostile.json"
    ir.save(hostile_graph(), path)
    assert ir.load(path) == hostile_graph()
    code, out, err = run(capsys, "info", str(path))
    assert code == 0, err
    assert "<script>alert(1)</script>" in out and 'a"b\\' in out
    assert not [c for c in TERMINAL_CONTROLS if c in out + err]
    code, out, _ = run(capsys, "info", "--json", str(path))
    assert code == 0 and {p["id"] for p in json.loads(out)["inputs"]} == {HOSTILE[0]}
    assert "\x1b" not in out  # json.dumps escapes it
    code, out, err = run(capsys, "diff", str(path), str(path))
    assert code == 0, err
    assert not [c for c in TERMINAL_CONTROLS if c in out + err]


@needs_dot
def test_svg_of_hostile_names_has_no_script_element(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, svg = tmp_path / "hostile.json", tmp_path / "hostile.svg"
    ir.save(hostile_graph(), path)
    code, _, err = run(capsys, "render", str(path), "-o", str(svg), "--show-params")
    assert code == 0, err
    root = ET.fromstring(svg.read_text())  # well-formed XML
    tags = {el.tag.rsplit("}", 1)[-1].lower() for el in root.iter()}
    assert "script" not in tags and "foreignobject" not in tags
    assert not [a for el in root.iter() for a in el.attrib if a.lower().startswith("on")]  # onload=...
    texts = " ".join(t for el in root.iter() for t in (el.text or "",))
    assert "<script>alert(1)</script>" in texts  # drawn as text, escaped in the file
    assert 'a"b\\' in texts and "{record}|<port>" in texts


def test_tui_table_cells_drop_terminal_controls() -> None:
    from graphscope.tui.widgets.node_table import _cell

    for text in HOSTILE:
        cell = _cell(text, 12)
        assert len(cell) == 12 and cell.isprintable(), repr(cell)


@needs_dot
def test_scope_name_cannot_inject_dot_syntax(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A collapsed scope's tooltip was written unquoted when it looked like <...>: a scope named
    like this one added a node with a javascript: link to the drawing."""
    evil = '<b>] injected [shape=star URL="javascript:alert(1)" label=<PWNED>'
    g = ir.Graph("g")
    for node_id in ("a", "b"):
        g.add_node(node_id, op="Op", scope=[evil])
    g.add_edge("a", "b")
    path, svg = tmp_path / "evil.json", tmp_path / "evil.svg"
    ir.save(g, path)
    code, _, err = run(capsys, "render", str(path), "-o", str(svg), "--collapse", "1", "--no-legend")
    assert code == 0, err
    root = ET.fromstring(svg.read_text())
    links = [v for el in root.iter() for k, v in el.attrib.items() if k.endswith("href")]
    assert links == []
    titles = [el.text for el in root.iter() if el.tag.endswith("}title")]
    assert "injected" not in titles and len(titles) == 2  # the graph and the one group


@needs_dot
def test_backslash_escapes_in_names_are_shown_not_expanded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    r"""Graphviz expands \N (the DOT node's name) and \G (the graph's) even in HTML labels."""
    g = ir.Graph("g")
    g.add_node("a", op="Op", name="\\N\\G\\L\\\\", kind="input")
    path, svg = tmp_path / "bs.json", tmp_path / "bs.svg"
    ir.save(g, path)
    code, _, err = run(capsys, "render", str(path), "-o", str(svg))
    assert code == 0, err
    texts = [el.text for el in ET.fromstring(svg.read_text()).iter() if el.tag.endswith("}text")]
    assert "\\N\\G\\L\\\\" in texts, texts


UNSAFE_IDS = [
    "$(touch${IFS}pwned)",
    "`touch pwned`",
    "a;touch pwned",
    "x|y",
    "glob*",
    "it's",
    'say"hi"',
    "two words",
    "line1\nline2",
    "tab\there",
    "esc\x1b[2J",
    "rtl\u202eevil",
    "-o/etc/passwd",
    "~root",
    "a&b",
    "back\\slash",
]


def test_completion_leaves_out_node_ids_a_shell_would_run(tmp_path: Path) -> None:
    """Completing ``--highlight`` types a node id into the user's shell as it is: an id that a
    shell would expand, run, split or read as an option is not offered."""
    from click.testing import CliRunner

    from graphscope.cli import cli

    g = or_gate_graph()
    for i, node_id in enumerate(UNSAFE_IDS):
        g.add_node(node_id, name=f"n{i}", op="Relu", kind="op")
    g.add_node("layer1.0/conv:1", name="safe", op="Relu", kind="op")
    path = tmp_path / "g.json"
    ir.save(g, path)
    expected = sorted(n for n in g.nx.nodes if n not in UNSAFE_IDS)
    for shell in ("bash", "zsh", "fish"):
        env = {
            "_GRAPHSCOPE_COMPLETE": f"{shell}_complete",
            "COMP_WORDS": f"graphscope render {path} -o x.svg --highlight ",
            "COMP_CWORD": "" if shell == "fish" else "6",  # fish: the incomplete word itself
        }
        result = CliRunner().invoke(cli, [], env=env, prog_name="graphscope")
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        if shell == "zsh":  # type, value, help: three lines an item
            offered = lines[1::3]
            assert lines[0::3] == ["plain"] * len(offered)
        else:
            offered = [line.split(",", 1)[1].split("\t")[0] for line in lines]
        assert sorted(offered) == expected, shell


# C1 controls (U+009B is CSI, U+009D OSC to many terminals), DEL, and the bidi controls.
RAW_CONTROLS = ["\x9b2J", "\x9d0;title\x9c", "del\x7f", "rtl\u202eevil", "iso\u2066x\u2069", "lrm\u200e"]


def controls_graph(extra: str = "") -> ir.Graph:
    g = ir.Graph("g\u202e", framework="torch", capture="fx")
    for i, text in enumerate(RAW_CONTROLS):
        g.add_node(text + extra, op=f"{text}op", name=text, kind="input" if i == 0 else "op", scope=[text])
        if i:
            g.add_edge(RAW_CONTROLS[i - 1] + extra, text + extra)
    g.inputs, g.outputs = [RAW_CONTROLS[0] + extra], [RAW_CONTROLS[-1] + extra]
    g.notes.append("note " + "".join(RAW_CONTROLS))
    return g


def assert_no_raw_controls(text: str) -> None:
    raw = [c for c in text if 0x7F <= ord(c) <= 0x9F or ord(c) in (0x61C, 0x200E, 0x200F)]
    raw += [c for c in text if 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069]
    assert not raw, [hex(ord(c)) for c in raw]


def test_json_output_escapes_c1_del_and_bidi_controls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    ir.save(controls_graph(), a)
    ir.save(controls_graph("\u202d2"), b)
    code, out, err = run(capsys, "info", "--json", str(a))
    assert code == 0, err
    assert_no_raw_controls(out)
    doc = json.loads(out)  # the same text, escaped
    assert doc["inputs"][0]["id"] == RAW_CONTROLS[0] and doc["notes"] == controls_graph().notes
    assert "\\u009b2J" in out and "rtl\\u202eevil" in out
    code, out, err = run(capsys, "diff", str(a), str(b), "--json")
    assert code == 0, err
    assert_no_raw_controls(out)
    assert RAW_CONTROLS[1] + "\u202d2" in json.dumps(json.loads(out), ensure_ascii=False)


@needs_dot
def test_svg_labels_carry_no_bidi_controls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, svg = tmp_path / "g.json", tmp_path / "g.svg"
    ir.save(controls_graph(), path)
    code, _, err = run(capsys, "render", str(path), "-o", str(svg))
    assert code == 0, err
    drawn = svg.read_text()
    assert_no_raw_controls(drawn)
    assert "rtl\\u202eevil" in drawn  # shown, as the other controls are


@pytest.mark.parametrize("value", ["1e-6", "inf", "-inf", "1e10", "nan", "abc"])
def test_odd_timeouts_and_caps_are_usage_errors(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--timeout 1e-6 printed a traceback (the alarm rang before the fence was up), inf and 1e10
    overflowed the alarm timer, nan meant no limit at all (render: an internal error)."""
    golden = Path(__file__).parent / "golden" / "torch" / "or_gate.fx.json"
    for args in (
        ["trace", str(golden), "--timeout", value],
        ["render", str(golden), "-o", "x.svg", "--timeout", value],
        ["step", "m.py", "--fw", "torch", "--max-values-mb", value],
    ):
        if args[0] == "step" and value in ("1e-6", "1e10"):
            continue  # a cap of a millionth of a MB or 10 PB is a cap
        code, out, err = run(capsys, *args)
        assert code == 2 and not out, err
        assert "Traceback" not in err and "Invalid value for '--" in err, err


def test_values_nested_500_deep_are_refused_or_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An attribute or signature 500 levels deep loaded, then ran -o and export out of stack."""
    for where in ("attrs", "signature"):
        doc = good_doc()
        deep: Any = 1
        for _ in range(500):
            deep = [deep]
        if where == "attrs":
            _node(doc)["attrs"] = {"deep": deep}
        else:
            doc["graph"]["signature"] = [deep]
        bad = tmp_path / f"deep_{where}.json"
        bad.write_text(json.dumps(doc))
        outs = outputs_in(tmp_path / "out")
        for args in (
            ["trace", str(bad), "-o", str(outs[0])],
            ["export", str(bad), "--to", "onnx", "-o", str(outs[1])],
        ):
            code, _, err = run(capsys, *args)
            assert "deeper than 32 levels" in assert_refused(code, err, bad, outs), args
    g = or_gate_graph()  # what a tracer hands over is cut at the same depth, so it reads back
    g.add_node("deep", op="x", attrs={"deep": deep})
    path = tmp_path / "cut.json"
    ir.save(g, path)
    assert ir.load(path).node("deep")["attrs"]["deep"] != deep


@pytest.mark.onnx
def test_export_to_onnx_of_what_onnx_cannot_hold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A port numbered 10**9 made export list a billion output names (22 GB, killed); a dim of
    2**64+1 and an empty graph name were internal errors; bodies nested 32 deep broke protobuf."""
    import onnx

    def export(doc: dict[str, Any], name: str) -> tuple[int, str, Path]:
        path, out = tmp_path / f"{name}.json", tmp_path / f"{name}.onnx"
        path.write_text(json.dumps(doc))
        code, _, err = run(capsys, "export", str(path), "--to", "onnx", "-o", str(out))
        return code, err, out

    doc = good_doc()
    doc["graph"]["edges"][0]["src_port"] = 10**6
    code, err, out = export(doc, "port")
    assert code == 1 and "uses port 1000000: an ONNX export lists every output" in err and not out.exists()
    doc = good_doc()
    _node(doc)["outputs"] = [{"shape": [2**64 + 1, 2], "dtype": "float32"}]
    doc["graph"]["name"] = ""
    code, err, out = export(doc, "dim")
    assert code == 0, err
    model = onnx.load(str(out))
    assert model.graph.name == "graph"
    dims = [d for vi in [*model.graph.input, *model.graph.value_info] for d in vi.type.tensor_type.shape.dim]
    assert "18446744073709551617" in [d.dim_param for d in dims]
    deep = good_doc()
    graph = deep["graph"]
    for i in range(31):
        body = {
            **copy.deepcopy({k: v for k, v in good_doc()["graph"].items()}),
            "name": f"b{i}",
            "subgraphs": {},
        }
        _node({"graph": graph})["subgraphs"] = [f"b{i}"]
        graph["subgraphs"] = {f"b{i}": body}
        graph = body
    code, err, out = export(deep, "deep")
    assert code == 1 and "bodies nest 31 deep: an ONNX file (a protobuf) holds at most 30" in err, err


@needs_dot
@pytest.mark.parametrize(
    "field, text", [("op", ""), ("name", ""), ("name", "]]"), ("op", "]]"), ("name", "]")]
)
def test_empty_and_bracket_names_draw(
    field: str, text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Graphviz's HTML-label parser refused an empty <B></B> and a text "]]" ("Graphviz failed
    to lay out the graph: in label of node n2")."""
    g = or_gate_graph()
    node = g.node(next(n for n in g.nx.nodes if g.node(n)["kind"] == "op"))
    node[field] = text
    path, svg = tmp_path / "g.json", tmp_path / "g.svg"
    ir.save(g, path)
    code, _, err = run(capsys, "render", str(path), "-o", str(svg))
    assert code == 0, err
    ET.fromstring(svg.read_text())


def test_a_scope_thousands_of_levels_deep_is_drawn_in_bounded_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2,000 levels ran out of Python's stack; 20,000 took 1.6 GB to make the DOT text."""
    import tracemalloc

    from graphscope.rendering.dot import MAX_CLUSTER_DEPTH, DotOptions, to_dot

    g = or_gate_graph()
    deep = next(n for n in g.nx.nodes if g.node(n)["kind"] == "op")
    g.node(deep)["scope"] = [f"s{i}" for i in range(20_000)]
    tracemalloc.start()
    try:
        layout = to_dot(g, DotOptions())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, f"{peak / 2**20:.0f} MB"
    assert layout.source.count("subgraph cluster_") <= MAX_CLUSTER_DEPTH
    if shutil.which("dot"):
        g.node(deep)["scope"] = g.node(deep)["scope"][:2000]
        path, svg = tmp_path / "deep.json", tmp_path / "deep.svg"
        ir.save(g, path)
        code, _, err = run(capsys, "render", str(path), "-o", str(svg))
        assert code == 0, err


def test_collapse_on_a_graph_without_scopes_still_fits_the_budget() -> None:
    """--collapse N on a flat graph left every node single: 200k nodes went to dot, which
    crashed. It draws runs of nodes, as the automatic collapse does."""
    from graphscope.rendering.dot import DotOptions, to_dot

    g = ir.Graph("flat", framework="torch", capture="fx")
    for i in range(5000):
        g.add_node(f"n{i}", op="relu", kind="op")
        if i:
            g.add_edge(f"n{i - 1}", f"n{i}")
    options = DotOptions(collapse=1)
    layout = to_dot(g, options)
    assert layout.drawn_nodes <= options.budget
    assert "5000 nodes have no scopes to collapse: drew runs of" in " ".join(layout.notes)


def test_running_out_of_memory_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def exhausted(*args: Any, **kwargs: Any) -> None:
        raise MemoryError

    monkeypatch.setattr(ir, "load", exhausted)
    code, out, err = run(capsys, "info", str(Path(__file__).parent / "golden" / "torch" / "or_gate.fx.json"))
    assert code == 1 and not out
    assert err == (
        "graphscope: error: ran out of memory (the model, the graph or the values it holds need "
        "more than this machine has)\n"
    )

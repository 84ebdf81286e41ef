"""PyTorch capture: every example by every method that can capture it, pinned by golden IR files.

Set GRAPHSCOPE_UPDATE_GOLDENS=1 to rewrite the goldens, then review the diff before committing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from graphscope import ir, loader, tracers
from graphscope.cli import main
from graphscope.errors import GraphscopeError

from .conftest import assert_golden

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "torch"
METHODS = ["fx", "export", "jit-trace", "jit-script", "dynamo", "eager"]

# example -> methods that cannot capture it, with the reason the user is told
CANNOT = {
    ("data_dependent", "fx"): "the model branches or loops on a traced value",
    ("data_dependent", "export"): "the model's control flow depends on a tensor's value",
    ("gru", "fx"): "torch.fx.symbolic_trace cannot capture this model",
}
EXAMPLES = ["or_gate", "tensor_sum", "data_dependent", "gru", "transformer_block"]
CASES = [(e, m) for e in EXAMPLES for m in METHODS if (e, m) not in CANNOT]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # source paths in the IR are relative to the working directory


def capture_example(example: str, method: str) -> ir.Graph:
    found = loader.load_target(Path("examples") / f"{example}_torch.py", fw="torch")
    return tracers.capture(found.model, found.example_inputs, fw="torch", method=method, name=example)


@pytest.mark.parametrize(("example", "method"), CASES, ids=[f"{e}-{m}" for e, m in CASES])
def test_example_matches_golden(example: str, method: str) -> None:
    graph = capture_example(example, method)
    text = ir.dumps(graph)
    golden = GOLDEN / f"{example}.{method}.json"
    assert_golden(golden, text)
    assert ir.loads(text) == graph


@pytest.mark.parametrize(("example", "method"), sorted(CANNOT), ids=[f"{e}-{m}" for e, m in sorted(CANNOT)])
def test_method_that_cannot_capture_says_where_and_what_to_try(
    example: str, method: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["trace", f"examples/{example}_torch.py", "--fw", "torch", "--method", method])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert CANNOT[(example, method)] in err
    assert f"(at examples/{example}_torch.py:" in err
    # It names a method that does capture the model, never one that fails too.
    suggested = re.search(r"; --method ([\w-]+) captures it$", err.strip())
    assert suggested is not None and suggested.group(1) != method, err
    assert (
        main(["trace", f"examples/{example}_torch.py", "--fw", "torch", "--method", suggested.group(1)]) == 0
    )


def test_or_gate_canonical_layers_agree_across_methods() -> None:
    layers = {}
    for method in METHODS:
        g = capture_example("or_gate", method)
        if method == "dynamo":
            g = g.subgraphs["graph_0"]
        layers[method] = [n["canonical_op"] for n in g.nodes() if n["canonical_op"] in ("linear", "sigmoid")]
    assert all(v == ["linear", "sigmoid"] * 3 for v in layers.values()), layers


def test_export_records_params_scopes_and_sources() -> None:
    g = capture_example("or_gate", "export")
    params = [n for n in g.nodes() if n["kind"] == "param"]
    assert [p["name"] for p in params][:2] == ["hidden1.weight", "hidden1.bias"]
    assert params[0]["outputs"] == [{"shape": [4, 2], "dtype": "float32"}]
    linear = g.node("linear")
    assert linear["scope"] == ["hidden1"]
    assert linear["source"] == {"file": "examples/or_gate_torch.py", "line": 19}
    assert g.inputs == ["x"]


def _scripted_graph(model: object) -> object:
    import torch

    return torch.jit.script(model).inlined_graph


@pytest.mark.parametrize("example", ["data_dependent", "gru", "transformer_block"])
def test_jit_script_reads_the_printed_graph_as_pybind_would(example: str, tmp_path: Path) -> None:
    """Scripted graphs are read from their printed form (fast); every field must be what
    reading each node through pybind gives."""
    import torch

    from graphscope.tracers import _torchscript_text as printed_form
    from graphscope.tracers import torch_jit

    found = loader.load_target(Path("examples") / f"{example}_torch.py", fw="torch")
    scopes = torch_jit._ModuleScopes((n, type(m).__name__) for n, m in found.model.named_modules())
    ts_graph = _scripted_graph(found.model)
    printed = printed_form.PrintedReader(ts_graph, scopes).graph()
    assert printed == torch_jit._Reader(traced=False, scopes=scopes).graph(ts_graph)
    assert len(printed[0].nodes) > 5
    # A saved and loaded archive: both name the original source file, not the archive's code.
    archive = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(found.model), str(archive))
    loaded = torch.jit.load(str(archive)).inlined_graph
    printed = printed_form.PrintedReader(loaded, scopes).graph()
    assert printed == torch_jit._Reader(traced=False, scopes=scopes).graph(loaded)
    sources = {n.source["file"] for n in printed[0].nodes if n.source}
    assert sources == {f"examples/{example}_torch.py"}


def test_jit_script_graphs_the_printed_form_cannot_say_are_read_through_pybind() -> None:
    """Strings that look like the printed syntax, a module attribute that is not a Python name
    and a traced archive's sized tensor types: the fast reader gives up and pybind reads them."""
    import torch
    from torch import nn

    from graphscope.tracers import _torchscript_text as printed_form
    from graphscope.tracers import torch_jit

    class Tricky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleDict({"odd name": nn.Linear(2, 2)})

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for block in self.blocks.values():
                x = block(x)
            if bool(x.sum() > 0):
                raise ValueError("](%x) # fake.py:1:2 -> (%y) block0():")
            return x

    scopes = torch_jit._ModuleScopes((n, type(m).__name__) for n, m in Tricky().named_modules())
    ts_graph = _scripted_graph(Tricky())
    try:
        printed = printed_form.PrintedReader(ts_graph, scopes).graph()
    except printed_form.NotPlain:
        printed = None
    pybind = torch_jit._Reader(traced=False, scopes=scopes).graph(ts_graph)
    assert printed is None or printed == pybind
    graph = tracers.capture(Tricky(), (torch.ones(1, 2),), fw="torch", method="jit-script", name="t")
    assert any(n["id"] == "blocks.odd name.weight" for n in graph.nodes())

    class Damaged:
        """A loaded archive whose debug information is not UTF-8 fails to print."""

        def __getattr__(self, name: str) -> object:
            return getattr(ts_graph, name)

        def __str__(self) -> str:
            raise UnicodeDecodeError("utf-8", b"\xd4", 0, 1, "unexpected end of data")

    assert torch_jit._read(Damaged(), traced=False, scopes=scopes) == pybind

    traced = torch.jit.trace(nn.Linear(2, 3), (torch.ones(1, 2),))
    with pytest.raises(printed_form.NotPlain):  # Float(1, 3, strides=...) and module scopes
        printed_form.PrintedReader(traced.inlined_graph, scopes).graph()
    archive = tracers.capture(traced, None, fw="torch", method="jit-script", name="a")
    assert [n["outputs"] for n in archive.nodes() if n["op"] == "aten::linear"] == [
        [{"shape": [1, 3], "dtype": "float32"}]
    ]


def test_jit_script_keeps_if_branches_and_loop_body_as_subgraphs() -> None:
    g = capture_example("data_dependent", "jit-script")
    (if_node,) = [n for n in g.nodes() if n["op"] == "prim::If"]
    assert if_node["subgraphs"] == ["if.then", "if.else"]
    then_ops = {n["op"] for n in g.subgraphs["if.then"].nodes()}
    else_ops = {n["op"] for n in g.subgraphs["if.else"].nodes()}
    assert "aten::relu" in then_ops and "aten::tanh" in else_ops
    gru = capture_example("gru", "jit-script")
    (loop,) = [n for n in gru.nodes() if n["op"] == "prim::Loop"]
    assert loop["subgraphs"] == ["loop.body"]
    assert "aten::gru_cell" in {n["op"] for n in gru.subgraphs["loop.body"].nodes()}


def test_dynamo_records_graph_breaks_with_source_lines() -> None:
    g = capture_example("data_dependent", "dynamo")
    assert sorted(g.subgraphs) == ["graph_0", "graph_1"]
    (note,) = [n for n in g.notes if "graph break" in n]
    assert "examples/data_dependent_torch.py:20" in note
    brk = g.node("break_0")
    assert brk["kind"] == "control" and brk["source"] == {
        "file": "examples/data_dependent_torch.py",
        "line": 20,
    }


def test_jit_trace_turns_tracer_warnings_into_notes() -> None:
    g = capture_example("data_dependent", "jit-trace")
    assert any("Python boolean" in n and "data_dependent_torch.py:20" in n for n in g.notes), g.notes


@pytest.mark.parametrize(
    ("example", "method", "verdict"),
    [
        ("data_dependent", "jit-trace", "input-dependent"),
        ("gru", "jit-trace", "input-dependent"),
        ("or_gate", "jit-trace", "static"),
        ("or_gate", "export", "static"),
        ("gru", "jit-script", "static"),
        ("transformer_block", "export", "shape-specialised"),  # reshapes to the batch size
    ],
)
def test_check_dynamic(example: str, method: str, verdict: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code = main(
        [
            "trace",
            f"examples/{example}_torch.py",
            "--fw",
            "torch",
            "--method",
            method,
            "--check-dynamic",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["dynamic"]["verdict"] == verdict, doc["dynamic"]
    assert doc["dynamic"]["static"] is (verdict == "static")
    assert any(n.startswith("check-dynamic:") for n in doc["notes"])
    if verdict == "input-dependent":
        assert doc["dynamic"]["added"] or doc["dynamic"]["removed"] or doc["dynamic"]["changed"]
    elif verdict == "shape-specialised":
        assert not (doc["dynamic"]["added"] or doc["dynamic"]["removed"] or doc["dynamic"]["changed"])
        assert {s["node"] for s in doc["dynamic"]["specialised"]} == {
            "reshape",
            "reshape_1",
            "reshape_2",
            "reshape_3",
        }


def test_check_dynamic_without_alt_inputs_grows_the_batch(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["trace", "examples/or_gate_torch.py", "--fw", "torch", "--method", "jit-trace", "--check-dynamic"]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    flat = " ".join(out.split())
    assert "static: jit-trace captured the same ops and edges for both inputs (only shapes differ" in flat


@pytest.mark.parametrize("method", METHODS)
def test_capture_leaves_the_model_untouched(method: str) -> None:
    import torch
    from torch import nn

    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 2))
    model.train()
    model[3].eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    inputs = (torch.randn(5, 3),)
    rng = torch.get_rng_state()
    tracers.capture(model, inputs, fw="torch", method=method, name="m")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(torch.get_rng_state(), rng)


def test_torchscript_archive_is_recognised_by_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    found = loader.load_target("examples/or_gate_torch.py", fw="torch")
    archive = tmp_path / "weights.bin"  # a misleading suffix: the content decides what it is...
    torch.jit.save(torch.jit.script(found.model), str(archive))
    assert loader.detect(archive) == "torchscript"
    code = main(["trace", str(archive), "--fw", "torch", "--json"])  # ...and --fw torch says load it
    out, err = capsys.readouterr()
    assert code == 0, err
    assert '"capture": "jit-script"' in out and '"aten::linear": 3' in out


def test_damaged_torchscript_archive_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import zipfile

    bad = tmp_path / "model.pt"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("model/code/__torch__.py", "garbage")
        zf.writestr("model/data.pkl", b"\x80\x04garbage")
    code = main(["trace", str(bad)])
    _, err = capsys.readouterr()
    assert code == 1 and "is not a readable TorchScript archive" in err and err.count("\n") == 1


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "model.py"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize(
    ("source", "args", "message"),
    [
        (
            "import torch\nnet = torch.nn.Linear(2, 2)\n",
            [],
            "does not define a function named by --entry, or `model` and `example_inputs`; it defines: net",
        ),
        (
            "x = 1\nraise ValueError('bad config')\n",
            [],
            "raised ValueError: bad config at line 2 while being imported",
        ),
        ("import sys\nsys.exit(3)\n", [], "called sys.exit(3) while being imported"),
        ("def broken(:\n", [], "has a syntax error at line 1"),
        (
            "def build():\n    return 1\n",
            ["--entry", "build"],
            "build() must return (model, example_inputs), or (model, example_inputs, example_targets, "
            "loss_fn) for training, not an int",
        ),
        (
            "def build():\n    raise KeyError('k')\n",
            ["--entry", "build"],
            "build() raised KeyError: 'k' at line 2",
        ),
        ("x = 1\n", ["--entry", "nope"], "has no function 'nope' (--entry); it defines: x"),
    ],
)
def test_model_file_problems_are_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, args: list[str], message: str
) -> None:
    path = _write(tmp_path, source)
    code = main(["trace", path, "--fw", "torch", *args])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert out == ""
    assert message in err
    assert err.startswith(f"graphscope: error: {path}") and err.count("\n") == 1


def test_python_file_without_fw_asks_for_it(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["trace", "examples/or_gate_torch.py"])
    _, err = capsys.readouterr()
    assert code == 1 and "say which framework it uses with --fw" in err


def test_entry_function(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "import torch\ndef make():\n    return torch.nn.Linear(2, 3), (torch.ones(1, 2),)\n",
    )
    found = loader.load_target(path, fw="torch", entry="make")
    g = tracers.capture(found.model, found.example_inputs, fw="torch", method="export", name=found.name)
    assert [n["canonical_op"] for n in g.nodes() if n["kind"] == "op"] == ["linear"]


def test_unknown_method_lists_the_known_ones() -> None:
    with pytest.raises(GraphscopeError, match="has no capture method 'magic'; methods: fx, export"):
        tracers.capture(None, (), fw="torch", method="magic")


def test_module_names_that_are_not_identifiers_get_the_fx_error() -> None:
    import torch
    from torch import nn

    model = nn.Sequential()
    model.add_module("class", nn.Linear(2, 2))  # fx generates `self.class(...)`: a SyntaxError
    with pytest.raises(
        GraphscopeError,
        match=r"torch.fx.symbolic_trace cannot capture this model: .*; --method export captures it$",
    ):
        tracers.capture(model, (torch.ones(1, 2),), fw="torch", method="fx")
    g = tracers.capture(model, (torch.ones(1, 2),), fw="torch", method="export")
    assert g.node("linear")["scope"] == ["class"]


def test_readme_table_of_the_six_captures_counts_what_the_goldens_hold() -> None:
    import json
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("### The same code, six captures", 1)[1].split("\n\n")[2]
    header, _, *rows = table.splitlines()
    methods = [c.strip() for c in header.strip("|").split("|")][1:]
    checked = 0
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        example = re.match(r"`(\w+)_torch\.py`", cells[0])[1]  # type: ignore[index]
        for method, cell in zip(methods, cells[1:]):
            golden = GOLDEN / f"{example}.{method}.json"
            if cell == "-":
                assert not golden.exists(), golden
                continue
            graph = json.loads(golden.read_text())["graph"]
            count = int(re.match(r"\d+", cell)[0])  # type: ignore[index]
            held = len(graph["subgraphs"]) if method == "dynamo" else len(graph["nodes"])
            assert count == held, f"README says {cell!r} for {example} {method}; the golden holds {held}"
            checked += 1
    assert checked == 27


def test_jit_script_scopes_every_op_by_the_module_that_ran_it() -> None:
    """Not only the ops that read a weight: a scripted op's module comes from the call stack
    inlining left on it, through ModuleList / Sequential indices."""
    import torch
    from torch import nn

    from graphscope.tracers import torch_jit

    block = capture_example("transformer_block", "jit-script")
    scopes = {n["op"]: n["scope"] for n in block.nodes()}
    assert scopes["aten::gelu"] == ["mlp", "1"]
    assert scopes["aten::scaled_dot_product_attention"] == ["attn"]
    assert scopes["aten::add"] == []  # the residual sums are the block's own

    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([nn.Sequential(nn.Linear(2, 2), nn.ReLU()) for _ in range(2)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for layer in self.layers:
                x = layer(x)
            return x

    graph = tracers.capture(Stack(), (torch.ones(1, 2),), fw="torch", method="jit-script", name="s")
    assert [n["scope"] for n in graph.nodes() if n["op"] == "aten::relu"] == [
        ["layers", "0", "1"],
        ["layers", "1", "1"],
    ]
    resolve = torch_jit._ModuleScopes(
        [
            ("", "Net"),
            ("layers", "ModuleList"),
            ("layers.0", "Sequential"),
            ("layers.0.0", "Linear"),
            ("layers.0.1", "ReLU"),
            ("extra", "ModuleList"),
            ("extra.0", "Linear"),
            ("more", "ModuleList"),
            ("more.0", "Linear"),
            ("head", "Linear"),
        ]
    )
    assert resolve("0(Sequential).SELF(Sequential).1(ReLU).UNKNOWN_INSTANCE(UNKNOWN_TYPE)") == [
        "layers",
        "0",
        "1",
    ]
    assert resolve("head(Linear)") == ["head"]
    assert resolve("missing(Linear)") == []
    assert resolve("0(Linear)") == []  # extra.0 or more.0: not a guess


def test_source_is_the_users_line_else_a_model_librarys_never_the_console_script(tmp_path: Path) -> None:
    import os
    import sys

    from graphscope.tracers._source import is_user_file, relative, source_of_frames

    site = next(p for p in sys.path if p.endswith("site-packages"))
    script = os.path.join(sys.prefix, "bin", "graphscope")
    functional = os.path.join(site, "torch", "nn", "functional.py")
    module_call = os.path.join(site, "torch", "nn", "modules", "module.py")
    layer = os.path.join(site, "torch", "nn", "modules", "linear.py")
    gpt2 = os.path.join(site, "transformers", "models", "gpt2", "modeling_gpt2.py")
    user = str(tmp_path / "model.py")
    assert not is_user_file(script)
    # Paths below the working directory are shown relative to it (CI's .venv is in the checkout).
    # innermost first: torch's functional machinery, the library's line, torch's call machinery,
    # then the console script that called it all
    assert source_of_frames([(functional, 1), (gpt2, 20), (module_call, 3), (script, 8)]) == {
        "file": relative(gpt2),
        "line": 20,
    }
    assert source_of_frames([(functional, 1), (layer, 134), (module_call, 3), (script, 8)]) == {
        "file": relative(layer),
        "line": 134,
    }
    # the user's module wrapping a library model: the library's line that ran the op, not the
    # user's one line that called the library (every op of the backbone would point there)
    assert source_of_frames([(functional, 1), (gpt2, 20), (user, 7), (script, 8)]) == {
        "file": relative(gpt2),
        "line": 20,
    }
    # torch.nn's layers stay behind the user's line that used them
    assert source_of_frames([(functional, 1), (layer, 134), (user, 7), (script, 8)]) == {
        "file": relative(user),
        "line": 7,
    }
    assert source_of_frames([(functional, 1), (module_call, 3), (script, 8)]) is None


def test_a_traced_tuple_output_has_its_items_shapes() -> None:
    """jit-trace's output was one value of type Tuple[Tensor, Tensor], with no shape."""
    import torch

    class Two(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
            y = self.lin(x)
            return y, (y.sum(), y.t())

    g = tracers.capture(Two(), (torch.randn(2, 4),), fw="torch", method="jit-trace")
    (out,) = g.outputs
    assert g.node(out)["outputs"] == [
        {"shape": [2, 3], "dtype": "float32"},
        {"shape": [], "dtype": "float32"},
        {"shape": [3, 2], "dtype": "float32"},
    ]

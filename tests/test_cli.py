"""The `graphscope` command: info, exit codes, error sentences, start-up cost."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graphscope import ir
from graphscope.cli import main

from .conftest import or_gate_graph


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_prints_counts_ops_and_ports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "g.json"
    ir.save(or_gate_graph(), path)
    code, out, err = run(capsys, "info", str(path))
    assert code == 0, err
    assert "or_gate" in out
    assert "8 nodes, 8 edges (1 control)" in out
    assert "float32[4,2]" in out  # the input's shape
    assert "linear" in out and "sigmoid" in out


def test_info_json_is_one_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "g.json"
    ir.save(or_gate_graph(), path)
    code, out, _ = run(capsys, "info", str(path), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["nodes"] == 8 and doc["edges"] == 8 and doc["subgraphs"] == 0
    assert doc["ops"] == {"call_module:Linear": 3, "call_function:sigmoid": 3, "placeholder": 1, "output": 1}
    assert doc["framework"] == "torch" and doc["capture"] == "fx"
    assert [p["id"] for p in doc["inputs"]] == ["x"]
    assert doc["outputs"][0]["outputs"] == [{"shape": [4, 1], "dtype": "float32"}]
    assert doc["notes"] == ["a note"]
    assert doc["phases"] == {"forward": 8}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00garbage", "is not a graphscope .json file: byte 0 is not UTF-8"),
        (
            b'{"format": "onnx", "graph": {}}',
            'is JSON but not a graphscope graph: it lacks "format": "graphscope.ir"',
        ),
        (
            b'{"format": "graphscope.ir", "version": 3, "graph": {}}',
            "is graphscope IR version 3, but this graphscope reads versions 1 and 2",
        ),
        (
            b'{"format": "graphscope.ir", "version": 1, "graph": {"nodes": [{"id"',
            "is not complete JSON: it ends early",
        ),
        (b"", "is empty"),
        (b"hello", "is not valid JSON"),
    ],
)
def test_info_on_bad_files_exits_1_with_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    code, out, err = run(capsys, "info", str(path))
    assert code == 1
    assert out == ""
    assert err.startswith(f"graphscope: error: {path}")
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_missing_file_and_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "info", str(tmp_path / "nope.json"))
    assert code == 1 and "does not exist" in err
    code, _, err = run(capsys, "info", str(tmp_path))
    assert code == 1 and "is a directory" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "info")
    assert code == 2 and "Missing argument" in err
    code, _, err = run(capsys, "frobnicate")
    assert code == 2 and "No such command" in err
    code, _, err = run(capsys, "trace", "x.py", "--fw", "mxnet")
    assert code == 2 and "Invalid value for '--fw'" in err


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("nope")
    proc = subprocess.run(
        [sys.executable, "-m", "graphscope", "--debug", "info", str(path)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "GraphscopeError" in proc.stderr


def test_help_is_fast_and_imports_no_framework() -> None:
    code = (
        "import sys, time; t = time.perf_counter();"
        "from graphscope.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'tensorflow', 'networkx', 'rich', 'textual', 'onnx') if m in sys.modules]\n"
        "print(repr(heavy), time.perf_counter() - t, file=sys.stderr)"
    )
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr
    assert "Usage: graphscope" in proc.stdout and "trace" in proc.stdout and "tui" in proc.stdout
    assert proc.stderr.startswith("[]"), proc.stderr
    assert elapsed < 1.0, elapsed  # interpreter start included


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "graphscope"
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "graphscope, version 0.1.0" in proc.stdout


def test_an_internal_error_is_one_short_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # torch's NotImplementedError for a sparse tensor lists some eighty dispatch keys, each
    # with a file: an internal error said all of it (6,000 characters) on one line
    def fails(*args: object, **kwargs: object) -> None:
        raise NotImplementedError(
            "Could not run 'aten::linalg_vector_norm' " + "Key: registered at x.cpp:1 " * 300
        )

    monkeypatch.setattr(ir, "load", fails)
    path = tmp_path / "g.json"
    ir.save(or_gate_graph(), path)
    code, out, err = run(capsys, "info", str(path))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and len(err) < 400, err
    assert err.startswith(
        "graphscope: internal error: NotImplementedError: Could not run 'aten::linalg_vector_norm'"
    )
    assert err.rstrip().endswith("(rerun with --debug for the traceback)")

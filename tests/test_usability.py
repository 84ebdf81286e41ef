"""Usability: progress on stderr, --quiet, shell completion, notebook display."""

from __future__ import annotations

import io
import os
import pty
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete

import graphscope
from graphscope import ir, progress
from graphscope.cli import cli, main

from .conftest import or_gate_graph
from .test_render import scoped_graph

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "torch" / "or_gate.fx.json"
BIN = Path(sys.executable).parent
needs_dot = pytest.mark.skipif(
    not (os.environ.get("GRAPHSCOPE_DOT") or shutil.which("dot")), reason="Graphviz's dot is not installed"
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def use_terminal(monkeypatch: pytest.MonkeyPatch) -> FakeTerminal:
    """stderr is a terminal, progress is not silenced (an earlier `-q` run may have left it so).

    Called in the test's body: pytest's own capture sets sys.stderr again when the call begins.
    """
    fake = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    monkeypatch.setattr(progress, "_quiet", False)
    monkeypatch.delenv("TERM", raising=False)
    return fake


# -- progress ------------------------------------------------------------------------------------


def test_progress_shows_on_a_terminal_and_erases_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = use_terminal(monkeypatch)
    monkeypatch.setenv("GRAPHSCOPE_PROGRESS_DELAY", "0")
    with progress.task("capturing model.py with export", total=2) as t:
        assert t.shown
        t.advance()
        t.update("capturing model.py again")
        t.advance()
    drawn = terminal.getvalue()
    assert "capturing model.py with export" in drawn
    assert "2/2" in drawn
    assert drawn.endswith("\x1b[2K")  # transient: the last thing it does is clear its line


def test_progress_waits_a_second_before_showing(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = use_terminal(monkeypatch)
    monkeypatch.delenv("GRAPHSCOPE_PROGRESS_DELAY", raising=False)
    with progress.task("loading graph.json") as t:
        pass  # a quick phase never flashes a spinner
    assert not t.shown
    assert terminal.getvalue() == ""


def test_progress_stays_off_a_pipe_and_under_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHSCOPE_PROGRESS_DELAY", "0")
    monkeypatch.setattr(progress, "_quiet", False)
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    with progress.task("stepping") as t:
        t.advance()
    assert not t.shown and pipe.getvalue() == ""

    fake = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", fake)
    progress.set_quiet(True)
    with progress.task("stepping") as t:
        pass
    assert not t.shown and fake.getvalue() == ""


def test_cli_progress_goes_to_the_terminal_never_to_stdout(tmp_path: Path) -> None:
    """A real terminal on stderr (a pty), stdout a pipe: the spinner is on the one, not the other."""
    leader, follower = pty.openpty()
    env = {**os.environ, "GRAPHSCOPE_PROGRESS_DELAY": "0", "TERM": "xterm"}
    proc = subprocess.run(
        [str(BIN / "graphscope"), "trace", str(GOLDEN), "-o", str(tmp_path / "g.json")],
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
        timeout=60,
        check=False,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    terminal_text = b"".join(chunks).decode("utf-8", "replace")
    stdout = proc.stdout.decode()
    assert proc.returncode == 0, terminal_text
    assert f"loading {GOLDEN}" in terminal_text
    assert "wrote" in terminal_text
    assert stdout.startswith("graph ") and "\x1b" not in stdout and "loading" not in stdout


# -- --quiet -------------------------------------------------------------------------------------


def test_quiet_silences_informational_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json = tmp_path / "g.json"
    code, out, err = run(capsys, "trace", str(GOLDEN), "-o", str(out_json))
    assert code == 0 and err.strip() == f"wrote {out_json}"
    out_json.unlink()
    code, quiet_out, err = run(capsys, "-q", "trace", str(GOLDEN), "-o", str(out_json))
    assert code == 0 and err == "" and out_json.exists()
    assert quiet_out == out  # the report itself is not informational chatter


@needs_dot
def test_quiet_silences_the_collapse_notice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = tmp_path / "big.json"
    ir.save(scoped_graph(stages=10, blocks=20, ops_per_block=10), big)  # 2000 ops: collapsed
    code, _, err = run(capsys, "render", str(big), "-o", str(tmp_path / "a.svg"))
    assert code == 0 and "collapsed scopes below depth" in err
    code, _, err = run(capsys, "--quiet", "render", str(big), "-o", str(tmp_path / "b.svg"))
    assert code == 0 and err == ""
    assert (tmp_path / "b.svg").read_text() == (tmp_path / "a.svg").read_text()


def test_quiet_never_hides_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-q", "info", str(tmp_path / "missing.json"))
    assert code == 1
    assert err.startswith("graphscope: error: ") and "does not exist" in err


# -- shell completion ----------------------------------------------------------------------------


def complete(words: list[str], incomplete: str = "") -> list[str]:
    return [
        c.value
        for c in ShellComplete(cli, {}, "graphscope", "_GRAPHSCOPE_COMPLETE").get_completions(
            words, incomplete
        )
    ]


def test_method_completion_follows_the_framework() -> None:
    assert complete(["trace", "m.py", "--fw", "torch", "--method"]) == [
        "fx",
        "export",
        "jit-trace",
        "jit-script",
        "dynamo",
        "eager",
    ]
    assert complete(["trace", "m.py", "--fw", "tf", "--method"]) == ["tf-function", "onnx"]
    assert complete(["trace", "m.py", "--fw", "torch", "--method"], "jit") == ["jit-trace", "jit-script"]
    # step lists the steppers, not the tracers
    assert complete(["step", "m.py", "--fw", "torch", "--method"]) == ["eager", "fx", "export"]
    # diff: each side's own framework
    assert complete(["diff", "a.py", "b.py", "--fw-a", "tf1", "--method-a"]) == ["tf1"]
    assert complete(["diff", "a.py", "b.py", "--fw", "onnx", "--method-b"]) == ["onnx"]
    # no framework yet: every method once, its frameworks as the help
    items = ShellComplete(cli, {}, "graphscope", "_X").get_completions(["trace", "m.py", "--method"], "")
    helps = {c.value: c.help for c in items}
    assert helps["export"] == "torch" and helps["onnx"] == "tf, onnx" and len(helps) == 9


def test_completion_of_choices_paths_and_node_ids() -> None:
    assert complete(["trace", "m.py", "--fw"]) == ["torch", "tf", "tf1", "onnx"]
    assert complete(["completion"]) == ["bash", "zsh", "fish"]
    assert "-q" in complete([], "-") and "--quiet" in complete([], "-")
    assert "completion" in complete([]) and "trace" in complete([], "tr")
    target = ShellComplete(cli, {}, "graphscope", "_X").get_completions(["trace"], "exam")
    assert [(c.type, c.value) for c in target] == [("file", "exam")]  # the shell completes the path
    highlight = ["render", str(GOLDEN), "-o", "x.svg", "--highlight"]
    assert complete(highlight, "sig") == ["sigmoid", "sigmoid_1", "sigmoid_2"]
    assert complete(["render", "no-such.json", "--highlight"], "s") == []


def test_completion_imports_no_framework() -> None:
    code = (
        "import sys\n"
        "from click.shell_completion import ShellComplete\n"
        "from graphscope.cli import cli\n"
        "c = ShellComplete(cli, {}, 'graphscope', '_X')\n"
        "assert [i.value for i in c.get_completions(['step', 'm.py', '--method'], 'e')] == ['eager', 'export']\n"
        "assert not {'torch', 'tensorflow', 'onnx'} & set(sys.modules), sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    ("shell", "expected"),
    [
        ("bash", "_GRAPHSCOPE_COMPLETE=bash_complete"),
        ("zsh", "#compdef graphscope"),
        ("fish", "complete --no-files --command graphscope"),
    ],
)
def test_completion_command_prints_the_script(
    shell: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "completion", shell)
    assert code == 0 and expected in out


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_end_to_end() -> None:
    """The script from `graphscope completion bash`, sourced in bash, completes through the CLI."""
    script = (
        'eval "$(graphscope completion bash)"\n'
        "COMP_WORDS=(graphscope trace m.py --fw tf --method '')\n"
        "COMP_CWORD=6\n"
        "_graphscope_completion graphscope\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert proc.stdout.split() == ["tf-function", "onnx"]


# -- notebook display ----------------------------------------------------------------------------


@needs_dot
def test_graph_repr_svg_is_well_formed_svg() -> None:
    svg = or_gate_graph()._repr_svg_()
    assert svg is not None
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert texts[0] == "or_gate · torch fx"  # the title, as `graphscope render` draws it
    assert {"fc0", "fc1", "fc2", "x", "Linear", "sigmoid", "output"} <= set(texts)


@needs_dot
def test_big_graph_repr_svg_is_collapsed_and_silent(capsys: pytest.CaptureFixture[str]) -> None:
    svg = scoped_graph(stages=10, blocks=20, ops_per_block=10)._repr_svg_()
    assert svg is not None
    root = ET.fromstring(svg)
    drawn = sum(g.get("class") == "node" for g in root.iter("{http://www.w3.org/2000/svg}g"))
    assert 100 < drawn < 1000  # collapsed to its blocks, not 2000 ops
    assert capsys.readouterr().err == ""  # a notebook cell gets no stderr notice


def test_graph_repr_svg_is_none_without_dot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRAPHSCOPE_DOT", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no `dot`
    g = or_gate_graph()
    assert g._repr_svg_() is None
    assert repr(g).startswith("<Graph 'or_gate'")  # what Jupyter shows instead


def test_graph_repr_svg_is_none_when_dot_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "dot"
    broken.write_text("#!/bin/sh\necho 'Error: syntax error' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("GRAPHSCOPE_DOT", str(broken))
    assert or_gate_graph()._repr_svg_() is None


def test_diff_repr_and_html() -> None:
    a = or_gate_graph()
    b = or_gate_graph()
    b.add_node("extra", op="call_function:relu", outputs=[{"shape": [4, 1], "dtype": "float32"}])
    b.add_edge("sigmoid_2", "extra")
    d = graphscope.diff(a, b)
    assert repr(d) == "<Diff 'or_gate' -> 'or_gate': 8 matched, 1 added, 0 removed, 0 changed>"
    html = d._repr_html_()
    assert html.startswith("<pre") and "1 added" in html and "extra" in html


@pytest.mark.torch
def test_steps_html_shows_the_table_and_the_verdict() -> None:
    steps = graphscope.step(ROOT / "examples" / "nan_torch.py", fw="torch")
    html = steps._repr_html_()
    bad = steps.first_nonfinite
    assert bad is not None
    assert html.startswith("<pre") and bad.node in html and "nan" in html.lower()

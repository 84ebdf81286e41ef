"""Messages that point the right way: what a new user is told when a command cannot do what
was asked (issue 15's "Messages"). Each is one sentence on stderr and exit 1, or a success that
says what it did instead."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from graphscope import tracers
from graphscope.cli import TRACE_METHODS_HELP, main

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence(err: str) -> str:
    assert err.startswith("graphscope: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.removeprefix("graphscope: error: ").strip()


def write_model(directory: Path, name: str, forward: str) -> Path:
    path = directory / name
    path.write_text(
        textwrap.dedent(
            """\
            import torch
            from torch import nn


            class M(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.lin = nn.Linear(2, 2)

                def forward(self, x):
            {forward}


            model = M()
            example_inputs = (torch.ones(3, 2),)
            """
        ).format(forward=textwrap.indent(textwrap.dedent(forward).strip(), " " * 8))
    )
    return path


# -- commands that read a captured graph, given a model file ---------------------------------------


@pytest.mark.parametrize(
    ("command", "extra", "way"),
    [
        ("render", ["-o", "x.svg"], "--svg or_gate_torch.svg` draws it in one step"),
        ("info", [], "` prints the same summary"),
        ("export", ["--to", "dot", "-o", "x.dot"], "-o or_gate_torch.json` writes one"),
    ],
)
def test_a_command_reading_a_graph_given_a_model_file_shows_the_way_through_trace(
    command: str,
    extra: list[str],
    way: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = run([command, "examples/or_gate_torch.py", *extra], capsys)
    sentence = one_sentence(err)
    assert code == 1 and out == ""
    assert sentence.startswith(
        f"examples/or_gate_torch.py is a model file, and {command} reads a graph that trace captured"
    )
    assert "`graphscope trace examples/or_gate_torch.py --fw torch|tf|tf1" in sentence and way in sentence
    assert "JSON" not in sentence  # not "is not valid JSON: Extra data at line 1, column 3"
    assert not Path("x.svg").exists() and not Path("x.dot").exists()


@pytest.mark.parametrize("name", ["README.md", "constraints.txt"])
def test_a_text_file_that_is_not_python_is_not_called_a_python_file(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, _, err = run(["trace", name], capsys)
    sentence = one_sentence(err)
    assert code == 1
    assert sentence.startswith(f"{name} is not a file graphscope knows: it reads a model.py (with --fw)")
    assert "Python file" not in sentence


# -- the model's own error, and the default capture's fallback ----------------------------------------


@pytest.mark.torch
@pytest.mark.parametrize("method", [None, "export", "fx", "jit-trace", "jit-script", "dynamo", "eager"])
def test_a_model_that_raises_is_the_models_error_under_every_method(
    method: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_model(tmp_path, "raises.py", "y = self.lin(x)\nreturn y.foo")
    args = ["trace", "raises.py", "--fw", "torch"] + (["--method", method] if method else [])
    code, out, err = run(args, capsys)
    sentence = one_sentence(err)
    assert code == 1 and out == ""
    assert re.search(r"the model raised AttributeError: '\w*Tensor' object has no attribute 'foo'", sentence)
    assert "at raises.py:12" in sentence
    assert "cannot capture" not in sentence and "--method" not in sentence


BRANCHY = """
y = self.lin(x)
if y.sum().item() > 0:
    return torch.relu(y)
return y * 2
"""


@pytest.mark.torch
def test_the_default_capture_falls_back_to_the_next_method_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_model(tmp_path, "branchy.py", BRANCHY)
    code, _, err = run(["trace", "branchy.py", "--fw", "torch", "--json", "-o", "g.json"], capsys)
    assert code == 0, err
    from graphscope import ir

    graph = ir.load(tmp_path / "g.json")
    assert graph.capture == "dynamo"
    assert graph.notes[0].startswith(
        "captured with dynamo: torch.export cannot capture this model: the model's control flow "
        "depends on a tensor's value"
    )
    assert "(at branchy.py:12)" in graph.notes[0]


@pytest.mark.torch
def test_an_explicit_method_does_not_fall_back_and_names_one_that_captures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_model(tmp_path, "branchy.py", BRANCHY)
    code, _, err = run(["trace", "branchy.py", "--fw", "torch", "--method", "fx"], capsys)
    sentence = one_sentence(err)
    assert code == 1
    # export cannot capture it either: the hint skips it and names the first that can.
    assert sentence.startswith("torch.fx.symbolic_trace cannot capture this model")
    assert sentence.endswith("; --method dynamo captures it")
    assert not Path("g.json").exists()


@pytest.mark.torch
def test_a_framework_message_quoting_a_value_is_not_cut_mid_word(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_model(tmp_path, "mixed.py", 'return {"a": self.lin(x), "b": [self.lin(x), 3]}')
    code, _, err = run(["trace", "mixed.py", "--fw", "torch", "--method", "jit-trace"], capsys)
    sentence = one_sentence(err)
    assert code == 1
    # The tensors' numbers are left out, and the reason after them is kept.
    assert "Tracer cannot infer type of {'a': tensor(…), 'b': [tensor(…), 3]}" in sentence
    assert "Found Tensor and int" in sentence
    assert sentence.endswith("; --method export captures it")


def test_cut_ends_at_a_word_with_an_ellipsis() -> None:
    from graphscope.tracers._torch_common import cut, framework_reason

    assert cut("short", 10) == "short"
    text = "the quick brown fox jumps over the lazy dog"
    assert cut(text, 20) == "the quick brown fox…"
    assert len(cut("x" * 50, 20)) == 20
    multi = ValueError("value {'a': tensor([[1.,\n  2.]])}\n:the reason\nmore detail")
    assert framework_reason(multi) == "value {'a': tensor(…)} :the reason"


def test_trace_help_lists_every_frameworks_methods() -> None:
    for fw in ("torch", "tf", "tf1", "onnx"):
        listed = re.search(rf"{fw}: ([^;]*)", TRACE_METHODS_HELP)
        assert listed is not None, fw
        for method in tracers.methods(fw):
            assert re.search(rf"(?<![\w-]){re.escape(method)}(?![\w-])", listed.group(1)), (fw, method)


@pytest.mark.torch
def test_a_step_without_scope_says_at_the_line_not_in_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run(["step", "examples/nan_torch.py", "--fw", "torch", "--entry", "zero_variance"], capsys)
    assert code == 0
    assert "First non-finite value: div (div) at examples/nan_torch.py:57, step 4" in out
    assert " in examples/" not in out


PACKED = """
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        return pad_packed_sequence(out, batch_first=True)[0]


model = M()
example_inputs = (torch.randn(3, 5, 4), torch.tensor([5, 3, 2]))
"""


@pytest.mark.torch
def test_dynamo_capturing_nothing_says_why_and_the_default_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A packed LSTM: pack_padded_sequence is on Dynamo's skip list. It said "captured no graph
    (the model ran entirely in Python)", and the default capture kept that empty graph."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "packed.py").write_text(PACKED)
    code, _, err = run(["trace", "packed.py", "--fw", "torch", "--method", "dynamo"], capsys)
    sentence = one_sentence(err)
    assert code == 1
    assert sentence.startswith("TorchDynamo captured no graph: Attempted to call function marked as skipped")
    assert "`pack_padded_sequence` should not be traced" in sentence and "(at packed.py:13)" in sentence
    assert sentence.endswith("; --method jit-trace captures it")
    code, out, err = run(["trace", "packed.py", "--fw", "torch", "--json"], capsys)
    import json

    doc = json.loads(out)
    assert code == 0 and doc["capture"] == "jit-trace"
    assert doc["notes"][0].startswith("captured with jit-trace: torch.export cannot capture this model")

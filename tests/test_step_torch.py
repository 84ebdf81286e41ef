"""Stepping PyTorch models: summaries, where a NaN is born, walking, saving values, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from graphscope import loader, stepping
from graphscope.cli import main
from graphscope.errors import GraphscopeError
from graphscope.rendering.steps import short_op
from graphscope.stepping import numerics

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["eager", "fx", "export"]


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def step_example(example: str, method: str = "eager") -> stepping.Steps:
    found = loader.load_target(Path("examples") / f"{example}.py", fw="torch")
    return stepping.step_target(found, method=method)


# -- summaries ---------------------------------------------------------------------------------

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=32)
ARRAYS = st.one_of(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5), elements=FLOATS),
    hnp.arrays(
        np.int64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5), elements=st.integers(-1000, 1000)
    ),
    hnp.arrays(np.bool_, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5)),
)


def _close(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is b
    assert isinstance(a, (int, float)) and isinstance(b, (int, float))
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4 * max(1.0, abs(a), abs(b)))


@settings(max_examples=150, deadline=None)
@given(ARRAYS)
def test_torch_and_numpy_summaries_agree(array: np.ndarray) -> None:
    import torch

    ours = numerics.summarize_torch(torch.from_numpy(array.copy()))
    ref = numerics.summarize_numpy(array)
    assert ours["shape"] == ref["shape"] == list(array.shape)
    for key in ("nan", "posinf", "neginf", "zeros"):
        assert ours[key] == ref[key], key
    for key in ("min", "max", "mean", "std"):
        if key in ("mean", "std") and ref["max"] is not None and abs(ref["max"]) > 1e30:
            continue  # float32 sums of huge values overflow differently in torch and numpy
        assert _close(ours[key], ref[key]), (key, ours, ref)


# Values where the summary's shortcuts live: zeros of both signs (counted over the values' bits),
# all-positive or all-negative tensors (no zero count), sizes past numpy's SIMD blocks.
SIGNED_ZEROS = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, float("nan"), float("inf"), -float("inf")]),
    st.floats(allow_nan=True, allow_infinity=True, width=16),  # fits every dtype drawn below
)


@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(
        st.sampled_from([np.float32, np.float64, np.float16]),
        hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=70),
        elements=SIGNED_ZEROS,
    ),
    st.sampled_from(["as is", "positive", "negative", "transposed"]),
)
def test_summaries_of_zeros_of_either_sign_agree_with_numpy(array: np.ndarray, form: str) -> None:
    import torch

    if form == "positive":
        array = np.abs(array) + np.asarray(1, array.dtype)
    elif form == "negative":
        array = -np.abs(array) - np.asarray(1, array.dtype)
    t = torch.from_numpy(array.copy())
    if form == "transposed":
        t, array = t.permute(*reversed(range(t.ndim))), array.transpose()  # not contiguous
    ours = numerics.summarize_torch(t)
    ref = numerics.summarize_numpy(array)
    assert ours["dtype"] == ref["dtype"] and ours["shape"] == list(array.shape)
    for key in ("nan", "posinf", "neginf", "zeros"):
        assert ours[key] == ref[key], (key, ours, ref)
    for key in ("min", "max", "mean", "std"):
        if key in ("mean", "std") and ref["max"] is not None and abs(ref["max"]) > 1e30:
            continue  # float32 sums of huge values overflow differently in torch and numpy
        assert _close(ours[key], ref[key]), (key, ours, ref)


def test_summary_of_mixed_non_finite_values_describes_the_finite_rest() -> None:
    import torch

    s = numerics.summarize_torch(torch.tensor([1.0, float("nan"), float("inf"), -float("inf"), 3.0, 0.0]))
    assert (s["nan"], s["posinf"], s["neginf"], s["zeros"]) == (1, 1, 1, 1)
    assert (s["min"], s["max"], s["mean"]) == (0, 3, pytest.approx(4 / 3))
    assert not numerics.is_finite(s)


@pytest.mark.parametrize(
    ("values", "dtype", "expected"),
    [
        ([], "float32", {"min": None, "mean": None, "nan": 0}),
        ([float("nan")] * 3, "float32", {"min": None, "max": None, "nan": 3}),
        ([True, False, True], "bool", {"min": 0, "max": 1, "zeros": 1}),
        ([70000.0, 1.0], "float16", {"posinf": 1, "max": 1}),  # 70000 overflows float16
        ([-3, 5], "int32", {"min": -3, "max": 5, "mean": 1}),
    ],
)
def test_summary_edge_cases(values: list[object], dtype: str, expected: dict[str, object]) -> None:
    import torch

    s = numerics.summarize_torch(torch.tensor(values, dtype=getattr(torch, dtype)))
    assert s["dtype"] == dtype
    assert {k: s[k] for k in expected} == expected


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "values",
    [
        [3.0, 0.5, 2.0],  # one sign: the bits' integer order is the floats'
        [-3.0, -0.5, -2.0],  # negatives: reversed
        [-3.0, 0.5, -0.0, 2.0],  # mixed signs, a -0.0
        [-0.0, -0.0],
        [-0.0, -2.0, -1e-30],
        [0.0, -0.0, 7.0],
        [1.5, NAN, 2.0],
        [-1.5, -NAN, -2.0],  # a NaN with its sign bit set
        [-1.5, -INF],
        [1.5, INF, 0.0],
        [-1.5, 2.0, -NAN],
        [1e-45, 5e-324],  # the smallest subnormals (5e-324 is 0 in float32)
    ],
)
def test_summary_min_max_and_counts_are_exactly_numpys(values: list[float], dtype: str) -> None:
    """The min and max are read from the values' bits as integers (and numpy's min when signs
    are mixed): they must be the float min and max exactly, a NaN or infinity of either sign
    must still be counted, and a -0.0 still be a zero."""
    import torch

    array = np.array(values, dtype=dtype)
    ours = numerics.summarize_torch(torch.from_numpy(array.copy()))
    ref = numerics.summarize_numpy(array)
    assert {k: ours[k] for k in ("min", "max", "nan", "posinf", "neginf", "zeros")} == {
        k: ref[k] for k in ("min", "max", "nan", "posinf", "neginf", "zeros")
    }


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=40),
        elements=SIGNED_ZEROS,
    ),
    st.sampled_from(["as is", "transposed"]),
)
def test_non_finite_summaries_counted_by_numpy_are_torchs_exactly(array: np.ndarray, form: str) -> None:
    """A CPU tensor with a NaN or an infinity is counted and masked by numpy over its memory;
    the summary must be exactly the one of torch's own comparisons and masked selection."""
    import torch

    t = torch.from_numpy(array.copy())
    if form == "transposed":
        t = t.permute(*reversed(range(t.ndim)))  # not contiguous: reshape(-1) copies
    flat = t.reshape(-1)
    args = (torch, t, flat, list(t.shape), str(array.dtype), t.numel())
    ours = numerics._summarize_nonfinite(*args, flat.numpy())
    torchs = numerics._summarize_nonfinite(*args)
    assert repr(ours) == repr(torchs)
    if not numerics.is_finite(torchs):
        assert repr(numerics.summarize_torch(t)) == repr(torchs)


# -- where the NaN was born --------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_nan_is_found_where_it_was_born(method: str) -> None:
    import torch

    steps = step_example("nan_torch", method)
    bad = steps.first_nonfinite
    assert bad is not None
    assert bad.node == "log" and short_op(bad.op) == "log"
    assert bad.scope == ["features"]
    assert bad.source == {"file": "examples/nan_torch.py", "line": 24}
    assert bad.born_here
    assert all(r.finite for r in steps[: bad.index])
    assert not steps[-1].finite  # ... and it reached the output
    # The count is the real one.
    found = loader.load_target(Path("examples/nan_torch.py"), fw="torch")
    with torch.no_grad():
        h = found.model.features.fc2(torch.relu(found.model.features.fc1(found.example_inputs[0])))
    assert bad.summary is not None and bad.summary["nan"] == int((h < 0).sum()) > 0
    assert bad.inputs is not None and len(bad.inputs) == 1 and numerics.is_finite(bad.inputs[0])


def test_finite_model_says_so_and_its_values_are_the_real_ones() -> None:
    import torch

    steps = step_example("or_gate_torch")
    assert steps.first_nonfinite is None
    found = loader.load_target(Path("examples/or_gate_torch.py"), fw="torch")
    with torch.no_grad():
        out = found.model(*found.example_inputs)
    last = steps[-1].summary
    assert last is not None
    assert last["shape"] == [4, 1]
    assert last["min"] == pytest.approx(float(out.min())) and last["max"] == pytest.approx(float(out.max()))
    assert last["mean"] == pytest.approx(float(out.mean()))


def test_nan_given_as_input_or_held_by_a_weight_is_not_born_in_the_graph() -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    steps = stepping.step(model, (torch.tensor([[1.0, float("nan"), 2.0]]),), fw="torch")
    assert steps.first_nonfinite is not None and steps.first_nonfinite.node == "input"
    assert steps.graph.node("input")["kind"] == "input"

    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    steps = stepping.step(model, (torch.ones(1, 3),), fw="torch")
    bad = steps.first_nonfinite
    assert bad is not None and not bad.born_here
    held = dict(zip(bad.input_nodes, bad.inputs or [], strict=True))
    assert any(n.endswith("weight") or n == "t" for n in held)
    assert any(not numerics.is_finite(s) for s in held.values())
    assert torch.isnan(model[0].weight[0, 0])  # the model is as it was


@pytest.mark.parametrize("method", ["eager", "fx", "export"])
def test_step_json_says_a_nan_held_by_a_weight_was_not_born_and_where_it_came_from(
    method: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``first_nonfinite`` says ``born`` and, when false, the ``origin``: here the weight. fx
    steps an nn.Linear as one call_module node, whose weight is no edge of the graph."""
    model = tmp_path / "nan_weight.py"
    model.write_text(
        "import torch\nfrom torch import nn\n\ntorch.manual_seed(0)\n"
        "model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())\n"
        "with torch.no_grad():\n    model[0].weight[2, 1] = float('nan')\n"
        "example_inputs = (torch.ones(2, 4),)\n"
    )
    assert main(["step", str(model), "--fw", "torch", "--method", method, "--json"]) == 0
    bad = json.loads(capsys.readouterr().out)["first_nonfinite"]
    assert bad["born"] is False
    assert bad["origin"]["kind"] == "param" and bad["origin"]["name"] == "0.weight", bad["origin"]
    assert main(["step", "examples/nan_torch.py", "--fw", "torch", "--method", method, "--json"]) == 0
    bad = json.loads(capsys.readouterr().out)["first_nonfinite"]
    assert (bad["node"], bad["born"]) == ("log", True) and "origin" not in bad


def test_eager_steps_models_static_captures_cannot() -> None:
    import torch
    from torch import nn

    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).eval()
    steps = stepping.step(model, (torch.randn(2, 5, 16),), fw="torch")
    assert steps.first_nonfinite is None
    scopes = {tuple(r.scope[:2]) for r in steps}
    assert ("layers", "0") in scopes and ("layers", "1") in scopes
    # The branch a data-dependent model took is the branch in the graph.
    for inputs, present, absent in (((torch.full((2, 3), 5.0),), "tanh", "relu"),):
        found = loader.load_target(Path("examples/data_dependent_torch.py"), fw="torch")
        taken = stepping.step(found.model, inputs, fw="torch")
        ops = {r.node for r in taken}
        assert present in ops and absent not in ops


# -- walking and stopping ----------------------------------------------------------------------


def test_walking_back_and_forth_and_stopping() -> None:
    steps = step_example("nan_torch")
    assert steps.seek("log").node == "log"
    before = steps.back()
    assert before is not None and before.node == "addmm_1"
    assert steps.forward(2) is not None and steps.current is not None
    assert steps.current.index == steps.record("log").index + 1  # type: ignore[union-attr]
    assert steps.back(1000) is steps[0] and steps.forward(1000) is steps[-1]

    cut = steps.until("nonfinite")
    assert cut[-1].node == "log" and len(cut) == steps.record("log").index + 1  # type: ignore[union-attr]
    assert steps.until("relu")[-1].node == "relu"
    with pytest.raises(GraphscopeError, match="no node 'nope'"):
        steps.until("nope")


def test_stats_attach_to_the_graph_and_survive_saving(tmp_path: Path) -> None:
    from graphscope import ir

    steps = step_example("nan_torch")
    out = steps.graph.node("log")["outputs"][0]
    assert out["stats"]["nan"] == steps.record("log").summary["nan"]  # type: ignore[union-attr,index]
    ir.save(steps.graph, tmp_path / "g.json")
    again = ir.load(tmp_path / "g.json")
    assert again.node("log")["outputs"][0]["stats"] == out["stats"]


# -- saving values -----------------------------------------------------------------------------


def test_save_values_writes_the_culprit_and_its_inputs_without_pickle(tmp_path: Path) -> None:
    import torch

    code = main(["step", "examples/nan_torch.py", "--fw", "torch", "--until", "nonfinite",
                 "--save-values", str(tmp_path / "v"), "--json"])  # fmt: skip
    assert code == 0
    index = json.loads((tmp_path / "v" / "index.json").read_text())
    nodes = [v["node"] for v in index["values"]]
    assert nodes[:2] == ["log", "addmm_1"]  # the culprit first, then its input
    with np.load(tmp_path / "v" / "values.npz", allow_pickle=False) as npz:
        log = npz[index["values"][0]["key"]]
        pre = npz[index["values"][1]["key"]]
    np.testing.assert_array_equal(np.isnan(log), pre < 0)
    np.testing.assert_allclose(log[pre > 0], np.log(pre[pre > 0]), rtol=1e-6)
    assert torch.from_numpy(pre).shape == (4, 16)


def test_save_values_respects_the_cap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["step", "examples/nan_torch.py", "--fw", "torch", "--save-values", str(tmp_path),
                 "--max-values-mb", "0.0003"])  # fmt: skip
    assert code == 0
    index = json.loads((tmp_path / "index.json").read_text())
    assert 0 < len(index["values"]) < 5
    assert sum(np.prod(v["shape"]) * 4 for v in index["values"]) <= 0.0003 * 2**20
    assert "left out by the 0.0003 MB cap" in capsys.readouterr().out


# -- the command -------------------------------------------------------------------------------


def test_step_command_reports_the_culprit(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["step", "examples/nan_torch.py", "--fw", "torch", "--until", "nonfinite"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "First non-finite value: log (log) in features at examples/nan_torch.py:24, step 6" in out
    assert "Born here: every input was finite." in out
    assert "native_layer_norm" not in out  # stopped at the culprit


def test_step_command_json_document(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["step", "examples/or_gate_torch.py", "--fw", "torch", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["first_nonfinite"] is None
    assert len(doc["steps"]) == doc["total_steps"] == 10
    record = doc["steps"][2]
    assert set(record) >= {"node", "op", "scope", "source", "summary"}
    assert set(record["summary"]) == set(numerics.SUMMARY_KEYS)
    assert record["node"] == "addmm" and record["scope"] == ["hidden1"]


def test_step_command_with_no_nan_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["step", "examples/or_gate_torch.py", "--fw", "torch", "--method", "fx"]) == 0
    assert "No NaN or Inf in 7 steps." in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--until", "nope"], "no node 'nope' in 'nan_torch'"),
        (["--method", "jit-trace"], "cannot step with method 'jit-trace'; methods: eager, fx, export"),
    ],
)
def test_step_command_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["step", "examples/nan_torch.py", "--fw", "torch", *args])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert message in err and err.count("\n") == 1


def test_model_that_raises_while_stepping_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_py = tmp_path / "bad.py"
    model_py.write_text(
        "import torch\n"
        "class M(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return x @ torch.ones(5, 5)\n"
        "model = M()\n"
        "example_inputs = (torch.ones(2, 3),)\n"
    )
    code = main(["step", str(model_py), "--fw", "torch"])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and "Traceback" not in err
    assert "the model raised RuntimeError" in err and "bad.py:4" in err


def test_saved_graph_cannot_be_stepped(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["step", "tests/golden/torch/or_gate.fx.json"])
    assert code == 1
    assert "holds no weights to run" in capsys.readouterr().err


def test_stepped_graph_draws_value_ranges_and_nan_counts() -> None:
    from graphscope.rendering import dot

    source = dot.to_dot(step_example("nan_torch").graph).source
    log_line = next(line for line in source.splitlines() if "<B>log</B>" in line)
    assert "27 nan" in log_line and dot.NONFINITE_COLOR in log_line
    relu_line = next(line for line in source.splitlines() if "<B>relu</B>" in line)
    assert "[0, 1.696] mean 0.3155" in relu_line and dot.NONFINITE_COLOR not in relu_line


def test_public_api_steps_a_file_or_a_live_model() -> None:
    import torch

    import graphscope

    steps = graphscope.step("examples/nan_torch.py", fw="torch", method="fx")
    assert steps.first_nonfinite is not None and steps.first_nonfinite.node == "log"
    found = loader.load_target(Path("examples/or_gate_torch.py"), fw="torch")
    live = graphscope.step(found.model, found.example_inputs)  # the framework is guessed
    assert live.graph.capture == "eager" and live.first_nonfinite is None
    assert isinstance(found.example_inputs[0], torch.Tensor)
    assert "all finite" in repr(live)


@pytest.mark.parametrize(
    ("entry", "node", "counts"),
    [("zero_variance", "div", {"nan": 4}), ("exp_overflow", "exp", {"posinf": 2})],
)
def test_other_ways_a_nan_is_born(entry: str, node: str, counts: dict[str, int]) -> None:
    found = loader.load_target(Path("examples/nan_torch.py"), fw="torch", entry=entry)
    bad = stepping.step_target(found).first_nonfinite
    assert bad is not None and bad.node == node and bad.born_here
    assert bad.summary is not None and {k: bad.summary[k] for k in counts} == counts


def test_step_runs_on_the_arrays_of_an_npz_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--inputs replaces example_inputs: here two rows instead of the truth table's four, and a
    NaN that the inputs bring (found at the input, not born in the graph)."""
    given = tmp_path / "rows.npz"
    np.savez(given, x=np.array([[0, 0], [1, 1]], dtype=np.float32))
    args = ["step", "examples/or_gate_torch.py", "--fw", "torch", "--inputs", str(given), "--json"]
    assert main(args) == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    assert steps[0]["node"] == "x" and steps[0]["summary"]["shape"] == [2, 2]
    assert steps[-1]["summary"]["shape"] == [2, 1]
    np.savez(given, np.array([[math.nan, 1.0]], dtype=np.float32))  # positional: arr_0
    assert main([*args[:-1], "--until", "nonfinite", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["first_nonfinite"]["node"] == "x" and doc["first_nonfinite"]["summary"]["nan"] == 1


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: np.savez(p, np.array([{"a": 1}], dtype=object)), "Object arrays cannot be loaded"),
        (lambda p: p.write_bytes(b"PK\x03\x04 not a zip"), "is not an .npz file of arrays (np.savez)"),
        (lambda p: np.savez(p), "holds no arrays"),
        (lambda p: None, "does not exist"),
    ],
    ids=["object array", "garbage", "empty", "missing"],
)
def test_step_inputs_that_are_not_arrays_are_one_sentence(
    write: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    given = tmp_path / "in.npz"
    write(given)
    code = main(["step", "examples/or_gate_torch.py", "--fw", "torch", "--inputs", str(given)])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and "Traceback" not in err
    assert message in err and err.count("\n") == 1


def test_memory_allocated_but_not_written_is_not_a_value() -> None:
    """Dropout in training runs empty_like, then bernoulli_ over it: whatever the fresh memory
    held (NaN, once, on GPT-2) was named the first non-finite value."""
    import torch

    import graphscope

    class Drop(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            scratch = torch.empty_like(x)
            return torch.nn.functional.dropout(x, 0.5, training=True) + scratch.fill_(1.0)

    steps = graphscope.step(Drop(), (torch.ones(64),))
    empties = [r for r in steps if r.op.startswith("aten.empty")]
    assert len(empties) >= 2  # the model's own, and dropout's
    for rec in empties:
        assert rec.summary is not None and rec.summary["uninitialised"] is True
        assert rec.summary["min"] is None and rec.summary["nan"] == 0 and rec.finite
    assert steps.first_nonfinite is None


def test_an_in_place_op_is_judged_on_its_input_as_it_came_in() -> None:
    """log_ writes over its input: read afterwards, the input was already -inf, and the infinity
    was wrongly said to have come in rather than to be born at the log_."""
    import torch

    import graphscope

    class InPlace(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            y = x * 0.0
            y.log_()
            return y.sum()

    steps = graphscope.step(InPlace(), (torch.ones(4),))
    bad = steps.first_nonfinite
    assert bad is not None and bad.op == "aten.log_.default"
    assert bad.born is True
    assert bad.inputs is not None and bad.inputs[0] is not None and bad.inputs[0]["neginf"] == 0

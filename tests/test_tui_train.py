"""The TUI's step mode over a training step (`tui --train`): forward, loss, backward and the
update in the framework's order, the phase on screen, `f` / `--until nonfinite` at the gradient
of sqrt, `g` from a gradient or an update to its forward node and back; `tui --watch`'s history
as sparklines (issue 18)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from graphscope import loader, stepping
from graphscope.cli import main
from graphscope.rendering.steps import format_number
from graphscope.tui.app import GraphscopeApp
from graphscope.tui.widgets.node_table import NodeTable
from graphscope.tui.widgets.panes import Details
from graphscope.tui.widgets.training import HistoryPane, PhaseStrip, phase_strip, sparkline

ROOT = Path(__file__).resolve().parents[1]
SIZE = (160, 45)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the examples' source lines are read relative to it


def plain(widget: object) -> str:
    import io

    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(widget.shown)  # type: ignore[attr-defined]
    return console.export_text().rstrip("\n")


def train(example: str) -> stepping.Steps:
    return stepping.step_train_target(loader.load_target(Path(f"examples/{example}"), fw="torch"))


# -- without Textual: the strip and the sparklines ------------------------------------------------


def test_sparkline_is_log_scaled_takes_the_largest_per_cell_and_crosses_non_finite() -> None:
    line, log = sparkline([1, 10, 100, "inf"], 10)
    assert log and line.plain == "▁▅█✗"
    line, log = sparkline([-1.0, 0.0, 1.0], 3)  # a value at or below 0: linear
    assert not log and line.plain == "▁▅█"
    line, _ = sparkline([1, 1000, 1, 1, 10, 10, 10, 10], 4)  # a spike is kept, not averaged away
    assert line.plain == "█▁▃▃"
    assert sparkline(["nan", None], 2)[0].plain == "✗ "


@pytest.mark.torch
def test_the_strip_shows_the_phases_in_order_and_hides_what_has_not_run() -> None:
    steps = train("sqrt_grad_torch.py")
    # forward: x add sqrt sum; backward: grad_seed sum_grad sqrt_grad add_grad offset_grad
    assert phase_strip(steps, 0, 80).plain == "forward ▶─── backward ─────"
    assert phase_strip(steps, 6, 80).plain == "forward ━━━━ backward ━━▶──"
    assert phase_strip(steps, 8, 80).plain == "forward ━━━━ backward ━━✗✗▶"
    assert len(phase_strip(steps, 8, 20).plain) <= 20


# -- the app ---------------------------------------------------------------------------------------


@pytest.mark.torch
@pytest.mark.anyio
async def test_train_step_mode_walks_forward_backward_and_update_in_the_frameworks_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "diverge.py"  # an optimizer: the update is stepped too
    path.write_text((ROOT / "examples" / "diverge_torch.py").read_text())
    found = loader.load_target(path, fw="torch")
    steps = stepping.step_train_target(found)
    app = GraphscopeApp(steps.graph, steps=steps)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(NodeTable)
        seen, phases = [], []
        for _ in range(len(steps)):
            assert table.current is not None
            seen.append(table.current.id)
            phases.append(re.search(r"· (\w+): ", app.sub_title).group(1))  # type: ignore[union-attr]
            await pilot.press("n")
        assert seen == [r.node for r in steps]  # autograd's order, as the records came
        assert phases == [steps.graph.node(n)["phase"] for n in seen]
        assert phases[0] == "forward" and phases[-1] == "optimizer" and "backward" in phases
        assert phases == sorted(phases, key=["forward", "backward", "optimizer"].index)
        assert plain(app.query_one(PhaseStrip)).startswith("forward ━━━━ backward ━━━━━━ optimizer")
        # the last record is an update: its details show the update-to-weight ratio, and that
        # ratio is SGD's own: lr * |grad| / |weight|
        assert table.current is not None and table.current.id == "bias_update"
        await pilot.press("p")
        assert table.current.id == "weight_update"
        text = app.query_one(Details).plain_text(width=100)
        model = copy.deepcopy(found.model)
        found.loss_fn(model(*found.example_inputs), *found.example_targets).backward()
        lr = found.optimizer.param_groups[0]["lr"]  # plain SGD: the update is lr * grad
        ratio = lr * float(model.weight.grad.norm()) / float(model.weight.detach().norm())
        shown = re.search(r"update/weight (\S+)", text)
        assert shown is not None and float(shown.group(1)) == pytest.approx(ratio, rel=1e-3)
        assert shown.group(1) == format_number(steps.graph.node("weight_update")["attrs"]["update_to_weight"])
        assert "update of weight   (g jumps there)" in text
        # g: from the update to its parameter, and back to the update (not to its gradient)
        await pilot.press("g")
        assert table.current.id == "weight"
        await pilot.press("g")
        assert table.current.id == "weight_update"


@pytest.mark.torch
@pytest.mark.anyio
async def test_f_lands_on_the_gradient_of_sqrt_with_its_forward_line_and_g_goes_there_and_back() -> None:
    steps = train("sqrt_grad_torch.py")
    app = GraphscopeApp(steps.graph, steps=steps)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(NodeTable)
        assert table.current is not None and table.current.id == "x"  # step 0
        await pilot.press("f")
        assert table.current.id == "sqrt_grad"
        assert app.sub_title.endswith("step 6/8 · backward: sqrt_grad (non-finite!)")
        text = app.query_one(Details).plain_text(width=120)
        assert "grad of  sqrt (aten.sqrt.default) at examples/sqrt_grad_torch.py:21" in text
        assert "1 +inf" in text
        assert re.search(r"▶\s+21\s+return torch.sqrt\(self.offset \+ x\).sum\(\)", text)
        await pilot.press("g")
        assert table.current.id == "sqrt"
        assert app.step_pos == 6  # jumping looks at a node; the step stays where it was
        await pilot.press("g")
        assert table.current.id == "sqrt_grad"
        await pilot.press("home", "f")  # from anywhere, the same record
        assert table.current.id == "sqrt_grad"
        # an AccumulateGrad shows its parameter's name and, with no line of its own, none
        await pilot.press("n", "n")
        assert table.current.id == "offset_grad"
        assert "grad of  offset (get_attr)" in app.query_one(Details).plain_text(width=120)


@pytest.mark.torch
@pytest.mark.anyio
async def test_watch_history_is_drawn_above_the_replayed_step() -> None:
    doc = json.loads((ROOT / "tests" / "data" / "diverge_torch.history.json").read_text())
    steps = train("sqrt_grad_torch.py")  # (any training step: the pane reads only the history)
    steps.position = steps.first_nonfinite.index  # type: ignore[union-attr]
    app = GraphscopeApp(
        steps.graph, steps=steps, history=doc["history"], first_nonfinite_step=doc["first_nonfinite_step"]
    )
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = plain(app.query_one(HistoryPane)).splitlines()
        assert text[0] == "watch: 13 steps · first non-finite at step 13, replayed below"
        assert re.fullmatch(r"loss      ▁[▁-█]{11}✗  3\.152 → inf \(log\)", text[1])
        assert re.fullmatch(r"grad norm ▁[▁-█]{11}█  9\.262 → 1\.166e\+20 \(log\)", text[2])
        assert app.step_pos == 6  # opened where --until put it


@pytest.mark.anyio
async def test_no_history_pane_or_strip_outside_training() -> None:
    from graphscope import ir

    app = GraphscopeApp(ir.load(ROOT / "tests" / "golden" / "torch" / "or_gate.eager.json"))
    async with app.run_test(size=SIZE):
        assert not app.query_one(HistoryPane).display and not app.query_one(PhaseStrip).display
        assert not app.check_action("first_nonfinite", ())


# -- the command line ------------------------------------------------------------------------------


def test_tui_train_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    graph = "tests/golden/torch/or_gate.eager.json"
    assert main(["tui", graph, graph, "--train"]) == 2
    assert "--train, --watch and --until step one model file" in capsys.readouterr().err
    assert main(["tui", graph, "--until", "nonfinite"]) == 1
    assert capsys.readouterr().err == (
        f"graphscope: error: --until needs a model file to step, and {graph} is a graph without values\n"
    )
    assert main(["tui", graph, "--train"]) == 1
    assert "is a saved graph, which holds no weights to train" in capsys.readouterr().err


@pytest.mark.torch
def test_tui_until_a_node_that_is_not_there_is_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["tui", "examples/sqrt_grad_torch.py", "--fw", "torch", "--train", "--until", "nope"]
    assert main(args) == 1
    assert capsys.readouterr().err == (
        "graphscope: error: no node 'nope' in 'sqrt_grad_torch'; `graphscope trace` lists the node ids\n"
    )
    assert main(["tui", "examples/sqrt_grad_torch.py", "--fw", "torch", "--watch", "3"]) == 1
    assert "defines no optimizer" in capsys.readouterr().err


def test_the_strip_of_a_big_run_reads_no_record_per_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # 50,000 records: each key press redraws the strip from the phase runs and the non-finite
    # counts read once per run, never from the records (0.2 s a key when it read them)
    from graphscope import ir
    from graphscope.stepping.records import Record, Steps
    from graphscope.tui.widgets.training import bad_counts, phase_runs, phases_of

    graph = ir.Graph("big")
    records = []
    for i in range(50_000):
        phase = "forward" if i < 20_000 else "backward" if i < 45_000 else "optimizer"
        graph.add_node(f"n{i}", op="x", kind="op", phase=phase)
        bad = int(i == 30_000)
        records.append(Record(i, f"n{i}", "x", [], None, [{"nan": bad, "posinf": 0, "neginf": 0}]))
    steps = Steps(graph, records)
    runs, bad = phase_runs(phases_of(steps)), bad_counts(steps)

    def untouched(self: Record) -> bool:
        raise AssertionError("the strip read a record")

    monkeypatch.setattr(Record, "finite", property(untouched))
    line = phase_strip(steps, 49_000, 100, runs=runs, bad=bad)
    assert line.plain.count("✗") == 1 and line.plain.index("✗") < line.plain.index("optimizer")
    assert line.plain.endswith("▶─") and len(line.plain) <= 100


@pytest.mark.torch
@pytest.mark.anyio
async def test_on_a_small_screen_the_history_leaves_the_current_step_in_sight() -> None:
    doc = json.loads((ROOT / "tests" / "data" / "diverge_torch.history.json").read_text())
    steps = train("diverge_torch.py")
    steps.position = 3  # mse_loss: the 8th row, below the table's first rows
    app = GraphscopeApp(steps.graph, steps=steps, history=doc["history"], first_nonfinite_step=13)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.pause()
        table = app.query_one(NodeTable)
        assert table.current is not None and table.current.id == "mse_loss"
        top, height = int(table.scroll_offset.y), table.scrollable_content_region.height
        assert top <= table.cursor < top + height


def test_a_history_without_nan_says_which_step_is_shown() -> None:
    import io

    from rich.console import Console

    from graphscope.tui.widgets.training import history_lines

    history = [{"step": i, "loss": 1.0 / i, "grad_norm": 2.0} for i in range(1, 6)]
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(history_lines(history, None, 80))
    lines = console.export_text().splitlines()
    assert lines[0] == "watch: 5 steps, no NaN or Inf · below: a step on the example inputs"
    assert lines[1] == "loss      █▅▃▂▁  1 → 0.2 (log)"  # log10: 0, -0.30, -0.48, -0.60, -0.70
    assert lines[2] == "grad norm ▅▅▅▅▅  2 → 2 (log)"


@pytest.mark.torch
@pytest.mark.anyio
async def test_f_skips_a_nan_dropped_on_the_way_and_the_title_says_so() -> None:
    """where(x > 0, sqrt(x), 0): the forward pass alone drops sqrt's NaN; f finds nothing, and
    the step shows it as dropped. In training, f lands on that sqrt (its gradient reads it)."""
    steps = stepping.step_target(loader.load_target(ROOT / "examples/where_grad_torch.py", fw="torch"))
    app = GraphscopeApp(steps.graph, steps=steps)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f")
        assert app.step_pos == 0  # nothing to land on
        await pilot.press("n")
        assert app.sub_title.endswith("step 1/6: sqrt (dropped on the way)"), app.sub_title
    steps = train("where_grad_torch.py")
    app = GraphscopeApp(steps.graph, steps=steps)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f")
        assert app.sub_title.endswith("· forward: sqrt (non-finite!)"), app.sub_title

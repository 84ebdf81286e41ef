"""The TUI, driven by Textual's pilot: moving, following edges, search, scopes, subgraphs,
step mode, export, help; plus the fuzzy search and neighbourhood on their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from graphscope import ir
from graphscope.tui import model
from graphscope.tui.app import GraphscopeApp
from graphscope.tui.widgets.node_table import NodeTable

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "torch"
SIZE = (160, 45)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the async tests run on anyio's pytest plugin, with asyncio under it


def transformer() -> ir.Graph:
    return ir.load(GOLDEN / "transformer_block.export.json")


def test_fuzzy_search_ranks_substrings_first_and_filters() -> None:
    level = model.Level(transformer())
    hits = [r.id for r in level.search("linear")]
    assert hits[:4] == ["linear", "linear_1", "linear_2", "linear_3"]
    assert [r.id for r in level.search("kind:input")] == ["x"]
    assert {r.kind for r in level.search("op:layer_norm")} == {"op"}
    assert all(r.scope.startswith("mlp") for r in level.search("scope:mlp"))
    assert level.search("zzzz") == []
    assert model.fuzzy_score("lnr", "linear") is not None  # letters in order, close together
    assert model.fuzzy_score("lr", "l" + "x" * 40 + "r") is None  # ... not scattered


def test_neighbourhood_rings() -> None:
    level = model.Level(transformer())
    ring = model.neighbourhood(level, "linear")
    assert ring["up"][0] == ["layer_norm", "p_attn_qkv_weight", "p_attn_qkv_bias"]
    assert "chunk" in ring["down"][0]


@pytest.mark.anyio
async def test_move_follow_an_edge_and_back() -> None:
    app = GraphscopeApp(transformer())
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(NodeTable)
        assert table.current is not None and table.current.id == "layer_norm"  # the first op
        await pilot.press("end")
        assert table.current.id == "output"
        await pilot.press("slash", *"layer_norm", "enter")  # search, then back to the table
        assert table.current.id == "layer_norm"
        await pilot.press("escape")  # clear the search: every node again, cursor kept
        assert len(table.rows) == 36 and table.current.id == "layer_norm"
        await pilot.press("right")  # first edge: the first input
        await pilot.press("enter")
        assert table.current.id == "x"
        await pilot.press("left", "enter")  # x's last edge: its last user
        assert table.current.id == "add"


def weighty() -> ir.Graph:
    """300 weights listed before the first op, as an export of a ResNet lists 320."""
    g = ir.Graph("weighty")
    for i in range(300):
        g.add_node(f"p{i}", op="placeholder", kind="param", outputs=[{"shape": [8], "dtype": "float32"}])
    g.add_node("x", op="placeholder", kind="input", outputs=[{"shape": [8], "dtype": "float32"}])
    g.add_node("k", op="Const", kind="const")
    g.add_node("mul", op="mul", outputs=[{"shape": [8], "dtype": "float32"}])
    g.add_node("add", op="add", outputs=[{"shape": [8], "dtype": "float32"}])
    for i in range(30):
        g.add_node(f"relu{i}", op="relu", outputs=[{"shape": [8], "dtype": "float32"}])
        g.add_edge(f"relu{i - 1}" if i else "add", f"relu{i}")
    g.add_node("output", op="output", kind="output")
    g.add_edge("x", "mul")
    g.add_edge("p0", "mul", dst_port=1)
    g.add_edge("mul", "add")
    g.add_edge("k", "add", dst_port=1)
    g.add_edge("relu29", "output")
    return g


@pytest.mark.anyio
async def test_weights_first_graph_opens_on_its_first_op_and_w_hides_them() -> None:
    from textual.widgets import Static

    app = GraphscopeApp(weighty())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        table = app.query_one(NodeTable)
        assert table.current is not None and table.current.id == "mul"
        top = int(table.scroll_offset.y)
        assert top <= table.cursor < top + 5  # in sight, near the top, the input just above it
        shown = {b.binding.action for b in app.active_bindings.values() if b.enabled and b.binding.show}
        assert "toggle_weights" in shown  # in the footer
        await pilot.press("w")
        assert [r.id for r in table.rows][:3] == ["x", "mul", "add"] and len(table.rows) == 34
        assert table.current.id == "mul"
        assert "301 weights hidden (w)" in str(app.query_one("#where", Static).render())
        await pilot.press("w")
        assert len(table.rows) == 335 and table.current.id == "mul"
        await pilot.press("home", "w")  # the cursor on a weight that goes: on to the next row kept
        assert table.current.id == "x"
        await pilot.press("down", "right", "right", "enter")  # mul's second input: p0, hidden
        assert table.current.id == "p0" and app.weights_shown and len(table.rows) == 335


@pytest.mark.anyio
async def test_w_is_offered_only_where_there_are_weights() -> None:
    app = GraphscopeApp(ir.load(ROOT / "tests" / "golden" / "tf" / "control_flow_tf.tf-function.json"))
    async with app.run_test(size=SIZE) as pilot:
        assert app.check_action("toggle_weights", ()) is True  # 5 constants at the top level
        assert app.query_one(NodeTable).go_to("cond")
        await pilot.press("greater_than_sign", "2")  # the else branch: no constants
        assert app.level.path == "cond.else_branch"
        assert app.check_action("toggle_weights", ()) is False


@pytest.mark.anyio
async def test_scope_tree_filters_the_table() -> None:
    app = GraphscopeApp(transformer())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("t")  # the scope tree
        await pilot.press("down", "down", "enter")  # root -> attn -> mlp: select mlp
        table = app.query_one(NodeTable)
        assert table.rows and all(r.scope.startswith("mlp") for r in table.rows)
        assert len(table.rows) == 7


@pytest.mark.anyio
async def test_subgraphs_are_entered_and_left_like_directories() -> None:
    app = GraphscopeApp(ir.load(GOLDEN / "data_dependent.jit-script.json"))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(NodeTable)
        assert table.go_to("if")
        await pilot.press("greater_than_sign", "enter")  # then / else: the first, then
        assert app.level.path == "if.then" and {r.id for r in table.rows} >= {"relu", "mul"}
        await pilot.press("less_than_sign")
        assert app.level.path == "" and table.current is not None and table.current.id == "if"
        assert table.go_to("linear")
        await pilot.press("greater_than_sign")  # no subgraph: a warning, nothing moves
        assert app.level.path == ""


@pytest.mark.anyio
async def test_a_node_with_several_bodies_asks_which_to_enter() -> None:
    from graphscope.tui.dialogs.body_chooser import BodyChooser

    app = GraphscopeApp(ir.load(ROOT / "tests" / "golden" / "tf" / "control_flow_tf.tf-function.json"))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(NodeTable)
        assert table.go_to("cond")
        await pilot.press("greater_than_sign")
        assert isinstance(app.screen, BodyChooser)
        assert app.screen.bodies == ["cond.then_branch", "cond.else_branch"]
        await pilot.press("down", "enter")  # the second: the else branch
        assert app.level.path == "cond.else_branch"
        await pilot.press("less_than_sign")
        assert app.level.path == "" and table.current is not None and table.current.id == "cond"
        assert table.go_to("while")
        await pilot.press("greater_than_sign", "2")  # a body's number enters it at once
        assert app.level.path == "while.body" and not isinstance(app.screen, BodyChooser)
        await pilot.press("less_than_sign")
        assert table.go_to("while")
        await pilot.press("greater_than_sign", "escape")  # no body: nothing moves
        assert app.level.path == "" and table.current.id == "while"


@pytest.mark.anyio
async def test_entering_or_leaving_a_subgraph_clears_the_search() -> None:
    from textual.widgets import Input, Static

    app = GraphscopeApp(ir.load(GOLDEN / "data_dependent.jit-script.json"))
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(NodeTable)
        search = app.query_one("#search", Input)
        await pilot.press("slash", "i", "f", "enter")
        assert table.current is not None and table.current.id == "if" and search.value == "if"
        await pilot.press("greater_than_sign", "1")  # the then branch
        await pilot.pause()
        assert app.level.path == "if.then" and app.search_text == ""
        assert search.value == "" and not search.display  # no stale text over unfiltered rows
        assert "search" not in str(app.query_one("#where", Static).render())
        await pilot.press("slash", "r", "e", "l", "u", "enter", "less_than_sign")
        await pilot.pause()
        assert app.level.path == "" and search.value == "" and not search.display
        assert len(table.rows) == len(app.level.rows) and table.current.id == "if"


@pytest.mark.anyio
async def test_step_mode_walks_the_run_and_stops_at_the_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from graphscope import loader, stepping

    monkeypatch.chdir(ROOT)
    steps = stepping.step_target(loader.load_target(Path("examples/nan_torch.py"), fw="torch"))
    app = GraphscopeApp(steps.graph, steps=steps)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(NodeTable)
        assert table.current is not None and table.current.id == "x"  # step 0
        await pilot.press("n", "n")
        assert table.current.id == "addmm" and app.step_pos == 2
        await pilot.press("p")
        assert table.current.id == "t"
        await pilot.press("c")  # on to the first non-finite value
        assert table.current.id == "log" and "non-finite" in app.sub_title
        assert table.shown_until == steps.record("log").index  # type: ignore[union-attr]
        line = table.render_line(table.cursor - int(table.scroll_offset.y)).text
        assert "27 nan" in line
        # a breakpoint on the softmax, then continue: stops there (a NaN node anyway) ...
        table.go_to("_softmax")
        await pilot.press("b")
        assert "_softmax" in app.breakpoints
        # a breakpoint is a ● in the first column, not only a dark red background
        at = table.rows.index(next(r for r in table.rows if r.id == "_softmax"))
        assert table.render_line(at - int(table.scroll_offset.y)).text.startswith("● _softmax")
        at = table.rows.index(next(r for r in table.rows if r.id == "log"))
        assert table.render_line(at - int(table.scroll_offset.y)).text.startswith("▶ log")  # the step
        table.go_to("log")
        await pilot.press("c")
        assert table.current.id == "native_layer_norm"  # the next non-finite step
        later = table.rows[table.rows.index(next(r for r in table.rows if r.id == "output"))]
        assert later.id == "output"


@pytest.mark.anyio
async def test_help_and_export(tmp_path: Path) -> None:
    app = GraphscopeApp(transformer(), svg_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.press("t", "down", "enter")  # scope attn
        await pilot.press("s")
        await pilot.pause()
    written = list(tmp_path.glob("graphscope-*.svg"))
    assert [p.name for p in written] == ["graphscope-attn.svg"]
    assert written[0].read_text().startswith("<?xml")


def test_help_is_one_table_that_fits_80_columns() -> None:
    from rich.console import Console

    from graphscope.tui.screens.help import KEYS, keys_table

    console = Console(width=76, record=True, file=__import__("io").StringIO())
    console.print(keys_table())
    lines = console.export_text().splitlines()
    rows = sum(len(keys) + 1 for _, keys in KEYS)  # a heading per section
    assert len(lines) == 2 + rows + len(KEYS) - 1  # header, rule, rows, a gap between sections
    assert max(len(line.rstrip()) for line in lines) <= 76
    text = "\n".join(lines)
    for key in ("w", ">", "ctrl+p", "b"):
        assert f"\n{key} " in text


@pytest.mark.anyio
async def test_help_fits_a_small_terminal_and_scrolls() -> None:
    from textual.containers import VerticalScroll

    app = GraphscopeApp(transformer())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        box = app.screen.query_one(VerticalScroll)
        assert box.region.width <= 80 and box.region.height <= 24
        assert box.virtual_size.height > box.region.height - 2  # the rest is a scroll away
        await pilot.press("escape")
        assert app.screen.__class__.__name__ != "HelpScreen"


@pytest.mark.anyio
async def test_command_palette_offers_graphscopes_commands(tmp_path: Path) -> None:
    from textual.command import CommandPalette

    from graphscope.tui.commands import GraphscopeCommands

    app = GraphscopeApp(ir.load(GOLDEN / "data_dependent.jit-script.json"), svg_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(NodeTable)
        assert table.go_to("if")
        provider = GraphscopeCommands(app.screen)
        names = [hit.text async for hit in provider.discover()]
        assert names[:2] == ["enter subgraph if.then", "enter subgraph if.else"]
        assert {"hide weights and constants", "write SVG of the current graph", "keys"} <= set(names)
        hits = [hit async for hit in provider.search("linear")]
        assert "go to linear" in [h.text for h in hits]
        # end to end: ctrl+p, words, Enter
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"else")
        await pilot.pause(0.5)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.level.path == "if.else"
        await pilot.press("ctrl+p", *"go to tanh")
        await pilot.pause(0.5)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert table.current is not None and table.current.id == "tanh"
        await pilot.press("ctrl+p", *"write svg")
        await pilot.pause(0.5)
        await pilot.press("down", "enter")
        await pilot.pause()
    assert [p.name for p in tmp_path.glob("*.svg")] == ["graphscope-if.else.svg"]


@pytest.mark.anyio
async def test_mouse_click_moves_the_cursor() -> None:
    app = GraphscopeApp(transformer())
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(NodeTable)
        await pilot.click(NodeTable, offset=(2, 3))
        assert table.cursor == 3


def test_tui_on_a_saved_graph_imports_no_framework() -> None:
    code = (
        "import sys, asyncio\n"
        "from graphscope import ir\n"
        "from graphscope.tui.app import GraphscopeApp\n"
        f"g = ir.load({str(GOLDEN / 'or_gate.export.json')!r})\n"
        "async def main():\n"
        "    async with GraphscopeApp(g).run_test() as pilot:\n"
        "        await pilot.press('down')\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_tui_command_needs_a_terminal_and_says_so() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "graphscope", "tui", str(GOLDEN / "or_gate.export.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "needs a terminal" in out.stderr


@pytest.mark.anyio
async def test_diff_mode_colours_jumps_and_swaps_sides(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from graphscope import diffing as diff
    from graphscope import loader, tracers

    monkeypatch.chdir(ROOT)
    a, b = (
        tracers.capture_target(
            loader.load_target(Path(f"examples/edit_v{i}_torch.py"), fw="torch"), method="export"
        )
        for i in (1, 2)
    )
    result = diff.diff(a, b)
    app = GraphscopeApp(b, diff=result)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(NodeTable)
        assert app.diff_status["layer_norm"] == "added" and app.diff_status["gelu"] == "changed"
        seen = []
        for _ in range(len(app.diff_status)):
            await pilot.press("right_square_bracket")
            assert table.current is not None
            seen.append(table.current.id)
        assert set(seen) == set(app.diff_status)  # ] visits every change once, in table order
        assert table.glyphs["layer_norm"] == "+" and table.glyphs["gelu"] == "~"  # not colour alone
        table.go_to("gelu")
        await pilot.press("d")  # the other side, on the counterpart
        assert app.side == "a" and table.current is not None and table.current.id == "relu_2"
        assert app.diff_status["relu_2"] == "changed"
        from graphscope.tui.widgets.panes import Details

        text = app.query_one(Details).plain_text()
        assert "counterpart in B: gelu" in text and "canonical_op: relu → gelu" in text
        await pilot.press("left_square_bracket")
        assert table.current.id in app.diff_status


@pytest.mark.anyio
async def test_browse_mode_shows_only_what_works() -> None:
    # A capture has no values (no values column: the shape moves left) and no steps or diff:
    # their keys are neither in the footer nor acted on.
    app = GraphscopeApp(transformer())
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(NodeTable)
        assert [name for name, _ in table.fitted] == ["", "id", "op", "shape", "dtype", "kind"]
        assert "[16]" in table.render_line(0).text
        shown = {b.binding.action for b in app.active_bindings.values() if b.enabled and b.binding.show}
        assert {"quit", "search"} <= shown
        # no bodies in this graph: `>` would enter nothing (svg is in the help and the palette)
        assert not shown & {"step(1)", "continue", "breakpoint", "change(1)", "swap_side", "enter_subgraph"}
        await pilot.press("b", "n")
        assert app.breakpoints == set() and table.current is not None
        assert table.current.id == "layer_norm"


@pytest.mark.anyio
@pytest.mark.parametrize("size", [(80, 24), (140, 40), (200, 60)])
async def test_every_pane_shows_and_nothing_is_cut_silently(size: tuple[int, int]) -> None:
    from textual.widgets import Static

    from graphscope.tui.widgets.panes import Details, Neighbourhood
    from graphscope.tui.widgets.scope_tree import ScopeTree

    app = GraphscopeApp(transformer())
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        table = app.query_one(NodeTable)
        details, neighbourhood = app.query_one(Details), app.query_one(Neighbourhood)
        for pane in (table, details, neighbourhood):  # on screen, with room to read
            assert pane.display and pane.region.height >= 3 and pane.region.width >= 40, pane
        assert "layer_norm · aten.layer_norm.default" in details.plain_text()
        names = [name for name, _ in table.fitted]
        assert names[:4] == ["", "id", "op", "shape"]
        widths = dict(table.fitted)
        assert widths["id"] >= 20 and widths["shape"] >= 9
        if "kind" in widths:
            assert widths["kind"] >= 5  # "param", never "p"
        header = str(app.query_one("#columns", Static).render())
        assert header.split() == [n for n in names if n]
        # every line of the table ends in a whole cell or an ellipsis, inside the table
        for y in range(min(len(table.rows), table.scrollable_content_region.height)):
            line = table.render_line(y).text.rstrip()
            assert len(line) <= table.scrollable_content_region.width
            assert (
                "scaled_dot_product_at" not in line or "…" in line or "scaled_dot_product_attention " in line
            )
        tree = app.query_one(ScopeTree)
        if size[0] >= 110:
            assert tree.display and tree.region.width >= len("▼ transformer_block (36)")
            assert neighbourhood.compact is (size[1] < 32)
        else:
            assert not tree.display and neighbourhood.compact


@pytest.mark.anyio
async def test_t_shows_the_scope_tree_in_the_tables_place_on_a_narrow_screen() -> None:
    from graphscope.tui.widgets.scope_tree import ScopeTree

    app = GraphscopeApp(transformer())
    async with app.run_test(size=(80, 24)) as pilot:
        tree, table = app.query_one(ScopeTree), app.query_one(NodeTable)
        assert not tree.display
        await pilot.press("t")
        await pilot.pause()
        assert tree.display and tree.has_focus
        assert tree.region.width == 80 and not app.query_one("#middle").display
        await pilot.press("down", "down", "enter")  # mlp: the table again, filtered
        await pilot.pause()
        assert not tree.display and table.has_focus and app.query_one("#middle").display
        assert len(table.rows) == 7 and app.scope == "mlp"
        await pilot.press("t", "escape")  # Esc closes the tree too
        await pilot.pause()
        assert not tree.display and table.has_focus


@pytest.mark.anyio
async def test_a_resize_under_a_dialog_lays_the_graph_screen_out() -> None:
    app = GraphscopeApp(transformer())
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)  # (Textual applies a resize after a short timer)
        assert app.screen_stack[0].query_one("#body").has_class("-narrow")


@pytest.mark.anyio
async def test_scope_tree_adds_children_when_expanded() -> None:
    from graphscope.tui.widgets.scope_tree import ScopeTree

    app = GraphscopeApp(transformer())
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ScopeTree)
        attn = next(n for n in tree.root.children if n.data == "attn")
        assert attn.allow_expand and not attn.children  # nothing built until asked for
        attn.expand()
        await pilot.pause()
        assert [str(n.label) for n in attn.children] == ["proj (3)", "qkv (3)"]


@pytest.mark.anyio
async def test_markup_in_names_is_shown_as_text() -> None:
    # A downloaded file's names are text: "[b]" is not bold, "[link=...]" not a hyperlink.
    from graphscope.tui.widgets.scope_tree import ScopeTree

    g = ir.Graph("[red]name[/red]")
    g.add_node("x", op="placeholder", kind="input", scope=["[b]bold[/b]", "[link=https://e]l[/link]"])
    g.add_node("y", op="relu", scope=["[b]bold[/b]"])
    g.add_edge("x", "y")
    app = GraphscopeApp(g)
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ScopeTree)
        assert tree.root.label.plain == "[red]name[/red] (2)"
        (scope,) = tree.root.children
        assert scope.label.plain == "[b]bold[/b] (2)" and not scope.label.spans
        scope.expand()
        await pilot.pause()
        assert [c.label.plain for c in scope.children] == ["[link=https://e]l[/link] (1)"]


@pytest.mark.anyio
async def test_names_with_newlines_stay_on_their_line() -> None:
    # A name with a newline would break a neighbour's box, the details' lines and the scope
    # tree: every one-line place shows it as ↵.
    from rich.console import Console

    from graphscope.tui.widgets.panes import details, draw_neighbourhood
    from graphscope.tui.widgets.scope_tree import ScopeTree

    g = ir.Graph("two\nlines")
    g.add_node("in\nput", op="placeholder", kind="input", scope=["sco\npe"])
    g.add_node("re\nlu", op="relu", scope=["sco\npe"], attrs={"note": "a\nb"})
    g.add_edge("in\nput", "re\nlu")
    console = Console(width=54, record=True)
    console.print(draw_neighbourhood(model.Level(g), "re\nlu", None))
    drawn = console.export_text().splitlines()
    box = [line.strip() for line in drawn if "in↵put" in line]
    assert box and box[0].startswith("│") and box[0].endswith("│"), drawn
    assert any("▶ re↵lu" in line for line in drawn), drawn
    console = Console(width=80, record=True)
    console.print(details(model.Level(g), g.node("re\nlu")))
    shown = console.export_text().splitlines()
    assert shown[0] == "re↵lu · relu → relu · op" and "  note = a↵b" in shown, shown
    app = GraphscopeApp(g)
    async with app.run_test(size=SIZE):
        tree = app.query_one(ScopeTree)
        assert tree.root.label.plain == "two↵lines (2)"
        assert [c.label.plain for c in tree.root.children] == ["sco↵pe (2)"]


def stacked(depth: int = 6) -> ir.Graph:
    """``layers.0`` ... ``layers.{depth-1}``, each the same three ops: one run of identical blocks."""
    g = ir.Graph("stack", framework="torch", capture="export")
    act = [{"shape": [2, 16], "dtype": "float32"}]
    g.add_node("x", op="placeholder", kind="input", outputs=act)
    prev = "x"
    for i in range(depth):
        for op in ("linear", "relu", "layer_norm"):
            g.add_node(f"{op}_{i}", op=f"aten.{op}.default", scope=["layers", str(i), op], outputs=act)
            g.add_edge(prev, f"{op}_{i}")
            prev = f"{op}_{i}"
    g.add_node("output", op="output", kind="output", outputs=act)
    g.add_edge(prev, "output")
    g.inputs, g.outputs = ["x"], ["output"]
    return g


@pytest.mark.anyio
async def test_the_scope_tree_folds_a_run_of_identical_blocks() -> None:
    from graphscope.tui.widgets.scope_tree import ScopeTree

    app = GraphscopeApp(stacked(7))
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(ScopeTree)
        layers = next(n for n in tree.root.children if n.data == "layers")
        assert str(layers.label) == "layers (21) ×7"
        layers.expand()
        await pilot.pause()
        assert [str(n.label) for n in layers.children] == ["0 (3)", "1 … 6 (18): ×6 more like 0"]
        rest = layers.children[1]
        assert rest.data == "layers" and not rest.allow_expand
        tree.select_node(rest)  # choosing the folded blocks shows every block's rows
        await pilot.pause()
        table = app.query_one(NodeTable)
        assert len(table.rows) == 21


@pytest.mark.anyio
async def test_markup_in_subgraph_scope_and_node_names_neither_crashes_nor_acts() -> None:
    # "[/oops]" closes a tag never opened (a MarkupError, and the app then ended with exit 0);
    # "[@click=app.quit]" makes the text a link that runs an action when clicked.
    from textual.widgets import Static

    g = ir.Graph("[/oops][@click=app.quit]g")
    g.add_node("[/oops]", op="If", kind="control", scope=["[@click=quit]s"], subgraphs=["[/oops].then"])
    g.add_node("[@click=app.quit]y", op="relu", scope=["[@click=quit]s"])
    g.add_edge("[/oops]", "[@click=app.quit]y")
    body = ir.Graph("[/oops].then")
    body.add_node("[/inner]", op="relu")
    g.subgraphs["[/oops].then"] = body
    app = GraphscopeApp(g)
    async with app.run_test(size=SIZE) as pilot:
        table = app.query_one(NodeTable)
        assert table.go_to("[/oops]")
        await pilot.press("greater_than_sign")  # into the subgraph: its name is the path shown
        assert app.level.path == "[/oops].then"
        where = app.query_one("#where", Static)
        assert "[/oops].then" in str(where.render())
        await pilot.press("less_than_sign", "t", "down", "enter")  # filter by the scope
        await pilot.press("slash", *"[/x]", "enter")  # a search for markup
        await pilot.pause()
        shown = str(where.render())
        assert "[@click=quit]s" in shown and "[/x]" in shown, shown
        assert app.return_code is None and app.is_running


@pytest.mark.anyio
async def test_a_scope_or_graph_name_too_long_for_the_tree_ends_in_an_ellipsis() -> None:
    g = ir.Graph("a_really_long_graph_name_that_goes_on_and_on_and_on_forever")
    g.add_node(
        "x", op="placeholder", kind="input", scope=["some_scope_with_a_very_long_name_too_long_to_fit"]
    )
    g.add_node("y", op="relu", scope=["some_scope_with_a_very_long_name_too_long_to_fit"])
    g.add_edge("x", "y")
    app = GraphscopeApp(g)
    async with app.run_test(size=(140, 30)) as pilot:
        await pilot.pause()
        tree = app.query_one("#scopes")
        root, scope = (tree.render_line(i).text.rstrip() for i in range(2))
        assert root.startswith("▼ a_really_long_graph_name") and root.endswith("…")
        assert scope.startswith("└── some_scope_with") and scope.endswith("…")

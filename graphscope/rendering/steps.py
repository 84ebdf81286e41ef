"""The terminal report of `graphscope step`: a compact table of steps and a verdict on NaN/Inf."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphscope.rendering.text import format_shape
from graphscope.stepping import dropped as _dropped

if TYPE_CHECKING:
    from rich.console import RenderableType

    from graphscope.stepping.records import Record, Steps

__all__ = ["format_number", "masked_text", "nonfinite_text", "short_op", "steps_renderable", "verdict"]


def format_number(value: Any) -> str:
    """Four significant digits; ``-`` when there is no value.

    >>> format_number(0.000123456), format_number(12345678), format_number(None), format_number(3)
    ('0.0001235', '1.235e+07', '-', '3')
    """
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**7 else f"{value:.4g}"
    return f"{value:.4g}"


def short_op(op: str) -> str:
    """``aten.addmm.default`` -> ``addmm``; ``call_function:log`` -> ``log``; ``prim::If`` -> ``If``;
    TF ops unchanged."""
    if op.startswith("aten."):
        parts = op.split(".")
        return parts[1] if len(parts) > 1 else op
    if "::" in op:
        return op.split("::", 1)[1]  # aten::linear, prim::If
    return op.split(":", 1)[1] if ":" in op else op


def nonfinite_text(summary: dict[str, Any] | None) -> str:
    """``"27 nan, 2 +inf"`` from a summary (or an output's ``stats``); ``""`` when all finite."""
    if not summary:
        return ""
    parts = []
    for key, label in (("nan", "nan"), ("posinf", "+inf"), ("neginf", "-inf")):
        if summary.get(key):
            parts.append(f"{summary[key]} {label}")
    return ", ".join(parts)


_SHORT_DTYPES = {
    "float32": "f32",
    "float64": "f64",
    "float16": "f16",
    "bfloat16": "bf16",
    "int64": "i64",
    "int32": "i32",
    "int16": "i16",
    "int8": "i8",
    "uint8": "u8",
}


def steps_renderable(steps: Steps, *, max_rows: int | None = None, width: int = 120) -> RenderableType:
    """The table of steps; the first non-finite row is bold red, later non-finite rows red.

    ``width`` is the terminal's. Every column is sized from what it holds, so that no row wraps:
    narrow terminals leave out std (< 110 columns) and mean (< 90); node ids get the room they
    need before ops do (an id is what ``--until`` takes): the op column is cut to what is left,
    or left out when that is too narrow to read, and an id too long for any room is cut in its
    middle.
    """
    from rich import box
    from rich.table import Table

    bad = steps.first_nonfinite
    records = list(steps)
    caption = None
    if max_rows is not None and len(records) > max_rows:
        # Keep the end (where the stop or the culprit is) and say what was left out.
        caption = f"{len(records) - max_rows} earlier steps not shown (--rows 0 shows all)"
        records = records[-max_rows:]
    stats = ["min", "max", "mean", "std"][: 2 + (width >= 90) + (width >= 110)]
    rows = []
    for rec in records:
        s = rec.summary or {}
        dtype = s.get("dtype") or ""
        value = f"{_SHORT_DTYPES.get(dtype, dtype)}{format_shape(s.get('shape'))}" if s else ""
        cells = {"#": str(rec.index), "node": rec.node, "op": short_op(rec.op), "value": value}
        cells["nan/inf"] = nonfinite_text(s)
        cells.update({k: format_number(s.get(k)) for k in stats})
        if s.get("uninitialised"):
            cells[stats[0]] = "unset"  # allocated, not yet written (empty_like): no values to show
        # A mask's deliberate -inf keeps its count in the nan/inf column, not the red.
        style = "bold red" if bad is not None and rec is bad else ("red" if steps.counts(rec) else None)
        rows.append((cells, style))

    columns = ["#", "node", "op", "value", "nan/inf", *stats]
    need = {c: max([len(c)] + [len(cells[c]) for cells, _ in rows]) for c in columns}
    fixed = [c for c in columns if c not in ("node", "op")]
    # Between two columns: a space of padding each side and the (blank) divider; one blank
    # edge each side of the table.
    room = width - sum(need[c] for c in fixed) - 3 * (len(columns) - 1) - 2
    widths = dict(need)
    if need["node"] + need["op"] > room:
        if room - need["node"] >= _MIN_OP:  # the whole ids, and what is left for the ops
            widths["op"] = room - need["node"]
        else:  # the ids first: an op is mostly in its node's id (addmm_1, encoder/MatMul)
            columns.remove("op")
            widths["node"] = max(min(need["node"], room + 3), 10)

    table = Table(
        box=box.SIMPLE_HEAD, pad_edge=False, title=f"{steps.graph.name}: {len(steps)} steps", caption=caption
    )
    for column in columns:
        numeric = column in ("#", "min", "max", "mean", "std")
        table.add_column(
            column,
            justify="right" if numeric else "left",
            no_wrap=True,
            overflow="ellipsis",
            width=widths[column],
        )
    for cells, style in rows:
        cells["node"] = _middle_cut(cells["node"], widths["node"])
        table.add_row(*(cells[c] for c in columns), style=style)
    return table


_MIN_OP = 8  # an op column narrower than this shows too little to be worth its room


def _middle_cut(text: str, width: int) -> str:
    """``native_layer_norm_12`` in 12 columns: ``native…rm_12``, both ends kept."""
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: (keep + 1) // 2] + "…" + text[len(text) - keep // 2 :]


def verdict(steps: Steps, total: int | None = None) -> RenderableType:
    """One paragraph: where the first NaN/Inf was born, with its inputs, or that there was none."""
    from rich.text import Text

    bad = steps.first_nonfinite
    masked = steps.masked()
    dropped = steps.dropped()
    if bad is None:
        ran = total if total is not None else len(steps)
        if dropped is not None:
            out = Text(f"No NaN or Inf reached an output in {ran} steps.\n", style="green")
            out.append(dropped_text(dropped))
        elif masked is None:
            return Text(f"No NaN or Inf in {ran} steps.", style="green")
        else:
            out = Text(f"No NaN or Inf in {ran} steps apart from a mask's {masked['sign']}.\n", style="green")
        if masked is not None:
            out.append(masked_text(masked))
        return out
    out = Text()
    where = _where(bad)
    out.append("First non-finite value: ", style="bold")
    out.append(f"{bad.node}", style="bold red")
    out.append(f" ({short_op(bad.op)}){where}, step {bad.index}: {nonfinite_text(bad.summary)}")
    if bad.summary and bad.summary.get("shape") is not None:
        out.append(f" of {_count(bad.summary['shape'])} values")
    out.append(".\n")
    phase = steps.phase_of(bad)
    if phase["phase"] != "forward":
        out.append(f"Phase: {phase['phase']}.", style="bold")
        grad = phase.get("grad_of")
        if grad is not None:
            src = grad["source"]
            at = f" at {src['file']}:{src.get('line')}" if src else ""
            out.append(f" It is the gradient of {short_op(grad['op'])} ({grad['node']}){at}.", style="bold")
        out.append("\n")
    origin = steps.origin(bad)
    if origin is not None and origin.get("mask"):
        src = origin["source"]
        at = f" at {src['file']}:{src.get('line')}" if src else ""
        through = f", through {', '.join(origin['chain'][1:])}" if len(origin["chain"]) > 1 else ""
        mask = f"the -inf of a mask ({origin['name']}{at}{through})"
        if any(s and s.get("nan") for s in bad.outputs):
            out.append(f"Made here from {mask}: the mask's -inf became NaN.\n", style="bold")
        else:
            out.append(f"Not born here: {mask} reaches the output here.\n", style="bold")
    elif bad.kind == "input":
        out.append("It is one of the model's inputs: the value was given, not made.\n", style="bold")
    elif bad.given:
        what = "weight" if bad.kind == "param" else "constant"
        name = origin["name"] if origin and origin["name"] else bad.node
        out.append(f"It is the {what} {name}: the value was stored in the model, not made.\n", style="bold")
    elif bad.inputs is None:
        out.append("Its inputs were not recorded.\n")
    elif bad.born_here:
        out.append("Born here: every input was finite.\n", style="bold")
        trap = _dropped.through_backward(bad, steps.records, steps.graph)
        if trap is not None:
            grad = trap["gradient"]
            out.append(
                f"The forward pass made it finite again ({', '.join(trap['made_finite_by'])}), but the "
                f"backward node {grad} reads it: it reaches the gradients.\n",
                style="bold",
            )
    elif origin is not None:
        what = {"input": "the input", "param": "the weight", "const": "the constant"}.get(
            origin["kind"] or "", ""
        )
        out.append(
            f"Not born here: it came in through {what or 'the value'} {origin['name']}, which already held it.\n",
            style="bold",
        )
    else:
        out.append("Not born here: it came in through an input that already held it.\n", style="bold")
    for node, summary in zip(bad.input_nodes, bad.inputs or [], strict=False):
        out.append(f"  input {node}: {_describe(summary)}\n")
    if masked is not None:
        out.append(masked_text(masked))
    if dropped is not None:
        out.append(dropped_text(dropped))
    return out


def dropped_text(dropped: dict[str, Any]) -> str:
    """One sentence on what :meth:`Steps.dropped` skipped, ending in a newline."""
    first = dropped["first"]
    src = first["source"]
    at = f" at {src['file']}:{src.get('line')}" if src else ""
    made = f", made finite by {', '.join(dropped['absorbed_by'])}" if dropped["absorbed_by"] else ""
    nodes = "node" if dropped["nodes"] == 1 else "nodes"
    return (
        f"{nonfinite_text(dropped)} in {dropped['nodes']} {nodes} dropped on the way "
        f"(first: {first['node']}{at}{made}); not counted.\n"
    )


def masked_text(masked: dict[str, Any]) -> str:
    """One sentence on what :meth:`Steps.masked` skipped, ending in a newline."""
    first = masked["first"]
    src = first["source"]
    at = f" at {src['file']}:{src.get('line')}" if src else ""
    values = "value" if masked["values"] == 1 else "values"
    nodes = "node" if masked["nodes"] == 1 else "nodes"
    return (
        f"{masked['values']} {values} in {masked['nodes']} {nodes} hold the {masked['sign']} of a mask "
        f"(first: {first['node']}{at}); not counted.\n"
    )


def _where(rec: Record) -> str:
    """`` in features at model.py:24``: the scope (when there is one), then the source line."""
    where = f" in {'.'.join(rec.scope)}" if rec.scope else ""
    if rec.source:
        where += f" at {rec.source['file']}:{rec.source.get('line')}"
    return where


def _count(shape: list[Any]) -> int:
    n = 1
    for d in shape:
        n *= d if isinstance(d, int) else 1
    return n


def _describe(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "not a tensor"
    text = (
        f"{summary['dtype']}{format_shape(summary['shape'])} min {format_number(summary['min'])} "
        f"max {format_number(summary['max'])} mean {format_number(summary['mean'])}"
    )
    bad = nonfinite_text(summary)
    return f"{text}, {bad}" if bad else text

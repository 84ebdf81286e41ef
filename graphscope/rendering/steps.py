"""The terminal report of `graphscope step`: a compact table of steps and a verdict on NaN/Inf."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphscope.rendering.text import format_shape

if TYPE_CHECKING:
    from rich.console import RenderableType

    from graphscope.stepping.records import Record, Steps

__all__ = ["format_number", "nonfinite_text", "short_op", "steps_renderable", "verdict"]


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

    ``width`` is the terminal's: narrow terminals leave out std (< 110 columns) and mean (< 90).
    """
    from rich import box
    from rich.table import Table

    bad = steps.first_nonfinite
    wide = width >= 100
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=f"{steps.graph.name}: {len(steps)} steps")
    stats = ["min", "max", "mean", "std"][: 2 + (width >= 90) + (width >= 110)]
    columns = ["#", "node", "op", "value", "nan/inf", *stats]
    digits = len(str(max(len(steps) - 1, 0)))
    for column in columns:
        numeric = column in ("#", "min", "max", "mean", "std")
        table.add_column(
            column,
            justify="right" if numeric else "left",
            no_wrap=column != "node",
            overflow="fold" if column == "node" else "ellipsis",
            min_width={"#": digits, "node": 10}.get(column),
            max_width={"node": 28, "op": 28 if wide else 12}.get(column),
        )
    records = list(steps)
    if max_rows is not None and len(records) > max_rows:
        # Keep the end (where the stop or the culprit is) and say what was left out.
        table.caption = f"{len(records) - max_rows} earlier steps not shown (--rows 0 shows all)"
        records = records[-max_rows:]
    for rec in records:
        s = rec.summary or {}
        style = None
        if bad is not None and rec is bad:
            style = "bold red"
        elif not rec.finite:
            style = "red"
        dtype = s.get("dtype") or ""
        value = f"{_SHORT_DTYPES.get(dtype, dtype)}{format_shape(s.get('shape'))}" if s else ""
        cells = [str(rec.index), rec.node, short_op(rec.op), value, nonfinite_text(s)]
        cells += [format_number(s.get(k)) for k in stats]
        table.add_row(*cells, style=style)
    return table


def verdict(steps: Steps, total: int | None = None) -> RenderableType:
    """One paragraph: where the first NaN/Inf was born, with its inputs, or that there was none."""
    from rich.text import Text

    bad = steps.first_nonfinite
    if bad is None:
        ran = total if total is not None else len(steps)
        return Text(f"No NaN or Inf in {ran} steps.", style="green")
    out = Text()
    where = _where(bad)
    out.append("First non-finite value: ", style="bold")
    out.append(f"{bad.node}", style="bold red")
    out.append(f" ({short_op(bad.op)}){where}, step {bad.index}: {nonfinite_text(bad.summary)}")
    if bad.summary and bad.summary.get("shape") is not None:
        out.append(f" of {_count(bad.summary['shape'])} values")
    out.append(".\n")
    origin = steps.origin(bad)
    if bad.kind == "input":
        out.append("It is one of the model's inputs: the value was given, not made.\n", style="bold")
    elif bad.given:
        what = "weight" if bad.kind == "param" else "constant"
        name = origin["name"] if origin and origin["name"] else bad.node
        out.append(f"It is the {what} {name}: the value was stored in the model, not made.\n", style="bold")
    elif bad.inputs is None:
        out.append("Its inputs were not recorded.\n")
    elif bad.born_here:
        out.append("Born here: every input was finite.\n", style="bold")
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
    return out


def _where(rec: Record) -> str:
    parts = []
    if rec.scope:
        parts.append(".".join(rec.scope))
    if rec.source:
        parts.append(f"{rec.source['file']}:{rec.source.get('line')}")
    return f" in {' at '.join(parts)}" if parts else ""


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

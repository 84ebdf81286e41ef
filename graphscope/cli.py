"""The `graphscope` command.

Exit codes: 0 success; 1 the input or the model is wrong (one sentence on stderr); 2 bad usage.
Heavy imports (networkx, rich, torch, tensorflow) happen inside the commands, so `--help` is
instant and never touches a framework.
"""

from __future__ import annotations

import math
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from graphscope import progress
from graphscope.errors import GraphscopeError
from graphscope.loader import DEFAULT_TIMEOUT

FRAMEWORKS = ("torch", "tf", "tf1", "onnx")
# graphscope.tracers.REGISTRY, spelled out so that --help imports nothing (a test compares them)
TRACE_METHODS_HELP = (
    "Capture method. torch: export, fx, jit-trace, jit-script, dynamo, eager (without --method, "
    "export, and when it cannot capture the model dynamo, jit-trace, then eager); "
    "tf: tf-function (default), onnx; tf1: tf1; onnx: onnx."
)
# graphscope.ops.LAYOUT_OPS, spelled out so that --help imports nothing
LAYOUT_OPS_HELP = ("reshape", "transpose", "identity", "cast", "expand", "contiguous")

_debug = False
_quiet = False


def _fail(message: str) -> NoReturn:
    raise GraphscopeError(message)


def _note(message: str) -> None:
    """An informational line on stderr ("wrote out.svg"), left out under --quiet; errors never are."""
    if not _quiet:
        click.echo(message, err=True)


# -- long phases, each under a progress spinner (stderr, a terminal only, after a second) -----------


# Each phase that runs a model file's code does it inside loader.running_user_code: --timeout,
# sys.exit/os._exit as a sentence, the model's print() kept off stdout.


def _load(path: Path, *, timeout: float | None, **kwargs: Any) -> Any:
    """loader.load_target: for a model.py this imports it, and with it torch or TensorFlow."""
    from graphscope import loader

    with progress.task(f"loading {path}"), loader.running_user_code(path, timeout=timeout):
        return loader.load_target(path, **kwargs)


def _load_graph(path: Path, command: str) -> Any:
    """ir.load for a saved graph, then the loaded objects kept out of garbage collection.

    The command lives as long as the graph does, and the collector's full passes over a
    million-node graph's objects cost seconds each while rendering or diffing it."""
    import gc

    from graphscope import ir, loader

    kind = loader.detect(path)
    if kind != "ir-json":
        _fail(_not_a_captured_graph(path, kind, command))
    with progress.task(f"loading {path}"):
        graph = ir.load(path)
    gc.freeze()
    return graph


_KIND_NAMES = {
    "python": "a model file",
    "torchscript": "a TorchScript archive",
    "onnx": "an ONNX file",
    "graphdef": "a GraphDef",
    "graphdef-text": "a GraphDef",
    "savedmodel": "a SavedModel",
}


def _not_a_captured_graph(path: Path, kind: str, command: str) -> str:
    """The way from a model (or graph) file to what ``command`` reads: trace's .json."""
    fw = " --fw torch|tf|tf1" if kind == "python" else ""
    doing = {
        "render": f"`graphscope trace {path}{fw} --svg {path.stem}.svg` draws it in one step",
        "info": f"`graphscope trace {path}{fw}` prints the same summary",
    }.get(command, f"`graphscope trace {path}{fw} -o {path.stem}.json` writes one")
    return (
        f"{path} is {_KIND_NAMES.get(kind, 'not a saved graph')}, and {command} reads a graph that "
        f"trace captured (a graphscope .json): {doing}"
    )


def _capture(found: Any, method: str | None, *, timeout: float | None, **kwargs: Any) -> Any:
    """tracers.capture_target (a saved graph is returned as it is, without a spinner)."""
    from graphscope import loader, tracers

    if found.graph is not None:
        return tracers.capture_target(found, method=method, **kwargs)
    defaults = tracers.BACKWARD_DEFAULT_METHOD if kwargs.get("backward") else tracers.DEFAULT_METHOD
    chosen = method or found.method or defaults.get(found.fw or "", "")
    with (
        progress.task(f"capturing {found.path.name} with {chosen or '?'}"),
        loader.running_user_code(found.path, timeout=timeout),
    ):
        return tracers.capture_target(found, method=method, **kwargs)


def _step(found: Any, method: str | None, *, timeout: float | None, **kwargs: Any) -> Any:
    """stepping.step_target: runs the model once, node by node."""
    from graphscope import loader, stepping

    with progress.task(f"stepping {found.path.name}"), loader.running_user_code(found.path, timeout=timeout):
        return stepping.step_target(found, method=method, **kwargs)


def _step_train(found: Any, method: str | None, *, timeout: float | None) -> Any:
    """stepping.step_train_target: one training step, forward, loss and backward."""
    from graphscope import loader, stepping

    with (
        progress.task(f"stepping a training step of {found.path.name}"),
        loader.running_user_code(found.path, timeout=timeout),
    ):
        return stepping.step_train_target(found, method=method)


class _Number(click.FloatRange):
    """A finite number in a range (click's FloatRange lets ``nan`` and ``inf`` through, and
    an infinite or huge timeout overflowed the alarm timer: internal errors); ``zero_ok``
    allows 0 below ``min`` ("no limit")."""

    def __init__(self, *, min: float, max: float, zero_ok: bool = False) -> None:
        super().__init__(min=min, max=max)
        self.zero_ok = zero_ok

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.zero_ok and number == 0:
            return 0.0
        return super().convert(number, param, ctx)

    def _describe_range(self) -> str:
        return ("0 or " if self.zero_ok else "") + super()._describe_range()


# A day: far above any model's capture, and far below what the alarm timer can hold.
_MAX_SECONDS = 86400.0


def _timeout_option(fn: Any) -> Any:
    """``--timeout`` for the commands that run a model file's code."""
    return click.option(
        "--timeout",
        type=_Number(min=0.1, max=_MAX_SECONDS, zero_ok=True),
        default=DEFAULT_TIMEOUT,
        show_default=True,
        metavar="SECONDS",
        help="Stop a model file's code (import, capture, run) after this long, each phase; 0: no limit.",
    )(fn)


class _PathArg(click.Path):
    """A path argument; an empty one is a usage error (``Path("")`` would be the current
    folder: ``-o ""`` tried to replace it)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value:
            self.fail("an empty path", param, ctx)
        return super().convert(value, param, ctx)


def _refuse_writing_over(inputs: Sequence[Path | None], outputs: dict[str, Path | None]) -> None:
    """Refuse, before anything runs, an output that is one of the command's inputs (the same
    file by any name, or a file of an input folder such as a SavedModel) or another output:
    it would replace what was read (``trace model.py -o model.py``)."""
    given = [(option, out) for option, out in outputs.items() if out is not None and str(out) != "-"]
    for i, (option, out) in enumerate(given):
        for source in inputs:
            if source is not None and _same_or_inside(out, source):
                _fail(f"{out} is an input of this command: {option} would write over it")
        for other_option, other in given[:i]:
            if _same_or_inside(out, other):
                _fail(f"{out} is given to both {other_option} and {option}")


def _same_or_inside(out: Path, source: Path) -> bool:
    try:
        if os.path.samefile(out, source):
            return True
    except (OSError, ValueError):  # one of them does not exist yet
        pass
    real_out, real_source = os.path.realpath(out), os.path.realpath(source)
    return real_out == real_source or (  # a file of a SavedModel, not a new file beside them
        os.path.isdir(real_source)
        and os.path.lexists(out)
        and real_out.startswith(real_source.rstrip(os.sep) + os.sep)
    )


# -- shell completion: cheap lookups only (no framework, no model imported) ----------------------


def _complete_method(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """--method values for the framework given so far (--fw, --fw-a/-b), else every framework's."""
    from click.shell_completion import CompletionItem

    from graphscope import stepping, tracers

    side = (param.name or "")[-2:] if (param.name or "").startswith("method_") else ""
    fw = (ctx.params.get(f"fw{side}") if side else None) or ctx.params.get("fw")
    stepper = ctx.info_name == "step" or bool(ctx.params.get("values"))
    registry = stepping.REGISTRY if stepper else tracers.REGISTRY
    frameworks: dict[str, list[str]] = {}
    for f, m in registry:
        if fw in (None, f) and m.startswith(incomplete):
            frameworks.setdefault(m, []).append(f)
    return [CompletionItem(m, help=", ".join(fs)) for m, fs in frameworks.items()]


# A node id offered as a completion is typed into the user's command line as it is (bash's
# script even expands it: COMPREPLY+=($value)), and each shell's protocol is one item a line:
# ids with anything a shell reads specially ($, `, quotes, ;, |, *, spaces, newlines, escapes),
# or starting with "-" (an option), are left out rather than quoted (each shell quotes
# differently, and zsh quotes again what it inserts).
_SHELL_SAFE = re.compile(r"[\w.:/@%+=,-]+")


def _complete_node_id(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Node ids of the GRAPH.json given before (render --highlight): those a shell reads as
    plain words only."""
    # With an option's value still incomplete, click leaves the positional arguments unparsed.
    graph_file = ctx.params.get("graph_file") or next(iter(ctx.args), None)
    if not graph_file:
        return []
    try:
        from graphscope import ir

        return [
            n
            for n in map(str, ir.load(graph_file).nx.nodes)
            if n.startswith(incomplete) and _SHELL_SAFE.fullmatch(n) and not n.startswith("-")
        ]
    except Exception:  # completion must never print a traceback into the user's shell
        return []


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="graphscope", prog_name="graphscope")
@click.option("--debug", is_flag=True, help="Show the full traceback when something fails.")
@click.option(
    "-q", "--quiet", is_flag=True, help="No progress and no informational lines on stderr (errors still)."
)
def cli(debug: bool, quiet: bool) -> None:
    """See the computational graph TensorFlow, PyTorch or ONNX built from your model.

    \b
    graphscope trace model.py --fw torch -o graph.json
    graphscope info graph.json
    graphscope render graph.json -o model.svg
    graphscope step model.py --fw torch --until nonfinite
    graphscope diff v1.json v2.json
    graphscope tui graph.json
    graphscope export graph.json --to onnx -o graph.onnx
    """
    global _debug, _quiet
    _debug, _quiet = debug, quiet
    progress.set_quiet(quiet)


# -- trace -------------------------------------------------------------------------------------


@cli.command()
@click.argument("target", type=_PathArg(path_type=Path))
@click.option("--fw", type=click.Choice(FRAMEWORKS), help="Framework of a model.py target.")
@click.option(
    "--method",
    shell_complete=_complete_method,
    help=TRACE_METHODS_HELP,
)
@click.option(
    "--entry",
    help="Function in model.py returning (model, example_inputs); with --backward it may also "
    "return example_targets and loss_fn.",
)
@click.option("-o", "--output", type=_PathArg(path_type=Path), help="Write the IR as JSON here.")
@click.option("--svg", type=_PathArg(path_type=Path), help="Also render the graph to this SVG.")
@click.option("--check-dynamic", is_flag=True, help="Trace with a second input and report what changed.")
@click.option(
    "--backward",
    is_flag=True,
    help=(
        "Capture a training step: forward, loss and the backward graph (torch: eager, or "
        "--method export for the joint ATen graph; "
        "tf: tf-function; tf1: a graph that holds its gradients)."
    ),
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON document.")
@_timeout_option
def trace(
    target: Path,
    fw: str | None,
    method: str | None,
    entry: str | None,
    output: Path | None,
    svg: Path | None,
    check_dynamic: bool,
    backward: bool,
    as_json: bool,
    timeout: float,
) -> None:
    """Capture TARGET's graph (a model.py, or a graph file) into the graphscope IR."""

    _refuse_writing_over([target], {"-o": output, "--svg": svg})
    found = _load(target, fw=fw, entry=entry, timeout=timeout)
    if check_dynamic and found.kind != "python":
        # A graph file (saved IR, GraphDef, SavedModel, ONNX, TorchScript) is one fixed graph:
        # capturing it again would only compare it with itself.
        _fail(f"{target} is a saved graph: --check-dynamic needs a model to capture twice")
    if check_dynamic and backward:
        raise click.UsageError("--check-dynamic and --backward cannot be used together (yet)")
    if backward:
        graph = _capture(found, method, timeout=timeout, backward=True)
    else:
        graph = _capture(found, method, timeout=timeout)
    report = None
    if check_dynamic:
        from graphscope import dynamic

        alt, alt_source = found.example_inputs_alt, "example_inputs_alt"
        if alt is None:
            alt, alt_source = dynamic.alternative_inputs(found.example_inputs or ()), "a batch one larger"
        second = _capture(found, graph.capture, example_inputs=alt, timeout=timeout)
        report = dynamic.compare(graph, second, method=graph.capture or "?", alt_source=alt_source)
        if graph.capture == "tf-function":
            from graphscope import loader
            from graphscope.tracers import tf_function

            with loader.running_user_code(target, timeout=timeout):
                report.retraced = tf_function.retraced(found.model, found.example_inputs or (), alt)
        graph.notes.extend(n for n in second.notes if n not in graph.notes)
        graph.notes.extend(report.notes)
    # The drawing first: when Graphviz fails, -o's file is left as it was.
    if svg:
        import graphscope as api

        with progress.task(f"drawing {svg}"):
            api.render(graph, svg, quiet=_quiet)
    if output:
        from graphscope import ir

        with progress.task(f"writing {output}"):
            ir.save(graph, output)
    _print_graph(graph, as_json=as_json, dynamic_report=report, wrote=[p for p in (output, svg) if p])


def _print_graph(
    graph: Any, *, as_json: bool, dynamic_report: Any = None, wrote: Sequence[Path] = ()
) -> None:
    from graphscope.rendering import text

    if as_json:
        import json

        from graphscope.rendering.terminal import escape_json

        doc = text.info_document(graph)
        if dynamic_report is not None:
            doc["dynamic"] = dynamic_report.as_dict()
        click.echo(escape_json(json.dumps(doc, indent=2, ensure_ascii=False)))
        return
    from graphscope.rendering.terminal import SafeConsole

    console = SafeConsole()  # node names from a downloaded file must not drive the terminal
    text.print_summary(graph, console)
    if dynamic_report is not None:
        console.print()
        console.print(dynamic_report.renderable())
    for path in wrote:
        _note(click.style(f"wrote {path}", dim=True))


# -- info --------------------------------------------------------------------------------------


@cli.command()
@click.argument("graph_file", metavar="GRAPH.json", type=_PathArg(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
def info(graph_file: Path, as_json: bool) -> None:
    """Summarise a saved graph: sizes, ops, inputs and outputs, subgraphs, notes."""
    _print_graph(_load_graph(graph_file, "info"), as_json=as_json)


# -- commands filled in by later work ------------------------------------------------------------


@cli.command()
@click.argument("graph_file", metavar="GRAPH.json", type=_PathArg(path_type=Path))
@click.option("-o", "--output", type=_PathArg(path_type=Path), required=True, help="SVG file to write.")
@click.option(
    "--collapse",
    type=click.IntRange(min=1),
    metavar="DEPTH",
    help="Draw each scope at DEPTH (1 = top-level modules) as a single node.",
)
@click.option(
    "--highlight",
    multiple=True,
    metavar="NODE_ID",
    shell_complete=_complete_node_id,
    help="Colour these nodes (repeatable).",
)
@click.option(
    "--show-params", is_flag=True, help="Draw weights and constants as nodes (default: listed in their op)."
)
@click.option("--no-legend", is_flag=True, help="Leave out the legend.")
@click.option(
    "--no-fold",
    is_flag=True,
    help="Draw every block of a run of identical ones (default: the first, and one box for the rest).",
)
@click.option(
    "--timeout",
    type=_Number(min=0.1, max=_MAX_SECONDS),
    default=60.0,
    show_default=True,
    help="Seconds Graphviz may take to lay the graph out.",
)
def render(
    graph_file: Path,
    output: Path,
    collapse: int | None,
    highlight: tuple[str, ...],
    show_params: bool,
    no_legend: bool,
    no_fold: bool,
    timeout: float,
) -> None:
    """Draw a saved graph as an SVG diagram (Graphviz), collapsing it if it is too big to lay out."""
    import graphscope as api

    _refuse_writing_over([graph_file], {"-o": output})
    graph = _load_graph(graph_file, "render")
    with progress.task(f"drawing {output}"):
        api.render(
            graph,
            output,
            collapse=collapse,
            highlight=list(highlight),
            show_params=show_params,
            legend=not no_legend,
            fold=not no_fold,
            timeout=timeout,
            quiet=_quiet,
        )
    _note(f"wrote {output}")


@cli.command()
@click.argument("target", type=_PathArg(path_type=Path))
@click.option("--fw", type=click.Choice(FRAMEWORKS), help="Framework of a model.py target.")
@click.option(
    "--method",
    shell_complete=_complete_method,
    help="torch: eager (default), fx, export; tf: tf-function; tf1: tf1.",
)
@click.option("--entry", help="Function in model.py returning (model, example_inputs).")
@click.option("--until", metavar="nonfinite|NODE_ID", help="Stop at the first NaN/Inf, or at this node.")
@click.option(
    "--train",
    is_flag=True,
    help="Step one training step: forward, loss (example_targets, loss_fn), backward, update (torch, tf).",
)
@click.option(
    "--inputs",
    "inputs_file",
    type=_PathArg(path_type=Path),
    metavar="FILE.npz",
    help="Run on these arrays (np.savez, one per input, in order) instead of example_inputs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: steps and first_nonfinite.")
@click.option("-o", "--output", type=_PathArg(path_type=Path), help="Write the graph with its values' stats.")
@click.option("--svg", type=_PathArg(path_type=Path), help="Draw the graph, the culprit highlighted.")
@click.option(
    "--save-values",
    type=_PathArg(path_type=Path),
    metavar="DIR",
    help="Write whole tensors (values.npz + index.json): the culprit and its inputs first.",
)
@click.option(
    "--max-values-mb",
    type=_Number(min=0, max=2.0**40),
    default=256,
    show_default=True,
    help="Size cap for --save-values.",
)
@click.option(
    "--rows",
    type=click.IntRange(min=0),
    default=40,
    show_default=True,
    help="Table rows to print, ending at the stop (0: all).",
)
@_timeout_option
def step(
    target: Path,
    fw: str | None,
    method: str | None,
    entry: str | None,
    until: str | None,
    train: bool,
    inputs_file: Path | None,
    as_json: bool,
    output: Path | None,
    svg: Path | None,
    save_values: Path | None,
    max_values_mb: float,
    rows: int,
    timeout: float,
) -> None:
    """Run TARGET node by node, summarising every value, and find where a NaN or Inf was born.

    \b
    graphscope step examples/nan_torch.py --fw torch --until nonfinite
    """

    _refuse_writing_over([target, inputs_file], {"-o": output, "--svg": svg, "--save-values": save_values})
    found = _load(target, fw=fw, entry=entry, timeout=timeout)
    if found.graph is not None:
        _fail(f"{target} is a saved graph, which holds no weights to run: step the model file instead")
    if inputs_file is not None:
        from graphscope.stepping.inputs import from_npz

        found.example_inputs = from_npz(inputs_file, found.fw or "")
    if train:
        if save_values:
            _fail("--save-values does not go with --train yet: step the forward pass to keep values")
        steps = _step_train(found, method, timeout=timeout)
    else:
        steps = _step(found, method, timeout=timeout)
    total = len(steps)
    shown = steps.until(until)
    wrote: list[Path] = []
    if save_values:
        from graphscope.stepping import values

        chosen, left_out = values.select(shown, int(max_values_mb * 2**20))
        again = _step(found, method, keep=chosen, timeout=timeout)
        wrote += values.save(shown, again.values, save_values, order=chosen)
        if left_out:
            shown.notes.append(f"--save-values: {left_out} node(s) left out by the {max_values_mb:g} MB cap")
    if svg:  # the drawing first: when Graphviz fails, -o's file is left as it was
        import graphscope as api

        bad = steps.first_nonfinite
        with progress.task(f"drawing {svg}"):
            wrote.append(
                api.render(
                    steps.graph,
                    svg,
                    highlight=[bad.node] if bad else [],
                    highlight_label="the first non-finite value (the culprit)",
                    quiet=_quiet,
                )
            )
    if output:
        from graphscope import ir

        with progress.task(f"writing {output}"):
            wrote.append(ir.save(steps.graph, output))
    if as_json:
        import json

        from graphscope.rendering.terminal import escape_json

        doc = shown.as_dict()
        doc["total_steps"] = total
        click.echo(escape_json(json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False)))
    else:
        from rich.text import Text

        from graphscope.rendering import steps as report
        from graphscope.rendering.terminal import SafeConsole

        console = SafeConsole()
        console.print(report.steps_renderable(shown, max_rows=rows or None, width=console.width))
        console.print(report.verdict(shown, total=total), soft_wrap=True)
        for note in shown.notes:
            console.print(Text(f"note: {note}", style="dim"))  # a note may quote a node's name: not markup
    for path in wrote:
        _note(f"wrote {path}")


@cli.command()
@click.argument("target", type=_PathArg(path_type=Path))
@click.option("--fw", type=click.Choice(FRAMEWORKS), help="Framework of the model.py (torch, tf).")
@click.option(
    "--entry", help="Function in model.py returning (model, example_inputs, example_targets, loss_fn)."
)
@click.option(
    "--steps",
    "n_steps",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Training steps to run.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: history and first_nonfinite.")
@click.option(
    "--svg",
    type=_PathArg(path_type=Path),
    help="Plot the loss and gradient norm per step (log scale), the first non-finite step marked.",
)
@_timeout_option
def watch(
    target: Path,
    fw: str | None,
    entry: str | None,
    n_steps: int,
    as_json: bool,
    svg: Path | None,
    timeout: float,
) -> None:
    """Train TARGET for up to --steps steps, cheaply, and step in full the first that went NaN/Inf.

    \b
    graphscope watch examples/diverge_torch.py --fw torch --steps 50
    """
    _refuse_writing_over([target], {"--svg": svg})
    found = _load(target, fw=fw, entry=entry, timeout=timeout)
    result = _watch_run(found, target, n_steps, timeout=timeout)
    if svg:
        from graphscope.rendering import history_svg

        history_svg.render(
            result.history,
            svg,
            first_nonfinite_step=result.first_nonfinite_step,
            title=f"watch: {found.name}",
        )
        _note(f"wrote {svg}")
    if as_json:
        import json

        from graphscope.rendering.terminal import escape_json

        click.echo(escape_json(json.dumps(result.as_dict(), indent=1, ensure_ascii=False, allow_nan=False)))
        return
    from rich.text import Text

    from graphscope.rendering import steps as report
    from graphscope.rendering.terminal import SafeConsole

    console = SafeConsole()
    for row in result.history[-10:]:
        console.print(
            Text(
                f"step {row['step']:>4}  loss {_short_number(row['loss'])}  grad norm {_short_number(row['grad_norm'])}"
                + (f"  {row['nonfinite']} non-finite values" if row["nonfinite"] else "")
            )
        )
    if result.first_nonfinite_step is None:
        console.print(Text(f"No NaN or Inf in {len(result.history)} training steps.", style="green"))
        return
    console.print(
        Text(
            f"Step {result.first_nonfinite_step} made the first non-finite value. That step, replayed "
            "from the state before it:",
            style="bold",
        )
    )
    assert result.replay is not None
    console.print(report.verdict(result.replay), soft_wrap=True)
    for note in result.notes:
        console.print(Text(f"note: {note}", style="dim"))


def _short_number(value: Any) -> str:
    from graphscope.rendering.steps import format_number

    return value if isinstance(value, str) else format_number(value)


@cli.command()
@click.argument("a", type=_PathArg(path_type=Path))
@click.argument("b", required=False, type=_PathArg(path_type=Path))
@click.option("--fw", type=click.Choice(FRAMEWORKS), help="Framework of both model files.")
@click.option("--method", shell_complete=_complete_method, help="Capture method for both.")
@click.option("--fw-a", type=click.Choice(FRAMEWORKS), help="Framework of A (overrides --fw).")
@click.option("--fw-b", type=click.Choice(FRAMEWORKS), help="Framework of B (overrides --fw).")
@click.option(
    "--method-a", shell_complete=_complete_method, help="Capture method for A (overrides --method)."
)
@click.option(
    "--method-b", shell_complete=_complete_method, help="Capture method for B (overrides --method)."
)
@click.option(
    "--ignore",
    metavar="OPS",
    help="Comma-separated canonical ops to leave out before matching; 'layout' = "
    + ",".join(sorted(LAYOUT_OPS_HELP))
    + ".",
)
@click.option("--values", is_flag=True, help="Also step both models and find where their values diverge.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--svg", type=_PathArg(path_type=Path), help="Draw both graphs, differences coloured.")
@click.option("--fail-on-change", is_flag=True, help="Exit 1 when the graphs differ structurally (for CI).")
@_timeout_option
def diff(
    a: Path,
    b: Path | None,
    fw: str | None,
    method: str | None,
    fw_a: str | None,
    fw_b: str | None,
    method_a: str | None,
    method_b: str | None,
    ignore: str | None,
    values: bool,
    as_json: bool,
    svg: Path | None,
    fail_on_change: bool,
    timeout: float,
) -> None:
    """Compare two graphs: two versions of a model, two capture methods, TF against PyTorch.

    A and B are saved graphs (.json) or model files. With B left out, A is compared with
    itself captured by another method (--method-a export --method-b eager).

    \b
    graphscope diff examples/edit_v1_torch.py examples/edit_v2_torch.py --fw torch
    graphscope diff golden.json model.py --fw torch --fail-on-change
    """
    from graphscope import diffing

    _refuse_writing_over([a, b], {"--svg": svg})
    if b is None:
        if (method_a or method) == (method_b or method):
            raise click.UsageError("with one target, give two methods: --method-a M1 --method-b M2")
        b = a
    found_a = _load(a, fw=fw_a or fw, timeout=timeout)
    found_b = found_a if b == a else _load(b, fw=fw_b or fw, timeout=timeout)
    ignored = _ignored_ops(ignore)
    if values:
        # The graphs compared are the stepped ones, so that every matched node has its values.
        from graphscope import stepping

        runs = [
            _step(found, m, keep=stepping.KEEP_ALL, timeout=timeout)
            for found, m in ((found_a, method_a or method), (found_b, method_b or method))
        ]
        with progress.task("matching nodes"):
            result = diffing.diff(runs[0].graph, runs[1].graph, ignore=ignored)
        with progress.task("comparing values"):
            result.compare_values(runs[0], runs[1])
    else:
        graph_a = _capture(found_a, method_a or method, timeout=timeout)
        graph_b = _capture(found_b, method_b or method, timeout=timeout)
        with progress.task("matching nodes"):
            result = diffing.diff(graph_a, graph_b, ignore=ignored)
    executed = _executed_overlay(result.a, result.b)
    if svg:
        from graphscope.rendering import diff_svg

        with progress.task(f"drawing {svg}"):
            diff_svg.render(result, svg, executed=executed)
    if as_json:
        import json

        from graphscope.rendering.terminal import escape_json

        doc = result.as_dict()
        doc["executed"] = executed.as_dict() if executed is not None else None
        click.echo(escape_json(json.dumps(doc, indent=1, ensure_ascii=False)))
    else:
        from graphscope.rendering.terminal import SafeConsole

        console = SafeConsole(soft_wrap=True)
        console.print(result.renderable())
        if executed is not None:
            console.print(executed.renderable())
    if svg:
        _note(f"wrote {svg}")
    if fail_on_change and not result.identical:
        raise click.exceptions.Exit(1)


def _executed_overlay(a: Any, b: Any) -> Any:
    """When one side is an eager run and the other a capture with control flow: what ran."""
    from graphscope import overlay

    for static, run in ((a, b), (b, a)):
        if run.capture == "eager" and static.capture != "eager" and overlay.has_control_flow(static):
            return overlay.overlay(static, run)
    return None


def _ignored_ops(spec: str | None) -> frozenset[str]:
    if not spec:
        return frozenset()
    from graphscope.ops import LAYOUT_OPS

    ops: set[str] = set()
    for item in spec.split(","):
        item = item.strip().lower()
        if item == "layout":
            ops |= LAYOUT_OPS
        elif item:
            ops.add(item)
    return frozenset(ops)


@cli.command()
@click.argument("target", type=_PathArg(path_type=Path))
@click.argument("b", required=False, type=_PathArg(path_type=Path))
@click.option("--fw", type=click.Choice(FRAMEWORKS), help="Framework of a model.py target.")
@click.option("--method", shell_complete=_complete_method, help="Capture method for a model file.")
@click.option("--entry", help="Function in model.py returning (model, example_inputs).")
@click.option(
    "--train",
    is_flag=True,
    help="Step mode over one training step: forward, loss, backward and the optimizer's update (torch).",
)
@click.option(
    "--watch",
    "watch_steps",
    type=click.IntRange(min=1),
    metavar="N",
    help="Train up to N steps as `watch` does: the history as sparklines, the first NaN/Inf step replayed.",
)
@click.option(
    "--until", metavar="nonfinite|NODE_ID", help="Step mode: open at the first NaN/Inf, or this node."
)
@_timeout_option
def tui(
    target: Path,
    b: Path | None,
    fw: str | None,
    method: str | None,
    entry: str | None,
    train: bool,
    watch_steps: int | None,
    until: str | None,
    timeout: float,
) -> None:
    """Browse a graph in the terminal: scopes, nodes, edges, values, subgraphs (? for the keys).

    A model file opens in step mode (its values, n/p/c/b); two targets open in diff mode.

    \b
    graphscope tui graph.json
    graphscope tui examples/nan_torch.py --fw torch
    graphscope tui examples/sqrt_grad_torch.py --fw torch --train --until nonfinite
    graphscope tui examples/diverge_torch.py --fw torch --watch 100
    graphscope tui v1.json v2.json
    """
    from graphscope import stepping

    steps = result = history = None
    first_bad_step = None
    if b is not None and (train or watch_steps or until):
        raise click.UsageError("--train, --watch and --until step one model file, not a diff of two")
    if b is not None:  # diff mode: B shown, A a keypress away
        from graphscope import diffing

        graph_a, graph = (
            _capture(_load(p, fw=fw, entry=entry, timeout=timeout), method, timeout=timeout)
            for p in (target, b)
        )
        with progress.task("matching nodes"):
            result = diffing.diff(graph_a, graph)
    else:
        found = _load(target, fw=fw, entry=entry, timeout=timeout)
        if watch_steps is not None:  # the replayed step in step mode, the history above it
            watched = _watch_run(found, target, watch_steps, timeout=timeout)
            history, first_bad_step = watched.history, watched.first_nonfinite_step
            steps = watched.replay or _step_train(found, method, timeout=timeout)
            until = until or ("nonfinite" if watched.replay is not None else None)
            graph = steps.graph
        elif train:
            if found.graph is not None:
                _fail(
                    f"{target} is a saved graph, which holds no weights to train: --train steps a model file"
                )
            steps = _step_train(found, method, timeout=timeout)
            graph = steps.graph
        elif (
            found.graph is None
            and found.fw is not None
            and found.kind != "savedmodel"  # browsed as data: stepping would load it (and run it)
            and (found.fw, method or stepping.DEFAULT_METHOD.get(found.fw)) in stepping.REGISTRY
        ):
            steps = _step(found, method, timeout=timeout)  # a model: step mode, with values
            graph = steps.graph
        else:
            graph = _capture(found, method, timeout=timeout)
    if until is not None:
        if steps is None:
            _fail(f"--until needs a model file to step, and {target} is a graph without values")
        _start_at(steps, until)
    if not sys.stdout.isatty():
        _fail("graphscope tui needs a terminal (stdout is not one)")
    from graphscope.tui.app import GraphscopeApp

    GraphscopeApp(graph, steps=steps, diff=result, history=history, first_nonfinite_step=first_bad_step).run()


def _start_at(steps: Any, until: str) -> None:
    """Put step mode's cursor at ``--until``: the first non-finite record (the last record when
    there is none), or a node's record (a node that did not run is one sentence)."""
    if until == "nonfinite":
        bad = steps.first_nonfinite
        steps.position = bad.index if bad is not None else max(len(steps) - 1, 0)
    else:
        steps.seek(until)


def _watch_run(found: Any, target: Path, n_steps: int, *, timeout: float | None) -> Any:
    """`watch` on a model file (watch, tui --watch): the history and the replay of the first NaN/Inf step."""
    from graphscope import loader, stepping

    if found.graph is not None or found.model is None:
        _fail(f"{target} is not a model file: watch trains a model")
    watcher = stepping.watcher(found.fw)
    with progress.task(f"training {target.name}"), loader.running_user_code(found.path, timeout=timeout):
        return watcher.watch_target(found, steps=n_steps)


@cli.command()
@click.argument("graph_file", metavar="GRAPH.json", type=_PathArg(path_type=Path))
@click.option(
    "--to",
    "fmt",
    type=click.Choice(["model-explorer", "onnx", "dot"]),
    required=True,
    help="Model Explorer's graph JSON, ONNX (for Netron), or Graphviz DOT.",
)
@click.option(
    "-o",
    "--output",
    type=_PathArg(path_type=Path),
    required=True,
    help="File to write (-: stdout, text formats).",
)
def export(graph_file: Path, fmt: str, output: Path) -> None:
    """Write a graph for another tool (Model Explorer, Netron via ONNX, Graphviz DOT).

    model-explorer writes Model Explorer's graph JSON (scopes as layers, subgraphs as graphs);
    onnx writes a model Netron opens (ops without an exact ONNX op kept in domain 'graphscope',
    weights as graph inputs); dot writes the DOT that `render` lays out. -o - prints a text
    format on stdout.

    \b
    graphscope export graph.json --to model-explorer -o graph.me.json
    graphscope export graph.json --to onnx -o graph.onnx
    """
    from graphscope import interop

    _refuse_writing_over([graph_file], {"-o": output})
    graph = _load_graph(graph_file, "export")
    with progress.task(f"writing {output}"):
        result = interop.write(graph, fmt, output)
    for note in result.notes:
        _note(f"{fmt}: {note}")
    if str(output) != "-":
        _note(f"wrote {output}")


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash:  eval "$(graphscope completion bash)"    (in ~/.bashrc)
    zsh:   eval "$(graphscope completion zsh)"     (in ~/.zshrc)
    fish:  graphscope completion fish > ~/.config/fish/completions/graphscope.fish
    """
    from click.shell_completion import get_completion_class

    complete = get_completion_class(shell)
    assert complete is not None  # every choice is one of click's shells
    click.echo(complete(cli, {}, "graphscope", "_GRAPHSCOPE_COMPLETE").source())


# -- entry point ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and turn every failure into a sentence and an exit code."""
    # TensorFlow's start-up banner is not graphscope's output, wherever TensorFlow is first
    # imported (a model.py may import it).
    from graphscope import _tf_startup

    _tf_startup.install()
    restore = _stop_on_signals()
    try:
        # Without standalone mode, click returns (not raises) the code of a ctx.exit / Exit.
        code = cli.main(args=argv, prog_name="graphscope", standalone_mode=False)
        if isinstance(code, int) and code:
            return code
    except _Stopped as exc:
        click.echo(f"graphscope: stopped by {exc.name}", err=True)
        return 128 + exc.signum
    except click.exceptions.Abort:
        click.echo("graphscope: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return int(exc.exit_code or 0)
    except GraphscopeError as exc:
        if _debug:
            raise
        click.echo(f"graphscope: error: {_one_line(str(exc))}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("graphscope: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    except MemoryError:  # it said "internal error: MemoryError:" and nothing more
        if _debug:
            raise
        click.echo(
            "graphscope: error: ran out of memory (the model, the graph or the values it holds "
            "need more than this machine has)",
            err=True,
        )
        return 1
    except Exception as exc:  # a bug in graphscope: still no traceback unless asked
        if _debug:
            raise
        click.echo(
            f"graphscope: internal error: {type(exc).__name__}: {_cut(_one_line(str(exc)), 240)} "
            "(rerun with --debug for the traceback)",
            err=True,
        )
        return 1
    finally:
        restore()
    return 0


class _Stopped(BaseException):
    """SIGTERM or SIGHUP arrived: raised where Python is running, so that every ``finally``
    runs on the way out (a temporary file is removed, a running ``dot`` is killed by
    ``subprocess.run``), as it does for Ctrl-C. A BaseException: a model's ``except
    Exception`` does not swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


def _stop_on_signals() -> Callable[[], None]:
    """Turn SIGTERM and SIGHUP into :class:`_Stopped` while the command runs, where their
    handlers are the default ones (the main thread only); returns what puts them back."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}

    def stop(signum: int, frame: Any) -> None:
        raise _Stopped(signum)

    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) == signal.SIG_DFL:
            previous[signum] = signal.signal(signum, stop)

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore


def _cut(text: str, limit: int) -> str:
    """``text`` up to ``limit`` characters, cut at a word (torch's dispatch errors list every
    dispatch key with its file: thousands of characters; --debug has them all)."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def _one_line(message: str) -> str:
    from graphscope.rendering.terminal import strip_unsafe

    # A file name that is not UTF-8 (b"m\xff.py") reaches Python as a lone surrogate, which
    # no stream can encode: show its byte as \xff instead.
    try:
        raw = message.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that is not an escaped byte
        raw = message.encode("utf-8", "backslashreplace")
    message = raw.decode("utf-8", "backslashreplace")
    return " ".join(strip_unsafe(message).split())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()

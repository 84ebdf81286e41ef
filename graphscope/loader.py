"""Finding what to capture: file types recognised by content, and the `model.py` conventions.

A ``model.py`` is imported as a module (so it runs, as ``python model.py`` would) and searched,
in order, for: the function named by ``--entry`` returning ``(model, example_inputs)``; else
module-level ``model`` and ``example_inputs``; else (TF1) a module-level ``graph``, with an
optional ``example_inputs`` feeding its placeholders in graph order for stepping.
``example_inputs`` is a tuple, or a callable returning one. An optional ``example_inputs_alt``
is the second input set for ``--check-dynamic``.

For training (``trace --backward``) a ``model.py`` adds ``example_targets`` (a tuple, or a
callable returning one) and ``loss_fn(output, *targets)`` returning a scalar; neither is needed
when the model's output is a scalar already. ``--entry`` may then return
``(model, example_inputs, example_targets, loss_fn)``. The loader only finds them; the backward
tracers check them against the model's output.

Files that are graphs already are recognised by their first bytes, never unpickled.

:func:`running_user_code` is the fence around everything that runs the user's code (importing
``model.py``, its ``example_inputs``, the model's forward while tracing or stepping): a time
limit, ``sys.exit`` / ``os._exit`` turned into a sentence, and ``print`` kept off stdout.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import stat
import sys
import threading
import time
import traceback
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from graphscope.errors import GraphscopeError, first_line

__all__ = [
    "DEFAULT_TIMEOUT",
    "Target",
    "detect",
    "guess_framework",
    "import_model_file",
    "load_saved_model_to_run",
    "load_target",
    "running_user_code",
]

# Seconds a command may spend running the user's code (--timeout; 0 or None: no limit). Ten
# minutes is far above any model this project traces (GPT-2 export: under a minute), and
# still ends a forgotten `while True` in CI.
DEFAULT_TIMEOUT = 600.0
# After the first stop, a model that swallowed it (a bare `except:` in a loop) gets this long
# before the process ends; code stuck in C gets _C_GRACE more (see running_user_code).
_GRACE = 2.0
_C_GRACE = 10.0


@dataclass
class Target:
    """What the loader found in a path."""

    path: Path
    kind: str  # ir-json | python | torchscript | onnx | graphdef | graphdef-text | savedmodel
    fw: str | None = None
    method: str | None = None  # the capture method the file implies (TorchScript: jit-script)
    name: str = "model"
    graph: Any = None  # an ir.Graph when the file was one already
    model: Any = None
    example_inputs: tuple[Any, ...] | None = None
    example_inputs_alt: tuple[Any, ...] | None = None
    example_targets: tuple[Any, ...] | None = None  # training: what loss_fn compares with
    loss_fn: Any = None  # training: loss_fn(output, *example_targets) -> a scalar
    optimizer: Any = None  # training: a torch.optim optimizer over the model's parameters (step --train)
    extras: dict[str, Any] = field(default_factory=dict)


def detect(path: Path) -> str:
    """Say what kind of file ``path`` is by looking at it, not only at its suffix."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise GraphscopeError(f"{path} does not exist") from None
    except (OSError, ValueError) as exc:  # a loop of links, a name too long, a NUL in the name
        raise GraphscopeError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_ISDIR(mode):
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "savedmodel"
        raise GraphscopeError(f"{path} is a directory, and not a SavedModel (it has no saved_model.pb)")
    if not stat.S_ISREG(mode):
        # Reading a FIFO waits for a writer forever; a device never ends.
        raise GraphscopeError(f"{path} is not a regular file (a pipe, a socket or a device)")
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise GraphscopeError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not head:
        raise GraphscopeError(f"{path} is empty")
    stripped = head.lstrip()
    # A suffix that promises data is kept: such a file is read as that data or refused, never
    # taken for code (a TorchScript archive, a Python script) because of what is inside it.
    promised = _DATA_SUFFIXES.get(path.suffix.lower())
    if (stripped.startswith(b"{") and b'"format"' in head[:200]) or path.suffix == ".json":
        return "ir-json"
    if _is_zip(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except Exception as exc:  # zipfile raises BadZipFile, but also UnicodeDecodeError, ValueError...
            raise GraphscopeError(f"{path} is a damaged zip archive: {first_line(exc)}") from None
        if any(n.endswith("/code/") or "/code/" in n for n in names) and any(
            n.endswith("constants.pkl") or n.endswith("data.pkl") for n in names
        ):
            if promised:
                raise GraphscopeError(
                    f"{path} is a TorchScript archive, not the {promised} its name promises, and "
                    "loading one runs its code: graphscope reads a data file as data only"
                )
            return "torchscript"
        raise GraphscopeError(
            f"{path} is a zip archive but not a TorchScript archive (no code/ inside); "
            "a torch.save checkpoint is not read, since unpickling it could run code"
        )
    if path.suffix in _TORCH_SUFFIXES:
        raise GraphscopeError(
            f"{path} is not a TorchScript archive: it is not a zip archive (truncated or damaged?)"
        )
    if path.suffix == ".py" or (not promised and head.startswith(b"#!") and b"python" in head[:100]):
        return "python"
    if path.suffix == ".onnx":
        return "onnx"
    if path.suffix == ".pbtxt" or (path.suffix == ".pb" and _looks_like_text(head)):
        return "graphdef-text"
    if path.suffix == ".pb":
        return "graphdef"
    if _looks_like_text(head) and b"node {" in head:
        return "graphdef-text"
    # Any other text (a README, a requirements file) is not a model file: only a .py (or a
    # script that says it is Python) is imported.
    # Binary protobuf: ONNX ModelProto starts with ir_version (field 1, varint => 0x08);
    # a GraphDef starts with a node (field 1, length-delimited => 0x0a).
    if head[:1] == b"\x08":
        return "onnx"
    if head[:1] == b"\x0a":
        return "graphdef"
    raise GraphscopeError(f"{path} is not a file graphscope knows: {KNOWN_FILES}")


KNOWN_FILES = (
    "it reads a model.py (with --fw), a graphscope .json, a .pb/.pbtxt GraphDef, a SavedModel "
    "directory, an .onnx file or a TorchScript .pt"
)


# TorchScript is loaded (which runs its code) only from these suffixes, or with --fw torch.
_TORCH_SUFFIXES = (".pt", ".pth", ".ptl", ".torchscript")
# Suffixes that promise data (read, never run), and what they promise.
_DATA_SUFFIXES = {
    ".json": "graphscope JSON",
    ".onnx": "ONNX model",
    ".pb": "GraphDef",
    ".pbtxt": "text GraphDef",
}


def _is_zip(path: Path) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except Exception:  # a damaged end-of-archive record: not a zip graphscope can read
        return False


def _squeezed(exc: BaseException) -> str:
    """A parser's whole message on one line, cut to 200 characters (protobuf's text parser puts
    where it failed and why on lines of their own)."""
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    # Binary protobufs often decode as UTF-8 by chance; text has no control characters.
    return not any(ord(c) < 32 and c not in "\t\n\r\f" for c in text)


def load_target(path: str | os.PathLike[str], *, fw: str | None = None, entry: str | None = None) -> Target:
    """Load whatever ``path`` holds, ready for a tracer (or already a graph)."""
    p = Path(path)
    kind = detect(p)
    if kind == "ir-json":
        from graphscope import ir

        return Target(p, kind, graph=ir.load(p), name=p.stem)
    if kind == "torchscript":
        if p.suffix.lower() not in _TORCH_SUFFIXES and fw != "torch":
            raise GraphscopeError(
                f"{p} is a TorchScript archive, and loading one runs its code: graphscope loads "
                "it only from a .pt, .pth, .ptl or .torchscript file, or with --fw torch"
            )
        return _load_torchscript(p)
    if kind == "python":
        if fw is None:
            raise GraphscopeError(
                f"{p} is a Python file: say which framework it uses with --fw torch|tf|tf1|onnx"
            )
        return _load_python(p, fw=fw, entry=entry)
    if kind == "onnx":
        from graphscope.tracers.onnx_graph import load_model

        return Target(p, kind, fw="onnx", method="onnx", name=p.stem, model=load_model(p))
    if kind in ("graphdef", "graphdef-text"):
        return Target(
            p,
            kind,
            fw="tf1",
            method="tf1",
            name=p.stem,
            model=_read_graph_def(p, text=kind == "graphdef-text"),
        )
    return _load_saved_model(p)


def _read_graph_def(p: Path, *, text: bool) -> Any:
    from graphscope.tracers._tf_common import require_tf

    tf = require_tf()
    graph_def = tf.compat.v1.GraphDef()
    try:
        if text:
            from google.protobuf import text_format

            text_format.Parse(p.read_text(encoding="utf-8"), graph_def)
        else:
            graph_def.ParseFromString(p.read_bytes())
    except UnicodeDecodeError:
        raise GraphscopeError(f"{p} is not a text GraphDef: it is not UTF-8 text") from None
    except Exception as exc:
        first = _squeezed(exc)
        what = "text GraphDef (.pbtxt)" if text else "binary GraphDef (.pb)"
        raise GraphscopeError(f"{p} is not a readable {what}: {first}") from None
    if not graph_def.node:
        raise GraphscopeError(
            f"{p} holds no graph nodes: it is not a GraphDef (a truncated or foreign file?)"
        )
    return graph_def


def _load_saved_model(p: Path) -> Target:
    """A SavedModel read as data: ``saved_model.pb`` parsed, nothing in it run.

    ``tf.saved_model.load`` would run the file's resource initialisers (TensorFlow functions
    that can write files); only ``graphscope step``, which is asked to run the model, loads it
    (:func:`load_saved_model_to_run`)."""
    from graphscope.tracers._tf_common import require_tf

    require_tf()
    from tensorflow.core.protobuf import saved_model_pb2

    from graphscope.tracers.tf_savedmodel import SavedModelGraph

    saved = saved_model_pb2.SavedModel()
    binary = p / "saved_model.pb"
    try:
        if binary.is_file():
            saved.ParseFromString(binary.read_bytes())
        else:
            from google.protobuf import text_format

            text_format.Parse((p / "saved_model.pbtxt").read_text(encoding="utf-8"), saved)
    except Exception as exc:
        first = _squeezed(exc)
        raise GraphscopeError(f"{p} is not a readable SavedModel: {first}") from None
    if not saved.meta_graphs:
        raise GraphscopeError(f"{p} is not a readable SavedModel: its saved_model.pb holds no graph")
    meta = next((m for m in saved.meta_graphs if "serve" in m.meta_info_def.tags), saved.meta_graphs[0])
    # __saved_model_init_op is the initialisers' entry, not a signature to serve.
    signatures = {k: v for k, v in meta.signature_def.items() if not k.startswith("__")}
    if not signatures:
        raise GraphscopeError(
            f"{p} is a SavedModel with no signatures to capture (save it with a serving signature)"
        )
    key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
    signature = signatures[key]
    # The inputs in graph order (the order the signature's function takes them), not by key.
    position = {n.name: i for i, n in enumerate(meta.graph_def.node)}
    inputs = sorted(
        (t.name for t in signature.inputs.values()),
        key=lambda name: position.get(name.split(":")[0], len(position)),
    )
    outputs = [signature.outputs[k].name for k in sorted(signature.outputs)]
    return Target(
        p,
        "savedmodel",
        fw="tf",
        method="savedmodel",
        name=p.name or "saved_model",
        model=SavedModelGraph(meta.graph_def, key, inputs, outputs),
        extras={"signature_key": key},
    )


def load_saved_model_to_run(found: Target) -> Target:
    """The SavedModel ``found`` (read as data by :func:`load_target`) loaded with
    ``tf.saved_model.load``, to run its signature: this runs the file's initialisers, which
    ``graphscope step`` is asked to do."""
    from graphscope.tracers._tf_common import require_tf

    tf = require_tf()
    p = found.path
    try:
        loaded = tf.saved_model.load(str(p))
    except Exception as exc:
        first = _squeezed(exc)
        raise GraphscopeError(f"{p} is not a loadable SavedModel: {first}") from None
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    key = found.extras.get("signature_key")
    if key not in signatures:
        raise GraphscopeError(f"{p}: tf.saved_model.load found no signature {key!r} to run")
    return Target(
        p,
        "savedmodel",
        fw="tf",
        method="tf-function",
        name=found.name,
        model=signatures[key],
        example_inputs=found.example_inputs,
        extras={"keepalive": loaded, "signature_key": key},
    )


def _load_torchscript(p: Path) -> Target:
    try:
        import torch
    except ImportError:
        raise GraphscopeError(
            f"{p} is a TorchScript archive; reading it needs PyTorch (pip install 'graphscope[torch]')"
        ) from None
    try:
        # torch.jit.load unpickles with PyTorch's own restricted C++ unpickler (no Python class
        # is imported), but it compiles the archive's TorchScript code and runs the modules'
        # __setstate__ methods while loading: an archive is code, as the README warns.
        module = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError with a C++ message for damaged files
        raise GraphscopeError(f"{p} is not a readable TorchScript archive: {first_line(exc)}") from None
    return Target(p, "torchscript", fw="torch", method="jit-script", name=p.stem, model=module)


def import_model_file(p: Path) -> Any:
    """Import ``p`` as a fresh module. Its own errors become one sentence with its line."""
    module_name = f"graphscope_user_{abs(hash(str(p.resolve())))}"
    try:
        spec = importlib.util.spec_from_file_location(module_name, p)
    except Exception:
        spec = None
    if spec is None or spec.loader is None:
        raise GraphscopeError(f"{p} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    folder = str(p.resolve().parent)
    sys.path.insert(0, folder)  # let model.py import its neighbours, as `python model.py` would
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if isinstance(exc, SystemExit):
            raise GraphscopeError(f"{p} called sys.exit({exc.code!r}) while being imported") from None
        if isinstance(exc, SyntaxError):
            raise GraphscopeError(f"{p} has a syntax error at line {exc.lineno}: {exc.msg}") from None
        if isinstance(exc, UnicodeDecodeError):
            raise GraphscopeError(f"{p} is not UTF-8 text, so it cannot be a Python model file") from None
        if isinstance(exc, Exception):
            raise GraphscopeError(f"{p} raised {_describe(exc, p)} while being imported") from None
        raise  # the time limit, os._exit, Ctrl-C: running_user_code tells them
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    return module


def _describe(exc: BaseException, p: Path) -> str:
    """``ValueError('boom') at model.py:12``, the deepest frame inside the user's file."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == p.resolve():
            line = frame.lineno
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    where = f" at line {line}" if line else ""
    return f"{type(exc).__name__}{': ' + msg if msg else ''}{where}"


def _load_python(p: Path, *, fw: str, entry: str | None) -> Target:
    module = import_model_file(p)
    names = {k for k in vars(module) if not k.startswith("_")}
    target = Target(p, "python", fw=fw, name=p.stem)
    if entry is not None:
        fn = getattr(module, entry, None)
        if fn is None or not callable(fn):
            raise GraphscopeError(f"{p} has no function {entry!r} (--entry); it defines: {_list(names)}")
        try:
            result = fn()
        except Exception as exc:
            raise GraphscopeError(f"{p}: {entry}() raised {_describe(exc, p)}") from None
        if not (isinstance(result, tuple) and len(result) in (2, 4)):
            raise GraphscopeError(
                f"{p}: {entry}() must return (model, example_inputs), or (model, example_inputs, "
                f"example_targets, loss_fn) for training, not {_what(result)}"
            )
        target.model, target.example_inputs = result[0], _as_inputs(result[1], p, f"{entry}()[1]")
        if len(result) == 4:
            if result[2] is not None:
                target.example_targets = _as_inputs(result[2], p, f"{entry}()[2]")
            target.loss_fn = _as_loss_fn(result[3], p, f"{entry}()[3]")
        target.name = entry
    elif "model" in names and "example_inputs" in names:
        target.model = module.model
        target.example_inputs = _as_inputs(module.example_inputs, p, "example_inputs")
    elif fw in ("tf1", "tf") and "graph" in names:
        target.model = module.graph
        target.extras["tf1_graph"] = True
        if "example_inputs" in names:  # what to feed the placeholders, in graph order, to step
            target.example_inputs = _as_inputs(module.example_inputs, p, "example_inputs")
    elif "model" in names and "input_signature" in names and fw in ("tf", "onnx"):
        target.model = module.model  # a tf.function / Keras model with an input_signature
    else:
        expected = "a function named by --entry, or `model` and `example_inputs`"
        if fw in ("tf1", "tf"):
            expected += ", or a TF1 `graph`"
        raise GraphscopeError(f"{p} does not define {expected}; it defines: {_list(names)}")
    if target.example_targets is None and "example_targets" in names:
        target.example_targets = _as_inputs(module.example_targets, p, "example_targets")
    if target.loss_fn is None and "loss_fn" in names:
        target.loss_fn = _as_loss_fn(module.loss_fn, p, "loss_fn")
    if "optimizer" in names:
        target.optimizer = module.optimizer
    if "batches" in names:  # watch: a generator of (inputs, targets)
        if not callable(module.batches):
            raise GraphscopeError(f"{p}: batches must be a function yielding (inputs, targets) pairs")
        target.extras["batches"] = module.batches
    if "example_inputs_alt" in names:
        target.example_inputs_alt = _as_inputs(module.example_inputs_alt, p, "example_inputs_alt")
    if "input_signature" in names:
        target.extras["input_signature"] = module.input_signature
    if fw == "onnx" and target.model is not None and target.method is None:
        target.method = "onnx"
        target.fw = "tf"  # a TensorFlow model in model.py, to convert through tf2onnx
    return target


def _as_inputs(value: Any, p: Path, what: str) -> tuple[Any, ...]:
    if callable(value) and not hasattr(value, "shape"):
        try:
            value = value()
        except Exception as exc:
            raise GraphscopeError(f"{p}: {what}() raised {_describe(exc, p)}") from None
    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, tuple):
        value = (value,)
    return value


def _as_loss_fn(value: Any, p: Path, what: str) -> Any:
    if value is not None and not callable(value):
        raise GraphscopeError(f"{p}: {what} must be a function loss_fn(output, *targets), not {_what(value)}")
    return value


def _what(value: Any) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if value is None:
        return "None"
    kind = type(value).__name__
    return f"{'an' if kind[:1].lower() in 'aeiou' else 'a'} {kind}"


def _list(names: set[str]) -> str:
    shown = sorted(n for n in names if n not in {"torch", "nn", "tf", "np", "keras", "F", "annotations"})
    if not shown:
        return "nothing public"
    more = f" and {len(shown) - 12} more" if len(shown) > 12 else ""
    return ", ".join(shown[:12]) + more


def guess_framework(model: Any) -> str:
    """``torch`` for an ``nn.Module``, ``tf`` for Keras / tf.function, from the class's module."""
    mod = type(model).__module__ or ""
    if mod.startswith("torch") or any(c.__module__.startswith("torch.nn") for c in type(model).__mro__):
        return "torch"
    if any(c.__module__.startswith(("tensorflow", "keras", "tf_keras")) for c in type(model).__mro__):
        return "tf"
    if mod.startswith("onnx"):
        return "onnx"
    raise GraphscopeError(f"cannot tell which framework a {type(model).__name__} belongs to: pass fw=")


class _TimeUp(BaseException):
    """Raised inside the user's code when --timeout runs out. A BaseException, so that the
    model's own ``except Exception`` does not swallow it."""


class _ExitCalled(BaseException):
    """Raised instead of ending the process when the user's code calls ``os._exit``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@contextlib.contextmanager
def running_user_code(
    path: str | os.PathLike[str], *, timeout: float | None = DEFAULT_TIMEOUT
) -> Iterator[None]:
    """Fence around code that runs what ``path`` holds (importing it, tracing it, stepping it).

    - After ``timeout`` seconds (None or 0: no limit) the code is stopped and the error says so.
      The stop is SIGALRM, raised in the main thread where Python code is running: it ends a
      Python loop, a ``time.sleep`` or a wait at once, but a loop inside C code (one huge
      tensor op, a C extension spinning) only when that C call returns. Code that swallows
      the stop (a bare ``except:`` in a loop) ends the process after ``_GRACE`` more seconds,
      with the same sentence; code stuck in C ends it (exit code 1, no sentence, since no
      Python can run to write one) ``_C_GRACE`` seconds after that. Outside the main thread
      (or without SIGALRM, on Windows) there is no limit.
    - ``sys.exit(n)`` and ``os._exit(n)`` in the user's code become an error naming the file
      instead of ending graphscope with the model's exit code.
    - ``print`` in the user's code goes to stderr: stdout is graphscope's (``--json``).
    - A :class:`GraphscopeError` that does not name the file gets the file's name in front.
    """
    name = str(path)
    limit = float(timeout) if timeout else 0.0
    message = f"{name} did not finish within {limit:g} s (--timeout)"
    fired = False
    pid = os.getpid()
    real_exit = os._exit

    def refuse_exit(code: int) -> None:
        if os.getpid() != pid:  # a process the model forked: let it end as it asked
            real_exit(code)
        raise _ExitCalled(code)

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if outer_deadline is not None and time.monotonic() >= outer_deadline - 1e-3:
            if callable(old_handler):  # a timer set before ours (pytest-timeout) ran out first
                signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 1e-3))
                old_handler(signum, frame)
            return
        if not fired:
            fired = True
            signal.setitimer(signal.ITIMER_REAL, _GRACE)
            raise _TimeUp
        # The model caught the first stop and went on: no way left to end it but this one.
        sys.stderr.write(f"graphscope: error: {message}, and it ignored being stopped\n")
        sys.stderr.flush()
        real_exit(1)

    armed = (
        limit > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    )
    old_handler: Any = None
    outer_deadline: float | None = None
    deadline = time.monotonic() + limit
    devnull = None
    if armed:
        old_handler = signal.signal(signal.SIGALRM, on_alarm)
        outer_left, _ = signal.setitimer(signal.ITIMER_REAL, limit)
        if outer_left > 0:
            outer_deadline = time.monotonic() + outer_left
            if outer_left < limit:
                signal.setitimer(signal.ITIMER_REAL, outer_left)
        import faulthandler

        if not faulthandler.is_enabled():  # pytest's faulthandler keeps its own later-dump
            devnull = open(os.devnull, "w")  # noqa: SIM115 - closed in finally
            faulthandler.dump_traceback_later(limit + _GRACE + _C_GRACE, exit=True, file=devnull)
    os._exit = refuse_exit  # type: ignore[assignment]
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except _TimeUp:
        raise GraphscopeError(message) from None
    except _ExitCalled as exc:
        raise GraphscopeError(f"{name} called os._exit({exc.code!r})") from None
    except SystemExit as exc:
        raise GraphscopeError(f"{name} called sys.exit({exc.code!r})") from None
    except GraphscopeError as exc:
        if fired:  # a framework turned the stop into an error of its own
            raise GraphscopeError(message) from None
        text = str(exc)
        if name not in text and Path(name).name not in text:
            raise GraphscopeError(f"{name}: {text}") from None
        raise
    except Exception:
        if fired:
            raise GraphscopeError(message) from None
        raise
    finally:
        os._exit = real_exit
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old_handler if old_handler is not None else signal.SIG_DFL)
            if outer_deadline is not None:
                signal.setitimer(signal.ITIMER_REAL, max(outer_deadline - time.monotonic(), 1e-3))
            if devnull is not None:
                import faulthandler

                faulthandler.cancel_dump_traceback_later()
                devnull.close()

"""Finding what to capture: file types recognised by content, and the `model.py` conventions.

A ``model.py`` is imported as a module (so it runs, as ``python model.py`` would) and searched,
in order, for: the function named by ``--entry`` returning ``(model, example_inputs)``; else
module-level ``model`` and ``example_inputs``; else (TF1) a module-level ``graph``, with an
optional ``example_inputs`` feeding its placeholders in graph order for stepping.
``example_inputs`` is a tuple, or a callable returning one. An optional ``example_inputs_alt``
is the second input set for ``--check-dynamic``.

Files that are graphs already are recognised by their first bytes, never unpickled.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphscope.errors import GraphscopeError

__all__ = ["Target", "detect", "guess_framework", "import_model_file", "load_target"]


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
    extras: dict[str, Any] = field(default_factory=dict)


def detect(path: Path) -> str:
    """Say what kind of file ``path`` is by looking at it, not only at its suffix."""
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "savedmodel"
        raise GraphscopeError(f"{path} is a directory, and not a SavedModel (it has no saved_model.pb)")
    if not path.exists():
        raise GraphscopeError(f"{path} does not exist")
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise GraphscopeError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not head:
        raise GraphscopeError(f"{path} is empty")
    stripped = head.lstrip()
    if (stripped.startswith(b"{") and b'"format"' in head[:200]) or path.suffix == ".json":
        return "ir-json"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise GraphscopeError(f"{path} is a damaged zip archive: {exc}") from None
        if any(n.endswith("/code/") or "/code/" in n for n in names) and any(
            n.endswith("constants.pkl") or n.endswith("data.pkl") for n in names
        ):
            return "torchscript"
        raise GraphscopeError(f"{path} is a zip archive but not a TorchScript archive (no code/ inside)")
    if path.suffix == ".py" or (head.startswith(b"#!") and b"python" in head[:100]):
        return "python"
    if path.suffix == ".onnx":
        return "onnx"
    if path.suffix == ".pbtxt" or (path.suffix == ".pb" and _looks_like_text(head)):
        return "graphdef-text"
    if path.suffix == ".pb":
        return "graphdef"
    if _looks_like_text(head) and b"node {" in head:
        return "graphdef-text"
    if _looks_like_text(head):
        return "python"
    # Binary protobuf: ONNX ModelProto starts with ir_version (field 1, varint => 0x08);
    # a GraphDef starts with a node (field 1, length-delimited => 0x0a).
    if head[:1] == b"\x08":
        return "onnx"
    if head[:1] == b"\x0a":
        return "graphdef"
    raise GraphscopeError(
        f"{path} is not a file graphscope knows: expected a model.py, a graphscope .json, "
        "a .pb/.pbtxt GraphDef, a SavedModel directory, an .onnx file or a TorchScript .pt"
    )


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
        first = " ".join(str(exc).split())[:200] or type(exc).__name__
        what = "text GraphDef (.pbtxt)" if text else "binary GraphDef (.pb)"
        raise GraphscopeError(f"{p} is not a readable {what}: {first}") from None
    if not graph_def.node:
        raise GraphscopeError(
            f"{p} holds no graph nodes: it is not a GraphDef (a truncated or foreign file?)"
        )
    return graph_def


def _load_saved_model(p: Path) -> Target:
    from graphscope.tracers._tf_common import require_tf

    tf = require_tf()
    try:
        # Loading a SavedModel reads its graphs and variables; it runs no Python code of the file's.
        loaded = tf.saved_model.load(str(p))
    except Exception as exc:
        first = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise GraphscopeError(f"{p} is not a loadable SavedModel: {first}") from None
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    if not signatures:
        raise GraphscopeError(
            f"{p} is a SavedModel with no signatures to capture (save it with a serving signature)"
        )
    key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
    return Target(
        p,
        "savedmodel",
        fw="tf",
        method="tf-function",
        name=p.name or "saved_model",
        model=signatures[key],
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
        # TorchScript archives hold code and tensors, not pickled Python objects:
        # torch.jit.load does not unpickle arbitrary classes.
        module = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError with a C++ message for damaged files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GraphscopeError(f"{p} is not a readable TorchScript archive: {first}") from None
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
    except SystemExit as exc:
        raise GraphscopeError(f"{p} called sys.exit({exc.code!r}) while being imported") from None
    except SyntaxError as exc:
        raise GraphscopeError(f"{p} has a syntax error at line {exc.lineno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise GraphscopeError(f"{p} is not UTF-8 text, so it cannot be a Python model file") from None
    except Exception as exc:
        raise GraphscopeError(f"{p} raised {_describe(exc, p)} while being imported") from None
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
        if not (isinstance(result, tuple) and len(result) == 2):
            raise GraphscopeError(
                f"{p}: {entry}() must return (model, example_inputs), not {type(result).__name__}"
            )
        target.model, target.example_inputs = result[0], _as_inputs(result[1], p, f"{entry}()[1]")
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
    if mod.startswith(("tensorflow", "keras", "tf_keras")):
        return "tf"
    if mod.startswith("onnx"):
        return "onnx"
    raise GraphscopeError(f"cannot tell which framework a {type(model).__name__} belongs to: pass fw=")

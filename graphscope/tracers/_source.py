"""Which frames of a stack are the user's own code or a model library's, and how to name their
files portably."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "ModuleCall",
    "frame_kind_is_other",
    "is_library_model_file",
    "is_user_file",
    "model_frame",
    "model_source",
    "relative",
    "source_of_frames",
]


@functools.cache
def _library_dirs() -> tuple[str, ...]:
    dirs = [str(Path(__file__).resolve().parents[1])]  # graphscope itself
    for p in sys.path:
        if p.endswith(("site-packages", "dist-packages")):
            dirs.append(p)
    dirs.append(str(Path(contextlib.__file__).parent))  # the standard library
    # The environment's scripts: the `graphscope` console script is what called the model, not
    # where any of its ops ran.
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        for scripts in ("bin", "Scripts"):
            dirs.append(os.path.join(prefix, scripts) + os.sep)
            with contextlib.suppress(OSError):
                dirs.append(str(Path(prefix, scripts).resolve()) + os.sep)
    return tuple(dirs)


# graphscope's own folder, as its frames name it and resolved (a symlinked environment)
_GRAPHSCOPE_DIR = tuple(
    {
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
        str(Path(__file__).resolve().parents[1]) + os.sep,
    }
)


@functools.lru_cache(maxsize=4096)
def is_user_file(filename: str) -> bool:
    """True for the user's own code: not graphscope, not the standard library, not an installed
    package (torch, tensorflow, keras, transformers...)."""
    if filename.startswith("<"):
        return False
    try:
        resolved = str(Path(filename).resolve())
    except OSError:
        resolved = filename
    return not resolved.startswith(_library_dirs())


def relative(filename: str, cwd: str | None = None) -> str:
    """A path relative to the working directory (``cwd``, else the current one) when it lies
    below it (portable goldens)."""
    return _relative(filename, os.getcwd() if cwd is None else cwd)  # (Path.cwd() costs 4x)


@functools.lru_cache(maxsize=4096)
def _relative(filename: str, cwd: str) -> str:
    # The path as given first: a file reached through a symlinked folder below the working
    # directory is named through that folder, not by where the link points.
    for resolve in (False, True):
        try:
            path = Path(filename).resolve() if resolve else Path(os.path.abspath(filename))
            return str(path.relative_to(cwd))
        except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop
            continue
    return filename


# A framework's own machinery, between a model's code and the op: not where the op "ran" for a
# user. torch.nn's layers (torch/nn/modules/linear.py) are model code, its call machinery not.
_MACHINERY = re.compile(r"[/\\](torch|functorch|tensorflow|keras|tf_keras|numpy)[/\\]")
_MODEL_CODE = re.compile(r"[/\\]torch[/\\]nn[/\\]modules[/\\](?!module\.py$)[^/\\]+\.py$")


@functools.lru_cache(maxsize=4096)
def is_library_model_file(filename: str) -> bool:
    """True for an installed model library's code: transformers' ``modeling_gpt2.py``, diffusers,
    timm, torch.nn's layers; not a framework's dispatch or functional machinery, not graphscope,
    not the standard library, not a console script."""
    if filename.startswith("<") or is_user_file(filename) or filename.startswith(_GRAPHSCOPE_DIR):
        return False
    if "site-packages" not in filename and "dist-packages" not in filename:
        return False  # the standard library, a console script
    return bool(_MODEL_CODE.search(filename)) or not _MACHINERY.search(filename)


def model_source(frame: Any) -> dict[str, Any] | None:
    """Where an op ran, as ``{file, line}``: from ``frame`` outwards, past graphscope's own hook
    frames, the innermost frame of the user's code or of a model library such as transformers,
    else of torch.nn's layers (see :func:`is_library_model_file`). The walk stops at the graphscope frame that called the
    model: what lies beyond (graphscope, click, the console script) is not the model's."""
    found = model_frame(frame)
    return None if found is None else {"file": relative(found[0]), "line": found[1]}


def model_frame(frame: Any, call: ModuleCall | None = None) -> tuple[str, int] | None:
    """:func:`model_source`'s ``(file, line)``, the file as the frame names it (not made relative:
    a recorder of thousands of ops names each file once). ``call``: the innermost module call
    the op ran in, whose frames outside the call were walked once when it began."""
    kinds = _FRAME_KINDS
    while frame is not None and (kinds.get(frame.f_code.co_filename) or _frame_kind(frame)) == _GRAPHSCOPE:
        frame = frame.f_back
    stop = call.frame if call is not None else None
    library = None  # the innermost torch.nn layer's frame, named only if no better one comes
    while frame is not None:
        if frame is stop:
            # The rest of the stack is the call's outside, unchanged since the call began (those
            # frames wait on it): its walk is the one made then.
            assert call is not None
            return call.model or library or call.layer
        filename = frame.f_code.co_filename
        kind = kinds.get(filename) or _frame_kind(frame)
        if kind == _GRAPHSCOPE:
            break
        if kind == _MODEL:
            return filename, frame.f_lineno
        if library is None and kind == _LAYER:
            library = (filename, frame.f_lineno)
        frame = frame.f_back
    return library


class ModuleCall:
    """A module call's outside, walked once for the ops within it: an eager recorder asks
    :func:`model_frame` about every op (a thousand in a small transformer), and every op within
    a call shares the frames that called it (some fifteen: the model's forward, the layers
    around it, torch's call machinery).

    ``frame`` is the frame that runs the call (torch's ``Module._call_impl``, which calls the
    forward pre-hooks); ``model`` and ``layer`` are the innermost model and torch.nn-layer frame
    at or beyond it, as ``model_frame`` would find them walking on from there (``None``: none
    before the walk's end). ``parent``: the call this one runs in, whose walk this one's stops at."""

    __slots__ = ("frame", "layer", "model")

    def __init__(self, frame: Any, parent: ModuleCall | None) -> None:
        self.frame = frame
        kinds = _FRAME_KINDS
        stop = parent.frame if parent is not None else None
        model = layer = None
        while frame is not None:
            if frame is stop:
                assert parent is not None
                model = model or parent.model
                layer = layer or parent.layer
                break
            filename = frame.f_code.co_filename
            kind = kinds.get(filename) or _frame_kind(frame)
            if kind == _GRAPHSCOPE:
                break
            if kind == _MODEL and model is None:
                model = (filename, frame.f_lineno)
                break  # the walk ends at the first model frame
            if layer is None and kind == _LAYER:
                layer = (filename, frame.f_lineno)
            frame = frame.f_back
        self.model: tuple[str, int] | None = model
        self.layer: tuple[str, int] | None = layer


# What a frame's file is to model_source, decided once per file: it walks some twenty frames
# for every op an eager capture records.
_GRAPHSCOPE, _MODEL, _LAYER, _OTHER = 1, 2, 3, 4
_FRAME_KINDS: dict[str, int] = {}


def _frame_kind(frame: Any) -> int:
    filename = frame.f_code.co_filename
    if filename.startswith(_GRAPHSCOPE_DIR):
        kind = _GRAPHSCOPE
    elif is_user_file(filename) or _is_model_library(filename):
        kind = _MODEL
    elif is_library_model_file(filename):
        kind = _LAYER
    else:
        kind = _OTHER
    _FRAME_KINDS[filename] = kind
    return kind


def frame_kind_is_other(frame: Any) -> bool:
    """Whether ``frame`` is neither graphscope's, nor the model's, nor a torch.nn layer's (torch's
    call machinery): a frame whose line :func:`model_frame` never reports."""
    return (_FRAME_KINDS.get(frame.f_code.co_filename) or _frame_kind(frame)) == _OTHER


def _is_model_library(filename: str) -> bool:
    """A model library's own code (transformers' ``modeling_gpt2.py``, diffusers), not torch.nn's
    layers: an op that ran there points there even when the user's code called the library (a
    user's module wrapping a pretrained backbone), or every op of the backbone would point at
    the one line of the user's forward that called it. torch.nn's layers (``linear.py``) stay
    behind the user's line that used them."""
    return is_library_model_file(filename) and not _MODEL_CODE.search(filename)


def source_of_frames(frames: Iterable[tuple[str, int]]) -> dict[str, Any] | None:
    """``{file, line}`` of a recorded stack's frames (innermost first): the first of the user's
    code or of a model library's (not torch.nn's layers), else the first of torch.nn's layers;
    None when none is there."""
    library = None
    for filename, line in frames:
        if is_user_file(filename) or _is_model_library(filename):
            return {"file": relative(filename), "line": int(line)}
        if library is None and is_library_model_file(filename):
            library = {"file": relative(filename), "line": int(line)}
    return library

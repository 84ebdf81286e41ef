"""TensorFlow's start-up chatter kept off the user's terminal.

On CPUs with oneDNN features, ``import tensorflow`` writes a banner to file descriptor 2 from
C++ before absl logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence it::

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:1796206850.444503    2434 port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:1796206850.668270    2434 cpu_feature_guard.cc:227] This TensorFlow binary ...
    To enable the following instructions: AVX2 AVX512F ..., in other operations, rebuild ...

Whether it appears depends on the machine's CPU, so it must never reach graphscope's output.
While TensorFlow is first imported, descriptor 2 points at a temporary file; afterwards the
lines above are dropped and everything else (warnings, errors) is written to the real stderr.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

# Info-level absl lines ("I0000 00:00:1796206850.444503    2434 port.cc:153] ..."), the note
# absl prints before it is initialised, and the second line of the CPU-feature note.
_CHATTER = re.compile(
    rb"I\d{4} [\d:.]+ +\d+ [\w.-]+:\d+\] .*"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
)
_MODULE = "tensorflow"


def without_chatter(data: bytes) -> bytes:
    """``data`` without TensorFlow's start-up lines; every other line kept as it was."""
    lines = data.splitlines(keepends=True)
    return b"".join(line for line in lines if not _CHATTER.fullmatch(line.rstrip(b"\r\n")))


@contextlib.contextmanager
def stderr_filtered() -> Iterator[None]:
    """Descriptor 2 into a temporary file for the block, then what it caught, filtered, to stderr.

    A file rather than a pipe: nothing reads while the block runs, and a pipe's buffer would fill.
    """
    try:
        real = os.dup(2)
    except OSError:  # no stderr at all (a daemon): nothing to keep clean
        yield
        return
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(real, 2)
            os.close(real)
            caught.seek(0)
            kept = without_chatter(caught.read())
            if kept:
                with contextlib.suppress(OSError):
                    os.write(2, kept)


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of the ``tensorflow`` package with its chatter filtered."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._real.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        with stderr_filtered():
            self._real.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, is_package, ...
        return getattr(self._real, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as the other finders do, and hands it a filtering loader.

    On ``sys.meta_path`` so that the filter applies wherever TensorFlow is first imported: by
    graphscope, by tf2onnx, or by the user's own ``model.py``."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: importlib.machinery.ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def install() -> None:
    """Filter TensorFlow's start-up chatter whenever this process first imports it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # its later C++ info lines too
    if _MODULE in sys.modules or any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietFinder())


def import_tensorflow() -> Any:
    """``import tensorflow``, quietly (``ImportError`` when it is not installed)."""
    install()
    import tensorflow

    return tensorflow

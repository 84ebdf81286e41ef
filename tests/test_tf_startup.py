"""TensorFlow's start-up banner never reaches graphscope's output, whatever the CPU.

The banner depends on the machine (oneDNN CPUs print it, others do not), so these tests stand a
fake ``tensorflow`` package in front of the real one that writes the banner to descriptor 2 from
outside Python's ``sys.stderr``, as TensorFlow's C++ does, beside a line that must get through.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from graphscope._tf_startup import without_chatter

# As TensorFlow 2.21 printed it on an AMD EPYC (and on this project's CI machines), twice.
BANNER = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    b"I0000 00:00:1796206850.444503    2434 port.cc:153] oneDNN custom operations are on. You may "
    b"see slightly different numerical results due to floating-point round-off errors from "
    b"different computation orders. To turn them off, set the environment variable "
    b"`TF_ENABLE_ONEDNN_OPTS=0`.\n"
    b"I0000 00:00:1796206850.668270    2434 cpu_feature_guard.cc:227] This TensorFlow binary is "
    b"optimized to use available CPU instructions in performance-critical operations.\n"
    b"To enable the following instructions: AVX2 AVX512F AVX512_VNNI FMA, in other operations, "
    b"rebuild TensorFlow with the appropriate compiler flags.\n"
)
REAL_ERROR = b"E0000 00:00:1796206850.700000    2434 cuda_dnn.cc:1] a real error\n"


def test_without_chatter_drops_the_banner_and_keeps_everything_else() -> None:
    kept = b"a warning of the user's own\n" + REAL_ERROR
    assert without_chatter(BANNER + kept + BANNER) == kept
    assert without_chatter(b"") == b""
    assert without_chatter(b"no newline at the end") == b"no newline at the end"


def _fake_tensorflow(root: Path) -> Path:
    package = root / "tensorflow"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            f"""
            import os
            os.write(2, {BANNER!r})
            os.write(2, {REAL_ERROR!r})
            os.write(2, {BANNER!r})
            __version__ = "fake"
            """
        )
    )
    return root


def _run(code: str, root: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(_fake_tensorflow(root)), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=120,
        check=True,
    )


def test_a_model_files_own_import_of_tensorflow_is_filtered_once_the_cli_started(tmp_path: Path) -> None:
    done = _run(
        "from graphscope import _tf_startup; _tf_startup.install()\n"
        "import tensorflow, sys; print(tensorflow.__version__); print('after', file=sys.stderr)",
        tmp_path,
    )
    assert done.stdout == b"fake\n"
    assert done.stderr == REAL_ERROR + b"after\n"


def test_graphscopes_own_import_of_tensorflow_is_filtered(tmp_path: Path) -> None:
    done = _run("from graphscope.tracers._tf_common import require_tf; require_tf()", tmp_path)
    assert done.stderr == REAL_ERROR


def test_without_the_filter_the_fake_prints_the_banner(tmp_path: Path) -> None:
    """The fake does what the tests above say it does (so that they can fail)."""
    done = _run("import tensorflow", tmp_path)
    assert done.stderr == BANNER + REAL_ERROR + BANNER

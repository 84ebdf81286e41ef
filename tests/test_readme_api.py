"""The README's "## Python API" examples run verbatim, and print what the README says they print.

Every ```python block under that heading is executed, in order and in one namespace (as a
reader would paste them into one session), in a temporary directory that holds a link to
``examples/``. A ```text block right after a python block is that block's exact stdout.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from pathlib import Path

import pytest

from graphscope.tui.app import GraphscopeApp

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same level."""
    start = markdown.index(f"\n{heading}\n") + len(heading) + 2
    following = markdown.find("\n## ", start)
    return markdown[start : following if following >= 0 else len(markdown)]


def examples(markdown: str) -> list[tuple[str, str | None]]:
    """(python code, the text block that follows it or None), in order."""
    blocks = [(m.group(1), m.group(2)) for m in FENCE.finditer(markdown)]
    pairs = []
    for i, (lang, body) in enumerate(blocks):
        if lang == "python":
            after = blocks[i + 1] if i + 1 < len(blocks) else None
            pairs.append((body, after[1] if after and after[0] == "text" else None))
    return pairs


API = examples(section((ROOT / "README.md").read_text(encoding="utf-8"), "## Python API"))


def test_the_section_has_an_example_of_every_function() -> None:
    code = "\n".join(body for body, _ in API)
    for function in ("trace", "save", "load", "render", "step", "diff", "browse"):
        assert f"graphscope.{function}(" in code, function
    assert sum(out is not None for _, out in API) >= 6  # the outputs are shown, and checked


@pytest.mark.torch
@pytest.mark.skipif(
    not (os.environ.get("GRAPHSCOPE_DOT") or shutil.which("dot")), reason="Graphviz's dot is not installed"
)
def test_python_api_examples_run_and_print_what_the_readme_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    browsed: list[GraphscopeApp] = []
    monkeypatch.setattr(GraphscopeApp, "run", lambda self, *a, **k: browsed.append(self))  # no terminal here
    namespace: dict[str, object] = {"__name__": "readme"}
    for number, (code, shown) in enumerate(API, 1):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"README.md Python API block {number}", "exec"), namespace)
        if shown is not None:
            assert out.getvalue() == shown, f"block {number} printed something else"
    assert [app.graph for app in browsed] == [namespace["g"]]
    assert (tmp_path / "or_gate.json").is_file() and (tmp_path / "or_gate.svg").is_file()

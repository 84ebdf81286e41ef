"""The README's shell examples run, and print what the README shows.

Every ```console block of README.md is a terminal session: a line starting with ``$ `` is a
command, the lines under it are what it prints (stdout and stderr, as a terminal shows them),
and a line that is just ``...`` stands for any number of lines left out. The blocks run in README
order, through bash, in one temporary directory holding copies of ``examples/`` and
``README.md`` and an empty ``docs/``, so that a file one command writes (``-o or_gate.json``) is
there for the next, and nothing in the checkout is written. ``graphscope`` is the console script
next to the Python running the tests; the terminal is 100 columns wide. Trailing spaces and
trailing blank lines are not compared; everything else is, exit codes too (1 when the output
shown is a ``graphscope: error:``, else 0).

A block preceded by ``<!-- readme-test: skip (REASON) -->`` is not run (it needs a terminal, or
shows a placeholder file such as ``model.py``). The "## Python API" section has its own test
(tests/test_readme_api.py). Any other fenced block holding a ``$ `` line fails the test, so that
no example escapes it by the way it is fenced.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)
SKIP = re.compile(r"<!-- readme-test: skip \((?P<reason>[^)]+)\) -->\s*\Z")
ELLIPSIS = "..."
API_SECTION = "## Python API"
COMMAND_TIMEOUT = 300  # seconds; the slowest command (ResNet-50's capture) takes about 20


@dataclass
class Command:
    line: int  # in README.md, 1-based
    command: str
    shown: list[str] = field(default_factory=list)


@dataclass
class Block:
    line: int
    commands: list[Command]
    skip: str | None  # the reason given in the README, or None


def parse(markdown: str) -> tuple[list[Block], list[int]]:
    """The console blocks, and the lines of other fenced blocks (outside the API section) holding a prompt."""
    api_start = markdown.index(f"\n{API_SECTION}\n")
    api_end = markdown.find("\n## ", api_start + 1)
    blocks: list[Block] = []
    unfenced_prompts: list[int] = []
    for match in FENCE.finditer(markdown):
        lang, body = match.group(1), match.group(2)
        first = markdown.count("\n", 0, match.start(2)) + 1
        if api_start <= match.start() < api_end:
            continue
        if lang != "console":
            if any(line.startswith("$ ") for line in body.splitlines()):
                unfenced_prompts.append(first - 1)
            continue
        commands: list[Command] = []
        for number, text in enumerate(body.splitlines(), first):
            if text.startswith("$ "):
                commands.append(Command(number, text[2:]))
            elif not commands:
                raise AssertionError(f"README.md:{number}: a console block must start with a `$ ` command")
            else:
                commands[-1].shown.append(text)
        skip = SKIP.search(markdown, 0, match.start())
        blocks.append(Block(first - 1, commands, skip.group("reason") if skip else None))
    return blocks, unfenced_prompts


def matches(shown: list[str], printed: list[str]) -> bool:
    """Whether ``printed`` is ``shown``, each ``...`` line standing for any run of lines."""
    pieces: list[list[str]] = [[]]  # the runs of lines between the ``...`` lines
    for line in shown:
        if line == ELLIPSIS:
            pieces.append([])
        else:
            pieces[-1].append(line)
    if len(pieces) == 1:
        return shown == printed
    head, *middle, tail = pieces
    if printed[: len(head)] != head:
        return False
    at = len(head)
    for piece in middle:
        found = next(
            (i for i in range(at, len(printed) - len(piece) + 1) if printed[i : i + len(piece)] == piece),
            None,
        )
        if found is None:
            return False
        at = found + len(piece)
    return len(printed) - at >= len(tail) and printed[len(printed) - len(tail) :] == tail


def normalised(lines: list[str]) -> list[str]:
    """Lines without trailing spaces (rich pads table rows), and no blank lines at the end."""
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def environment(bin_dir: Path) -> dict[str, str]:
    """A plain 100-column environment, not a terminal, with the tests' graphscope first on PATH."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"COLUMNS", "LINES", "FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"}
        and not key.startswith("GRAPHSCOPE_")
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "100"  # the width the README's tables are shown at (rich reads it)
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr interleave as they do in a terminal
    return env


def run(command: Command, cwd: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    """The command's exit code and what it printed (stdout and stderr together)."""
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command.command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    return done.returncode, normalised(done.stdout.splitlines())


def working_copy(directory: Path) -> Path:
    """``examples/`` and ``README.md`` copied (not linked: source paths are shown relative to the
    working directory only for files below it), and an empty ``docs/`` for the SVGs."""
    shutil.copytree(ROOT / "examples", directory / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(README, directory / "README.md")
    (directory / "docs").mkdir()
    return directory


BLOCKS, UNFENCED = parse(README.read_text(encoding="utf-8"))


def test_every_shell_example_is_a_console_block_that_runs_or_says_why_not() -> None:
    assert not UNFENCED, f"README.md lines {UNFENCED}: `$ ` examples must be ```console blocks"
    run_blocks = [block for block in BLOCKS if block.skip is None]
    assert len(run_blocks) >= 15 and sum(len(b.commands) for b in run_blocks) >= 25
    for block in BLOCKS:
        for command in block.commands:
            assert command.command.startswith("graphscope "), f"README.md:{command.line}"


def test_matches_reads_an_ellipsis_as_any_lines() -> None:
    assert matches(["a", "b"], ["a", "b"]) and not matches(["a", "b"], ["a", "b", "c"])
    assert matches(["...", "c"], ["a", "b", "c"]) and not matches(["...", "c"], ["c", "d"])
    assert matches(["a", "...", "c", "...", "e"], ["a", "b", "c", "d", "e"])
    assert not matches(["a", "...", "x", "...", "e"], ["a", "b", "c", "d", "e"])
    assert matches(["a", "..."], ["a"]) and not matches(["a", "...", "a"], ["a"])


@pytest.mark.slow  # ResNet-50 among them; about 30 commands, a minute and a half on two cores
@pytest.mark.torch
@pytest.mark.tf
@pytest.mark.onnx
@pytest.mark.skipif(
    not shutil.which("dot"), reason="Graphviz's dot is not on PATH (the README pipes into it)"
)
def test_readme_commands_print_what_the_readme_shows(tmp_path: Path) -> None:
    cwd = working_copy(tmp_path)
    env = environment(Path(sys.executable).parent)
    failures: list[str] = []
    for block in BLOCKS:
        if block.skip is not None:
            continue
        for command in block.commands:
            status, printed = run(command, cwd, env)
            shown = normalised(command.shown)
            expected_status = 1 if any(line.startswith("graphscope: error:") for line in shown) else 0
            if status != expected_status or not matches(shown, printed):
                failures.append(
                    f"README.md:{command.line}: $ {command.command}\n"
                    f"exit code {status} (expected {expected_status}); printed:\n"
                    + "\n".join(printed)
                    + "\n--- the README shows:\n"
                    + "\n".join(shown)
                )
    assert not failures, "\n\n".join(failures)

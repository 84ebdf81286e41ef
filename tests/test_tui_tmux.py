"""The real `graphscope tui` in a real terminal (tmux): start it, send keys, read the screen."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GRAPH = ROOT / "tests" / "golden" / "torch" / "transformer_block.export.json"

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (./setup.sh installs it)"
)


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True, timeout=20).stdout


def screen_until(session: str, text: str, *more: str, timeout: float = 30.0) -> str:
    """The screen once it shows ``text`` and every one of ``more`` (panes draw one by one)."""
    deadline = time.monotonic() + timeout
    shown = ""
    wanted = (text, *more)
    while time.monotonic() < deadline:
        shown = tmux("capture-pane", "-p", "-t", session)
        if all(t in shown for t in wanted):
            return shown
        time.sleep(0.2)
    missing = [t for t in wanted if t not in shown]
    raise AssertionError(f"{missing!r} never appeared; the screen was:\n{shown}")


def test_tui_in_tmux_moves_searches_follows_and_quits() -> None:
    session = f"gs-{uuid.uuid4().hex[:8]}"
    command = f"{sys.executable} -m graphscope tui {GRAPH}"
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "45", command)
    try:
        tmux("resize-window", "-t", session, "-x", "160", "-y", "45")  # a server's default size may win
        screen_until(session, "36 of 36 nodes")
        tmux("send-keys", "-t", session, "/")
        screen_until(session, "search: words")  # the box is open (and focused) before typing
        tmux("send-keys", "-t", session, "scaled", "Enter")
        shown = screen_until(session, "search 'scaled'")
        assert "1 of 36 nodes" in shown and "scaled_dot_product_at" in shown
        tmux("send-keys", "-t", session, "Right", "Enter")  # follow its first input edge
        screen_until(session, "36 of 36 nodes")  # following clears the filter that hid it
        tmux("send-keys", "-t", session, "?")
        screen_until(session, "graphscope tui — keys")
        tmux("send-keys", "-t", session, "Escape")
        # Esc then q at once would reach the app as Alt+q: wait for the help to close.
        deadline = time.monotonic() + 10
        while (
            "graphscope tui — keys" in tmux("capture-pane", "-p", "-t", session)
            and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            alive = (
                subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0
            )
            if not alive or "graphscope" not in tmux("capture-pane", "-p", "-t", session):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("q did not quit the app")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_tui_in_a_small_terminal_stacks_and_chooses_a_body() -> None:
    # 80x24: the table, the node's neighbours and its details all on screen; `>` on the while
    # loop asks which body, `2` enters the body; `w` hides the constants.
    session = f"gs-{uuid.uuid4().hex[:8]}"
    graph = ROOT / "tests" / "golden" / "tf" / "control_flow_tf.tf-function.json"
    tmux(
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        "80",
        "-y",
        "24",
        f"{sys.executable} -m graphscope tui {graph}",
    )
    try:
        tmux("resize-window", "-t", session, "-x", "80", "-y", "24")
        # the table, the neighbours and the details, each drawn when it is ready
        screen_until(session, "12 of 12 nodes", "kind", "↑ x", "Sum · Sum → sum · op")
        tmux("send-keys", "-t", session, "/")
        screen_until(session, "search: words")  # the box is open (and focused) before typing
        tmux("send-keys", "-t", session, "op:while")
        screen_until(session, "1 of 12 nodes · search 'op:while'")
        tmux("send-keys", "-t", session, "Enter")
        time.sleep(0.5)  # a person's pause: Enter hands the keys back to the table
        tmux("send-keys", "-t", session, ">")
        screen_until(session, "enter which body of while?")
        tmux("send-keys", "-t", session, "2")
        shown = screen_until(session, "while.body ·")
        assert "search" not in shown.splitlines()[1]  # the search was the top level's
        tmux("send-keys", "-t", session, "w")
        screen_until(session, "3 weights hidden (w)")
        tmux("send-keys", "-t", session, "q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.torch
def test_tui_train_opens_at_the_gradient_of_sqrt_and_g_goes_to_its_forward_node() -> None:
    # `tui --train --until nonfinite` as a user runs it: the backward record where the inf was
    # born, its phase in the title; g to sqrt and back; p / f step away and back.
    session = f"gs-{uuid.uuid4().hex[:8]}"
    command = (
        f"cd {ROOT} && PYTHONPATH={ROOT} {sys.executable} -m graphscope tui "
        "examples/sqrt_grad_torch.py --fw torch --train --until nonfinite"
    )
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "45", command)
    try:
        tmux("resize-window", "-t", session, "-x", "160", "-y", "45")
        # (the title is cut on a narrow screen: the parts that fit 80 columns)
        shown = screen_until(session, "step 6/8 · backward: sqrt_grad", timeout=60)
        assert "forward ━━━━ backward ━━▶──" in shown
        screen_until(session, "grad of  sqrt (aten.sqrt.default) at")  # (the details follow)
        tmux("send-keys", "-t", session, "g")
        screen_until(session, "▶ sqrt  (sqrt [3])")
        tmux("send-keys", "-t", session, "g")
        screen_until(session, "▶ sqrt_grad  (SqrtBackward0 [3])")
        tmux("send-keys", "-t", session, "p")
        screen_until(session, "step 5/8 · backward: sum_grad")
        tmux("send-keys", "-t", session, "f")
        screen_until(session, "step 6/8 · backward: sqrt_grad")
        tmux("send-keys", "-t", session, "q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)

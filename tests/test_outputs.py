"""Where graphscope writes: -o and --svg onto links, devices, pipes, odd names, inputs.

A regular file is replaced atomically and keeps its mode; a link is written through; a device
or a pipe is written into, never replaced; what cannot be written is one sentence, exit 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from graphscope import ir

from .conftest import or_gate_graph
from .test_bad_inputs import assert_refused, run


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "g.json"
    ir.save(or_gate_graph(), path)
    return path


def test_a_link_is_written_through(saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "out.json"
    real.write_text("old")
    link = tmp_path / "out.json"
    link.symlink_to(real)
    code, _, err = run(capsys, "trace", str(saved), "-o", str(link))
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert json.loads(real.read_text())["format"] == "graphscope.ir"
    dangling = tmp_path / "new.json"
    dangling.symlink_to(tmp_path / "real" / "made.json")
    code, _, err = run(capsys, "trace", str(saved), "-o", str(dangling))
    assert code == 0, err
    assert dangling.is_symlink() and (tmp_path / "real" / "made.json").is_file()


def test_a_rewritten_output_keeps_its_mode(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.json"
    out.write_text("old")
    out.chmod(0o600)
    code, _, err = run(capsys, "trace", str(saved), "-o", str(out))
    assert code == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["format"] == "graphscope.ir"


def test_a_pipe_is_written_into_and_one_nothing_reads_is_refused(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = run(capsys, "trace", str(saved), "-o", str(fifo))
    assert "is a pipe that nothing is reading" in assert_refused(code, err, fifo)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    try:
        while not received and reader.is_alive():  # until the reader has opened its end
            code, _, err = run(capsys, "trace", str(saved), "-o", str(fifo))
            if code == 0:
                break
    finally:
        if reader.is_alive() and not received:
            with open(fifo, "wb"):  # let a reader still waiting go
                pass
        reader.join(10)
    assert code == 0, err
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a pipe, not replaced by a file
    assert json.loads(received[0])["format"] == "graphscope.ir"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root makes device nodes")
def test_a_device_is_written_into_not_replaced(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As root, -o /dev/null replaced /dev/null with a regular file (tried on a copy of it)."""
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    code, _, err = run(capsys, "trace", str(saved), "-o", str(null))
    assert code == 0, err
    assert stat.S_ISCHR(null.stat().st_mode)


def test_odd_output_names(saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "trace", str(saved), "-o", "")  # was "Device or resource busy"
    assert code == 2 and "Invalid value for '-o' / '--output': an empty path" in err, err
    longest = tmp_path / ("n" * 250 + ".json")  # 255 bytes, the most a name may have
    code, _, err = run(capsys, "trace", str(saved), "-o", str(longest))
    assert code == 0, err
    assert ir.load(longest) == ir.load(saved)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["g.json", longest.name])
    folder = tmp_path / "folder"
    folder.mkdir()
    code, _, err = run(capsys, "trace", str(saved), "-o", str(folder))
    assert "it is a directory" in assert_refused(code, err, folder)


def test_an_output_that_is_an_input_is_refused(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = saved.read_bytes()
    link = tmp_path / "link.json"
    link.symlink_to(saved)
    model = tmp_path / "model.py"
    model.write_text("raise SystemExit('imported')\n")
    saved_model = tmp_path / "saved"
    saved_model.mkdir()
    (saved_model / "saved_model.pb").write_bytes(b"")
    cases = [
        (["trace", str(model), "--fw", "torch", "-o", str(model)], model, "-o"),
        (["trace", str(saved), "--svg", str(link)], link, "--svg"),
        (["render", str(saved), "-o", str(saved)], saved, "-o"),
        (["diff", str(saved), str(model), "--svg", str(tmp_path / "." / "model.py")], model, "--svg"),
        (["export", str(link), "--to", "dot", "-o", str(saved)], saved, "-o"),
        (["step", str(model), "--fw", "torch", "--svg", str(model)], model, "--svg"),
        (["trace", str(saved_model), "-o", str(saved_model / "saved_model.pb")], saved_model, "-o"),
    ]
    for args, path, option in cases:
        code, _, err = run(capsys, *args)
        sentence = assert_refused(code, err, path)
        assert sentence.endswith(f"is an input of this command: {option} would write over it"), args
    assert saved.read_bytes() == before and model.read_text().startswith("raise")
    code, _, err = run(
        capsys, "trace", str(saved), "-o", str(tmp_path / "x.json"), "--svg", str(tmp_path / "x.json")
    )
    assert assert_refused(code, err, tmp_path / "x.json").endswith("is given to both -o and --svg")
    code, _, err = run(capsys, "trace", str(saved_model), "-o", str(saved_model / "graph.json"))
    assert "is an input" not in err  # a new file beside a SavedModel's own is not one of them


SLOW_WRITE = """
import os, sys, time
from graphscope.cli import main
real = os.replace
def slow(src, dst):  # the temporary file is written: wait before renaming it
    print("written", flush=True)
    time.sleep(60)
    real(src, dst)
os.replace = slow
sys.exit(main(sys.argv[1:]))
"""


def _stopped(args: list[str], code: str | None, wait_for: Callable[[], bool], signum: int) -> tuple[int, str]:
    import subprocess
    import sys
    import time

    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "graphscope", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not wait_for() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_signal_during_a_write_leaves_no_temporary_file(saved: Path, tmp_path: Path, signame: str) -> None:
    import signal

    out = tmp_path / "out" / "graph.json"
    out.parent.mkdir()
    code, err = _stopped(
        ["trace", str(saved), "-o", str(out)],
        SLOW_WRITE,
        lambda: bool(list(out.parent.glob(".graph.json.*.tmp"))),
        getattr(signal, signame),
    )
    assert code == 128 + getattr(signal, signame), err
    assert err == f"graphscope: stopped by {signame}\n"
    assert list(out.parent.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/bin/sh"), reason="the stand-in dot is a shell script")
def test_a_signal_while_drawing_ends_dot(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    import time

    pid_file = tmp_path / "dot.pid"
    fake_dot = tmp_path / "dot"
    # written under another name and renamed: the test signals as soon as the file exists, and
    # `echo $$ > file` makes it before it writes the number (an empty read, once in CI)
    fake_dot.write_text(f"#!/bin/sh\necho $$ > {pid_file}.tmp\nmv {pid_file}.tmp {pid_file}\nexec sleep 60\n")
    fake_dot.chmod(0o755)
    monkeypatch.setenv("GRAPHSCOPE_DOT", str(fake_dot))
    out = tmp_path / "g.svg"
    code, err = _stopped(["render", str(saved), "-o", str(out)], None, pid_file.exists, signal.SIGTERM)
    pid = int(pid_file.read_text())
    try:
        assert code == 128 + signal.SIGTERM and err == "graphscope: stopped by SIGTERM\n", err
        for _ in range(100):  # reaped by graphscope, it is gone
            os.kill(pid, 0)
            time.sleep(0.05)
        pytest.fail("dot was left running")
    except ProcessLookupError:
        pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # whatever happened, the stand-in does not outlive the test
    assert not out.exists() and list(tmp_path.glob(".g.svg.*")) == []


@pytest.mark.skipif(not os.path.exists("/bin/sh"), reason="the stand-in dot is a shell script")
def test_a_failed_drawing_leaves_the_json_output_as_it_was(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_dot = tmp_path / "dot"
    failing_dot.write_text("#!/bin/sh\necho 'Error: syntax error in line 1' >&2\nexit 1\n")
    failing_dot.chmod(0o755)
    monkeypatch.setenv("GRAPHSCOPE_DOT", str(failing_dot))
    out, svg = tmp_path / "precious.json", tmp_path / "out.svg"
    out.write_text("an output the user already had\n")
    for command in (["trace", str(saved)], ["render", str(saved)]):
        args = (
            [*command, "-o", str(out), "--svg", str(svg)]
            if command[0] == "trace"
            else [*command, "-o", str(svg)]
        )
        code, _, err = run(capsys, *args)
        assert (
            code == 1
            and err
            == "graphscope: error: Graphviz failed to lay out the graph: Error: syntax error in line 1\n"
        )
    assert out.read_text() == "an output the user already had\n" and not svg.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dot", "g.json", "precious.json"]

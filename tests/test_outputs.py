"""Where graphscope writes: -o and --svg onto links, devices, pipes, odd names, inputs.

A regular file is replaced atomically and keeps its mode; a link is written through; a device
or a pipe is written into, never replaced; what cannot be written is one sentence, exit 1.
"""

from __future__ import annotations

import json
import os
import stat
import threading
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

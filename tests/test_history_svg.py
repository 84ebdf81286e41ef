"""`graphscope watch --svg`: the history plot (loss and gradient norm per step, log scale, the
first non-finite step marked), drawn without any plotting library.

Set GRAPHSCOPE_UPDATE_GOLDENS=1 to rewrite the goldens, then look at them (rsvg-convert to PNG)
before committing.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from graphscope.rendering import history_svg
from tests.conftest import assert_golden

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "history"
NS = "{http://www.w3.org/2000/svg}"


def diverge() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((ROOT / "tests" / "data" / "diverge_torch.history.json").read_text())
    return doc


def mixed() -> list[dict[str, Any]]:
    """A loss that goes below zero (so a linear scale) with one NaN; a gradient norm that stays
    positive (log scale) and turns infinite for good at step 40."""
    return [
        {
            "step": i,
            "loss": "nan" if i == 30 else -1.0 + 0.1 * i,
            "grad_norm": 0.5 * i if i < 40 else "inf",
            "nonfinite": int(i == 30 or i >= 40),
        }
        for i in range(1, 51)
    ]


def panels(svg: str) -> list[list[ET.Element]]:
    """The elements of each chart, split at the chart titles (bold text with a tspan)."""
    root = ET.fromstring(svg)
    out: list[list[ET.Element]] = []
    for el in root:
        if el.tag == f"{NS}text" and el.find(f"{NS}tspan") is not None:
            out.append([])
        if out:
            out[-1].append(el)
    return out


def test_diverge_golden() -> None:
    doc = diverge()
    svg = history_svg.history_svg(
        doc["history"], first_nonfinite_step=doc["first_nonfinite_step"], title="watch: diverge_torch"
    )
    assert_golden(GOLDEN / "diverge_torch.svg", svg)


def test_mixed_golden() -> None:
    svg = history_svg.history_svg(mixed(), first_nonfinite_step=30, title="mixed")
    assert_golden(GOLDEN / "mixed.svg", svg)


def test_diverge_is_a_log_scale_with_the_inf_step_crossed_and_marked() -> None:
    doc = diverge()
    history = doc["history"]
    svg = history_svg.history_svg(history, first_nonfinite_step=13)
    loss, grad = panels(svg)
    titles = ["".join(p[0].itertext()) for p in (loss, grad)]
    assert titles == ["losslog scale", "global gradient normlog scale"]
    # twelve finite losses are points; the thirteenth (inf) is a cross with its word
    assert sum(el.tag == f"{NS}circle" for el in loss) == 12
    assert sum(el.tag == f"{NS}path" for el in loss) == 1
    assert [el.text for el in loss if el.tag == f"{NS}text" and el.get("fill") == history_svg.BAD_COLOR] == [
        "inf"
    ]
    assert sum(el.tag == f"{NS}circle" for el in grad) == 13  # the gradient norm was still finite
    # log scale: the points' heights are linear in log10(loss)
    ys = [float(el.get("cy") or 0) for el in loss if el.tag == f"{NS}circle"]
    logs = [math.log10(row["loss"]) for row in history[:12]]
    slope = (ys[-1] - ys[0]) / (logs[-1] - logs[0])
    for y, lg in zip(ys, logs, strict=True):
        assert y == pytest.approx(ys[0] + slope * (lg - logs[0]), abs=0.02)
    # the dashed marker is at step 13's x, the last point of the gradient chart
    marker = next(el for el in ET.fromstring(svg) if el.get("stroke-dasharray"))
    last_x = [el.get("cx") for el in grad if el.tag == f"{NS}circle"][-1]
    assert marker.get("x1") == marker.get("x2") == last_x
    assert "step 13: first non-finite" in svg and "first non-finite value at step 13" in svg


def test_a_run_of_infinities_is_labelled_once_and_a_negative_loss_is_linear() -> None:
    svg = history_svg.history_svg(mixed(), first_nonfinite_step=30)
    loss, grad = panels(svg)
    assert "".join(loss[0].itertext()) == "loss"  # values below 0: no log scale
    assert sum(el.tag == f"{NS}path" for el in grad) == 11  # steps 40..50
    words = [
        el.text
        for el in grad
        if el.tag == f"{NS}text" and el.get("fill") == history_svg.BAD_COLOR and not el.get("font-weight")
    ]
    assert words == ["inf"]
    # the line breaks at the NaN: two runs in the loss chart
    assert sum(el.tag == f"{NS}polyline" for el in loss) == 2


def test_no_history_and_no_finite_value_draw_without_failing() -> None:
    for history in ([], [{"step": 1, "loss": "nan", "grad_norm": "nan", "nonfinite": 3}]):
        svg = history_svg.history_svg(history, first_nonfinite_step=1 if history else None)
        ET.fromstring(svg)
        assert "no finite value" in svg
    assert "no NaN or Inf" in history_svg.history_svg([{"step": 1, "loss": 2.0, "grad_norm": 1.0}])


def test_the_title_is_escaped() -> None:
    svg = history_svg.history_svg([], title="<a & b>")
    assert "&lt;a &amp; b&gt;" in svg
    ET.fromstring(svg)


@pytest.mark.torch
def test_watch_svg_writes_the_plot_of_its_own_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    from graphscope.cli import main

    monkeypatch.chdir(ROOT)
    out = tmp_path / "history.svg"
    args = ["watch", "examples/diverge_torch.py", "--fw", "torch"]
    assert main([*args, "--steps", "100", "--json", "--svg", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    step = doc["first_nonfinite_step"]
    assert step is not None
    assert out.read_text() == history_svg.history_svg(
        doc["history"], first_nonfinite_step=step, title="watch: diverge_torch"
    )
    assert f"step {step}: first non-finite" in out.read_text()
    # a folder is refused in one sentence, exit 1
    assert main([*args, "--steps", "2", "--svg", str(tmp_path)]) == 1
    assert re.fullmatch(r"graphscope: error: cannot write \S+: it is a directory\n", capsys.readouterr().err)


def test_a_short_log_span_has_ticks_between_the_decades() -> None:
    # a loss from 4.2 down to 3 (a tenth of a decade): ticks at 3, 4 and 5, not only 1 and 10
    history = [{"step": i, "loss": 4.2 - 0.04 * i, "grad_norm": 1.2 + 0.8 / i} for i in range(1, 31)]
    loss, grad = panels(history_svg.history_svg(history))
    labels = [el.text for el in loss if el.tag == f"{NS}text" and el.get("text-anchor") == "end"]
    assert labels == ["3", "4", "5"]
    labels = [el.text for el in grad if el.tag == f"{NS}text" and el.get("text-anchor") == "end"]
    assert labels == ["1", "1.5", "2"]

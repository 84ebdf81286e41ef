"""A mask's deliberate -inf is not the first non-finite value, TensorFlow side: the `Const` -inf
under `tf.where(visible, scores, -inf)` and the `SelectV2` carrying it are skipped by `step` and
`step --train`; a fully masked row's NaN is named at the `Softmax`, its origin the mask."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from graphscope import loader, stepping
from graphscope.cli import main

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.tf
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = "examples/causal_mask_tf.py"


def stats(rec: stepping.Record | None) -> dict[str, Any]:
    assert rec is not None and rec.summary is not None
    return rec.summary


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def scores_mask(keep: list[list[bool]]) -> object:
    """The example's mask, by TensorFlow itself: 0 where visible, -inf elsewhere."""
    t = len(keep[0])
    causal = tf.linalg.band_part(tf.ones([t, t], tf.bool), -1, 0)
    visible = tf.logical_and(causal[None], tf.constant(keep)[:, None, :])
    return tf.where(visible, 0.0, -math.inf)


def test_a_tf_where_mask_is_skipped_and_said_so() -> None:
    steps = stepping.step_target(loader.load_target(Path(EXAMPLE), fw="tf"))
    assert steps.first_nonfinite is None
    masked = [r for r in steps if not r.finite]
    assert [r.op for r in masked] == ["Const", "SelectV2"]
    mask = scores_mask([[True] * 5, [True, True, True, False, False]])
    assert stats(masked[1])["neginf"] == int(tf.reduce_sum(tf.cast(mask == -math.inf, tf.int32))) == 23
    # a Const has no line: the mask's is that of the op that reads it
    assert steps.masked() == {
        "values": 24,
        "nodes": 2,
        "sign": "-inf",
        "first": {"node": "SelectV2/e", "op": "Const", "source": {"file": EXAMPLE, "line": 32}},
    }


def test_a_fully_masked_row_is_nan_at_the_softmax_from_the_tf_mask(
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = loader.load_target(Path(EXAMPLE), fw="tf", entry="left_padded")
    steps = stepping.step_target(found)
    bad = steps.first_nonfinite
    assert bad is not None and bad.op == "Softmax" and bad.born is False
    nan = tf.math.is_nan(tf.nn.softmax(scores_mask([[True] * 5, [False, False, True, True, True]]), -1))
    assert stats(bad)["nan"] == int(tf.reduce_sum(tf.cast(nan, tf.int32))) == 10
    origin = steps.origin(bad)
    assert origin is not None and origin["node"] == "SelectV2/e" and origin["kind"] == "const"
    assert origin["source"] == {"file": EXAMPLE, "line": 32} and origin["chain"] == ["SelectV2/e", "SelectV2"]
    # the model's own output holds the NaN too
    assert bool(tf.reduce_any(tf.math.is_nan(found.model(*tuple(found.example_inputs or ())))))
    assert main(["step", EXAMPLE, "--fw", "tf", "--entry", "left_padded", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["first_nonfinite"]["node"] == "Softmax"
    assert doc["first_nonfinite"]["origin"]["mask"] is True


def test_step_train_tf_skips_the_mask(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["step", EXAMPLE, "--fw", "tf", "--train", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["first_nonfinite"] is None
    assert doc["masked"]["first"]["node"] == "SelectV2/e"
    assert [s["op"] for s in doc["steps"] if s["summary"] and s["summary"]["neginf"]] == ["Const", "SelectV2"]

"""A mask's deliberate -inf is not the first non-finite value (issues 18/19, trust on real models):
`step`, `step --train`, `--until nonfinite` and the TUI skip the -inf an attention mask is made of
while softmax absorbs it, say what they skipped, and still name a NaN it becomes, an infinity
reaching the output, a log(0) and a NaN weight (PyTorch; the TensorFlow side is in
test_step_masks_tf.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from graphscope import loader, stepping
from graphscope.cli import main

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = "examples/causal_mask_torch.py"


def stats(rec: stepping.Record | None) -> dict[str, Any]:
    assert rec is not None and rec.summary is not None
    return rec.summary


@pytest.fixture(autouse=True)
def _at_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def step(entry: str | None = None) -> stepping.Steps:
    return stepping.step_target(loader.load_target(Path(EXAMPLE), fw="torch", entry=entry))


def mask_of(keep: list[list[bool]]) -> Any:
    """Where the example's mask puts -inf: after each query, and on the padded keys (torch's own)."""
    t = len(keep[0])
    causal = torch.full((t, t), -math.inf).triu(1)
    scores = torch.zeros(len(keep), t, t) + causal
    return scores.masked_fill(~torch.tensor(keep)[:, None, :], -math.inf)


def test_a_causal_mask_is_skipped_and_said_so() -> None:
    steps = step()
    assert steps.first_nonfinite is None
    assert steps.until("nonfinite").records == steps.records  # --until nonfinite runs to the end
    # the summaries stay true: the -inf counts are torch's own
    masked = {r.node: r for r in steps if not r.finite}
    assert list(masked) == ["full", "triu", "add", "masked_fill"]
    expected = mask_of([[True] * 5, [True, True, True, False, False]])
    assert stats(masked["masked_fill"])["neginf"] == int((expected == -math.inf).sum()) == 23
    assert stats(masked["full"])["neginf"] == 25 and stats(masked["triu"])["neginf"] == 10
    doc = steps.as_dict()
    assert doc["first_nonfinite"] is None
    assert doc["masked"] == {
        "values": 25 + 10 + 20 + 23,
        "nodes": 4,
        "sign": "-inf",
        "first": {"node": "full", "op": "aten.full.default", "source": {"file": EXAMPLE, "line": 35}},
    }


def test_the_step_text_says_what_it_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["step", EXAMPLE, "--fw", "torch", "--until", "nonfinite"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "No NaN or Inf in 32 steps apart from a mask's -inf. 78 values in 4 nodes hold the -inf of a "
        f"mask (first: full at {EXAMPLE}:35); not counted." in out
    )


def test_a_fully_masked_row_is_nan_at_the_softmax_from_the_mask(capsys: pytest.CaptureFixture[str]) -> None:
    steps = step("left_padded")
    bad = steps.first_nonfinite
    assert bad is not None and bad.node == "_softmax" and bad.born is False
    keep = [[True] * 5, [False, False, True, True, True]]
    nan = int(torch.softmax(mask_of(keep), dim=-1).isnan().sum())  # torch's own softmax
    assert stats(bad)["nan"] == nan == 10
    origin = steps.origin(bad)
    assert origin == {
        "node": "full",
        "kind": "op",
        "name": "full",
        "mask": True,
        "source": {"file": EXAMPLE, "line": 35},
        "chain": ["full", "triu", "add", "masked_fill"],
    }
    assert main(["step", EXAMPLE, "--fw", "torch", "--entry", "left_padded", "--until", "nonfinite"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        f"First non-finite value: _softmax (_softmax) at {EXAMPLE}:37, step 21: 10 nan of 50 values." in out
    )
    assert (
        f"Made here from the -inf of a mask (full at {EXAMPLE}:35, through triu, add, masked_fill): "
        "the mask's -inf became NaN." in out
    )


def test_log_of_the_masked_zeros_is_born_at_log_and_reaches_the_output() -> None:
    found = loader.load_target(Path(EXAMPLE), fw="torch", entry="log_weights")
    steps = stepping.step_target(found)
    bad = steps.first_nonfinite
    assert bad is not None and bad.op == "aten.log.default" and bad.born is True
    assert bad.source == {"file": EXAMPLE, "line": 39}
    with torch.no_grad():
        out = found.model(*tuple(found.example_inputs or ()))
    assert stats(bad)["neginf"] == int((out == -math.inf).sum()) == 23
    assert steps.as_dict()["first_nonfinite"]["node"] == "log"


MASKED_SCORES = """
import torch
class Scores(torch.nn.Module):
    def forward(self, x):
        scores = x @ x.transpose(-2, -1)
        return scores + torch.full((4, 4), float("-inf")).triu(1)
model = Scores()
example_inputs = (torch.ones(1, 4, 2),)
"""


def test_a_masks_inf_that_reaches_the_output_is_reported_with_the_mask_as_origin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scores.py"
    path.write_text(MASKED_SCORES)
    steps = stepping.step_target(loader.load_target(path, fw="torch"))
    bad = steps.first_nonfinite
    assert bad is not None and bad.node == "add" and bad.born is False
    origin = steps.origin(bad)
    assert origin is not None and origin["node"] == "full" and origin["mask"] is True
    assert origin["source"] == {"file": str(path), "line": 6} and origin["chain"] == ["full", "triu"]
    assert stats(bad)["neginf"] == 6  # torch's own: the strict upper triangle of 4 x 4
    assert main(["step", str(path), "--fw", "torch"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        f"Not born here: the -inf of a mask (full at {path}:6, through triu) reaches the output here." in out
    )


def test_step_train_skips_the_mask_and_still_finds_a_nan_made_from_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["step", EXAMPLE, "--fw", "torch", "--train", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["first_nonfinite"] is None
    assert doc["masked"]["first"]["node"] == "full" and doc["masked"]["sign"] == "-inf"
    found = loader.load_target(Path(EXAMPLE), fw="torch", entry="left_padded")
    found.example_targets, found.loss_fn = (torch.zeros(2, 5, 8),), lambda out, t: ((out - t) ** 2).mean()
    steps = stepping.step_train_target(found)
    bad = steps.first_nonfinite
    assert bad is not None and bad.node == "_softmax" and steps.phase_of(bad)["phase"] == "forward"
    assert steps.origin(bad)["node"] == "full"  # type: ignore[index]


@pytest.mark.anyio
async def test_the_tuis_f_and_c_pass_a_masks_inf() -> None:
    from graphscope.tui.app import GraphscopeApp

    steps = step()
    app = GraphscopeApp(steps.graph, steps=steps)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f")
        assert app.step_pos == 0  # "no NaN or Inf in this run"
        await pilot.press("c")
        assert app.step_pos == len(steps) - 1  # ran to the end, past full
    bad_steps = step("left_padded")
    app = GraphscopeApp(bad_steps.graph, steps=bad_steps)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f")
        assert bad_steps[app.step_pos].node == "_softmax"
        await pilot.press("home")


# -- real models: tiny transformers configs, random weights ----------------------------------


def _gpt2(attn: str) -> tuple[Any, tuple[Any, ...]]:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=2, n_head=2, n_embd=16, vocab_size=50, n_positions=32, use_cache=False
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    model.set_attn_implementation(attn)
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 6:] = 0
    return model, (torch.randint(0, 50, (2, 8)), mask)


def _llama(attn: str) -> tuple[Any, tuple[Any, ...]]:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        hidden_size=16,
        intermediate_size=32,
        vocab_size=50,
        max_position_embeddings=32,
        use_cache=False,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    model.set_attn_implementation(attn)
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 6:] = 0
    return model, (torch.randint(0, 50, (2, 8)), mask)


class _Logits(torch.nn.Module):  # type: ignore[name-defined]
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.m = model

    def forward(self, ids: Any, mask: Any) -> Any:
        return self.m(input_ids=ids, attention_mask=mask).logits


@pytest.mark.slow
@pytest.mark.parametrize("build", [_gpt2, _llama], ids=["gpt2", "llama"])
def test_healthy_transformers_report_no_first_nonfinite_value(build: Any) -> None:
    model, inputs = build("sdpa")
    steps = stepping.step(_Logits(model), inputs, fw="torch")
    # SDPA's mask path: where(mask, scalar_tensor(0), scalar_tensor(-inf)), once per call
    assert [r.op for r in steps if not r.finite][:2] == ["aten.scalar_tensor.default", "aten.where.self"]
    assert steps.first_nonfinite is None
    masked = steps.masked()
    assert masked is not None and masked["first"]["node"] == "scalar_tensor"
    assert masked["first"]["source"]["file"].endswith("transformers/integrations/sdpa_attention.py")
    from graphscope.stepping import torch_train

    train = torch_train.step_train(
        _Logits(model), inputs, name="lm", loss_fn=lambda out: (out.float() ** 2).mean()
    )
    assert train.first_nonfinite is None and train.masked() is not None


@pytest.mark.slow
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_a_nan_weight_after_the_mask_is_still_the_culprit(attn: str) -> None:
    model, inputs = _gpt2(attn)
    with torch.no_grad():
        model.transformer.h[0].mlp.c_fc.weight[3, 5] = float("nan")
    wrapped = _Logits(model)
    steps = stepping.step(wrapped, inputs, fw="torch")
    bad = steps.first_nonfinite
    assert bad is not None and bad.op == "aten.addmm.default" and bad.born is False
    assert steps.origin(bad) == {
        "node": "m_transformer_h_0_mlp_c_fc_weight",
        "kind": "param",
        "name": "m.transformer.h.0.mlp.c_fc.weight",
    }
    # the first record holding a NaN, and transformers' own output is NaN too
    assert bad is next(r for r in steps if any(s and s["nan"] for s in r.outputs))
    with torch.no_grad():
        assert bool(wrapped(*inputs).isnan().any())


@pytest.mark.onnx
def test_the_onnx_stepper_shares_the_rule(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import numpy as np

    counted = {}
    for entry in (None, "left_padded"):
        found = loader.load_target(Path(EXAMPLE), fw="torch", entry=entry)
        path = tmp_path / f"{entry}.onnx"
        torch.onnx.export(
            found.model, found.example_inputs, str(path), dynamo=False, input_names=["x", "keep"]
        )
        onnx = loader.load_target(path)
        onnx.example_inputs = tuple(t.numpy() for t in found.example_inputs)
        steps = stepping.step_target(onnx, keep={"/Softmax"})
        masked = steps.masked()
        assert masked is not None and masked["first"]["op"] == "Constant"  # the exporter folded full(-inf)
        counted[entry] = steps.first_nonfinite
        if entry == "left_padded":  # onnxruntime's own softmax holds the NaN the summary counts
            assert int(np.isnan(steps.values["/Softmax"][0]).sum()) == stats(counted[entry])["nan"] == 10
            origin = steps.origin(counted[entry])
            assert origin is not None and origin["mask"] is True and origin["kind"] == "const"
    assert counted[None] is None
    assert counted["left_padded"] is not None and counted["left_padded"].op == "Softmax"


@pytest.mark.parametrize("method", ["export", "fx"])
def test_the_static_captures_skip_the_mask_too(method: str) -> None:
    found = loader.load_target(Path(EXAMPLE), fw="torch")
    steps = stepping.step_target(found, method=method)
    assert steps.first_nonfinite is None
    masked = steps.masked()
    assert masked is not None and masked["nodes"] == 4 and masked["values"] == 78
    assert masked["first"]["source"] == {"file": EXAMPLE, "line": 35}


TORCH_ENCODER = """
import torch
from torch import nn
torch.manual_seed(0)
class Causal(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2)
    def forward(self, x):
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.enc(x, mask=mask, is_causal=True)
model = Causal().eval()
example_inputs = (torch.randn(2, 6, 16),)
example_targets = (torch.zeros(2, 6, 16),)
def loss_fn(out, target):
    return ((out - target) ** 2).mean()
"""


def test_torchs_own_square_subsequent_mask_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "encoder.py"
    path.write_text(TORCH_ENCODER)
    found = loader.load_target(path, fw="torch")
    for steps in (stepping.step_target(found), stepping.step_train_target(found)):
        assert steps.first_nonfinite is None
        masked = steps.masked()
        assert masked is not None and masked["first"]["node"] == "full"
        assert masked["first"]["source"] == {"file": str(path), "line": 11}  # the user's call
    with torch.no_grad():
        assert bool(found.model(*found.example_inputs).isfinite().all())  # torch's own output

"""`step --train` on real models nobody here wrote: GPT-2 from a transformers config (dropout on,
AdamW with state), a keras.applications MobileNetV2 (BatchNorm in training mode, Adam with
slots). Every gradient and every updated weight equals the framework's own step, and the
model, the optimizer and the random generator are left as they were found."""

from __future__ import annotations

import copy

import pytest

import graphscope

pytestmark = pytest.mark.slow


@pytest.mark.torch
def test_gpt2s_training_step_is_torchs_own_and_leaves_everything_as_found() -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=96, n_positions=32)
    model = transformers.GPT2LMHeadModel(config).train()  # dropout on: the step must use the same masks
    ids, labels = torch.randint(0, 96, (2, 12)), torch.randint(0, 96, (2, 12))

    def loss_fn(out: object, labels: object) -> object:
        return torch.nn.functional.cross_entropy(out.logits.reshape(-1, 96), labels.reshape(-1))  # type: ignore[attr-defined]

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn(model(ids), labels).backward()  # one step taken: AdamW has moments and a step count
    optimizer.step()
    optimizer.zero_grad(set_to_none=False)  # zeroed gradients the user keeps
    reference, reference_opt = copy.deepcopy((model, optimizer))
    params = {k: v.clone() for k, v in model.state_dict().items()}
    moments = copy.deepcopy(optimizer.state_dict())

    torch.manual_seed(1)
    steps = graphscope.step(model, (ids,), targets=(labels,), loss_fn=loss_fn, optimizer=optimizer)
    after_step = torch.rand(3)
    torch.manual_seed(1)
    reference_opt.zero_grad(set_to_none=True)
    loss = loss_fn(reference(ids), labels)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in reference.named_parameters()}
    reference_opt.step()
    assert torch.equal(after_step, torch.rand(3)), "the step moved the random generator"

    g = steps.graph
    [loss_rec] = [r for r in steps if r.op == "aten.nll_loss_forward.default"]
    assert loss_rec.summary is not None and loss_rec.summary["mean"] == pytest.approx(float(loss), rel=1e-6)
    accumulated = {
        g.node(g.node(r.node)["grad_of"])["name"]: r.summary for r in steps if r.op == "AccumulateGrad"
    }
    # GPT-2 ties lm_head to the token embedding: one parameter, one gradient
    assert set(accumulated) == set(grads)
    for name, grad in grads.items():
        got = accumulated[name]
        assert got is not None and got["shape"] == list(grad.shape), name
        for stat, want in (("min", grad.min()), ("max", grad.max()), ("mean", grad.mean())):
            assert got[stat] == pytest.approx(float(want), rel=1e-4, abs=1e-7), (name, stat)
    updates = {g.node(r.node)["name"]: r.summary for r in steps if g.node(r.node)["phase"] == "optimizer"}
    for name, param in reference.named_parameters():
        got = updates[name]
        assert got is not None
        assert got["mean"] == pytest.approx(float(param.mean()), rel=1e-5, abs=1e-8), name
        assert got["max"] == pytest.approx(float(param.max()), rel=1e-5, abs=1e-8), name
    # the user's model and optimizer as they were: weights, moments, step count, zeroed gradients
    assert all(torch.equal(params[k], v) for k, v in model.state_dict().items())
    state = optimizer.state_dict()
    for key, entry in moments["state"].items():
        assert all(torch.equal(entry[k], state["state"][key][k]) for k in entry)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())


@pytest.mark.tf
def test_a_keras_applications_training_step_is_kerass_own() -> None:
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    import numpy as np

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=5, classifier_activation=None
    )
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    y = np.array([1, 3])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    with tf.GradientTape() as tape:
        first = loss_fn(y, model(x, training=True))
    optimizer.apply(tape.gradient(first, model.trainable_variables), model.trainable_variables)
    before = [v.numpy().copy() for v in [*model.variables, *optimizer.variables]]

    steps = graphscope.step(model, (x,), targets=(y,), loss_fn=loss_fn, optimizer=optimizer)
    after = [v.numpy() for v in [*model.variables, *optimizer.variables]]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))

    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply(grads, model.trainable_variables)
    g = steps.graph
    assert steps.first_nonfinite is None
    updates = {g.node(r.node)["name"]: r.summary for r in steps if g.node(r.node)["phase"] == "optimizer"}
    assert set(updates) == {v.path for v in model.trainable_variables}
    for v in model.trainable_variables:
        got = updates[v.path]
        assert got is not None
        assert got["mean"] == pytest.approx(float(tf.reduce_mean(v)), rel=1e-4, abs=1e-7), v.path
        assert got["max"] == pytest.approx(float(tf.reduce_max(v)), rel=1e-4, abs=1e-7), v.path

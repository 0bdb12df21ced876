"""Stepping a CNN module by module: Stepper(loss, by="module") and `tgcv step MODEL`."""
import numpy as np
import pytest
from click.testing import CliRunner

import tinygrad_cv as tg
from tinygrad_cv import data
from tinygrad_cv.cli import cli
from tinygrad_cv.models import registry
from tinygrad_cv.nn.functional.loss import cross_entropy
from tinygrad_cv.step import ModuleBackward, ModuleForward, ModuleStepper, SeedStep, Stepper
from viz.format import describe, describe_module, describe_ops, update_ratio

LENET_SCOPES = ["features.0", "features.1", "features.2", "features.3", "features.4", "features.5", "flatten",
                "classifier.0", "classifier.1", "classifier.2", "classifier.3", "classifier.4", "loss"]
LENET_SHAPES = [(1, 6, 28, 28), (1, 6, 28, 28), (1, 6, 14, 14), (1, 16, 10, 10), (1, 16, 10, 10), (1, 16, 5, 5),
                (1, 400), (1, 120), (1, 120), (1, 84), (1, 84), (1, 10), ()]


def lenet_loss(index=0):
    images, labels = data.mnist("test")
    net = registry.get("lenet5").build()
    x = tg.Tensor(data.normalize(data.to_float(images[index:index + 1])), requires_grad=True)
    x.label = "x"
    loss = cross_entropy(net(x), labels[index:index + 1])
    loss.label = "loss"
    return net, x, loss, int(labels[index])


@pytest.fixture(scope="module")
def lenet():
    net, x, loss, target = lenet_loss()
    return net, x, loss, target, Stepper(loss, by="module", model=net)


def test_lenet_module_steps_and_shapes(lenet):
    net, x, loss, target, s = lenet
    assert isinstance(s, ModuleStepper)
    fwd = [e for e in s.events if isinstance(e, ModuleForward)]
    bwd = [e for e in s.events if isinstance(e, ModuleBackward)]
    assert len(s.events) == 27 and len(fwd) == 13 and len(bwd) == 13     # 12 modules + the loss, each way, + seed
    assert isinstance(s.events[13], SeedStep)
    assert [e.scope for e in fwd] == LENET_SCOPES
    assert [tuple(np.shape(e.result)) for e in fwd] == LENET_SHAPES
    assert [e.scope for e in bwd] == LENET_SCOPES[::-1]
    assert [e.number for e in fwd] == list(range(1, 14)) and {e.total for e in fwd} == {13}
    assert type(fwd[0].module).__name__ == "Conv2d" and fwd[-1].module is None
    # a module step opens into the primitive events; they are the op-level Stepper's own
    assert sum(len(e.ops) for e in fwd) == 13 and sum(len(e.ops) for e in bwd) == 23
    assert [o.index for e in fwd for o in e.ops] == list(range(13))
    assert fwd[0].ops[0].op.name == "conv2d" and len(bwd[-1].ops) == 3      # conv: to x, weight and bias


def test_module_gradients_equal_the_engines_own(lenet):
    net, x, loss, target, s = lenet
    # the engine's own backward on a fresh copy of the same graph
    net2, x2, loss2, _ = lenet_loss()
    for (n, p), (_, p2) in zip(net.named_parameters(), net2.named_parameters()):
        p2.data = p.data.copy()
    net2.zero_grad() if hasattr(net2, "zero_grad") else None
    loss2 = cross_entropy(net2(x2), np.array([target]))
    loss2.backward()
    bwd = {e.scope: e for e in s.events if isinstance(e, ModuleBackward)}
    first = bwd["features.0"]
    assert len(first.downstream) == 1 and first.downstream[0][0] is x
    np.testing.assert_allclose(first.downstream[0][1], x2.grad, rtol=1e-5, atol=1e-8)
    # the parameters' gradients are the ones backward() writes
    grads2 = dict(net2.named_parameters())
    for e in bwd.values():
        for name, p, g in e.param_grads:
            np.testing.assert_allclose(g, grads2[name].grad, rtol=1e-5, atol=1e-8)
    names = [n for e in bwd.values() for n, *_ in e.param_grads]
    assert sorted(names) == sorted(n for n, _ in net.named_parameters())
    # upstream at a module's output = downstream of the module after it
    assert np.allclose(bwd["features.4"].upstream, bwd["features.5"].downstream[0][1])
    assert np.shape(bwd["features.5"].upstream) == (1, 16, 5, 5)
    assert np.shape(bwd["features.5"].downstream[0][1]) == (1, 16, 10, 10)
    # the loss's downstream: softmax - onehot
    logits = np.asarray(bwd["loss"].ops[0].child.parents[0].data, dtype=np.float64)
    p = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    p[0, target] -= 1
    np.testing.assert_allclose(bwd["loss"].downstream[0][1], p, rtol=1e-4, atol=1e-6)


def test_dead_relu_fraction_and_statistics(lenet):
    net, x, loss, target, s = lenet
    fwd = {e.scope: e for e in s.events if isinstance(e, ModuleForward)}
    conv_out = np.asarray(fwd["features.0"].result)
    expected = float((conv_out <= 0).mean())                # a ReLU is dead where its input is not positive
    assert fwd["features.1"].dead_fraction == pytest.approx(expected)
    assert fwd["features.0"].dead_fraction is None
    text = describe(fwd["features.1"])
    assert "(1, 6, 28, 28)" in text and f"dead ReLUs: {expected:.1%}" in text
    a = np.asarray(fwd["features.1"].result, dtype=np.float64)
    assert f"std {a.std():.4g}" in text and f"max {a.max():.4g}" in text
    loss_text = describe(fwd["loss"])
    assert "softmax 0:" in loss_text and f"target {target}:" in loss_text


def test_backward_words_and_update_ratio(lenet):
    net, x, loss, target, s = lenet
    bwd = {e.scope: e for e in s.events if isinstance(e, ModuleBackward)}
    assert "routes the gradient to each window's maximum" in describe(bwd["features.2"])
    assert "where the input was positive" in describe(bwd["features.1"])
    conv = describe_module(bwd["features.3"], lr=0.1)
    assert "flipped filter" in conv and "at lr 0.1" in conv and "1e-3" in conv
    name, p, g = bwd["features.3"].param_grads[0]
    ratio = 0.01 * np.linalg.norm(g) / np.linalg.norm(p.data)
    assert update_ratio(g, p.data) == pytest.approx(ratio)
    assert f"{name}.grad norm {np.linalg.norm(g):.4g}" in describe(bwd["features.3"])
    assert f"= {ratio:.4g} at lr 0.01" in describe(bwd["features.3"])
    assert "n11 -> x" in describe_ops(bwd["features.0"]) or "-> x" in describe_ops(bwd["features.0"])


def test_state_and_op_stepper_unchanged(lenet):
    net, x, loss, target, s = lenet
    st = s.state(3)                                    # after three module steps: the first pool's output known
    assert st.event.scope == "features.2" and not st.grads
    assert id(st.event.output) in st.values
    end = s.state(len(s.events))
    assert id(x) in end.grads
    op = Stepper(loss)
    assert type(op) is Stepper and len(op.events) == 37
    with pytest.raises(ValueError, match="by="):
        Stepper(loss, by="layer")


def test_cli_lenet_transcript():
    r = CliRunner().invoke(cli, ["step", "lenet5", "--digit", "7", "--no-interactive"])
    assert r.exit_code == 0, r.output
    out = r.output
    images, labels = data.mnist("test")
    index = int((labels == 7).nonzero()[0][0])
    assert out.splitlines()[0].startswith(f"lenet5: held-out digit #{index} (a 7), input (1, 1, 28, 28)")
    heads = [l for l in out.splitlines() if l.startswith(("forward ", "backward "))]
    assert len(heads) == 13 + 1 + 13
    assert "forward 1/13  features.0 (Conv2d)    (1, 1, 28, 28) -> (1, 6, 28, 28)" in out
    assert "softmax 0:" in out and "target 7:" in out and "dead ReLUs:" in out
    assert "backward 13/13  features.0 (Conv2d)" in out and "update/weight lr*|dW|/|W|" in out


def test_cli_model_errors():
    r = CliRunner().invoke(cli, ["step", "lenet5", "--digit", "3", "--index", "2", "--no-interactive"])
    assert r.exit_code != 0 and "not both" in r.output
    r = CliRunner().invoke(cli, ["step", "lenet5", "--expr", "x*y", "--no-interactive"])
    assert r.exit_code != 0 and "not both" in r.output
    r = CliRunner().invoke(cli, ["step", "nosuch", "--no-interactive"])
    assert r.exit_code == 2 and "unknown model 'nosuch'" in r.output
    r = CliRunner().invoke(cli, ["step", "--no-interactive"])
    assert r.exit_code != 0 and "MODEL" in r.output


def test_cli_model_prompt_and_ops():
    r = CliRunner().invoke(cli, ["step", "lenet5", "--index", "1"], input="\n\no\nb\nfoo\nq\n")
    assert r.exit_code == 0, r.output
    out = r.output
    assert "keys: Enter next, b back, o open" in out and "step 2/27 >" in out
    assert "      | forward 2/13  n12 = relu(n11)" in out          # the ReLU step opened into its op
    assert "back to:\nforward 1/13  features.0 (Conv2d)" in out and "unknown command 'foo'" in out
    r = CliRunner().invoke(cli, ["step", "lenet5", "--ops", "--no-interactive"])
    assert r.exit_code == 0 and out.count("      | ") < r.output.count("      | ")
    assert "      | backward 23/23" in r.output

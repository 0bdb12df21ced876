"""Forward hooks and forward pre-hooks on nn.Module, with PyTorch's semantics."""
import numpy as np
import pytest

import tinygrad_cv as tg
from tinygrad_cv import Tensor, nn
from tinygrad_cv.nn.module import RemovableHandle


def linear(w, b):
    """A Linear layer with the given weight and bias (no random numbers in the expected values)."""
    fc = nn.Linear(len(w[0]), len(w))
    fc.weight.data[...] = np.array(w, np.float32)
    fc.bias.data[...] = np.array(b, np.float32)
    return fc


def x_of(*rows):
    return Tensor(np.array(rows, np.float32))


def test_forward_hook_sees_the_inputs_and_the_output():
    fc = linear([[1, 2], [3, 4]], [0.5, -1])
    seen = []
    handle = fc.register_forward_hook(lambda m, inputs, out: seen.append((m, inputs, out)))
    x = x_of([1, 1])
    y = fc(x)
    assert isinstance(handle, RemovableHandle)
    (m, inputs, out), = seen
    assert m is fc and isinstance(inputs, tuple) and len(inputs) == 1 and inputs[0] is x
    assert out is y and y.data.tolist() == [[3.5, 6.0]]


def test_forward_hook_replaces_the_output_and_gradients_flow_through_it():
    fc = linear([[1, 2]], [0])
    fc.register_forward_hook(lambda m, inputs, out: out * 10)
    fc.register_forward_hook(lambda m, inputs, out: None)          # None keeps the (replaced) output
    y = fc(x_of([1, 3]))
    assert y.data.tolist() == [[70.0]]
    y.sum().backward()
    assert fc.weight.grad.tolist() == [[10.0, 30.0]]               # d(10 w.x)/dw = 10 x


def test_pre_hook_replaces_the_inputs_with_a_tuple_or_a_single_value():
    fc = linear([[1, 1]], [0])
    got = []
    fc.register_forward_pre_hook(lambda m, inputs: (inputs[0] * 2,))   # a tuple
    fc.register_forward_pre_hook(lambda m, inputs: inputs[0] + 1)      # a single value: wrapped to (v,)
    fc.register_forward_pre_hook(lambda m, inputs: got.append(inputs))
    fc.register_forward_hook(lambda m, inputs, out: got.append(inputs))
    y = fc(x_of([1, 2]))
    assert y.data.tolist() == [[(2 + 1) + (4 + 1)]]                    # (x * 2 + 1) summed
    pre_seen, post_seen = got
    assert isinstance(pre_seen, tuple) and pre_seen[0].data.tolist() == [[3.0, 5.0]]
    assert post_seen[0].data.tolist() == [[3.0, 5.0]]                  # the forward hook sees the new inputs


def test_hooks_run_in_registration_order_and_prepend_goes_first():
    fc = linear([[1]], [0])
    order = []
    fc.register_forward_hook(lambda m, i, o: order.append("a") or o + 1)
    fc.register_forward_hook(lambda m, i, o: order.append("b") or o * 3)
    fc.register_forward_hook(lambda m, i, o: order.append("first"), prepend=True)
    fc.register_forward_pre_hook(lambda m, i: order.append("pre1"))
    fc.register_forward_pre_hook(lambda m, i: order.append("pre2"))
    y = fc(x_of([2]))
    assert order == ["pre1", "pre2", "first", "a", "b"]
    assert y.data.tolist() == [[(2 + 1) * 3]]                          # a then b, not b then a


def test_remove_and_the_handle_as_a_context_manager():
    fc = linear([[1]], [0])
    calls = []
    h = fc.register_forward_hook(lambda m, i, o: calls.append("post") or o * 100)
    p = fc.register_forward_pre_hook(lambda m, i: calls.append("pre"))
    assert fc(x_of([1])).data.tolist() == [[100.0]]
    h.remove()
    p.remove()
    h.remove()                                                         # twice is harmless
    assert fc(x_of([1])).data.tolist() == [[1.0]] and calls == ["pre", "post"]
    with fc.register_forward_hook(lambda m, i, o: o - 5) as handle:
        assert isinstance(handle, RemovableHandle)
        assert fc(x_of([1])).data.tolist() == [[-4.0]]
    assert fc(x_of([1])).data.tolist() == [[1.0]]
    assert not fc._forward_hooks and not fc._forward_pre_hooks


def test_a_hook_registered_or_removed_inside_a_hook_takes_effect_at_the_next_call():
    fc = linear([[1]], [0])
    log = []
    handles = {}

    def a(m, i, o):
        log.append("a")
        if "b" not in handles:
            handles["b"] = m.register_forward_hook(lambda m, i, o: log.append("b"))
            handles["c"].remove()

    fc.register_forward_hook(a)
    handles["c"] = fc.register_forward_hook(lambda m, i, o: log.append("c"))
    fc(x_of([1]))
    assert log == ["a", "c"]        # the hooks of a call are fixed when it starts (as in PyTorch)
    log.clear()
    fc(x_of([1]))
    assert log == ["a", "b"]


def test_hooks_fire_on_every_call_of_a_shared_module_inside_a_model():
    fc = linear([[2]], [0])
    model = nn.Sequential(fc, nn.ReLU(), fc)
    outs = []
    fc.register_forward_hook(lambda m, i, o: outs.append(float(o.data[0, 0])))
    y = model(x_of([3]))
    assert outs == [6.0, 12.0] and y.data.tolist() == [[12.0]]


def test_hooks_run_inside_the_modules_name_scope():
    model = nn.Sequential(nn.Identity(), linear([[1]], [0]))
    made = []
    model[1].register_forward_hook(lambda m, i, o: made.append(o * 1.0) or made[-1])
    y = model(x_of([1]))
    assert made[0].scope == "1" and y.scope == "1"


def test_hooks_with_kwargs():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    m = Scale()
    seen = []
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"factor": kwargs["factor"] + 1}), with_kwargs=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: seen.append(dict(kwargs)), with_kwargs=True)
    assert m(x_of([2]), factor=3.0).data.tolist() == [[8.0]]
    assert seen == [{"factor": 4.0}]
    m.register_forward_pre_hook(lambda mod, args, kwargs: "bad", with_kwargs=True)
    with pytest.raises(RuntimeError, match="inputs, kwargs"):
        m(x_of([2]), factor=3.0)


def test_bad_hooks_are_refused():
    with pytest.raises(TypeError, match="callable"):
        nn.ReLU().register_forward_hook("not a function")

    class NoInit(nn.Module):
        def __init__(self):
            pass

        def forward(self, x):
            return x

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        NoInit().register_forward_hook(lambda m, i, o: None)


def test_an_error_in_a_hook_propagates():
    fc = linear([[1]], [0])

    def boom(m, i, o):
        raise ValueError("hook says no")

    fc.register_forward_hook(boom)
    with pytest.raises(ValueError, match="hook says no"):
        fc(x_of([1]))


def test_same_semantics_as_torch_hooks():
    torch = pytest.importorskip("torch")
    w1 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], np.float32)
    b1 = np.array([0.1, -0.2], np.float32)
    w2 = np.array([[1.0, -2.0]], np.float32)
    b2 = np.array([0.3], np.float32)
    x = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 3.0]], np.float32)

    ours = nn.Sequential(linear(w1, b1), nn.ReLU(), linear(w2, b2))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    with torch.no_grad():
        theirs[0].weight.copy_(torch.from_numpy(w1))
        theirs[0].bias.copy_(torch.from_numpy(b1))
        theirs[2].weight.copy_(torch.from_numpy(w2))
        theirs[2].bias.copy_(torch.from_numpy(b2))

    def install(model, numpy_of):
        log = []
        handles = []
        for name, m in model.named_modules():
            handles.append(m.register_forward_pre_hook(
                lambda mod, inp, name=name: log.append(("pre", name, len(inp), numpy_of(inp[0]).round(4).tolist()))))
            handles.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: log.append(("post", name, numpy_of(out).round(4).tolist()))))
        handles.append(model[0].register_forward_pre_hook(lambda mod, inp: inp[0] * 2))    # single value
        handles.append(model[1].register_forward_hook(lambda mod, inp, out: out + 1, prepend=True))
        handles.append(model[2].register_forward_hook(lambda mod, inp, out: (out * -1,)[0]))
        return log, handles

    log_ours, h_ours = install(ours, lambda t: np.asarray(t.data))
    log_theirs, h_theirs = install(theirs, lambda t: t.detach().numpy())
    y_ours = ours(Tensor(x))
    y_theirs = theirs(torch.from_numpy(x))
    np.testing.assert_allclose(y_ours.data, y_theirs.detach().numpy(), rtol=1e-6)
    assert log_ours == log_theirs
    assert [e[:2] for e in log_ours] == [("pre", ""), ("pre", "0"), ("post", "0"), ("pre", "1"), ("post", "1"),
                                         ("pre", "2"), ("post", "2"), ("post", "")]
    for h in h_ours + h_theirs:
        h.remove()
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-6)

"""A PyTorch user's first-week programs, each written once and run under torch and tinygrad_cv.

Every ``program(torch, ...)`` below is plain PyTorch code; the test passes it ``torch`` and then
``tinygrad_cv`` under that same name and asserts the same loss trajectory. Starting values
come from NumPy (the two libraries' random generators differ), so both runs start alike.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_cv

torch = pytest.importorskip("torch")


def _run_both(program, *args, rtol=2e-4, atol=1e-5):
    theirs = np.asarray(program(torch, *args), dtype=np.float64)
    ours = np.asarray(program(tinygrad_cv, *args), dtype=np.float64)
    assert ours.shape == theirs.shape
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)
    return ours


# --- 1. a cubic fit to sin(x): raw tensors and autograd (PyTorch's "Tensors and autograd") --------

def cubic_autograd(torch):
    x = torch.linspace(-math.pi, math.pi, 200, dtype=torch.float)
    y = torch.sin(x)
    a = torch.tensor(0.1, requires_grad=True)
    b = torch.tensor(-0.2, requires_grad=True)
    c = torch.tensor(0.05, requires_grad=True)
    d = torch.tensor(0.01, requires_grad=True)
    losses, lr = [], 1e-5
    for t in range(60):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            a -= lr * a.grad
            b -= lr * b.grad
            c -= lr * c.grad
            d -= lr * d.grad
            a.grad = None
            b.grad = None
            c.grad = None
            d.grad = None
    losses.append(float(d.detach()))
    return losses


def test_cubic_fit_with_raw_tensors_and_autograd():
    losses = _run_both(cubic_autograd)
    assert losses[59] < losses[0]


# --- 2. the same with a user-defined autograd.Function (PyTorch's LegendrePolynomial3) ------------

def legendre_function(torch):
    class LegendrePolynomial3(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input ** 2 - 1)

    x = torch.linspace(-math.pi, math.pi, 200)
    y = torch.sin(x)
    a = torch.full((), 0.0, requires_grad=True)
    b = torch.full((), -1.0, requires_grad=True)
    c = torch.full((), 0.0, requires_grad=True)
    d = torch.full((), 0.3, requires_grad=True)
    losses, lr = [], 5e-6
    for t in range(60):
        P3 = LegendrePolynomial3.apply
        y_pred = a + b * P3(c + d * x)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            for p in (a, b, c, d):
                p -= lr * p.grad
                p.grad = None
    return losses


def test_cubic_fit_with_a_user_defined_function():
    losses = _run_both(legendre_function)
    assert losses[-1] < losses[0]


# --- 3. nn.Sequential + MSELoss, manual updates (PyTorch's "nn module") -------------------------

def _poly_features(torch):
    x = torch.linspace(-math.pi, math.pi, 200)
    y = torch.sin(x)
    p = torch.tensor([1, 2, 3])
    return x.unsqueeze(-1).pow(p), y


def sequential_mse(torch, w0):
    xx, y = _poly_features(torch)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(w0))
        model[0].bias.fill_(0.1)
    loss_fn = torch.nn.MSELoss(reduction="sum")
    losses, lr = [], 1e-6
    for t in range(60):
        y_pred = model(xx)
        loss = loss_fn(y_pred, y)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= lr * param.grad
    linear_layer = model[0]
    return losses + linear_layer.weight[:, 2].tolist() + [linear_layer.bias.item(), len(model)]


W0 = np.array([[0.5, -0.1, -0.05]], dtype=np.float32)


def test_nn_sequential_with_mse_loss():
    losses = _run_both(sequential_mse, W0)
    assert losses[59] < losses[0]


# --- 4. with an optimizer (PyTorch's "optim") ------------------------------------------------------

def with_optimizer(torch, w0, name):
    xx, y = _poly_features(torch)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(w0))
        model[0].bias.zero_()
    loss_fn = torch.nn.MSELoss(reduction="sum")
    if name == "rmsprop":
        optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    elif name == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-6, momentum=0.9)
    losses = []
    for t in range(80):
        loss = loss_fn(model(xx), y)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


@pytest.mark.parametrize("name", ["rmsprop", "adam", "sgd"])
def test_training_with_an_optimizer(name):
    losses = _run_both(with_optimizer, W0, name, rtol=5e-4)
    assert losses[-1] < losses[0]


# --- 5. a custom nn.Module (PyTorch's "Defining new nn.Modules") ---------------------------------

def custom_module(torch):
    class Polynomial3(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Parameter(torch.tensor(0.2))
            self.b = torch.nn.Parameter(torch.tensor(0.5))
            self.c = torch.nn.Parameter(torch.tensor(-0.1))
            self.d = torch.nn.Parameter(torch.tensor(0.0))

        def forward(self, x):
            return self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3

        def string(self):
            return f"y = {self.a.item()} + {self.b.item()} x + {self.c.item()} x^2 + {self.d.item()} x^3"

    x = torch.linspace(-math.pi, math.pi, 200)
    y = torch.sin(x)
    model = Polynomial3()
    criterion = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-6)
    losses = []
    for t in range(80):
        loss = criterion(model(x), y)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.string().startswith("y = ")
    return losses + [p.item() for p in model.parameters()] + [len(list(model.named_parameters()))]


def test_a_custom_module():
    _run_both(custom_module)


# --- 6. a dynamic net that reuses a parameter a varying number of times ------------------------

def dynamic_net(torch):
    class DynamicNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Parameter(torch.tensor(0.1))
            self.b = torch.nn.Parameter(torch.tensor(0.6))
            self.c = torch.nn.Parameter(torch.tensor(-0.05))
            self.d = torch.nn.Parameter(torch.tensor(-0.02))
            self.e = torch.nn.Parameter(torch.tensor(0.001))

        def forward(self, x, extra):
            y = self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3
            for exp in range(4, 4 + extra):        # the same parameter, used 0, 1 or 2 times
                y = y + self.e * x ** exp
            return y

    x = torch.linspace(-math.pi, math.pi, 200)
    y = torch.sin(x)
    model = DynamicNet()
    criterion = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-8, momentum=0.9)
    losses = []
    for t in range(60):
        loss = criterion(model(x, t % 3), y)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses + [model.e.item(), model.e.grad.item()]


def test_a_dynamic_net_reusing_a_parameter():
    _run_both(dynamic_net)


# --- 7. an MNIST CNN training loop, with the accuracy line ------------------------------------------

def mnist_cnn(torch, images, labels, init):
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
            self.pool = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(4, 8, 3)
            self.fc = nn.Linear(8 * 6 * 6, 10)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = torch.flatten(x, 1)
            return self.fc(x)

    model = Net()
    with torch.no_grad():
        for (name, p), w in zip(model.named_parameters(), init):
            p.copy_(torch.tensor(w))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    x_all = torch.tensor(images).float().unsqueeze(1) / 255.0
    y_all = torch.tensor(labels).long()
    out = []
    for epoch in range(2):
        model.train()
        for i in range(0, len(x_all), 32):
            x, y = x_all[i:i + 32], y_all[i:i + 32]
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            optimizer.step()
            out.append(loss.item())
        model.eval()
        with torch.no_grad():
            pred = model(x_all).argmax(dim=1)
            acc = (pred == y_all).float().mean()
            out.append(acc.item())
            out.append((pred == y_all).sum().item())
    return out


def test_an_mnist_cnn_loop():
    images, labels = tinygrad_cv.data.mnist("train")
    images, labels = images[:192], labels[:192]
    rng = np.random.default_rng(0)
    shapes = [(4, 1, 3, 3), (4,), (8, 4, 3, 3), (8,), (10, 288), (10,)]
    init = [(rng.standard_normal(s) * (0.3 if len(s) > 1 else 0.01)).astype(np.float32) for s in shapes]
    init[4] *= 0.2
    out = _run_both(mnist_cnn, images, labels, init, rtol=2e-3, atol=2e-4)
    assert out[-2] > 0.3                      # accuracy after two epochs on 192 digits


# --- 8. tensor idioms: masks, argmax(dim), max(dim).values, softmax(dim) ---------------------------

def idioms(torch, data):
    x = torch.tensor(data)
    out = []
    mask = x > 0
    out += [mask.sum().item(), x[mask].sum().item(), (x * mask).mean().item(), mask.float().mean().item()]
    out += x.argmax(dim=1).tolist() + x.max(dim=1).values.tolist() + x.min(0).indices.tolist()
    values, indices = x.max(1, keepdim=True)
    out += [values.shape[1], indices.sum().item()]
    p = x.softmax(dim=1)
    out += p.sum(dim=1).tolist() + p[0].tolist() + torch.log_softmax(x, dim=-1)[1].tolist()
    out += [x.masked_fill(x < 0, 0.0).sum().item(), torch.where(x > 0, x, torch.zeros_like(x)).sum().item()]
    out += [x.clamp(min=-0.5, max=0.5).sum().item(), x.abs().sqrt().sum().item(), (2 ** x).mean().item()]
    out += [x.std().item(), x.var(dim=0).sum().item(), x.norm().item(), x.mean(dim=0, keepdim=True).shape[0]]
    out += [torch.cat([x, x], dim=1).shape[1], torch.stack([x, x]).shape[0], x.t().shape[0], x.numel(),
            x.size(1), x.dim(), x.view(-1).shape[0], x.unsqueeze(0).squeeze(0).shape[0],
            x.permute(1, 0).contiguous().shape[0], x[0].unsqueeze(1).expand(-1, 3).sum().item()]
    out += [float((x == x.clone()).all()), float((x != 0).any()), (x >= 0).long().sum().item(),
            x.cumsum(dim=1)[0, -1].item(), x[:2].prod().item(), torch.arange(5).sum().item(),
            torch.eye(3).trace().item() if hasattr(torch.eye(3), "trace") else 3.0,
            torch.ones(2, 3).sum().item(), torch.full((2, 2), 7).sum().item(), torch.zeros(4).dtype == torch.float32]
    # an integer tensor stays integer; a Python float meeting it gives float32
    i = torch.tensor([1, 2, 3])
    out += [i.dtype == torch.int64, (i * 0.5).dtype == torch.float32, (i / 2).dtype == torch.float32,
            (i + 1).dtype == torch.long]
    # a gradient through masks and max(dim)
    w = torch.tensor(data, requires_grad=True)
    loss = (w.softmax(dim=1) * mask).sum() + w.max(dim=0).values.sum() + w.masked_fill(mask, 0.0).pow(2).sum()
    loss.backward()
    out += w.grad.flatten().tolist() + [w.grad.norm().item(), w.grad.numpy().sum()]
    return out


def test_tensor_idioms():
    data = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    _run_both(idioms, data)


# --- 9. float64 all the way, and the regularised loss to the last digit ----------------------------

def float64_program(torch, x, w):
    X = torch.tensor(x, dtype=torch.float64)
    W = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 2, 1, 1])
    out = []
    for _ in range(5):
        scores = X @ W
        loss = torch.nn.functional.cross_entropy(scores, y) + 0.1 * (W * W).sum() + 1e-3 * W.abs().sum()
        out.append(loss.item())
        loss.backward()
        with torch.no_grad():
            W -= 0.5 * W.grad
            W.grad.zero_()
    v = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    u = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    (v @ u).backward()                                 # 1-D @ 1-D forward and backward
    (torch.tensor(x[:3, :3], dtype=torch.float64) @ v).sum().backward()    # matrix @ vector
    out += v.grad.tolist() + u.grad.tolist()
    out += [scores.dtype == torch.float64, W.grad.dtype == torch.float64, (W * 0.1).dtype == torch.float64,
            (torch.tensor([1.0], dtype=torch.float64) * 0.1).item()]
    return out


def test_float64_stays_float64():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 3)) * 0.1
    theirs, ours = float64_program(torch, x, w), float64_program(tinygrad_cv, x, w)
    np.testing.assert_allclose(np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64),
                               rtol=1e-12, atol=1e-14)
    assert ours[-1] == 0.1

"""python benchmarks/train_lenet.py [--epochs N] [--backend numba]: one LeNet-5 training epoch,
ours vs torch, in one process.

The same LeNet-5 (ReLU, max pool; torch gets our initial weights key for key), batch 64,
SGD lr 0.05 momentum 0.9, one epoch over the 8,000 shipped digits in the same shuffled
order. Epochs alternate between the two engines; the medians of the epoch times are
compared. torch runs with torch.set_num_threads(2). Prints seconds per epoch, the ratio
ours / torch and the process's memory high-water mark (ru_maxrss).

OPENBLAS_NUM_THREADS defaults to 1 here (set it to override): the numba kernels already
use every core, and a second thread pool in NumPy's BLAS (the Linear layers' small
matmuls) only fights with it; on a loaded 2-core machine that costs tens of ms per step.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")          # before NumPy loads BLAS

import numpy as np  # noqa: E402

import tinygrad_cv as tg  # noqa: E402
from tinygrad_cv import models, optim  # noqa: E402
from tinygrad_cv.nn import functional as F  # noqa: E402
from tinygrad_cv.train import load_mnist, prepare  # noqa: E402

BATCH, LR, MOMENTUM = 64, 0.05, 0.9


def batches(images: np.ndarray, labels: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    order = np.random.default_rng(seed).permutation(len(labels))
    return [(images[order[i:i + BATCH]], labels[order[i:i + BATCH]]) for i in range(0, len(labels), BATCH)]


def ours_epoch(model, opt, data) -> float:
    start = time.perf_counter()
    for xb, yb in data:
        loss = F.cross_entropy(model(tg.Tensor(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def torch_model(torch, state):
    nn = torch.nn
    net = nn.Module()
    net.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
    net.classifier = nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                   nn.Linear(84, 10))
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
    net.forward = lambda x: net.classifier(net.features(x).flatten(1))
    return net


def torch_epoch(torch, model, opt, data) -> float:
    start = time.perf_counter()
    for xb, yb in data:
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(xb)), torch.from_numpy(yb))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5, help="timed epochs per engine (after one warm-up epoch)")
    ap.add_argument("--backend", default="numba", choices=["numpy", "numba", "cuda"])
    args = ap.parse_args()

    tg.set_backend(args.backend)
    images, labels = load_mnist("train")
    images = prepare(images)
    tg.manual_seed(0)
    ours = models.lenet5()
    ours_opt = optim.SGD(ours.parameters(), lr=LR, momentum=MOMENTUM)
    try:
        import torch
    except ImportError:
        torch = None
        print("torch is not installed: timing ours only")
    if torch is not None:
        torch.set_num_threads(2)
        theirs = torch_model(torch, ours.state_dict())
        theirs_opt = torch.optim.SGD(theirs.parameters(), lr=LR, momentum=MOMENTUM)

    t_ours, t_torch = [], []
    for epoch in range(args.epochs + 1):                 # epoch 0 warms up (JIT compile, caches)
        data = batches(images, labels, epoch)
        t = ours_epoch(ours, ours_opt, data)
        if epoch:
            t_ours.append(t)
        if torch is not None:
            t = torch_epoch(torch, theirs, theirs_opt, data)
            if epoch:
                t_torch.append(t)
    ours_s = statistics.median(t_ours)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"LeNet-5, batch {BATCH}, SGD, {len(labels)} digits, median of {args.epochs} epochs")
    print(f"ours ({args.backend}): {ours_s:.3f} s/epoch  ({1000 * ours_s / len(data):.2f} ms/step)")
    if torch is not None:
        torch_s = statistics.median(t_torch)
        print(f"torch {torch.__version__} (2 threads): {torch_s:.3f} s/epoch  "
              f"({1000 * torch_s / len(data):.2f} ms/step)")
        print(f"ratio ours/torch: {ours_s / torch_s:.2f}x")
    print(f"memory high-water mark (ru_maxrss): {rss_mb:.0f} MiB")


if __name__ == "__main__":
    main()

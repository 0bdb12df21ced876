"""python benchmarks/train_lenet.py [--quick]: one LeNet-5 training epoch (8,000 digits, batch 64,
SGD lr 0.05 momentum 0.9), tinygrad_cv vs torch, each alone in its own process.

The same LeNet-5 (torch gets our initial weights key for key) and the same shuffled batches;
processes alternate between the engines, every process warms up one epoch and times the next;
medians over all rounds. Both engines get the same thread count (all cores by default) and
the default environment. Also prints each process's memory high-water mark (ru_maxrss).
Same as ``tgcv bench --only lenet5``.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinygrad_cv.bench import main  # noqa: E402

if __name__ == "__main__":
    main(["--only", "lenet5", *sys.argv[1:]])

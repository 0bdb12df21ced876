"""python benchmarks/train_resnet18.py [--quick]: one ResNet-18 training step at CIFAR size
(batch 16, 3x32x32, 10 classes, SGD lr 0.01 momentum 0.9), tinygrad_cv vs torch, each alone in
its own process, same weights and batches, medians. Same as ``tgcv bench --only resnet18``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinygrad_cv.bench import main  # noqa: E402

if __name__ == "__main__":
    main(["--only", "resnet18", *sys.argv[1:]])

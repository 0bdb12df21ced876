"""Data for tinygrad_cv: the IDX reader, MNIST (shipped subset or full), CIFAR-10 (binary), loaders,
augmentation and synthetic 2-D sets. Importing this package reads no files."""

from .datasets import CIFAR10, MNIST, cifar10, read_cifar10_batch
from .idx import DataError, read_idx, write_idx
from .loader import DataLoader, Dataset, TensorDataset
from .mnist import mnist
from .synthetic import blobs, circles, moons, spiral, xor
from .transforms import (
    MNIST_MEAN,
    MNIST_STD,
    Compose,
    Normalize,
    RandomCrop,
    RandomFlip,
    RandomShift,
    ToFloat,
    normalize,
    random_crop,
    random_flip,
    random_shift,
    shift,
    to_float,
)

__all__ = [
    "DataError", "read_idx", "write_idx",
    "mnist", "MNIST", "CIFAR10", "cifar10", "read_cifar10_batch",
    "DataLoader", "Dataset", "TensorDataset",
    "MNIST_MEAN", "MNIST_STD", "to_float", "normalize", "shift", "random_shift", "random_crop",
    "random_flip", "Compose", "ToFloat", "Normalize", "RandomShift", "RandomCrop", "RandomFlip",
    "spiral", "moons", "circles", "xor", "blobs",
]

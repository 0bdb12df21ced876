"""python benchmarks/run_all.py [--quick] [--markdown]: every fair benchmark (kernels, LeNet-5 epoch,
ResNet-18 step) in one table; ``--markdown`` prints the README's Benchmarks table. The scalar
engine against micrograd is separate: python benchmarks/scalar_engine.py."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinygrad_cv.bench import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])

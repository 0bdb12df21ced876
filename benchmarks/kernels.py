"""python benchmarks/kernels.py [--quick]: conv and pool kernels, numba vs NumPy vs torch."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinygrad_cv.bench import main  # noqa: E402

if __name__ == "__main__":
    main()

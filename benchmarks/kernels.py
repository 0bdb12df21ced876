"""python benchmarks/kernels.py [--quick]: conv and pool kernels, forward + backward, each engine
(tinygrad_cv's numba backend, torch, the NumPy reference) alone in its own process, alternating
rounds, medians. Same as ``tgcv bench --only kernels`` (see tinygrad_cv/bench.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tinygrad_cv.bench import main  # noqa: E402

if __name__ == "__main__":
    main(["--only", "kernels", *sys.argv[1:]])

"""Kernel compilation is announced once, with its duration, and a progress bar's clock restarts."""
from __future__ import annotations

import numpy as np
from numba import njit

from tinygrad_cv.backends.compiling import CompileWatch


def test_watch_announces_a_compile_and_its_end():
    lines: list[str] = []
    watch = CompileWatch(lines.append)

    @njit(cache=False)
    def fresh(a):  # a new function: numba must compile it
        return a.sum() * 2

    assert not watch.checkpoint() and lines == []
    fresh(np.ones(3))
    assert lines == ["compiling kernels (first run only) ..."]
    assert watch.checkpoint()
    assert lines[1].startswith("... done in ") and lines[1].endswith(" s")
    fresh(np.ones(4))                       # already compiled: nothing to say
    assert not watch.checkpoint() and len(lines) == 2


def test_wrapped_bar_restarts_its_clock_after_compiling():
    class Bar:
        def __init__(self):
            self.calls = []

        def update(self, n):
            self.calls.append(("update", n))

        def unpause(self):
            self.calls.append(("unpause",))

        def set_postfix_str(self, s, refresh=True):
            self.calls.append(("postfix", s))

    lines: list[str] = []
    watch = CompileWatch(lines.append)
    bar = Bar()
    wrapped = watch.wrap(bar)

    @njit(cache=False)
    def fresh2(a):
        return a.max()

    fresh2(np.ones(2))
    wrapped.update(1)
    wrapped.set_postfix_str("loss 1.0")
    wrapped.update(1)
    assert bar.calls == [("unpause",), ("update", 1), ("postfix", "loss 1.0"), ("update", 1)]
    none = watch.wrap(None)                 # no bar (--quiet): updates still end the announcement
    none.update(1)
    none.set_postfix_str("x")
    none.close()

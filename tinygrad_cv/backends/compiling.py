"""Announce the kernels' one-time compilation: "compiling kernels (first run only) ..." then
"... done in 4.1 s", so a first run that pauses says why.

numba compiles a kernel the first time it is called with new argument types and keeps the
machine code on disk (``cache=True``); later runs load it in milliseconds. A CompileWatch
hears numba's "numba:compile" events (fired only for real compilations, never for cache
loads) and prints through ``log``:

    watch = CompileWatch(print)
    model(x)               # "compiling kernels (first run only) ..." as the first kernel compiles
    watch.checkpoint()     # "... done in 4.1 s" if anything compiled since the last checkpoint

``watch.wrap(bar)`` wraps a tqdm progress bar (or None): each ``update`` first calls
checkpoint(), and when compiling just finished it restarts the bar's clock, so the rate and
the ETA count only real steps. Creating a watch compiles and imports nothing but numba's
event module, and only when numba is already loaded by a backend.
"""
from __future__ import annotations

import sys
import threading
import time
import weakref
from typing import Any, Callable

_watches: "weakref.WeakSet[CompileWatch]" = weakref.WeakSet()
_installed = False
_lock = threading.Lock()
_depth = 0


def install() -> None:
    """Listen to numba's compile events (once; only if numba is loaded)."""
    global _installed
    if _installed or "numba" not in sys.modules:
        return
    from numba.core import event

    class _Listener(event.Listener):
        def on_start(self, ev: Any) -> None:
            global _depth
            _depth += 1
            if _depth == 1:
                for w in list(_watches):
                    w._started()

        def on_end(self, ev: Any) -> None:
            global _depth
            _depth = max(0, _depth - 1)
            if _depth == 0:
                for w in list(_watches):
                    w._ended()

    event.register("numba:compile", _Listener())
    _installed = True


class CompileWatch:
    """Say when numba compiles kernels, and for how long (see the module docstring)."""

    def __init__(self, log: Callable[[str], None] | None = None):
        self.log = print if log is None else log
        self.bar: Any = None
        self.first: float | None = None     # when the first compile since the last checkpoint began
        self.busy = 0.0                     # seconds spent compiling since then
        self._t0 = 0.0
        self.total = 0.0                    # seconds spent compiling, all told
        with _lock:
            install()
            _watches.add(self)

    def _say(self, text: str) -> None:
        if self.bar is not None and hasattr(self.bar, "external_write_mode"):
            with self.bar.external_write_mode():
                self.log(text)
        else:
            self.log(text)

    def _started(self) -> None:
        self._t0 = time.perf_counter()
        if self.first is None:
            self.first = self._t0
            self._say("compiling kernels (first run only) ...")

    def _ended(self) -> None:
        dt = time.perf_counter() - self._t0
        self.busy += dt
        self.total += dt

    def checkpoint(self) -> bool:
        """Print "... done in X s" if kernels compiled since the last checkpoint; True if so."""
        with _lock:
            install()              # numba may have been loaded since this watch was made
        if self.first is None:
            return False
        self._say(f"... done in {time.perf_counter() - self.first:.1f} s")
        self.first, self.busy = None, 0.0
        return True

    def wrap(self, bar: Any) -> "_WatchedBar":
        """A progress bar (or None) whose update() first calls checkpoint() and, after compiling,
        restarts the bar's clock so its ETA starts after the compile."""
        self.bar = bar
        return _WatchedBar(self, bar)


class _WatchedBar:
    def __init__(self, watch: CompileWatch, bar: Any):
        self._watch, self._bar = watch, bar

    def update(self, n: int = 1) -> None:
        if self._watch.checkpoint() and self._bar is not None:
            self._bar.unpause()     # tqdm: restart the timer, so the rate excludes the compile
        if self._bar is not None:
            self._bar.update(n)

    def __getattr__(self, name: str) -> Any:
        if self._bar is None:
            return lambda *a, **k: None
        return getattr(self._bar, name)

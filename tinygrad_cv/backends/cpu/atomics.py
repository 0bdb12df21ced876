"""The two spin-waits behind cpu/threads.py's hand-off, and the atomic loads and stores they use.

A worker thread that has just finished a job watches a flag for the next one for a short while
instead of going to sleep at once, and the caller watches the workers' "done" flags the same
way. Both watch in nogil machine code, so a watching thread never holds Python's GIL. numba
has no atomics of its own, so the flag is read with an LLVM ``load atomic ... acquire`` (a
plain load in a loop may legally be read once and hoisted out of it) and written with a
``store atomic ... release`` (a plain store may legally sink past the loop that follows it).
"""
from __future__ import annotations

from numba import config, njit, types
from numba.extending import intrinsic

if config.DISABLE_JIT:
    # numba's debugging mode runs every kernel as Python, where an intrinsic cannot run: plain
    # reads and writes, and threads.py then watches nothing (a watching thread would hold the GIL)
    def load_acquire(flags, i):
        """flags[i] (numba's JIT is off)."""
        return int(flags[i])

    def store_release(flags, i, value):
        """flags[i] = value (numba's JIT is off)."""
        flags[i] = value
else:
    @intrinsic
    def load_acquire(typingctx, flags, i):
        """flags[i] read with acquire ordering: a fresh read on every call, never hoisted."""
        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            return builder.load_atomic(builder.gep(ary.data, [args[1]]), "acquire", 8)
        return types.int64(flags, i), codegen

    @intrinsic
    def store_release(typingctx, flags, i, value):
        """flags[i] = value with release ordering: everything written before it is seen first."""
        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            builder.store_atomic(args[2], builder.gep(ary.data, [args[1]]), "release", 8)
            return context.get_dummy_value()
        return types.void(flags, i, value), codegen


@njit(nogil=True, cache=True)
def wait_change(flags, i, old, spins):
    """Watch flags[i] for up to ``spins`` reads; its new value, or ``old`` if it did not change."""
    for _ in range(spins):
        v = load_acquire(flags, i)
        if v != old:
            return v
    return old


@njit(nogil=True, cache=True)
def finish_and_watch(flags, done, seen, post, spins, grace):
    """A worker's step between two jobs, all without the GIL: announce job ``seen`` done
    (flags[done] = seen), watch flags[post] for the next job for up to ``spins`` reads, then
    keep reading for ``grace`` more reads, so that the caller, who posted the job while holding
    the GIL, has let go of it before this thread asks for it back. Returns the last value read."""
    store_release(flags, done, seen)
    v = seen
    for _ in range(spins):
        v = load_acquire(flags, post)
        if v != seen:
            break
    for _ in range(grace):
        v = load_acquire(flags, post)
    return v

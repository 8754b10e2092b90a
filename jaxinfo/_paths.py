"""The two paths of a kernel, and a ``vmap`` that keeps them apart.

What lives here: the route between a kernel's common path and its rare path
(:data:`COMMON_TOTALS`, :func:`in_common_range`), :func:`batched_as_rows`,
which makes ``jax.vmap`` of a kernel its batched call so that the route stays
one ``lax.cond``, and :func:`widened_twice` for kernels that read narrow
input (bfloat16) more than once. ``docs/design.md`` tells the whole story.

What does not: the kernels themselves (``_weights.py``, ``_softmax.py``) and
the rare path (``_range.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_batching import custom_vmap
from jax.custom_derivatives import SymbolicZero

Array = jax.Array


def route(pred, common: Callable, rare: Callable, *operands):
    """``lax.cond(pred, common, rare, *operands)``; a concrete ``pred`` picks in Python.

    Called eagerly, ``lax.cond`` traces its branches afresh and compiles them
    on every call (a tenth of a second each on CPU); with a concrete predicate
    the branch it would pick is called directly instead. Under ``jit``,
    ``vmap`` or a derivative the predicate is traced and this is ``lax.cond``,
    so compiled programs are unchanged.
    """
    if isinstance(pred, jax.core.Tracer):
        return lax.cond(pred, common, rare, *operands)
    return common(*operands) if bool(pred) else rare(*operands)


#: Row totals in this range take the common path: their logarithm is at most
#: ``log 2`` in size, so ``log T - S / T`` cancels no digits.
COMMON_TOTALS = (0.5, 2.0)


@functools.cache
def batched_as_rows(make: Callable[[int], Callable], axis: int) -> Callable:
    """``make(axis)``, a function reducing along ``axis``, whose ``vmap`` is its batched call.

    ``make(axis)`` takes arrays that share a shape and returns a tuple of
    arrays with ``axis`` kept (size one). Under ``jax.vmap`` the mapped axis is
    moved to the front and the same function is called on the whole batch,
    reducing along ``axis + 1``: a ``lax.cond`` inside then stays one
    ``cond`` on a scalar predicate, where ``vmap``'s own rule would turn it
    into a select that runs both branches. Nested maps recurse.
    """

    # jitted: called eagerly, custom_vmap would evaluate its body one primitive
    # at a time (a compile each); under an outer jit this is simply inlined
    compiled = jax.jit(make(axis))

    @custom_vmap
    def rows(*args):
        return compiled(*args)

    @rows.def_vmap
    def _vmap_rule(axis_size, in_batched, *args):
        args = [
            a if batched else jnp.broadcast_to(a, (axis_size, *a.shape))
            for a, batched in zip(args, in_batched, strict=True)
        ]
        out = batched_as_rows(make, axis + 1)(*args)
        return out, tuple(True for _ in out)

    return rows


def in_common_range(total: Array) -> Array:
    """Whether every row total lies in :data:`COMMON_TOTALS` (False for NaN)."""
    lo, hi = COMMON_TOTALS
    return jnp.all((total >= lo) & (total <= hi))


def widened_twice(p: Array, dtype) -> tuple[Array, Array]:
    """``p`` widened to ``dtype`` for two separate reads of the data.

    For narrow input (bfloat16) the second widening is taken behind an
    optimisation barrier: otherwise XLA shares one widened copy of the whole
    input, a full-size temporary, between the two reductions, where each loop
    can widen as it reads (1.8x faster on XLA:CPU).
    """
    if p.dtype == dtype:
        return p, p
    return p.astype(dtype), lax.optimization_barrier(p).astype(dtype)


def rows_kernel(make_rows: Callable[[int], Callable], rule: Callable) -> Callable:
    """``axis -> kernel``: the rows function of ``make_rows``, with a derivative rule.

    The kernel is ``make_rows(axis)`` under :func:`batched_as_rows`, so its
    ``vmap`` is its batched call, inside a ``custom_jvp`` whose tangents are
    ``rule(axis, primals, tangents, out)``: ``out`` the kernel's outputs (per
    row), ``tangents`` the inputs' tangents with None for a symbolic zero. The
    rule returns one tangent per output, so that it can be differentiated
    again; the ``custom_vmap`` inside is never differentiated.
    """

    @functools.cache
    def kernel(axis: int) -> Callable:
        rows = batched_as_rows(make_rows, axis)

        @jax.custom_jvp
        def measure(*args):
            return rows(*args)

        @functools.partial(measure.defjvp, symbolic_zeros=True)
        def _jvp(primals, tangents):
            out = measure(*primals)
            tangents = [None if isinstance(t, SymbolicZero) else t for t in tangents]
            return out, rule(axis, primals, tangents, out)

        return measure

    return kernel

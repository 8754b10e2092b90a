"""The ``x log y`` primitives, each with its derivative rule beside it.

What lives here: ``x log x`` and ``x log y`` (and ``x log(x / y)``, ``x *
log_y`` for a log-probability) with the conventions ``0 log 0 = 0`` and ``p
log 0 = -inf`` for ``p > 0``, whose values fuse into the surrounding
reduction and whose derivatives are finite wherever the value is; and the
small helpers of ``custom_jvp`` rules (symbolic-zero tangents, the
"is zero" of arithmetic that fuses).

What does not: row totals and scaling (``_range.py``), the measures' kernels
(``_weights.py``, ``_softmax.py``).

On speed: XLA:CPU fuses a chain of reductions and arithmetic (``max``, ``sum``,
``exp``, ``log``, ``+ - * /``, ``maximum``, ``sign``) into one loop over the
data, but not a comparison or a select (``jnp.where``) on a full-size array,
which it computes in a loop of its own and keeps in memory. So the values
below are computed with arithmetic guards (``1 - sign(x)`` for "is zero", a
``maximum`` for a floor), and the derivatives, which do need selects, are
given by ``custom_jvp`` rules.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

Array = jax.Array


def log_tiny(dtype) -> Array:
    """``log`` of the smallest normal number of ``dtype``: ``log 0`` made finite."""
    return jnp.asarray(np.log(jnp.finfo(dtype).tiny), dtype=dtype)


@jax.custom_jvp
def xlogx(x: Array) -> Array:
    """``x * log(x)`` with ``0 log 0 = 0``, finite first and second derivatives.

    The value floors the *logarithm* at ``log(tiny)`` (tiny: the smallest
    normal number), so ``x = 0`` gives ``0 * log(tiny) = 0`` exactly. The
    floor comes after the ``log`` because there it costs almost nothing: on
    XLA:CPU an extra operation between the load and the ``log`` slows the
    whole reduction by a quarter, a select (``where``) even takes it out of the
    fused loop and materialises a temporary array.

    The derivative, ``log(x) + 1``, is given explicitly with the argument of
    the ``log`` clamped at ``tiny``: at ``x = 0`` it is large, finite and points
    the right way (the true one is ``-inf``), and the second derivative is
    finite too.
    """
    return x * jnp.maximum(jnp.log(x), log_tiny(x.dtype))


@xlogx.defjvp
def _xlogx_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return xlogx(x), (clamped_log(x) + 1) * dx


def clamped_log(x: Array) -> Array:
    """``log(x)`` with ``x`` clamped below at the smallest normal number.

    The logarithm in the derivative of :func:`xlogx`: finite at 0
    (``log(tiny)``), so that ``0 * clamped_log(0) = 0``, with a zero derivative
    below ``tiny`` and a finite second derivative (the clamp is a select: the
    derivative rule of ``maximum`` would make that NaN at 0). A select is not
    fused into a reduction on XLA:CPU; in a value that is summed, prefer
    ``maximum(log(x), log(tiny))`` as :func:`xlogx` does.
    """
    tiny = jnp.finfo(x.dtype).tiny
    return jnp.log(jnp.where(x > tiny, x, tiny))


def tangent_of(t) -> Array | None:
    """A tangent of a ``custom_jvp`` rule, or None where it is a symbolic zero."""
    return None if isinstance(t, SymbolicZero) else t


def linear_in_tangents(out: Array, *terms) -> Array:
    """Sum of ``coefficient * tangent`` over the tangents that are not zero."""
    total = jnp.zeros_like(out)
    for coefficient, tangent in terms:
        tangent = tangent_of(tangent)
        if tangent is not None:
            total = total + coefficient * tangent
    return total


def one_where_zero(x: Array) -> Array:
    """1 where ``x = 0``, 0 where ``x > 0``: ``1 - sign(x)``, arithmetic that fuses."""
    return 1 - jnp.sign(x)


def below_normal(x: Array) -> Array:
    """``x < tiny``: zero or subnormal, which XLA:CPU flushes to zero in some operations."""
    return x < jnp.finfo(x.dtype).tiny


@jax.custom_jvp
def xlogy(x: Array, y: Array) -> Array:
    """``x * log(y)`` with ``0 log y = 0`` for every ``y >= 0``, for ``x >= 0``.

    ``x > 0, y = 0`` gives ``-inf`` (the true value) and ``x = 0, y = 0`` gives
    0: where ``x = 0`` the logarithm is taken of ``y + 1`` instead, which is
    finite. Arithmetic (``+ 1 - sign(x)``), not a select: it fuses into the
    surrounding reduction on every backend, where a select does not on XLA:CPU.

    The derivatives are given explicitly: the textbook ``log y`` and ``x / y``
    everywhere except at ``x = y = 0``, where they are finite (``0``) instead
    of ``0 / 0``.
    """
    return x * jnp.log(y + one_where_zero(x))


@functools.partial(xlogy.defjvp, symbolic_zeros=True)
def _xlogy_jvp(primals, tangents):
    (x, y), (dx, dy) = primals, tangents
    out = xlogy(x, y)
    # Selects here, not the primal's arithmetic: sharing that with the primal
    # would make XLA keep a full-size temporary between the two passes.
    # "Zero" includes subnormals, which XLA:CPU reads as 0 in some operations
    # and not in others.
    x_zero, y_zero = below_normal(x), below_normal(y)
    d_dx = None if tangent_of(dx) is None else jnp.log(jnp.where(x_zero & y_zero, 1.0, y))
    d_dy = x / jnp.where(x_zero, jnp.inf, y)  # x / y, and 0 (not 0 / 0) where x = 0
    return out, linear_in_tangents(out, (d_dx, dx), (d_dy, dy))


@jax.custom_jvp
def xlog_ratio(x: Array, y: Array) -> Array:
    """``x * log(x / y)``, the relative-entropy term, for ``x, y >= 0``.

    ``x = 0`` gives 0 whatever ``y`` is and ``y = 0 < x`` gives ``+inf``. One
    logarithm of a ratio instead of ``xlogx(x) - xlogy(x, y)``'s two: where
    ``x = 0``, ``1`` is added to both sides of the ratio (arithmetic, as in
    :func:`xlogy`) so that it stays finite. The derivatives are those of
    ``xlogx(x) - xlogy(x, y)``.
    """
    one = one_where_zero(x)
    # the ratio of a weight near the smallest normal to a larger one underflows
    # (and log 0 = -inf): floored at tiny, the term stays the negligible x log tiny
    return x * jnp.log(jnp.maximum((x + one) / (y + one), jnp.finfo(x.dtype).tiny))


@functools.partial(xlog_ratio.defjvp, symbolic_zeros=True)
def _xlog_ratio_jvp(primals, tangents):
    (x, y), (dx, dy) = primals, tangents
    out = xlog_ratio(x, y)
    d_dx = None
    if tangent_of(dx) is not None:
        tiny = jnp.finfo(x.dtype).tiny
        log_y = jnp.log(jnp.where(below_normal(x) & below_normal(y), 1.0, y))
        d_dx = jnp.log(jnp.where(x > tiny, x, tiny)) + 1 - log_y
    d_dy = -x / jnp.where(below_normal(x), jnp.inf, y)
    return out, linear_in_tangents(out, (d_dx, dx), (d_dy, dy))


@jax.custom_jvp
def xlog_from_log(x: Array, log_y: Array) -> Array:
    """``x * log_y`` for a log-probability that may be ``-inf`` (``0 * -inf = 0``).

    For ``x >= 0``: ``log_y`` is floored at the most negative finite number
    where ``x = 0`` (the floor ``min / (1 - sign(x))`` is ``-inf``, no floor,
    where ``x > 0``), so that ``x > 0, log_y = -inf`` stays ``-inf``. Its
    derivatives are ``log_y`` and ``x``, with ``log_y`` read as 0 where ``x = 0,
    log_y = -inf``.
    """
    floor = jnp.finfo(log_y.dtype).min / (1 - jnp.sign(x))
    return x * jnp.maximum(log_y, floor)


@functools.partial(xlog_from_log.defjvp, symbolic_zeros=True)
def xlog_from_log_jvp(primals, tangents):
    (x, log_y), (dx, dlog_y) = primals, tangents
    out = xlog_from_log(x, log_y)
    log_y = jnp.where((x == 0) & (log_y == -jnp.inf), jnp.zeros_like(log_y), log_y)
    return out, linear_in_tangents(out, (log_y, dx), (x, dlog_y))


def finite_or_zero(x: Array) -> Array:
    return jnp.where(jnp.isfinite(x), x, jnp.zeros_like(x))


def finite_floor(x: Array) -> Array:
    """Clamps ``-inf`` to the most negative finite value so that ``0 * x = 0``.

    Finite entries, however large, are unchanged (``0 * -1e30 = 0`` already).
    """
    return jnp.maximum(x, jnp.finfo(x.dtype).min)


def expm1_minus(d: Array) -> Array:
    """``e^d - 1 - d = r - 1 - log r`` for ``r = e^d``: never negative, 0 only at ``d = 0``.

    The divergence term of a ratio given by its logarithm (the ``k3`` sample
    estimate of KL, a Gaussian's variance ratio, a Bernoulli outcome's share
    of KL). ``(r - 1) - log r`` cancels to nothing near ``d = 0``; here it is
    ``expm1(d) - d`` from ``|d| = 1/2`` on (a relative error of a few units in
    the last place there, less further out), and below that its Taylor series
    ``d²/2! + d³/3! + ...`` to the float's precision, where ``expm1(d) - d``
    would still lose ``log2(1/|d|)`` bits. Finite wherever ``e^d`` is
    (``+inf`` beyond); its derivative is exactly 0 at ``d = 0``. Each branch
    sees only its own arguments, so neither sends NaN to the other's gradient.
    """
    # terms up to d^n / n!, the first below half an ulp of d^2 / 2 at |d| = 1/2
    n = 10 if jnp.finfo(d.dtype).bits <= 32 else 18
    small = jnp.abs(d) < 0.5
    ds = jnp.where(small, d, jnp.zeros_like(d))
    series = jnp.full_like(d, 1 / math.factorial(n))
    for k in range(n - 1, 1, -1):
        series = series * ds + 1 / math.factorial(k)
    return jnp.where(small, ds * ds * series, jnp.expm1(d) - d)

"""The kernels of the measures of probabilities (non-negative weights).

What lives here: entropy, cross-entropy and KL divergence of rows of weights,
normalised along the axis, with their derivative rules written out, and the
two paths they take.

* The common path takes the plain sums of the row (its total ``T`` and
  ``S = sum(p log p)``) in one read of the data each and combines them per
  row, ``H = log T - S / T``. That is exact to rounding where ``T`` is near
  one (probabilities, also rounded bfloat16 ones), where the two terms do not
  cancel.
* The rare path (``_range.py``) scales every row by a power of two near its
  total first, so that weights of any magnitude, from the smallest normal
  number to the float maximum, neither overflow nor underflow. A batch takes
  it only where some row's total is out of ``[1/2, 2]`` (or, for two
  arguments, some row came out NaN): a check on the reduced row values,
  ``O(rows)``, behind one ``lax.cond``.
* Under ``jax.vmap`` a ``lax.cond`` with a batched predicate runs both
  branches. Every measure already batches over its leading axes, so a vmapped
  call is routed to the batched call instead (``_paths.batched_as_rows``, a
  ``custom_vmap``), which keeps the single ``cond``.
* The derivative is written out, one elementwise pass over the data
  (``dH/dp_i = -(log p̂_i + H) / T``) from per-row quantities that both paths
  return; it has no ``cond`` of its own, so reverse mode transposes no branch.

What does not: argument handling (``_checks.py``), the ``x log y`` primitives
(``_xlogy.py``), the scaling of weights near the float limits (``_range.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from jaxinfo._checks import compute_dtype
from jaxinfo._paths import in_common_range, route, rows_kernel, widened_twice
from jaxinfo._range import Scaled, cross_entropy_rare, entropy_rare, kl_divergence_rare, log_total
from jaxinfo._xlogy import (
    clamped_log,
    finite_or_zero,
    log_tiny,
)

Array = jax.Array

# --------------------------------------------------------------------------
# entropy
# --------------------------------------------------------------------------


def _entropy_rows(axis: int) -> Callable:
    """``p -> (H, scale, log t, 1 / T)`` along ``axis`` (kept), for the rule below.

    ``scale`` is the power of two the rare path multiplies the row by (1 on
    the common path), ``t = T * scale`` the scaled total; ``log(p * scale) -
    log t`` is then ``log p̂`` without cancellation at any magnitude.
    """

    def rows(p):
        dtype = compute_dtype(p.dtype)
        first, second = widened_twice(p, dtype)
        total = jnp.sum(first, axis=axis, keepdims=True)
        # x log x with the logarithm floored after it: 0 log 0 = 0, and fused
        s = jnp.sum(second * jnp.maximum(jnp.log(second), log_tiny(dtype)), axis, keepdims=True)
        log_total = jnp.log(total)

        def common():
            return log_total - s / total, jnp.ones_like(total), log_total, 1 / total

        return route(in_common_range(total), common, lambda: entropy_rare(p, dtype, axis))

    return rows


def _entropy_tangents(axis, primals, tangents, out):
    """Tangents of ``(H, scale, log t, 1 / T)``: ``dH = -sum((log p̂_i + H) dp_i) / T``."""
    (p,), (dp,) = primals, tangents
    h, scale, log_t, inverse_total = out
    zero = jnp.zeros_like(h)
    if dp is None:
        return zero, zero, zero, zero
    dtype = h.dtype
    # the logarithm recomputed, not shared with the value's loop (which would
    # keep a full-size temporary between the two): a barrier
    w = lax.optimization_barrier(p).astype(dtype)
    coefficient = clamped_log(w * scale) - log_t + h  # log p̂_i + H
    dw = dp.astype(dtype)
    d_total = jnp.sum(dw, axis=axis, keepdims=True) * inverse_total
    dh = -jnp.sum(coefficient * dw, axis=axis, keepdims=True) * inverse_total
    return dh, zero, d_total, -inverse_total * d_total


_entropy_kernel = rows_kernel(_entropy_rows, _entropy_tangents)


def entropy_of_weights(p: Array, axis: int) -> Array:
    """``-sum(p̂ log p̂)`` along ``axis`` (kept) for non-negative weights ``p``.

    ``p`` may be narrower than the computation dtype (bfloat16): it is widened
    inside each loop. 0 on rows with no mass. The derivative is
    ``-(log p̂_i + H) / T``; at ``p_i = 0`` the logarithm is read at the
    smallest normal number of the row as computed (scaled by a power of two
    on the rare path): finite wherever it fits the float range, ``±inf``
    (never NaN) in forward mode where it does not (a row of numbers near the
    smallest normal, ``1 / T`` near ``2**126``).
    """
    return _entropy_kernel(axis)(p)[0]


# Cross-entropy and KL of non-negative weights, normalised along ``axis``.
# Their derivatives are written out. With ``P = sum(p)``, ``Q = sum(q)``:
#
#   dH(P,Q)/dp_i = -(log q̂_i + H(P,Q)) / P,  dD(P‖Q)/dp_i = (log(p̂_i / q̂_i) - D) / P,
#   dH(P,Q)/dq_i = dD(P‖Q)/dq_i = 1/Q - p̂_i / q_i.
#
# The coefficient of dp_i is computed in units of order one (logarithms of
# normalised weights) and summed before the per-row factor 1 / P (= scale /
# total) is applied. Autodiff of the value instead takes the difference of
# terms of order ``log(q) / P``, which for a row of weights near the smallest
# normal (1 / P = 2**126) overflow on their own and give inf - inf = NaN where
# the derivative is 0. The logarithms are of ``p`` and ``q`` themselves, not
# of their scaled copies, so they are exact wherever the weights are normal
# numbers (a scaled weight far below its row's total underflows).


def cross_entropy_of_weights(p: Array, q: Array, axis: int) -> Array:
    """``-sum(p̂ log q̂)`` along ``axis`` (kept) for non-negative weights ``p, q``.

    ``p̂, q̂`` are the normalised rows; 0 on rows where ``p`` has no mass,
    ``inf`` where ``q = 0 < p``. ``p`` and ``q`` have one shape and may be
    narrower than the computation dtype (bfloat16): they are widened inside
    each loop.
    """
    return _cross_entropy_kernel(axis)(p, q)[0]


def kl_divergence_of_weights(p: Array, q: Array, axis: int) -> Array:
    """``sum(p̂ log(p̂ / q̂))`` along ``axis`` (kept) for non-negative weights.

    As :func:`cross_entropy_of_weights`: 0 on rows where ``p`` has no mass,
    ``inf`` where ``q = 0 < p``.
    """
    return _kl_divergence_kernel(axis)(p, q)[0]


def _derivative_in_q(p_hat: Array, q: Array, inverse_q_total: Array) -> Array:
    """``1/Q - p̂_i / q_i``, the derivative of H(P, Q) and D(P‖Q) in ``q_i``.

    1/Q where ``p = 0``, and also where ``q = 0 < p``. There the measure is
    infinite and its derivative means nothing; a finite one lets a zero
    cotangent on that row give zero, not NaN (so does reading an infinite
    measure as 0 in the coefficients of ``dp``).
    """
    return inverse_q_total - p_hat / jnp.where(q > 0, q, jnp.inf)


def _pair_rows(common_terms, common_value, rare_value):
    """``make(axis)`` for :func:`batched_as_rows`: a measure of two rows of weights.

    The rows function returns ``(measure, *sp, *sq, nonempty)``, with ``sp``
    and ``sq`` the ``(scale, total, log_scale)`` of the two rows (1, the plain
    total and 0 on the common path) and ``nonempty`` 1.0 or 0.0.

    Common path: the two totals and ``S = sum(common_terms(p, q))``, three
    reads, combined by ``common_value(S, P, Q)``. A batch takes it where every
    total is in :data:`COMMON_TOTALS` and no row is NaN. The terms are the
    plain formula, so a NaN row (``0 log 0`` where ``p = q = 0``) is sent to
    the rare path too, which is exact there; ``inf`` where ``q = 0 < p`` is the
    right value on either path. Rare path: ``rare_value(p, q, narrow, axis)``.
    """

    def make(axis):
        def rows(p, q):
            dtype = compute_dtype(p.dtype, q.dtype)
            p1, p2 = widened_twice(p, dtype)
            q1, q2 = widened_twice(q, dtype)
            p_total = jnp.sum(p1, axis=axis, keepdims=True)
            q_total = jnp.sum(q1, axis=axis, keepdims=True)
            s = jnp.sum(common_terms(p2, q2), axis=axis, keepdims=True)
            value = common_value(s, p_total, q_total)
            ok = in_common_range(p_total) & in_common_range(q_total)
            ok = ok & ~jnp.any(jnp.isnan(value))

            def common():
                one, zero = jnp.ones_like(value), jnp.zeros_like(value)
                return value, one, p_total, zero, one, q_total, zero, one

            def rare():
                narrow = tuple(x if x.dtype != dtype else None for x in (p, q))
                out, sp, sq = rare_value(p.astype(dtype), q.astype(dtype), narrow, axis)
                nonempty = sp.nonempty.astype(dtype)
                return (
                    out,
                    sp.scale,
                    sp.total,
                    sp.log_scale,
                    sq.scale,
                    sq.total,
                    sq.log_scale,
                    nonempty,
                )

            return route(ok, common, rare)

        return rows

    return make


def _of_weights(make_rows, p_coefficient):
    """The kernel of a measure of two rows of weights, its derivative written out.

    ``make_rows`` as made by :func:`_pair_rows`; ``p_coefficient(p, q,
    measure, sp, sq)`` gives the coefficient of ``dp_i`` in units of order
    one (see above). The derivative rule has no ``cond``: both paths return
    the per-row quantities it needs.
    """

    def tangents_of_rows(axis, primals, tangents, out):
        p, q = primals
        dp, dq = tangents
        value, p_scale, p_total, p_log, q_scale, q_total, q_log, nonempty = out
        dtype = value.dtype
        sp = Scaled(p_scale, p_total, p_log, nonempty > 0)
        sq = Scaled(q_scale, q_total, q_log, q_total > 0)
        # the scaled products and logarithms recomputed, not shared with the
        # value's loops (XLA would keep them as full-size temporaries between
        # the passes): a barrier on the scales and the inputs
        a, b, p, q = lax.optimization_barrier((p_scale, q_scale, p, q))
        p, q = p.astype(dtype), q.astype(dtype)
        tangent = d_p_total = d_q_total = jnp.zeros_like(value)
        if dp is not None:
            dp = dp.astype(dtype)
            coef = p_coefficient(p, q, finite_or_zero(value), sp, sq)
            tangent = tangent + jnp.sum(coef * dp, axis=axis, keepdims=True) * (a / p_total)
            d_p_total = jnp.sum(dp, axis=axis, keepdims=True) * p_scale
        if dq is not None:
            dq = dq.astype(dtype)
            coef = _derivative_in_q(p * a / p_total, q, b / q_total)
            tangent = tangent + jnp.sum(coef * dq, axis=axis, keepdims=True)
            d_q_total = jnp.sum(dq, axis=axis, keepdims=True) * q_scale
        tangent = jnp.where(sp.nonempty, tangent, jnp.zeros_like(tangent))
        zero = jnp.zeros_like(value)
        return tangent, zero, d_p_total, zero, zero, d_q_total, zero, zero

    return rows_kernel(make_rows, tangents_of_rows)


def _cross_entropy_in_p(p, q, ce, sp, sq):
    """``-(log q̂_i + H)``; where ``q = 0`` (then ``p = 0``, or H is infinite)
    ``log q`` is read at tiny."""
    return log_total(sq) - ce - jnp.log(jnp.maximum(q, jnp.finfo(q.dtype).tiny))


def _kl_divergence_in_p(p, q, kl, sp, sq):
    """``log(p̂_i / q̂_i) - D``; ``p = 0`` and ``q = 0`` read at tiny (finite,
    and pointing the right way at the edge of the support)."""
    tiny = jnp.finfo(p.dtype).tiny
    shift = log_total(sq) - log_total(sp) - kl
    return jnp.log(jnp.maximum(p, tiny)) - jnp.log(jnp.maximum(q, tiny)) + shift


_cross_entropy_kernel = _of_weights(
    _pair_rows(
        lambda p, q: p * jnp.log(q),
        lambda s, p_total, q_total: jnp.log(q_total) - s / p_total,
        cross_entropy_rare,
    ),
    _cross_entropy_in_p,
)
_kl_divergence_kernel = _of_weights(
    _pair_rows(
        # log(p / q) floored after the log: 0 where p = 0 < q, and a ratio
        # that underflows (p near the smallest normal) adds its negligible
        # p log tiny; p = q = 0 gives NaN, for the rare path
        lambda p, q: p * jnp.maximum(jnp.log(p / q), log_tiny(p.dtype)),
        lambda s, p_total, q_total: s / p_total - jnp.log(p_total) + jnp.log(q_total),
        kl_divergence_rare,
    ),
    _kl_divergence_in_p,
)

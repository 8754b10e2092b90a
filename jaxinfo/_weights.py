"""The kernels of the measures of probabilities (non-negative weights).

What lives here: cross-entropy and KL divergence of rows of weights,
normalised along the axis, with their derivative rules written out.

What does not: argument handling (``_checks.py``), the ``x log y`` primitives
(``_xlogy.py``), the scaling of weights near the float limits (``_range.py``).
"""

from __future__ import annotations

import functools
import operator

import jax
import jax.numpy as jnp
from jax import lax

from jaxinfo._checks import as_real_array
from jaxinfo._range import Scaled, scale_by_total, scaled_weights
from jaxinfo._xlogy import finite_or_zero, one_where_zero, tangent_of, xlog_ratio, xlogy

Array = jax.Array


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


def _scaled_pair(p, q, narrow, axis):
    return scale_by_total(p, axis, narrow[0]), scale_by_total(q, axis, narrow[1])


def _narrow_pair(p: Array, q: Array, narrow: tuple) -> tuple:
    """The narrower arrays ``p`` and ``q`` were widened from, where that is
    what they are (same shape, other dtype), else None (see :func:`row_sum`)."""
    out = []
    for wide, raw in zip((p, q), narrow, strict=True):
        if raw is not None:
            raw = as_real_array(raw, "p")
            if raw.shape != wide.shape or raw.dtype == wide.dtype:
                raw = None
        out.append(raw)
    return tuple(out)


def cross_entropy_of_weights(p: Array, q: Array, axis: int, narrow: tuple = (None, None)) -> Array:
    """``-sum(p̂ log q̂)`` along ``axis`` (kept) for non-negative weights ``p, q``.

    ``p̂, q̂`` are the normalised rows; 0 on rows where ``p`` has no mass,
    ``inf`` where ``q = 0 < p``. ``narrow``: the arrays ``p`` and ``q`` were
    widened from (bfloat16, say), or None, as in :func:`row_sum`.
    """
    return _cross_entropy_of_weights(p, q, _narrow_pair(p, q, narrow), axis)


def kl_divergence_of_weights(p: Array, q: Array, axis: int, narrow: tuple = (None, None)) -> Array:
    """``sum(p̂ log(p̂ / q̂))`` along ``axis`` (kept) for non-negative weights.

    As :func:`cross_entropy_of_weights`: 0 on rows where ``p`` has no mass,
    ``inf`` where ``q = 0 < p``.
    """
    return _kl_divergence_of_weights(p, q, _narrow_pair(p, q, narrow), axis)


def _log_total(s: Scaled) -> Array:
    return jnp.log(s.total) + s.log_scale


def _derivative_in_q(p_hat: Array, q: Array, inverse_q_total: Array) -> Array:
    """``1/Q - p̂_i / q_i``, the derivative of H(P, Q) and D(P‖Q) in ``q_i``.

    1/Q where ``p = 0``, and also where ``q = 0 < p``. There the measure is
    infinite and its derivative means nothing; a finite one lets a zero
    cotangent on that row give zero, not NaN (so does reading an infinite
    measure as 0 in the coefficients of ``dp``).
    """
    return inverse_q_total - p_hat / jnp.where(q > 0, q, jnp.inf)


def _widened(arrays, narrow):
    """The arrays, widened inside the caller's loop from their narrow sources."""
    pairs = zip(arrays, narrow, strict=True)
    return tuple(w if n is None else n.astype(w.dtype) for w, n in pairs)


def _scaled_down(*scaled: Scaled) -> Array:
    """Whether any row is scaled by less than one (its total is above 3/2):
    only then can a scaled weight underflow, and need the floor of
    :func:`scaled_weights` (which costs a quarter of a kernel's time)."""
    return functools.reduce(operator.or_, [jnp.any(s.log_scale > 0) for s in scaled])


def _cross_entropy_value(p, q, narrow, axis):
    sp, sq = _scaled_pair(p, q, narrow, axis)

    # P is scaled; Q only needs log(sum(q)), which the scaled total gives.
    # The arrays are formed inside each branch of the cond, and bfloat16 input
    # widened there: arrays passed in are kept in memory.
    def weighted(floor):
        p_, q_ = _widened((p, q), narrow)
        x = scaled_weights(p_, sp.scale) if floor else p_ * sp.scale
        return jnp.sum(xlogy(x, q_), axis=axis, keepdims=True)

    weighted = lax.cond(
        _scaled_down(sp), functools.partial(weighted, True), functools.partial(weighted, False)
    )
    ce = jnp.where(sp.nonempty, _log_total(sq) - weighted / sp.total, 0)
    return ce, sp, sq


def _kl_divergence_value(p, q, narrow, axis):
    sp, sq = _scaled_pair(p, q, narrow, axis)
    # with x = p * scale_p, y = q * scale_q and their totals s, t:
    # D = sum(x log(x / y)) / s - log s + log t
    # x and y are formed inside each branch, and bfloat16 input widened there:
    # arrays passed in are kept in memory, not computed in the reduction's loop
    tiny = jnp.finfo(q.dtype).tiny

    def weights():
        p_, q_ = _widened((p, q), narrow)
        return q_, scaled_weights(p_, sp.scale), scaled_weights(q_, sq.scale)

    def plain():  # no row scaled down: nothing underflows, no floor
        p_, q_ = _widened((p, q), narrow)
        return jnp.sum(xlog_ratio(p_ * sp.scale, q_ * sq.scale), axis=axis, keepdims=True)

    def ratios():
        _, x, y = weights()
        return jnp.sum(xlog_ratio(x, y), axis=axis, keepdims=True)

    def corrected():
        # log(x / y) corrected where y was floored at tiny: by log tiny - log q
        # + log(sum(q)) - log(total), the logarithm of the true scaled entry,
        # from q itself. ``under`` (1 there, else 0) is arithmetic, which fuses;
        # elsewhere the terms are those of ``ratios`` exactly (KL(P, P) = 0).
        q_, x, y = weights()
        under = jnp.sign(y - q_ * sq.scale)
        keep = 1 - under  # log(1 + ...) where not used: finite, times 0
        fix = (jnp.log(y + keep) - jnp.log(q_ + keep) + sq.log_scale) * under
        return jnp.sum(xlog_ratio(x, y) + x * fix, axis=axis, keepdims=True)

    def checked():
        # An entry of q more than the float range below its row's total
        # underflows when scaled, which is possible only where that total is
        # above one: a pass over q looks for one (arithmetic, no select).
        _, q_ = _widened((p, q), narrow)
        lifted = q_ * sq.scale + one_where_zero(q_)
        underflow = jnp.min(lifted, initial=jnp.inf) < tiny
        return lax.cond(underflow, corrected, ratios)

    def floored():
        return lax.cond(_scaled_down(sq), checked, ratios)

    kl = lax.cond(_scaled_down(sp, sq), floored, plain) / sp.total
    kl = kl - jnp.log(sp.total) + jnp.log(sq.total)
    return jnp.where(sp.nonempty, kl, 0), sp, sq


def _of_weights(value, p_coefficient):
    """A measure of two rows of weights with the derivative rule written out.

    ``value(p, q, narrow, axis)`` gives the measure (kept axis) and the two
    :class:`Scaled` rows; ``p_coefficient(p, q, measure, sp, sq)`` the
    coefficient of ``dp_i`` in units of order one (see above). The narrow
    arrays get no derivative: it reaches ``p`` and ``q`` in one piece.
    """

    @functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
    def measure(p, q, narrow, axis):
        return value(p, q, narrow, axis)[0]

    @functools.partial(measure.defjvp, symbolic_zeros=True)
    def _jvp(axis, primals, tangents):
        p, q, narrow = primals
        dp, dq = tangent_of(tangents[0]), tangent_of(tangents[1])
        out, sp, sq = value(p, q, narrow, axis)
        # the scaled products recomputed, not shared with the value (see
        # scaled_xlog_from_log): a barrier on the per-row scales
        a, b = lax.optimization_barrier((sp.scale, sq.scale))
        tangent = jnp.zeros_like(out)
        if dp is not None:
            coef = p_coefficient(p, q, finite_or_zero(out), sp, sq)
            tangent = tangent + jnp.sum(coef * dp, axis=axis, keepdims=True) * (a / sp.total)
        if dq is not None:
            coef = _derivative_in_q(p * a / sp.total, q, b / sq.total)
            tangent = tangent + jnp.sum(coef * dq, axis=axis, keepdims=True)
        return out, jnp.where(sp.nonempty, tangent, jnp.zeros_like(tangent))

    return measure


def _cross_entropy_in_p(p, q, ce, sp, sq):
    """``-(log q̂_i + H)``; where ``q = 0`` (then ``p = 0``, or H is infinite)
    ``log q`` is read at tiny."""
    return _log_total(sq) - ce - jnp.log(jnp.maximum(q, jnp.finfo(q.dtype).tiny))


def _kl_divergence_in_p(p, q, kl, sp, sq):
    """``log(p̂_i / q̂_i) - D``; ``p = 0`` and ``q = 0`` read at tiny (finite,
    and pointing the right way at the edge of the support)."""
    tiny = jnp.finfo(p.dtype).tiny
    shift = _log_total(sq) - _log_total(sp) - kl
    return jnp.log(jnp.maximum(p, tiny)) - jnp.log(jnp.maximum(q, tiny)) + shift


_cross_entropy_of_weights = _of_weights(_cross_entropy_value, _cross_entropy_in_p)
_kl_divergence_of_weights = _of_weights(_kl_divergence_value, _kl_divergence_in_p)

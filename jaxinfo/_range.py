"""The rare range: weights of any magnitude, by a power of two near the row total.

What lives here: :func:`scale_by_total` and what stands on it. Probabilities
are normalised along the axis, so any non-negative weights are valid input:
counts near the float maximum, whose sum overflows, and rows of numbers near
the smallest normal, whose products underflow and whose derivatives (of order
``1 / total``) overflow. Multiplying a row by a power of two near its total
keeps every intermediate of order one, exactly. The rare path of the
measures of weights (:func:`entropy_rare`, :func:`cross_entropy_rare`,
:func:`kl_divergence_rare`, routed to from ``_weights.py``), the
normalisation helpers of the family measures (:func:`normalise`,
:func:`log_normalise`), the derivative rule of the Jensen–Shannon and Rényi
divergences (:func:`jvp_at_scaled_rows`) and the soft-target cross-entropy of
``_softmax.py`` use it.

What does not: the common path. Measures of probabilities take a plain sum
and route to this module only from a check on their reduced row values
(``_weights.py``); nothing here runs on every call of those.
"""

from __future__ import annotations

import functools
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jaxinfo._checks import ArrayLike, AxisName
from jaxinfo._collectives import class_sum
from jaxinfo._paths import route
from jaxinfo._xlogy import (
    one_where_zero,
    tangent_of,
    xlog_from_log,
    xlog_from_log_jvp,
    xlog_ratio,
    xlogx,
    xlogy,
)

Array = jax.Array


# Scaled weights (see scale_by_total) enter the sums as ``p * scale``, with a
# per-row ``scale`` (and ``1 / total``). Under differentiation the value and
# the derivative would share that full-size product, and XLA:CPU then keeps it
# in memory between the two. The rules below recompute it, behind an
# optimisation barrier on the (per-row) factors so that XLA cannot merge the
# two products back into one.


def scaled_weights(p: Array, scale: Array) -> Array:
    """``p * scale`` (``scale`` from :func:`scale_by_total`), kept above 0 where ``p > 0``.

    An entry far below its row's total (1e-20 in a row that sums to 1e38)
    underflows when scaled; it would then leave the support, and a ``q = 0``
    there would give a finite divergence instead of ``inf``. A floor of
    ``sign(p) * tiny`` keeps it in (a multiply and a maximum, arithmetic that
    fuses) and changes no entry whose scaled value is a normal number.
    """
    x = p * scale
    # the floor's correction carries no derivative: d x / d p = scale everywhere
    return x + lax.stop_gradient(jnp.maximum(x, jnp.sign(p) * jnp.finfo(p.dtype).tiny) - x)


@jax.custom_jvp
def scaled_xlog_from_log(p: Array, scale: Array, total: Array, log_y: Array) -> Array:
    """:func:`xlog_from_log` of ``p * scale / total``; ``scale`` and ``total`` get no gradient.

    ``scale`` and ``total`` are those of :func:`scale_by_total`: the weights
    enter normalised, each at most 1, so that a term is at most ``|log_y|``
    and their sum at most the largest. Scaled by the power of two alone, a
    weight is up to ``total`` (above 1 for most rows that do not sum to a
    power of two, up to 4 per entry where the scale is clipped at the top of
    the float range), and its product with a ``log_y`` near ``-3.4e38``
    overflowed. The factor is two multiplications, ``(p * scale) * (1 /
    total)``: ``scale / total`` would be subnormal, and flushed to zero,
    where the clip bites. The caller gives the derivative of the total.

    An entry that underflows when scaled keeps ``p > 0, log_y = -inf`` at
    ``-inf`` (a floor of ``tiny``), but only there: next to a finite ``log_y``,
    which may be as large as the float maximum, a floor of tiny would add up
    to ``tiny * 3e38 = 4`` where the entry adds nothing. The floor is a
    ``maximum`` in the value alone: the derivative rule below sees the
    unfloored weight.
    """
    x = _normalised(p, scale, total)
    # tiny where p > 0 and log_y = -inf (lowest - log_y = inf); <= 0 elsewhere
    floor = jnp.finfo(x.dtype).tiny * jnp.minimum(jnp.sign(p), jnp.finfo(x.dtype).min - log_y)
    return xlog_from_log(jnp.maximum(x, floor), log_y)


def _normalised(p: Array, scale: Array, total: Array) -> Array:
    return (p * scale) * (1 / total)


@functools.partial(scaled_xlog_from_log.defjvp, symbolic_zeros=True)
def _scaled_xlog_from_log_jvp(primals, tangents):
    p, scale, total, log_y = primals
    dp, _, _, dlog_y = tangents
    out = scaled_xlog_from_log(p, scale, total, log_y)
    scale, total = lax.optimization_barrier((scale, total))
    dx = None if tangent_of(dp) is None else _normalised(dp, scale, total)
    _, tangent = xlog_from_log_jvp((_normalised(p, scale, total), log_y), (dx, tangent_of(dlog_y)))
    return out, tangent


def row_sum(x: Array, axis: int | tuple[int, ...], narrow: ArrayLike | None = None) -> Array:
    """Sum of ``x`` along ``axis`` (kept).

    ``narrow``: the input ``x`` was widened from (bfloat16 or an integer type
    to float32), or None. The sum is then taken of a widening of its own,
    behind an optimization barrier: otherwise XLA shares one widened copy of
    the whole input, a full-size temporary, between this sum and the
    measure's main reduction, where each of the two loops can widen as it
    reads (5x faster on XLA:CPU for bfloat16 input).
    """
    if narrow is not None:
        narrow = jnp.asarray(narrow)
        if narrow.dtype != x.dtype and narrow.shape == x.shape:
            return _sum_of_widened(x, narrow, axis)
    return jnp.sum(x, axis=axis, keepdims=True)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _sum_of_widened(x: Array, narrow: Array, axis: int | tuple[int, ...]) -> Array:
    """``sum(x)`` for ``x = narrow.astype(x.dtype)``, read from ``narrow`` (see :func:`row_sum`).

    The derivative goes to ``x``, not to ``narrow``: the gradient of the
    narrow input then reaches it in one piece, summed in the wide dtype and
    rounded once. Sent along both paths, each part was rounded to (say)
    float16 on its own, and two parts beyond its range made ``inf - inf``.
    """
    return jnp.sum(lax.optimization_barrier(narrow).astype(x.dtype), axis=axis, keepdims=True)


@_sum_of_widened.defjvp
def _sum_of_widened_jvp(axis, primals, tangents):
    x, narrow = primals
    return _sum_of_widened(x, narrow, axis), jnp.sum(tangents[0], axis=axis, keepdims=True)


def safe_total(x: Array, axis: int | tuple[int, ...], narrow: ArrayLike | None = None) -> Array:
    """Sum along ``axis`` (an int or a tuple; kept), with empty or all-zero rows replaced by 1.

    ``narrow`` as in :func:`row_sum`.
    """
    total = row_sum(x, axis, narrow)
    return jnp.where(total > 0, total, jnp.ones_like(total))


class Scaled(NamedTuple):
    """Non-negative weights and their row total, scaled by a power of two.

    Attributes:
      scale: ``2**-e`` (kept), with ``2**e`` the power of two nearest the
        row's total: the constant to multiply the weights by before any
        product or logarithm (no gradient flows through it).
      total: ``sum(w) * scale`` (kept), in ``[3/4, 3/2)``; 1 on rows with no
        mass. Where the clip of ``scale`` to normal numbers bites (a sum
        beyond ``2**126``) it is larger: up to 4 per entry. It carries the
        gradient.
      log_scale: ``e log 2 = -log(scale)`` (kept); ``log(sum(w))`` is
        ``log(total) + log_scale``.
      nonempty: boolean (kept), whether the row has positive mass.
    """

    scale: Array
    total: Array
    log_scale: Array
    nonempty: Array


def log_total(s: Scaled) -> Array:
    """``log(sum(w))`` of scaled weights, from their scaled total: no overflow."""
    return jnp.log(s.total) + s.log_scale


def scale_by_total(
    w: Array,
    axis: int | tuple[int, ...],
    narrow: ArrayLike | None = None,
    axis_name: AxisName | None = None,
) -> Scaled:
    """The row total of non-negative weights, and the power of two that brings it to one.

    Probabilities are normalised along the axis, so any non-negative weights
    are valid input: counts near the float maximum, whose ``w log w`` or sum
    overflows, and rows of numbers near the smallest normal, whose products
    underflow and whose gradients (of order ``1 / sum(w)**2``) overflow.
    Multiplying a row by ``scale``, a power of two, keeps every intermediate
    of order one and is exact: for weights that already sum to about one it is
    1 and changes nothing. The measures compute with
    ``w * scale`` and ``total``; since they depend only on the normalised
    distribution, ``scale`` needs no gradient and the gradients are exact.

    The total is the row sum the normalisation needs anyway: the scale costs
    one multiplication per entry, not a pass over the data (a row maximum,
    the textbook choice, is a pass of its own, and on XLA:CPU a slow one).
    Only where the sum itself overflows is it taken again, of the scaled
    weights; a ``lax.cond`` keeps that second pass off the common path (under
    ``vmap`` the cond becomes a select and both run). ``scale`` is clipped to
    normal numbers: a subnormal one is flushed to zero on CPU.

    Args:
      w: non-negative weights.
      axis: the axis (or axes) of a row.
      narrow: the input ``w`` was widened from, as in :func:`row_sum`.
      axis_name: the row's classes are split across the devices of this mesh
        axis (see :func:`class_sum`).
    """
    if axis_name is None:
        raw = row_sum(w, axis, narrow)
    else:
        raw = class_sum(w, axis, axis_name)
    info = jnp.finfo(w.dtype)
    fixed = lax.stop_gradient(raw)
    mantissa, e = jnp.frexp(fixed)  # raw = mantissa * 2**e, mantissa in [1/2, 1)
    # the nearest power of two: total in [3/4, 3/2), and exactly 1 (no rounding
    # at all) for weights that already sum to one
    e = jnp.where(mantissa < 0.75, e - 1, e)
    e = jnp.where(fixed == jnp.inf, info.maxexp, e)
    # raw > 0 is false for a subnormal total where the platform flushes
    # subnormals (CPU): that row is empty to every other operation too.
    e = jnp.where(fixed > 0, e, jnp.zeros_like(e))
    e = jnp.clip(e, -(info.maxexp - 1), -info.minexp)
    scale = jnp.ldexp(jnp.ones_like(raw), -e)
    source = w
    if narrow is not None and np.shape(narrow) == w.shape:
        source = jnp.asarray(narrow)  # widened again only if the sum overflows
    total = _scaled_total(raw, source, scale, axis, axis_name)
    nonempty = total > 0
    return Scaled(
        scale=scale,
        total=jnp.where(nonempty, total, jnp.ones_like(total)),
        log_scale=e.astype(w.dtype) * np.log(2).astype(w.dtype),
        nonempty=nonempty,
    )


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _scaled_total(raw, source, scale, axis, axis_name):
    """``raw * scale``, and where ``raw = sum(w)`` overflowed, ``sum(w * scale)``.

    ``source`` is ``w`` or the narrower array it was widened from. The
    derivative is ``d raw * scale`` (a custom rule, so that neither the
    ``cond`` nor ``source`` appear in the derivative's program: otherwise the
    transposed ``cond`` materialises a zero cotangent of the size of ``w``).
    """
    overflow = raw == jnp.inf

    def rescaled():
        again = class_sum(source.astype(raw.dtype) * scale, axis, axis_name)
        return jnp.where(overflow, again, raw * scale)

    if axis_name is not None:
        return rescaled()
    return route(jnp.any(overflow), rescaled, lambda: raw * scale)


@_scaled_total.defjvp
def _scaled_total_jvp(axis, axis_name, primals, tangents):
    raw, source, scale = primals
    return _scaled_total(raw, source, scale, axis, axis_name), tangents[0] * scale


def _scaled_row(w: Array, axis: int | tuple[int, ...]) -> tuple[Array, Array, Scaled]:
    """``(x, total, sw)``: the row ``x = w * scale`` and its total, whose
    derivative is the sum of ``x``'s.

    Both carry the factor ``scale`` (up to ``2**126``); the row's cotangent
    and the total's must meet before it multiplies them. Taken apart, as the
    chain rule through :func:`scale_by_total` does, each can overflow where
    their sum does not: ``-inf + inf = NaN`` for weights near the smallest
    normal number (a Rényi divergence's mass inside ``Q``'s support).
    """
    sw = scale_by_total(w, axis)
    x = w * sw.scale
    return x, _total_of(lax.stop_gradient(sw.total), x, sw.nonempty, axis), sw


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _total_of(total, x, nonempty, axis):
    """``total``, the sum of ``x`` along ``axis`` taken elsewhere, with the
    derivative of that sum (0 on rows with no mass, as their total is 1)."""
    del x, nonempty, axis
    return total


@_total_of.defjvp
def _total_of_jvp(axis, primals, tangents):
    total, x, nonempty = primals
    dtotal = jnp.sum(tangents[1], axis=axis, keepdims=True)
    # the primal through the rule again, so that higher derivatives use it too
    out = _total_of(total, x, nonempty, axis)
    return out, jnp.where(nonempty, dtotal, jnp.zeros_like(dtotal))


def normalise(w: Array, axis: int | tuple[int, ...]) -> Array:
    """``w / sum(w)`` along ``axis`` (an int or a tuple), for any non-negative
    weights: no overflow for huge ones, no underflow for tiny ones (see
    :func:`scale_by_total`); rows with no mass stay 0."""
    x, total, _ = _scaled_row(w, axis)
    return x / total


def jvp_at_scaled_rows(fn, rows, row_tangents, args, arg_tangents, axis):
    """The tangent of ``fn(c, *rows_c, *args)``, ``rows_c[j] = rows[j] * c[j]``.

    A rule for measures whose derivatives near the float limits meet
    ``inf - inf``: with ``c[j]`` the :func:`scale_by_total` power of two of
    row ``j`` where it exceeds 1 (rows with small sums; large ones are left
    as they are, since scaling them down could flush an entry to zero, 1e-30
    next to 1e30 in float32, and change a support), ``fn`` sees rows of sums
    of order one and its slopes are of the size of their logarithms. The
    derivative along ``rows[j]`` is ``c[j]`` times ``fn``'s along
    ``rows_c[j]``; ``c[j]`` is up to ``2**126`` (``2**1022`` in float64), and
    JAX's chain rule at the rows as given meets it term by term, where the
    terms overflow and their sum is finite or of one sign. Here the factor
    enters once for all the terms: as ``top``, the largest ``c[j]``, split
    into two powers of two of about its square root, ``lo`` on the tangents
    (with ``c[j] / top``, at most 1) and ``hi`` on the result, so that neither
    the forward pass nor its transpose (reverse mode, whose cotangent meets
    ``hi`` first) overflows before the result does.

    Args:
      fn: ``fn(c, *rows_c, *args)``, a function of the scaled rows (``c``,
        the list of scales, is for measures that need the rows' masses) whose
        outputs are per row (``axis`` kept).
      rows: rows of non-negative weights along ``axis``, of one shape.
      row_tangents: their tangents, None for a zero one (as for every
        tangent here).
      args: further arguments, broadcast against the rows' outputs; their
        tangents are divided by ``hi`` (exact, a power of two).
      arg_tangents: their tangents.
      axis: the axis of a row.
    """
    scales = [jnp.maximum(scale_by_total(r, axis).scale, 1) for r in rows]
    top = functools.reduce(jnp.maximum, scales)
    _, e = jnp.frexp(top)  # top = 2**(e - 1)
    lo = jnp.ldexp(jnp.ones_like(top), (e - 1) // 2)
    hi = top / lo
    args = [jnp.broadcast_to(a, jnp.broadcast_shapes(jnp.shape(a), hi.shape)) for a in args]
    inputs = [r * c for r, c in zip(rows, scales, strict=True)] + args
    tangents = [
        None if d is None else d * (c / top * lo) for d, c in zip(row_tangents, scales, strict=True)
    ]
    tangents += [None if d is None else d / hi for d in arg_tangents]
    # only the inputs with a tangent are differentiated: a zero one would
    # still cost its whole share of the pass (alpha's, in the Rényi divergence)
    moving = [i for i, d in enumerate(tangents) if d is not None]
    if not moving:
        return jnp.zeros_like(fn(scales, *inputs))

    def along(*xs):
        given = list(inputs)
        for i, x in zip(moving, xs, strict=True):
            given[i] = x
        return fn(scales, *given)

    _, tangent = jax.jvp(along, [inputs[i] for i in moving], [tangents[i] for i in moving])
    return tangent * hi


def scale_free_pair(fn):
    """``fn(p, q, axis=axis)``, a measure of two rows of weights that is
    unchanged by scaling either row, with a derivative safe near the float
    limits: :func:`jvp_at_scaled_rows`, which holds for such a measure as
    ``fn`` of the scaled rows is ``fn`` of the rows. The value is ``fn`` of the
    rows as given (the scaled rows can differ where the platform flushes
    subnormal entries). Returns ``wrapped(axis, p, q)``.
    """

    @functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
    def wrapped(axis, p, q):
        return fn(p, q, axis=axis)

    @functools.partial(wrapped.defjvp, symbolic_zeros=True)
    def _jvp(axis, primals, tangents):
        # the primal through the rule again, so that higher derivatives use it too
        value = wrapped(axis, *primals)
        tangents = [None if isinstance(d, SymbolicZero) else d for d in tangents]
        tangent = jvp_at_scaled_rows(
            lambda _, p, q: fn(p, q, axis=axis), primals, tangents, (), (), axis
        )
        return value, tangent

    return wrapped


def log_normalise(w: Array, axis: int | tuple[int, ...]) -> tuple[Array, Array, Array]:
    """``(w / sum(w), log(w / sum(w)), log(sum(w)))`` along ``axis`` (the last kept).

    For any non-negative weights (see :func:`scale_by_total`). The logarithm
    is exact also where the quotient underflows (an entry 1e-30 next to 1e30
    in float32), as the measures of order ``alpha < 1`` need: ``(1e-60)**0.1``
    is not negligible. It is ``-inf`` exactly where ``w = 0``, and its
    gradient has no NaN there (the argument of the ``log`` is replaced first).
    Rows with no mass give 0, ``-inf`` and 0.
    """
    x, total, sw = _scaled_row(w, axis)
    positive = w > 0
    scaled_ok = x > 0
    # log(w * scale) = log(x) where x did not underflow, else log(w) - e log 2
    arg = jnp.where(scaled_ok, x, jnp.where(positive, w, jnp.ones_like(w)))
    shift = jnp.where(scaled_ok, jnp.zeros_like(sw.log_scale), sw.log_scale)
    log_x = jnp.where(positive, jnp.log(arg) - shift, -jnp.inf)
    log_total = jnp.log(total)
    return x / total, log_x - log_total, log_total + sw.log_scale


# --------------------------------------------------------------------------
# the rare path of the measures of weights (see _weights.py)
# --------------------------------------------------------------------------


def entropy_rare(p: Array, dtype, axis: int) -> tuple[Array, Array, Array, Array]:
    """``(H, scale, log t, 1 / T)`` of weights of any magnitude, as ``_weights`` needs.

    ``p`` may be narrower than ``dtype`` (widened as it is read);
    ``H = log t - sum(x log x) / t`` for the scaled weights ``x = p * scale``
    and their total ``t``.
    """
    sp = scale_by_total(p.astype(dtype), axis, p)
    log_t = jnp.log(sp.total)
    h = log_t - jnp.sum(xlogx(p.astype(dtype) * sp.scale), axis=axis, keepdims=True) / sp.total
    return h, sp.scale, log_t, sp.scale / sp.total


# Cross-entropy and KL of weights of any magnitude: ``(measure, sp, sq)`` with
# the Scaled rows of ``p`` and ``q``. ``narrow``: the arrays ``p`` and ``q``
# were widened from (bfloat16), or None, read inside each loop.


def _scaled_pair(p, q, narrow, axis):
    return scale_by_total(p, axis, narrow[0]), scale_by_total(q, axis, narrow[1])


def _widened(arrays, narrow):
    """The arrays, widened inside the caller's loop from their narrow sources."""
    pairs = zip(arrays, narrow, strict=True)
    return tuple(w if n is None else n.astype(w.dtype) for w, n in pairs)


def _scaled_down(*scaled: Scaled) -> Array:
    """Whether any row is scaled by less than one (its total is above 3/2):
    only then can a scaled weight underflow, and need the floor of
    :func:`scaled_weights` (which costs a quarter of a kernel's time)."""
    return functools.reduce(operator.or_, [jnp.any(s.log_scale > 0) for s in scaled])


def cross_entropy_rare(p, q, narrow, axis):
    sp, sq = _scaled_pair(p, q, narrow, axis)

    # P is scaled; Q only needs log(sum(q)), which the scaled total gives.
    # The arrays are formed inside each branch of the cond, and bfloat16 input
    # widened there: arrays passed in are kept in memory.
    def weighted(floor):
        p_, q_ = _widened((p, q), narrow)
        x = scaled_weights(p_, sp.scale) if floor else p_ * sp.scale
        return jnp.sum(xlogy(x, q_), axis=axis, keepdims=True)

    weighted = route(
        _scaled_down(sp), functools.partial(weighted, True), functools.partial(weighted, False)
    )
    ce = jnp.where(sp.nonempty, log_total(sq) - weighted / sp.total, 0)
    return ce, sp, sq


def kl_divergence_rare(p, q, narrow, axis):
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
        return route(underflow, corrected, ratios)

    def floored():
        return route(_scaled_down(sq), checked, ratios)

    kl = route(_scaled_down(sp, sq), floored, plain) / sp.total
    kl = kl - jnp.log(sp.total) + jnp.log(sq.total)
    return jnp.where(sp.nonempty, kl, 0), sp, sq

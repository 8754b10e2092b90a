"""The kernels behind every measure of logits: masked, max-shifted log-partitions.

What lives here: the log-partition of a row of logits that survives ``-inf``
(masked) classes, huge logits and rows in which every class is masked, and
the fused kernels of the entropy, cross-entropy and KL divergence of
``softmax(logits)`` and of the labels loss, each with its derivative; the
streaming log-sum-exp of logits that arrive one block of classes at a time
(``linear_cross_entropy``).

What does not: the collectives of ``axis_name`` (``_collectives.py``), the
scaling of target weights near the float limits (``_range.py``).

Each kernel has a fused form, a chain of reductions with arithmetic guards
only, which XLA:CPU fuses into one loop, and a reference form built on
:func:`shift_logits`, which also serves the classes split across devices
(``axis_name``) and gives the derivatives.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxinfo._checks import AxisName, compute_dtype
from jaxinfo._collectives import class_ids, class_sum
from jaxinfo._paths import in_common_range, route, rows_kernel, widened_twice
from jaxinfo._range import scale_by_total, scaled_xlog_from_log
from jaxinfo._xlogy import finite_floor, finite_or_zero, one_where_zero, xlog_from_log

Array = jax.Array


class Shifted(NamedTuple):
    """Logits shifted by their (masked) row maximum, and the log-partition.

    Attributes:
      s: ``logits - max`` with masked classes at ``-inf``; ``log_softmax = s - log_z``.
      log_z: ``log(sum(exp(s)))`` along the axis (kept), 0 on rows where every
        class is masked (so that such rows measure 0 instead of NaN).
      exp_s: ``exp(s)``; ``softmax = exp_s / z``.
      z: ``sum(exp(s))`` (kept), 1 on fully masked rows.
      nonempty: boolean (kept), whether the row has any class left.
      shift: the maximum subtracted (kept, no gradient), 0 on empty rows;
        ``s`` is ``-inf`` also where ``logits - shift`` overflows.
    """

    s: Array
    log_z: Array
    exp_s: Array
    z: Array
    nonempty: Array
    shift: Array


def shift_logits(
    logits: Array, axis: int, mask: Array | None, axis_name: AxisName | None = None
) -> Shifted:
    """Masks and max-shifts logits; computes the partition function once.

    The maximum is taken under ``stop_gradient`` (softmax is shift-invariant)
    and replaced by 0 when it is not finite, which happens only on rows whose
    classes are all masked or ``-inf``.

    With ``axis_name``, ``logits`` holds this device's slice of the classes
    (inside ``shard_map``) and the maximum and the partition function are
    combined across the devices of that mesh axis (``pmax``, ``psum``), so
    every device gets the row's global ``log_z``; ``s`` and ``exp_s`` stay local.
    """
    if mask is not None:
        logits = jnp.where(mask, logits, -jnp.inf)
    m = lax.stop_gradient(jnp.max(logits, axis=axis, keepdims=True, initial=-jnp.inf))
    if axis_name is not None:
        # The shift needs no gradient; stop_gradient before the collective
        # keeps pmax out of differentiation altogether.
        m = lax.pmax(m, axis_name)
    nonempty = m > -jnp.inf
    m = finite_or_zero(m)
    s = logits - m
    exp_s = jnp.exp(s)
    z = class_sum(exp_s, axis, axis_name)
    z = jnp.where(z > 0, z, jnp.ones_like(z))
    return Shifted(s=s, log_z=jnp.log(z), exp_s=exp_s, z=z, nonempty=nonempty, shift=m)


def _row_max(logits: Array, axis: int) -> Array:
    """The maximum along ``axis`` (kept) as a constant shift: 0 where not finite."""
    return finite_or_zero(
        lax.stop_gradient(jnp.max(logits, axis=axis, keepdims=True, initial=-jnp.inf))
    )


def shift_by_max(logits: Array, axis: int) -> Array:
    """``logits - max`` along ``axis``, the max under ``stop_gradient``.

    A row whose logits are all ``-inf`` is shifted by the most negative finite
    number instead and stays ``-inf``. That guard is a ``maximum``, not a
    select, so that XLA:CPU can fuse the maximum, the shift and the reductions
    that follow into one pass.
    """
    return logits - _shift(logits, axis)


def _shift(logits: Array, axis: int) -> Array:
    """The shift of :func:`shift_by_max` (kept): the row maximum, no gradient,
    at least the most negative finite number."""
    m = lax.stop_gradient(jnp.max(logits, axis=axis, keepdims=True, initial=-jnp.inf))
    return jnp.maximum(m, jnp.finfo(logits.dtype).min)


def _one_if_empty(z: Array) -> Array:
    """A partition function with 0 (an empty row) replaced by 1, arithmetically."""
    return z + one_where_zero(z)


def _softmax_fused(logits: Array, axis: int) -> tuple[Array, Array]:
    """``(softmax, log_softmax)`` as the chain ``max -> sum(exp)``.

    Arithmetic guards only, so that XLA:CPU fuses the chain and what follows
    into one loop; rows whose logits are all ``-inf`` give 0 and ``-inf``.
    """
    s = shift_by_max(logits, axis)
    exp_s = jnp.exp(s)
    z = _one_if_empty(jnp.sum(exp_s, axis=axis, keepdims=True))
    return exp_s / z, s - jnp.log(z)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def label_nll(logits: Array, labels: Array, axis: int) -> Array:
    """``-log softmax(logits)[label] = log Z - logits[label]`` along ``axis`` (kept).

    Args:
      logits: masked classes at ``-inf``.
      labels: integer class ids in ``[0, K)``, with ``axis`` of size 1 (the
        caller clips out-of-range ids and decides what they mean).
      axis: the class axis.

    Returns:
      ``inf`` for a label on a ``-inf`` class; 0 on rows where every class is
      ``-inf``.

    Two passes over the logits, the row maximum and the sum of ``exp(logits -
    max)``, and a gather: the fewest a stable log-partition allows. The
    derivative rule, ``softmax - onehot``, is written out so that under
    ``grad`` the exponentials are computed once, kept, summed and scaled in a
    single pass, with no scatter.
    """
    m = _row_max(logits, axis)
    z = jnp.sum(jnp.exp(logits - m), axis=axis, keepdims=True)
    return _nll_from_partition(logits, labels, axis, m, z)


def _nll_from_partition(logits, labels, axis, m, z):
    nonempty = z > 0
    log_z = jnp.log(jnp.where(nonempty, z, jnp.ones_like(z)))
    nll = log_z - (jnp.take_along_axis(logits, labels, axis=axis) - m)
    return jnp.where(nonempty, nll, jnp.zeros_like(nll))


@label_nll.defjvp
def _label_nll_jvp(axis, primals, tangents):
    logits, labels = primals
    dlogits, _ = tangents
    m = _row_max(logits, axis)
    e = jnp.exp(logits - m)
    z = jnp.sum(e, axis=axis, keepdims=True)
    nll = _nll_from_partition(logits, labels, axis, m, z)
    onehot = class_ids(logits.shape, axis) == labels
    softmax = e / jnp.where(z > 0, z, jnp.ones_like(z))
    dnll = jnp.sum((softmax - onehot.astype(e.dtype)) * dlogits, axis=axis, keepdims=True)
    return nll, jnp.where(z > 0, dnll, jnp.zeros_like(dnll))


def softmax_cross_entropy(
    p: Array, logits: Array, axis: int, axis_name: AxisName | None = None
) -> Array:
    """``-sum(p * log_softmax(logits)) / sum(p)`` along ``axis`` (kept).

    ``p >= 0`` is normalised; rows with ``sum(p) = 0`` give 0; ``p > 0`` on a
    ``-inf`` logit gives ``+inf`` and ``p = 0`` there contributes 0. ``p`` may
    be narrower than ``logits`` (bfloat16 targets): it is widened to their
    dtype, once for each of its two sums (see :func:`row_sum`). With
    ``axis_name`` the classes are split across devices (see
    :func:`shift_logits`).

    Without ``axis_name`` the value is the chain ``max -> sum(exp) ->
    sum(p * log_softmax)`` with arithmetic guards only, which XLA:CPU fuses into
    one loop as it does for optax's loss (the sum of ``p`` is the price of the
    normalisation); its derivative is that of the reference formula, whose
    reverse pass is the faster.
    """
    if axis_name is not None:
        return _softmax_cross_entropy_reference(p, logits, axis, axis_name)
    return _cross_entropy_kernel(axis)(p, logits)[0]


def _softmax_cross_entropy_rare(p: Array, logits: Array, axis: int) -> tuple[Array, Array]:
    """The rare path of :func:`softmax_cross_entropy`: ``(H, Scaled)`` for targets of any
    magnitude (see ``_range.py``), also where ``p > 0`` meets a ``-inf`` logit.

    ``p`` and ``logits`` may be narrower than the computation dtype: widened
    here, inside the loops (a widened array passed into a ``cond`` would be
    kept in memory).
    """
    dtype = compute_dtype(p.dtype, logits.dtype)
    _, log_q = _softmax_fused(logits.astype(dtype), axis)
    wide = p.astype(dtype)
    sp = scale_by_total(wide, axis, p if p.dtype != dtype else None)
    # the weights enter the sum normalised (see scaled_xlog_from_log): their
    # products with log q near the float's lowest, and the sum, stay in range
    terms = scaled_xlog_from_log(wide, sp.scale, sp.total, log_q)
    return jnp.where(sp.nonempty, -jnp.sum(terms, axis=axis, keepdims=True), 0.0), sp


def _cross_entropy_rows(axis: int):
    """``(p, logits) -> (H, shift, log z, scale, total, nonempty)`` along ``axis`` (kept).

    Common path: the shifted logits ``s = logits - max``, ``z = sum(exp(s))``,
    the targets' total ``P`` and ``S = sum(p * s)``, four reads, and ``H = log
    z - S / P``. A batch takes it where every ``P`` is in ``COMMON_TOTALS`` and
    every ``H`` is finite: ``p = 0`` on a ``-inf`` logit (a masked class) makes
    the plain product NaN, and ``p > 0`` there makes ``H`` infinite, and the
    rare path, exact for both, takes those batches. ``scale`` and ``total`` are
    those of :func:`scale_by_total` (1 and ``P`` on the common path).
    """

    def rows(p, logits):
        dtype = compute_dtype(p.dtype, logits.dtype)
        first, second = widened_twice(logits, dtype)
        shift = _shift(first, axis)
        log_z = jnp.log(_one_if_empty(jnp.sum(jnp.exp(first - shift), axis=axis, keepdims=True)))
        p1, p2 = widened_twice(p, dtype)
        total = jnp.sum(p1, axis=axis, keepdims=True)
        weighted = jnp.sum(p2 * (second - shift), axis=axis, keepdims=True)
        ce = log_z - weighted / total
        ok = in_common_range(total) & jnp.all(jnp.isfinite(ce))

        def common():
            one = jnp.ones_like(ce)
            return ce, shift, log_z, one, total, one

        def rare():
            value, sp = _softmax_cross_entropy_rare(p, logits, axis)
            return value, shift, log_z, sp.scale, sp.total, sp.nonempty.astype(dtype)

        return route(ok, common, rare)

    return rows


def _cross_entropy_tangents(axis, primals, tangents, out):
    """Tangents of ``(H, shift, log z, scale, total, nonempty)``:
    ``dH = sum((softmax - p̂) dlogits) - sum((log q_i + H) dp_i) / P``."""
    p, logits = primals
    dp, dlogits = tangents
    ce, shift, log_z, scale, total, nonempty = out
    dtype = ce.dtype
    # recomputed, not shared with the value's loops: a barrier
    p, logits = lax.optimization_barrier((p, logits))
    s = logits.astype(dtype) - shift
    tangent = d_log_z = d_total = jnp.zeros_like(ce)
    if dlogits is not None:
        dl = dlogits.astype(dtype)
        q = jnp.exp(s - log_z)
        p_hat = (p.astype(dtype) * scale) * (1 / total)
        tangent = tangent + jnp.sum((q - p_hat) * dl, axis=axis, keepdims=True)
        d_log_z = jnp.sum(q * dl, axis=axis, keepdims=True)
    if dp is not None:
        tangent = tangent + _target_tangent(s, log_z, ce, scale, total, dp, axis)
        d_total = jnp.sum(dp.astype(dtype), axis=axis, keepdims=True) * scale
    tangent = jnp.where(nonempty > 0, tangent, jnp.zeros_like(tangent))
    zero = jnp.zeros_like(ce)
    return tangent, zero, d_log_z, zero, d_total, zero


_cross_entropy_kernel = rows_kernel(_cross_entropy_rows, _cross_entropy_tangents)


def _softmax_cross_entropy_reference(
    p: Array, logits: Array, axis: int, axis_name: AxisName | None = None
) -> Array:
    p = p.astype(logits.dtype)
    sh = shift_logits(logits, axis, None, axis_name)
    sp = scale_by_total(p, axis, axis_name=axis_name)
    # sum(p * s) / sum(p), the weights normalised inside the sum as in the
    # fused form; the total's derivative, which scaled_xlog_from_log does not
    # give, enters through the factor total / total (exactly 1).
    total = lax.stop_gradient(sp.total)
    mean_s = class_sum(scaled_xlog_from_log(p, sp.scale, total, sh.s), axis, axis_name)
    ce = sh.log_z - mean_s * (total / sp.total)
    return jnp.where(sp.nonempty, ce, jnp.zeros_like(ce))


def _target_tangent(s, log_z, ce, scale, total, dp, axis):
    """The derivative of the cross-entropy in its targets, ``-(log q_i + H) / sum(p)``.

    Written out for the reason given above :func:`cross_entropy_of_weights`:
    the coefficients are summed before the factor ``1 / sum(p)``, which for
    targets that sum to 1e-19 is 1e19 and, autodiff's way, met terms of order
    ``log q`` (up to the float maximum) on its own. On a class that ``Q`` rules
    out (where ``p > 0``, H is infinite anyway) ``log q`` is read as that of a
    logit equal to the maximum, as the derivative rule of :func:`xlog_from_log`
    has it on the ``axis_name`` path.
    """
    coef = log_z - jnp.where(s > -jnp.inf, s, 0) - finite_or_zero(ce)
    # The factor scale / total in two parts, neither of which can make an
    # intermediate overflow or underflow that the derivative does not: a
    # scale below 1 (a row of huge targets) multiplies the coefficients before
    # the sum, where it only shrinks them; a scale above 1 (a tiny row), the
    # sum. In one piece, scale / total was subnormal, flushed to zero, on rows
    # whose sum is beyond 2**126 (the clip of scale_by_total): a gradient of 0
    # where the true one is -(log q_i + H) / sum(p), of order 1.
    inner = jnp.minimum(scale, 1)
    outer = scale / inner
    tangent = jnp.sum((coef * inner) * dp.astype(coef.dtype), axis=axis, keepdims=True)
    return (tangent * outer) * (1 / total)


def softmax_entropy(logits: Array, axis: int, axis_name: AxisName | None = None) -> Array:
    """``-sum(softmax * log_softmax)`` along ``axis`` (kept); 0 on empty rows.

    With ``axis_name`` the classes are split across devices (see
    :func:`shift_logits`). Without, the value is a chain of reductions with
    arithmetic guards, which XLA:CPU fuses into one loop with no temporary
    array; its derivative is that of the reference formula, whose reverse pass
    is the faster.
    """
    if axis_name is not None:
        return _softmax_entropy_reference(logits, axis, axis_name)
    return _softmax_entropy_fused(logits, axis)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _softmax_entropy_fused(logits: Array, axis: int) -> Array:
    # log z - sum(q * s) with q = exp(s - log z) recomputed, not exp(s) / z:
    # XLA factors a division by z out of the sum, which turns the chain into
    # two sibling sums of one exp that XLA:CPU runs ten times slower. Exact
    # for uniform rows (s = 0), unlike -sum(q * log q).
    s = shift_by_max(logits, axis)
    log_z = jnp.log(_one_if_empty(jnp.sum(jnp.exp(s), axis=axis, keepdims=True)))
    return log_z - jnp.sum(jnp.exp(s - log_z) * finite_floor(s), axis=axis, keepdims=True)


def _softmax_entropy_reference(
    logits: Array, axis: int, axis_name: AxisName | None = None
) -> Array:
    sh = shift_logits(logits, axis, None, axis_name)
    weighted = class_sum(sh.exp_s * finite_floor(sh.s), axis, axis_name)
    return sh.log_z - weighted / sh.z


@_softmax_entropy_fused.defjvp
def _softmax_entropy_jvp(axis, primals, tangents):
    return jax.jvp(functools.partial(_softmax_entropy_reference, axis=axis), primals, tangents)


def softmax_kl_divergence(
    p_logits: Array, q_logits: Array, axis: int, axis_name: AxisName | None = None
) -> Array:
    """``sum(p * (log p - log q))`` for ``p, q = softmax(p_logits), softmax(q_logits)``.

    Along ``axis`` (kept). Classes with ``p = 0`` contribute 0, also where
    ``q = 0``; ``q = 0 < p`` gives ``+inf``; rows where ``p`` is empty give 0.
    With ``axis_name`` the classes are split across devices; without, the
    value is a fused chain of reductions, as in :func:`softmax_entropy`, and
    the derivative that of the reference formula.
    """
    if axis_name is not None:
        return _softmax_kl_divergence_reference(p_logits, q_logits, axis, axis_name)
    return _softmax_kl_divergence_fused(p_logits, q_logits, axis)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _softmax_kl_divergence_fused(p_logits: Array, q_logits: Array, axis: int) -> Array:
    p, log_p = _softmax_fused(p_logits, axis)
    _, log_q = _softmax_fused(q_logits, axis)
    # P's support is the classes whose probability is positive in the
    # computation dtype: one that underflows (e**-200 in float32) is outside,
    # also where Q rules it out. Taking it in would cost a quarter of the time
    # (a floor on p where Q's logit is -inf) for an infinite loss that no
    # training step can use.
    # p * (log p - log q) written as -p * (log q - log p), so that a -inf lands
    # in the second argument of xlog_from_log, which makes 0 * -inf = 0.
    terms = -xlog_from_log(p, log_q - finite_floor(log_p))
    return jnp.sum(terms, axis=axis, keepdims=True)


def _softmax_kl_divergence_reference(
    p_logits: Array, q_logits: Array, axis: int, axis_name: AxisName | None = None
) -> Array:
    sa = shift_logits(p_logits, axis, None, axis_name)
    sb = shift_logits(q_logits, axis, None, axis_name)
    # Classes whose probability is 0 (masked or underflowed) contribute 0; the
    # difference is replaced there *before* the product so that neither its
    # value nor its gradient can be 0 * inf. Each term is divided by z before
    # the sum, which would overflow for differences near the float maximum.
    diff = jnp.where(sa.exp_s == 0, jnp.zeros_like(sa.s), sa.s - sb.s)
    weighted = class_sum((sa.exp_s * diff) / sa.z, axis, axis_name)
    kl = weighted - sa.log_z + sb.log_z
    return jnp.where(sa.nonempty, kl, jnp.zeros_like(kl))


@_softmax_kl_divergence_fused.defjvp
def _softmax_kl_divergence_jvp(axis, primals, tangents):
    reference = functools.partial(_softmax_kl_divergence_reference, axis=axis)
    return jax.jvp(reference, primals, tangents)


# --------------------------------------------------------------------------
# streaming log-sum-exp (for logits produced one block of classes at a time)
# --------------------------------------------------------------------------


def lse_init(like: Array) -> tuple[Array, Array]:
    """Empty running ``(max, sum of exp(logit - max))``, shaped and typed as ``like``.

    The running max starts at the most negative finite number, not ``-inf``,
    so that the first update rescales by ``exp(min - m) = 0`` instead of
    computing ``exp(-inf + inf)``.
    """
    m = jnp.full_like(like, jnp.finfo(like.dtype).min)
    return m, jnp.zeros_like(like)


def lse_update(m: Array, s: Array, logits: Array) -> tuple[Array, Array]:
    """Folds a block of logits (last axis; ``-inf`` = masked) into ``(m, s)``.

    The online softmax recurrence: ``m' = max(m, max block)``,
    ``s' = s·exp(m - m') + Σ exp(block - m')``; at the end
    ``log-sum-exp = m + log s``.
    """
    m_new = jnp.maximum(m, jnp.max(logits, axis=-1))
    s = s * jnp.exp(m - m_new) + jnp.sum(jnp.exp(logits - m_new[..., None]), axis=-1)
    return m_new, s

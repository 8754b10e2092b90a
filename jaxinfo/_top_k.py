r"""KL divergence from a teacher's top-k log-probabilities: offline distillation.

What lives here: :func:`kl_divergence_from_top_k`, the KL divergence between
a teacher known only by its ``k`` largest log-probabilities (and their class
ids) and a student given by its full logits, either over ``k + 1`` outcomes
(the ``k`` classes and one *tail* outcome that holds the rest) or over the
``k`` classes renormalised; and the two quantities it needs that no other
measure does:

* the student's log-probabilities of the top-k classes and of its tail, from
  one log-sum-exp over the classes *outside* the top k (a scatter of the ids
  marks the top-k classes) combined with the ``k`` gathered logits: the
  tail's logarithm is exact to rounding however close the top-k mass is to 1,
  where ``1 - sum(q)`` would cancel to nothing (or to a negative number);
* the teacher's tail ``1 - sum(exp(p_log_probs))`` as ``-expm1(logsumexp)``
  and its logarithm as ``log1mexp``, each exact near both ends.

What does not: the max-shifted log-partition (``_softmax.shift_logits``), the
gather and the scatter by global class ids under ``axis_name`` and the sums
across devices (``_collectives.py``), the argument checks
(``_checks.prepare_top_k``), the ``x log y`` term with ``0 log 0 = 0``
(``_xlogy.xlog_from_log``), the checks of values (``_validation.check_top_k``,
whose :func:`~jaxinfo._validation.repeated` also finds repeated ids here) and
units and the range clamp (``_units.finish``).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from jaxinfo._checks import (
    Array,
    ArrayLike,
    AxisName,
    as_float_array,
    compute_dtype,
    prepare_top_k,
    type_name,
)
from jaxinfo._collectives import class_mask, num_classes, take_classes
from jaxinfo._softmax import shift_logits
from jaxinfo._units import check_base, finish
from jaxinfo._validation import repeated
from jaxinfo._xlogy import finite_floor, xlog_from_log


def kl_divergence_from_top_k(
    p_log_probs: ArrayLike,
    p_ids: ArrayLike,
    q_logits: ArrayLike,
    *,
    tail: bool = True,
    axis: int = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    axis_name: AxisName | None = None,
) -> Array:
    r"""KL divergence ``D(P‖Q)`` from a teacher's top-k log-probabilities to a student's logits.

    Offline distillation stores, for each position, only the teacher's ``k``
    largest log-probabilities ``log p_j`` and their class ids ``i_j``. With
    ``tail=True`` (the default) the classes outside the top k are lumped into
    one more outcome, the *tail*, on both sides, and this is the KL divergence
    between the two distributions over those ``k + 1`` outcomes:

    .. math::
       D(P \,\|\, Q) = \sum_{j=1}^{k} p_j \log\frac{p_j}{q_{i_j}}
         + p_\text{tail} \log\frac{p_\text{tail}}{q_\text{tail}}, \qquad
       p_\text{tail} = 1 - \sum_{j} p_j, \quad
       q_\text{tail} = 1 - \sum_{j} q_{i_j}

    with ``q = softmax(q_logits)`` over all ``V`` classes. Both sides are
    probability distributions over the same ``k + 1`` outcomes, so Gibbs'
    inequality holds: the result is ``>= 0``, and 0 exactly when the student
    matches the teacher on each top-k class and on the total of the rest. The
    sum over the top k alone, the usual truncated loss, is not a divergence:
    it is negative where the student puts more mass on the top k than the
    teacher does, and a student minimising it is pushed to put all its mass
    there (to ``q_{i_j} = p_j / \sum_l p_l``, for a value of
    ``\sum_l p_l \log \sum_l p_l < 0``). The tail term is what holds the
    student's mass outside the top k at the teacher's. It is also the
    divergence of the data processing inequality: at most the KL divergence
    of the full distributions, and equal to it for ``k = V``.

    With ``tail=False`` both sides are renormalised over the ``k`` classes,
    ``\hat p_j = p_j / \sum_l p_l`` and ``\hat q_j = q_{i_j} / \sum_l
    q_{i_l}``, and the result is ``\sum_j \hat p_j \log(\hat p_j / \hat
    q_j)``: the divergence of the two distributions conditioned on the top k,
    blind to how much mass the student keeps outside it (a loss for logits
    that only the top k should shape).

    Numerics: the student's ``log q_{i_j} = \ell_{i_j} - \log Z`` and
    ``\log q_\text{tail}`` come from one log-sum-exp over the classes outside
    the top k (marked by a scatter of the ids, no ``V x k`` comparison)
    combined with the ``k`` gathered logits: the tail is never ``1 - \sum
    q``, which cancels when the top k hold nearly all the mass, so the tail
    term stays exact to rounding down to tails far below the float's
    resolution near 1 (``e^{-100}`` in float32). The teacher's tail is
    ``-expm1(logsumexp(p_log_probs))``, 0 where rounding takes the top-k mass
    above 1.

    Args:
      p_log_probs: the teacher's top-k log-probabilities ``log p_j``, shape
        ``(..., k)`` with ``k`` along ``axis`` (first: the true distribution).
        ``-inf`` marks a class the teacher rules out (``0 log 0 = 0``).
      p_ids: their class ids, integers in ``[0, V)`` of the same shape, global
        ids under ``axis_name``. The ids of real slots must be distinct; a
        repeated id may only fill a padding slot, excluded by ``where``.
      q_logits: the student's logits over all ``V`` classes along ``axis``
        (``-inf``: a class it rules out), with the shape of ``p_log_probs``
        but along ``axis``.
      tail: keep the tail outcome (``True``) or renormalise both sides over
        the ``k`` classes (``False``). A Python bool.
      axis: the axis of the ``k`` slots and of the ``V`` classes.
      where: optional boolean mask, broadcastable to ``p_ids``, of the slots
        that are real (True) rather than padding. Excluded slots count as
        absent: their log-probabilities and ids are ignored (even NaN or out
        of range), their classes belong to the student's tail, and they
        receive zero gradient.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      axis_name: for vocabulary (tensor) parallelism inside ``shard_map``:
        the mesh axis across which the classes of ``q_logits`` are split in
        equal contiguous blocks. Each device passes its block of ``q_logits``
        (and all of ``p_log_probs`` and ``p_ids``, global ids) and gets the
        result over all classes; only ``k`` values per position cross the
        devices (and a maximum and a sum per position for the tail), never
        the classes. ``None``: every class is local.

    Returns:
      ``D(P‖Q) >= 0`` per position, with ``axis`` reduced, in nats (or
      ``base``), in float32 or wider. ``inf`` where the teacher puts mass on
      a top-k class the student rules out, or (``tail=True``) puts tail mass
      where the student has none (every class outside the top k ``-inf``;
      a tail of rounding size counts). Where the ``k`` real slots cover every
      class (``k = V``) there is no tail outcome, and the teacher's rounding
      leftover is dropped. NaN at a position where a real slot's id is out of
      range or repeated (never a silent wrap-around or double count), which
      sends no gradient; 0 where no slot is real and ``tail=False``.
      Gradients in both arrays are finite wherever the value is; where it is
      ``inf``, the gradient in ``q_logits`` stays finite, while that in
      ``p_log_probs`` (the derivative of ``inf``) may not be, as for
      :func:`kl_divergence_from_logits`.

    Raises:
      ValueError: ``p_log_probs`` and ``p_ids`` of different shapes,
        ``q_logits`` whose shape differs from theirs off ``axis``, ``axis``
        out of range, or a ``where`` that does not broadcast to ``p_ids``.
      TypeError: float or boolean ids, non-float arrays, a non-boolean
        ``where``, a ``tail`` that is not a bool, or a non-int ``axis``.

    Examples:
      A teacher over 5 classes, ``[0.5, 0.3, 0.1, 0.06, 0.04]``, stored as
      its top 2; a uniform student. The tail outcome holds 0.2 of the
      teacher's mass and 0.6 of the student's:

      >>> import jax.numpy as jnp, jaxinfo
      >>> log_p, ids = jnp.log(jnp.array([0.5, 0.3])), jnp.array([0, 1])
      >>> q_logits = jnp.zeros(5)
      >>> jaxinfo.kl_divergence_from_top_k(log_p, ids, q_logits)
      Array(0.36, dtype=float32)
      >>> jaxinfo.kl_divergence(jnp.array([0.5, 0.3, 0.2]), jnp.array([0.2, 0.2, 0.6]))
      Array(0.36, dtype=float32)
      >>> jaxinfo.kl_divergence_from_top_k(log_p, ids, q_logits, tail=False)
      Array(0.0316, dtype=float32)

      A batch with a variable number of stored slots, padded (here with a
      repeated id) and marked by ``where``:

      >>> log_p = jnp.log(jnp.array([[0.5, 0.3], [0.9, 1.0]]))
      >>> ids = jnp.array([[0, 1], [2, 2]])
      >>> real = jnp.array([[True, True], [True, False]])
      >>> jaxinfo.kl_divergence_from_top_k(log_p, ids, jnp.zeros((2, 5)), where=real, base=2)
      Array([0.5195, 1.6529], dtype=float32)
    """
    check_base(base)
    if not isinstance(tail, (bool, np.bool_)):
        raise TypeError(
            f"tail must be a bool (True: a tail outcome for the classes outside the top k; "
            f"False: renormalise over the k classes), got {tail!r} of type {type_name(tail)}."
        )
    a, ids, axis, mask = prepare_top_k(p_log_probs, p_ids, axis, where)
    q = as_float_array(q_logits, "q_logits")
    _check_student_shape(a.shape, q.shape, axis)
    dtype = compute_dtype(a.dtype, q.dtype)
    a, q = jnp.moveaxis(a.astype(dtype), axis, -1), jnp.moveaxis(q.astype(dtype), axis, -1)
    ids = jnp.moveaxis(ids, axis, -1)
    real = jnp.ones(ids.shape, jnp.bool_) if mask is None else jnp.moveaxis(mask, axis, -1)

    classes = num_classes(q.shape[-1], axis_name)
    in_range = (ids >= 0) & (ids < classes)
    valid = real & in_range
    bad = jnp.any(real & ~in_range, axis=-1, keepdims=True)
    bad = bad | jnp.any(repeated(jnp, ids, valid), axis=-1, keepdims=True)

    # padding is absent, whatever it holds; so is a slot with a bad id, in a row
    # that is NaN anyway (and then sends no gradient)
    log_p = jnp.where(valid, a, -jnp.inf)
    logits_top = take_classes(q, ids, valid, -jnp.inf, axis_name)
    if tail:
        # the rows with a class outside the top k (k = V real slots leave none)
        open_tail = jnp.sum(valid, axis=-1, keepdims=True, dtype=jnp.int32) < classes
        kl = _with_tail(log_p, logits_top, q, ids, valid, open_tail, axis_name)
    else:
        kl = _renormalised(log_p, logits_top)
    kl = jnp.where(bad, jnp.full_like(kl, jnp.nan), kl)
    return finish(kl, kl.ndim - 1, False, base)


def _check_student_shape(slots: tuple[int, ...], student: tuple[int, ...], axis: int) -> None:
    """``q_logits`` has the shape of ``p_log_probs`` but along ``axis``."""
    same = len(student) == len(slots) and all(
        n == m for d, (n, m) in enumerate(zip(slots, student, strict=True)) if d != axis
    )
    if not same:
        expected = (*slots[:axis], "V", *slots[axis + 1 :])
        shown = "(" + ", ".join(str(n) for n in expected) + (",)" if len(expected) == 1 else ")")
        raise ValueError(
            f"q_logits must have the shape of p_log_probs but along axis (where it holds the "
            f"V classes): p_log_probs has shape {slots} and axis={axis}, so q_logits should "
            f"have shape {shown}, got {student}."
        )


def _log_sum_exp(x: Array, mask: Array | None = None, axis_name: AxisName | None = None) -> Array:
    """``log Σ exp(x)`` along the last axis (kept), ``-inf`` for a row with nothing in it.

    The masked, max-shifted log-partition of :func:`shift_logits` (``mask``:
    the entries to include), whose derivative is finite also on empty rows
    and at ``-inf`` entries.
    """
    sh = shift_logits(x, -1, mask, axis_name)
    return jnp.where(sh.nonempty, sh.shift + sh.log_z, jnp.full_like(sh.log_z, -jnp.inf))


def _empty_as_zero(log_sum: Array) -> Array:
    """A log-sum with ``-inf`` (nothing summed) read as 0, so that subtracting it
    leaves ``-inf`` entries ``-inf``; NaN and ``+inf`` stay."""
    return jnp.where(log_sum == -jnp.inf, jnp.zeros_like(log_sum), log_sum)


def _relative_entropy_terms(p: Array, log_p: Array, log_q: Array) -> Array:
    """``p (log p - log q)`` with ``0 log 0 = 0`` (also where ``log q = -inf``), ``+inf``
    where ``p > 0 = q``; derivatives finite wherever the value is (see ``xlog_from_log``)."""
    return -xlog_from_log(p, log_q - finite_floor(log_p))


def _with_tail(log_p, logits_top, q, ids, valid, open_tail, axis_name):
    """The KL divergence over the ``k`` classes and the tail (last axis, kept)."""
    # The student: log Z over all classes as the log-sum-exp of two exact
    # parts, the classes outside the top k (one masked pass over the logits)
    # and the k gathered logits. log q_tail is then the difference of two
    # logarithms, exact to rounding whatever the top k's share.
    outside = ~class_mask(q.shape, ids, valid, axis_name)
    log_rest = _log_sum_exp(q, outside, axis_name)
    log_top = _log_sum_exp(logits_top)
    log_z = _empty_as_zero(_log_sum_exp(jnp.concatenate([log_rest, log_top], axis=-1)))
    log_q = logits_top - log_z  # -inf on padding and on classes the student rules out
    log_q_tail = log_rest - log_z
    # The teacher: p_tail = 1 - Σ p = -expm1(A), A = log Σ p, and its
    # logarithm log1mexp(A), each exact near both ends. A row whose leftover
    # is below the smallest normal number (a top-k mass of 1 or, by rounding,
    # above) or that has no class outside the top k has no tail; A is
    # replaced there before the logarithm so that neither value nor
    # derivative meets log 0.
    log_mass = _log_sum_exp(log_p)
    has_tail = open_tail & (-jnp.expm1(log_mass) >= jnp.finfo(log_mass.dtype).tiny)
    safe = jnp.where(has_tail, log_mass, -jnp.ones_like(log_mass))
    p_tail = jnp.where(has_tail, -jnp.expm1(safe), jnp.zeros_like(safe))
    log_p_tail = jnp.where(has_tail, _log1mexp(safe), jnp.full_like(safe, -jnp.inf))
    terms = _relative_entropy_terms(jnp.exp(log_p), log_p, log_q)
    tail_term = _relative_entropy_terms(p_tail, log_p_tail, log_q_tail)
    return jnp.sum(terms, axis=-1, keepdims=True) + tail_term


def _log1mexp(x: Array) -> Array:
    """``log(1 - e^x)`` for ``x < 0``: ``log(-expm1(x))`` near 0, ``log1p(-e^x)`` below
    ``-log 2`` (each exact there)."""
    near = x > -math.log(2)
    # each branch sees only its own arguments (neither sends NaN to the other's derivative)
    near_x = jnp.where(near, x, jnp.full_like(x, -1.0))
    far_x = jnp.where(near, jnp.full_like(x, -1.0), x)
    return jnp.where(near, jnp.log(-jnp.expm1(near_x)), jnp.log1p(-jnp.exp(far_x)))


def _renormalised(log_p, logits_top):
    """The KL divergence of both sides renormalised over the ``k`` classes (last axis, kept).

    Needs the ``k`` gathered logits only: the student's log-partition cancels.
    A side with no mass on the k classes is left unnormalised (its log-sum is
    replaced by 0): a teacher with none measures 0, a student with none
    (where the teacher has some) ``inf``.
    """
    log_p_hat = log_p - _empty_as_zero(_log_sum_exp(log_p))
    log_q_hat = logits_top - _empty_as_zero(_log_sum_exp(logits_top))
    terms = _relative_entropy_terms(jnp.exp(log_p_hat), log_p_hat, log_q_hat)
    return jnp.sum(terms, axis=-1, keepdims=True)

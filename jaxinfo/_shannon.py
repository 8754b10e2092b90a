"""Shannon's measures: information, entropy, cross-entropy and KL divergence.

Each measure comes in the forms a user holds: probabilities, logits (any
unnormalised log-probabilities) and, for cross-entropy, integer labels. The
argument order is always (P, Q): the true distribution first, the model second,
as in D(P‖Q) and ``scipy.stats.entropy(pk, qk)``.

Probabilities are normalised along ``axis`` (as SciPy does), so rounding in the
inputs — a bfloat16 distribution whose entries sum to 1.0014, say — does not
leak into the result; for inputs that already sum to one it changes nothing.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxinfo._checks import (
    Array,
    ArrayLike,
    Axis,
    AxisName,
    as_float_array,
    as_label_array,
    as_mask,
    as_real_array,
    canonical_axis,
    check_unit_interval,
    compute_dtype,
    prepare,
    prepare_pair,
    tuple_axis,
)
from jaxinfo._collectives import class_ids, class_sum, num_classes
from jaxinfo._reduction import Reduction, check_reduction, reduce_positions
from jaxinfo._softmax import (
    label_nll,
    shift_logits,
    softmax_cross_entropy,
    softmax_entropy,
    softmax_kl_divergence,
)
from jaxinfo._units import check_base, finish, in_base
from jaxinfo._weights import (
    cross_entropy_of_weights,
    entropy_of_weights,
    kl_divergence_of_weights,
)


def information(p: ArrayLike, *, base: ArrayLike | None = None) -> Array:
    r"""Information content (surprisal) of events with probabilities ``p``.

    .. math::
       h(x) = -\log_b p(x)

    The rarer the event, the more it tells: a sure event carries nothing, an
    impossible one carries ``inf``. Elementwise; no axis is reduced.

    Args:
      p: probabilities of events, any shape.
      base: logarithm base; ``None`` for nats, ``2`` for bits, ``10`` for hartleys.

    Returns:
      ``-log_base(p)``, elementwise, in float32 or wider.

    Examples:
      A team with a 1% chance of winning the cup carries 6.64 bits; the 99%
      favourite carries 0.0145 bits:

      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.information(jnp.array([0.01, 0.99]), base=2)
      Array([6.6439 , 0.0145], dtype=float32)
    """
    check_base(base)
    p = as_float_array(p, "p")
    return in_base(-jnp.log(p), base)


@tuple_axis("p")
def entropy(
    p: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""Shannon entropy of distributions along an axis.

    .. math::
       H(P) = -\sum_i p_i \log p_i, \qquad 0 \log 0 = 0

    The expected information of an outcome drawn from ``P``: the average number
    of bits (``base=2``) needed to say which outcome happened.

    Args:
      p: probabilities; entries along ``axis`` are non-negative and are
        normalised to sum to one (as ``scipy.stats.entropy`` does).
      axis: the axis that holds the outcomes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask, broadcastable to ``p``, of outcomes to
        include; excluded outcomes count as absent (the rest is renormalised).
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      The entropy in ``[0, log K]`` for ``K`` outcomes (those included by
      ``where``), rounding included, with ``axis`` reduced; 0 for a row with
      no mass. bfloat16 and float16 inputs are accumulated and returned in
      float32.

    Examples:
      A fair coin carries one bit; a 99%/1% match only 0.0808 bits:

      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.entropy(jnp.array([[0.5, 0.5], [0.99, 0.01]]), base=2)
      Array([1. , 0.0808], dtype=float32)
    """
    check_base(base)
    p = as_real_array(p, "p")  # bfloat16 stays narrow: widened inside the kernel's loops
    axis = canonical_axis(axis, p.ndim, "p")
    mask = as_mask(where, p.shape, "p")
    outcomes = p.shape[axis]
    if mask is not None:
        p = jnp.where(mask, p, jnp.zeros_like(p))
        outcomes = (jnp.sum(mask, axis=axis, keepdims=True), outcomes)
    h = entropy_of_weights(p, axis)
    return finish(h, axis, keepdims, base, log_of=outcomes)


@tuple_axis("p", "q")
def cross_entropy(
    p: ArrayLike,
    q: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""Cross-entropy of a model distribution ``Q`` against the true ``P``.

    .. math::
       H(P, Q) = -\sum_i p_i \log q_i = H(P) + D(P \,\|\, Q)

    The average information needed to encode outcomes drawn from ``P`` with a
    code built for ``Q``. Minimising it over ``Q`` minimises ``D(P‖Q)``.

    Args:
      p: the true distribution (first, as in ``scipy.stats.entropy(pk, qk)``;
        optax's losses take the model first: mind the order).
      q: the model distribution, broadcastable against ``p``.
      axis: the axis that holds the outcomes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask of outcomes to include.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      ``H(P, Q)`` with ``axis`` reduced: ``inf`` where ``Q`` gives zero
      probability to an outcome that ``P`` does not; terms with ``p = 0``
      contribute 0 whatever ``q`` is. Both ``P`` and ``Q`` are normalised along
      ``axis`` first.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> p = jnp.array([0.99, 0.01])
      >>> jaxinfo.cross_entropy(p, jnp.array([0.5, 0.5]), base=2)
      Array(1., dtype=float32)
      >>> jaxinfo.cross_entropy(p, p, base=2)  # equals H(P)
      Array(0.0808, dtype=float32)
    """
    check_base(base)
    # bfloat16 stays narrow: widened inside the kernel's loops
    p, q, axis = prepare_pair(p, q, "p", "q", axis, where, widen=False)
    ce = cross_entropy_of_weights(p, q, axis)
    return finish(ce, axis, keepdims, base)


@tuple_axis("p", "q")
def kl_divergence(
    p: ArrayLike,
    q: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""Kullback–Leibler divergence (relative entropy) of ``Q`` from ``P``.

    .. math::
       D(P \,\|\, Q) = \sum_i p_i \log \frac{p_i}{q_i} = H(P, Q) - H(P) \ge 0

    How much more information a code built for ``Q`` spends on outcomes drawn
    from ``P`` than the best code, built for ``P`` itself. Zero exactly when
    the two agree (Gibbs' inequality).

    Args:
      p: the true distribution (first).
      q: the model distribution, broadcastable against ``p``.
      axis: the axis that holds the outcomes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask of outcomes to include.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      ``D(P‖Q)`` with ``axis`` reduced: ``inf`` where ``q = 0 < p``, and
      terms with ``p = 0`` contribute 0 whatever ``q`` is. Both arguments are
      normalised along ``axis`` first, and the result is never negative, rounding
      included (``D(P‖P)`` is 0, never ``-1e-7``).

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> p = jnp.array([0.99, 0.01])
      >>> jaxinfo.kl_divergence(p, jnp.array([0.5, 0.5]), base=2)  # 1 - 0.0808
      Array(0.9192, dtype=float32)
      >>> jaxinfo.kl_divergence(p, jnp.array([1.0, 0.0]))  # Q rules out an outcome
      Array(inf, dtype=float32)
    """
    check_base(base)
    # bfloat16 stays narrow: widened inside the kernel's loops
    p, q, axis = prepare_pair(p, q, "p", "q", axis, where, widen=False)
    kl = kl_divergence_of_weights(p, q, axis)
    return finish(kl, axis, keepdims, base)


@tuple_axis("logits")
def entropy_from_logits(
    logits: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    keepdims: bool = False,
    axis_name: AxisName | None = None,
) -> Array:
    r"""Entropy of ``softmax(logits)`` along an axis, without forming it.

    .. math::
       H = \log Z - \frac{1}{Z} \sum_i e^{s_i} s_i, \qquad
       s = \ell - \max \ell, \quad Z = \sum_i e^{s_i}

    Args:
      logits: unnormalised log-probabilities; ``-inf`` marks an impossible
        (masked) class. Normalised log-probabilities are a special case.
      axis: the axis that holds the classes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask of classes to include; excluded classes
        leave the normalisation and receive zero gradient.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.
      axis_name: for vocabulary (tensor) parallelism inside ``shard_map``:
        the mesh axis across which the classes along ``axis`` are split in
        equal contiguous blocks. Each device passes its block and gets the
        result over all classes (partial maxima and sums are combined with
        ``lax.pmax`` / ``lax.psum``). ``None``: every class is local.

    Returns:
      The entropy in ``[0, log K]`` for ``K`` classes (those included by
      ``where``), rounding included, with ``axis`` reduced; 0 for rows with
      every class masked.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.entropy_from_logits(jnp.array([0.0, 0.0, -jnp.inf]), base=2)
      Array(1., dtype=float32)
    """
    check_base(base)
    logits, axis, mask = prepare(logits, "logits", axis, where)
    classes = num_classes(logits.shape[axis], axis_name)
    if mask is not None:
        logits = jnp.where(mask, logits, -jnp.inf)
        classes = (class_sum(mask, axis, axis_name), classes)
    h = softmax_entropy(logits, axis, axis_name)
    return finish(h, axis, keepdims, base, log_of=classes)


@tuple_axis("p", "logits")
def cross_entropy_from_logits(
    p: ArrayLike,
    logits: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    keepdims: bool = False,
    axis_name: AxisName | None = None,
) -> Array:
    r"""Cross-entropy of ``softmax(logits)`` against target probabilities ``p``.

    .. math::
       H(P, Q) = -\sum_i p_i \log q_i, \qquad \log q = \operatorname{log\_softmax}(\ell)

    The soft-target classification loss. Unlike optax's
    ``softmax_cross_entropy(logits, labels)``, the target comes first.

    Args:
      p: target probabilities, normalised along ``axis``.
      logits: the model's unnormalised log-probabilities, broadcastable
        against ``p``.
      axis: the axis that holds the classes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask of classes to include.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.
      axis_name: for vocabulary (tensor) parallelism inside ``shard_map``:
        the mesh axis across which the classes along ``axis`` are split in
        equal contiguous blocks. Each device passes its block and gets the
        result over all classes (partial maxima and sums are combined with
        ``lax.pmax`` / ``lax.psum``). ``None``: every class is local.

    Returns:
      ``H(P, Q)`` with ``axis`` reduced; ``inf`` if ``p > 0`` on a class whose
      logit is ``-inf``, and also where a row's logits spread wider than the
      float range (``max - min`` beyond the float maximum), whose
      log-probabilities then overflow.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.cross_entropy_from_logits(jnp.array([0.99, 0.01]),
      ...                                   jnp.array([0.0, 0.0]), base=2)
      Array(1., dtype=float32)
    """
    check_base(base)
    # bfloat16 stays narrow: widened inside the kernel's loops
    p, logits, axis = prepare_pair(p, logits, "p", "logits", axis, None, widen=False)
    mask = as_mask(where, logits.shape, "logits")
    if mask is not None or axis_name is not None:
        dtype = compute_dtype(p.dtype, logits.dtype)
        p, logits = p.astype(dtype), logits.astype(dtype)
    if mask is not None:
        p = jnp.where(mask, p, jnp.zeros_like(p))
        logits = jnp.where(mask, logits, -jnp.inf)
    ce = softmax_cross_entropy(p, logits, axis, axis_name)
    return finish(ce, axis, keepdims, base)


@tuple_axis("p_logits", "q_logits")
def kl_divergence_from_logits(
    p_logits: ArrayLike,
    q_logits: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    keepdims: bool = False,
    axis_name: AxisName | None = None,
) -> Array:
    r"""KL divergence ``D(P‖Q)`` between ``softmax(p_logits)`` and ``softmax(q_logits)``.

    .. math::
       D(P \,\|\, Q) = \sum_i p_i \left(\log p_i - \log q_i\right)

    Args:
      p_logits: logits of the true distribution ``P`` (first).
      q_logits: logits of the model ``Q``, broadcastable against ``p_logits``.
      axis: the axis that holds the classes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask of classes to include (applies to both).
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.
      axis_name: for vocabulary (tensor) parallelism inside ``shard_map``:
        the mesh axis across which the classes along ``axis`` are split in
        equal contiguous blocks. Each device passes its block and gets the
        result over all classes (partial maxima and sums are combined with
        ``lax.pmax`` / ``lax.psum``). ``None``: every class is local.

    Returns:
      ``D(P‖Q)`` with ``axis`` reduced; classes with ``p = 0`` contribute 0,
      and ``inf`` results where ``Q`` rules out (logit ``-inf``) a class to
      which ``P`` gives positive probability. A class whose probability under
      ``P`` underflows to 0 in the computation dtype is outside ``P``'s
      support. As for :func:`cross_entropy_from_logits`, logits that spread
      wider than the float range may give ``inf``.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> p_logits = jnp.log(jnp.array([0.99, 0.01]))
      >>> jaxinfo.kl_divergence_from_logits(p_logits, jnp.zeros(2), base=2)
      Array(0.9192, dtype=float32)
    """
    check_base(base)
    a, b, axis = prepare_pair(p_logits, q_logits, "p_logits", "q_logits", axis, None)
    mask = as_mask(where, a.shape, "p_logits")
    if mask is not None:
        a = jnp.where(mask, a, -jnp.inf)
        b = jnp.where(mask, b, -jnp.inf)
    kl = softmax_kl_divergence(a, b, axis, axis_name)
    return finish(kl, axis, keepdims, base)


@tuple_axis("logits", labels="labels")
def cross_entropy_from_labels(
    labels: ArrayLike,
    logits: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    label_smoothing: ArrayLike = 0.0,
    axis_name: AxisName | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Cross-entropy of ``softmax(logits)`` against integer class labels.

    .. math::
       H(\delta_y, Q) = -\log q_y = \log Z - s_y

    With ``label_smoothing = ε`` the target is ``(1 - ε)·δ_y + ε·U``, where
    ``U`` is uniform over the classes that are included by ``where`` and whose
    logit is not ``-inf``.

    Args:
      labels: integer class ids, with the shape of ``logits`` without ``axis``.
        A negative label marks an ignored position (padding): its loss is 0
        and it sends no gradient. A label ``>= num_classes`` is out of range
        and gives NaN (never a silent wrap-around).
      logits: the model's unnormalised log-probabilities.
      axis: the axis of ``logits`` that holds the classes.
      where: optional boolean mask, broadcastable to ``logits``, of classes to
        include. A label on an excluded class has loss ``inf``, except in a
        row whose classes are all excluded (or ``-inf``): like every empty row,
        it measures 0.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      label_smoothing: ``ε`` in ``[0, 1]``; may be traced.
      axis_name: for vocabulary (tensor) parallelism inside ``shard_map``:
        the mesh axis across which the classes along ``axis`` are split in
        equal contiguous blocks. Each device passes its block and gets the
        result over all classes (partial maxima and sums are combined with
        ``lax.pmax`` / ``lax.psum``). Labels stay global class ids.
        ``None``: every class is local.
      reduction: ``"none"`` for the per-position loss; ``"sum"`` for its sum;
        ``"mean"`` for its mean over the positions whose label is ``>= 0``,

        .. math::
           \bar\ell = \frac{\sum_i [y_i \ge 0]\, \ell_i}{\sum_i [y_i \ge 0]},

        with the gradient of exactly that, and 0 (with a zero gradient) for a
        batch with no such position. Padding does not dilute it, as it does
        ``loss.mean()``. Every axis of ``labels`` is reduced, on each device
        alone: with ``axis_name`` the per-position loss is already the same on
        every device of that axis; positions split across devices (data
        parallelism) are for the caller to combine (``lax.psum`` both the
        ``"sum"`` and the count ``(labels >= 0).sum()``, then divide).

    Returns:
      For ``reduction="none"``, the per-position loss, shaped like
      ``labels``; otherwise a scalar (NaN if a label is out of range, ``inf``
      if one sits on an excluded class).

    Raises:
      ValueError: ``reduction`` is not one of ``"none"``, ``"sum"``,
        ``"mean"``; or ``labels`` does not have the shape of ``logits``
        without ``axis``.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> logits = jnp.log(jnp.array([[0.99, 0.01], [0.5, 0.5]]))
      >>> jaxinfo.cross_entropy_from_labels(jnp.array([1, -1]), logits, base=2)
      Array([6.6439, 0. ], dtype=float32)

      An untrained model, uniform over 1000 tokens, loses ``log 1000 = 6.91``
      nats on each of the 4 real tokens of a padded batch; ``.mean()`` counts
      the 4 pads as well, as perfect predictions, and halves it:

      >>> logits = jnp.zeros((2, 4, 1000))
      >>> labels = jnp.array([[5, 9, 2, -1], [7, -1, -1, -1]])  # -1: padding
      >>> jaxinfo.cross_entropy_from_labels(labels, logits).mean()  # wrong
      Array(3.4539, dtype=float32)
      >>> jaxinfo.cross_entropy_from_labels(labels, logits, reduction="mean")
      Array(6.9078, dtype=float32)
    """
    check_base(base)
    check_reduction(reduction)
    labels = as_label_array(labels)
    logits = as_float_array(logits, "logits")
    axis = canonical_axis(axis, logits.ndim, "logits")
    expected = logits.shape[:axis] + logits.shape[axis + 1 :]
    if labels.shape != expected:
        raise ValueError(
            f"labels must have the shape of logits without the class axis: logits "
            f"has shape {logits.shape} and axis={axis}, so labels should have shape "
            f"{expected}, got {labels.shape}."
        )
    check_unit_interval(label_smoothing, "label_smoothing")
    mask = as_mask(where, logits.shape, "logits")
    n_classes = num_classes(logits.shape[axis], axis_name)
    y = jnp.expand_dims(labels, axis)
    no_smoothing = isinstance(label_smoothing, (int, float)) and label_smoothing == 0
    if mask is not None:
        logits = jnp.where(mask, logits, -jnp.inf)
    if no_smoothing and axis_name is None:
        # The common case, two passes over the logits and a gather.
        loss = label_nll(logits, jnp.clip(y, 0, n_classes - 1), axis)
    else:
        sh = shift_logits(logits, axis, None, axis_name)
        is_label = class_ids(logits.shape, axis, axis_name) == y
        s_y = class_sum(jnp.where(is_label, sh.s, jnp.zeros_like(sh.s)), axis, axis_name)
        # -inf on an empty row, which measures 0: made finite before any product,
        # so that the zero cotangent of the final select does not meet 0 * inf.
        s_y = jnp.where(sh.nonempty, s_y, jnp.zeros_like(s_y))
        if no_smoothing:
            loss = sh.log_z - s_y
        else:
            eps = jnp.asarray(label_smoothing, dtype=logits.dtype)
            loss = sh.log_z - _smoothed_target_sum(logits, sh, is_label, s_y, eps, axis, axis_name)
        loss = jnp.where(sh.nonempty, loss, jnp.zeros_like(loss))
    loss = jnp.where(y >= n_classes, jnp.full_like(loss, jnp.nan), loss)
    loss = jnp.where(y < 0, jnp.zeros_like(loss), loss)
    return reduce_positions(finish(loss, axis, False, base), labels >= 0, reduction)


def _smoothed_target_sum(logits, sh, is_label, s_y, eps, axis, axis_name):
    """``sum(t * s)`` for the smoothed target ``t = (1 - eps) onehot + eps U``.

    ``s = logits - max``. For a logit so far below the maximum that ``s``
    overflows to ``-inf`` (a spread beyond the float range) the class is still
    in play: its term is taken as ``w * logit - w * max``, each finite. A
    label on a class that is ruled out (excluded or ``-inf``) makes the sum
    ``-inf`` for ``eps < 1``, as a constant: the derivative in ``eps`` stays
    finite, so a zero cotangent on that (infinite) loss sends zero.
    """
    valid = logits > -jnp.inf
    n_valid = class_sum(valid, axis, axis_name).astype(logits.dtype)
    weight = eps / jnp.maximum(n_valid, 1)  # the mean as a sum: a sum of logits overflows
    safe = jnp.where(valid, logits, jnp.zeros_like(logits))
    s = safe - sh.shift
    terms = jnp.where(s > -jnp.inf, s * weight, safe * weight - sh.shift * weight)
    total = class_sum(jnp.where(valid, terms, jnp.zeros_like(terms)), axis, axis_name)
    # the label's own term, (1 - eps) * s_y, with the same care
    logit_y = class_sum(jnp.where(is_label, safe, jnp.zeros_like(safe)), axis, axis_name)
    in_play = class_sum(is_label & valid, axis, axis_name) > 0
    spread = in_play & (s_y == -jnp.inf)
    keep = 1 - eps
    direct = keep * jnp.where(in_play & ~spread, s_y, jnp.zeros_like(s_y))
    far = keep * jnp.where(spread, logit_y, jnp.zeros_like(logit_y))
    far = far - keep * jnp.where(spread, sh.shift, jnp.zeros_like(sh.shift))
    ruled_out = jnp.where(~in_play & (keep > 0), -jnp.inf, 0).astype(total.dtype)
    return total + direct + far + ruled_out

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
from jax.typing import ArrayLike

from jaxinfo import _numerics as nx

Array = nx.Array


def _prepare(x, name, axis, where):
    x = nx.as_float_array(x, name)
    axis = nx.canonical_axis(axis, x.ndim, name)
    mask = nx.as_mask(where, x.shape, name)
    return x, axis, mask


def _prepare_pair(x, y, x_name, y_name, axis, where):
    x, y = nx.as_float_arrays((x, x_name), (y, y_name))
    x, y = nx.broadcast_pair(x, y, x_name, y_name)
    axis = nx.canonical_axis(axis, x.ndim, x_name)
    mask = nx.as_mask(where, x.shape, x_name)
    if mask is not None:
        x = jnp.where(mask, x, jnp.zeros_like(x))
        y = jnp.where(mask, y, jnp.zeros_like(y))
    return x, y, axis


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
    nx.check_base(base)
    p = nx.as_float_array(p, "p")
    return nx.in_base(-jnp.log(p), base)


def entropy(
    p: ArrayLike,
    *,
    axis: int = -1,
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
      axis: the axis that holds the outcomes.
      where: optional boolean mask, broadcastable to ``p``, of outcomes to
        include; excluded outcomes count as absent (the rest is renormalised).
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      The entropy, with ``axis`` reduced; 0 for a row with no mass. bfloat16
      and float16 inputs are accumulated and returned in float32.

    Examples:
      A fair coin carries one bit; a 99%/1% match only 0.0808 bits:

      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.entropy(jnp.array([[0.5, 0.5], [0.99, 0.01]]), base=2)
      Array([1. , 0.0808], dtype=float32)
    """
    nx.check_base(base)
    p, axis, mask = _prepare(p, "p", axis, where)
    if mask is not None:
        p = jnp.where(mask, p, jnp.zeros_like(p))
    sp = nx.scale_by_max(p, axis)
    # Divided by the total inside the sum: the derivative of a sum divided
    # afterwards multiplies the sum by the derivative of the total first.
    h = jnp.log(sp.total) - jnp.sum(nx.xlogx(sp.x) / sp.total, axis=axis, keepdims=True)
    return nx.finish(h, axis, keepdims, base)


def cross_entropy(
    p: ArrayLike,
    q: ArrayLike,
    *,
    axis: int = -1,
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
      axis: the axis that holds the outcomes.
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
    nx.check_base(base)
    p, q, axis = _prepare_pair(p, q, "p", "q", axis, where)
    sp = nx.scale_by_max(p, axis)
    log_total_q = nx.scale_by_max(q, axis).log_total
    ce = log_total_q - jnp.sum(nx.xlogy(sp.x / sp.total, q), axis=axis, keepdims=True)
    ce = jnp.where(sp.nonempty, ce, jnp.zeros_like(ce))
    return nx.finish(ce, axis, keepdims, base)


def kl_divergence(
    p: ArrayLike,
    q: ArrayLike,
    *,
    axis: int = -1,
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
      axis: the axis that holds the outcomes.
      where: optional boolean mask of outcomes to include.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      ``D(P‖Q)`` with ``axis`` reduced: ``inf`` where ``q = 0 < p``, and
      terms with ``p = 0`` contribute 0 whatever ``q`` is. Both arguments are
      normalised along ``axis`` first, so the result is never negative beyond
      rounding.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> p = jnp.array([0.99, 0.01])
      >>> jaxinfo.kl_divergence(p, jnp.array([0.5, 0.5]), base=2)  # 1 - 0.0808
      Array(0.9192, dtype=float32)
      >>> jaxinfo.kl_divergence(p, jnp.array([1.0, 0.0]))  # Q rules out an outcome
      Array(inf, dtype=float32)
    """
    nx.check_base(base)
    p, q, axis = _prepare_pair(p, q, "p", "q", axis, where)
    sp = nx.scale_by_max(p, axis)
    sq = nx.scale_by_max(q, axis)
    # With x, y = p, q scaled to order one and T_x, T_y their totals, the
    # scales cancel: D = sum_i p_i (log x_i - log y_i) - log T_x + log T_y,
    # with p = x / T_x normalised inside the sum. No large logarithm cancels,
    # the derivatives never multiply a sum by the derivative of a total, and
    # identical inputs cancel exactly, term by term.
    pn = sp.x / sp.total
    terms = pn * nx.clamped_log(sp.x) - nx.xlog_from_log(pn, nx.log_scaled(q, sq))
    kl = jnp.sum(terms, axis=axis, keepdims=True) - jnp.log(sp.total) + jnp.log(sq.total)
    kl = jnp.where(sp.nonempty, kl, jnp.zeros_like(kl))
    return nx.finish(kl, axis, keepdims, base)


def entropy_from_logits(
    logits: ArrayLike,
    *,
    axis: int = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""Entropy of ``softmax(logits)`` along an axis, without forming it.

    .. math::
       H = \log Z - \frac{1}{Z} \sum_i e^{s_i} s_i, \qquad
       s = \ell - \max \ell, \quad Z = \sum_i e^{s_i}

    Args:
      logits: unnormalised log-probabilities; ``-inf`` marks an impossible
        (masked) class. Normalised log-probabilities are a special case.
      axis: the axis that holds the classes.
      where: optional boolean mask of classes to include; excluded classes
        leave the normalisation and receive zero gradient.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      The entropy with ``axis`` reduced; 0 for rows with every class masked.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.entropy_from_logits(jnp.array([0.0, 0.0, -jnp.inf]), base=2)
      Array(1., dtype=float32)
    """
    nx.check_base(base)
    logits, axis, mask = _prepare(logits, "logits", axis, where)
    sh = nx.shift_logits(logits, axis, mask)
    weighted = jnp.sum(sh.exp_s * nx.finite_floor(sh.s), axis=axis, keepdims=True)
    h = sh.log_z - weighted / sh.z
    return nx.finish(h, axis, keepdims, base)


def cross_entropy_from_logits(
    p: ArrayLike,
    logits: ArrayLike,
    *,
    axis: int = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    keepdims: bool = False,
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
      axis: the axis that holds the classes.
      where: optional boolean mask of classes to include.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      ``H(P, Q)`` with ``axis`` reduced; ``inf`` if ``p > 0`` on a class whose
      logit is ``-inf``.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.cross_entropy_from_logits(jnp.array([0.99, 0.01]),
      ...                                   jnp.array([0.0, 0.0]), base=2)
      Array(1., dtype=float32)
    """
    nx.check_base(base)
    p, logits, axis = _prepare_pair(p, logits, "p", "logits", axis, None)
    mask = nx.as_mask(where, logits.shape, "logits")
    if mask is not None:
        p = jnp.where(mask, p, jnp.zeros_like(p))
    sh = nx.shift_logits(logits, axis, mask)
    sp = nx.scale_by_max(p, axis)
    # p is normalised inside the sum: with logits near the float maximum the
    # sum of p_i * s_i before dividing by sum(p) could overflow.
    weighted = jnp.sum(nx.xlog_from_log(sp.x / sp.total, sh.s), axis=axis, keepdims=True)
    ce = sh.log_z - weighted
    ce = jnp.where(sp.nonempty, ce, jnp.zeros_like(ce))
    return nx.finish(ce, axis, keepdims, base)


def kl_divergence_from_logits(
    p_logits: ArrayLike,
    q_logits: ArrayLike,
    *,
    axis: int = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""KL divergence ``D(P‖Q)`` between ``softmax(p_logits)`` and ``softmax(q_logits)``.

    .. math::
       D(P \,\|\, Q) = \sum_i p_i \left(\log p_i - \log q_i\right)

    Args:
      p_logits: logits of the true distribution ``P`` (first).
      q_logits: logits of the model ``Q``, broadcastable against ``p_logits``.
      axis: the axis that holds the classes.
      where: optional boolean mask of classes to include (applies to both).
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      ``D(P‖Q)`` with ``axis`` reduced; classes with ``p = 0`` contribute 0,
      and ``inf`` results where ``Q`` rules out a class that ``P`` allows.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> p_logits = jnp.log(jnp.array([0.99, 0.01]))
      >>> jaxinfo.kl_divergence_from_logits(p_logits, jnp.zeros(2), base=2)
      Array(0.9192, dtype=float32)
    """
    nx.check_base(base)
    a, b, axis = _prepare_pair(p_logits, q_logits, "p_logits", "q_logits", axis, None)
    mask = nx.as_mask(where, a.shape, "p_logits")
    sa = nx.shift_logits(a, axis, mask)
    sb = nx.shift_logits(b, axis, mask)
    # Classes outside P's support (exp_s == 0, masked or underflowed) contribute
    # 0; the difference is replaced there *before* the product so that neither
    # its value nor its gradient can be 0 * inf.
    diff = jnp.where(sa.exp_s == 0, jnp.zeros_like(sa.s), sa.s - sb.s)
    weighted = jnp.sum(sa.exp_s / sa.z * diff, axis=axis, keepdims=True)
    kl = weighted - sa.log_z + sb.log_z
    kl = jnp.where(sa.nonempty, kl, jnp.zeros_like(kl))
    return nx.finish(kl, axis, keepdims, base)


def cross_entropy_from_labels(
    labels: ArrayLike,
    logits: ArrayLike,
    *,
    axis: int = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    label_smoothing: ArrayLike = 0.0,
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
        row whose classes are all excluded (or ``-inf``): like every empty
        row, it measures 0.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      label_smoothing: ``ε`` in ``[0, 1]``; may be traced.

    Returns:
      The per-position loss, shaped like ``labels``.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> logits = jnp.log(jnp.array([[0.99, 0.01], [0.5, 0.5]]))
      >>> jaxinfo.cross_entropy_from_labels(jnp.array([1, -1]), logits, base=2)
      Array([6.6439, 0. ], dtype=float32)
    """
    nx.check_base(base)
    labels = nx.as_label_array(labels)
    logits = nx.as_float_array(logits, "logits")
    axis = nx.canonical_axis(axis, logits.ndim, "logits")
    expected = logits.shape[:axis] + logits.shape[axis + 1 :]
    if labels.shape != expected:
        raise ValueError(
            f"labels must have the shape of logits without the class axis: logits "
            f"has shape {logits.shape} and axis={axis}, so labels should have shape "
            f"{expected}, got {labels.shape}."
        )
    nx.check_unit_interval(label_smoothing, "label_smoothing")
    mask = nx.as_mask(where, logits.shape, "logits")
    num_classes = logits.shape[axis]
    sh = nx.shift_logits(logits, axis, mask)
    y = jnp.expand_dims(labels, axis)
    is_label = nx.class_ids(logits.shape, axis) == y
    s_y = jnp.sum(jnp.where(is_label, sh.s, jnp.zeros_like(sh.s)), axis=axis, keepdims=True)
    if isinstance(label_smoothing, (int, float)) and label_smoothing == 0:
        loss = sh.log_z - s_y
    else:
        eps = jnp.asarray(label_smoothing, dtype=logits.dtype)
        valid = sh.s > -jnp.inf
        n_valid = jnp.sum(valid, axis=axis, keepdims=True).astype(logits.dtype)
        s_valid = jnp.where(valid, sh.s, jnp.zeros_like(sh.s))
        s_mean = jnp.sum(s_valid / jnp.maximum(n_valid, 1), axis=axis, keepdims=True)
        loss = sh.log_z - nx.xlog_from_log(1 - eps, s_y) - eps * s_mean
    loss = jnp.where(sh.nonempty, loss, jnp.zeros_like(loss))
    loss = jnp.where(y >= num_classes, jnp.full_like(loss, jnp.nan), loss)
    loss = jnp.where(y < 0, jnp.zeros_like(loss), loss)
    return nx.finish(loss, axis, False, base)

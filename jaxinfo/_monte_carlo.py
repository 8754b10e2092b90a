"""KL divergence estimated from samples: the k1, k2 and k3 estimators.

For samples ``x ~ P`` whose log-probabilities under ``P`` and ``Q`` are known
(a policy and its reference in RL fine-tuning, say), ``D(P‖Q) = E_P[log p -
log q]`` is estimated by averaging one of three per-sample terms, as in
J. Schulman's note "Approximating KL divergence" (2020).
"""

from __future__ import annotations

import math
import operator

import jax.numpy as jnp

from jaxinfo._checks import Array, ArrayLike, as_float_arrays, as_mask, broadcast_pair, type_name
from jaxinfo._xlogy import expm1_minus

KL_ESTIMATORS = ("k1", "k2", "k3")


def _axes(axis: object, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple of ints) as distinct axes ``>= 0``."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for a in items:
        try:
            a = operator.index(a)
        except TypeError as e:
            raise TypeError(
                f"axis must be None, an int or a tuple of ints, got {axis!r} of type "
                f"{type_name(axis)}."
            ) from e
        if not -ndim <= a < ndim:
            raise ValueError(
                f"axis {a} is out of range for log_p with {ndim} dimension(s); "
                f"expected -{ndim} <= axis < {ndim}."
            )
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axis {axis!r} names an axis twice.")
    return tuple(out)


def kl_estimate(
    log_p: ArrayLike,
    log_q: ArrayLike,
    *,
    estimator: str = "k3",
    where: ArrayLike | None = None,
    axis: int | tuple[int, ...] | None = None,
) -> Array:
    r"""Estimates ``D(P‖Q)`` from samples of ``P`` and their log-probabilities.

    .. math::
       \hat D = \frac{1}{n} \sum_{i=1}^{n} k(d_i), \qquad
       d_i = \log q(x_i) - \log p(x_i), \quad x_i \sim P

    With ``d = log q(x) - log p(x)`` for each sample ``x ~ P`` and ``r = e^d``,
    the term ``k`` is:

    * ``"k1"``: :math:`-d = \log p - \log q`, unbiased, of high variance, and
      negative for some samples;
    * ``"k2"``: :math:`\tfrac12 d^2`, biased (its mean is an f-divergence that
      agrees with KL to second order as ``Q → P``) but of low variance, never
      negative;
    * ``"k3"``: :math:`(r - 1) - \log r = e^d - 1 - d`, unbiased (``E_P[r] =
      1``), of low variance, and never negative. Formed as
      ``expm1(d) - d``, which keeps its digits near ``d = 0``, where
      ``(r - 1) - log r`` cancels; finite wherever ``e^d`` fits the float range.

    The terms are averaged over ``axis`` (every axis by default), counting only
    the samples that ``where`` includes.

    Args:
      log_p: ``log p(x)`` of each sample under ``P``, the distribution it was
        drawn from.
      log_q: ``log q(x)`` under ``Q``, broadcastable with ``log_p``.
      estimator: ``"k1"``, ``"k2"`` or ``"k3"``.
      where: optional boolean mask, broadcastable to the samples, of samples
        to include (padding excluded); the excluded ones may hold anything,
        ``-inf`` and NaN included, and get zero gradient.
      axis: the axis or axes to average over; ``None`` for all.

    Returns:
      The estimate in nats, with ``axis`` reduced; 0 where no sample is
      included.

    Raises:
      ValueError: for an ``estimator`` that is not one of the three, shapes
        that do not broadcast, or an ``axis`` out of range.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> log_p, log_q = jnp.log(jnp.array([0.5, 0.25])), jnp.log(jnp.array([0.25, 0.5]))
      >>> jaxinfo.kl_estimate(log_p, log_q, estimator="k1")
      Array(0., dtype=float32)
      >>> jaxinfo.kl_estimate(log_p, log_q)  # ((1 + log 2) + (-1/2 - log 2)) / 2
      Array(0.25, dtype=float32)

    References:
      J. Schulman, "Approximating KL divergence", 2020,
      http://joschu.net/blog/kl-approx.html
    """
    if not isinstance(estimator, str) or estimator not in KL_ESTIMATORS:
        raise ValueError(
            f"estimator must be one of {', '.join(map(repr, KL_ESTIMATORS))}, got {estimator!r}."
        )
    log_p, log_q = as_float_arrays((log_p, "log_p"), (log_q, "log_q"))
    log_p, log_q = broadcast_pair(log_p, log_q, "log_p", "log_q")
    axes = _axes(axis, log_p.ndim)
    mask = as_mask(where, log_p.shape, "log_p")
    d = log_q - log_p
    if mask is not None:
        d = jnp.where(mask, d, jnp.zeros_like(d))  # before the terms: no NaN in the gradient
    if estimator == "k1":
        terms = -d
    elif estimator == "k2":
        terms = 0.5 * d * d
    else:
        terms = expm1_minus(d)
    if mask is None:
        count = max(math.prod(d.shape[a] for a in axes), 1)
        return jnp.sum(terms, axis=axes) / count
    count = jnp.sum(mask, axis=axes).astype(d.dtype)
    return jnp.sum(terms, axis=axes) / jnp.maximum(count, 1)

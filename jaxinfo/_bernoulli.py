"""Bernoulli variables given by logits: binary cross-entropy and KL, elementwise.

A logit ``ℓ`` stands for ``P(1) = σ(ℓ)``, and ``log σ(ℓ) = -softplus(-ℓ)``,
``log σ(-ℓ) = log(1 - σ(ℓ)) = -softplus(ℓ)``: every logarithm is a softplus,
which stays exact for logits of any size (``σ`` itself rounds to 0 or 1 from
``|ℓ| ≈ 17`` in float32, and its logarithm would be ``-inf``). These are the
two-class cases of the ``*_from_logits`` measures of ``_shannon.py``, whose
class axis they do not need. ``binary_entropy`` of probabilities lives in
``_estimators.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxinfo._checks import Array, ArrayLike, as_float_arrays, broadcast_pair, check_probabilities
from jaxinfo._units import check_base, in_base
from jaxinfo._xlogy import expm1_minus, xlog_from_log


def binary_cross_entropy_from_logits(
    p: ArrayLike, logits: ArrayLike, *, base: ArrayLike | None = None
) -> Array:
    r"""Cross-entropy of a Bernoulli target ``p`` against a model's logit, elementwise.

    .. math::
       H(p, \sigma(\ell)) = -p \log \sigma(\ell) - (1 - p) \log \sigma(-\ell)
         = p \operatorname{softplus}(-\ell) + (1 - p) \operatorname{softplus}(\ell)

    The softplus form is exact for logits of any size (``±1e4`` included),
    its gradient in the logit is ``σ(ℓ) - p``, and it equals
    :func:`cross_entropy_from_logits` on the two classes
    ``([p, 1 - p], [ℓ, 0])``.

    Args:
      p: target probabilities of the outcome 1, in ``[0, 1]`` (0/1 labels or
        soft targets), broadcastable with ``logits``.
      logits: the model's logits, ``σ(ℓ)`` = its probability of the outcome 1.
      base: logarithm base; ``None`` for nats, ``2`` for bits.

    Returns:
      The cross-entropy elementwise (no axis is reduced), in the broadcast
      shape, in float32 or wider.

    Raises:
      ValueError: for a concrete ``p`` with an entry outside ``[0, 1]`` (its
        index is named; a traced ``p`` is taken as given), or shapes that do
        not broadcast.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.binary_cross_entropy_from_logits(jnp.array([1.0, 0.0, 0.5]), 0.0, base=2)
      Array([1., 1., 1.], dtype=float32)
      >>> jaxinfo.binary_cross_entropy_from_logits(jnp.array([1.0, 0.0]), jnp.array([-1e4, -1e4]))
      Array([10000.,     0.], dtype=float32)
    """
    check_base(base)
    check_probabilities(p, "p")
    p, logits = as_float_arrays((p, "p"), (logits, "logits"))
    p, logits = broadcast_pair(p, logits, "p", "logits")
    log_one, log_zero = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
    ce = 0 - (xlog_from_log(p, log_one) + xlog_from_log(1 - p, log_zero))
    return in_base(ce, base)


def _weighted_term(p: Array, q: Array, u: Array) -> Array:
    """``p (e^u - 1 - u)`` for ``u = log(q / p)``: one outcome's share of the divergence.

    Up to ``u = 1`` it is ``p · expm1_minus(u)``, which keeps its digits near
    ``u = 0``; beyond, ``(q - p) - p u`` (``p e^u = q``), which stays finite
    where ``e^u`` alone would overflow (``p`` near 0, ``q`` not). The two
    branches see only their own arguments, so neither sends NaN to the other's
    gradient.
    """
    large = u > 1
    u_small = jnp.where(large, jnp.zeros_like(u), u)
    return jnp.where(large, (q - p) - p * u, p * expm1_minus(u_small))


def binary_kl_divergence_from_logits(
    p_logits: ArrayLike, q_logits: ArrayLike, *, base: ArrayLike | None = None
) -> Array:
    r"""KL divergence between Bernoulli variables given by logits, elementwise.

    With ``p = σ(a)``, ``q = σ(b)``, ``u = log(q / p)`` and
    ``v = log((1 - q) / (1 - p))``, each a difference of softplus terms:

    .. math::
       D(\sigma(a) \| \sigma(b)) = -p u - (1 - p) v
         = p \big(e^{u} - 1 - u\big) + (1 - p) \big(e^{v} - 1 - v\big)

    (the two forms agree because ``p e^u + (1 - p) e^v = 1``). The second is
    a sum of non-negative terms, so nothing cancels: equal logits give exactly
    0 with a zero gradient, a small divergence keeps its digits, and logits of
    ``±1e4`` give exact values. Equals :func:`kl_divergence_from_logits` on
    the two classes ``([a, 0], [b, 0])``.

    Args:
      p_logits: logits ``a`` of ``P`` (the reference).
      q_logits: logits ``b`` of ``Q`` (the model), broadcastable with ``p_logits``.
      base: logarithm base; ``None`` for nats, ``2`` for bits.

    Returns:
      The divergence elementwise, in the broadcast shape, never negative.

    Raises:
      ValueError: for shapes that do not broadcast.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.binary_kl_divergence_from_logits(jnp.array([0.0, 3.0]), jnp.array([0.0, 0.0]))
      Array([0.    , 0.5023], dtype=float32)
    """
    check_base(base)
    a, b = as_float_arrays((p_logits, "p_logits"), (q_logits, "q_logits"))
    a, b = broadcast_pair(a, b, "p_logits", "q_logits")
    log_p, log_q = jax.nn.log_sigmoid(a), jax.nn.log_sigmoid(b)
    log_not_p, log_not_q = jax.nn.log_sigmoid(-a), jax.nn.log_sigmoid(-b)
    p, q = jnp.exp(log_p), jnp.exp(log_q)
    not_p, not_q = jnp.exp(log_not_p), jnp.exp(log_not_q)
    kl = _weighted_term(p, q, log_q - log_p) + _weighted_term(not_p, not_q, log_not_q - log_not_p)
    return in_base(kl, base)

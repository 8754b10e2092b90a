"""Entropy in the forms people report it: binary, as a perplexity, estimated from counts.

``entropy_from_counts`` estimates the entropy of the distribution a histogram
was drawn from. The plug-in value (the entropy of the empirical frequencies)
is biased low, by about ``(m - 1) / (2N)`` nats for ``m`` occupied bins and
``N`` samples, and more when many outcomes are unseen; the Miller–Madow and
Chao–Shen estimators correct for that.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxinfo._checks import Array, ArrayLike, Axis, as_float_array, canonical_axis, tuple_axis
from jaxinfo._range import normalise
from jaxinfo._shannon import entropy
from jaxinfo._units import check_base, clamp, finish, to_unit
from jaxinfo._xlogy import xlogx

ESTIMATORS = ("plugin", "miller_madow", "chao_shen")


def binary_entropy(p: ArrayLike, *, base: ArrayLike | None = None) -> Array:
    r"""Entropy of a binary variable that is 1 with probability ``p``, elementwise.

    .. math::
       h(p) = -p \log p - (1 - p) \log (1 - p), \qquad h(0) = h(1) = 0

    Args:
      p: probabilities in ``[0, 1]``, any shape.
      base: logarithm base; ``None`` for nats, ``2`` for bits.

    Returns:
      ``h(p)`` elementwise (no axis is reduced), in float32 or wider; NaN for
      ``p`` outside ``[0, 1]``. Gradients are finite at ``p = 0`` and ``1``.

    Examples:
      A fair coin carries one bit; a 99%/1% match 0.0808 bits:

      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.binary_entropy(jnp.array([0.5, 0.01, 0.0, 1.0]), base=2)
      Array([1. , 0.0808, 0. , 0. ], dtype=float32)
    """
    check_base(base)
    p = as_float_array(p, "p")
    # (1 - p) log(1 - p) from log1p below 1/2: there 1 - p rounds (to 1 for p
    # below the epsilon, dropping the whole term, about -p, which is a relative
    # error of 1 / (1 - log p) in h). From 1/2 up, 1 - p is exact and xlogx
    # gives the finite derivative at p = 1. Each branch sees a safe argument.
    low = p < 0.5
    p_low = jnp.where(low, p, jnp.zeros_like(p))
    q_high = jnp.where(low, jnp.zeros_like(p), 1 - p)
    other = jnp.where(low, (1 - p_low) * jnp.log1p(-p_low), xlogx(q_high))
    h = 0 - (xlogx(p) + other)  # 0 - x, not -x: h(0) = h(1) = +0
    h = jnp.where((p >= 0) & (p <= 1), h, jnp.full_like(h, jnp.nan))
    return to_unit(h, base, log_of=2)


def perplexity(
    p: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""Perplexity of distributions along an axis: the exponential of the entropy.

    .. math::
       \mathrm{PP}(P) = e^{H(P)} = \prod_i p_i^{-p_i}

    The effective number of equally likely outcomes: ``K`` for the uniform
    distribution over ``K`` outcomes, 1 for a certain one. It does not depend
    on the logarithm base, so there is no ``base`` option.

    This is the perplexity of a distribution ``P``, not a language model's.
    A model's perplexity on a text is the exponential of its mean loss per
    real token, :math:`\exp(-\frac{1}{n}\sum_t \log q(y_t))`: take it from
    the labels and logits with
    ``jnp.exp(cross_entropy_from_labels(labels, logits, reduction="mean"))``
    (padding, label ``-1``, excluded), as in the example below.

    Args:
      p: probabilities; normalised along ``axis``.
      axis: the axis that holds the outcomes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask of outcomes to include; excluded outcomes
        count as absent.
      keepdims: keep the reduced axis with size one.

    Returns:
      The perplexity in ``[1, K]``, with ``axis`` reduced; 1 for a row with
      no mass.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.perplexity(jnp.array([[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]]))
      Array([4., 1.], dtype=float32)

      A language model's perplexity, over the real tokens of a padded batch:
      a model that puts probability 1/4 on each of the three real tokens
      is as unsure as a uniform choice among 4.

      >>> logits = jnp.log(jnp.array([[[0.25, 0.75], [0.75, 0.25], [0.5, 0.5]],
      ...                             [[0.75, 0.25], [0.5, 0.5], [0.5, 0.5]]]))
      >>> labels = jnp.array([[0, 1, -1], [1, -1, -1]])  # -1: padding
      >>> jnp.exp(jaxinfo.cross_entropy_from_labels(labels, logits, reduction="mean"))
      Array(4., dtype=float32)
    """
    pp = jnp.exp(entropy(p, axis=axis, where=where, keepdims=keepdims))  # checks the arguments
    shape = jnp.shape(p)
    axis = canonical_axis(axis, len(shape), "p")
    if where is None:
        outcomes = jnp.asarray(shape[axis], pp.dtype)
    else:
        mask = jnp.broadcast_to(jnp.asarray(where), shape)
        outcomes = jnp.sum(mask, axis=axis, keepdims=keepdims).astype(pp.dtype)
    # exp rounds too: e**H of a uniform row may come out a little above K.
    return clamp(pp, jnp.ones_like(pp), jnp.maximum(outcomes, 1))


@tuple_axis("counts")
def entropy_from_counts(
    counts: ArrayLike,
    *,
    axis: Axis = -1,
    estimator: str = "plugin",
    base: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""Estimates the entropy of a distribution from a histogram of samples.

    With ``N`` samples, counts ``n_i``, frequencies ``\hat p_i = n_i / N``,
    ``m`` occupied bins and ``f_1`` singletons (bins counted once):

    * ``"plugin"``: the entropy of the frequencies,
      :math:`\hat H = -\sum_i \hat p_i \log \hat p_i`. Biased low.
    * ``"miller_madow"``: :math:`\hat H + (m - 1) / (2N)`, which removes the
      first-order bias (Miller 1955).
    * ``"chao_shen"``: the coverage-adjusted Horvitz–Thompson estimator of
      Chao and Shen (2003), which also accounts for unseen outcomes:

      .. math::
         \hat H_{CS} = -\sum_{i: n_i > 0}
            \frac{\tilde p_i \log \tilde p_i}{1 - (1 - \tilde p_i)^N},
         \qquad \tilde p_i = \hat C \hat p_i, \quad \hat C = 1 - f_1 / N,

      with the Good–Turing sample coverage ``C`` (``f_1 = N - 1`` is used
      when every sample is a singleton, so that ``C > 0``).

    Args:
      counts: non-negative counts (integer or float), bins along ``axis``;
        leading and trailing axes are a batch. The corrected estimators
        expect whole-number counts.
      axis: the axis that holds the bins, or a tuple of axes that hold them
        together (as one flattened axis).
      estimator: one of ``"plugin"``, ``"miller_madow"``, ``"chao_shen"``.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      The estimate, with ``axis`` reduced; 0 for a histogram with no samples.
      Never negative; the plug-in value is at most ``log K`` for ``K`` bins,
      the corrected ones can exceed it (Miller–Madow gives
      ``log K + (K - 1) / 2K`` for ``K`` singletons).
      Finite for every histogram; not meant to be differentiated.

    Raises:
      ValueError: for an ``estimator`` that is not one of the above.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> counts = jnp.array([4, 2, 1, 1])
      >>> jaxinfo.entropy_from_counts(counts, base=2)  # = H(1/2, 1/4, 1/8, 1/8)
      Array(1.75, dtype=float32)
      >>> jaxinfo.entropy_from_counts(counts, estimator="miller_madow")  # + 3 / 16 nats
      Array(1.4005, dtype=float32)

    References:
      Miller, "Note on the bias of information estimates", in Information
      Theory in Psychology, 1955. Chao and Shen, "Nonparametric estimation of
      Shannon's index of diversity when there are unseen species in sample",
      Environmental and Ecological Statistics 10, 429–443, 2003.
    """
    if not isinstance(estimator, str) or estimator not in ESTIMATORS:
        raise ValueError(
            f"estimator must be one of {', '.join(map(repr, ESTIMATORS))}, got {estimator!r}."
        )
    check_base(base)
    counts = as_float_array(counts, "counts")
    axis = canonical_axis(axis, counts.ndim, "counts")
    n = jnp.sum(counts, axis=axis, keepdims=True)
    has_samples = n > 0
    n_safe = jnp.where(has_samples, n, jnp.ones_like(n))
    seen = counts > 0

    if estimator == "plugin":
        h = entropy(counts, axis=axis, keepdims=True)
    elif estimator == "miller_madow":
        m = jnp.sum(seen, axis=axis, keepdims=True).astype(counts.dtype)
        correction = jnp.where(has_samples, (m - 1) / (2 * n_safe), jnp.zeros_like(n))
        h = entropy(counts, axis=axis, keepdims=True) + correction
    else:  # chao_shen
        f1 = jnp.sum(counts == 1, axis=axis, keepdims=True).astype(counts.dtype)
        f1 = jnp.where(f1 == n, n - 1, f1)
        coverage = 1 - f1 / n_safe
        # Frequencies without overflow: counts whose sum N is beyond the float
        # range (N = inf) still have frequencies counts / N > 0.
        pa = coverage * normalise(counts, axis)
        # Probability that the outcome is seen at least once in N draws; a bin
        # whose frequency underflows adds 0 anyway, and must not meet N = inf.
        counted = seen & (pa > 0)
        inclusion = -jnp.expm1(n * jnp.log1p(-jnp.where(counted, pa, jnp.zeros_like(pa))))
        inclusion = jnp.where(counted, inclusion, jnp.ones_like(inclusion))
        h = 0 - jnp.sum(xlogx(pa) / inclusion, axis=axis, keepdims=True)
        h = jnp.where(has_samples, h, jnp.zeros_like(h))
    # Only the plug-in value is at most log K: the corrections can exceed it
    # (Miller–Madow adds (K - 1) / 2N to the log K of K singletons).
    bins = counts.shape[axis] if estimator == "plugin" else None
    return finish(h, axis, keepdims, base, log_of=bins)

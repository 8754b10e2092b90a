"""Entropy in the forms people report it: binary, as a perplexity, estimated from counts.

``entropy_from_counts`` estimates the entropy of the distribution a histogram
was drawn from. The plug-in value (the entropy of the empirical frequencies)
is biased low, by about ``(m - 1) / (2N)`` nats for ``m`` occupied bins and
``N`` samples, and more when many outcomes are unseen; the other estimators
correct for that, each in its paper's way (the Bayesian NSB estimator in
``_nsb.py``).
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma

from jaxinfo._checks import (
    Array,
    ArrayLike,
    Axis,
    as_float_array,
    canonical_axis,
    tuple_axis,
    type_name,
)
from jaxinfo._nsb import nsb_moments
from jaxinfo._quadrature import gauss_legendre
from jaxinfo._range import normalise
from jaxinfo._shannon import entropy
from jaxinfo._units import check_base, clamp, finish, to_unit
from jaxinfo._validation import check_count_values
from jaxinfo._xlogy import xlogx

ESTIMATORS = (
    "plugin",
    "miller_madow",
    "chao_shen",
    "grassberger",
    "james_stein",
    "zhang",
    "chao_wang_jost",
    "nsb",
)


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


@tuple_axis("p")
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
    shape = np.shape(p)
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
    estimator: str = "plugin",
    axis: Axis = -1,
    base: ArrayLike | None = None,
    keepdims: bool = False,
    num_classes: int | None = None,
) -> Array:
    r"""Estimates the entropy of a distribution from a histogram of samples.

    With ``N`` samples, counts ``n_i``, frequencies ``\hat p_i = n_i / N``,
    ``m`` occupied bins, ``f_1`` singletons and ``f_2`` doubletons (bins
    counted once, twice), ``K`` bins (``num_classes``, else the length of
    ``axis``) and the digamma function :math:`\psi`:

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
    * ``"grassberger"``: Grassberger (2003), eq. (35) with his ``G``:

      .. math::
         \hat H_G = \log N - \frac1N \sum_i n_i G(n_i), \qquad
         G(n) = \psi(n) + \tfrac12 (-1)^n
            \left(\psi\left(\tfrac{n+1}2\right) - \psi\left(\tfrac n2\right)\right).

      (Not the 1988 form ``psi(n) + (-1)^n / (n + 1)``, which infomeasure calls
      ``"grassberger"``.)
    * ``"james_stein"``: the plug-in entropy of the frequencies shrunk towards
      the uniform ``1 / K`` (Hausser and Strimmer 2009), with their analytic
      shrinkage intensity:

      .. math::
         \hat p_i^{S} = \lambda \tfrac1K + (1 - \lambda) \hat p_i, \qquad
         \lambda = \min\left(1, \frac{1 - \sum_i \hat p_i^2}
            {(N - 1) \sum_i (1/K - \hat p_i)^2}\right),

      and ``lambda = 1`` for ``N <= 1`` or when the frequencies are uniform.
    * ``"zhang"``: Zhang (2012), eq. (9), the series
      :math:`\sum_{v=1}^{N-1} \frac1v \sum_i \hat p_i \prod_{j=1}^{v}
      \left(1 - \frac{n_i - 1}{N - j}\right)`, summed here in its closed form
      :math:`\sum_i \hat p_i (\psi(N) - \psi(n_i))`.
    * ``"chao_wang_jost"``: Chao, Wang and Jost (2013), eq. (7): Zhang's sum
      plus the term for the unseen outcomes,

      .. math::
         \frac{f_1}{N} (1 - A)^{1 - N} \left(-\log A
            - \sum_{r=1}^{N-1} \frac{(1 - A)^r}{r}\right), \qquad
         A = \frac{2 f_2}{(N - 1) f_1 + 2 f_2}

      (``A = 2 / ((N - 1)(f_1 - 1) + 2)`` when ``f_2 = 0``, and no term when
      ``f_1 = 0``), taken as :math:`\int_0^\infty e^{-(N-1)u} / (e^{u - \log(1 - A)} - 1)\,du`
      by a 64-point Gauss–Legendre rule (exact to about 1e-13: the sum
      itself cancels catastrophically for large ``N``).
    * ``"nsb"``: the posterior mean of Nemenman, Shafee and Bialek (2002),
      which needs ``num_classes``; :func:`entropy_from_counts_nsb` gives the
      posterior standard deviation as well.

    The estimate is computed in the counts' float dtype (float32 by default;
    use float64 for ``"nsb"`` when ``N`` is in the thousands).

    Args:
      counts: non-negative counts (integer or float), bins along ``axis``;
        leading and trailing axes are a batch. Every estimator but
        ``"plugin"`` needs whole numbers.
      estimator: one of ``"plugin"``, ``"miller_madow"``, ``"chao_shen"``,
        ``"grassberger"``, ``"james_stein"``, ``"zhang"``,
        ``"chao_wang_jost"``, ``"nsb"``.
      axis: the axis that holds the bins, or a tuple of axes that hold them
        together (as one flattened axis).
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.
      num_classes: the alphabet size ``K``, at least the number of bins along
        ``axis`` (the bins beyond the axis are taken as empty). Needed by
        ``"nsb"``; ``"james_stein"`` shrinks towards ``1 / K`` (by default the
        length of ``axis``); the other estimators do not depend on it.

    Returns:
      The estimate, with ``axis`` reduced; for a histogram with no samples 0,
      but ``log K`` for ``"james_stein"`` and the prior mean ``log(K) / 2``
      for ``"nsb"``. Never negative; the plug-in, James–Stein and NSB values
      are at most ``log K``, the bias-corrected ones can exceed it
      (Miller–Madow gives ``log K + (K - 1) / 2K`` for ``K`` singletons).
      Not meant to be differentiated. Under ``jit`` (where the counts cannot
      be checked) a histogram with a negative count, or, but for
      ``"plugin"``, a fractional one, gives NaN.

    Raises:
      ValueError: for an ``estimator`` that is not one of the above, a
        ``num_classes`` below the number of bins, ``"nsb"`` without
        ``num_classes``, and, for concrete counts, a NaN, infinite or negative
        count or (but for ``"plugin"``) one that is not a whole number.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> counts = jnp.array([4, 2, 1, 1])
      >>> jaxinfo.entropy_from_counts(counts, base=2)  # = H(1/2, 1/4, 1/8, 1/8)
      Array(1.75, dtype=float32)
      >>> jaxinfo.entropy_from_counts(counts, estimator="miller_madow")  # + 3 / 16 nats
      Array(1.4005, dtype=float32)
      >>> jaxinfo.entropy_from_counts(counts, estimator="zhang")
      Array(1.4262, dtype=float32)

    References:
      Miller, "Note on the bias of information estimates", in Information
      Theory in Psychology, 1955. Chao and Shen, "Nonparametric estimation of
      Shannon's index of diversity when there are unseen species in sample",
      Environmental and Ecological Statistics 10, 429–443, 2003. Grassberger,
      "Entropy estimates from insufficient samplings", arXiv:physics/0307138,
      2003. Hausser and Strimmer, "Entropy inference and the James–Stein
      estimator", Journal of Machine Learning Research 10, 1469–1484, 2009.
      Zhang, "Entropy estimation in Turing's perspective", Neural Computation
      24, 1368–1389, 2012. Chao, Wang and Jost, "Entropy and the species
      accumulation curve", Methods in Ecology and Evolution 4, 1091–1100,
      2013. Nemenman, Shafee and Bialek, "Entropy and inference, revisited",
      NIPS 14, 2002.
    """
    if not isinstance(estimator, str) or estimator not in ESTIMATORS:
        raise ValueError(
            f"estimator must be one of {', '.join(map(repr, ESTIMATORS))}, got {estimator!r}."
        )
    check_base(base)
    counts = as_float_array(counts, "counts")
    axis = canonical_axis(axis, counts.ndim, "counts")
    k = _num_classes(num_classes, counts.shape[axis], required=estimator == "nsb")
    whole = estimator != "plugin"
    check_count_values(counts, "counts", whole=whole)
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
    elif estimator == "chao_shen":
        h = _chao_shen(counts, axis, n, n_safe, seen)
    elif estimator == "grassberger":
        c = jnp.where(seen, counts, jnp.ones_like(counts))
        sign = 1 - 2 * jnp.mod(c, 2)
        g = digamma(c) + sign / 2 * (digamma((c + 1) / 2) - digamma(c / 2))
        h = jnp.log(n_safe) - jnp.sum(jnp.where(seen, counts * g, 0), axis, keepdims=True) / n_safe
    elif estimator == "james_stein":
        h = _james_stein(counts, axis, n, n_safe, k)
    elif estimator == "zhang":
        h = _zhang(counts, axis, n_safe, seen)
    elif estimator == "chao_wang_jost":
        h = _zhang(counts, axis, n_safe, seen) + _chao_wang_jost_unseen(counts, axis, n, n_safe)
    else:  # nsb
        h, _ = nsb_moments(counts, axis, k)
    if estimator not in ("james_stein", "nsb"):
        h = jnp.where(has_samples, h, jnp.zeros_like(h))
    h = jnp.where(_valid_rows(counts, axis, whole), h, jnp.full_like(h, jnp.nan))
    # Plug-in, James–Stein and NSB estimate a distribution over K outcomes, so
    # are at most log K; the bias corrections can exceed it (Miller–Madow adds
    # (K - 1) / 2N to the log K of K singletons).
    bound = {"plugin": counts.shape[axis], "james_stein": k, "nsb": k}.get(estimator)
    return finish(h, axis, keepdims, base, log_of=bound)


def entropy_from_counts_nsb(
    counts: ArrayLike,
    *,
    num_classes: int,
    axis: int = -1,
    base: ArrayLike | None = None,
) -> tuple[Array, Array]:
    r"""The NSB posterior mean and standard deviation of the entropy, from counts.

    Nemenman, Shafee and Bialek put a mixture of symmetric Dirichlet priors on
    the ``K = num_classes`` outcome probabilities, weighted so that the prior
    on the entropy is nearly uniform on ``[0, log K]``:

    .. math::
       \hat H = \frac{\int E[H \mid n, \beta]\, P(n \mid \beta)\,
                \frac{d\xi}{d\beta}\, d\beta}
               {\int P(n \mid \beta)\, \frac{d\xi}{d\beta}\, d\beta}, \qquad
       \xi(\beta) = \psi(K\beta + 1) - \psi(\beta + 1),

    and the posterior variance likewise from :math:`E[H^2 \mid n, \beta]`.
    The integral over the concentration ``beta`` is a fixed three-stage rule
    (see ``_nsb.py``), accurate to 1e-9 relative in float64; it runs under
    ``jit`` and ``vmap``, and no gradient flows through the counts. Use
    float64 counts (``jax.enable_x64``) when ``N`` is in the thousands: in
    float32 the mean is then good to about 1e-4 relative, and the standard
    deviation, a difference of two nearly equal moments, can be off by a
    factor of a few.

    Args:
      counts: non-negative whole-number counts, bins along ``axis``; the
        other axes are a batch.
      num_classes: the alphabet size ``K``, at least the number of bins along
        ``axis``; bins beyond the axis count as empty.
      axis: the axis that holds the bins.
      base: logarithm base; ``None`` for nats, ``2`` for bits.

    Returns:
      ``(mean, std)``, each with ``axis`` reduced. With no samples, the prior's
      ``log(K) / 2`` and its spread. NaN under ``jit`` for a histogram with a
      negative or fractional count.

    Raises:
      ValueError: for a ``num_classes`` below the number of bins, and, for
        concrete counts, a NaN, infinite, negative or fractional count.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> mean, std = jaxinfo.entropy_from_counts_nsb(jnp.array([4, 2, 1, 1]), num_classes=4)
      >>> round(float(mean), 3), round(float(std), 3)
      (1.24, 0.134)

    References:
      Nemenman, Shafee and Bialek, "Entropy and inference, revisited", NIPS 14,
      2002. Wolpert and Wolf, "Estimating functions of probability
      distributions from a finite set of samples", Physical Review E 52,
      6841–6854, 1995 (the posterior moments for one ``beta``).
    """
    check_base(base)
    counts = as_float_array(counts, "counts")
    axis = canonical_axis(axis, counts.ndim, "counts")
    k = _num_classes(num_classes, counts.shape[axis], required=True)
    check_count_values(counts, "counts", whole=True)
    mean, var = nsb_moments(counts, axis, k)
    valid = _valid_rows(counts, axis, True)
    mean = jnp.where(valid, mean, jnp.full_like(mean, jnp.nan))
    std = jnp.where(valid, jnp.sqrt(var), jnp.full_like(var, jnp.nan))
    return finish(mean, axis, False, base), finish(std, axis, False, base)


def _num_classes(num_classes: object, bins: int, *, required: bool) -> int:
    """Checks ``num_classes`` against the number of bins; returns ``K``."""
    if num_classes is None:
        if required:
            raise ValueError(
                "estimator 'nsb' needs num_classes, the alphabet size K (at least the "
                f"number of bins, {bins})."
            )
        return bins
    if isinstance(num_classes, jax.core.Tracer) or isinstance(num_classes, bool):
        raise TypeError(f"num_classes must be a Python int, got {num_classes!r}.")
    try:
        k = operator.index(num_classes)
    except TypeError as e:
        raise TypeError(
            f"num_classes must be an int, got {num_classes!r} of type {type_name(num_classes)}."
        ) from e
    if k < max(bins, 1):
        raise ValueError(
            f"num_classes={k} is smaller than the number of bins along axis, {bins}; "
            "it is the alphabet size, at least the number of classes that can be observed."
        )
    return k


def _valid_rows(counts: Array, axis: int, whole: bool) -> Array:
    """Rows with no negative (and, with ``whole``, no fractional) count."""
    bad = counts < 0
    if whole:
        bad = bad | (counts != jnp.round(counts))
    return ~jnp.any(bad, axis=axis, keepdims=True)


def _chao_shen(counts: Array, axis: int, n: Array, n_safe: Array, seen: Array) -> Array:
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
    return 0 - jnp.sum(xlogx(pa) / inclusion, axis=axis, keepdims=True)


def _james_stein(counts: Array, axis: int, n: Array, n_safe: Array, k: int) -> Array:
    freq = counts / n_safe
    target = 1.0 / k
    extra = k - counts.shape[axis]  # empty bins beyond the axis
    spread = jnp.sum((freq - target) ** 2, axis=axis, keepdims=True) + extra * target**2
    variance = (1 - jnp.sum(freq**2, axis=axis, keepdims=True)) / jnp.maximum(n - 1, 1)
    shrink = (n > 1) & (spread > 0)
    lam = jnp.where(shrink, variance / jnp.where(shrink, spread, 1), 1.0)
    lam = jnp.clip(lam, 0.0, 1.0)
    p = lam * target + (1 - lam) * freq
    h = 0 - jnp.sum(xlogx(p), axis=axis, keepdims=True)
    return h - extra * xlogx(lam * target)


def _zhang(counts: Array, axis: int, n_safe: Array, seen: Array) -> Array:
    c = jnp.where(seen, counts, jnp.ones_like(counts))
    terms = jnp.where(seen, c * (digamma(n_safe) - digamma(c)), 0)
    return jnp.sum(terms, axis=axis, keepdims=True) / n_safe


def _chao_wang_jost_unseen(counts: Array, axis: int, n: Array, n_safe: Array) -> Array:
    r"""The second term of Chao, Wang and Jost (2013), eq. (7).

    :math:`(1 - A)^{1-N} \sum_{r \ge N} (1 - A)^r / r
    = \int_0^\infty e^{-(N-1)u} / (e^{x + u} - 1)\, du` with
    :math:`x = -\log(1 - A)`; with :math:`w = x e^s` the integrand in ``s`` is
    :math:`e^{-(N-1) x (e^s - 1)} w / (e^w - 1)`, smooth and flat until it
    falls off, which the rule covers up to where the exponent reaches -40.
    """
    dtype = counts.dtype
    f1 = jnp.sum(counts == 1, axis=axis, keepdims=True).astype(dtype)
    f2 = jnp.sum(counts == 2, axis=axis, keepdims=True).astype(dtype)
    a = jnp.where(
        f2 > 0,
        2 * f2 / jnp.maximum((n - 1) * f1 + 2 * f2, 1),
        2 / jnp.maximum((n - 1) * (f1 - 1) + 2, 1),
    )
    active = (f1 > 0) & (a < 1) & (n > 1)
    a = jnp.where(active, a, 0.5)
    x = -jnp.log1p(-a)
    m = jnp.where(active, n - 1, 1.0)
    nodes, weights = gauss_legendre(64)
    nodes = jnp.asarray(nodes, dtype).reshape((-1,) + (1,) * counts.ndim)
    weights = jnp.asarray(weights, dtype).reshape((-1,) + (1,) * counts.ndim)
    s_max = jnp.log1p(40 / (m * x))
    s = nodes * s_max
    w = x * jnp.exp(s)
    f = jnp.exp(-m * x * jnp.expm1(s)) * (w / jnp.expm1(w))
    tail = s_max * jnp.sum(weights * f, axis=0)
    return jnp.where(active, f1 / n_safe * tail, 0.0)

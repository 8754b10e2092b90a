"""Jensen–Shannon divergence and distance, and Rényi's entropy and divergence of order alpha.

Rényi's measures are one scaled cumulant generating function, written for a
log-ratio ``X`` under weights ``W``:

.. math::
   M(t) = \\frac{1}{t} \\log \\mathbb{E}_W\\!\\left[e^{t X}\\right], \\qquad
   M(0) = \\mathbb{E}_W[X], \\qquad M(\\infty) = \\max_{w > 0} X,

with ``t = alpha - 1``: ``H_alpha(P) = -M(t)`` for ``X = log p`` under ``P``,
and ``D_alpha(P‖Q) = M(t)`` for ``X = log(p / q)`` under ``P``.

Written as ``log(sum(p**alpha)) / (1 - alpha)`` it is ``0 / 0`` at
``alpha = 1``, and its derivative in ``alpha`` loses every digit near there.
:func:`_scaled_cgf` avoids both. Near ``t = 0`` it centres ``X`` on its mean
``mu`` and uses the identity

.. math::
   M(t) = \\mu + A \\, \\frac{\\log(1 + tA)}{tA}, \\qquad
   A = \\mathbb{E}_W\\!\\left[Y\\, h(tY)\\right], \\quad Y = X - \\mu, \\quad
   h(u) = \\frac{e^u - 1 - u}{u},

in which nothing is divided by ``t``, every term of ``A`` has the sign of
``t`` (no cancellation), and both ``h`` and ``log(1 + s) / s`` are smooth
functions evaluated by their series near 0. So ``M`` is exact at ``t = 0``
(the Shannon value), ``dM/dt = Var_W[X] / 2`` there, and value and derivative
keep full precision around it. Away from ``t = 0`` the max-shifted
log-sum-exp form is used, and ``t = inf`` is the maximum itself.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jaxinfo._checks import Array, ArrayLike, Axis, prepare, prepare_pair, tuple_axis
from jaxinfo._range import jvp_at_scaled_rows, log_normalise, normalise, scale_free_pair
from jaxinfo._shannon import kl_divergence
from jaxinfo._units import check_base, finish, in_base

# |t| at or below which the centred series form of M(t) is used. With it,
# |t * Y| <= |log(tiny)| / 2, so exp(t * Y) cannot overflow; beyond it the
# log-sum-exp form loses at most a few ulps to its 1 / t, in value and slope.
_SMALL_T = 0.25

# Taylor coefficients of h(u) / u = sum_k u**k / (k + 2)!, good to float64
# precision for |u| <= 1/2; and of log1p(s) / s = sum_k (-s)**k / (k + 1) for
# |s| <= 1/100.
_H_COEFFS = tuple(1 / math.factorial(k + 2) for k in range(15))
_LOG1P_RATIO_COEFFS = tuple(1 / (k + 1) for k in range(9))


def _horner(coeffs: tuple[float, ...], u: Array) -> Array:
    acc = jnp.full_like(u, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = c + u * acc
    return acc


def _h(u: Array) -> Array:
    """``(exp(u) - 1 - u) / u``, 0 at ``u = 0``; accurate, with accurate derivatives."""
    small = jnp.abs(u) <= 0.5
    u_small = jnp.where(small, u, jnp.zeros_like(u))
    u_big = jnp.where(small, jnp.ones_like(u), u)
    return jnp.where(
        small, u_small * _horner(_H_COEFFS, u_small), (jnp.expm1(u_big) - u_big) / u_big
    )


def _log1p_ratio(s: Array) -> Array:
    """``log1p(s) / s`` for ``s > -1``, 1 at ``s = 0``."""
    small = jnp.abs(s) <= 0.01
    s_small = jnp.where(small, s, jnp.zeros_like(s))
    s_big = jnp.where(small, jnp.ones_like(s), s)
    return jnp.where(small, _horner(_LOG1P_RATIO_COEFFS, -s_small), jnp.log1p(s_big) / s_big)


@jax.custom_jvp
def _weighted_yh(w: Array, y: Array, t: Array) -> Array:
    """``w * y * h(t * y)``, the terms of ``A``, with derivatives that stay finite.

    A weight ``w`` near the smallest normal number comes with a ``y`` (a
    logarithm of it) whose tangent, ``dw / w``, is near the float maximum.
    JAX's product rule multiplies that by ``t * h'(t * y)`` (up to ``e**22``)
    before it meets ``w``, and overflows: ``w * inf``. The rule below
    multiplies the tangents by ``w`` first, and uses
    ``d(y h(t y)) / dy = expm1(t y)`` and ``d(y h(t y)) / dt = y**2 h'(t y)``.
    """
    return w * y * _h(t * y)


@_weighted_yh.defjvp
def _weighted_yh_jvp(primals, tangents):
    w, y, t = primals
    dw, dy, dt = tangents
    u = t * y
    h, dh = jax.jvp(_h, (u,), (jnp.ones_like(u),))
    tangent = dw * (y * h) + (w * dy) * jnp.expm1(u) + (w * y * y * dh) * dt
    return w * y * h, tangent


def _scaled_cgf(x: Array, w: Array, log_w: Array, t: Array, axis: int) -> Array:
    """``M(t) = log(sum(w * exp(t * x))) / t`` along ``axis`` (kept).

    ``w`` are weights that sum to one along ``axis``, ``log_w`` their
    logarithms (exact where ``w`` underflows); entries with ``log_w = -inf``
    are absent (their ``x`` is ignored, and they receive no gradient through
    ``x``). ``t`` is a scalar in ``[-1, inf]``, possibly traced; ``M(0)`` is
    the weighted mean and ``M(inf)`` the maximum of ``x`` over the support.
    Rows with no support give 0.
    """
    support = log_w > -jnp.inf
    x = jnp.where(support, x, jnp.zeros_like(x))
    nonempty = jnp.any(support, axis=axis, keepdims=True)

    # Near t = 0: the centred form (see the module docstring).
    small = jnp.abs(t) <= _SMALL_T
    t_small = jnp.where(small, t, jnp.zeros_like(t))
    mu = jnp.sum(w * x, axis=axis, keepdims=True)
    y = jnp.where(support, x - mu, jnp.zeros_like(x))
    a = jnp.sum(_weighted_yh(w, y, t_small), axis=axis, keepdims=True)
    m_small = mu + a * _log1p_ratio(t_small * a)

    # Elsewhere: log-sum-exp of log(w) + t * x, shifted by its maximum, so
    # every term is at most 1 and the sum lies in [1, n].
    finite = jnp.isfinite(t)
    t_big = jnp.where(small | ~finite, jnp.ones_like(t), t)
    s = jnp.where(support, log_w + t_big * x, -jnp.inf)
    s_max = lax.stop_gradient(jnp.max(s, axis=axis, keepdims=True, initial=-jnp.inf))
    s_max = jnp.where(nonempty, s_max, jnp.zeros_like(s_max))
    # Terms whose exp(s - s_max) underflows to 0 are left out of the sum's
    # derivative too: a tiny w has a huge d log w, and t times it overflows,
    # which exp(...) = 0 times that would turn into NaN (in forward mode).
    # Their true share of the derivative is below rounding.
    alive = lax.stop_gradient(jnp.exp(s - s_max)) > 0
    s = jnp.where(alive, s, -jnp.inf)
    z = jnp.sum(jnp.exp(s - s_max), axis=axis, keepdims=True)
    z = jnp.where(z > 0, z, jnp.ones_like(z))
    m_big = (s_max + jnp.log(z)) / t_big

    # t = inf: the maximum.
    x_max = jnp.max(jnp.where(support, x, -jnp.inf), axis=axis, keepdims=True, initial=-jnp.inf)
    m_inf = jnp.where(nonempty, x_max, jnp.zeros_like(x_max))

    m = jnp.where(finite, jnp.where(small, m_small, m_big), m_inf)
    return jnp.where(nonempty, m, jnp.zeros_like(m))


def _as_order(alpha: ArrayLike, dtype) -> Array:
    """Checks the Rényi order ``alpha``: a real scalar, in ``[0, inf]`` when concrete."""
    try:
        alpha_dtype = jnp.result_type(alpha)
    except TypeError as e:
        raise TypeError(
            f"alpha must be a real number in [0, inf], got an object of type "
            f"{type(alpha).__name__}."
        ) from e
    if alpha_dtype == jnp.bool_ or not (
        jnp.issubdtype(alpha_dtype, jnp.floating) or jnp.issubdtype(alpha_dtype, jnp.integer)
    ):
        raise TypeError(f"alpha must be a real number in [0, inf], got dtype {alpha_dtype}.")
    if np.shape(alpha) != ():
        raise ValueError(
            f"alpha must be a scalar (one order; vmap over orders for several), got an "
            f"array of shape {np.shape(alpha)}."
        )
    if not isinstance(alpha, jax.core.Tracer):
        value = float(np.asarray(alpha))
        if not value >= 0:
            raise ValueError(f"alpha must be in [0, inf], got {value!r}.")
    return jnp.asarray(alpha).astype(dtype)


@tuple_axis("p", "q")
def js_divergence(
    p: ArrayLike,
    q: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""Jensen–Shannon divergence between two distributions.

    .. math::
       \mathrm{JS}(P, Q) = \tfrac12 D(P \,\|\, M) + \tfrac12 D(Q \,\|\, M),
       \qquad M = \tfrac12 (P + Q)

    A symmetric, always finite smoothing of the KL divergence: 0 exactly when
    ``P = Q``, at most ``log 2`` (one bit), reached when the supports are
    disjoint. This is the divergence itself; ``scipy.spatial.distance.jensenshannon``
    returns its square root (a metric).

    Args:
      p: first distribution; normalised along ``axis``.
      q: second distribution, broadcastable against ``p``; normalised along ``axis``.
      axis: the axis that holds the outcomes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask of outcomes to include (applies to both).
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      ``JS(P, Q)`` in ``[0, log 2]``, with ``axis`` reduced: never outside it,
      rounding included (values are clamped into it in the returned unit).
      Gradients stay finite where ``p`` or ``q`` is zero.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.js_divergence(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), base=2)
      Array(1., dtype=float32)
      >>> jaxinfo.js_divergence(jnp.array([0.99, 0.01]), jnp.array([0.5, 0.5]), base=2)
      Array(0.2787, dtype=float32)

    References:
      Lin, "Divergence measures based on the Shannon entropy", IEEE Trans.
      Inf. Theory 37(1), 1991.
    """
    check_base(base)
    p, q, axis = prepare_pair(p, q, "p", "q", axis, where)
    return finish(_js(axis, p, q), axis, keepdims, base, log_of=2)


@scale_free_pair
def _js(p: Array, q: Array, *, axis: int) -> Array:
    """JS of two rows of non-negative weights (``axis`` kept)."""
    p = normalise(p, axis)
    q = normalise(q, axis)
    # M = (P + Q) / 2, left to kl_divergence to normalise: halving a tiny
    # normal number could flush it to zero, and D(P‖M) would be inf.
    m = p + q
    return (
        kl_divergence(p, m, axis=axis, keepdims=True)
        + kl_divergence(q, m, axis=axis, keepdims=True)
    ) / 2


# JS at or below this many ulps of 1 (in nats) is rounding: its computed value
# and slope are noise there, and d sqrt(JS) = dJS / (2 sqrt(JS)) would amplify
# them (to 1e3 for P = Q in float32). About 10 times the rounding seen in
# float32 on nearly equal rows.
_JS_NOISE_ULPS = 16


@jax.custom_jvp
def _root(js: Array, noise: Array) -> Array:
    """``sqrt(js)``, ``js >= 0``; derivative 0 where ``js <= noise`` (:func:`js_distance`)."""
    return jnp.sqrt(js)


@_root.defjvp
def _root_jvp(primals, tangents):
    js, noise = primals
    djs, _ = tangents
    root = jnp.sqrt(js)
    signal = js > noise
    safe = jnp.where(signal, root, jnp.ones_like(root))
    return root, jnp.where(signal, djs / (2 * safe), jnp.zeros_like(djs))


def js_distance(
    p: ArrayLike,
    q: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""Jensen–Shannon distance: the square root of the Jensen–Shannon divergence.

    .. math::
       d_{\mathrm{JS}}(P, Q) = \sqrt{\mathrm{JS}(P, Q)}
       = \sqrt{\tfrac12 D(P \,\|\, M) + \tfrac12 D(Q \,\|\, M)},
       \qquad M = \tfrac12 (P + Q)

    A metric on distributions (Endres and Schindelin, 2003), as
    ``scipy.spatial.distance.jensenshannon`` returns it: symmetric, 0 exactly
    when ``P = Q``, at most ``sqrt(log 2)`` (1 in bits), and it satisfies the
    triangle inequality, which :func:`js_divergence` does not.

    At ``P = Q`` the distance is not differentiable: JS grows quadratically
    in ``Q - P`` there, so its root grows like a norm of ``Q - P``, a cone
    whose tip has a positive one-sided derivative along every direction and
    no gradient. The derivative returned there is 0, the smallest of the
    cone's subgradients (``jnp.sqrt(js_divergence(p, q))`` gives NaN). So a
    gradient step stays at ``P = Q``, and a loss that adds the distance of
    some rows with ``P = Q`` gets finite gradients. The tip is where JS is
    within rounding of 0 (at most 16 ulps of 1, in nats: ``2e-6`` in
    float32, distances below ``1.4e-3``; ``3.6e-15`` in float64), since
    below that the computed JS and its slope are rounding noise, which
    ``dJS / (2 sqrt(JS))`` would blow up (to ``1e3`` at ``P = Q`` in
    float32). Elsewhere it is that exact derivative.

    Args:
      p: first distribution; normalised along ``axis``.
      q: second distribution, broadcastable against ``p``; normalised along ``axis``.
      axis: the axis that holds the outcomes.
      where: optional boolean mask of outcomes to include (applies to both).
      base: logarithm base, above 1; ``None`` for nats, ``2`` for bits (then
        the distance lies in ``[0, 1]``).
      keepdims: keep the reduced axis with size one.

    Returns:
      ``sqrt(JS(P, Q))`` in ``[0, sqrt(log_base 2)]``, with ``axis`` reduced.

    Raises:
      ValueError: for a concrete ``base`` in ``(0, 1)``, where the divergence
        is negative and has no real square root.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinfo
      >>> jaxinfo.js_distance(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), base=2)
      Array(1., dtype=float32)
      >>> p = jnp.array([0.99, 0.01])
      >>> jaxinfo.js_distance(p, jnp.array([0.5, 0.5]), base=2)  # sqrt(0.2787)
      Array(0.5279, dtype=float32)
      >>> jax.grad(jaxinfo.js_distance)(p, p)  # at P = Q: 0, not NaN
      Array([0., 0.], dtype=float32)

    References:
      Endres and Schindelin, "A new metric for probability distributions",
      IEEE Trans. Inf. Theory 49(7), 2003.
    """
    check_base(base)
    if base is not None and not isinstance(base, jax.core.Tracer):
        if np.any(np.asarray(base) < 1):
            raise ValueError(
                f"js_distance needs a base above 1 (2 for bits, None for nats), got {base!r}: "
                "below 1 the divergence is negative and has no real square root."
            )
    js = js_divergence(p, q, axis=axis, where=where, base=base, keepdims=keepdims)
    noise = in_base(jnp.asarray(_JS_NOISE_ULPS * jnp.finfo(js.dtype).eps, js.dtype), base)
    return _root(js, noise)


@tuple_axis("p")
def renyi_entropy(
    p: ArrayLike,
    alpha: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""Rényi entropy of order ``alpha`` of distributions along an axis.

    .. math::
       H_\alpha(P) = \frac{1}{1 - \alpha} \log \sum_i p_i^\alpha

    with the limits ``H_0 = log |supp P|`` (Hartley), ``H_1 = H`` (Shannon)
    and ``H_inf = -log max_i p_i`` (min-entropy). ``H_2 = -log sum p_i**2``
    is the collision entropy. Non-increasing in ``alpha``.

    Args:
      p: probabilities; normalised along ``axis``.
      alpha: the order, a scalar in ``[0, inf]``; may be traced (under
        ``jit``, ``vmap`` or ``grad``) and may be exactly 0, 1 or ``inf``.
        The value is smooth through ``alpha = 1``, with derivative
        ``-Var_P[log p] / 2`` there.
      axis: the axis that holds the outcomes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask of outcomes to include; excluded outcomes
        count as absent.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      ``H_alpha(P)`` in ``[0, log K]`` for ``K`` outcomes (those included by
      ``where``), rounding included, with ``axis`` reduced; 0 for a row with
      no mass.
      Outcomes with ``p = 0`` are outside the support and receive gradient
      only through the normalisation: the exact derivative for
      ``alpha > 1``, a finite stand-in for ``alpha <= 1``, where the exact
      one-sided derivative is ``+inf``.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> p = jnp.array([0.5, 0.25, 0.25, 0.0])
      >>> [round(float(jaxinfo.renyi_entropy(p, a, base=2)), 6) for a in (0, 1, 2, jnp.inf)]
      [1.584962, 1.5, 1.415038, 1.0]

    References:
      Rényi, "On measures of entropy and information", Proc. Fourth Berkeley
      Symp. Math. Stat. Prob., vol. 1, 1961.
    """
    check_base(base)
    p, axis, mask = prepare(p, "p", axis, where)
    t = _as_order(alpha, p.dtype) - 1
    outcomes = p.shape[axis]
    if mask is not None:
        p = jnp.where(mask, p, jnp.zeros_like(p))
        outcomes = (jnp.sum(mask, axis=axis, keepdims=True), outcomes)
    p, log_p, _ = log_normalise(p, axis)
    h = 0 - _scaled_cgf(log_p, p, log_p, t, axis)  # 0 - x, not -x: +0 for a certain outcome
    return finish(h, axis, keepdims, base, log_of=outcomes)


@tuple_axis("p", "q")
def renyi_divergence(
    p: ArrayLike,
    q: ArrayLike,
    alpha: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    base: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""Rényi divergence of order ``alpha`` of ``Q`` from ``P``.

    .. math::
       D_\alpha(P \,\|\, Q) = \frac{1}{\alpha - 1} \log \sum_i p_i^\alpha q_i^{1 - \alpha}

    with the limits ``D_0 = -log Q(supp P)``, ``D_1 = D(P‖Q)`` (the KL
    divergence) and ``D_inf = log max_i p_i / q_i``. Non-decreasing in
    ``alpha``; ``D_{1/2}`` is ``-2 log`` of the Bhattacharyya coefficient.

    Args:
      p: the true distribution (first); normalised along ``axis``.
      q: the model distribution, broadcastable against ``p``; normalised
        along ``axis``.
      alpha: the order, a scalar in ``[0, inf]``; may be traced and may be
        exactly 0, 1 or ``inf``; smooth through ``alpha = 1``, with
        derivative ``Var_P[log(p / q)] / 2`` there.
      axis: the axis that holds the outcomes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask of outcomes to include (applies to both).
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      ``D_alpha(P‖Q) >= 0`` with ``axis`` reduced. Where ``Q`` gives zero
      probability to outcomes that ``P`` allows, it is ``inf`` for
      ``alpha >= 1`` and finite for ``alpha < 1`` (``inf`` only when the
      supports are disjoint). Outcomes with ``p = 0`` contribute nothing; 0
      for a row where ``P`` has no mass.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> p, q = jnp.array([0.99, 0.01]), jnp.array([0.5, 0.5])
      >>> jaxinfo.renyi_divergence(p, q, 1.0, base=2)  # the KL divergence
      Array(0.9192, dtype=float32)
      >>> jaxinfo.renyi_divergence(p, q, jnp.inf, base=2)  # log2(0.99 / 0.5)
      Array(0.9855, dtype=float32)

    References:
      van Erven and Harremoës, "Rényi divergence and Kullback–Leibler
      divergence", IEEE Trans. Inf. Theory 60(7), 2014.
    """
    check_base(base)
    p, q, axis = prepare_pair(p, q, "p", "q", axis, where)
    t = _as_order(alpha, p.dtype) - 1
    return finish(_renyi(axis, p, q, t), axis, keepdims, base)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _renyi(axis: int, p: Array, q: Array, t: Array) -> Array:
    """``D_{1+t}(P‖Q)`` along ``axis`` (kept), for rows of weights.

    The derivative (the rule below) takes the slopes at the rows scaled to
    sums of order one, not through JAX's chain rule at the rows as given.
    """
    w = jnp.where(q > 0, p, jnp.zeros_like(p))
    return _renyi_rows(p, w, q, t, jnp.zeros((), p.dtype), axis)


def _renyi_rows(p: Array, w: Array, q: Array, t: Array, log_shift: Array, axis: int) -> Array:
    """The Rényi divergence of order ``1 + t`` from three rows of weights.

    ``w`` is ``P`` restricted to the support of ``Q``, in its own units:
    ``log_shift`` is ``log(c_p / c_w)`` where ``p = P * c_p`` and
    ``w = P[supp Q] * c_w`` (0 for the rows as given). Each row is
    normalised here, so the three can be scaled apart.
    """
    # The supports are those of the weights as given: a normalised entry can
    # underflow (1e-30 next to 1e30) and still count, for alpha >= 1 as inf.
    in_p, in_q = p > 0, q > 0
    p, _, log_mass_p = log_normalise(p, axis)
    _, log_q, _ = log_normalise(q, axis)
    # P restricted to the support of Q, renormalised: outcomes that Q rules out
    # enter only through the mass they carry under P, `outside`.
    w, log_w, log_mass_w = log_normalise(w, axis)
    outside = jnp.sum(jnp.where(in_q, jnp.zeros_like(p), p), axis=axis, keepdims=True)
    # log(P(supp Q)), from the smaller of the two masses, for precision:
    # log1p(-outside), or the logarithm of the mass inside from the scaled
    # sums. The supports are told by the weights, not by outside < 1 (the mass
    # outside sums to 1 - 6e-8 as often as to 1).
    has_outside = jnp.any(in_p & ~in_q, axis=axis, keepdims=True)
    partial = has_outside & jnp.any(in_p & in_q, axis=axis, keepdims=True)
    # (a where, not jnp.minimum: at a tie, outside = 0.5 exactly, minimum's
    # derivative is half the slope)
    small_outside = outside <= 0.5
    log_inside = jnp.where(
        small_outside,
        jnp.log1p(-jnp.where(small_outside, outside, jnp.zeros_like(outside))),
        jnp.where(partial, log_mass_w - log_mass_p + log_shift, jnp.zeros_like(log_mass_p)),
    )
    # log(p / q) on both supports, as log(w) + log(P(supp Q)) - log(q): P's
    # entries enter through w alone, so that their slopes are of the size of
    # w's (taken at P itself they are 1 / p, beyond the float range where P's
    # mass inside Q's support is a tiny share of its total)
    log_ratio = jnp.where(in_p & in_q, log_w + log_inside - log_q, jnp.zeros_like(log_w))
    d = _scaled_cgf(log_ratio, w, log_w, t, axis)
    # Plus log(P(supp Q)) / t: infinite for t >= 0, finite for t < 0; disjoint
    # supports are infinite for every alpha.
    t_neg = jnp.where(t < 0, t, -jnp.ones_like(t))
    penalty = jnp.where((t < 0) & partial, log_inside / t_neg, jnp.inf)
    return jnp.where(has_outside, d + penalty, d)


@functools.partial(_renyi.defjvp, symbolic_zeros=True)
def _renyi_jvp(axis, primals, tangents):
    """:func:`~jaxinfo._range.jvp_at_scaled_rows` of the three rows.

    ``D`` depends on ``P`` through two normalised rows, ``P`` and ``P``
    restricted to ``Q``'s support (with slopes of the size of the latter's,
    see :func:`_renyi_rows`), and on ``Q`` through one; each is scaled to a
    sum of order one for the derivative.
    """
    p, q, t = primals
    dp, dq, dt = (None if isinstance(d, SymbolicZero) else d for d in tangents)
    in_q = q > 0
    rows = (p, jnp.where(in_q, p, jnp.zeros_like(p)), q)
    dw = None if dp is None else jnp.where(in_q, dp, jnp.zeros_like(dp))
    row_tangents = (dp, dw, dq)

    def scaled(c, p, w, q, t):
        return _renyi_rows(p, w, q, t, jnp.log(c[0]) - jnp.log(c[1]), axis)

    # the primal through the rule again, so that higher derivatives use it too
    value = _renyi(axis, p, q, t)
    return value, jvp_at_scaled_rows(scaled, rows, row_tangents, (t,), (dt,), axis)

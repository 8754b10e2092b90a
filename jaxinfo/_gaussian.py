"""Gaussians: entropy and KL divergence in closed form, diagonal and full covariance.

The diagonal forms take the log-variance (the parametrisation a VAE's encoder
outputs), the full forms the Cholesky factor ``L`` of the covariance
``Σ = L Lᵀ``. Nothing inverts or takes the determinant of ``Σ``: the full KL
solves triangular systems and reads ``log det`` from the diagonal of ``L``,
and is written as a sum of non-negative terms, so that it is exactly 0 for
equal arguments and never cancels to a negative number.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxinfo._checks import Array, ArrayLike, Axis, as_float_arrays, canonical_axis, tuple_axis
from jaxinfo._units import check_base, finish, in_base
from jaxinfo._xlogy import expm1_minus

_LOG_2PI_E = 1.0 + math.log(2.0 * math.pi)


def _broadcast(arrays: list[Array], names: tuple[str, ...]) -> list[Array]:
    """Broadcasts the arguments together, or raises a ValueError naming every shape."""
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shapes = ", ".join(f"{n}.shape={a.shape}" for a, n in zip(arrays, names, strict=True))
        raise ValueError(
            f"{', '.join(names)} must have the same shape (or shapes that broadcast), got {shapes}."
        ) from None
    return [jnp.broadcast_to(a, shape) for a in arrays]


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


@tuple_axis("mean", "log_var")
def gaussian_entropy(
    mean: ArrayLike,
    log_var: ArrayLike,
    *,
    axis: Axis = -1,
    base: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""Differential entropy of a Gaussian with diagonal covariance.

    .. math::
       h(\mathcal{N}(\mu, \operatorname{diag} \sigma^2))
         = \frac{1}{2} \sum_i \left(1 + \log 2\pi + \log \sigma_i^2\right)

    Args:
      mean: the means ``μ``; the entropy does not depend on them, but they are
        taken so that a call reads like :func:`gaussian_kl_divergence`, and
        their shape broadcasts with ``log_var``'s.
      log_var: the log-variances ``log σ²``.
      axis: the axis, or tuple of axes, that holds the dimensions of one Gaussian.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      The entropy with ``axis`` reduced (negative for small variances, as a
      differential entropy may be).

    Raises:
      ValueError: for shapes that do not broadcast or an ``axis`` out of range.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.gaussian_entropy(jnp.zeros(2), jnp.zeros(2))  # 1 + log 2π
      Array(2.8379, dtype=float32)
    """
    check_base(base)
    mean, log_var = as_float_arrays((mean, "mean"), (log_var, "log_var"))
    mean, log_var = _broadcast([mean, log_var], ("mean", "log_var"))
    axis = canonical_axis(axis, log_var.ndim, "log_var")
    h = 0.5 * jnp.sum(log_var + _LOG_2PI_E, axis=axis, keepdims=True)
    return finish(h, axis, keepdims, base)


@tuple_axis("p_mean", "p_log_var", "q_mean", "q_log_var")
def gaussian_kl_divergence(
    p_mean: ArrayLike,
    p_log_var: ArrayLike,
    q_mean: ArrayLike = 0.0,
    q_log_var: ArrayLike = 0.0,
    *,
    axis: Axis = -1,
    base: ArrayLike | None = None,
    keepdims: bool = False,
) -> Array:
    r"""KL divergence between Gaussians with diagonal covariances, D(P‖Q).

    .. math::
       D(P \| Q) = \frac{1}{2} \sum_i \left( e^{r_i} - 1 - r_i
         + \frac{(\mu_{p,i} - \mu_{q,i})^2}{\sigma_{q,i}^2} \right),
       \qquad r_i = \log \sigma_{p,i}^2 - \log \sigma_{q,i}^2

    With the defaults ``q_mean = 0``, ``q_log_var = 0`` (the standard-normal
    prior) this is a VAE's KL term,
    ``-½ Σ (1 + log σ² - μ² - σ²)``. Both terms are non-negative, so the
    result is never negative and exactly 0 (with a zero gradient) for equal
    arguments. ``e^r - 1 - r`` is formed as the hand-written KL forms it (one
    ``exp``, an absolute rounding error of a few units in the last place per
    dimension); for log-variances in ±80 nothing is NaN, and the value is
    ``inf`` only where it exceeds the float range.

    Args:
      p_mean: means of ``P`` (the posterior).
      p_log_var: log-variances of ``P``.
      q_mean: means of ``Q``; 0 by default.
      q_log_var: log-variances of ``Q``; 0 (unit variance) by default.
      axis: the axis, or tuple of axes, that holds the dimensions of one Gaussian.
      base: logarithm base; ``None`` for nats, ``2`` for bits.
      keepdims: keep the reduced axis with size one.

    Returns:
      The divergence with ``axis`` reduced; the four arguments broadcast.

    Raises:
      ValueError: for shapes that do not broadcast or an ``axis`` out of range.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> mean, log_var = jnp.array([1.0, 0.0]), jnp.array([0.0, jnp.log(2.0)])
      >>> jaxinfo.gaussian_kl_divergence(mean, log_var)  # ½ (1 + 2 - 1 - log 2)
      Array(0.6534, dtype=float32)
      >>> jaxinfo.gaussian_kl_divergence(mean, log_var, mean, log_var)
      Array(0., dtype=float32)
    """
    check_base(base)
    names = ("p_mean", "p_log_var", "q_mean", "q_log_var")
    values = (p_mean, p_log_var, q_mean, q_log_var)
    # Python numbers (the prior's defaults) take the arrays' dtype, as weak types do.
    arrays = as_float_arrays(
        *((v, n) for v, n in zip(values, names, strict=True) if not _is_number(v))
    )
    dtype = arrays[0].dtype if arrays else None
    it = iter(arrays)
    args = [jnp.asarray(v, dtype) if _is_number(v) else next(it) for v in values]
    if dtype is None:
        args = as_float_arrays(*zip(args, names, strict=True))
    p_mean, p_log_var, q_mean, q_log_var = _broadcast(args, names)
    axis = canonical_axis(axis, p_mean.ndim, "p_mean")
    r = p_log_var - q_log_var
    dm = p_mean - q_mean
    # exp(r) - 1 - r, not expm1(r) - r: expm1 costs XLA:CPU half again the
    # time of exp, which would lose the speed of the formula users write.
    terms = (jnp.exp(r) - 1 - r) + dm * dm * jnp.exp(-q_log_var)
    kl = 0.5 * jnp.sum(terms, axis=axis, keepdims=True)
    return finish(kl, axis, keepdims, base)


def _check_scale_tril(scale_tril: Array, name: str) -> int:
    if scale_tril.ndim < 2 or scale_tril.shape[-1] != scale_tril.shape[-2]:
        raise ValueError(
            f"{name} must be a (batch of) square lower-triangular Cholesky factor(s) "
            f"with shape (..., d, d), got shape {scale_tril.shape}."
        )
    return scale_tril.shape[-1]


def _check_mean(mean: Array, d: int, name: str, tril_name: str) -> None:
    if mean.ndim < 1 or mean.shape[-1] != d:
        raise ValueError(
            f"{name} must have shape (..., d) with d = {d} (the size of {tril_name}), "
            f"got shape {mean.shape}."
        )


def _log_abs_diagonal(scale_tril: Array) -> Array:
    return jnp.log(jnp.abs(jnp.diagonal(scale_tril, axis1=-2, axis2=-1)))


def gaussian_entropy_full(scale_tril: ArrayLike, *, base: ArrayLike | None = None) -> Array:
    r"""Differential entropy of a Gaussian given the Cholesky factor of its covariance.

    .. math::
       h(\mathcal{N}(\mu, L L^\top))
         = \frac{d}{2} (1 + \log 2\pi) + \sum_i \log |L_{ii}|

    Args:
      scale_tril: lower-triangular ``L`` with ``Σ = L Lᵀ``, shape
        ``(..., d, d)``; the entries above the diagonal are not read.
      base: logarithm base; ``None`` for nats, ``2`` for bits.

    Returns:
      The entropy, shaped like the leading axes ``...``.

    Raises:
      ValueError: if ``scale_tril`` is not a (batch of) square matrices.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.gaussian_entropy_full(jnp.eye(2))  # 1 + log 2π
      Array(2.8379, dtype=float32)
    """
    check_base(base)
    (scale_tril,) = as_float_arrays((scale_tril, "scale_tril"))
    d = _check_scale_tril(scale_tril, "scale_tril")
    h = 0.5 * d * _LOG_2PI_E + jnp.sum(_log_abs_diagonal(scale_tril), axis=-1)
    return in_base(h, base)


def gaussian_kl_divergence_full(
    p_mean: ArrayLike,
    p_scale_tril: ArrayLike,
    q_mean: ArrayLike,
    q_scale_tril: ArrayLike,
    *,
    base: ArrayLike | None = None,
) -> Array:
    r"""KL divergence between Gaussians given the Cholesky factors of their covariances.

    With ``M = L_q^{-1} L_p`` and ``y = L_q^{-1} (μ_q - μ_p)`` (triangular
    solves; ``M_ii = L_{p,ii} / L_{q,ii}``):

    .. math::
       D(P \| Q) = \frac{1}{2} \Big( \operatorname{tr}(\Sigma_q^{-1} \Sigma_p)
           + \|y\|^2 - d + \log \frac{\det \Sigma_q}{\det \Sigma_p} \Big)
         = \frac{1}{2} \Big( \sum_i \big(e^{r_i} - 1 - r_i\big)
           + \sum_{i \ne j} M_{ij}^2 + \|y\|^2 \Big),
       \qquad r_i = \log M_{ii}^2

    The second form is a sum of non-negative terms: nothing cancels, the
    result is never negative, and it is exactly 0 for equal arguments.

    Args:
      p_mean: means of ``P``, shape ``(..., d)``.
      p_scale_tril: lower-triangular ``L_p`` with ``Σ_p = L_p L_pᵀ``, shape
        ``(..., d, d)``; the entries above the diagonal are not read.
      q_mean: means of ``Q``, shape ``(..., d)``.
      q_scale_tril: lower-triangular ``L_q``, shape ``(..., d, d)``.
      base: logarithm base; ``None`` for nats, ``2`` for bits.

    Returns:
      The divergence, shaped like the broadcast leading axes ``...``.

    Raises:
      ValueError: for a ``scale_tril`` that is not square, a mean whose last
        axis is not ``d``, or leading axes that do not broadcast.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> L = jnp.array([[1.0, 0.0], [0.5, 2.0]])
      >>> jaxinfo.gaussian_kl_divergence_full(jnp.ones(2), L, jnp.zeros(2), jnp.eye(2))
      Array(1.9319, dtype=float32)
      >>> jaxinfo.gaussian_kl_divergence_full(jnp.ones(2), L, jnp.ones(2), L)
      Array(0., dtype=float32)
    """
    check_base(base)
    names = ("p_mean", "p_scale_tril", "q_mean", "q_scale_tril")
    p_mean, p_tril, q_mean, q_tril = as_float_arrays(
        *zip((p_mean, p_scale_tril, q_mean, q_scale_tril), names, strict=True)
    )
    d = _check_scale_tril(p_tril, "p_scale_tril")
    if _check_scale_tril(q_tril, "q_scale_tril") != d:
        raise ValueError(
            f"p_scale_tril and q_scale_tril must have the same size d, got shapes "
            f"{p_tril.shape} and {q_tril.shape}."
        )
    _check_mean(p_mean, d, "p_mean", "p_scale_tril")
    _check_mean(q_mean, d, "q_mean", "q_scale_tril")
    # One batch shape for all four: means as (..., d, 1) columns.
    p_col, p_tril, q_col, q_tril = _broadcast(
        [p_mean[..., None], p_tril, q_mean[..., None], q_tril], names
    )
    p_col, q_col = p_col[..., :1], q_col[..., :1]
    p_tril, q_tril = jnp.tril(p_tril), jnp.tril(q_tril)
    solve = jax.lax.linalg.triangular_solve
    # L_q X = B (left side, lower). M's entries off the diagonal are those of
    # M - I = L_q^-1 (L_p - L_q), which is exactly 0 for equal factors whatever
    # the rounding of the solve, and keeps its digits for nearby ones.
    m = solve(q_tril, p_tril - q_tril, left_side=True, lower=True)
    y = solve(q_tril, q_col - p_col, left_side=True, lower=True)[..., 0]
    r = 2 * (_log_abs_diagonal(p_tril) - _log_abs_diagonal(q_tril))
    off_diagonal = jnp.tril(m, -1)  # lower-triangular: the entries below the diagonal
    kl = 0.5 * (
        jnp.sum(expm1_minus(r), axis=-1)
        + jnp.sum(off_diagonal * off_diagonal, axis=(-2, -1))
        + jnp.sum(y * y, axis=-1)
    )
    return in_base(kl, base)

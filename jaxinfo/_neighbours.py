r"""Entropy and mutual information of continuous samples, from nearest-neighbour distances.

:func:`differential_entropy` is the Kozachenko–Leonenko estimator,
:func:`mutual_information_ksg` the first estimator of Kraskov, Stögbauer and
Grassberger (KSG). Both need, for every sample, the distance to its ``k``-th
nearest neighbour among the others; they find it by brute force in blocks of
rows (``lax.map`` over blocks, each finding the ``k``-th smallest distance of
its rows by ``k - 1`` passes of ``argmin``), so that no ``n × n`` matrix exists at once: a block
holds about 2**21 distances, whatever ``n`` (20,000 samples in float32 need a
few tens of MB). Brute force costs ``n²`` distances, which on an accelerator
beats a tree for the ``n`` these estimators are used with.

Ties and duplicate samples. A sample's own distance (0) is left out by its
index, not by its value, so an exact duplicate counts as a neighbour at
distance 0. In :func:`differential_entropy`, a sample with ``k`` or more
duplicates has a ``k``-th neighbour at distance 0 and the estimate is
``-inf``: the differential entropy of a distribution with an atom. KSG counts
the marginal neighbours strictly inside the joint ``k``-th distance (``< eps``,
as in the paper), so ties at ``eps`` are not counted and a duplicate-heavy
sample gives a finite, biased value. For data with repeated values (rounded
measurements), add noise far below their resolution first, as Kraskov et al.
advise.
"""

from __future__ import annotations

import functools
import math
import operator

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma

from jaxinfo._checks import (
    Array,
    ArrayLike,
    as_float_array,
    as_float_arrays,
    canonical_axis,
    type_name,
)
from jaxinfo._units import check_base, in_base

_BLOCK_ELEMENTS = 2**21  # distances held by one block, over the whole batch


def _check_k(k: object, n: int) -> int:
    if isinstance(k, bool) or isinstance(k, jax.core.Tracer):
        raise TypeError(f"k must be a Python int, got {k!r}.")
    try:
        k = operator.index(k)
    except TypeError as e:
        raise TypeError(f"k must be an int, got {k!r} of type {type_name(k)}.") from e
    if not 1 <= k < n:
        raise ValueError(f"k must satisfy 1 <= k < n, the number of samples; got k={k} with n={n}.")
    return k


def _check_samples(x: Array, name: str) -> None:
    if x.ndim < 2:
        raise ValueError(
            f"{name} must have shape (..., n, d): samples along axis -2, coordinates along "
            f"axis -1; got shape {x.shape} (for n scalar samples pass {name}[:, None])."
        )


def _distances(q: Array, p: Array, norm: str) -> Array:
    """Distances of rows ``q`` (b, d) to rows ``p`` (n, d): (b, n), a coordinate at a time."""
    out = None
    for j in range(q.shape[-1]):
        diff = q[:, None, j] - p[None, :, j]
        term = jnp.abs(diff) if norm == "max" else diff * diff
        if out is None:
            out = term
        else:
            out = jnp.maximum(out, term) if norm == "max" else out + term
    return out if norm == "max" else jnp.sqrt(out)


def _by_blocks(f, n: int, batch: int):
    """``f(rows)`` for blocks of row indices covering ``0 .. n - 1``, concatenated."""
    block = max(1, min(n, _BLOCK_ELEMENTS // max(n * batch, 1)))
    blocks = -(-n // block)
    starts = jnp.arange(blocks) * block

    def one(start):
        return f(start + jnp.arange(block))

    out = jax.lax.map(one, starts)
    return jax.tree.map(lambda a: a.reshape((blocks * block, *a.shape[2:]))[:n], out)


def _kth(dist: Array, rows: Array, k: int) -> Array:
    """The ``k``-th smallest distance of each row, the row's own entry left out."""
    self_ = rows[:, None] == jnp.arange(dist.shape[1])[None, :]
    dist = jnp.where(self_, jnp.inf, dist)
    # k - 1 passes that each set one smallest entry (by index: duplicates stay)
    # to inf, then the minimum: on CPU some 15 times faster than lax.top_k.
    cols = jnp.arange(dist.shape[1])[None, :]
    rest = dist
    for _ in range(k - 1):
        rest = jnp.where(cols == jnp.argmin(rest, axis=1)[:, None], jnp.inf, rest)
    return jnp.min(rest, axis=1), dist


def _kl_one(points: Array, k: int, batch: int) -> Array:
    n, d = points.shape
    padded = jnp.concatenate([points, jnp.zeros_like(points)], axis=0)

    def rows_of(rows):
        q = padded[jnp.minimum(rows, 2 * n - 1)]
        eps, _ = _kth(_distances(q, points, "euclidean"), rows, k)
        return eps

    eps = _by_blocks(rows_of, n, batch)
    # log of the volume of the unit ball in d dimensions
    log_ball = (d / 2) * math.log(math.pi) - math.lgamma(d / 2 + 1)
    return digamma(float(n)) - digamma(float(k)) + log_ball + d * jnp.mean(jnp.log(eps))


@functools.partial(jax.jit, static_argnums=1)
def _kl_batch(flat: Array, k: int) -> Array:
    return jax.vmap(lambda p: _kl_one(p, k, flat.shape[0]))(flat)


def differential_entropy(
    samples: ArrayLike,
    *,
    k: int = 3,
    axis: int = -2,
    base: ArrayLike | None = None,
) -> Array:
    r"""Differential entropy from samples: the Kozachenko–Leonenko estimator.

    With ``n`` samples in ``d`` dimensions, :math:`\varepsilon_i` the Euclidean
    distance from sample ``i`` to its ``k``-th nearest neighbour and
    :math:`V_d = \pi^{d/2} / \Gamma(d/2 + 1)` the volume of the unit ball,

    .. math::
       \hat h = \psi(n) - \psi(k) + \log V_d + \frac dn \sum_{i=1}^n \log \varepsilon_i

    (Kozachenko and Leonenko's ``k = 1`` estimator, for any ``k`` as in
    Kraskov et al. 2004, eq. (20)). Consistent for densities with finite
    entropy; its bias grows with ``d``. Computed by blocks of rows, never the
    whole ``n × n`` distance matrix (see ``_neighbours.py``, also for ties).

    Args:
      samples: shape ``(..., n, d)``: ``n`` samples along ``axis``, their ``d``
        coordinates along the last axis; other axes are a batch.
      k: which neighbour, ``1 <= k < n``.
      axis: the axis of the samples; not the last (the coordinates).
      base: logarithm base; ``None`` for nats, ``2`` for bits.

    Returns:
      The estimate, with the sample and coordinate axes reduced; ``-inf``
      when some sample has ``k`` or more exact duplicates.

    Raises:
      ValueError: for fewer than two dimensions, ``axis`` the last axis, or
        ``k`` outside ``[1, n)``.
      TypeError: for a ``k`` that is not an int, or complex or boolean samples.

    Examples:
      Samples on a regular grid of the unit square:

      >>> import jax.numpy as jnp, jaxinfo
      >>> g = (jnp.arange(20.0) + 0.5) / 20
      >>> square = jnp.stack(jnp.meshgrid(g, g), axis=-1).reshape(-1, 2)
      >>> round(float(jaxinfo.differential_entropy(square, k=4)), 2)  # h = log 1 = 0
      0.03

    References:
      Kozachenko and Leonenko, "Sample estimate of the entropy of a random
      vector", Problems of Information Transmission 23, 95–101, 1987.
      Kraskov, Stögbauer and Grassberger, "Estimating mutual information",
      Physical Review E 69, 066138, 2004.
    """
    check_base(base)
    x = as_float_array(samples, "samples")
    _check_samples(x, "samples")
    axis = canonical_axis(axis, x.ndim, "samples")
    if axis == x.ndim - 1:
        raise ValueError(
            f"axis {axis} is the last axis of samples, which holds the coordinates; "
            "the samples must lie along another axis (by default -2)."
        )
    x = jnp.moveaxis(x, axis, -2)
    n = x.shape[-2]
    k = _check_k(k, n)
    batch_shape = x.shape[:-2]
    h = _kl_batch(x.reshape((-1, *x.shape[-2:])), k)
    return in_base(h.reshape(batch_shape), base)


def _ksg_one(x: Array, y: Array, k: int, batch: int) -> Array:
    n = x.shape[0]
    pad_x = jnp.concatenate([x, jnp.zeros_like(x)], axis=0)
    pad_y = jnp.concatenate([y, jnp.zeros_like(y)], axis=0)

    def rows_of(rows):
        safe = jnp.minimum(rows, 2 * n - 1)
        dx = _distances(pad_x[safe], x, "max")
        dy = _distances(pad_y[safe], y, "max")
        eps, _ = _kth(jnp.maximum(dx, dy), rows, k)
        other = rows[:, None] != jnp.arange(n)[None, :]
        nx = jnp.sum(other & (dx < eps[:, None]), axis=1).astype(x.dtype)
        ny = jnp.sum(other & (dy < eps[:, None]), axis=1).astype(x.dtype)
        return digamma(nx + 1) + digamma(ny + 1)

    psi_sum = _by_blocks(rows_of, n, batch)
    return digamma(float(k)) + digamma(float(n)) - jnp.mean(psi_sum)


@functools.partial(jax.jit, static_argnums=2)
def _ksg_batch(x: Array, y: Array, k: int) -> Array:
    return jax.vmap(lambda a, b: _ksg_one(a, b, k, x.shape[0]))(x, y)


def mutual_information_ksg(
    x: ArrayLike,
    y: ArrayLike,
    *,
    k: int = 3,
    base: ArrayLike | None = None,
) -> Array:
    r"""Mutual information of paired continuous samples: KSG estimator 1.

    With :math:`\varepsilon_i` the distance from pair ``i`` to its ``k``-th
    nearest neighbour in the joint space under the maximum norm,
    :math:`\|(x, y)\| = \max(\|x\|_\infty, \|y\|_\infty)`, and
    :math:`n_x(i)`, :math:`n_y(i)` the numbers of other samples strictly
    closer than :math:`\varepsilon_i` in ``x`` and in ``y`` alone,

    .. math::
       \hat I = \psi(k) + \psi(n) - \frac1n \sum_{i=1}^n
          \left[\psi(n_x(i) + 1) + \psi(n_y(i) + 1)\right]

    (Kraskov, Stögbauer and Grassberger 2004, eq. (8)). Nearly unbiased for
    independent variables; can be slightly negative. Computed by blocks of
    rows, never the whole ``n × n`` distance matrix (see ``_neighbours.py``,
    also for ties).

    Args:
      x: shape ``(..., n, dx)``: ``n`` samples of ``X`` along axis -2.
      y: shape ``(..., n, dy)``: the paired samples of ``Y``; the leading
        (batch) axes of ``x`` and ``y`` broadcast.
      k: which neighbour, ``1 <= k < n``.
      base: logarithm base; ``None`` for nats, ``2`` for bits.

    Returns:
      The estimate, with the sample and coordinate axes reduced.

    Raises:
      ValueError: for fewer than two dimensions, different numbers of
        samples in ``x`` and ``y``, batch shapes that do not broadcast, or
        ``k`` outside ``[1, n)``.
      TypeError: for a ``k`` that is not an int, or complex or boolean samples.

    Examples:
      ``Y = X`` for 200 distinct values: ``I = H(X)``, far above 0; ``Y``
      unrelated to ``X``: about 0.

      >>> import jax, jax.numpy as jnp, jaxinfo
      >>> x = jax.random.normal(jax.random.key(0), (2, 400, 1))
      >>> float(jaxinfo.mutual_information_ksg(x[0], x[0])) > 3
      True
      >>> abs(float(jaxinfo.mutual_information_ksg(x[0], x[1]))) < 0.05
      True

    References:
      Kraskov, Stögbauer and Grassberger, "Estimating mutual information",
      Physical Review E 69, 066138, 2004.
    """
    check_base(base)
    x, y = as_float_arrays((x, "x"), (y, "y"))
    _check_samples(x, "x")
    _check_samples(y, "y")
    if x.shape[-2] != y.shape[-2]:
        raise ValueError(
            "x and y must hold the same number of samples (axis -2), got "
            f"x.shape={x.shape} and y.shape={y.shape}."
        )
    try:
        batch_shape = jnp.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    except ValueError:
        raise ValueError(
            f"the batch axes of x and y must broadcast, got x.shape={x.shape} and "
            f"y.shape={y.shape}."
        ) from None
    n = x.shape[-2]
    k = _check_k(k, n)
    x = jnp.broadcast_to(x, batch_shape + x.shape[-2:]).reshape((-1, *x.shape[-2:]))
    y = jnp.broadcast_to(y, batch_shape + y.shape[-2:]).reshape((-1, *y.shape[-2:]))
    mi = _ksg_batch(x, y, k)
    return in_base(mi.reshape(batch_shape), base)

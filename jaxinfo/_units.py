"""Units and ranges: nats, bits, or any base, possibly traced; results kept in range.

Every measure is computed in nats and converted once, at the end, by
:func:`finish`, which also drops the reduced axis unless ``keepdims`` and puts
the result inside its mathematical range (:func:`in_range`).

Rounding can take a measure just outside its range: a KL divergence of two
nearly equal distributions comes out as ``-1e-7``, whose square root is NaN.
:func:`in_range` clamps the result, in the units it is returned in, into
``[0, log_b K]`` (``K`` outcomes; no upper bound where there is none). The
clamp moves a value by rounding error only, so its derivative passes the
incoming one straight through (:func:`clamp`): it is the derivative of the
measure itself, which the clamped value approximates. ``jnp.clip``'s
derivative, 0 wherever it clamps, would instead stall a fit exactly at the
bound (``P = Q`` for KL, the uniform distribution for entropy).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxinfo._checks import ArrayLike, type_name

Array = jax.Array


def check_base(base: ArrayLike | None) -> None:
    """Checks a concrete logarithm base; traced bases are taken as given."""
    if base is None or isinstance(base, jax.core.Tracer):
        return
    try:
        dtype = jnp.result_type(base)
    except TypeError as e:
        raise TypeError(
            f"base must be a positive number or None, got {base!r} of type {type_name(base)}."
        ) from e
    if dtype == jnp.bool_ or not (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    ):
        raise TypeError(f"base must be a real number or None, got dtype {dtype}.")
    value = np.asarray(base)
    if value.shape == () and not (value > 0 and value != 1):
        raise ValueError(
            f"base must be positive and not 1 (2 for bits, None for nats), got {base!r}."
        )


def in_base(nats: Array, base: ArrayLike | None) -> Array:
    """Converts a quantity in nats to the logarithm base ``base``."""
    if base is None:
        return nats
    return nats / jnp.log(jnp.asarray(base, dtype=nats.dtype))


@jax.custom_jvp
def clamp(x: Array, lo: ArrayLike, hi: ArrayLike) -> Array:
    """``x`` clamped into ``[lo, hi]`` (NaN stays NaN), with ``x``'s derivative passed through."""
    return jnp.clip(x, lo, hi)


@clamp.defjvp
def _clamp_jvp(primals, tangents):
    x, lo, hi = primals
    dx, _, _ = tangents
    return clamp(x, lo, hi), dx


Outcomes = int | tuple[Array, int]
"""A number of outcomes ``K``: static, or a traced count with its static maximum."""


def log_bound(k: Outcomes, base: ArrayLike | None, dtype) -> Array:
    """``log_base(K)``, the bound of a measure over ``K`` outcomes, rounded to nearest in ``dtype``.

    Computed in float64 while tracing; a traced count ``(count, n)`` gathers
    its bound from the ``n + 1`` values. So the bound is the float nearest
    ``log_base K``, as a correctly computed measure of a uniform row is; a
    logarithm taken in ``dtype`` may be an ulp off. ``K = 0`` (no outcome)
    counts as one, for a bound of 0. ``base`` is a concrete scalar or None.
    """
    log_b = 1.0 if base is None else np.log(np.asarray(base, dtype=np.float64))
    if isinstance(k, int):
        return jnp.asarray(np.log(max(k, 1)) / log_b, dtype)
    count, most = k
    table = jnp.asarray(np.log(np.maximum(np.arange(most + 1), 1)) / log_b, dtype)
    return table[jnp.clip(count, 0, most)]


def in_range(x: Array, base: ArrayLike | None, *, log_of: Outcomes | None = None) -> Array:
    """Clamps a measure in units of ``base`` into ``[0, log_base(log_of)]``.

    ``log_of`` is the number of outcomes ``K`` (an int, or a count broadcastable
    to ``x`` with its maximum), or ``None`` for a measure with no upper bound. For a base below 1
    the range is ``[log_base K, 0]``. The derivative passes straight through.
    ``base`` is a concrete scalar (:func:`finish` clamps in nats for the others).
    """
    positive = base is None or float(np.asarray(base)) > 1
    if log_of is None:
        bound = jnp.asarray(jnp.inf if positive else -jnp.inf, x.dtype)
    else:
        bound = log_bound(log_of, base, x.dtype)
    zero = jnp.zeros_like(bound)
    return clamp(x, zero, bound) if positive else clamp(x, bound, zero)


def to_unit(x: Array, base: ArrayLike | None, *, log_of: Outcomes | None = None) -> Array:
    """A non-negative measure in nats, converted to ``base`` and clamped into its range.

    ``log_of`` is as in :func:`in_range`.
    """
    if isinstance(base, jax.core.Tracer) or np.ndim(base) > 0:
        # The unit is not known while tracing (or is one per row): the range is
        # kept in nats, and the converted bound is exact to the division's rounding.
        return in_base(in_range(x, None, log_of=log_of), base)
    return in_range(in_base(x, base), base, log_of=log_of)


def finish(
    x: Array,
    axis: int,
    keepdims: bool,
    base: ArrayLike | None,
    *,
    log_of: Outcomes | None = None,
) -> Array:
    """Common epilogue: drop the reduced axis unless ``keepdims``, then :func:`to_unit`.

    ``x`` is a non-negative measure in nats; ``log_of`` is as in :func:`in_range`
    (a count with ``axis`` kept, like ``x``).
    """
    if not keepdims:
        x = jnp.squeeze(x, axis)
        if isinstance(log_of, tuple):
            log_of = (jnp.squeeze(log_of[0], axis), log_of[1])
    return to_unit(x, base, log_of=log_of)

"""Units: nats, bits, or any base, possibly traced.

Every measure is computed in nats and converted once, at the end, by
:func:`finish`, which also drops the reduced axis unless ``keepdims``.
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


def finish(x: Array, axis: int, keepdims: bool, base: ArrayLike | None) -> Array:
    """Common epilogue: drop the reduced axis unless ``keepdims``, change units."""
    if not keepdims:
        x = jnp.squeeze(x, axis)
    return in_base(x, base)

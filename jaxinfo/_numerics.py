"""The few safe primitives every measure in jaxinfo stands on.

Everything numerically delicate lives here, once:

* the dtype policy (integers promote to float, bf16/f16 compute in float32,
  complex and non-numeric inputs are rejected);
* argument checks that run at trace time, so bad input fails before compiling;
* ``x log x`` and ``x log y`` with the conventions ``0 log 0 = 0`` and
  ``p log 0 = -inf`` for ``p > 0``, whose gradients are finite wherever the
  value is;
* a masked, max-shifted log-partition for logits that survives ``-inf``
  (masked) classes, huge logits and rows in which every class is masked;
* unit conversion (nats, bits, any base, possibly traced).

The public measures are written as their equations on top of these helpers.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

Array = jax.Array

# --------------------------------------------------------------------------
# dtype policy and argument checks
# --------------------------------------------------------------------------


def _type_name(x: object) -> str:
    return type(x).__name__


def _from_sequence(x: object) -> object:
    """Lists and tuples (as a notebook user types them) become NumPy arrays."""
    if isinstance(x, (list, tuple)):
        try:
            return np.asarray(x)
        except ValueError as e:  # ragged nesting
            raise ValueError(f"could not make an array of {x!r}: {e}") from e
    return x


def as_float_array(x: ArrayLike, name: str) -> Array:
    """Returns ``x`` as a floating array in its computation dtype.

    Integers (and unsigned integers) are promoted to JAX's default float type;
    bfloat16 and float16 are computed in float32; float32 and float64 are kept.
    Booleans, complex numbers and non-numeric input raise a TypeError that names
    the argument.
    """
    x = _from_sequence(x)
    try:
        dtype = jnp.result_type(x)
    except TypeError as e:
        raise TypeError(
            f"{name} must be a real-valued array, got an object of type {_type_name(x)}."
        ) from e
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(
            f"{name} must be real-valued, got dtype {dtype}; complex inputs are not "
            "probabilities or logits."
        )
    if dtype == jnp.bool_ or not (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    ):
        raise TypeError(f"{name} must have a real numeric dtype (float or int), got dtype {dtype}.")
    return jnp.asarray(x, dtype=compute_dtype(dtype))


def compute_dtype(*dtypes) -> np.dtype:
    """The dtype measures are computed and returned in: at least float32."""
    # Chosen explicitly (not by jnp.result_type) so that it is the same under
    # JAX's strict and standard promotion modes: the widest float wins, and
    # integers count as JAX's default float (float64 only under x64).
    widest = np.dtype(jnp.float32)
    for dtype in dtypes:
        dtype = np.dtype(dtype)
        if not jnp.issubdtype(dtype, jnp.floating):
            dtype = np.dtype(jnp.result_type(float))
        if dtype.itemsize > widest.itemsize:
            widest = dtype
    return widest


def as_float_arrays(*named: tuple[ArrayLike, str]) -> list[Array]:
    """Like :func:`as_float_array` for several arguments, in one common dtype."""
    arrays = [as_float_array(x, name) for x, name in named]
    dtype = compute_dtype(*(a.dtype for a in arrays))
    return [a.astype(dtype) for a in arrays]


def as_label_array(labels: ArrayLike, name: str = "labels") -> Array:
    """Returns integer class labels; float, bool and complex labels are TypeErrors."""
    labels = _from_sequence(labels)
    try:
        dtype = jnp.result_type(labels)
    except TypeError as e:
        raise TypeError(
            f"{name} must be an integer array of class ids, got an object of type "
            f"{_type_name(labels)}."
        ) from e
    if dtype == jnp.bool_ or not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(
            f"{name} must have an integer dtype (class ids), got dtype {dtype}. "
            "For soft or one-hot targets use cross_entropy_from_logits(p, logits)."
        )
    labels = jnp.asarray(labels)
    if jnp.issubdtype(labels.dtype, jnp.unsignedinteger):
        # Huge unsigned ids must stay out of range, not wrap round to "ignored".
        labels = jnp.minimum(labels, np.iinfo(np.int32).max)
    return labels.astype(jnp.int32)


def check_unit_interval(value: ArrayLike, name: str) -> None:
    """Checks that a concrete scalar option lies in [0, 1]; tracers pass."""
    if isinstance(value, jax.core.Tracer):
        return
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    if arr.shape != () or not 0 <= float(arr) <= 1:
        raise ValueError(f"{name} must be a scalar in [0, 1], got {value!r}.")


def canonical_axis(axis: object, ndim: int, name: str = "x") -> int:
    """Checks ``axis`` against an array of ``ndim`` dimensions; returns it >= 0."""
    if ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (the outcomes), got a scalar.")
    try:
        axis = operator.index(axis)
    except TypeError as e:
        raise TypeError(f"axis must be an int, got {axis!r} of type {_type_name(axis)}.") from e
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"axis {axis} is out of range for {name} with {ndim} dimension(s); "
            f"expected -{ndim} <= axis < {ndim}."
        )
    return axis % ndim


def broadcast_pair(x: Array, y: Array, x_name: str, y_name: str) -> tuple[Array, Array]:
    """Broadcasts two arguments against each other or raises a ValueError."""
    try:
        shape = np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise ValueError(
            f"{x_name} and {y_name} must have the same shape (or shapes that "
            f"broadcast), got {x_name}.shape={x.shape} and {y_name}.shape={y.shape}."
        ) from None
    return jnp.broadcast_to(x, shape), jnp.broadcast_to(y, shape)


def as_mask(where: ArrayLike | None, shape: tuple[int, ...], name: str) -> Array | None:
    """Checks a ``where`` mask of outcomes and broadcasts it to ``shape``."""
    if where is None:
        return None
    where = _from_sequence(where)
    try:
        dtype = jnp.result_type(where)
    except TypeError as e:
        raise TypeError(
            f"where must be a boolean array, got an object of type {_type_name(where)}."
        ) from e
    if dtype != jnp.bool_:
        raise TypeError(f"where must be a boolean array, got dtype {dtype}.")
    where = jnp.asarray(where)
    try:
        ok = np.broadcast_shapes(where.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"where with shape {where.shape} does not broadcast to the shape of "
            f"{name}, {tuple(shape)}."
        )
    return jnp.broadcast_to(where, shape)


def check_base(base: ArrayLike | None) -> None:
    """Checks a concrete logarithm base; traced bases are taken as given."""
    if base is None or isinstance(base, jax.core.Tracer):
        return
    try:
        dtype = jnp.result_type(base)
    except TypeError as e:
        raise TypeError(
            f"base must be a positive number or None, got {base!r} of type {_type_name(base)}."
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


# --------------------------------------------------------------------------
# x log x and x log y
# --------------------------------------------------------------------------


def xlogx(x: Array) -> Array:
    """``x * log(x)`` with ``0 log 0 = 0``, finite first and second derivatives.

    The logarithm's argument is clamped at the smallest normal number: for
    ``x = 0`` that gives ``0 * log(tiny) = 0`` exactly, and a large finite
    derivative ``log(tiny) + 1`` that points the right way (the true one is
    ``-inf``). The clamp is a select, not ``jnp.maximum``: the derivative rule
    of ``maximum`` makes the second derivative NaN at 0, a select's does not.
    It fuses into the surrounding reduction at no measurable cost.
    """
    return x * clamped_log(x)


def clamped_log(x: Array) -> Array:
    """``log(x)`` with ``x`` clamped below at the smallest normal number.

    The logarithm inside :func:`xlogx`: finite at 0 (``log(tiny)``), so that
    ``0 * clamped_log(0) = 0``, with a zero derivative below ``tiny`` and a
    finite second derivative (the clamp is a select, see :func:`xlogx`).
    """
    tiny = jnp.finfo(x.dtype).tiny
    return jnp.log(jnp.where(x > tiny, x, tiny))


def xlogy(x: Array, y: Array) -> Array:
    """``x * log(y)`` with ``0 log y = 0`` for every ``y >= 0``.

    ``x > 0, y = 0`` gives ``-inf`` (the true value) and ``x = 0, y = 0`` gives
    0. Only at ``x = y = 0`` is ``y`` replaced by 1 before the logarithm, so
    the gradient there is finite (``0``) instead of ``0 / 0``; everywhere else
    the derivatives are the textbook ``log y`` and ``x / y``.
    """
    y = jnp.where((x == 0) & (y == 0), jnp.ones_like(y), y)
    return x * jnp.log(y)


def xlog_from_log(x: Array, log_y: Array) -> Array:
    """``x * log_y`` for a log-probability that may be ``-inf`` (``0 * -inf = 0``)."""
    log_y = jnp.where((x == 0) & (log_y == -jnp.inf), jnp.zeros_like(log_y), log_y)
    return x * log_y


def safe_total(x: Array, axis: int | tuple[int, ...]) -> Array:
    """Sum along ``axis`` (an int or a tuple; kept), with empty or all-zero rows replaced by 1."""
    total = jnp.sum(x, axis=axis, keepdims=True)
    return jnp.where(total > 0, total, jnp.ones_like(total))


class Scaled(NamedTuple):
    """Non-negative weights scaled by a power of two near their row maximum.

    Attributes:
      x: ``w / 2**e`` along the axis, with ``2**e`` the smallest power of two at
        or above ``max(w)``: entries in ``[0, 1]`` (``x / total`` is the
        normalised distribution).
      total: ``sum(x)`` (kept); 1 on rows with no mass.
      log_total: ``log(sum(w))`` (kept), as ``e log 2 + log(total)`` so that it
        neither overflows nor underflows; 0 on rows with no mass.
      nonempty: boolean (kept), whether the row has positive mass.
      log_scale: ``e log 2`` (kept), 0 on rows with no mass.
    """

    x: Array
    total: Array
    log_total: Array
    nonempty: Array
    log_scale: Array


def scale_by_max(w: Array, axis: int | tuple[int, ...]) -> Scaled:
    """Brings a row of non-negative weights to ``[0, 1]`` before any product.

    Probabilities are normalised along the axis, so any non-negative weights
    are valid input, from counts near the float maximum (whose ``w log w`` or
    sum overflows) down to rows of numbers near the smallest normal (whose
    products underflow to zero and whose gradients, of order
    ``1 / sum(w)**2``, overflow). Scaling each row by a power of two near its
    maximum keeps every intermediate of order one, and is exact: rows whose
    maximum lies in ``(1/2, 1]``, normalised probabilities among them, are not
    changed at all. The exponent is under ``stop_gradient``; the normalised
    distribution does not depend on it, so the gradients are exact.

    The scale is a multiplication by ``2**-e`` with ``e`` clipped so that
    ``2**-e`` is a normal number (XLA would turn a division into a
    multiplication by a reciprocal anyway, and a subnormal one is flushed to
    zero on CPU); rows of weights beyond the clip get entries up to 4.
    """
    info = jnp.finfo(w.dtype)
    m = lax.stop_gradient(jnp.max(w, axis=axis, keepdims=True))
    mantissa, e = jnp.frexp(m)  # m = mantissa * 2**e, mantissa in [1/2, 1); 0 -> e = 0
    e = jnp.where(mantissa == 0.5, e - 1, e)  # a power of two is its own scale
    # m > 0 is false for a subnormal m where the platform flushes them: that
    # row is empty to every other operation too.
    e = jnp.where(m > 0, jnp.clip(e, info.minexp - 1, info.maxexp - 2), jnp.zeros_like(e))
    x = w * jnp.ldexp(jnp.ones_like(m), -e)
    total = jnp.sum(x, axis=axis, keepdims=True)
    nonempty = total > 0
    total = jnp.where(nonempty, total, jnp.ones_like(total))
    log_scale = e.astype(w.dtype) * np.log(2).astype(w.dtype)
    return Scaled(
        x=x,
        total=total,
        log_total=log_scale + jnp.log(total),
        nonempty=nonempty,
        log_scale=log_scale,
    )


def log_scaled(w: Array, sw: Scaled) -> Array:
    """``log(w / 2**e)`` for the weights ``w`` that ``sw = scale_by_max(w)`` scaled.

    ``log(sw.x)`` where the scaled entry is positive (so identical inputs give
    identical logarithms), ``log(w) - e log 2`` where it underflowed (an entry
    far below the row's maximum), ``-inf`` where ``w = 0``. One logarithm per
    entry, and no NaN in its gradient at 0 (the argument is replaced first).
    """
    scaled_ok = sw.x > 0
    positive = w > 0
    arg = jnp.where(scaled_ok, sw.x, jnp.where(positive, w, jnp.ones_like(w)))
    shift = jnp.where(scaled_ok, jnp.zeros_like(sw.log_scale), sw.log_scale)
    return jnp.where(positive, jnp.log(arg) - shift, -jnp.inf)


def normalise(w: Array, axis: int | tuple[int, ...]) -> Array:
    """``w / sum(w)`` along ``axis`` (an int or a tuple), for any non-negative
    weights: no overflow for huge ones, no underflow for tiny ones (see
    :func:`scale_by_max`); rows with no mass stay 0."""
    sw = scale_by_max(w, axis)
    return sw.x / sw.total


# --------------------------------------------------------------------------
# logits
# --------------------------------------------------------------------------


class Shifted(NamedTuple):
    """Logits shifted by their (masked) row maximum, and the log-partition.

    Attributes:
      s: ``logits - max`` with masked classes at ``-inf``; ``log_softmax = s - log_z``.
      log_z: ``log(sum(exp(s)))`` along the axis (kept), 0 on rows where every
        class is masked (so that such rows measure 0 instead of NaN).
      exp_s: ``exp(s)``; ``softmax = exp_s / z``.
      z: ``sum(exp(s))`` (kept), 1 on fully masked rows.
      nonempty: boolean (kept), whether the row has any class left.
    """

    s: Array
    log_z: Array
    exp_s: Array
    z: Array
    nonempty: Array


def shift_logits(logits: Array, axis: int, mask: Array | None) -> Shifted:
    """Masks and max-shifts logits; computes the partition function once.

    The maximum is taken under ``stop_gradient`` (softmax is shift-invariant)
    and replaced by 0 when it is not finite, which happens only on rows whose
    classes are all masked or ``-inf``.
    """
    if mask is not None:
        logits = jnp.where(mask, logits, -jnp.inf)
    m = lax.stop_gradient(jnp.max(logits, axis=axis, keepdims=True))
    nonempty = m > -jnp.inf
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))
    s = logits - m
    exp_s = jnp.exp(s)
    z = jnp.sum(exp_s, axis=axis, keepdims=True)
    z = jnp.where(z > 0, z, jnp.ones_like(z))
    return Shifted(s=s, log_z=jnp.log(z), exp_s=exp_s, z=z, nonempty=nonempty)


def class_ids(shape: tuple[int, ...], axis: int) -> Array:
    """Class index along ``axis``, broadcast to ``shape`` (int32)."""
    return lax.broadcasted_iota(jnp.int32, shape, axis)


def finite_floor(x: Array) -> Array:
    """Clamps ``-inf`` to the most negative finite value so that ``0 * x = 0``.

    Finite entries, however large, are unchanged (``0 * -1e30 = 0`` already).
    """
    return jnp.maximum(x, jnp.finfo(x.dtype).min)

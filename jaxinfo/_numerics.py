"""The few safe primitives every measure in jaxinfo stands on.

Everything numerically delicate lives here, once:

* the dtype policy (integers promote to float, bf16/f16 compute in float32,
  complex and non-numeric inputs are rejected);
* argument checks that run at trace time, so bad input fails before compiling;
* the scaling of non-negative weights by a power of two near their row total
  (:func:`scale_by_total`), so that weights of any magnitude, from the
  smallest normal number to the float maximum, neither overflow nor
  underflow;
* ``x log x`` and ``x log y`` with the conventions ``0 log 0 = 0`` and
  ``p log 0 = -inf`` for ``p > 0``, whose gradients are finite wherever the
  value is;
* cross-entropy and KL of weights (:func:`cross_entropy_of_weights`,
  :func:`kl_divergence_of_weights`) with derivative rules written out, whose
  coefficients stay in range for rows at either end of the float range;
* a masked, max-shifted log-partition for logits that survives ``-inf``
  (masked) classes, huge logits and rows in which every class is masked;
  with ``axis_name``, the same over classes split across devices (partial
  maxima and sums combined with ``lax.pmax`` / ``lax.psum``);
* a streaming log-sum-exp for logits that arrive one block of classes at a
  time, and the combination of per-device log-partitions;
* shard_map's varying-axes types, so that custom derivatives sum the
  cotangents of replicated inputs;
* unit conversion (nats, bits, any base, possibly traced).

The public measures are written as their equations on top of these helpers.

On speed: XLA:CPU fuses a chain of reductions and arithmetic (``max``, ``sum``,
``exp``, ``log``, ``+ - * /``, ``maximum``, ``sign``) into one loop over the
data, but not a comparison or a select (``jnp.where``) on a full-size array,
which it computes in a loop of its own and keeps in memory. So the values
below are computed with arithmetic guards (``1 - sign(x)`` for "is zero", a
``maximum`` for a floor), and the derivatives, which do need selects, are
given by ``custom_jvp`` rules, either written out or as the derivative of a
plainer reference formula. ``benchmarks/`` measures the result.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Hashable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero
from jax.typing import ArrayLike

Array = jax.Array
AxisName = Hashable

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


def as_real_array(x: ArrayLike, name: str) -> Array:
    """Returns ``x`` as a floating array, keeping its float dtype (bf16 stays bf16).

    Integers (and unsigned integers) are promoted to JAX's default float type.
    Booleans, complex numbers and non-numeric input raise a TypeError that names
    the argument. Used where the caller decides when to widen (a matmul in
    bfloat16 that accumulates in float32, say); elsewhere use
    :func:`as_float_array`.
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
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return jnp.asarray(x, dtype=dtype)


def as_float_array(x: ArrayLike, name: str) -> Array:
    """Returns ``x`` as a floating array in its computation dtype.

    Integers (and unsigned integers) are promoted to JAX's default float type;
    bfloat16 and float16 are computed in float32; float32 and float64 are kept.
    Booleans, complex numbers and non-numeric input raise a TypeError that names
    the argument.
    """
    x = as_real_array(x, name)
    return x.astype(compute_dtype(x.dtype))


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


def _log_tiny(dtype) -> Array:
    """``log`` of the smallest normal number of ``dtype``: ``log 0`` made finite."""
    return jnp.asarray(np.log(jnp.finfo(dtype).tiny), dtype=dtype)


@jax.custom_jvp
def xlogx(x: Array) -> Array:
    """``x * log(x)`` with ``0 log 0 = 0``, finite first and second derivatives.

    The value floors the *logarithm* at ``log(tiny)`` (tiny: the smallest
    normal number), so ``x = 0`` gives ``0 * log(tiny) = 0`` exactly. The
    floor comes after the ``log`` because there it costs almost nothing: on
    XLA:CPU an extra operation between the load and the ``log`` slows the
    whole reduction by a quarter, a select (``where``) even takes it out of the
    fused loop and materialises a temporary array.

    The derivative, ``log(x) + 1``, is given explicitly with the argument of
    the ``log`` clamped at ``tiny``: at ``x = 0`` it is large, finite and points
    the right way (the true one is ``-inf``), and the second derivative is
    finite too.
    """
    return x * jnp.maximum(jnp.log(x), _log_tiny(x.dtype))


@xlogx.defjvp
def _xlogx_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return xlogx(x), (clamped_log(x) + 1) * dx


def clamped_log(x: Array) -> Array:
    """``log(x)`` with ``x`` clamped below at the smallest normal number.

    The logarithm in the derivative of :func:`xlogx`: finite at 0
    (``log(tiny)``), so that ``0 * clamped_log(0) = 0``, with a zero derivative
    below ``tiny`` and a finite second derivative (the clamp is a select: the
    derivative rule of ``maximum`` would make that NaN at 0). A select is not
    fused into a reduction on XLA:CPU; in a value that is summed, prefer
    ``maximum(log(x), log(tiny))`` as :func:`xlogx` does.
    """
    tiny = jnp.finfo(x.dtype).tiny
    return jnp.log(jnp.where(x > tiny, x, tiny))


def _tangent(t) -> Array | None:
    """A tangent of a ``custom_jvp`` rule, or None where it is a symbolic zero."""
    return None if isinstance(t, SymbolicZero) else t


def _linear(out: Array, *terms) -> Array:
    """Sum of ``coefficient * tangent`` over the tangents that are not zero."""
    total = jnp.zeros_like(out)
    for coefficient, tangent in terms:
        tangent = _tangent(tangent)
        if tangent is not None:
            total = total + coefficient * tangent
    return total


def _one_where_zero(x: Array) -> Array:
    """1 where ``x = 0``, 0 where ``x > 0``: ``1 - sign(x)``, arithmetic that fuses."""
    return 1 - jnp.sign(x)


def _below_normal(x: Array) -> Array:
    """``x < tiny``: zero or subnormal, which XLA:CPU flushes to zero in some operations."""
    return x < jnp.finfo(x.dtype).tiny


@jax.custom_jvp
def xlogy(x: Array, y: Array) -> Array:
    """``x * log(y)`` with ``0 log y = 0`` for every ``y >= 0``, for ``x >= 0``.

    ``x > 0, y = 0`` gives ``-inf`` (the true value) and ``x = 0, y = 0`` gives
    0: where ``x = 0`` the logarithm is taken of ``y + 1`` instead, which is
    finite. Arithmetic (``+ 1 - sign(x)``), not a select: it fuses into the
    surrounding reduction on every backend, where a select does not on XLA:CPU.

    The derivatives are given explicitly: the textbook ``log y`` and ``x / y``
    everywhere except at ``x = y = 0``, where they are finite (``0``) instead
    of ``0 / 0``.
    """
    return x * jnp.log(y + _one_where_zero(x))


@functools.partial(xlogy.defjvp, symbolic_zeros=True)
def _xlogy_jvp(primals, tangents):
    (x, y), (dx, dy) = primals, tangents
    out = xlogy(x, y)
    # Selects here, not the primal's arithmetic: sharing that with the primal
    # would make XLA keep a full-size temporary between the two passes.
    # "Zero" includes subnormals, which XLA:CPU reads as 0 in some operations
    # and not in others.
    x_zero, y_zero = _below_normal(x), _below_normal(y)
    d_dx = None if _tangent(dx) is None else jnp.log(jnp.where(x_zero & y_zero, 1.0, y))
    d_dy = x / jnp.where(x_zero, jnp.inf, y)  # x / y, and 0 (not 0 / 0) where x = 0
    return out, _linear(out, (d_dx, dx), (d_dy, dy))


@jax.custom_jvp
def xlog_ratio(x: Array, y: Array) -> Array:
    """``x * log(x / y)``, the relative-entropy term, for ``x, y >= 0``.

    ``x = 0`` gives 0 whatever ``y`` is and ``y = 0 < x`` gives ``+inf``. One
    logarithm of a ratio instead of ``xlogx(x) - xlogy(x, y)``'s two: where
    ``x = 0``, ``1`` is added to both sides of the ratio (arithmetic, as in
    :func:`xlogy`) so that it stays finite. The derivatives are those of
    ``xlogx(x) - xlogy(x, y)``.
    """
    one = _one_where_zero(x)
    # the ratio of a weight near the smallest normal to a larger one underflows
    # (and log 0 = -inf): floored at tiny, the term stays the negligible x log tiny
    return x * jnp.log(jnp.maximum((x + one) / (y + one), jnp.finfo(x.dtype).tiny))


@functools.partial(xlog_ratio.defjvp, symbolic_zeros=True)
def _xlog_ratio_jvp(primals, tangents):
    (x, y), (dx, dy) = primals, tangents
    out = xlog_ratio(x, y)
    d_dx = None
    if _tangent(dx) is not None:
        tiny = jnp.finfo(x.dtype).tiny
        log_y = jnp.log(jnp.where(_below_normal(x) & _below_normal(y), 1.0, y))
        d_dx = jnp.log(jnp.where(x > tiny, x, tiny)) + 1 - log_y
    d_dy = -x / jnp.where(_below_normal(x), jnp.inf, y)
    return out, _linear(out, (d_dx, dx), (d_dy, dy))


@jax.custom_jvp
def xlog_from_log(x: Array, log_y: Array) -> Array:
    """``x * log_y`` for a log-probability that may be ``-inf`` (``0 * -inf = 0``).

    For ``x >= 0``: ``log_y`` is floored at the most negative finite number
    where ``x = 0`` (the floor ``min / (1 - sign(x))`` is ``-inf``, no floor,
    where ``x > 0``), so that ``x > 0, log_y = -inf`` stays ``-inf``. Its
    derivatives are ``log_y`` and ``x``, with ``log_y`` read as 0 where ``x = 0,
    log_y = -inf``.
    """
    floor = jnp.finfo(log_y.dtype).min / (1 - jnp.sign(x))
    return x * jnp.maximum(log_y, floor)


@functools.partial(xlog_from_log.defjvp, symbolic_zeros=True)
def _xlog_from_log_jvp(primals, tangents):
    (x, log_y), (dx, dlog_y) = primals, tangents
    out = xlog_from_log(x, log_y)
    log_y = jnp.where((x == 0) & (log_y == -jnp.inf), jnp.zeros_like(log_y), log_y)
    return out, _linear(out, (log_y, dx), (x, dlog_y))


# Scaled weights (see scale_by_total) enter the sums as ``p * scale``, with a
# per-row ``scale``. Under differentiation the value and the derivative would
# share that full-size product, and XLA:CPU then keeps it in memory between
# the two. The rules below recompute it, behind an optimisation barrier on the
# (per-row) scale so that XLA cannot merge the two products back into one.


def scaled_weights(p: Array, scale: Array) -> Array:
    """``p * scale`` (``scale`` from :func:`scale_by_total`), kept above 0 where ``p > 0``.

    An entry far below its row's total (1e-20 in a row that sums to 1e38)
    underflows when scaled; it would then leave the support, and a ``q = 0``
    there would give a finite divergence instead of ``inf``. A floor of
    ``sign(p) * tiny`` keeps it in (a multiply and a maximum, arithmetic that
    fuses) and changes no entry whose scaled value is a normal number.
    """
    x = p * scale
    # the floor's correction carries no derivative: d x / d p = scale everywhere
    return x + lax.stop_gradient(jnp.maximum(x, jnp.sign(p) * jnp.finfo(p.dtype).tiny) - x)


# Cross-entropy and KL of non-negative weights, normalised along ``axis``.
# Their derivatives are written out. With ``P = sum(p)``, ``Q = sum(q)``:
#
#   dH(P,Q)/dp_i = -(log q̂_i + H(P,Q)) / P,  dD(P‖Q)/dp_i = (log(p̂_i / q̂_i) - D) / P,
#   dH(P,Q)/dq_i = dD(P‖Q)/dq_i = 1/Q - p̂_i / q_i.
#
# The coefficient of dp_i is computed in units of order one (logarithms of
# normalised weights) and summed before the per-row factor 1 / P (= scale /
# total) is applied. Autodiff of the value instead takes the difference of
# terms of order ``log(q) / P``, which for a row of weights near the smallest
# normal (1 / P = 2**126) overflow on their own and give inf - inf = NaN where
# the derivative is 0. The logarithms are of ``p`` and ``q`` themselves, not
# of their scaled copies, so they are exact wherever the weights are normal
# numbers (a scaled weight far below its row's total underflows).


def _scaled_pair(p, q, narrow, axis):
    return scale_by_total(p, axis, narrow[0]), scale_by_total(q, axis, narrow[1])


def _narrow_pair(p: Array, q: Array, narrow: tuple) -> tuple:
    """The narrower arrays ``p`` and ``q`` were widened from, where that is
    what they are (same shape, other dtype), else None (see :func:`row_sum`)."""
    out = []
    for wide, raw in zip((p, q), narrow, strict=True):
        if raw is not None:
            raw = as_real_array(raw, "p")
            if raw.shape != wide.shape or raw.dtype == wide.dtype:
                raw = None
        out.append(raw)
    return tuple(out)


def cross_entropy_of_weights(p: Array, q: Array, axis: int, narrow: tuple = (None, None)) -> Array:
    """``-sum(p̂ log q̂)`` along ``axis`` (kept) for non-negative weights ``p, q``.

    ``p̂, q̂`` are the normalised rows; 0 on rows where ``p`` has no mass,
    ``inf`` where ``q = 0 < p``. ``narrow``: the arrays ``p`` and ``q`` were
    widened from (bfloat16, say), or None, as in :func:`row_sum`.
    """
    return _cross_entropy_of_weights(p, q, _narrow_pair(p, q, narrow), axis)


def kl_divergence_of_weights(p: Array, q: Array, axis: int, narrow: tuple = (None, None)) -> Array:
    """``sum(p̂ log(p̂ / q̂))`` along ``axis`` (kept) for non-negative weights.

    As :func:`cross_entropy_of_weights`: 0 on rows where ``p`` has no mass,
    ``inf`` where ``q = 0 < p``.
    """
    return _kl_divergence_of_weights(p, q, _narrow_pair(p, q, narrow), axis)


def _log_total(s: Scaled) -> Array:
    return jnp.log(s.total) + s.log_scale


def _derivative_in_q(p_hat: Array, q: Array, inverse_q_total: Array) -> Array:
    """``1/Q - p̂_i / q_i``, the derivative of H(P, Q) and D(P‖Q) in ``q_i``.

    1/Q where ``p = 0``, and also where ``q = 0 < p``. There the measure is
    infinite and its derivative means nothing; a finite one lets a zero
    cotangent on that row give zero, not NaN (so does reading an infinite
    measure as 0 in the coefficients of ``dp``).
    """
    return inverse_q_total - p_hat / jnp.where(q > 0, q, jnp.inf)


def _widened(arrays, narrow):
    """The arrays, widened inside the caller's loop from their narrow sources."""
    pairs = zip(arrays, narrow, strict=True)
    return tuple(w if n is None else n.astype(w.dtype) for w, n in pairs)


def _scaled_down(*scaled: Scaled) -> Array:
    """Whether any row is scaled by less than one (its total is above 3/2):
    only then can a scaled weight underflow, and need the floor of
    :func:`scaled_weights` (which costs a quarter of a kernel's time)."""
    return functools.reduce(operator.or_, [jnp.any(s.log_scale > 0) for s in scaled])


def _cross_entropy_value(p, q, narrow, axis):
    sp, sq = _scaled_pair(p, q, narrow, axis)

    # P is scaled; Q only needs log(sum(q)), which the scaled total gives.
    # The arrays are formed inside each branch of the cond, and bfloat16 input
    # widened there: arrays passed in are kept in memory.
    def weighted(floor):
        p_, q_ = _widened((p, q), narrow)
        x = scaled_weights(p_, sp.scale) if floor else p_ * sp.scale
        return jnp.sum(xlogy(x, q_), axis=axis, keepdims=True)

    weighted = lax.cond(
        _scaled_down(sp), functools.partial(weighted, True), functools.partial(weighted, False)
    )
    ce = jnp.where(sp.nonempty, _log_total(sq) - weighted / sp.total, 0)
    return ce, sp, sq


def _kl_divergence_value(p, q, narrow, axis):
    sp, sq = _scaled_pair(p, q, narrow, axis)
    # with x = p * scale_p, y = q * scale_q and their totals s, t:
    # D = sum(x log(x / y)) / s - log s + log t
    # x and y are formed inside each branch, and bfloat16 input widened there:
    # arrays passed in are kept in memory, not computed in the reduction's loop
    tiny = jnp.finfo(q.dtype).tiny

    def weights():
        p_, q_ = _widened((p, q), narrow)
        return q_, scaled_weights(p_, sp.scale), scaled_weights(q_, sq.scale)

    def plain():  # no row scaled down: nothing underflows, no floor
        p_, q_ = _widened((p, q), narrow)
        return jnp.sum(xlog_ratio(p_ * sp.scale, q_ * sq.scale), axis=axis, keepdims=True)

    def ratios():
        _, x, y = weights()
        return jnp.sum(xlog_ratio(x, y), axis=axis, keepdims=True)

    def corrected():
        # log(x / y) corrected where y was floored at tiny: by log tiny - log q
        # + log(sum(q)) - log(total), the logarithm of the true scaled entry,
        # from q itself. ``under`` (1 there, else 0) is arithmetic, which fuses;
        # elsewhere the terms are those of ``ratios`` exactly (KL(P, P) = 0).
        q_, x, y = weights()
        under = jnp.sign(y - q_ * sq.scale)
        keep = 1 - under  # log(1 + ...) where not used: finite, times 0
        fix = (jnp.log(y + keep) - jnp.log(q_ + keep) + sq.log_scale) * under
        return jnp.sum(xlog_ratio(x, y) + x * fix, axis=axis, keepdims=True)

    def checked():
        # An entry of q more than the float range below its row's total
        # underflows when scaled, which is possible only where that total is
        # above one: a pass over q looks for one (arithmetic, no select).
        _, q_ = _widened((p, q), narrow)
        lifted = q_ * sq.scale + _one_where_zero(q_)
        underflow = jnp.min(lifted, initial=jnp.inf) < tiny
        return lax.cond(underflow, corrected, ratios)

    def floored():
        return lax.cond(_scaled_down(sq), checked, ratios)

    kl = lax.cond(_scaled_down(sp, sq), floored, plain) / sp.total
    kl = kl - jnp.log(sp.total) + jnp.log(sq.total)
    return jnp.where(sp.nonempty, kl, 0), sp, sq


def _of_weights(value, p_coefficient):
    """A measure of two rows of weights with the derivative rule written out.

    ``value(p, q, narrow, axis)`` gives the measure (kept axis) and the two
    :class:`Scaled` rows; ``p_coefficient(p, q, measure, sp, sq)`` the
    coefficient of ``dp_i`` in units of order one (see above). The narrow
    arrays get no derivative: it reaches ``p`` and ``q`` in one piece.
    """

    @functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
    def measure(p, q, narrow, axis):
        return value(p, q, narrow, axis)[0]

    @functools.partial(measure.defjvp, symbolic_zeros=True)
    def _jvp(axis, primals, tangents):
        p, q, narrow = primals
        dp, dq = _tangent(tangents[0]), _tangent(tangents[1])
        out, sp, sq = value(p, q, narrow, axis)
        # the scaled products recomputed, not shared with the value (see
        # scaled_xlog_from_log): a barrier on the per-row scales
        a, b = lax.optimization_barrier((sp.scale, sq.scale))
        tangent = jnp.zeros_like(out)
        if dp is not None:
            coef = p_coefficient(p, q, _finite_or_zero(out), sp, sq)
            tangent = tangent + jnp.sum(coef * dp, axis=axis, keepdims=True) * (a / sp.total)
        if dq is not None:
            coef = _derivative_in_q(p * a / sp.total, q, b / sq.total)
            tangent = tangent + jnp.sum(coef * dq, axis=axis, keepdims=True)
        return out, jnp.where(sp.nonempty, tangent, jnp.zeros_like(tangent))

    return measure


def _cross_entropy_in_p(p, q, ce, sp, sq):
    """``-(log q̂_i + H)``; where ``q = 0`` (then ``p = 0``, or H is infinite)
    ``log q`` is read at tiny."""
    return _log_total(sq) - ce - jnp.log(jnp.maximum(q, jnp.finfo(q.dtype).tiny))


def _kl_divergence_in_p(p, q, kl, sp, sq):
    """``log(p̂_i / q̂_i) - D``; ``p = 0`` and ``q = 0`` read at tiny (finite,
    and pointing the right way at the edge of the support)."""
    tiny = jnp.finfo(p.dtype).tiny
    shift = _log_total(sq) - _log_total(sp) - kl
    return jnp.log(jnp.maximum(p, tiny)) - jnp.log(jnp.maximum(q, tiny)) + shift


_cross_entropy_of_weights = _of_weights(_cross_entropy_value, _cross_entropy_in_p)
_kl_divergence_of_weights = _of_weights(_kl_divergence_value, _kl_divergence_in_p)


@jax.custom_jvp
def scaled_xlog_from_log(p: Array, scale: Array, log_y: Array) -> Array:
    """:func:`xlog_from_log` of ``p * scale``; ``scale`` gets no gradient.

    An entry that underflows when scaled keeps ``p > 0, log_y = -inf`` at
    ``-inf`` (the floor of :func:`scaled_weights`), but only there: next to a
    finite ``log_y``, which may be as large as the float maximum, a floor of
    tiny would add up to ``tiny * 3e38 = 4`` where the entry adds nothing.
    """
    x = p * scale
    # tiny where p > 0 and log_y = -inf (lowest - log_y = inf); <= 0 elsewhere
    floor = jnp.finfo(x.dtype).tiny * jnp.minimum(jnp.sign(p), jnp.finfo(x.dtype).min - log_y)
    return xlog_from_log(x + lax.stop_gradient(jnp.maximum(x, floor) - x), log_y)


@functools.partial(scaled_xlog_from_log.defjvp, symbolic_zeros=True)
def _scaled_xlog_from_log_jvp(primals, tangents):
    p, scale, log_y = primals
    dp, _, dlog_y = tangents
    out = scaled_xlog_from_log(p, scale, log_y)
    scale = lax.optimization_barrier(scale)
    dx = None if _tangent(dp) is None else dp * scale
    _, tangent = _xlog_from_log_jvp((p * scale, log_y), (dx, _tangent(dlog_y)))
    return out, tangent


def row_sum(x: Array, axis: int | tuple[int, ...], narrow: ArrayLike | None = None) -> Array:
    """Sum of ``x`` along ``axis`` (kept).

    ``narrow``: the input ``x`` was widened from (bfloat16 or an integer type
    to float32), or None. The sum is then taken of a widening of its own,
    behind an optimization barrier: otherwise XLA shares one widened copy of
    the whole input, a full-size temporary, between this sum and the
    measure's main reduction, where each of the two loops can widen as it
    reads (5x faster on XLA:CPU for bfloat16 input).
    """
    if narrow is not None:
        narrow = jnp.asarray(narrow)
        if narrow.dtype != x.dtype and narrow.shape == x.shape:
            return _sum_of_widened(x, narrow, axis)
    return jnp.sum(x, axis=axis, keepdims=True)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _sum_of_widened(x: Array, narrow: Array, axis: int | tuple[int, ...]) -> Array:
    """``sum(x)`` for ``x = narrow.astype(x.dtype)``, read from ``narrow`` (see :func:`row_sum`).

    The derivative goes to ``x``, not to ``narrow``: the gradient of the
    narrow input then reaches it in one piece, summed in the wide dtype and
    rounded once. Sent along both paths, each part was rounded to (say)
    float16 on its own, and two parts beyond its range made ``inf - inf``.
    """
    return jnp.sum(lax.optimization_barrier(narrow).astype(x.dtype), axis=axis, keepdims=True)


@_sum_of_widened.defjvp
def _sum_of_widened_jvp(axis, primals, tangents):
    x, narrow = primals
    return _sum_of_widened(x, narrow, axis), jnp.sum(tangents[0], axis=axis, keepdims=True)


def safe_total(x: Array, axis: int | tuple[int, ...], narrow: ArrayLike | None = None) -> Array:
    """Sum along ``axis`` (an int or a tuple; kept), with empty or all-zero rows replaced by 1.

    ``narrow`` as in :func:`row_sum`.
    """
    total = row_sum(x, axis, narrow)
    return jnp.where(total > 0, total, jnp.ones_like(total))


class Scaled(NamedTuple):
    """Non-negative weights and their row total, scaled by a power of two.

    Attributes:
      scale: ``2**-e`` (kept), with ``2**e`` the power of two nearest the
        row's total: the constant to multiply the weights by before any
        product or logarithm (no gradient flows through it).
      total: ``sum(w) * scale`` (kept), in ``[3/4, 3/2)`` (up to 4 at the ends of
        the float range); 1 on rows with no mass. It carries the gradient.
      log_scale: ``e log 2 = -log(scale)`` (kept); ``log(sum(w))`` is
        ``log(total) + log_scale``.
      nonempty: boolean (kept), whether the row has positive mass.
    """

    scale: Array
    total: Array
    log_scale: Array
    nonempty: Array


def scale_by_total(
    w: Array,
    axis: int | tuple[int, ...],
    narrow: ArrayLike | None = None,
    axis_name: AxisName | None = None,
) -> Scaled:
    """The row total of non-negative weights, and the power of two that brings it to one.

    Probabilities are normalised along the axis, so any non-negative weights
    are valid input: counts near the float maximum, whose ``w log w`` or sum
    overflows, and rows of numbers near the smallest normal, whose products
    underflow and whose gradients (of order ``1 / sum(w)**2``) overflow.
    Multiplying a row by ``scale``, a power of two, keeps every intermediate
    of order one and is exact: for weights that already sum to about one it is
    1 and changes nothing. The measures compute with
    ``w * scale`` and ``total``; since they depend only on the normalised
    distribution, ``scale`` needs no gradient and the gradients are exact.

    The total is the row sum the normalisation needs anyway: the scale costs
    one multiplication per entry, not a pass over the data (a row maximum,
    the textbook choice, is a pass of its own, and on XLA:CPU a slow one).
    Only where the sum itself overflows is it taken again, of the scaled
    weights; a ``lax.cond`` keeps that second pass off the common path (under
    ``vmap`` the cond becomes a select and both run). ``scale`` is clipped to
    normal numbers: a subnormal one is flushed to zero on CPU.

    Args:
      w: non-negative weights.
      axis: the axis (or axes) of a row.
      narrow: the input ``w`` was widened from, as in :func:`row_sum`.
      axis_name: the row's classes are split across the devices of this mesh
        axis (see :func:`class_sum`).
    """
    if axis_name is None:
        raw = row_sum(w, axis, narrow)
    else:
        raw = class_sum(w, axis, axis_name)
    info = jnp.finfo(w.dtype)
    fixed = lax.stop_gradient(raw)
    mantissa, e = jnp.frexp(fixed)  # raw = mantissa * 2**e, mantissa in [1/2, 1)
    # the nearest power of two: total in [3/4, 3/2), and exactly 1 (no rounding
    # at all) for weights that already sum to one
    e = jnp.where(mantissa < 0.75, e - 1, e)
    e = jnp.where(fixed == jnp.inf, info.maxexp, e)
    # raw > 0 is false for a subnormal total where the platform flushes
    # subnormals (CPU): that row is empty to every other operation too.
    e = jnp.where(fixed > 0, e, jnp.zeros_like(e))
    e = jnp.clip(e, -(info.maxexp - 1), -info.minexp)
    scale = jnp.ldexp(jnp.ones_like(raw), -e)
    source = w
    if narrow is not None and np.shape(narrow) == w.shape:
        source = jnp.asarray(narrow)  # widened again only if the sum overflows
    total = _scaled_total(raw, source, scale, axis, axis_name)
    nonempty = total > 0
    return Scaled(
        scale=scale,
        total=jnp.where(nonempty, total, jnp.ones_like(total)),
        log_scale=e.astype(w.dtype) * np.log(2).astype(w.dtype),
        nonempty=nonempty,
    )


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4))
def _scaled_total(raw, source, scale, axis, axis_name):
    """``raw * scale``, and where ``raw = sum(w)`` overflowed, ``sum(w * scale)``.

    ``source`` is ``w`` or the narrower array it was widened from. The
    derivative is ``d raw * scale`` (a custom rule, so that neither the
    ``cond`` nor ``source`` appear in the derivative's program: otherwise the
    transposed ``cond`` materialises a zero cotangent of the size of ``w``).
    """
    overflow = raw == jnp.inf

    def rescaled():
        again = class_sum(source.astype(raw.dtype) * scale, axis, axis_name)
        return jnp.where(overflow, again, raw * scale)

    if axis_name is not None:
        return rescaled()
    return lax.cond(jnp.any(overflow), rescaled, lambda: raw * scale)


@_scaled_total.defjvp
def _scaled_total_jvp(axis, axis_name, primals, tangents):
    raw, source, scale = primals
    return _scaled_total(raw, source, scale, axis, axis_name), tangents[0] * scale


def normalise(w: Array, axis: int | tuple[int, ...]) -> Array:
    """``w / sum(w)`` along ``axis`` (an int or a tuple), for any non-negative
    weights: no overflow for huge ones, no underflow for tiny ones (see
    :func:`scale_by_total`); rows with no mass stay 0."""
    sw = scale_by_total(w, axis)
    return w * sw.scale / sw.total


def log_normalise(w: Array, axis: int | tuple[int, ...]) -> tuple[Array, Array, Array]:
    """``(w / sum(w), log(w / sum(w)), log(sum(w)))`` along ``axis`` (the last kept).

    For any non-negative weights (see :func:`scale_by_total`). The logarithm
    is exact also where the quotient underflows (an entry 1e-30 next to 1e30
    in float32), as the measures of order ``alpha < 1`` need: ``(1e-60)**0.1``
    is not negligible. It is ``-inf`` exactly where ``w = 0``, and its
    gradient has no NaN there (the argument of the ``log`` is replaced first).
    Rows with no mass give 0, ``-inf`` and 0.
    """
    sw = scale_by_total(w, axis)
    x = w * sw.scale
    positive = w > 0
    scaled_ok = x > 0
    # log(w * scale) = log(x) where x did not underflow, else log(w) - e log 2
    arg = jnp.where(scaled_ok, x, jnp.where(positive, w, jnp.ones_like(w)))
    shift = jnp.where(scaled_ok, jnp.zeros_like(sw.log_scale), sw.log_scale)
    log_x = jnp.where(positive, jnp.log(arg) - shift, -jnp.inf)
    log_total = jnp.log(sw.total)
    return x / sw.total, log_x - log_total, log_total + sw.log_scale


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
      shift: the maximum subtracted (kept, no gradient), 0 on empty rows;
        ``s`` is ``-inf`` also where ``logits - shift`` overflows.
    """

    s: Array
    log_z: Array
    exp_s: Array
    z: Array
    nonempty: Array
    shift: Array


def shift_logits(
    logits: Array, axis: int, mask: Array | None, axis_name: AxisName | None = None
) -> Shifted:
    """Masks and max-shifts logits; computes the partition function once.

    The maximum is taken under ``stop_gradient`` (softmax is shift-invariant)
    and replaced by 0 when it is not finite, which happens only on rows whose
    classes are all masked or ``-inf``.

    With ``axis_name``, ``logits`` holds this device's slice of the classes
    (inside ``shard_map``) and the maximum and the partition function are
    combined across the devices of that mesh axis (``pmax``, ``psum``), so
    every device gets the row's global ``log_z``; ``s`` and ``exp_s`` stay local.
    """
    if mask is not None:
        logits = jnp.where(mask, logits, -jnp.inf)
    m = lax.stop_gradient(jnp.max(logits, axis=axis, keepdims=True, initial=-jnp.inf))
    if axis_name is not None:
        # The shift needs no gradient; stop_gradient before the collective
        # keeps pmax out of differentiation altogether.
        m = lax.pmax(m, axis_name)
    nonempty = m > -jnp.inf
    m = _finite_or_zero(m)
    s = logits - m
    exp_s = jnp.exp(s)
    z = class_sum(exp_s, axis, axis_name)
    z = jnp.where(z > 0, z, jnp.ones_like(z))
    return Shifted(s=s, log_z=jnp.log(z), exp_s=exp_s, z=z, nonempty=nonempty, shift=m)


def _finite_or_zero(x: Array) -> Array:
    return jnp.where(jnp.isfinite(x), x, jnp.zeros_like(x))


def _row_max(logits: Array, axis: int) -> Array:
    """The maximum along ``axis`` (kept) as a constant shift: 0 where not finite."""
    return _finite_or_zero(
        lax.stop_gradient(jnp.max(logits, axis=axis, keepdims=True, initial=-jnp.inf))
    )


def shift_by_max(logits: Array, axis: int) -> Array:
    """``logits - max`` along ``axis``, the max under ``stop_gradient``.

    A row whose logits are all ``-inf`` is shifted by the most negative finite
    number instead and stays ``-inf``. That guard is a ``maximum``, not a
    select, so that XLA:CPU can fuse the maximum, the shift and the reductions
    that follow into one pass.
    """
    m = lax.stop_gradient(jnp.max(logits, axis=axis, keepdims=True, initial=-jnp.inf))
    return logits - jnp.maximum(m, jnp.finfo(logits.dtype).min)


def _one_if_empty(z: Array) -> Array:
    """A partition function with 0 (an empty row) replaced by 1, arithmetically."""
    return z + _one_where_zero(z)


def _softmax_fused(logits: Array, axis: int) -> tuple[Array, Array]:
    """``(softmax, log_softmax)`` as the chain ``max -> sum(exp)``.

    Arithmetic guards only, so that XLA:CPU fuses the chain and what follows
    into one loop; rows whose logits are all ``-inf`` give 0 and ``-inf``.
    """
    s = shift_by_max(logits, axis)
    exp_s = jnp.exp(s)
    z = _one_if_empty(jnp.sum(exp_s, axis=axis, keepdims=True))
    return exp_s / z, s - jnp.log(z)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def label_nll(logits: Array, labels: Array, axis: int) -> Array:
    """``-log softmax(logits)[label] = log Z - logits[label]`` along ``axis`` (kept).

    Args:
      logits: masked classes at ``-inf``.
      labels: integer class ids in ``[0, K)``, with ``axis`` of size 1 (the
        caller clips out-of-range ids and decides what they mean).
      axis: the class axis.

    Returns:
      ``inf`` for a label on a ``-inf`` class; 0 on rows where every class is
      ``-inf``.

    Two passes over the logits, the row maximum and the sum of ``exp(logits -
    max)``, and a gather: the fewest a stable log-partition allows. The
    derivative rule, ``softmax - onehot``, is written out so that under
    ``grad`` the exponentials are computed once, kept, summed and scaled in a
    single pass, with no scatter.
    """
    m = _row_max(logits, axis)
    z = jnp.sum(jnp.exp(logits - m), axis=axis, keepdims=True)
    return _nll_from_partition(logits, labels, axis, m, z)


def _nll_from_partition(logits, labels, axis, m, z):
    nonempty = z > 0
    log_z = jnp.log(jnp.where(nonempty, z, jnp.ones_like(z)))
    nll = log_z - (jnp.take_along_axis(logits, labels, axis=axis) - m)
    return jnp.where(nonempty, nll, jnp.zeros_like(nll))


@label_nll.defjvp
def _label_nll_jvp(axis, primals, tangents):
    logits, labels = primals
    dlogits, _ = tangents
    m = _row_max(logits, axis)
    e = jnp.exp(logits - m)
    z = jnp.sum(e, axis=axis, keepdims=True)
    nll = _nll_from_partition(logits, labels, axis, m, z)
    onehot = class_ids(logits.shape, axis) == labels
    softmax = e / jnp.where(z > 0, z, jnp.ones_like(z))
    dnll = jnp.sum((softmax - onehot.astype(e.dtype)) * dlogits, axis=axis, keepdims=True)
    return nll, jnp.where(z > 0, dnll, jnp.zeros_like(dnll))


def softmax_cross_entropy(
    p: Array, logits: Array, axis: int, axis_name: AxisName | None = None
) -> Array:
    """``-sum(p * log_softmax(logits)) / sum(p)`` along ``axis`` (kept).

    ``p >= 0`` is normalised; rows with ``sum(p) = 0`` give 0; ``p > 0`` on a
    ``-inf`` logit gives ``+inf`` and ``p = 0`` there contributes 0. ``p`` may
    be narrower than ``logits`` (bfloat16 targets): it is widened to their
    dtype, once for each of its two sums (see :func:`row_sum`). With
    ``axis_name`` the classes are split across devices (see
    :func:`shift_logits`).

    Without ``axis_name`` the value is the chain ``max -> sum(exp) ->
    sum(p * log_softmax)`` with arithmetic guards only, which XLA:CPU fuses into
    one loop as it does for optax's loss (the sum of ``p`` is the price of the
    normalisation); its derivative is that of the reference formula, whose
    reverse pass is the faster.
    """
    if axis_name is not None:
        return _softmax_cross_entropy_reference(p, logits, axis, axis_name)
    return _softmax_cross_entropy_fused(p, logits, axis)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _softmax_cross_entropy_fused(p: Array, logits: Array, axis: int) -> Array:
    # The support floor of scaled_xlog_from_log is paid on every call: a cond
    # around it (as in cross_entropy_of_weights) would take the logits, which
    # the caller widens from bfloat16, as an array in memory.
    _, log_q = _softmax_fused(logits, axis)
    wide = p.astype(logits.dtype)
    sp = scale_by_total(wide, axis, p)
    weighted = jnp.sum(scaled_xlog_from_log(wide, sp.scale, log_q), axis=axis, keepdims=True)
    return jnp.where(sp.nonempty, -weighted / sp.total, 0.0)


def _softmax_cross_entropy_reference(
    p: Array, logits: Array, axis: int, axis_name: AxisName | None = None
) -> Array:
    p = p.astype(logits.dtype)
    sh = shift_logits(logits, axis, None, axis_name)
    sp = scale_by_total(p, axis, axis_name=axis_name)
    weighted = class_sum(scaled_xlog_from_log(p, sp.scale, sh.s), axis, axis_name)
    ce = sh.log_z - weighted / sp.total
    return jnp.where(sp.nonempty, ce, jnp.zeros_like(ce))


@functools.partial(_softmax_cross_entropy_fused.defjvp, symbolic_zeros=True)
def _softmax_cross_entropy_jvp(axis, primals, tangents):
    p, logits = primals
    dp, dlogits = _tangent(tangents[0]), _tangent(tangents[1])
    reference = functools.partial(_softmax_cross_entropy_reference, axis=axis)
    if dlogits is None:
        ce = reference(p, logits)
        tangent = jnp.zeros_like(ce)
    else:
        ce, tangent = jax.jvp(lambda logits: reference(p, logits), (logits,), (dlogits,))
    if dp is not None:
        tangent = tangent + _target_tangent(p, logits, ce, dp, axis)
    return ce, tangent


def _target_tangent(p, logits, ce, dp, axis):
    """The derivative of the cross-entropy in its targets, ``-(log q_i + H) / sum(p)``.

    Written out for the reason given above :func:`cross_entropy_of_weights`:
    the coefficients are summed before the factor ``1 / sum(p)``, which for
    targets that sum to 1e-19 is 1e19 and, autodiff's way, met terms of order
    ``log q`` (up to the float maximum) on its own. On a class that ``Q`` rules
    out (where ``p > 0``, H is infinite anyway) ``log q`` is read as that of a
    logit equal to the maximum, as the derivative rule of :func:`xlog_from_log`
    has it on the ``axis_name`` path.
    """
    wide = p.astype(logits.dtype)
    sp = scale_by_total(wide, axis, p)
    s = shift_by_max(logits, axis)
    log_z = jnp.log(_one_if_empty(jnp.sum(jnp.exp(s), axis=axis, keepdims=True)))
    coef = log_z - jnp.where(s > -jnp.inf, s, 0) - _finite_or_zero(ce)
    tangent = jnp.sum(coef * dp.astype(coef.dtype), axis=axis, keepdims=True)
    tangent = tangent * (sp.scale / sp.total)
    return jnp.where(sp.nonempty, tangent, jnp.zeros_like(tangent))


def softmax_entropy(logits: Array, axis: int, axis_name: AxisName | None = None) -> Array:
    """``-sum(softmax * log_softmax)`` along ``axis`` (kept); 0 on empty rows.

    With ``axis_name`` the classes are split across devices (see
    :func:`shift_logits`). Without, the value is a chain of reductions with
    arithmetic guards, which XLA:CPU fuses into one loop with no temporary
    array; its derivative is that of the reference formula, whose reverse pass
    is the faster.
    """
    if axis_name is not None:
        return _softmax_entropy_reference(logits, axis, axis_name)
    return _softmax_entropy_fused(logits, axis)


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _softmax_entropy_fused(logits: Array, axis: int) -> Array:
    # log z - sum(q * s) with q = exp(s - log z) recomputed, not exp(s) / z:
    # XLA factors a division by z out of the sum, which turns the chain into
    # two sibling sums of one exp that XLA:CPU runs ten times slower. Exact
    # for uniform rows (s = 0), unlike -sum(q * log q).
    s = shift_by_max(logits, axis)
    log_z = jnp.log(_one_if_empty(jnp.sum(jnp.exp(s), axis=axis, keepdims=True)))
    return log_z - jnp.sum(jnp.exp(s - log_z) * finite_floor(s), axis=axis, keepdims=True)


def _softmax_entropy_reference(
    logits: Array, axis: int, axis_name: AxisName | None = None
) -> Array:
    sh = shift_logits(logits, axis, None, axis_name)
    weighted = class_sum(sh.exp_s * finite_floor(sh.s), axis, axis_name)
    return sh.log_z - weighted / sh.z


@_softmax_entropy_fused.defjvp
def _softmax_entropy_jvp(axis, primals, tangents):
    return jax.jvp(functools.partial(_softmax_entropy_reference, axis=axis), primals, tangents)


def softmax_kl_divergence(
    p_logits: Array, q_logits: Array, axis: int, axis_name: AxisName | None = None
) -> Array:
    """``sum(p * (log p - log q))`` for ``p, q = softmax(p_logits), softmax(q_logits)``.

    Along ``axis`` (kept). Classes with ``p = 0`` contribute 0, also where
    ``q = 0``; ``q = 0 < p`` gives ``+inf``; rows where ``p`` is empty give 0.
    With ``axis_name`` the classes are split across devices; without, the
    value is a fused chain of reductions, as in :func:`softmax_entropy`, and
    the derivative that of the reference formula.
    """
    if axis_name is not None:
        return _softmax_kl_divergence_reference(p_logits, q_logits, axis, axis_name)
    return _softmax_kl_divergence_fused(p_logits, q_logits, axis)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _softmax_kl_divergence_fused(p_logits: Array, q_logits: Array, axis: int) -> Array:
    p, log_p = _softmax_fused(p_logits, axis)
    _, log_q = _softmax_fused(q_logits, axis)
    # P's support is the classes whose probability is positive in the
    # computation dtype: one that underflows (e**-200 in float32) is outside,
    # also where Q rules it out. Taking it in would cost a quarter of the time
    # (a floor on p where Q's logit is -inf) for an infinite loss that no
    # training step can use.
    # p * (log p - log q) written as -p * (log q - log p), so that a -inf lands
    # in the second argument of xlog_from_log, which makes 0 * -inf = 0.
    terms = -xlog_from_log(p, log_q - finite_floor(log_p))
    return jnp.sum(terms, axis=axis, keepdims=True)


def _softmax_kl_divergence_reference(
    p_logits: Array, q_logits: Array, axis: int, axis_name: AxisName | None = None
) -> Array:
    sa = shift_logits(p_logits, axis, None, axis_name)
    sb = shift_logits(q_logits, axis, None, axis_name)
    # Classes whose probability is 0 (masked or underflowed) contribute 0; the
    # difference is replaced there *before* the product so that neither its
    # value nor its gradient can be 0 * inf. Each term is divided by z before
    # the sum, which would overflow for differences near the float maximum.
    diff = jnp.where(sa.exp_s == 0, jnp.zeros_like(sa.s), sa.s - sb.s)
    weighted = class_sum((sa.exp_s * diff) / sa.z, axis, axis_name)
    kl = weighted - sa.log_z + sb.log_z
    return jnp.where(sa.nonempty, kl, jnp.zeros_like(kl))


@_softmax_kl_divergence_fused.defjvp
def _softmax_kl_divergence_jvp(axis, primals, tangents):
    reference = functools.partial(_softmax_kl_divergence_reference, axis=axis)
    return jax.jvp(reference, primals, tangents)


def class_sum(x: Array, axis: int, axis_name: AxisName | None = None) -> Array:
    """Sum along the class axis (kept), and across the devices of ``axis_name``.

    ``lax.psum`` of a per-device partial sum: its transpose hands each device
    the cotangent of its own classes, so gradients stay local.
    """
    total = jnp.sum(x, axis=axis, keepdims=True)
    if axis_name is not None:
        total = lax.psum(total, axis_name)
    return total


def class_ids(shape: tuple[int, ...], axis: int, axis_name: AxisName | None = None) -> Array:
    """Global class index along ``axis``, broadcast to ``shape`` (int32).

    With ``axis_name`` the classes are split in equal contiguous blocks across
    the devices of that mesh axis, and device ``k`` holds the classes
    ``k * shape[axis] ... (k + 1) * shape[axis] - 1``.
    """
    ids = lax.broadcasted_iota(jnp.int32, shape, axis)
    if axis_name is not None:
        ids = ids + class_offset(shape[axis], axis_name)
    return ids


def class_offset(local_classes: int, axis_name: AxisName | None) -> Array | int:
    """Global id of this device's first class: ``axis_index * local_classes``."""
    if axis_name is None:
        return 0
    return lax.axis_index(axis_name).astype(jnp.int32) * local_classes


def num_classes(local_classes: int, axis_name: AxisName | None = None) -> int:
    """Number of classes in all, over the devices of ``axis_name``."""
    if axis_name is None:
        return local_classes
    return local_classes * lax.axis_size(axis_name)


# --------------------------------------------------------------------------
# streaming log-sum-exp (for logits produced one block of classes at a time)
# --------------------------------------------------------------------------


def lse_init(like: Array) -> tuple[Array, Array]:
    """Empty running ``(max, sum of exp(logit - max))``, shaped and typed as ``like``.

    The running max starts at the most negative finite number, not ``-inf``,
    so that the first update rescales by ``exp(min - m) = 0`` instead of
    computing ``exp(-inf + inf)``.
    """
    m = jnp.full_like(like, jnp.finfo(like.dtype).min)
    return m, jnp.zeros_like(like)


def lse_update(m: Array, s: Array, logits: Array) -> tuple[Array, Array]:
    """Folds a block of logits (last axis; ``-inf`` = masked) into ``(m, s)``.

    The online softmax recurrence: ``m' = max(m, max block)``,
    ``s' = s·exp(m - m') + Σ exp(block - m')``; at the end
    ``log-sum-exp = m + log s``.
    """
    m_new = jnp.maximum(m, jnp.max(logits, axis=-1))
    s = s * jnp.exp(m - m_new) + jnp.sum(jnp.exp(logits - m_new[..., None]), axis=-1)
    return m_new, s


def combine_log_partitions(log_z: Array, axis_name: AxisName | None = None) -> Array:
    """``log Σ_k exp(log_z_k)`` over the devices ``k`` of ``axis_name`` (identity if None).

    Each device holds the log-partition of its own block of classes; the
    result is the log-partition over all of them, on every device. Shifted
    by the maximum (under ``stop_gradient``, as in :func:`shift_logits`), so
    the derivative with respect to each ``log_z_k`` is its device's share
    ``exp(log_z_k - result)``.
    """
    if axis_name is None:
        return log_z
    m = lax.pmax(lax.stop_gradient(log_z), axis_name)
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))
    return m + jnp.log(lax.psum(jnp.exp(log_z - m), axis_name))


# --------------------------------------------------------------------------
# shard_map's varying-axes types
# --------------------------------------------------------------------------


def varying_axes(x: Array) -> frozenset:
    """The mesh axes along which ``x`` varies inside ``shard_map`` (else empty)."""
    aval = jax.typeof(x)
    mat = getattr(aval, "mat", None)  # jax >= 0.9: aval.mat.varying
    if mat is not None:
        return frozenset(mat.varying)
    return frozenset(getattr(aval, "vma", ()))


def match_varying(*xs: Array) -> list[Array]:
    """Casts arrays to vary along the union of the mesh axes any of them varies on.

    A ``custom_vjp`` must return cotangents typed like its inputs. Inside
    ``shard_map``, an input replicated across a mesh axis (``x`` across the
    devices that split the vocabulary, say) receives per-device partial
    cotangents; casting it to "varying" *before* the ``custom_vjp`` lets
    the cast's transpose (a ``psum``) add those partials up, as JAX's own
    autodiff does for ordinary operations. Outside ``shard_map`` this is a
    no-op that adds nothing to the program.
    """
    axes = [varying_axes(x) for x in xs]
    union = frozenset().union(*axes)
    out = []
    for x, have in zip(xs, axes, strict=True):
        missing = tuple(sorted(union - have, key=str))
        if missing:
            x = _pcast_varying(x, missing)
        out.append(x)
    return out


def _pcast_varying(x: Array, axes: tuple) -> Array:
    if hasattr(lax, "pcast"):
        return lax.pcast(x, axes, to="varying")
    return lax.pvary(x, axes)  # jax < 0.8.2


def finite_floor(x: Array) -> Array:
    """Clamps ``-inf`` to the most negative finite value so that ``0 * x = 0``.

    Finite entries, however large, are unchanged (``0 * -1e30 = 0`` already).
    """
    return jnp.maximum(x, jnp.finfo(x.dtype).min)

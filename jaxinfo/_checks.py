"""Argument checks and the dtype policy, for every public function.

What lives here: turning what a user passes (arrays, lists, scalars) into
arrays of the computation dtype (integers promote to float; bfloat16 and
float16 are computed in float32; complex, boolean and non-numeric input are
TypeErrors that name the argument), and the static checks of shapes, axes,
masks and labels. Every check runs at trace time, on shapes and dtypes, so bad
input fails before anything compiles. :func:`prepare` and
:func:`prepare_pair` are the argument preparation that every measure of
probabilities or logits shares. The arguments of the linear heads (a class
mask of shape (V,), per-position weights, ``chunk_size``) and the detection of
forward mode, which their ``custom_vjp`` kernels do not support, live here
too. Scalar options (:func:`check_scalar`) are checked when concrete; a traced
one is taken as given.

What does not: anything that looks at values (see ``_validation.py`` for the
checks of values a user can ask for), units (``_units.py``) and the numerics.
"""

from __future__ import annotations

import functools
import inspect
import math
import operator
from collections.abc import Callable, Hashable
from typing import ParamSpec, TypeVar

import jax
import jax.numpy as jnp
import jax.typing
import numpy as np
import numpy.typing

Array = jax.Array
AxisName = Hashable

# What every function takes as an array: anything ``jax.typing.ArrayLike``
# names (a JAX or NumPy array, a NumPy or Python scalar) and, as NumPy's
# ``ArrayLike`` adds, lists and tuples of them, nested to any depth, which are
# what a notebook user types (``entropy([0.5, 0.5])``). NumPy's alias also
# admits strings, which fail at run time with a TypeError naming the argument.
ArrayLike = jax.typing.ArrayLike | numpy.typing.ArrayLike
# An outcome axis, or a tuple of them taken together as one flattened axis.
Axis = int | tuple[int, ...]


def type_name(x: object) -> str:
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
            f"{name} must be a real-valued array, got an object of type {type_name(x)}."
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


_LABELS_HINT = " For soft or one-hot targets use cross_entropy_from_logits(p, logits)."


def as_label_array(labels: ArrayLike, name: str = "labels", *, hint: str = _LABELS_HINT) -> Array:
    """Returns integer class labels; float, bool and complex labels are TypeErrors.

    ``hint`` ends the message of a wrong dtype (what to use instead).
    """
    labels = _from_sequence(labels)
    try:
        dtype = jnp.result_type(labels)
    except TypeError as e:
        raise TypeError(
            f"{name} must be an integer array of class ids, got an object of type "
            f"{type_name(labels)}."
        ) from e
    if dtype == jnp.bool_ or not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"{name} must have an integer dtype (class ids), got dtype {dtype}.{hint}")
    # Ids beyond the int32 range must stay out of range, not wrap round (to a
    # valid class, or to "ignored"): clamped to it before the cast, on the host
    # for anything not yet a JAX array (JAX would wrap a NumPy int64 itself).
    if not isinstance(labels, jax.Array):
        labels = _clamp_to_int32(np.asarray(labels), np)
    return _clamp_to_int32(jnp.asarray(labels), jnp).astype(jnp.int32)


def _clamp_to_int32(ids, xp):
    """Integer ids clamped into the int32 range (a no-op for int32 and narrower)."""
    info = np.iinfo(np.int32)
    if ids.dtype.kind == "u" and ids.dtype.itemsize >= 4:
        return xp.minimum(ids, xp.asarray(info.max, ids.dtype))
    if ids.dtype.itemsize > 4:
        return xp.clip(ids, info.min, info.max)
    return ids


def check_unit_interval(value: ArrayLike, name: str) -> None:
    """Checks that a concrete scalar option lies in [0, 1]; tracers pass."""
    check_scalar(value, name, low=0.0, high=1.0)


def check_scalar(
    value: ArrayLike,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
) -> None:
    """Checks that a concrete real scalar option lies in ``[low, high]``; tracers pass.

    ``open_low=True`` excludes ``low`` itself (a temperature must be > 0).
    The message names the option, the value and the interval.
    """
    if isinstance(value, jax.core.Tracer):
        return
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"{name} must be a real number, got {value!r}.")
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    left = "(" if open_low or low is None else "["
    right = ")" if high is None else "]"
    interval = f"{left}{lo}, {hi}{right}"
    if arr.shape != ():
        raise ValueError(f"{name} must be a scalar in {interval}, got shape {arr.shape}.")
    v = float(arr)
    below = low is not None and (v <= low if open_low else v < low)
    above = high is not None and v > high
    if below or above or np.isnan(v):
        raise ValueError(f"{name} must be a scalar in {interval}, got {value!r}.")


def check_probabilities(x: ArrayLike, name: str) -> None:
    """Checks that the entries of a concrete array lie in [0, 1]; tracers pass.

    The eager route of an elementwise probability argument: an array known on
    the host (a list, a NumPy array, a JAX array outside ``jit``) is checked
    and the first entry outside ``[0, 1]`` (or NaN) is named by its index; a
    traced one is taken as given (the measure then gives NaN there).
    """
    if isinstance(x, jax.core.Tracer):
        return
    arr = np.asarray(_from_sequence(x))
    dtype = arr.dtype
    if dtype == np.bool_ or not (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    ):
        return  # the dtype check (as_float_array) says what is wrong
    arr = arr.astype(np.float64)  # bfloat16 too
    bad = ~((arr >= 0) & (arr <= 1))
    if np.any(bad):
        index = np.unravel_index(int(np.argmax(bad.reshape(-1))), arr.shape)
        count = int(np.count_nonzero(bad))
        more = f", and {count - 1} more" if count > 1 else ""
        raise ValueError(
            f"{name} must hold probabilities in [0, 1], got {float(arr[index])} at index "
            f"{tuple(int(i) for i in index)}{more}."
        )


def canonical_axis(axis: object, ndim: int, name: str = "x") -> int:
    """Checks ``axis`` against an array of ``ndim`` dimensions; returns it >= 0."""
    if ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (the outcomes), got a scalar.")
    try:
        axis = operator.index(axis)
    except TypeError as e:
        raise TypeError(f"axis must be an int, got {axis!r} of type {type_name(axis)}.") from e
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"axis {axis} is out of range for {name} with {ndim} dimension(s); "
            f"expected -{ndim} <= axis < {ndim}."
        )
    return axis % ndim


def outcome_axes(axis: object, ndim: int, name: str = "x") -> int | tuple[int, ...]:
    """Checks ``axis``, an int or a tuple of ints; returns it with each axis >= 0.

    An int takes exactly :func:`canonical_axis`. A tuple keeps its order (the
    order in which :func:`merge_axes` flattens the axes), and must name at
    least one axis, each once and in range.
    """
    if isinstance(axis, list):
        raise TypeError(f"axis must be an int or a tuple of ints, got the list {axis!r}.")
    if not isinstance(axis, tuple):
        return canonical_axis(axis, ndim, name)
    if not axis:
        raise ValueError(
            "axis=() names no axis; give the outcome axis, or a tuple of the axes "
            "that together hold the outcomes."
        )
    axes = []
    for a in axis:
        try:
            a = operator.index(a)
        except TypeError as e:
            raise TypeError(
                f"axis must be an int or a tuple of ints, got {axis!r}, whose entry "
                f"{a!r} is of type {type_name(a)}."
            ) from e
        a = canonical_axis(a, ndim, name)
        if a in axes:
            raise ValueError(
                f"axis {axis!r} names axis {a} of {name} (with {ndim} dimensions) more than once."
            )
        axes.append(a)
    return tuple(axes)


def merge_axes(x: Array, axes: tuple[int, ...]) -> Array:
    """Moves ``axes`` (>= 0) to the end, in their order, and flattens them into one."""
    k = len(axes)
    x = jnp.moveaxis(x, axes, tuple(range(x.ndim - k, x.ndim)))
    batch = x.shape[: x.ndim - k]
    return x.reshape((*batch, math.prod(x.shape[x.ndim - k :])))


_P = ParamSpec("_P")
_R = TypeVar("_R")


def tuple_axis(
    *names: str, labels: str | None = None
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Lets a measure written for one outcome axis take ``axis`` as a tuple of axes.

    The axes of a tuple hold the outcomes together, as one axis of their
    flattened product (a joint distribution spread over several axes, as
    ``jnp.sum(x, axis=(0, 1))`` reduces them). Called with an int ``axis`` (or
    none), the measure runs as written: no transpose, no reshape. Called with
    a tuple, the array arguments ``names`` are broadcast together, checked,
    and the tuple's axes moved to the end and merged (:func:`merge_axes`),
    flattened in the order the tuple gives them (which is the order in which
    integer labels count the classes, as in optax's
    ``softmax_cross_entropy_with_integer_labels``); so is the ``where`` mask.
    The measure then runs with ``axis=-1``; with ``keepdims=True`` each
    reduced axis comes back with size one. A one-axis tuple is that int.

    Args:
      *names: the parameters that hold outcomes along ``axis``.
      labels: the parameter of integer labels, if any: its shape must be that
        of the arrays without the tuple's axes, and it indexes the flattened
        outcomes.
    """

    def decorate(measure: Callable[_P, _R]) -> Callable[_P, _R]:
        signature = inspect.signature(measure)

        @functools.wraps(measure)
        def over_axes(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            axis = kwargs.get("axis", -1)  # keyword-only in every measure
            if not isinstance(axis, (tuple, list)):
                return measure(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            arguments = bound.arguments
            # arguments left at their defaults (a scalar prior) broadcast as they are
            arrays = {
                name: as_real_array(arguments[name], name) for name in names if name in arguments
            }
            shape = _broadcast_shapes(arrays)
            axes = outcome_axes(axis, len(shape), names[0])
            if len(axes) == 1:
                arguments["axis"] = axes[0]
                return measure(*bound.args, **bound.kwargs)
            if arguments.get("axis_name") is not None:
                raise ValueError(
                    f"axis={axis!r} with axis_name: classes split across devices must lie "
                    "along one axis; pass an int axis (merge the axes first with a reshape)."
                )
            if labels is not None:
                label_array = as_label_array(arguments[labels], labels)
                expected = tuple(n for a, n in enumerate(shape) if a not in axes)
                if label_array.shape != expected:
                    raise ValueError(
                        f"{labels} must have the shape of {names[0]} without the class axes: "
                        f"{names[0]} has shape {shape} and axis={axis!r}, so {labels} should "
                        f"have shape {expected}, got {label_array.shape}."
                    )
                arguments[labels] = label_array
            for name, array in arrays.items():
                arguments[name] = merge_axes(jnp.broadcast_to(array, shape), axes)
            mask = as_mask(arguments.get("where"), shape, names[0])
            if mask is not None:
                arguments["where"] = merge_axes(mask, axes)
            arguments["axis"] = -1
            keepdims = arguments.get("keepdims", False)
            if keepdims:
                arguments["keepdims"] = False
            result = measure(*bound.args, **bound.kwargs)
            if keepdims:
                result = jnp.expand_dims(result, sorted(axes))
            return result

        return over_axes

    return decorate


def _broadcast_shapes(arrays: dict[str, Array]) -> tuple[int, ...]:
    """The shape that the named arrays broadcast to, or a ValueError naming them."""
    try:
        return np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{name}.shape={a.shape}" for name, a in arrays.items())
        names = " and ".join(arrays)
        raise ValueError(
            f"{names} must have the same shape (or shapes that broadcast), got {shapes}."
        ) from None


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


def _boolean(where: object, what: str) -> Array:
    """``where`` as a boolean array (a list too), or a TypeError naming ``what`` it must be."""
    where = _from_sequence(where)
    try:
        dtype = jnp.result_type(where)
    except TypeError as e:
        raise TypeError(
            f"where must be a boolean {what}, got an object of type {type_name(where)}."
        ) from e
    if dtype != jnp.bool_:
        raise TypeError(f"where must be a boolean {what}, got dtype {dtype}.")
    return jnp.asarray(where)


def as_mask(where: ArrayLike | None, shape: tuple[int, ...], name: str) -> Array | None:
    """Checks a ``where`` mask of outcomes and broadcasts it to ``shape``."""
    if where is None:
        return None
    where = _boolean(where, "array")
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


def prepare(x: ArrayLike, name: str, axis: object, where: ArrayLike | None):
    """One argument of a measure: ``(array, axis >= 0, mask or None)``.

    The array is in its computation dtype (:func:`as_float_array`); the mask
    is checked and broadcast to the array's shape but not applied.
    """
    x = as_float_array(x, name)
    axis = canonical_axis(axis, x.ndim, name)
    return x, axis, as_mask(where, x.shape, name)


def prepare_pair(
    x: ArrayLike,
    y: ArrayLike,
    x_name: str,
    y_name: str,
    axis: object,
    where: ArrayLike | None,
    *,
    widen: bool = True,
):
    """Two arguments of a measure, broadcast together: ``(x, y, axis >= 0)``.

    Both are in one computation dtype, or with ``widen=False`` in their own
    float dtypes (a kernel that widens bfloat16 inside its loops); where a
    ``where`` mask is given, excluded entries of both are set to 0 (absent
    outcomes), in the computation dtype.
    """
    if widen:
        x, y = as_float_arrays((x, x_name), (y, y_name))
    else:
        x, y = as_real_array(x, x_name), as_real_array(y, y_name)
        if where is not None:
            dtype = compute_dtype(x.dtype, y.dtype)
            x, y = x.astype(dtype), y.astype(dtype)
    x, y = broadcast_pair(x, y, x_name, y_name)
    axis = canonical_axis(axis, x.ndim, x_name)
    mask = as_mask(where, x.shape, x_name)
    if mask is not None:
        x = jnp.where(mask, x, jnp.zeros_like(x))
        y = jnp.where(mask, y, jnp.zeros_like(y))
    return x, y, axis


_IDS_HINT = " p_ids are the class ids of the teacher's top-k log-probabilities."


def prepare_top_k(
    p_log_probs: ArrayLike,
    p_ids: ArrayLike,
    axis: object,
    where: ArrayLike | None,
    *,
    widen: bool = True,
) -> tuple[Array, Array, int, Array | None]:
    """A teacher's top-k slots: ``(log-probabilities, int32 ids, axis >= 0, mask or None)``.

    ``p_log_probs`` (in its computation dtype, or its own float dtype with
    ``widen=False``) and ``p_ids`` (integer) must have one shape, with the
    ``k`` slots along ``axis``; the ``where`` mask of real slots is checked and
    broadcast to that shape but not applied.
    """
    a = (
        as_float_array(p_log_probs, "p_log_probs")
        if widen
        else as_real_array(p_log_probs, "p_log_probs")
    )
    ids = as_label_array(p_ids, "p_ids", hint=_IDS_HINT)
    if a.shape != ids.shape:
        raise ValueError(
            f"p_log_probs and p_ids must have the same shape (k slots along axis), got "
            f"p_log_probs.shape={a.shape} and p_ids.shape={ids.shape}."
        )
    axis = canonical_axis(axis, a.ndim, "p_log_probs")
    return a, ids, axis, as_mask(where, a.shape, "p_ids")


# --------------------------------------------------------------------------
# the linear heads' arguments (linear_cross_entropy, linear_entropy, the two-head divergences)
# --------------------------------------------------------------------------


def is_zero(value: object) -> bool:
    """A Python number equal to 0 (nothing to compute); arrays may be traced: False."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def is_one(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 1


def differentiable(value: object) -> bool:
    """A JAX array (possibly traced), which may be differentiated; Python numbers are not."""
    return isinstance(value, (jax.Array, jax.core.Tracer))


def as_class_mask(where: ArrayLike | None, vocab: int) -> Array | None:
    if where is None:
        return None
    where = _boolean(where, "(V,) mask of classes")
    if where.shape != (vocab,):
        raise ValueError(
            f"where must have shape (V,) = ({vocab},), one entry per class of w (this "
            f"device's block under axis_name), got shape {where.shape}."
        )
    if not isinstance(where, jax.core.Tracer) and not bool(np.any(np.asarray(where))):
        # Under axis_name a device's block may legitimately be all excluded;
        # then only the whole vocabulary must include a class.
        raise ValueError("where excludes every class of w: at least one class must be included.")
    return where


def as_position_weights(weights, batch_shape, name, acc) -> Array:
    if isinstance(weights, (list, tuple)):
        weights = np.asarray(weights)
    try:
        dtype = jnp.result_type(weights)
    except TypeError as e:
        raise TypeError(
            f"{name} must be a real array of per-position weights, got an object of type "
            f"{type_name(weights)}."
        ) from e
    if dtype == jnp.bool_:
        weights = jnp.asarray(weights).astype(acc)
    else:
        weights = as_real_array(weights, name)
    if weights.shape != tuple(batch_shape):
        raise ValueError(
            f"{name} must have one weight per position, shape {tuple(batch_shape)} (x without "
            f"its last axis), got shape {weights.shape}."
        )
    return weights.astype(acc)


def check_chunk_size(chunk_size: object) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool):
        raise TypeError(f"chunk_size must be an int or None, got {chunk_size!r}.")
    try:
        chunk = operator.index(chunk_size)
    except TypeError as e:
        raise TypeError(
            f"chunk_size must be an int or None, got {chunk_size!r} of type "
            f"{type(chunk_size).__name__}."
        ) from e
    if chunk < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk}.")
    return chunk


# --------------------------------------------------------------------------
# statistics over all devices
# --------------------------------------------------------------------------


def forward_mode_error(fname: str) -> str:
    return (
        f"{fname} supports reverse-mode differentiation only (jax.grad, "
        "jax.vjp, jax.jacrev): its derivative is a custom_vjp that recomputes the "
        "logits block by block. Forward mode (jax.jvp, jax.jacfwd, jax.linearize, "
        "jax.hessian) needs the materialised loss: differentiate "
        "jaxinfo.cross_entropy_from_labels(labels, x @ w) (or entropy_from_logits(x @ w)) "
        "instead, at the price of the (N, V) logits."
    )


def forward_mode(a: object) -> bool:
    """Whether ``a`` carries a tangent of ``jax.jvp`` (or of what builds on it).

    JAX's own error for forward mode through a ``custom_vjp`` names neither
    the function nor a way out, and under ``jit`` it comes only when the
    program is lowered. So the tracers that wrap ``a`` (``vmap``'s, ``jit``'s,
    reverse mode's around ``jax.jvp``'s in ``jax.hessian``) are unwrapped in
    search of a forward-mode one. Tracer types are internal to JAX: should
    they change, nothing is found, and JAX's own error stands. A tangent
    that is a partial-evaluation tracer is reverse mode by the older route
    (``jax_use_direct_linearize=False``), and is let through.
    """
    try:
        from jax._src.interpreters import ad, partial_eval
    except ImportError:  # pragma: no cover - a JAX that moved its internals
        return False
    for _ in range(64):  # a bound on nested transformations, against a cycle
        if not isinstance(a, jax.core.Tracer):
            return False
        if isinstance(a, ad.JVPTracer):
            return not isinstance(a.tangent, partial_eval.JaxprTracer)
        inner = getattr(a, "primal", None)
        a = inner if inner is not None else getattr(a, "val", None)
    return False

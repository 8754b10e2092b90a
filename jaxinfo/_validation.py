"""Checks of input values, for users who want to be told what is wrong and where.

The measures check only what is known while tracing (dtypes, shapes, ``axis``)
and take values as given: a check of values would cost a pass over the data,
and, outside ``jit``, a wait for the device, on every call. So a negative
"probability" or a NaN logit gives a meaningless or NaN result, not an error.
The functions here check the values, when asked, and name the first offending
entry or row by its full index:

* :func:`check_distribution`, :func:`check_logits` and :func:`check_top_k` run
  eagerly, in NumPy on the host, on concrete arrays, and raise a ``ValueError``;
* :func:`checkify_distribution`, :func:`checkify_logits` and
  :func:`checkify_top_k` make the same checks inside ``jit`` and ``vmap`` as
  ``jax.experimental.checkify`` checks, which report through the error value
  that ``checkify.checkify`` returns.

Both forms share one description of each check (:class:`_Finding`), so their
messages agree. The checks are taken in order: NaN, then infinities, then
negative entries, then whole rows; the first that fails is reported.

Also here: :func:`repeated`, the slots that repeat an earlier class id, which
the top-k checks report and with which ``kl_divergence_from_top_k`` makes such
a row NaN.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from jaxinfo._checks import (
    Array,
    ArrayLike,
    Axis,
    as_mask,
    as_real_array,
    compute_dtype,
    outcome_axes,
    prepare_top_k,
    type_name,
)

# How far a row's sum may be from 1 by default, by dtype. A few times the most
# that rounding each entry of an exact distribution to the dtype can move the
# sum (half a unit in the last place, relative: 3.9e-3 for bfloat16, 4.9e-4
# for float16, 6e-8 for float32, 1.1e-16 for float64), with room in float32
# and float64 for the rounding of the computation that produced ``p``; small
# enough to catch a forgotten class or an unnormalised row.
DEFAULT_ATOL = {
    np.dtype(jnp.bfloat16): 1e-2,
    np.dtype(jnp.float16): 1e-3,
    np.dtype(jnp.float32): 1e-5,
    np.dtype(jnp.float64): 1e-9,
}

_ROWS = ("such row", "such rows")
_EMPTY_ROW_HINT = (
    "; pass allow_empty_rows=True if that is intended (jaxinfo measures an empty row as 0)"
)


class _Finding(NamedTuple):
    """One check: where an input is wrong, and how to say so.

    ``message`` is a format string in which ``{index}`` stands for the index
    of the first offending element of ``bad`` (in row-major order) and
    ``{value...}`` for the element of ``value`` there.
    """

    bad: Any  # boolean array (NumPy or JAX), True where the input is wrong
    message: str
    value: Any = None
    more: tuple[str, str] = ("such entry", "such entries")  # ", and N more ...", 1 and N
    hint: str = ""


def _index_template(ndim: int) -> str:
    """``(i0, i1)`` as a format string with one field per dimension: ``({i0}, {i1})``."""
    fields = [f"{{i{k}}}" for k in range(ndim)]
    if ndim == 1:
        return f"({fields[0]},)"
    return "(" + ", ".join(fields) + ")"


def _template(finding: _Finding, ndim: int) -> str:
    return finding.message.replace("{index}", _index_template(ndim))


def _raise_if_found(finding: _Finding) -> None:
    """Eager form: a ValueError naming the first offending location, if any."""
    bad = np.asarray(finding.bad)
    count = int(np.count_nonzero(bad))
    if count == 0:
        return
    first = int(np.argmax(bad.reshape(-1)))
    fields = {f"i{k}": int(i) for k, i in enumerate(np.unravel_index(first, bad.shape))}
    if finding.value is not None:
        fields["value"] = np.asarray(finding.value).reshape(-1)[first]
    text = _template(finding, bad.ndim).format(**fields)
    if count > 1:
        text += f", and {count - 1} more {finding.more[count > 2]}"
    raise ValueError(text + finding.hint)


def _check(finding: _Finding) -> None:
    """Traced form: a ``checkify.check`` with the same message and fields."""
    bad = finding.bad
    if bad.size == 0:
        return
    first = jnp.argmax(bad.reshape(-1))
    index = jnp.unravel_index(first, bad.shape) if bad.ndim else ()
    fields = {f"i{k}": i for k, i in enumerate(index)}
    if finding.value is not None:
        fields["value"] = finding.value.reshape(-1)[first]
    fields["count"] = jnp.sum(bad, dtype=jnp.int32) - 1
    text = f"{_template(finding, bad.ndim)}, and {{count}} more{finding.hint}"
    checkify.check(jnp.logical_not(jnp.any(bad)), text, **fields)


def _refuse_tracers(function: str, traced_form: str, **arguments: object) -> None:
    for name, value in arguments.items():
        if isinstance(value, jax.core.Tracer):
            raise TypeError(
                f"{function} checks concrete values on the host, but {name} is a traced "
                "value here (inside jit, vmap, grad, scan or the like). In traced code use "
                f"jaxinfo.{traced_form} and run the function through "
                f"jax.experimental.checkify.checkify (see jaxinfo.{traced_form}'s docstring)."
            )


def _value_format(dtype: np.dtype) -> str:
    """A format spec that shows a value of ``dtype`` to the precision it holds."""
    return f".{jnp.finfo(dtype).precision + 1}g"


def _tolerance(atol: object, dtype: np.dtype) -> float:
    if atol is None:
        return DEFAULT_ATOL.get(np.dtype(dtype), float(jnp.finfo(dtype).eps))
    if isinstance(atol, jax.core.Tracer) or np.asarray(atol).dtype.kind not in "fiu":
        raise TypeError(f"atol must be a non-negative number or None, got {atol!r}.")
    if np.ndim(atol) != 0:
        raise ValueError(f"atol must be a scalar, got shape {np.shape(atol)}.")
    value = float(atol)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"atol must be a finite number >= 0, got {atol!r}.")
    return value


# --------------------------------------------------------------------------
# the checks, written once for NumPy (eager) and jax.numpy (traced)
# --------------------------------------------------------------------------


def _row_label(name: str, rows_ndim: int) -> str:
    """How a message names one distribution: ``p`` itself when it is the only one."""
    return f"row {{index}} of {name}" if rows_ndim > 0 else name


def _distribution_findings(
    xp, x, include, axis: Axis, shown_axis: Axis, masked: bool, *, atol, normalized, allow_empty
) -> Iterator[_Finding]:
    name = "p"
    atol = _tolerance(atol, x.dtype) if normalized else 0.0
    value = "{value:" + _value_format(x.dtype) + "}"
    yield _Finding(
        xp.isnan(x) & include,
        f"{name} has NaN at index {{index}}",
        more=("NaN entry", "NaN entries"),
    )
    yield _Finding(
        xp.isinf(x) & include,
        f"{name} has {{value}} at index {{index}}",
        x,
        ("infinite entry", "infinite entries"),
        "; probabilities must be finite",
    )
    yield _Finding(
        (x < 0) & include,
        f"{name} has a negative entry {value} at index {{index}}",
        x,
        ("negative entry", "negative entries"),
        "; probabilities (and the weights that jaxinfo normalises) must be >= 0",
    )
    wide = x.astype(compute_dtype(x.dtype))
    total = xp.sum(xp.where(include, wide, xp.zeros_like(wide)), axis=axis)
    row = _row_label(name, total.ndim)
    if not allow_empty:
        summed = "its entries selected by where sum" if masked else "sums"
        yield _Finding(
            total == 0,
            f"{row} has no mass ({summed} to 0 along axis {shown_axis})",
            more=_ROWS,
            hint=_EMPTY_ROW_HINT,
        )
    if normalized:
        total_value = "{value:" + _value_format(total.dtype) + "}"
        yield _Finding(
            (xp.abs(total - 1) > atol) & (total != 0),
            f"{row} sums to {total_value} along axis {shown_axis}, expected 1 (atol={atol:g})",
            total,
            _ROWS,
            "; pass normalized=False for non-negative weights, which jaxinfo normalises along axis",
        )


def _logits_findings(
    xp, x, include, axis: Axis, shown_axis: Axis, masked: bool, *, allow_empty
) -> Iterator[_Finding]:
    name = "logits"
    yield _Finding(
        xp.isnan(x) & include,
        f"{name} has NaN at index {{index}}",
        more=("NaN entry", "NaN entries"),
    )
    yield _Finding(
        (x == np.inf) & include,
        f"{name} has +inf at index {{index}}",
        more=("+inf entry", "+inf entries"),
        hint="; logits must be finite, or -inf for an impossible (masked) class",
    )
    if not allow_empty:
        possible = xp.any((x > -np.inf) & include, axis=axis)
        every = "is -inf or excluded by where" if masked else "is -inf"
        yield _Finding(
            xp.logical_not(possible),
            f"{_row_label(name, possible.ndim)} has no possible class along axis {shown_axis} "
            f"(every entry {every})",
            more=_ROWS,
            hint=_EMPTY_ROW_HINT,
        )


def repeated(xp, ids, include):
    """True at each ``include``-d slot whose id an earlier included slot has (last axis).

    ``xp`` is NumPy or ``jax.numpy``. A stable sort of the ids, with excluded
    slots moved to the end, puts equal ids side by side in their order; a slot
    that equals its included neighbour before it repeats an id, and the
    inverse permutation takes the flags back to the slots. ``O(k log k)`` per
    row, never ``k x k``.
    """
    include = xp.broadcast_to(xp.asarray(include), ids.shape)
    key = xp.where(include, ids, xp.full_like(ids, np.iinfo(ids.dtype).max))
    order = np.argsort(key, axis=-1, kind="stable") if xp is np else xp.argsort(key, axis=-1)
    s_ids = xp.take_along_axis(ids, order, axis=-1)
    s_in = xp.take_along_axis(include, order, axis=-1)
    same = (s_ids[..., 1:] == s_ids[..., :-1]) & s_in[..., 1:] & s_in[..., :-1]
    flags = xp.concatenate([xp.zeros_like(s_in[..., :1]), same], axis=-1)
    return xp.take_along_axis(flags, xp.argsort(order, axis=-1), axis=-1)


def _run(findings, report, xp, x: ArrayLike, name: str, axis: object, where, **options) -> Array:
    """Prepares ``x`` as the measures do, then reports each finding of ``findings``.

    ``xp`` is NumPy (eager: the values are copied to the host) or ``jax.numpy``
    (traced); ``report`` raises (eager) or adds a ``checkify`` check.
    """
    x = as_real_array(x, name)
    canonical = outcome_axes(axis, x.ndim, name)  # an int, or a tuple that the sums take as it is
    mask = as_mask(where, x.shape, name)
    include = True if mask is None else xp.asarray(mask)
    shown_axis = axis if isinstance(axis, tuple) else operator.index(axis)
    for finding in findings(
        xp, xp.asarray(x), include, canonical, shown_axis, mask is not None, **options
    ):
        report(finding)
    return x


# --------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------


def check_distribution(
    p: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    normalized: bool = True,
    atol: float | None = None,
    allow_empty_rows: bool = False,
) -> Array:
    """Checks that ``p`` holds probability distributions along ``axis``; raises if not.

    The measures do not check values (it would cost them a pass over the data
    and a wait for the device); this does, eagerly, in NumPy on the host, and
    says what is wrong and where, with the full index of the first offending
    entry or row and how many more there are. In order, it requires:

    * no NaN and no ``±inf`` entry;
    * no negative entry (``-0.0`` is fine);
    * no row (a slice along ``axis``) whose mass is 0, unless
      ``allow_empty_rows`` (jaxinfo measures such a row as 0, which in a loss
      can hide a bug: a mask that excludes everything, say);
    * with ``normalized=True``, each row sums to 1 within ``atol``.

    jaxinfo normalises probabilities along ``axis`` (as ``scipy.stats.entropy``
    does), so for the measures any non-negative, finite weights with some mass
    are valid: ``normalized=False`` checks exactly that, and is the option for
    counts or unnormalised weights. Outcomes excluded by ``where`` are ignored,
    as the measures ignore them (even NaN), and leave the row sums.

    Only concrete arrays can be checked: inside ``jit``, ``vmap`` or ``grad``
    this raises a ``TypeError``; use :func:`checkify_distribution` there.

    Args:
      p: the probabilities (a JAX or NumPy array, or a list).
      axis: the axis that holds the outcomes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask, broadcastable to ``p``, of outcomes to
        include, as in the measures.
      normalized: require each row to sum to 1; ``False`` accepts any
        non-negative weights with some mass.
      atol: how far a row's sum may be from 1. By default it depends on the
        dtype of ``p``: ``1e-2`` for bfloat16, ``1e-3`` for float16, ``1e-5``
        for float32, ``1e-9`` for float64: loose enough for the rounding of
        the entries to the dtype (up to 3.9e-3 in bfloat16) and of the
        computation that produced them, tight enough to catch a lost class.
        Integers count as JAX's default float dtype.
      allow_empty_rows: accept rows whose (included) entries are all zero.

    Returns:
      ``p`` as a JAX array, so that the call can be used inline
      (``p = check_distribution(p)``): integers are promoted to float, as the
      measures do, and floating dtypes (bfloat16 included) are kept.

    Raises:
      ValueError: if a value is wrong, naming it and its index; also for an
        ``axis`` out of range or a ``where`` that does not broadcast.
      TypeError: for a complex or non-numeric ``p``, a non-boolean ``where``,
        or a traced ``p`` or ``where``.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> p = jaxinfo.check_distribution([[0.5, 0.5], [0.9, 0.1]])
      >>> jaxinfo.entropy(p, base=2)
      Array([1. , 0.469], dtype=float32)
      >>> jaxinfo.check_distribution(jnp.array([[0.5, 0.5], [1.2, -0.2]]))
      Traceback (most recent call last):
        ...
      ValueError: p has a negative entry -0.2 at index (1, 1); probabilities (and the weights that
      jaxinfo normalises) must be >= 0
      >>> jaxinfo.check_distribution(jnp.array([[0.5, 0.5], [0.6, 0.3], [0.2, 0.2]]))
      Traceback (most recent call last):
        ...
      ValueError: row (1,) of p sums to 0.9 along axis -1, expected 1 (atol=1e-05), and 1 more such
      row; pass normalized=False for non-negative weights, which jaxinfo normalises along axis

      Counts are valid weights, but not a row of zeros:

      >>> _ = jaxinfo.check_distribution(jnp.array([3, 1, 0]), normalized=False)
      >>> jaxinfo.check_distribution(jnp.zeros((2, 3)), normalized=False)
      Traceback (most recent call last):
        ...
      ValueError: row (0,) of p has no mass (sums to 0 along axis -1), and 1 more such row; pass
      allow_empty_rows=True if that is intended (jaxinfo measures an empty row as 0)
    """
    _refuse_tracers("check_distribution", "checkify_distribution", p=p, where=where)
    options = dict(atol=atol, normalized=normalized, allow_empty=allow_empty_rows)
    return _run(_distribution_findings, _raise_if_found, np, p, "p", axis, where, **options)


def check_logits(
    logits: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    allow_empty_rows: bool = False,
) -> Array:
    """Checks that ``logits`` are valid unnormalised log-probabilities; raises if not.

    Eagerly, in NumPy on the host, as :func:`check_distribution`, it requires:

    * no NaN entry;
    * no ``+inf`` entry (``-inf`` is fine: it marks an impossible class);
    * in each row (a slice along ``axis``) at least one class that is not
      ``-inf``, unless ``allow_empty_rows``: jaxinfo measures a row whose
      classes are all masked as 0, which is what padding wants and a hidden
      bug otherwise, so it must be asked for.

    Classes excluded by ``where`` are ignored (even NaN). Inside ``jit``,
    ``vmap`` or ``grad`` this raises a ``TypeError``; use
    :func:`checkify_logits` there.

    Args:
      logits: the logits (a JAX or NumPy array, or a list).
      axis: the axis that holds the classes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask, broadcastable to ``logits``, of classes to
        include, as in the measures.
      allow_empty_rows: accept rows in which every (included) class is ``-inf``.

    Returns:
      ``logits`` as a JAX array (integers promoted to float, floating dtypes
      kept), so that the call can be used inline.

    Raises:
      ValueError: if a value is wrong, naming it and its index; also for an
        ``axis`` out of range or a ``where`` that does not broadcast.
      TypeError: for a complex or non-numeric ``logits``, a non-boolean
        ``where``, or a traced ``logits`` or ``where``.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> ninf = -jnp.inf
      >>> logits = jaxinfo.check_logits(jnp.array([[0.0, ninf], [1.0, 2.0]]))
      >>> jaxinfo.check_logits(jnp.array([[0.0, jnp.nan], [jnp.nan, 2.0]]))
      Traceback (most recent call last):
        ...
      ValueError: logits has NaN at index (0, 1), and 1 more NaN entry
      >>> padded = jnp.array([[0.0, 1.0], [ninf, ninf]])
      >>> jaxinfo.check_logits(padded)
      Traceback (most recent call last):
        ...
      ValueError: row (1,) of logits has no possible class along axis -1 (every entry is -inf); pass
      allow_empty_rows=True if that is intended (jaxinfo measures an empty row as 0)
      >>> jaxinfo.entropy_from_logits(jaxinfo.check_logits(padded, allow_empty_rows=True))
      Array([0.5822, 0. ], dtype=float32)
    """
    _refuse_tracers("check_logits", "checkify_logits", logits=logits, where=where)
    options = dict(allow_empty=allow_empty_rows)
    return _run(_logits_findings, _raise_if_found, np, logits, "logits", axis, where, **options)


def checkify_distribution(
    p: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    normalized: bool = True,
    atol: float | None = None,
    allow_empty_rows: bool = False,
) -> Array:
    """The checks of :func:`check_distribution` as ``checkify`` checks, for traced code.

    Call it inside the function to be checked, and run that function through
    ``jax.experimental.checkify.checkify``, which turns it into one that also
    returns an error value::

        checked = checkify.checkify(jax.jit(f))
        err, out = checked(p)
        err.throw()  # raises checkify.JaxRuntimeError (a ValueError) if a check failed

    The message is that of :func:`check_distribution`, with the index and
    value of the first offending entry or row and the count of the others
    (``and 0 more`` when there are none; the eager message names what they
    are). Under ``vmap`` the index is within one element of the batch:
    ``checkify.checkify(jax.jit(jax.vmap(f)))`` reports one failing element
    (which one is checkify's choice) without its batch index, and
    ``jax.vmap(checkify.checkify(f))`` each failing element with its batch
    index ("at mapped index 3: ..."). Outside ``jit`` the check raises at
    once; under ``jit`` without ``checkify.checkify`` JAX refuses to trace it
    ("Cannot abstractly evaluate a checkify.check which was not
    functionalized").

    The checks cost a few passes over ``p`` and, through ``checkify``, a
    transfer of the error to the host: use them to find a problem, and leave
    them out of a training step that must be fast. The measures themselves
    never check values.

    Args:
      p: the probabilities.
      axis: the axis that holds the outcomes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask of outcomes to include.
      normalized: require each row to sum to 1 within ``atol``.
      atol: a Python number (not traced); by default it depends on the dtype,
        as in :func:`check_distribution`. The row sums are computed in float32
        (float64 for float64 input).
      allow_empty_rows: accept rows with no mass.

    Returns:
      ``p`` as a JAX array (integers promoted to float), so that the call can
      be used inline.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinfo
      >>> from jax.experimental import checkify
      >>> def loss(p):
      ...     return jaxinfo.entropy(jaxinfo.checkify_distribution(p), base=2)
      >>> checked = checkify.checkify(jax.jit(loss))
      >>> err, h = checked(jnp.array([[0.5, 0.5], [0.9, 0.1]]))
      >>> err.throw()  # no error: returns None
      >>> h
      Array([1. , 0.469], dtype=float32)
      >>> err, h = checked(jnp.array([[0.5, 0.5], [0.7, 0.2]]))
      >>> print(err.get())
      row (1,) of p sums to 0.9 along axis -1, expected 1 (atol=1e-05), and 0 more; pass
      normalized=False for non-negative weights, which jaxinfo normalises along axis (`check`
      failed)
    """
    options = dict(atol=atol, normalized=normalized, allow_empty=allow_empty_rows)
    return _run(_distribution_findings, _check, jnp, p, "p", axis, where, **options)


def checkify_logits(
    logits: ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    allow_empty_rows: bool = False,
) -> Array:
    """The checks of :func:`check_logits` as ``checkify`` checks, for traced code.

    Used as :func:`checkify_distribution` is: inside the function, which is
    run through ``jax.experimental.checkify.checkify``.

    Args:
      logits: the logits.
      axis: the axis that holds the classes, or a tuple of axes that hold
        them together (as one flattened axis).
      where: optional boolean mask of classes to include.
      allow_empty_rows: accept rows in which every (included) class is ``-inf``.

    Returns:
      ``logits`` as a JAX array (integers promoted to float).

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinfo
      >>> from jax.experimental import checkify
      >>> f = lambda logits: jaxinfo.entropy_from_logits(jaxinfo.checkify_logits(logits))
      >>> err, h = checkify.checkify(jax.jit(f))(jnp.array([[0.0, 1.0], [jnp.inf, 0.0]]))
      >>> print(err.get())
      logits has +inf at index (1, 0), and 0 more; logits must be finite, or -inf for an impossible
      (masked) class (`check` failed)
    """
    options = dict(allow_empty=allow_empty_rows)
    return _run(_logits_findings, _check, jnp, logits, "logits", axis, where, **options)


def _counts_findings(c: np.ndarray, name: str, whole: bool) -> Iterator[_Finding]:
    value = "{value:" + _value_format(c.dtype) + "}"
    yield _Finding(
        np.isnan(c), f"{name} has NaN at index {{index}}", more=("NaN entry", "NaN entries")
    )
    yield _Finding(
        np.isinf(c),
        f"{name} has {{value}} at index {{index}}",
        c,
        ("infinite entry", "infinite entries"),
        "; counts must be finite",
    )
    yield _Finding(
        c < 0,
        f"{name} has a negative entry {value} at index {{index}}",
        c,
        ("negative entry", "negative entries"),
        "; counts must be >= 0",
    )
    if whole:
        yield _Finding(
            np.isfinite(c) & (c != np.round(c)),
            f"{name} has a non-integer entry {value} at index {{index}}",
            c,
            ("non-integer entry", "non-integer entries"),
            "; this estimator needs whole-number counts (only 'plugin' takes weights)",
        )


def check_count_values(counts: Array, name: str, *, whole: bool) -> None:
    """Raises a ValueError naming the first NaN, infinite, negative or (with
    ``whole``) non-integer count, where ``counts`` is concrete; traced counts pass
    (the estimators then give NaN for such a histogram)."""
    if isinstance(counts, jax.core.Tracer):
        return
    c = np.asarray(counts)
    for finding in _counts_findings(c, name, whole):
        _raise_if_found(finding)


# --------------------------------------------------------------------------
# a teacher's top-k log-probabilities (kl_divergence_from_top_k)
# --------------------------------------------------------------------------


def _top_k_findings(
    xp, a, ids, include, axis: int, shown_axis: int, *, num_classes: int, atol
) -> Iterator[_Finding]:
    value = "{value:" + _value_format(a.dtype) + "}"
    yield _Finding(
        xp.isnan(a) & include,
        "p_log_probs has NaN at index {index}",
        more=("NaN entry", "NaN entries"),
    )
    yield _Finding(
        (a > 0) & include,
        f"p_log_probs has {value} at index {{index}}, above 0",
        a,
        ("such entry", "such entries"),
        "; log-probabilities must be <= 0 (-inf for a class the teacher rules out)",
    )
    yield _Finding(
        ((ids < 0) | (ids >= num_classes)) & include,
        f"p_ids has {{value}} at index {{index}}, out of range [0, {num_classes})",
        ids,
        ("such id", "such ids"),
        "; mark padding slots with where=False",
    )
    rep = xp.moveaxis(
        repeated(xp, xp.moveaxis(ids, axis, -1), xp.moveaxis(include, axis, -1)), -1, axis
    )
    yield _Finding(
        rep,
        "p_ids repeats class {value} at index {index}",
        ids,
        ("repeated id", "repeated ids"),
        "; the ids of the slots that where includes must be distinct (a repeated id may only "
        "fill a padding slot, excluded by where=False)",
    )
    wide = a.astype(compute_dtype(a.dtype))
    mass = xp.sum(xp.exp(xp.where(include, wide, xp.full_like(wide, -np.inf))), axis=axis)
    atol = _tolerance(atol, a.dtype)
    mass_value = "{value:" + _value_format(mass.dtype) + "}"
    yield _Finding(
        mass > 1 + atol,
        f"{_row_label('p_log_probs', mass.ndim)} has top-k mass {mass_value} along axis "
        f"{shown_axis}, above 1 (atol={atol:g})",
        mass,
        _ROWS,
        "; the teacher's top-k probabilities must sum to at most 1 (the rest is its tail)",
    )


def _check_num_classes(num_classes: object) -> int:
    if isinstance(num_classes, bool) or isinstance(num_classes, jax.core.Tracer):
        raise TypeError(f"num_classes must be a positive int, got {num_classes!r}.")
    try:
        n = operator.index(num_classes)  # type: ignore[arg-type]
    except TypeError as e:
        raise TypeError(
            f"num_classes must be a positive int, got {num_classes!r} of type "
            f"{type_name(num_classes)}."
        ) from e
    if n < 1:
        raise ValueError(f"num_classes must be a positive int, got {n}.")
    return n


def _run_top_k(report, xp, p_log_probs, p_ids, axis, where, num_classes, atol):
    n = _check_num_classes(num_classes)
    a, ids, canonical, mask = prepare_top_k(p_log_probs, p_ids, axis, where, widen=False)
    include = xp.ones(a.shape, bool) if mask is None else xp.asarray(mask)
    shown_axis = operator.index(axis)  # as given (checked by prepare_top_k)
    axis = canonical
    for finding in _top_k_findings(
        xp, xp.asarray(a), xp.asarray(ids), include, axis, shown_axis, num_classes=n, atol=atol
    ):
        report(finding)
    return a, ids


def check_top_k(
    p_log_probs: ArrayLike,
    p_ids: ArrayLike,
    *,
    num_classes: int,
    axis: int = -1,
    where: ArrayLike | None = None,
    atol: float | None = None,
) -> tuple[Array, Array]:
    """Checks a teacher's top-k log-probabilities and class ids; raises if they are wrong.

    The input of :func:`~jaxinfo.kl_divergence_from_top_k`, which takes
    values as given (a wrong id or a repeated one gives NaN there, a
    log-probability above 0 a meaningless result). Eagerly, in NumPy on the
    host, as :func:`check_distribution`, it requires of the slots that
    ``where`` includes (the others are padding, and are ignored, even NaN):

    * no NaN log-probability;
    * no log-probability above 0 (``-inf`` is fine: a class the teacher rules
      out);
    * every id in ``[0, num_classes)``;
    * no id twice in a row (a slice along ``axis``): the ``k`` slots are ``k``
      distinct classes, and a repeated id may only fill a padding slot;
    * each row's top-k mass ``sum(exp(p_log_probs))`` at most ``1 + atol``
      (the teacher's tail, ``1 - sum``, is what lies outside the top k).

    Inside ``jit``, ``vmap`` or ``grad`` this raises a ``TypeError``; use
    :func:`checkify_top_k` there.

    Args:
      p_log_probs: the teacher's top-k log-probabilities, ``k`` along ``axis``.
      p_ids: their class ids, integers of the same shape.
      num_classes: the number of classes ``V`` (the size of the student's
        class axis, over all devices where the classes are split).
      axis: the axis that holds the ``k`` slots.
      where: optional boolean mask, broadcastable to ``p_ids``, of the slots
        that are real (True) rather than padding.
      atol: how far a row's top-k mass may exceed 1; by default it depends on
        the dtype of ``p_log_probs``, as in :func:`check_distribution`.

    Returns:
      ``(p_log_probs, p_ids)`` as JAX arrays (integer log-probabilities
      promoted to float, floating dtypes kept; ids as int32), so that the
      call can be used inline.

    Raises:
      ValueError: if a value is wrong, naming it and its index; also for
        shapes that differ, an ``axis`` out of range, a ``where`` that does
        not broadcast or a ``num_classes`` below 1.
      TypeError: for float ids, a non-boolean ``where``, a ``num_classes``
        that is not an int, or a traced argument.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> log_p = jnp.log(jnp.array([[0.6, 0.3], [0.5, 0.2]]))
      >>> ids = jnp.array([[4, 1], [0, 0]])
      >>> jaxinfo.check_top_k(log_p, ids, num_classes=5)
      Traceback (most recent call last):
        ...
      ValueError: p_ids repeats class 0 at index (1, 1); the ids of the slots that where includes
      must be distinct (a repeated id may only fill a padding slot, excluded by where=False)
      >>> real = jnp.array([[True, True], [True, False]])
      >>> log_p, ids = jaxinfo.check_top_k(log_p, ids, num_classes=5, where=real)
    """
    _refuse_tracers(
        "check_top_k", "checkify_top_k", p_log_probs=p_log_probs, p_ids=p_ids, where=where
    )
    return _run_top_k(_raise_if_found, np, p_log_probs, p_ids, axis, where, num_classes, atol)


def checkify_top_k(
    p_log_probs: ArrayLike,
    p_ids: ArrayLike,
    *,
    num_classes: int,
    axis: int = -1,
    where: ArrayLike | None = None,
    atol: float | None = None,
) -> tuple[Array, Array]:
    """The checks of :func:`check_top_k` as ``checkify`` checks, for traced code.

    Used as :func:`checkify_distribution` is: inside the function, which is
    run through ``jax.experimental.checkify.checkify``.

    Args:
      p_log_probs: the teacher's top-k log-probabilities, ``k`` along ``axis``.
      p_ids: their class ids, integers of the same shape.
      num_classes: the number of classes ``V`` (a Python int).
      axis: the axis that holds the ``k`` slots.
      where: optional boolean mask of the slots that are real.
      atol: how far a row's top-k mass may exceed 1 (a Python number).

    Returns:
      ``(p_log_probs, p_ids)`` as JAX arrays, so that the call can be used
      inline.

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinfo
      >>> from jax.experimental import checkify
      >>> def loss(log_p, ids, q_logits):
      ...     log_p, ids = jaxinfo.checkify_top_k(log_p, ids, num_classes=q_logits.shape[-1])
      ...     return jaxinfo.kl_divergence_from_top_k(log_p, ids, q_logits)
      >>> checked = checkify.checkify(jax.jit(loss))
      >>> err, kl = checked(jnp.log(jnp.array([0.6, 0.3])), jnp.array([4, 7]), jnp.zeros(5))
      >>> print(err.get())
      p_ids has 7 at index (1,), out of range [0, 5), and 0 more; mark padding slots with
      where=False (`check` failed)
      >>> kl
      Array(nan, dtype=float32)
    """
    return _run_top_k(_check, jnp, p_log_probs, p_ids, axis, where, num_classes, atol)

"""Property-based tests over every public function (issue 7).

For every measure, hypothesis draws inputs from ``tests/strategies.py`` (random
shapes of 1 to 4 axes with the class axis anywhere, 1 to 1000 classes, every
dtype, zeros, subnormals, tiny and huge entries, ``-inf`` and huge logits,
masks with empty rows, labels out of range) and checks, in one jitted program
per measure, layout and dtype:

* the value against an extended-precision reference from the definition
  (``tests/references.py``), wherever that is defined, to within rounding;
* no NaN in the value, nor in the gradient in reverse mode (``vjp``) or
  forward mode (``jvp``), wherever the mathematical value is finite;
* invariance under a permutation of the classes, conversion of units
  (``f(base=b) = f / log b``), moving the class axis, ``where=m`` against
  the masked input (with NaN in the excluded entries, which get zero
  gradient), ``vmap`` against the batched call, and ``jit`` against eager;
* the bounds and identities of each measure: ``0 <= H <= log K``,
  ``KL >= 0``, ``KL(P, P) = 0``, ``JS <= log 2``, ``CE = H + KL``, ...

"Wherever the mathematical value is finite" means: the reference is finite
and representable in the dtype the measure returns. Subnormal inputs are read
as zero by XLA on CPU (and as themselves elsewhere), so where an input has
subnormal entries the value must lie between the references with and without
them. ``HYPOTHESIS_PROFILE`` picks the profile (tests/conftest.py): ``ci``
by default, ``deep`` for a long run by hand (README, "Development").
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import references as ref
import strategies as gen
from hypothesis import given
from hypothesis import strategies as st

import jaxinfo


def regimes(*, tiny: bool = True):
    """The magnitude regimes of tests/strategies.py as a parametrization.

    ``tiny=False`` for measures of logits or counts, for which the tiny
    regime is the standard one.
    """
    return pytest.mark.parametrize("regime", [r for r in gen.REGIMES if tiny or r != "tiny"])


# ----------------------------------------------------------------------------
# How each measure is called, permuted, batched and differentiated
# ----------------------------------------------------------------------------

# Kinds of arguments: "w" weights (0 = absent), "l" logits (-inf = absent),
# "c" counts (not differentiated), "f" features or a classifier (linear),
# "s" a traced scalar option (alpha), "e" one not differentiated (label
# smoothing, see test_label_smoothing_derivative), "i" integer labels.
CLASSED = "wlc"  # arrays with a class axis
DIFFERENTIABLE = "wlfs"


@dataclasses.dataclass(frozen=True)
class Measure:
    """A public function with its static options, and how to transform its input.

    ``family`` says how the arguments are laid out:

    * ``"rows"``: arrays of one shape, reduced along ``axis``;
    * ``"labels"``: (labels, logits[, eps]), logits reduced along ``axis``;
    * ``"linear"``: (x, w, labels);
    * ``"elementwise"``: one array, no axis reduced;
    * ``"joint"``: tables on the last two axes;
    """

    name: str
    family: str
    kinds: tuple[str, ...]
    axis: int = -1
    ndim: int = 1
    static: tuple[tuple[str, object], ...] = ()
    has_base: bool = True
    has_where: bool = False
    differentiable: bool = True
    forward_mode: bool = True  # False for a custom_vjp (linear_cross_entropy)

    @property
    def fn(self) -> Callable:
        return getattr(jaxinfo, self.name)

    @property
    def diff(self) -> tuple[int, ...]:
        if not self.differentiable:
            return ()
        return tuple(i for i, k in enumerate(self.kinds) if k in DIFFERENTIABLE)

    def call(self, args, *, base=None, where=None, axis=None):
        kwargs = dict(self.static)
        if base is not None:
            kwargs["base"] = base
        if where is not None:
            kwargs["where"] = where
        if self.family in ("rows", "labels"):
            kwargs["axis"] = self.axis if axis is None else axis
        if self.family == "labels" and len(args) == 3:
            labels, logits, eps = args
            return self.fn(labels, logits, label_smoothing=eps, **kwargs)
        return self.fn(*args, **kwargs)

    def permute(self, args, perm):
        """The same measure with the classes relabelled by ``perm``."""
        if self.family == "rows":
            return tuple(
                jnp.take(a, perm, axis=self.axis) if k in CLASSED else a
                for a, k in zip(args, self.kinds, strict=True)
            )
        if self.family == "labels":
            labels, logits, *rest = args
            return (_relabel(labels, perm), jnp.take(logits, perm, axis=self.axis), *rest)
        if self.family == "linear":
            x, w, labels = args
            return x, jnp.take(w, perm, axis=1), _relabel(labels, perm)
        if self.family == "joint":
            (table,) = args
            rows, cols = perm
            return (jnp.take(jnp.take(table, rows, axis=-2), cols, axis=-1),)
        raise NotImplementedError(self.family)

    def batched(self, args):
        """``vmap`` over the first axis that is not reduced, or None if there is none."""
        if self.family == "elementwise":
            return jax.vmap(self.call)(args)
        if self.family == "joint":
            if self.ndim < 3:
                return None
            return jax.vmap(self.call)(args)
        if self.family == "linear":
            x, w, labels = args
            if x.ndim < 3:
                return None
            return jax.vmap(lambda x, y: self.call((x, w, y)))(x, labels)
        if self.ndim < 2:
            return None
        b = 1 if self.axis == 0 else 0  # the batch axis that vmap takes away
        inner = self.axis - 1 if b < self.axis else self.axis
        if self.family == "rows":
            in_axes = tuple(b if k in CLASSED else None for k in self.kinds)
            return jax.vmap(lambda *a: self.call(a, axis=inner), in_axes=in_axes)(*args)
        labels, logits, *rest = args
        in_axes = (0, b) + (None,) * len(rest)
        return jax.vmap(lambda *a: self.call(a, axis=inner), in_axes=in_axes)(labels, logits, *rest)

    def rows(self, i: int, finite: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The entries of argument ``i`` that only feed outputs where ``finite``."""
        kind = self.kinds[i]
        if kind in "se":
            return np.ones(shape, bool)
        if self.family == "elementwise":
            return np.broadcast_to(finite, shape)
        if self.family == "joint":
            return np.broadcast_to(finite[..., None, None], shape)
        if self.family == "linear":
            if i == 1:  # w feeds every position; only finite ones send cotangents
                return np.ones(shape, bool)
            return np.broadcast_to(finite[..., None], shape)
        return np.broadcast_to(np.expand_dims(finite, self.axis), shape)

    def row_index(self, i: int, at: tuple, shape: tuple[int, ...]):
        """Index of the entries of argument ``i`` behind output entry ``at``."""
        kind = self.kinds[i]
        if kind in "se":
            return ()
        if self.family == "elementwise":
            return at
        if self.family == "joint":
            return (*at, slice(None), slice(None))
        if kind == "i":
            return at
        if self.family == "linear":
            return (slice(None), slice(None)) if i == 1 else (*at, slice(None))
        return (*at[: self.axis], slice(None), *at[self.axis :])

    def output_index(self, i: int, at: tuple):
        """The output entry that entry ``at`` of argument ``i`` feeds (the first one)."""
        kind = self.kinds[i]
        if kind in "se":
            return None
        if self.family == "elementwise":
            return at
        if self.family == "joint":
            return at[:-2]
        if self.family == "linear":
            return None if i == 1 else at[:-1]
        return at[: self.axis] + at[self.axis + 1 :]

    def neutral(self, args, mask):
        """The input with the outcomes that ``mask`` excludes made absent."""
        out = []
        for a, k in zip(args, self.kinds, strict=True):
            if k == "w":
                a = np.where(mask, a, np.zeros_like(a))
            elif k == "l":
                a = np.where(mask, a, np.full_like(a, -np.inf))
            out.append(a)
        return tuple(out)

    def poisoned(self, args, mask):
        """NaN in the excluded entries of every float array: they must not matter."""
        return tuple(
            np.where(mask, a, np.full_like(a, np.nan)) if k in "wl" else a
            for a, k in zip(args, self.kinds, strict=True)
        )

    def extras(self, args):
        """Values of related measures, for the identities between them."""
        return _EXTRAS.get(self.name, lambda m, a: {})(self, args)


def _relabel(labels, perm):
    """Labels of the classes after ``logits[..., perm]``: ``inverse(perm)[label]``."""
    k = perm.shape[0]
    inverse = jnp.zeros_like(perm).at[perm].set(jnp.arange(k, dtype=perm.dtype))
    inside = (labels >= 0) & (labels < k)
    return jnp.where(inside, inverse[jnp.clip(labels, 0, k - 1)], labels)


def _extras_cross_entropy(m, args):
    p, q = args
    return {
        "entropy": jaxinfo.entropy(p, axis=m.axis),
        "kl": jaxinfo.kl_divergence(p, q, axis=m.axis),
    }


def _extras_cross_entropy_from_logits(m, args):
    p, logits = args
    log_p = jnp.log(p.astype(logits.dtype if p.dtype.itemsize > 2 else jnp.float32))
    return {
        "entropy": jaxinfo.entropy(p, axis=m.axis),
        "kl": jaxinfo.kl_divergence_from_logits(log_p, logits, axis=m.axis),
    }


def _extras_self(m, args):
    """The measure of a distribution against itself."""
    same = (args[0], args[0], *args[2:])
    return {"self": m.call(same)}


def _extras_js(m, args):
    p, q = args
    return {"self": m.call((p, p)), "swapped": m.call((q, p))}


def _extras_renyi_entropy(m, args):
    p, alpha = args
    return {"next": m.call((p, alpha + 0.5))}


def _extras_renyi_divergence(m, args):
    p, q, alpha = args
    return {"self": m.call((p, p, alpha)), "next": m.call((p, q, alpha + 0.5))}


def _extras_perplexity(m, args):
    return {"entropy": jaxinfo.entropy(args[0], axis=m.axis)}


def _extras_labels(m, args):
    """``cross_entropy_from_logits`` of the smoothed one-hot target."""
    labels, logits, *rest = args
    eps = rest[0] if rest else jnp.zeros((), gen.compute_dtype(logits.dtype.name))
    k = logits.shape[m.axis]
    dtype = eps.dtype  # the computation dtype: float32 for 16-bit logits
    onehot = jnp.moveaxis(jax.nn.one_hot(jnp.clip(labels, 0, k - 1), k, dtype=dtype), -1, m.axis)
    valid = (logits > -jnp.inf).astype(dtype)
    uniform = valid / jnp.maximum(jnp.sum(valid, axis=m.axis, keepdims=True), 1)
    target = (1 - eps) * onehot + eps * uniform
    return {"onehot": jaxinfo.cross_entropy_from_logits(target, logits, axis=m.axis)}


def _extras_mutual_information(m, args):
    return {"transposed": m.call((jnp.swapaxes(args[0], -1, -2),))}


_EXTRAS = {
    "cross_entropy": _extras_cross_entropy,
    "cross_entropy_from_logits": _extras_cross_entropy_from_logits,
    "kl_divergence": _extras_self,
    "kl_divergence_from_logits": _extras_self,
    "js_divergence": _extras_js,
    "renyi_entropy": _extras_renyi_entropy,
    "renyi_divergence": _extras_renyi_divergence,
    "perplexity": _extras_perplexity,
    "cross_entropy_from_labels": _extras_labels,
    "mutual_information": _extras_mutual_information,
}


# ----------------------------------------------------------------------------
# One jitted program per measure: value, derivatives, invariances, identities
# ----------------------------------------------------------------------------


def _replace(args, idx, new):
    args = list(args)
    for i, a in zip(idx, new, strict=True):
        args[i] = a
    return tuple(args)


@functools.cache
def _program(measure: Measure):
    diff = measure.diff

    def derivatives(call, args, tangents, cotangent):
        def f(*d):
            return call(_replace(args, diff, d))

        primals = tuple(args[i] for i in diff)
        value, vjp = jax.vjp(f, *primals)
        if not diff or not measure.forward_mode:
            return value, vjp(cotangent), jnp.zeros_like(value)
        _, forward = jax.jvp(f, primals, tangents)
        return value, vjp(cotangent), forward

    def program(args, perm, base, tangents, cotangent, masked):
        out = {}
        out["value"], out["grads"], out["forward"] = derivatives(
            measure.call, args, tangents, cotangent
        )
        # The invariances under a permutation of the classes and a change of
        # units, in one evaluation (each one costs compilation time).
        permuted = args if perm is None else measure.permute(args, perm)
        out["transformed"] = measure.call(permuted, base=base if measure.has_base else None)
        out["batched"] = measure.batched(args)
        out["extras"] = measure.extras(args)
        if masked is not None:
            poisoned, mask, tangents_w, cotangent_w = masked
            out["where"], out["where_grads"], out["where_forward"] = derivatives(
                functools.partial(measure.call, where=mask), poisoned, tangents_w, cotangent_w
            )
        return out

    return jax.jit(program)


# ----------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------


def _x64(dtype: str):
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def _flushed(args, kinds, dtype):
    """The input with entries that are subnormal in the computation dtype set to 0."""
    tiny = np.finfo(dtype).tiny
    out = []
    for a, k in zip(args, kinds, strict=True):
        if k in "wlf":
            a64 = np.asarray(a, np.float64) if np.dtype(a.dtype).itemsize < 8 else np.asarray(a)
            a = np.where((a64 != 0) & (np.abs(a64) < tiny), np.zeros_like(a), a)
        out.append(a)
    return tuple(out)


def _has_subnormals(args, kinds, dtype) -> bool:
    tiny = np.finfo(dtype).tiny
    for a, k in zip(args, kinds, strict=True):
        if k in "wlf":
            a = np.abs(np.asarray(a, np.float64))
            if np.any((a != 0) & (a < tiny)):
                return True
    return False


@dataclasses.dataclass
class Expected:
    """The reference value(s) of a measure and the tolerance around them."""

    lo: np.ndarray  # the reference, or the smaller of the two when subnormals matter
    hi: np.ndarray
    tol: np.ndarray
    finite: np.ndarray  # the mathematical value is finite and representable


def expected(reference, args, kinds, dtype, classes) -> Expected:
    """The reference value, or the range of values the platform may give.

    ``reference(args)`` returns ``(value, scale, *alternatives)``: the value
    from the definition, the size of its terms, and any other values that a
    floating-point computation may legitimately give. Where an input has
    entries that are subnormal in the computation dtype, the reference of the
    input with them read as zero counts too (XLA:CPU flushes subnormals).
    """
    readings = [args]
    if _has_subnormals(args, kinds, dtype):
        readings.append(_flushed(args, kinds, dtype))
    values, scale = [], 0
    for a in readings:
        value, s, *alternatives = reference(a)
        values += [np.asarray(value), *(np.asarray(v) for v in alternatives)]
        scale = np.maximum(scale, np.where(np.isfinite(s), s, 0))
    big = ref.LD(np.finfo(dtype).max)
    # A finite value beyond the range rounds to infinity.
    with np.errstate(invalid="ignore"):
        values = [np.where(np.abs(v) > big, np.sign(v) * ref.INF, v) for v in values]
        lo, hi = functools.reduce(np.minimum, values), functools.reduce(np.maximum, values)
    eps = ref.LD(np.finfo(dtype).eps)
    tol = 8 * eps * (1 + math.sqrt(classes)) * scale
    finite = functools.reduce(np.logical_and, [np.isfinite(v) for v in values])
    return Expected(lo=lo, hi=hi, tol=tol, finite=finite)


def assert_matches(got, exp: Expected, what: str, context):
    """``got`` within tolerance of the reference: NaN exactly where it is NaN,
    never NaN elsewhere, the infinities it has, and within ``[lo, hi] ± tol``."""
    got = np.asarray(got).astype(ref.LD)
    want_nan = np.isnan(exp.lo) | np.isnan(exp.hi)
    bad = np.isnan(got) != want_nan
    with np.errstate(invalid="ignore"):
        low = np.where(np.isinf(exp.lo), exp.lo, exp.lo - exp.tol)
        high = np.where(np.isinf(exp.hi), exp.hi, exp.hi + exp.tol)
        bad |= ~want_nan & ~((got >= low) & (got <= high))
    if np.any(bad):
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: got {got[i]!r}, expected {exp.lo[i]!r}"
            + ("" if exp.hi[i] == exp.lo[i] else f" .. {exp.hi[i]!r}")
            + f" (tol {exp.tol[i]:.3g}) at {i}; {np.count_nonzero(bad)} of {bad.size} wrong"
            + f"\n{context(i)}"
        )


def assert_same(got, want, tol, what: str, context):
    """Two computations of the same value agree: the same NaN and infinities,
    finite values within ``tol``."""
    got = np.asarray(got).astype(ref.LD)
    want = np.asarray(want).astype(ref.LD)
    with np.errstate(invalid="ignore"):
        bad = (np.isnan(got) != np.isnan(want)) | (np.isinf(got) != np.isinf(want))
        bad |= np.isinf(got) & (got != want)
        both = np.isfinite(got) & np.isfinite(want)
        bad |= both & ~(np.abs(got - want) <= tol)
    if np.any(bad):
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        tol_i = np.broadcast_to(tol, bad.shape)[i]
        raise AssertionError(
            f"{what}: {got[i]!r} != {want[i]!r} (tol {tol_i:.3g}) at {i}; "
            f"{np.count_nonzero(bad)} of {bad.size} differ\n{context(i)}"
        )


def assert_no_nan(x, where, what: str, context, to_output=lambda i: i):
    """No NaN in ``x`` where ``where``; ``to_output`` maps an index of ``x`` to
    the output entry it belongs to (for the report)."""
    x = np.asarray(x).astype(np.float64)
    bad = np.isnan(x) & where
    if np.any(bad):
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: NaN at {i} ({np.count_nonzero(bad)} of {bad.size})\n{context(to_output(i))}"
        )


def assert_within(x, low, high, tol, what: str, context):
    """``low - tol <= x <= high + tol`` wherever ``x`` is finite."""
    x = np.asarray(x).astype(ref.LD)
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(x) & ((x < low - tol) | (x > high + tol))
    if np.any(bad):
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {x[i]!r} outside [{np.broadcast_to(low, x.shape)[i]!r}, "
            f"{np.broadcast_to(high, x.shape)[i]!r}] at {i}\n{context(i)}"
        )


def _describe(case):
    """A function that prints the case, and the row behind output index ``at``."""

    def context(at=None):
        m = case.measure
        lines = [f"measure {m}"]
        for i, a in enumerate(case.args):
            a = np.asarray(a)
            lines.append(f"  arg {i}: {a.dtype}{list(a.shape)}")
            if at is not None:
                lines.append(f"    at {at}: {np.array2string(a[m.row_index(i, at, a.shape)])}")
        if case.mask is not None and at is not None:
            i = next(i for i, k in enumerate(m.kinds) if k in CLASSED)
            mask = np.broadcast_to(case.mask, np.shape(case.args[i]))
            lines.append(
                f"  where at {at}: {np.array2string(mask[m.row_index(i, at, mask.shape)])}"
            )
        return "\n".join(lines)

    return context


@dataclasses.dataclass
class Case:
    measure: Measure
    args: tuple  # host arrays in their dtypes (ints for labels)
    reference: Callable  # host args -> (value, scale), value shaped like the output
    dtype: str  # the layout's dtype: float64 runs with x64 enabled
    classes: int
    mask: np.ndarray | None = None
    perm: object = None
    base: float = 2.0
    seed: int = 0


@dataclasses.dataclass
class Result:
    value: np.ndarray
    expected: Expected
    extras: dict
    out_dtype: np.dtype
    tol: np.ndarray


@functools.cache
def _output_shape(measure: Measure, args: tuple[jax.ShapeDtypeStruct, ...], default_float):
    """The shape and dtype of the measure's value: traced once per layout, not per example.

    ``default_float`` (float64 under x64) is part of the key: integer counts
    compute in it.
    """
    return jax.eval_shape(measure.call, args)


def check(case: Case) -> Result:
    """Runs the measure's program and eager call, and checks every generic property."""
    m = case.measure
    context = _describe(case)
    with _x64(case.dtype):
        args = tuple(jnp.asarray(a) for a in case.args)
        layout = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in args)
        out_shape = _output_shape(m, layout, np.dtype(jnp.result_type(float)))
        out_dtype = np.dtype(out_shape.dtype)
        exp = expected(case.reference, case.args, m.kinds, out_dtype, case.classes)
        rng = np.random.default_rng(case.seed)

        def tangents_for(args):
            return tuple(
                jnp.asarray(rng.uniform(-1, 1, np.shape(args[i])).astype(np.asarray(args[i]).dtype))
                for i in m.diff
            )

        tangents = tangents_for(args)
        cotangent = jnp.asarray(exp.finite.astype(out_dtype))
        masked = None
        exp_w = None
        if case.mask is not None:
            neutral = m.neutral(case.args, case.mask)
            exp_w = expected(case.reference, neutral, m.kinds, out_dtype, case.classes)
            poisoned = tuple(jnp.asarray(a) for a in m.poisoned(case.args, case.mask))
            masked = (
                poisoned,
                jnp.asarray(case.mask),
                tangents_for(poisoned),
                jnp.asarray(exp_w.finite.astype(out_dtype)),
            )
        perm = None
        if case.perm is not None:
            perm = jax.tree.map(jnp.asarray, case.perm)
        base = jnp.asarray(case.base, out_dtype)
        out = _program(m)(args, perm, base, tangents, cotangent, masked)
        out = jax.tree.map(np.asarray, out)
        eager = np.asarray(m.call(args))

    value = out["value"]
    assert value.dtype == out_dtype and value.shape == out_shape.shape
    assert_matches(value, exp, "value", context)
    tol = exp.tol
    for i, g in zip(m.diff, out["grads"], strict=True):
        rows = m.rows(i, exp.finite, np.shape(case.args[i]))
        assert_no_nan(
            g,
            rows,
            f"reverse-mode derivative in argument {i}",
            context,
            functools.partial(m.output_index, i),
        )
    assert_no_nan(out["forward"], exp.finite, "forward-mode derivative", context)
    assert_same(eager, value, tol, "eager vs jit", context)
    what = ", ".join(
        (["permuted classes"] if case.perm is not None else [])
        + ([f"base={case.base}"] if m.has_base else [])
    )
    if what:
        log_base = np.log(ref.LD(case.base)) if m.has_base else ref.LD(1)
        with np.errstate(invalid="ignore", over="ignore"):
            converted = out["transformed"].astype(ref.LD) * log_base
        # where value / log(base) is beyond the range, inf is right
        fits = ~(np.abs(value.astype(ref.LD) / log_base) > np.finfo(out_dtype).max)
        assert_same(
            np.where(fits, converted, 0),
            np.where(fits, value, 0),
            # in extended precision: for values near the float maximum the
            # float32 product overflowed, and an inf tolerance passed anything
            tol + 4 * np.abs(value.astype(ref.LD)) * ref.LD(np.finfo(out_dtype).eps),
            what,
            context,
        )
    if out["batched"] is not None:
        assert_same(out["batched"], value, tol, "vmap vs batched", context)
    if case.mask is not None:
        assert_matches(out["where"], exp_w, "value with where", context)
        for i, g in zip(m.diff, out["where_grads"], strict=True):
            shape = np.shape(case.args[i])
            rows = m.rows(i, exp_w.finite, shape)
            mask = np.broadcast_to(case.mask, shape) if m.kinds[i] in "wl" else np.ones(shape, bool)
            assert_no_nan(
                g,
                rows & mask,
                f"reverse-mode derivative with where, argument {i}",
                context,
                functools.partial(m.output_index, i),
            )
            if m.kinds[i] in "wl":
                excluded = np.asarray(g, np.float64)[~mask]
                if np.any(excluded != 0):
                    raise AssertionError(
                        f"excluded entries of argument {i} get gradient "
                        f"{excluded[excluded != 0][:5]}\n{context()}"
                    )
        assert_no_nan(
            out["where_forward"], exp_w.finite, "forward-mode derivative with where", context
        )
    return Result(value=value, expected=exp, extras=out["extras"], out_dtype=out_dtype, tol=tol)


# ----------------------------------------------------------------------------
# Drawing cases
# ----------------------------------------------------------------------------


def _class_last(a, axis):
    return np.moveaxis(np.asarray(a), axis, -1)


def draw_options(data, case: Case, regime: str, *, where: bool, perm: bool = True) -> Case:
    """Adds a mask, a permutation, a base and a seed to a case."""
    m = case.measure
    classed = [a for a, k in zip(case.args, m.kinds, strict=True) if k in CLASSED]
    if where:
        keep = None
        if regime != "extreme":
            keep = np.logical_or.reduce([gen.row_maxima(a, m.axis) for a in classed])
        case.mask = data.draw(gen.masks(np.shape(classed[0]), m.axis, keep), label="where")
    seed = data.draw(gen.seeds, label="seed")
    if perm:
        case.perm = np.random.default_rng(seed).permutation(case.classes).astype(np.int32)
    case.base = data.draw(gen.bases, label="base")
    case.seed = seed
    return case


compute_dtype = gen.compute_dtype


def row_case(data, name, kinds, regime, reference, *, scalars=(), where=True, **options) -> Case:
    """A case for a measure that reduces arrays of one layout along ``axis``.

    ``kinds`` are those of the array arguments; ``scalars`` are traced options
    (already drawn) that follow them.
    """
    layout = data.draw(gen.layouts(), label="layout")
    draw = {"w": gen.weights, "l": gen.logits, "c": gen.counts}
    args = [data.draw(draw[k](layout, regime), label=name) for k in kinds]
    compute = compute_dtype(layout.dtype)
    args += [np.asarray(s, compute) for s in scalars]
    kinds = kinds + "s" * len(scalars)
    m = Measure(
        name,
        "rows",
        tuple(kinds),
        axis=layout.axis,
        ndim=len(layout.shape),
        has_where=where,
        **options,
    )

    def host_reference(a):
        return reference(
            *(
                _class_last(x, layout.axis) if k in CLASSED else x
                for x, k in zip(a, kinds, strict=True)
            )
        )

    case = Case(m, tuple(args), host_reference, layout.dtype, layout.classes)
    return draw_options(data, case, regime, where=where)


def classes_of(case: Case, i: int = 0):
    """Row-wise number of positive entries of argument ``i`` (class axis removed)."""
    a = _class_last(case.args[i], case.measure.axis).astype(np.float64)
    return np.count_nonzero(a > 0, axis=-1)


def finite_classes_of(case: Case, i: int = 0):
    a = _class_last(case.args[i], case.measure.axis).astype(np.float64)
    return np.count_nonzero(a > -np.inf, axis=-1)


def close(r: Result, a, b, what, case, slack=1.0):
    """Two values of the identities agree to the tolerance of the measure.

    Not where subnormal inputs make the value platform-dependent: each of the
    two sides may read them differently.
    """
    clear = r.expected.lo == r.expected.hi
    a, b = np.asarray(a).astype(ref.LD), np.asarray(b).astype(ref.LD)
    a, b = np.where(clear, a, 0), np.where(clear, b, 0)
    assert_same(a, b, slack * r.tol + 1e-30, what, _describe(case))


LOG2 = ref.LD(math.log(2))


def _upper_log(count):
    """``log(count)`` (at least 0), the largest entropy over ``count`` outcomes."""
    return np.log(np.maximum(np.asarray(count, np.float64), 1)).astype(ref.LD)


# ----------------------------------------------------------------------------
# Shannon's measures of probabilities
# ----------------------------------------------------------------------------


@given(data=st.data())
def test_information(data):
    layout = data.draw(gen.layouts(), label="layout")
    p = data.draw(gen.unit_interval(layout.shape, layout.dtype), label="p")
    m = Measure("information", "elementwise", ("w",), ndim=len(layout.shape))
    case = Case(m, (p,), lambda a: ref.information(a[0]), layout.dtype, 1)
    case.seed = data.draw(gen.seeds, label="seed")
    case.base = data.draw(gen.bases, label="base")
    r = check(case)
    assert_within(r.value, 0, np.inf, r.tol, "information >= 0", _describe(case))


@regimes()
@given(data=st.data())
def test_entropy(regime, data):
    case = row_case(data, "entropy", "w", regime, ref.entropy)
    r = check(case)
    upper = _upper_log(classes_of(case))
    assert_within(r.value, 0, upper, r.tol, "0 <= H <= log K", _describe(case))


@regimes()
@given(data=st.data())
def test_cross_entropy(regime, data):
    case = row_case(data, "cross_entropy", "ww", regime, ref.cross_entropy)
    r = check(case)
    h, kl = r.extras["entropy"], r.extras["kl"]
    close(r, r.value, h.astype(ref.LD) + kl, "CE = H + KL", case, slack=2)
    assert_within(r.value, 0, np.inf, r.tol, "CE >= 0", _describe(case))


@regimes()
@given(data=st.data())
def test_kl_divergence(regime, data):
    case = row_case(data, "kl_divergence", "ww", regime, ref.kl_divergence)
    r = check(case)
    assert_within(r.value, 0, np.inf, r.tol, "KL >= 0", _describe(case))
    close(r, r.extras["self"], np.zeros_like(r.value), "KL(P, P) = 0", case)


@regimes()
@given(data=st.data())
def test_perplexity(regime, data):
    case = row_case(data, "perplexity", "w", regime, _perplexity_reference, has_base=False)
    r = check(case)
    upper = np.maximum(classes_of(case), 1)
    assert_within(r.value, 1, upper, r.tol * upper, "1 <= PP <= K", _describe(case))
    h = r.extras["entropy"].astype(ref.LD)
    close(r, r.value, np.exp(h), "PP = exp H", case, slack=upper)


def _perplexity_reference(p):
    h, scale = ref.entropy(p)
    return np.exp(h), np.exp(h) * scale


# ----------------------------------------------------------------------------
# Logits and labels
# ----------------------------------------------------------------------------


@regimes(tiny=False)
@given(data=st.data())
def test_entropy_from_logits(regime, data):
    case = row_case(data, "entropy_from_logits", "l", regime, ref.entropy_from_logits)
    r = check(case)
    upper = _upper_log(finite_classes_of(case))
    assert_within(r.value, 0, upper, r.tol, "0 <= H <= log K", _describe(case))


@regimes()
@given(data=st.data())
def test_cross_entropy_from_logits(regime, data):
    def reference(p, logits):
        big = np.finfo(compute_dtype(logits.dtype.name)).max
        return ref.cross_entropy_from_logits(p, logits, big)

    case = row_case(data, "cross_entropy_from_logits", "wl", regime, reference)
    r = check(case)
    assert_within(r.value, 0, np.inf, r.tol, "CE >= 0", _describe(case))
    h, kl = r.extras["entropy"], r.extras["kl"]
    # KL is taken of log p as logits, where a class whose normalised p is
    # below tiny is outside P's support (documented): not where Q rules it out
    p = _class_last(case.args[0], case.measure.axis).astype(ref.LD)
    logits = _class_last(case.args[1], case.measure.axis).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_hat = p / p.sum(axis=-1, keepdims=True)
    tiny = np.finfo(r.out_dtype).tiny
    dropped = np.any((p_hat > 0) & (p_hat < tiny) & (logits == -np.inf), axis=-1)
    both = np.where(dropped, r.value.astype(ref.LD), h.astype(ref.LD) + kl)
    close(r, r.value, both, "CE = H + KL", case, slack=2)


@regimes(tiny=False)
@given(data=st.data())
def test_kl_divergence_from_logits(regime, data):
    # A class that Q rules out (logit -inf) makes the divergence infinite where
    # P's probability of it is positive in the computation dtype (documented:
    # an underflowed class is outside P's support).
    def reference(p_logits, q_logits):
        info = np.finfo(compute_dtype(p_logits.dtype.name))
        return ref.kl_divergence_from_logits(p_logits, q_logits, info.tiny, info.max)

    case = row_case(data, "kl_divergence_from_logits", "ll", regime, reference)
    r = check(case)
    assert_within(r.value, 0, np.inf, r.tol, "KL >= 0", _describe(case))
    close(r, r.extras["self"], np.zeros_like(r.value), "KL(P, P) = 0", case)


@regimes(tiny=False)
@given(data=st.data())
def test_cross_entropy_from_labels(regime, data):
    labels_case(data, regime, differentiate_smoothing=False)


@given(data=st.data())
def test_label_smoothing_derivative(data):
    labels_case(data, "standard", differentiate_smoothing=True)


def labels_case(data, regime, *, differentiate_smoothing):
    layout = data.draw(gen.layouts(), label="layout")
    logits = data.draw(gen.logits(layout, regime), label="logits")
    labels = data.draw(gen.labels(layout.batch_shape, layout.classes), label="labels")
    smoothings = gen.smoothings.filter(bool) if differentiate_smoothing else gen.smoothings
    smoothing = data.draw(smoothings, label="label_smoothing")
    args, kinds = (labels, logits), ("i", "l")
    if smoothing:  # traced; 0 takes the plain path, with its own kernel
        eps_kind = "s" if differentiate_smoothing else "e"
        args = (*args, np.asarray(smoothing, compute_dtype(layout.dtype)))
        kinds = (*kinds, eps_kind)
    m = Measure(
        "cross_entropy_from_labels",
        "labels",
        kinds,
        axis=layout.axis,
        ndim=len(layout.shape),
        has_where=True,
    )

    def reference(a):
        eps = a[2] if len(a) == 3 else 0.0
        return ref.cross_entropy_from_labels(a[0], _class_last(a[1], layout.axis), eps)

    case = Case(m, args, reference, layout.dtype, layout.classes)
    case = draw_options(data, case, regime, where=True)
    r = check(case)
    assert_within(r.value, 0, np.inf, r.tol, "CE >= 0", _describe(case))
    # on rows with a class left (labels measure an empty row 0, a target inf)
    rows = _class_last(logits, layout.axis).astype(np.float64)
    nonempty = np.any(rows > -np.inf, axis=-1)
    # cross_entropy_from_logits overflows where the logits spread beyond the
    # float range (documented); the labels path does not
    finite = np.where(rows > -np.inf, rows, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        spread = np.nanmax(finite, axis=-1) - np.nanmin(finite, axis=-1)
    fits = ~(spread > np.finfo(compute_dtype(layout.dtype)).max)
    inside = (labels >= 0) & (labels < layout.classes) & nonempty & fits
    onehot = np.where(inside, r.extras["onehot"], r.value)
    close(r, r.value, onehot, "labels = one-hot targets", case, slack=2)


@regimes(tiny=False)
@given(data=st.data())
def test_linear_cross_entropy(regime, data):
    layout = data.draw(gen.layouts(dtypes=("float32", "bfloat16", "float64")), label="layout")
    features, chunk = data.draw(st.sampled_from([(1, None), (4, 7)]), label="(D, chunk_size)")
    seed = data.draw(gen.seeds, label="seed")
    spread = data.draw(st.sampled_from([0.0, 0.1, 1.0, 30.0]), label="spread")
    rng = np.random.default_rng(seed)
    classes = layout.classes
    big = float(gen.finfo(layout.dtype).max)
    if regime == "extreme":  # logits up to a quarter of the float maximum
        spread = math.sqrt(big / (4 * features)) * data.draw(st.sampled_from([1e-3, 0.3]))
    x = gen.cast(rng.normal(0, 1, (*layout.batch_shape, features)) * spread, layout.dtype)
    w = gen.cast(rng.normal(0, 1, (features, classes)) * spread, layout.dtype)
    if regime == "extreme":
        x = gen.cast(np.clip(x.astype(np.float64), -spread, spread), layout.dtype)
        w = gen.cast(np.clip(w.astype(np.float64), -spread, spread), layout.dtype)
    labels = data.draw(gen.labels(layout.batch_shape, classes), label="labels")
    m = Measure(
        "linear_cross_entropy",
        "linear",
        ("f", "f", "i"),
        ndim=len(layout.shape),
        static=(("chunk_size", chunk),),
        has_base=False,
        forward_mode=False,  # a custom_vjp: reverse mode only
    )

    def reference(a):
        x, w = (np.asarray(v).astype(ref.LD) for v in a[:2])
        y = a[2]
        value, scale = ref.cross_entropy_from_labels(y, x @ w)
        return value, scale + 2 * np.max(np.abs(x) @ np.abs(w), axis=-1, initial=0) * features

    case = Case(m, (x, w, labels), reference, layout.dtype, classes)
    case.perm = rng.permutation(classes).astype(np.int32)
    case.seed = seed
    r = check(case)
    assert_within(r.value, 0, np.inf, r.tol, "CE >= 0", _describe(case))


# ----------------------------------------------------------------------------
# Jensen-Shannon and Renyi
# ----------------------------------------------------------------------------


@regimes()
@given(data=st.data())
def test_js_divergence(regime, data):
    case = row_case(data, "js_divergence", "ww", regime, ref.js_divergence)
    r = check(case)
    assert_within(r.value, 0, LOG2, r.tol, "0 <= JS <= log 2", _describe(case))
    close(r, r.extras["self"], np.zeros_like(r.value), "JS(P, P) = 0", case)
    close(r, r.extras["swapped"], r.value, "JS(P, Q) = JS(Q, P)", case)


@regimes()
@given(data=st.data())
def test_renyi_entropy(regime, data):
    alpha = data.draw(gen.alphas, label="alpha")
    case = row_case(
        data,
        "renyi_entropy",
        "w",
        regime,
        lambda p, a: ref.renyi_entropy(p, a),
        scalars=(alpha,),
    )
    r = check(case)
    upper = _upper_log(classes_of(case))
    assert_within(r.value, 0, upper, r.tol, "0 <= H_alpha <= log K", _describe(case))
    assert_within(r.extras["next"], 0, r.value, r.tol, "H_alpha non-increasing", _describe(case))


@regimes()
@given(data=st.data())
def test_renyi_divergence(regime, data):
    alpha = data.draw(gen.alphas, label="alpha")
    case = row_case(
        data,
        "renyi_divergence",
        "ww",
        regime,
        lambda p, q, a: ref.renyi_divergence(p, q, a),
        scalars=(alpha,),
    )
    r = check(case)
    assert_within(r.value, 0, np.inf, r.tol, "D_alpha >= 0", _describe(case))
    close(r, r.extras["self"], np.zeros_like(r.value), "D_alpha(P, P) = 0", case)
    assert_within(r.value, 0, r.extras["next"], r.tol, "D_alpha non-decreasing", _describe(case))


# ----------------------------------------------------------------------------
# Joint tables
# ----------------------------------------------------------------------------


def joint_case(data, name, regime, pick) -> Case:
    layout = data.draw(gen.layouts(min_ndim=2), label="layout")
    ndim = len(layout.shape)
    table_layout = gen.Layout(layout.shape, ndim - 1, layout.dtype)
    table = data.draw(gen.weights(table_layout, regime), label="pxy")
    m = Measure(name, "joint", ("w",), ndim=ndim)

    def reference(a):
        out = ref.joint(a[0])
        return out[pick], out[3]

    kx, ky = layout.shape[-2:]
    case = Case(m, (table,), reference, layout.dtype, kx * ky)
    seed = data.draw(gen.seeds, label="seed")
    rng = np.random.default_rng(seed)
    case.perm = (rng.permutation(kx).astype(np.int32), rng.permutation(ky).astype(np.int32))
    case.base = data.draw(gen.bases, label="base")
    case.seed = seed
    return case


@regimes()
@given(data=st.data())
def test_joint_entropy(regime, data):
    case = joint_case(data, "joint_entropy", regime, 0)
    r = check(case)
    cells = np.count_nonzero(case.args[0].astype(np.float64) > 0, axis=(-2, -1))
    assert_within(r.value, 0, _upper_log(cells), r.tol, "0 <= H(X,Y) <= log KxKy", _describe(case))


@regimes()
@given(data=st.data())
def test_conditional_entropy(regime, data):
    case = joint_case(data, "conditional_entropy", regime, 1)
    r = check(case)
    ky = case.args[0].shape[-1]
    assert_within(r.value, 0, _upper_log(ky), r.tol, "0 <= H(Y|X) <= log Ky", _describe(case))


@regimes()
@given(data=st.data())
def test_mutual_information(regime, data):
    case = joint_case(data, "mutual_information", regime, 2)
    r = check(case)
    kx, ky = case.args[0].shape[-2:]
    upper = _upper_log(min(kx, ky))
    assert_within(r.value, 0, upper, r.tol, "0 <= I(X;Y) <= log min(Kx, Ky)", _describe(case))
    close(r, r.extras["transposed"], r.value, "I(X;Y) = I(Y;X)", case)


# ----------------------------------------------------------------------------
# Binary entropy and estimators
# ----------------------------------------------------------------------------


@given(data=st.data())
def test_binary_entropy(data):
    layout = data.draw(gen.layouts(), label="layout")
    p = data.draw(gen.unit_interval(layout.shape, layout.dtype), label="p")
    m = Measure("binary_entropy", "elementwise", ("w",), ndim=len(layout.shape))
    case = Case(m, (p,), lambda a: ref.binary_entropy(a[0]), layout.dtype, 2)
    case.seed = data.draw(gen.seeds, label="seed")
    case.base = data.draw(gen.bases, label="base")
    r = check(case)
    assert_within(r.value, 0, LOG2, r.tol, "0 <= h <= log 2", _describe(case))


@regimes(tiny=False)
@given(data=st.data())
def test_entropy_from_counts(regime, data):
    estimator = data.draw(
        st.sampled_from(["plugin", "miller_madow", "chao_shen"]), label="estimator"
    )
    case = row_case(
        data,
        "entropy_from_counts",
        "c",
        regime,
        lambda c: ref.entropy_from_counts(c, estimator),
        where=False,
        static=(("estimator", estimator),),
        differentiable=False,
    )
    r = check(case)
    seen = classes_of(case)
    assert np.all(np.isfinite(r.value)), "finite for every histogram"
    if estimator == "plugin":
        assert_within(r.value, 0, _upper_log(seen), r.tol, "0 <= H <= log K", _describe(case))
    else:
        assert_within(r.value, 0, np.inf, r.tol, "H >= 0", _describe(case))

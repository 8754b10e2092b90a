"""Hypothesis strategies for the property suite (tests/test_properties.py).

Hypothesis draws the *features* of an input (its layout, the mix of special
values, the scale of each row) and a seed; NumPy then builds the array from the
seed. Arrays of a thousand entries drawn entry by entry would be slow to
generate and to shrink, while the features shrink well: a failure shrinks
towards fewer special values, narrower spreads and simpler layouts.

Three regimes of magnitude:

* ``"standard"``: every row has its largest weight in ``[1e-6, 1e4]``, and
  within the square root of the dtype's range (``[8e-3, 256]`` in float16),
  but single entries go far below that: exact zeros (down to one-hot rows and
  rows with no mass), entries 1e-10, 1e-20, 1e-30 (the subnormals of float16,
  which are normal numbers in the float32 it computes in). Logits have finite
  entries within ``±1e30``, ``-inf`` (masked classes, whole rows of them),
  ``±1e30`` and ``±88`` (where ``exp`` overflows float32);
* ``"tiny"``: the standard rows with, besides, entries at and below the
  smallest normal number of the dtype (``1.2e-38`` and the subnormals down
  to ``1e-45`` in float32);
* ``"extreme"``: the whole representable range: rows whose largest weight is
  the float maximum or the smallest normal number, rows of subnormals, logits
  of ``±3e38``.

Compilation, not arithmetic, is what a property test of JAX code spends its
time on: each new shape or dtype compiles the test's program again (one to
six seconds on CPU), while a further example of a layout already compiled
costs milliseconds. So under the ``ci`` profile the layouts (shape, class
axis, dtype) come from the fixed list :data:`CI_LAYOUTS`, which covers one to
three axes, the class axis first, in the middle and last, a thousand
classes, and every dtype; the values stay random. The ``ci-extra`` profile
draws the same way from :data:`EXTRA_LAYOUTS` (a single class, four axes),
which the README's test command leaves out to stay within minutes and
``.ci/run`` runs as a step of its own. Any other profile (``random``,
``deep``) draws layouts freely.
"""

from __future__ import annotations

import dataclasses
import os

import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

DTYPES = ("float16", "bfloat16", "float32", "float64")
REGIMES = ("standard", "tiny", "extreme")

MAX_CLASSES = 1000
MAX_SIZE = 4000  # entries per array: keeps each example fast


@dataclasses.dataclass(frozen=True)
class Layout:
    """The shape of an input, the axis that holds the classes, and the dtype."""

    shape: tuple[int, ...]
    axis: int  # >= 0
    dtype: str

    @property
    def classes(self) -> int:
        return self.shape[self.axis]

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(jnp.dtype(self.dtype))

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.shape[: self.axis] + self.shape[self.axis + 1 :]


# One layout per dtype: each layout costs every property test a compilation. The
# order decides which layout each derandomised example of the ci profile gets;
# in this one it draws the regression that
# test_js_forward_derivative_on_zeros_of_a_row_near_the_smallest_normal keeps.
CI_LAYOUTS = (
    Layout((7,), 0, "float32"),
    Layout((2, 1000), 1, "bfloat16"),  # a thousand classes
    Layout((5, 3), 0, "float16"),
    Layout((2, 4, 3), 1, "float64"),
)
EXTRA_LAYOUTS = (
    Layout((4, 1, 9), 1, "float32"),  # a single class, in the middle
    Layout((2, 1, 2, 6), 3, "bfloat16"),
)
FIXED_LAYOUTS = {"ci": CI_LAYOUTS, "ci-extra": EXTRA_LAYOUTS}


@st.composite
def layouts(draw, min_ndim: int = 1, dtypes: tuple[str, ...] = DTYPES) -> Layout:
    """A shape of 1 to 4 axes, the class axis anywhere, 1 to 1000 classes, a dtype."""
    if PROFILE in FIXED_LAYOUTS:
        pool = [
            layout
            for layout in FIXED_LAYOUTS[PROFILE]
            if len(layout.shape) >= min_ndim and layout.dtype in dtypes
        ]
        return draw(st.sampled_from(pool))
    ndim = draw(st.integers(min_ndim, 4))
    classes = draw(
        st.one_of(
            st.integers(1, 8),
            st.sampled_from([1, 2, 999, MAX_CLASSES]),
            st.integers(1, MAX_CLASSES),
        )
    )
    budget = MAX_SIZE // classes
    batch = []
    for _ in range(ndim - 1):
        size = draw(st.integers(1, max(1, min(4, budget))))
        budget //= size
        batch.append(size)
    axis = draw(st.integers(0, ndim - 1))
    shape = (*batch[:axis], classes, *batch[axis:])
    return Layout(shape, axis, draw(st.sampled_from(dtypes)))


# --------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------


def compute_dtype(dtype: str) -> str:
    """The dtype the measures compute in: float32 for the 16-bit floats."""
    return "float64" if dtype == "float64" else "float32"


def finfo(dtype) -> np.finfo:
    return jnp.finfo(jnp.dtype(dtype))


def cast(x: np.ndarray, dtype) -> np.ndarray:
    """``x`` (float64) in ``dtype``, clipped to its finite range (infinities kept)."""
    big = float(finfo(dtype).max)
    finite = np.isfinite(x)
    x = np.where(finite, np.clip(x, -big, big), x)
    return x.astype(jnp.dtype(dtype))


def _rows(x: np.ndarray, axis: int) -> np.ndarray:
    """A view with the class axis last."""
    return np.moveaxis(x, axis, -1)


def _special_positions(rng, shape, fraction, protect=None):
    """Entries chosen with probability ``fraction``, never where ``protect`` is set."""
    chosen = rng.random(shape) < fraction
    if protect is not None:
        chosen &= ~protect
    return chosen


def _row_argmax_mask(x: np.ndarray) -> np.ndarray:
    """True at the first maximum of each row (class axis last)."""
    mask = np.zeros(x.shape, bool)
    idx = np.argmax(x, axis=-1)
    np.put_along_axis(mask, idx[..., None], True, axis=-1)
    return mask


@st.composite
def weights(draw, layout: Layout, regime: str) -> np.ndarray:
    """Non-negative weights along the class axis, in the layout's dtype.

    Probabilities are normalised along the axis, so any non-negative weights
    are valid input. Rows have a spread of magnitudes (from uniform to fifty
    orders of magnitude), exact zeros (down to rows with one non-zero entry,
    and rows with none), and special entries: subnormals, the smallest normal
    number, 1e-30, ... In the extreme regime the rows themselves are scaled to
    the ends of the range.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    spread = draw(st.sampled_from([0.0, 1.0, 5.0, 30.0]))  # std of log-weights
    zero_fraction = draw(st.sampled_from([0.0, 0.2, 0.7, 1.0]))
    special_fraction = draw(st.sampled_from([0.0, 0.1, 0.5]))
    empty_rows = draw(st.sampled_from([0.0, 0.2]))
    rng = np.random.default_rng(seed)
    info = finfo(layout.dtype)
    tiny, sub, big = float(info.tiny), float(info.smallest_subnormal), float(info.max)

    shape = _rows(np.empty(layout.shape), layout.axis).shape
    x = np.exp(np.clip(rng.normal(0.0, spread, shape), -700, 0))  # row max about 1
    x = x / x.max(axis=-1, keepdims=True)
    top = _row_argmax_mask(x)  # the row's largest entry keeps the row's scale

    # Row scale: the largest entry of each row.
    if regime != "extreme":
        low, high = max(-6, np.log10(tiny) / 2), min(4, np.log10(big) / 2)
        scale = 10.0 ** rng.uniform(low, high, (*shape[:-1], 1))
    else:
        kinds = np.array([big, big / 2, big / 30, 1e37, tiny, 3 * tiny, sub * 7, 1e-20, 1e20])
        kinds = kinds[(kinds <= big) & (kinds >= sub)]
        pick = rng.integers(0, len(kinds) + 1, (*shape[:-1], 1))
        anywhere = 10.0 ** rng.uniform(np.log10(sub), np.log10(big), (*shape[:-1], 1))
        scale = np.where(pick < len(kinds), kinds[np.minimum(pick, len(kinds) - 1)], anywhere)
    x = x * scale

    # Exact zeros, and special entries below the row's scale.
    x = np.where(_special_positions(rng, shape, zero_fraction, top), 0.0, x)
    specials = np.array([sub, 2 * sub, tiny, 2 * tiny, 1e-30, 1e-20, 1e-10])
    specials = specials[specials >= sub]
    if regime == "standard":  # nothing near the smallest normal of the computation
        specials = specials[specials >= 2.0**24 * float(finfo(compute_dtype(layout.dtype)).tiny)]
    if regime == "extreme":
        specials = np.concatenate([specials, [big, big / 3, 1e30]])
    at = _special_positions(rng, shape, special_fraction, None if regime == "extreme" else top)
    chosen = specials[rng.integers(0, len(specials), shape)]
    if regime != "extreme":  # never above the row's scale
        chosen = np.minimum(chosen, scale)
    x = np.where(at, chosen, x)
    x = np.where(rng.random((*shape[:-1], 1)) < empty_rows, 0.0, x)
    return cast(np.moveaxis(x, -1, layout.axis), layout.dtype)


@st.composite
def logits(draw, layout: Layout, regime: str) -> np.ndarray:
    """Logits along the class axis: normal spreads from 0 to 1e3 around offsets
    up to ``±1e30``, with special entries (``-inf`` = a masked class,
    ``±1e30``, ``±88``, ``±89``) and rows with every class masked. The extreme
    regime adds offsets and entries up to the float maximum (``-3e38``)."""
    seed = draw(st.integers(0, 2**32 - 1))
    spread = draw(st.sampled_from([0.0, 1.0, 30.0, 1e3]))
    offset_kind = draw(st.sampled_from(["zero", "random", "huge"]))
    masked_fraction = draw(st.sampled_from([0.0, 0.3, 0.9]))
    special_fraction = draw(st.sampled_from([0.0, 0.1, 0.5]))
    masked_rows = draw(st.sampled_from([0.0, 0.2]))
    rng = np.random.default_rng(seed)
    big = float(finfo(layout.dtype).max)
    limit = 1e30 if regime == "standard" else big

    shape = _rows(np.empty(layout.shape), layout.axis).shape
    x = rng.normal(0.0, spread, shape)
    row = (*shape[:-1], 1)
    if offset_kind == "random":
        x = x + rng.normal(0.0, 100.0, row)
    elif offset_kind == "huge":
        offsets = np.array([-1e30, 1e30, -88.0, 88.0, 1e10, -1e10])
        if regime == "extreme":
            offsets = np.concatenate([offsets, [-big, big, -big / 2, big / 3, -3e38]])
        x = x + offsets[rng.integers(0, len(offsets), row)]
    specials = np.array([1e30, -1e30, 88.0, -88.0, 89.0, -89.0, 88.72, 0.0, -1e4, 1e4])
    if regime == "extreme":
        specials = np.concatenate([specials, [-big, big, -3e38, 3e38, -big / 2, big / 2]])
    at = rng.random(shape) < special_fraction
    x = np.where(at, specials[rng.integers(0, len(specials), shape)], x)
    x = np.clip(x, -limit, limit)
    x = np.where(rng.random(shape) < masked_fraction, -np.inf, x)
    x = np.where(rng.random(row) < masked_rows, -np.inf, x)
    return cast(np.moveaxis(x, -1, layout.axis), layout.dtype)


def row_maxima(x: np.ndarray, axis: int) -> np.ndarray:
    """True at the first largest entry of each row along ``axis``."""
    rows = _rows(np.asarray(x).astype(np.float64), axis)
    return np.moveaxis(_row_argmax_mask(np.nan_to_num(rows, nan=-np.inf)), -1, axis)


@st.composite
def masks(draw, shape: tuple[int, ...], axis: int, keep: np.ndarray | None = None) -> np.ndarray:
    """A boolean ``where`` of outcomes to include: all, none, random, or whole
    rows excluded. Entries where ``keep`` is set are excluded only with their
    whole row (in the standard regime, the row maxima: excluding them could
    leave a row of tiny weights, which is the extreme regime)."""
    seed = draw(st.integers(0, 2**32 - 1))
    excluded = draw(st.sampled_from([0.0, 0.3, 0.9, 1.0]))
    excluded_rows = draw(st.sampled_from([0.0, 0.3]))
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) >= excluded
    if keep is not None:
        mask |= keep
    row_shape = tuple(1 if i == axis else n for i, n in enumerate(shape))
    return mask & (rng.random(row_shape) >= excluded_rows)


@st.composite
def labels(draw, batch_shape: tuple[int, ...], classes: int) -> np.ndarray:
    """Integer class ids in ``[0, classes)``, with some ``-1`` (ignored) and some
    ``>= classes`` (out of range)."""
    seed = draw(st.integers(0, 2**32 - 1))
    ignored = draw(st.sampled_from([0.0, 0.2]))
    out_of_range = draw(st.sampled_from([0.0, 0.1]))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, batch_shape)
    y = np.where(rng.random(batch_shape) < ignored, rng.choice([-1, -7], batch_shape), y)
    y = np.where(rng.random(batch_shape) < out_of_range, classes + rng.integers(0, 3), y)
    return y.astype(np.int32)


@st.composite
def unit_interval(draw, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Numbers in ``[0, 1]``: uniform, both ends, subnormals, the smallest normal,
    numbers next to 0 and next to 1."""
    seed = draw(st.integers(0, 2**32 - 1))
    special_fraction = draw(st.sampled_from([0.0, 0.3, 1.0]))
    rng = np.random.default_rng(seed)
    info = finfo(dtype)
    eps = float(info.eps)
    specials = np.array(
        [
            0.0,
            1.0,
            0.5,
            float(info.smallest_subnormal),
            float(info.tiny),
            1e-30,
            1e-10,
            1e-4,
            eps,
            1 - eps / 2,
            1 - eps,
            1 - 1e-4,
        ]
    )
    specials = specials[(specials == 0) | (specials >= float(info.smallest_subnormal))]
    x = 10.0 ** rng.uniform(-8, 0, shape) * rng.choice([0.0, 1.0], shape, p=[0.05, 0.95])
    x = np.where(rng.random(shape) < 0.5, x, 1 - x)
    at = rng.random(shape) < special_fraction
    return cast(np.where(at, specials[rng.integers(0, len(specials), shape)], x), dtype)


@st.composite
def counts(draw, layout: Layout, regime: str) -> np.ndarray:
    """Histograms: whole-number counts, from all-singletons to 1e35-sized bins.

    Integer dtype half of the time (int32), else the layout's float dtype.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    rate = draw(st.sampled_from([0.3, 1.0, 10.0, 1e4]))
    zero_fraction = draw(st.sampled_from([0.0, 0.5, 1.0]))
    integer = draw(st.booleans())
    rng = np.random.default_rng(seed)
    shape = layout.shape
    x = rng.poisson(rate, shape).astype(np.float64)
    x = np.where(rng.random(shape) < zero_fraction, 0.0, x)
    x = np.where(rng.random(shape) < 0.1, 1.0, x)  # singletons
    if integer:
        return x.astype(np.int32)
    if regime == "extreme":
        big = float(finfo(layout.dtype).max)
        scale = np.array([1.0, 1e20, 3.4e35, big / 2, big])[rng.integers(0, 5, shape)]
        with np.errstate(over="ignore"):  # inf beyond the float64 range, capped below
            x = np.round(x * np.minimum(scale, big))
    info_max = float(finfo(layout.dtype).max)
    return cast(np.minimum(x, info_max), layout.dtype)


# Options --------------------------------------------------------------------

bases = st.sampled_from([2.0, 10.0, 0.5, 1.7, np.e])
alphas = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, 2.0, np.inf, 1 - 1e-4, 1 + 1e-4, 0.75, 1.25, 100.0]),
    st.floats(0.0, 5.0),
)
smoothings = st.sampled_from([0.0, 0.1, 0.5, 1.0])
seeds = st.integers(0, 2**32 - 1)

"""What the suite measures: each jaxinfo measure, its contenders and the targets.

A :class:`Case` holds one jaxinfo function and the formulas a user would write
instead, all taking the same arrays in the same order (jaxinfo's: true
distribution first). Contenders are only ever run on inputs where they are
valid: strictly positive probabilities, finite logits, labels in range.

Two contenders are not alternatives but yardsticks for jaxinfo itself:

- ``vmap``: the same jaxinfo function written per row and mapped with
  ``jax.vmap`` over the leading axis; the target is that it costs no more
  than 5% over the batched call (ratio >= 0.95).
- ``read``: the cheapest pass over the same inputs, ``jnp.sum(x, axis=-1)``
  (the sum of both for two inputs), forward only: how close jaxinfo is to
  reading its data once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import optax
import scipy.stats

import jaxinfo

#: Every mode the suite knows: "fwd" (the jitted function), "vg"
#: (``value_and_grad`` of its sum) and "grad" (``grad`` of its sum).
ALL_MODES = ("fwd", "vg", "grad")


@dataclasses.dataclass(frozen=True)
class Contender:
    """One way of computing a measure.

    Attributes:
      name: short label used in the table and the JSON ("jaxinfo", "naive", ...).
      fn: the function, taking the case's arrays in the case's order.
      backend: "jax" (jitted, value+grad and compiled memory measured) or
        "numpy" (host arrays, forward only).
      formula: the code, as printed in the README.
      modes: the modes it is timed in (where the case has them); a "numpy"
        contender is only ever timed forward.
    """

    name: str
    fn: Callable
    backend: str
    formula: str
    modes: tuple[str, ...] = ALL_MODES

    def runs_in(self, mode: str) -> bool:
        """Whether this contender is timed in ``mode``."""
        return mode in self.modes and (mode == "fwd" or self.backend == "jax")


@dataclasses.dataclass(frozen=True)
class Case:
    """A jaxinfo measure against its contenders.

    Attributes:
      measure: the jaxinfo function's name.
      inputs: ``(key, shape, dtype) -> tuple of arrays``, in the order every
        contender takes them.
      wrt: index of the argument the gradient is taken with respect to (the
        model, or ``p`` for the entropy).
      contenders: jaxinfo first, then the others.
      modes: the modes the case is measured in ("grad" only where a target
        needs it).
    """

    measure: str
    inputs: Callable
    wrt: int
    contenders: tuple[Contender, ...]
    modes: tuple[str, ...] = ("fwd", "vg")


@dataclasses.dataclass(frozen=True)
class Target:
    """A bound on ``time(jaxinfo) / time(other)`` (or on memory, see ``kind``).

    Exactly one of ``max_ratio`` (the ratio must be at most it: jaxinfo no
    slower than that) and ``min_ratio`` (at least it: the other no slower than
    ``1 / min_ratio`` times jaxinfo, as for the ``vmap`` contender) is set.
    Every measured shape and dtype must meet it; the worst figure is the
    largest ratio for a ``max_ratio``, the smallest for a ``min_ratio``.
    """

    measure: str
    mode: str  # "fwd", "vg" or "grad"
    other: str
    max_ratio: float | None = None
    min_ratio: float | None = None
    kind: str = "time"  # "time" or "temp" (compiled temporary bytes)

    def __post_init__(self):
        if (self.max_ratio is None) == (self.min_ratio is None):
            raise ValueError(f"a target needs exactly one of max_ratio and min_ratio: {self}")
        if self.kind not in ("time", "temp"):
            raise ValueError(f"kind is 'time' or 'temp', got {self.kind!r}")

    @property
    def bound(self) -> float:
        return self.max_ratio if self.min_ratio is None else self.min_ratio

    @property
    def relation(self) -> str:
        """``"<="`` for a ``max_ratio``, ``">="`` for a ``min_ratio``."""
        return "<=" if self.min_ratio is None else ">="

    def meets(self, value: float) -> bool:
        """Whether one figure meets the target (a NaN never does)."""
        if self.min_ratio is None:
            return value <= self.max_ratio
        return value >= self.min_ratio

    def worst(self, values):
        """The figure furthest on the wrong side: the largest, or the smallest."""
        return max(values) if self.min_ratio is None else min(values)


#: Temporary memory allowed above the naive formula's: per-row scalars (the
#: row totals of the normalisation, row maxima), 32 bytes a row, never a
#: full-size array.
MEMORY_SLACK_PER_ROW = 32


# --------------------------------------------------------------------------
# inputs: valid for every contender (no zeros, no -inf, labels in range)
# --------------------------------------------------------------------------


def _probs(key, shape, dtype):
    # Strictly positive and normalised in float32, then rounded to ``dtype``.
    x = jax.random.uniform(key, shape, jnp.float32, minval=0.05, maxval=1.0)
    return (x / jnp.sum(x, axis=-1, keepdims=True)).astype(dtype)


def _logits(key, shape, dtype):
    return (3.0 * jax.random.normal(key, shape, jnp.float32)).astype(dtype)


def _means(key, shape, dtype):
    return jax.random.normal(key, shape, jnp.float32).astype(dtype)


def _log_vars(key, shape, dtype):
    # a VAE encoder's log-variances: around 0, a few units either way
    return (0.5 * jax.random.normal(key, shape, jnp.float32)).astype(dtype)


def _vae_kl(m, lv):
    return -0.5 * jnp.sum(1 + lv - m * m - jnp.exp(lv), axis=-1)


def _one(make):
    return lambda key, shape, dtype: (make(key, shape, dtype),)


def _two(make_a, make_b):
    def inputs(key, shape, dtype):
        ka, kb = jax.random.split(key)
        return make_a(ka, shape, dtype), make_b(kb, shape, dtype)

    return inputs


def _labels_logits(key, shape, dtype):
    ky, kl = jax.random.split(key)
    labels = jax.random.randint(ky, shape[:-1], 0, shape[-1], dtype=jnp.int32)
    return labels, _logits(kl, shape, dtype)


def _normalised(p):
    return p / p.sum(-1, keepdims=True)


def _jax(name, fn, formula):
    return Contender(name, fn, "jax", formula)


def _vmap(fn, call):
    """jaxinfo's ``fn`` on one row (a 1-D array; a scalar label), mapped over rows.

    ``jax.vmap`` maps the leading axis of every argument, so the function sees
    one row per call, exactly as a user writing a per-example loss would.
    """

    def per_row(*row):
        return fn(*row)

    formula = f"jax.vmap(lambda {call}: jaxinfo.{fn.__name__}({call}))"
    return Contender("vmap", jax.vmap(per_row), "jax", formula)


def _read_one(x):
    return jnp.sum(x, axis=-1)


def _read_two(a, b):
    return jnp.sum(a, axis=-1) + jnp.sum(b, axis=-1)


def _read_labels(y, x):
    # The labels are one integer a row; what is read is the logits.
    return jnp.sum(x, axis=-1) + y.astype(x.dtype)


#: The read floor: forward only (its gradient is a constant, not a yardstick).
READ_ONE = Contender("read", _read_one, "jax", "jnp.sum(x, axis=-1)", modes=("fwd",))
READ_TWO = Contender(
    "read", _read_two, "jax", "jnp.sum(a, axis=-1) + jnp.sum(b, axis=-1)", modes=("fwd",)
)
READ_LABELS = Contender(
    "read", _read_labels, "jax", "jnp.sum(x, axis=-1) + y.astype(x.dtype)", modes=("fwd",)
)


# --------------------------------------------------------------------------
# the cases
# --------------------------------------------------------------------------

log_softmax = jax.nn.log_softmax
softmax = jax.nn.softmax

CASES: tuple[Case, ...] = (
    Case(
        "entropy",
        _one(_probs),
        0,
        (
            _jax("jaxinfo", jaxinfo.entropy, "jaxinfo.entropy(p)"),
            _jax("naive", lambda p: -(p * jnp.log(p)).sum(-1), "-(p * jnp.log(p)).sum(-1)"),
            _jax(
                "naive_normalised",
                lambda p: -(_normalised(p) * jnp.log(_normalised(p))).sum(-1),
                "p = p / p.sum(-1, keepdims=True); -(p * jnp.log(p)).sum(-1)",
            ),
            _jax("jax.scipy", lambda p: jsp.entr(p).sum(-1), "jax.scipy.special.entr(p).sum(-1)"),
            Contender(
                "scipy",
                lambda p: scipy.stats.entropy(p, axis=-1),
                "numpy",
                "scipy.stats.entropy(p, axis=-1)",
            ),
            _vmap(jaxinfo.entropy, "p"),
            READ_ONE,
        ),
        modes=("fwd", "vg", "grad"),
    ),
    Case(
        "cross_entropy",
        _two(_probs, _probs),
        1,
        (
            _jax("jaxinfo", jaxinfo.cross_entropy, "jaxinfo.cross_entropy(p, q)"),
            _jax("naive", lambda p, q: -(p * jnp.log(q)).sum(-1), "-(p * jnp.log(q)).sum(-1)"),
            _jax(
                "naive_normalised",
                lambda p, q: -(_normalised(p) * jnp.log(_normalised(q))).sum(-1),
                "the naive formula on p / p.sum(-1, keepdims=True), q / q.sum(...)",
            ),
            _jax(
                "jax.scipy",
                lambda p, q: -jsp.xlogy(p, q).sum(-1),
                "-jax.scipy.special.xlogy(p, q).sum(-1)",
            ),
            _vmap(jaxinfo.cross_entropy, "p, q"),
            READ_TWO,
        ),
    ),
    Case(
        "kl_divergence",
        _two(_probs, _probs),
        1,
        (
            _jax("jaxinfo", jaxinfo.kl_divergence, "jaxinfo.kl_divergence(p, q)"),
            _jax(
                "naive",
                lambda p, q: (p * jnp.log(p / q)).sum(-1),
                "(p * jnp.log(p / q)).sum(-1)",
            ),
            _jax(
                "naive_normalised",
                lambda p, q: (_normalised(p) * jnp.log(_normalised(p) / _normalised(q))).sum(-1),
                "the naive formula on p / p.sum(-1, keepdims=True), q / q.sum(...)",
            ),
            _jax(
                "jax.scipy",
                lambda p, q: jsp.rel_entr(p, q).sum(-1),
                "jax.scipy.special.rel_entr(p, q).sum(-1)",
            ),
            _jax(
                "optax",
                lambda p, q: optax.kl_divergence(jnp.log(q), p),
                "optax.kl_divergence(jnp.log(q), p)",
            ),
            Contender(
                "scipy",
                lambda p, q: scipy.stats.entropy(p, q, axis=-1),
                "numpy",
                "scipy.stats.entropy(p, q, axis=-1)",
            ),
            _vmap(jaxinfo.kl_divergence, "p, q"),
            READ_TWO,
        ),
    ),
    Case(
        "entropy_from_logits",
        _one(_logits),
        0,
        (
            _jax("jaxinfo", jaxinfo.entropy_from_logits, "jaxinfo.entropy_from_logits(x)"),
            _jax(
                "naive",
                lambda x: -(softmax(x) * log_softmax(x)).sum(-1),
                "-(softmax(x) * log_softmax(x)).sum(-1)",
            ),
            _vmap(jaxinfo.entropy_from_logits, "x"),
            READ_ONE,
        ),
    ),
    Case(
        "cross_entropy_from_logits",
        _two(_probs, _logits),
        1,
        (
            _jax(
                "jaxinfo",
                jaxinfo.cross_entropy_from_logits,
                "jaxinfo.cross_entropy_from_logits(p, x)",
            ),
            _jax(
                "naive",
                lambda p, x: -(p * log_softmax(x)).sum(-1),
                "-(p * log_softmax(x)).sum(-1)",
            ),
            _jax(
                "optax",
                lambda p, x: optax.softmax_cross_entropy(x, p),
                "optax.softmax_cross_entropy(x, p)",
            ),
            _vmap(jaxinfo.cross_entropy_from_logits, "p, x"),
            READ_TWO,
        ),
    ),
    Case(
        "kl_divergence_from_logits",
        _two(_logits, _logits),
        1,
        (
            _jax(
                "jaxinfo",
                jaxinfo.kl_divergence_from_logits,
                "jaxinfo.kl_divergence_from_logits(a, b)",
            ),
            _jax(
                "naive",
                lambda a, b: (softmax(a) * (log_softmax(a) - log_softmax(b))).sum(-1),
                "(softmax(a) * (log_softmax(a) - log_softmax(b))).sum(-1)",
            ),
            _jax(
                "optax",
                lambda a, b: optax.kl_divergence(log_softmax(b), softmax(a)),
                "optax.kl_divergence(log_softmax(b), softmax(a))",
            ),
            _jax(
                "optax_log_targets",
                lambda a, b: optax.losses.kl_divergence_with_log_targets(
                    log_softmax(b), log_softmax(a)
                ),
                "optax.losses.kl_divergence_with_log_targets(log_softmax(b), log_softmax(a))",
            ),
            _vmap(jaxinfo.kl_divergence_from_logits, "a, b"),
            READ_TWO,
        ),
    ),
    Case(
        "cross_entropy_from_labels",
        _labels_logits,
        1,
        (
            _jax(
                "jaxinfo",
                jaxinfo.cross_entropy_from_labels,
                "jaxinfo.cross_entropy_from_labels(y, x)",
            ),
            _jax(
                "naive",
                lambda y, x: -jnp.take_along_axis(log_softmax(x), y[..., None], -1)[..., 0],
                "-jnp.take_along_axis(log_softmax(x), y[..., None], -1)[..., 0]",
            ),
            _jax(
                "optax",
                lambda y, x: optax.softmax_cross_entropy_with_integer_labels(x, y),
                "optax.softmax_cross_entropy_with_integer_labels(x, y)",
            ),
            _vmap(jaxinfo.cross_entropy_from_labels, "y, x"),
            READ_LABELS,
        ),
    ),
    Case(
        "gaussian_kl_divergence",
        _two(_means, _log_vars),
        1,
        (
            _jax(
                "jaxinfo",
                jaxinfo.gaussian_kl_divergence,
                "jaxinfo.gaussian_kl_divergence(m, lv)",
            ),
            _jax("naive", _vae_kl, "-0.5 * jnp.sum(1 + lv - m * m - jnp.exp(lv), axis=-1)"),
            _vmap(jaxinfo.gaussian_kl_divergence, "m, lv"),
            READ_TWO,
        ),
    ),
)

CASES_BY_NAME = {case.measure: case for case in CASES}

# The time targets of the core redesign (issue 12), ratio = time(jaxinfo) /
# time(other) in every shape and dtype measured. They replace those of issue 4
# (1.10 against the naive formulas in both modes, 0.40 against jax.scipy, 0.05
# against SciPy, 1.00 for every logits loss against optax). "grad" is the
# gradient alone, measured for the entropy only.
_TIME_TARGETS = (
    Target("entropy", "fwd", "naive", 1.60),
    Target("entropy", "vg", "naive", 1.00),
    Target("entropy", "grad", "naive", 1.90),
    Target("entropy", "fwd", "jax.scipy", 0.75),
    Target("entropy", "fwd", "scipy", 0.06),
    Target("cross_entropy", "fwd", "naive", 1.60),
    Target("kl_divergence", "fwd", "naive", 1.60),
    Target("cross_entropy_from_logits", "fwd", "optax", 1.60),
    Target("cross_entropy_from_logits", "vg", "optax", 1.00),
    Target("kl_divergence_from_logits", "fwd", "optax", 1.00),
    Target("kl_divergence_from_logits", "vg", "optax", 1.00),
    Target("cross_entropy_from_labels", "fwd", "optax", 1.00),
    Target("cross_entropy_from_labels", "vg", "optax", 1.00),
    # issue 17: the VAE's KL term no slower than the formula written by hand
    Target("gaussian_kl_divergence", "fwd", "naive", 1.00),
    Target("gaussian_kl_divergence", "vg", "naive", 1.00),
)

#: The vmapped call within 5% of the batched one: time(jaxinfo) / time(vmap)
#: at least 1 / 1.05, rounded to 0.95.
VMAP_MIN_RATIO = 0.95
_VMAP_TARGETS = tuple(
    Target(case.measure, mode, "vmap", min_ratio=VMAP_MIN_RATIO)
    for case in CASES
    if any(c.name == "vmap" for c in case.contenders)
    for mode in ("fwd", "vg")
)

# Memory (issue 4, unchanged): never above the naive formula's, up to a few
# scalars per row (see MEMORY_SLACK_PER_ROW).
_MEMORY_TARGETS = tuple(
    Target(case.measure, mode, "naive", 1.0, kind="temp")
    for case in CASES
    for mode in ("fwd", "vg")
)
TARGETS: tuple[Target, ...] = _TIME_TARGETS + _VMAP_TARGETS + _MEMORY_TARGETS

"""What the suite measures: each jaxinfo measure, its contenders and the targets.

A :class:`Case` holds one jaxinfo function and the formulas a user would write
instead, all taking the same arrays in the same order (jaxinfo's: true
distribution first). Contenders are only ever run on inputs where they are
valid: strictly positive probabilities, finite logits, labels in range.
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


@dataclasses.dataclass(frozen=True)
class Contender:
    """One way of computing a measure.

    Attributes:
      name: short label used in the table and the JSON ("jaxinfo", "naive", ...).
      fn: the function, taking the case's arrays in the case's order.
      backend: "jax" (jitted, value+grad and compiled memory measured) or
        "numpy" (host arrays, forward only).
      formula: the code, as printed in the README.
    """

    name: str
    fn: Callable
    backend: str
    formula: str


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
    """

    measure: str
    inputs: Callable
    wrt: int
    contenders: tuple[Contender, ...]


@dataclasses.dataclass(frozen=True)
class Target:
    """``time(jaxinfo) / time(other) <= max_ratio`` (or memory, see ``kind``)."""

    measure: str
    mode: str  # "fwd" or "vg"
    other: str
    max_ratio: float
    kind: str = "time"  # "time" or "temp" (compiled temporary bytes)


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
        ),
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
        ),
    ),
)

CASES_BY_NAME = {case.measure: case for case in CASES}

# The targets of issue 4 (CPU). Memory: never above the naive formula's, up to
# a few scalars per row (see MEMORY_SLACK_PER_ROW).
_TIME_TARGETS = (
    Target("entropy", "fwd", "naive", 1.10),
    Target("entropy", "vg", "naive", 1.10),
    Target("entropy", "fwd", "jax.scipy", 0.40),
    Target("entropy", "fwd", "scipy", 0.05),
    Target("cross_entropy_from_labels", "vg", "optax", 1.00),
    Target("cross_entropy_from_logits", "fwd", "optax", 1.00),
    Target("cross_entropy_from_logits", "vg", "optax", 1.00),
    Target("kl_divergence_from_logits", "fwd", "optax", 1.00),
    Target("kl_divergence_from_logits", "vg", "optax", 1.00),
    Target("kl_divergence", "fwd", "naive", 1.10),
    Target("kl_divergence", "vg", "naive", 1.10),
    Target("cross_entropy", "fwd", "naive", 1.10),
    Target("cross_entropy", "vg", "naive", 1.10),
)
_MEMORY_TARGETS = tuple(
    Target(case.measure, mode, "naive", 1.0, kind="temp")
    for case in CASES
    for mode in ("fwd", "vg")
)
TARGETS: tuple[Target, ...] = _TIME_TARGETS + _MEMORY_TARGETS

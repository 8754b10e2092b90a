r"""Reducing a per-position loss to one number, over the positions that count.

A language model's loss is a mean over its real tokens, not over the padding
that fills a batch to a rectangle. The losses that take labels
(:func:`~jaxinfo.cross_entropy_from_labels`, :func:`~jaxinfo.linear_cross_entropy`)
return 0 at an ignored position (label < 0), so ``loss.mean()`` counts each
pad as a perfect prediction and reports too small a loss. ``reduction="mean"``
divides by the number of positions that count instead:

.. math::
   \bar\ell = \frac{\sum_i w_i \ell_i}{\sum_i w_i}, \qquad
   w_i = [y_i \ge 0], \qquad \bar\ell = 0 \text{ if } \sum_i w_i = 0

The weights are general (any non-negative reals), so that per-position
weights can reuse the same reduction.
"""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp

from jaxinfo._checks import Array

Reduction = Literal["none", "sum", "mean"]
REDUCTIONS: tuple[str, ...] = ("none", "sum", "mean")


def check_reduction(reduction: object) -> None:
    """Checks ``reduction`` before anything is traced."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        allowed = ", ".join(repr(r) for r in REDUCTIONS)
        raise ValueError(f"reduction must be one of {allowed}, got {reduction!r}.")


def reduce_positions(loss: Array, weights: Array, reduction: str) -> Array:
    r"""``loss`` itself, ``Σ w ℓ`` or ``Σ w ℓ / Σ w`` over every position.

    Args:
      loss: the per-position loss (float).
      weights: shaped like ``loss``: a boolean mask of the positions that
        count, or non-negative real weights.
      reduction: ``"none"``, ``"sum"`` or ``"mean"`` (checked by
        :func:`check_reduction`).

    Returns:
      ``loss`` for ``"none"``; otherwise a scalar of ``loss``'s dtype. A
      position of weight 0 contributes exactly 0 to the value and to every
      gradient, even where its loss is ``inf`` or NaN; the mean of a batch
      with no weight is 0, and its gradient is 0.
    """
    if reduction == "none":
        return loss
    counts = weights if weights.dtype == jnp.bool_ else weights != 0
    # Double where: the loss of a position that does not count is replaced
    # before the product, so neither it nor its weight sees 0 * inf.
    safe = jnp.where(counts, loss, jnp.zeros_like(loss))
    total = jnp.sum(safe * weights.astype(loss.dtype))
    if reduction == "sum":
        return total
    if weights.dtype == jnp.bool_:
        # an exact count (a float32 sum of ones stops counting at 2**24)
        norm = jnp.sum(weights, dtype=jnp.int32).astype(loss.dtype)
    else:
        norm = jnp.sum(weights.astype(loss.dtype))
    nonzero = norm > 0
    return jnp.where(nonzero, total / jnp.where(nonzero, norm, jnp.ones_like(norm)), 0)


def weighted(value: Array, weights: Array) -> Array:
    """``weights · value``, exactly 0 (value and gradient) where the weight is 0."""
    counts = weights != 0
    safe = jnp.where(counts, value, jnp.zeros_like(value))
    return safe * weights.astype(value.dtype)

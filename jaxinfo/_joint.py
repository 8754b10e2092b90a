"""Measures of a pair of variables: joint and conditional entropy, mutual information.

A joint distribution ``P(X, Y)`` is an array whose last two axes hold the
outcomes of ``X`` (axis -2) and ``Y`` (axis -1); any leading axes are a batch.
Tables are normalised over the last two axes (as the single-variable measures
normalise along ``axis``), so counts work as well as probabilities, and a table
with no mass measures 0.

Cells with probability zero are common in joint tables (a noiseless channel, a
sparse contingency table); they contribute 0 and their gradients stay finite.

These measures take no ``axis``: ``X`` and ``Y`` are one axis each. A variable
spread over several axes is flattened first (``x.reshape(...)``); and the joint
entropy alone is ``entropy(pxy, axis=(-2, -1))``, as the single-variable measures
take a tuple of axes as one flattened outcome axis.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxinfo._checks import Array, ArrayLike, as_float_array
from jaxinfo._range import normalise, safe_total
from jaxinfo._shannon import entropy
from jaxinfo._units import check_base, to_unit
from jaxinfo._xlogy import clamped_log


def _as_joint(pxy: ArrayLike) -> Array:
    """Checks a joint table (at least two axes) and returns it as a float array."""
    pxy = as_float_array(pxy, "pxy")
    if pxy.ndim < 2:
        raise ValueError(
            "pxy must have at least two dimensions (X on axis -2, Y on axis -1), "
            f"got shape {pxy.shape}."
        )
    return pxy


def _normalised_joint(pxy: ArrayLike) -> tuple[Array, Array, Array]:
    """The normalised table and its marginals ``p(x)`` (axis -1 kept), ``p(y)`` (axis -2 kept).

    Marginals that are 0 are returned as 1: they are only ever divided into
    cells of the same row or column, which are then 0 too.
    """
    pxy = _as_joint(pxy)
    pxy = normalise(pxy, (-2, -1))
    return pxy, safe_total(pxy, -1), safe_total(pxy, -2)


def _sum_cells(x: Array) -> Array:
    return jnp.sum(x, axis=(-2, -1))


def joint_entropy(pxy: ArrayLike, *, base: ArrayLike | None = None) -> Array:
    r"""Joint entropy ``H(X, Y)`` of a joint distribution table.

    .. math::
       H(X, Y) = -\sum_{x, y} p(x, y) \log p(x, y)

    The entropy of the pair, taken as one variable with ``|X|·|Y|`` outcomes.

    Args:
      pxy: joint probabilities (or counts), ``X`` on axis -2 and ``Y`` on axis
        -1, normalised over those two axes; leading axes are a batch.
      base: logarithm base; ``None`` for nats, ``2`` for bits.

    Returns:
      ``H(X, Y)``, with the last two axes reduced; 0 for a table with no mass.

    Examples:
      Two fair, independent bits carry two bits together:

      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.joint_entropy(jnp.full((2, 2), 0.25), base=2)
      Array(2., dtype=float32)
    """
    check_base(base)
    pxy = _as_joint(pxy)
    flat = pxy.reshape((*pxy.shape[:-2], pxy.shape[-2] * pxy.shape[-1]))
    return entropy(flat, base=base)


def conditional_entropy(pxy: ArrayLike, *, base: ArrayLike | None = None) -> Array:
    r"""Conditional entropy ``H(Y | X)`` of a joint distribution table.

    .. math::
       H(Y \mid X) = -\sum_{x, y} p(x, y) \log \frac{p(x, y)}{p(x)} = H(X, Y) - H(X)

    What remains uncertain about ``Y`` once ``X`` is known, on average over
    ``X``. Rows with ``p(x) = 0`` contribute nothing.

    Args:
      pxy: joint probabilities (or counts) with ``X`` (the conditioning
        variable) on axis -2 and ``Y`` on axis -1; leading axes are a batch.
      base: logarithm base; ``None`` for nats, ``2`` for bits.

    Returns:
      ``H(Y | X)`` in ``[0, log |Y|]``, rounding included, with the last two axes reduced. For
      ``H(X | Y)`` pass the transposed table, ``jnp.swapaxes(pxy, -1, -2)``.

    Examples:
      ``Y`` is a fair coin independent of ``X``, then a copy of ``X``:

      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.conditional_entropy(jnp.full((2, 2), 0.25), base=2)
      Array(1., dtype=float32)
      >>> jaxinfo.conditional_entropy(jnp.eye(2) / 2, base=2)
      Array(0., dtype=float32)
    """
    check_base(base)
    pxy, px, _ = _normalised_joint(pxy)
    # log p(y|x) as log p(x,y) - log p(x), not as the log of the ratio: the
    # ratio's derivative in p(x) is p(x,y) / p(x)**2, which underflows to 0 and
    # turns the gradient into NaN once p(x) < 1e-19 (float32). Still exactly 0
    # for a deterministic Y (p(x,y) = p(x)). The clamped log makes zero cells 0
    # with the large finite slope of xlogx.
    h = 0 - _sum_cells(pxy * (clamped_log(pxy) - clamped_log(px)))
    return to_unit(h, base, log_of=pxy.shape[-1])


def mutual_information(pxy: ArrayLike, *, base: ArrayLike | None = None) -> Array:
    r"""Mutual information ``I(X; Y)`` of a joint distribution table.

    .. math::
       I(X; Y) = \sum_{x, y} p(x, y) \log \frac{p(x, y)}{p(x)\, p(y)}
               = D\big(P_{XY} \,\|\, P_X \otimes P_Y\big)
               = H(X) + H(Y) - H(X, Y)

    How much knowing one variable tells about the other: 0 exactly when they
    are independent, ``min(H(X), H(Y))`` when one determines the other.

    Args:
      pxy: joint probabilities (or counts), ``X`` on axis -2 and ``Y`` on axis
        -1, normalised over those two axes; leading axes are a batch.
      base: logarithm base; ``None`` for nats, ``2`` for bits.

    Returns:
      ``I(X; Y)`` in ``[0, log min(|X|, |Y|)]``, rounding included, with the last
      two axes reduced.

    Examples:
      A noiseless binary channel transmits one bit, a binary symmetric channel
      that flips 11% of the bits about half a bit:

      >>> import jax.numpy as jnp, jaxinfo
      >>> jaxinfo.mutual_information(jnp.eye(2) / 2, base=2)
      Array(1., dtype=float32)
      >>> eps = 0.11
      >>> pxy = jnp.array([[1 - eps, eps], [eps, 1 - eps]]) / 2
      >>> jaxinfo.mutual_information(pxy, base=2)
      Array(0.5001, dtype=float32)
    """
    check_base(base)
    pxy, px, py = _normalised_joint(pxy)
    # A sum of logarithms, not the log of p(x,y) / (p(x) p(y)): the product
    # p(x) p(y) can underflow, and the ratio's derivatives square the marginals
    # (NaN gradients once a marginal is below 1e-19 in float32).
    log_ratio = clamped_log(pxy) - clamped_log(px) - clamped_log(py)
    mi = _sum_cells(pxy * log_ratio)
    return to_unit(mi, base, log_of=min(pxy.shape[-2:]))

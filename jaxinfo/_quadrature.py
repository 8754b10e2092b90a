"""Fixed Gauss–Legendre rules, for integrals computed with the same nodes on every call.

A fixed rule traces to a few array operations (no adaptive loop), so the
integrals built on it run under ``jit`` and ``vmap`` and cost the same for
every row of a batch.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def gauss_legendre(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``m``-point Gauss–Legendre rule on ``[0, 1]``, float64."""
    nodes, weights = np.polynomial.legendre.leggauss(m)
    return (nodes + 1) / 2, weights / 2

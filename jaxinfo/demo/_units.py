"""Units of the tables and the plot: names, nats to units, float32 resolution (no printing)."""

from __future__ import annotations

import math

import numpy as np


def _unit_name(base: float | None) -> str:
    if base is None:
        return "nats"
    if base == 2:
        return "bits"
    if base == 10:
        return "hartleys"
    return f"log-{base:g} units"


def _to_unit(nats, base: float | None):
    return np.asarray(nats, dtype=np.float64) / (1.0 if base is None else math.log(base))


def _float32_resolution(entropy_nats: float) -> float:
    """About the smallest KL that float32 resolves: eps * (1 + H(P)), in nats."""
    return float(np.finfo(np.float32).eps) * (1.0 + entropy_nats)

"""_run_fit, the chunked fit the command line reports from, and its _Trace (no printing)."""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import jax
import numpy as np

from jaxinfo.demo._fit import _measures_jit, _prepare, _programs, _softmax_and_entropy


def _row_steps(steps: int) -> list[int]:
    """The steps at which the progress table prints a row (about ten, then the last)."""
    every = max(1, math.ceil(steps / 10))
    return [*range(every, steps, every), steps]


class _Trace(NamedTuple):
    label: str
    steps: np.ndarray  # 0..steps
    cross_entropy: np.ndarray  # (B, steps + 1), nats
    kl_divergence: np.ndarray  # (B, steps + 1), nats
    entropy: np.ndarray  # (B,), nats
    q: np.ndarray  # (B, K)
    seconds: float  # fitting time, compile excluded
    compile_seconds: float


def _run_fit(p, optimizer, steps, on_rows) -> _Trace:
    """Runs a fit chunk by chunk (the same jitted scan as fit), reporting as it goes.

    ``on_rows(step, ce, kl)`` receives the measures of every row of the batch
    after each chunk (and at step 0). Each distinct chunk length is compiled
    ahead of time, so ``seconds`` is the fitting time alone.
    """
    problem = _prepare(p, None)
    init, run = _programs(optimizer)
    t0 = time.perf_counter()
    carry = jax.block_until_ready(init(problem.logits))
    ends = _row_steps(steps)
    lengths = sorted({b - a for a, b in zip([0, *ends[:-1]], ends, strict=True)})
    compiled = {n: run.lower(n, problem.p, carry).compile() for n in lengths}
    compile_seconds = time.perf_counter() - t0

    ce0, kl0 = (np.asarray(x) for x in _measures_jit(problem.p, problem.logits))
    _, entropy = (np.asarray(x) for x in _softmax_and_entropy(problem.logits, problem.p))
    on_rows(0, ce0, kl0, entropy)
    ce_hist, kl_hist = [ce0[:, None]], [kl0[:, None]]
    seconds, done = 0.0, 0
    for end in ends:
        t = time.perf_counter()
        carry, (ce, kl) = compiled[end - done](problem.p, carry)
        jax.block_until_ready(carry)
        seconds += time.perf_counter() - t
        ce, kl = np.asarray(ce), np.asarray(kl)
        ce_hist.append(ce)
        kl_hist.append(kl)
        on_rows(end, ce[:, -1], kl[:, -1], entropy)
        done = end
    return _Trace(
        label="",
        steps=np.arange(steps + 1),
        cross_entropy=np.concatenate(ce_hist, axis=1),
        kl_divergence=np.concatenate(kl_hist, axis=1),
        entropy=entropy,
        q=np.asarray(_softmax_and_entropy(carry[0], problem.p)[0]),
        seconds=seconds,
        compile_seconds=compile_seconds,
    )

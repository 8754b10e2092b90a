"""Time the family's measures of two rows in the three modes of differentiation.

    python -m benchmarks.family_modes [--rows 4096] [--classes 512] [--repeats 9]

Prints the median time (ms) of the jitted value, ``jax.grad`` of its sum (in
``p`` and ``q``) and ``jax.jvp`` (along random tangents of both) for
``js_divergence`` and ``renyi_divergence`` (orders 0.5 and 2), float32,
Dirichlet rows. These measures have derivative rules of their own
(``jaxinfo._range.jvp_at_scaled_rows``) and no case in ``benchmarks.run``:
run this in two checkouts, one after the other and again, to compare a
change to them. Absolute times, so only comparable on one machine at one time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp

import jaxinfo

MEASURES = {
    "js_divergence": jaxinfo.js_divergence,
    "renyi_divergence(0.5)": lambda p, q: jaxinfo.renyi_divergence(p, q, jnp.float32(0.5)),
    "renyi_divergence(2)": lambda p, q: jaxinfo.renyi_divergence(p, q, jnp.float32(2.0)),
}


def _median_ms(fn, args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile and warm up, untimed
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    shape = (args.rows, args.classes)
    alpha = jnp.ones(args.classes)
    p = jax.random.dirichlet(keys[0], alpha, shape[:1])
    q = jax.random.dirichlet(keys[1], alpha, shape[:1])
    dp, dq = jax.random.normal(keys[2], shape), jax.random.normal(keys[3], shape)
    print(f"{args.rows} x {args.classes} float32, median of {args.repeats} (ms)")
    print(f"{'measure':<24}{'value':>9}{'grad':>9}{'jvp':>9}")
    for name, measure in MEASURES.items():

        def total(p, q, measure=measure):
            return jnp.sum(measure(p, q))

        modes = (
            jax.jit(measure),
            jax.jit(jax.grad(total, argnums=(0, 1))),
            jax.jit(lambda p, q, total=total: jax.jvp(total, (p, q), (dp, dq))[1]),
        )
        row = [_median_ms(fn, (p, q), args.repeats) for fn in modes]
        print(f"{name:<24}" + "".join(f"{t:9.1f}" for t in row))


if __name__ == "__main__":
    main()

"""Memory and speed of ``linear_cross_entropy`` against the materialised logits.

    python benchmarks/linear_ce.py            # memory, accuracy and the speed ratio
    python benchmarks/linear_ce.py --large    # also a shape where the logits are 2 GiB

Memory: ``temp_size_in_bytes`` of the compiled ``value_and_grad`` program at the
Gemma-2 shape (N=8192 tokens, D=2304, V=262144), lowered from shapes alone
(nothing is allocated), for the fused loss and for
``cross_entropy_from_labels(labels, x @ w)``.

Speed: value and gradients (dx, dw) of the mean loss, both versions compiled in
one process and timed in alternation; the figure is the median over rounds of
the per-round ratio fused / materialised, in wall-clock time and in this
process's CPU time (the latter is less disturbed by other programs sharing the
machine).
"""

from __future__ import annotations

import argparse
import itertools
import pathlib
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

# Measure this checkout's jaxinfo, whichever copy is installed.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import jaxinfo

MiB = 2**20


def fused(x, w, labels):
    return jnp.mean(jaxinfo.linear_cross_entropy(x, w, labels))


def materialised(x, w, labels):
    return jnp.mean(jaxinfo.cross_entropy_from_labels(labels, x @ w))


def value_and_grad(loss):
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def compiled_temp_bytes(loss, n, d, v, dtype):
    shapes = (
        jax.ShapeDtypeStruct((n, d), dtype),
        jax.ShapeDtypeStruct((d, v), dtype),
        jax.ShapeDtypeStruct((n,), jnp.int32),
    )
    compiled = value_and_grad(loss).lower(*shapes).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def memory_report(n=8192, d=2304, v=262144):
    print(f"compiled temp memory of value_and_grad, N={n} D={d} V={v} (target <= 512 MiB)")
    for dtype in (jnp.float32, jnp.bfloat16):
        for name, loss in (("fused", fused), ("materialised", materialised)):
            temp = compiled_temp_bytes(loss, n, d, v, dtype)
            print(f"  {jnp.dtype(dtype).name:9s} {name:13s} {temp / MiB:10.1f} MiB")


def inputs(n, d, v, dtype=jnp.float32, seed=0):
    kx, kw, ky = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(kx, (n, d), dtype)
    w = (jax.random.normal(kw, (d, v), jnp.float32) / d**0.5).astype(dtype)
    labels = jax.random.randint(ky, (n,), 0, v)
    return x, w, labels


def timed(fn, args):
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - wall, time.process_time() - cpu


def speed_report(n, d, v, rounds, dtype=jnp.float32):
    args = inputs(n, d, v, dtype)
    f, m = value_and_grad(fused), value_and_grad(materialised)
    (vf, gf), (vm, gm) = f(*args), m(*args)  # compile, warm up, and check agreement
    rel = [
        float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))) for a, b in zip(gf, gm, strict=True)
    ]
    ratios_wall, ratios_cpu, walls_f, walls_m = [], [], [], []
    for _ in range(rounds):
        wf, cf = timed(f, args)
        wm, cm = timed(m, args)
        ratios_wall.append(wf / wm)
        ratios_cpu.append(cf / cm)
        walls_f.append(wf)
        walls_m.append(wm)
    print(f"value+grad, N={n} D={d} V={v} {jnp.dtype(dtype).name}, {rounds} rounds interleaved")
    print(f"  fused        median {statistics.median(walls_f):8.3f} s")
    print(f"  materialised median {statistics.median(walls_m):8.3f} s")
    print(
        f"  ratio fused/materialised: median {statistics.median(ratios_wall):.3f} wall "
        f"(min {min(ratios_wall):.3f}, max {max(ratios_wall):.3f}), "
        f"{statistics.median(ratios_cpu):.3f} CPU time"
    )
    print(
        f"  agreement: |loss diff| {abs(float(vf - vm)):.2e}, "
        f"grad rel. diff dx {rel[0]:.1e}, dw {rel[1]:.1e}"
    )


def accuracy_report(n=1024, d=256, v=32000):
    """Loss, dx and dw of the mean loss against float64 NumPy on the same inputs."""
    print(f"accuracy against float64, N={n} D={d} V={v} (max |error| / max |reference|)")
    for dtype, (name, loss_fn) in itertools.product(
        (jnp.float32, jnp.bfloat16), (("fused", fused), ("materialised", materialised))
    ):
        x, w, labels = inputs(n, d, v, dtype, seed=1)
        loss, (dx, dw) = value_and_grad(loss_fn)(x, w, labels)
        x64, w64, y = np.asarray(x, np.float64), np.asarray(w, np.float64), np.asarray(labels)
        logits = x64 @ w64
        m = logits.max(axis=1, keepdims=True)
        log_z = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
        ref_loss = np.mean(log_z - logits[np.arange(n), y])
        g = np.exp(logits - log_z[:, None])
        g[np.arange(n), y] -= 1.0
        g /= n
        errors = [
            abs(float(loss) - ref_loss) / abs(ref_loss),
            *(
                np.max(np.abs(np.asarray(a, np.float64) - r)) / np.max(np.abs(r))
                for a, r in ((dx, g @ w64.T), (dw, x64.T @ g))
            ),
        ]
        print(
            f"  {jnp.dtype(dtype).name:9s} {name:13s} loss {errors[0]:.1e}  dx {errors[1]:.1e}  "
            f"dw {errors[2]:.1e}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per shape")
    parser.add_argument("--large", action="store_true", help="also N=8192 D=256 V=65536")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {jax.device_count()} device(s)")
    if not args.skip_memory:
        memory_report()
    accuracy_report()
    speed_report(2048, 512, 32768, args.rounds)
    if args.large:
        # Logits of 2 GiB in float32: the materialised program holds several
        # arrays of that size; the fused one a few tens of MiB.
        n, d, v = 8192, 256, 65536
        print(f"compiled temp memory of value_and_grad, N={n} D={d} V={v} float32")
        for name, loss in (("fused", fused), ("materialised", materialised)):
            temp = compiled_temp_bytes(loss, n, d, v, jnp.float32)
            print(f"  {name:13s} {temp / MiB:10.1f} MiB")
        speed_report(n, d, v, max(3, args.rounds // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

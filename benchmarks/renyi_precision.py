"""Precision of the Rényi measures in float32 around alpha = 1, value and d/dalpha.

    python benchmarks/renyi_precision.py

Compares jaxinfo.renyi_entropy and jaxinfo.renyi_divergence (float32) with a
50-digit reference computed with the standard library's ``decimal`` from the
same float32 inputs, and with the textbook formula
``log(sum(p**alpha * q**(1 - alpha))) / (alpha - 1)`` differentiated by JAX in
float32, which is what one writes without special care. The reference slope
is ``d/dalpha D_alpha(P‖Q) = D(R_alpha‖P) / (alpha - 1)**2`` with the escort
``R_alpha ∝ p**alpha q**(1 - alpha)``, and ``Var_P[log(p/q)] / 2`` at 1;
``H_alpha(P) = log n - D_alpha(P‖uniform)``.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

import jax
import jax.numpy as jnp
import numpy as np

import jaxinfo

decimal.getcontext().prec = 50

P = np.array([0.5, 0.2, 0.15, 0.1, 0.05], dtype=np.float32)
Q = np.array([0.1, 0.3, 0.2, 0.2, 0.2], dtype=np.float32)
ALPHAS = [0.0, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999, 1.0, 1.00001, 1.0001, 1.001, 1.01]
ALPHAS += [1.1, 1.5, 2.0, 5.0]


def _exact(p, q, alpha):
    """D_alpha(P‖Q) and its derivative in alpha, to 50 digits (Decimal)."""
    p = [Decimal(float(x)) for x in p]
    q = [Decimal(float(x)) for x in q]
    p = [x / sum(p) for x in p]
    q = [x / sum(q) for x in q]
    lr = [(a / b).ln() for a, b in zip(p, q, strict=True)]
    a = Decimal(float(np.float32(alpha)))  # the order the float32 code receives
    if a == 1:
        mean = sum(w * x for w, x in zip(p, lr, strict=True))
        var = sum(w * (x - mean) ** 2 for w, x in zip(p, lr, strict=True))
        return mean, var / 2
    t = a - 1
    terms = [w * (t * x).exp() for w, x in zip(p, lr, strict=True)]
    s = sum(terms)
    d = s.ln() / t
    r = [x / s for x in terms]
    kl = sum(ri * (ri / pi).ln() for ri, pi in zip(r, p, strict=True))
    return d, kl / t**2


def _naive_divergence(p, q, alpha):
    return jnp.log(jnp.sum(p**alpha * q ** (1 - alpha))) / (alpha - 1)


def main() -> None:
    p, q = jnp.asarray(P), jnp.asarray(Q)
    uniform = np.full(P.size, 1 / P.size, dtype=np.float32)
    log_n = Decimal(P.size).ln()
    ent = jax.jit(jax.value_and_grad(jaxinfo.renyi_entropy, argnums=1))
    div = jax.jit(jax.value_and_grad(jaxinfo.renyi_divergence, argnums=2))
    naive = jax.jit(jax.value_and_grad(_naive_divergence, argnums=2))
    worst = {"entropy": [0.0, 0.0], "divergence": [0.0, 0.0], "naive divergence": [0.0, 0.0]}

    def rel(got, want):
        error = abs(Decimal(float(got)) - want)
        return error / abs(want) if want else error  # absolute where the value is 0

    print(
        f"{'alpha':>8s} {'rel. error H':>13s} {'dH/dalpha':>10s} {'D':>10s} {'dD/dalpha':>10s}"
        f" {'naive D':>10s} {'naive dD':>10s}"
    )
    for alpha in ALPHAS:
        a = jnp.float32(alpha)
        d_u, slope_u = _exact(P, uniform, alpha)
        h_exact, dh_exact = log_n - d_u, -slope_u
        d_exact, dd_exact = _exact(P, Q, alpha)
        h, dh = ent(p, a)
        d, dd = div(p, q, a)
        row = {
            "entropy": (rel(h, h_exact), rel(dh, dh_exact)),
            "divergence": (rel(d, d_exact), rel(dd, dd_exact)),
        }
        if alpha != 1:
            nd, ndd = naive(p, q, a)
            row["naive divergence"] = (rel(nd, d_exact), rel(ndd, dd_exact))
        for key, (ev, eg) in row.items():
            worst[key][0] = max(worst[key][0], float(ev))
            worst[key][1] = max(worst[key][1], float(eg))
        cells = [f"{float(e):10.1e}" for pair in row.values() for e in pair]
        if len(cells) == 4:
            cells += [f"{'0/0':>10s}"] * 2
        print(f"{alpha:8g} {cells[0]:>13s} " + " ".join(cells[1:]))
    print("\nworst relative error over the grid (value, d/dalpha):")
    for key, (ev, eg) in worst.items():
        print(f"  {key:17s} {ev:.1e}  {eg:.1e}")


if __name__ == "__main__":
    main()

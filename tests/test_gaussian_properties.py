"""Properties of the measures of issue 17 over their stated ranges, hypothesis-driven.

Gaussian KL with log-variances in ±80, full-covariance KL on random Cholesky
factors, Bernoulli measures on logits in ±1e4, and the k1/k2/k3 estimates on
log-ratios in ±1e4: no NaN in any value or gradient, never negative where the
measure is not, exactly 0 for equal arguments. A few fixed shapes, so that
each jitted function compiles once (the profiles are in ``tests/conftest.py``).
"""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import jaxinfo

SHAPE = (3, 4)
D = 3


def _floats(lo, hi):
    return hnp.arrays(
        np.float32, SHAPE, elements=st.floats(lo, hi, width=32, allow_subnormal=False)
    )


def _no_nan(*arrays):
    for a in arrays:
        assert not np.any(np.isnan(np.asarray(a)))


def _sum_of(f):
    return lambda *a: jnp.sum(f(*a))


diag_kl = jax.jit(jaxinfo.gaussian_kl_divergence)
diag_kl_grads = jax.jit(jax.grad(_sum_of(jaxinfo.gaussian_kl_divergence), argnums=(0, 1, 2, 3)))
full_kl = jax.jit(jaxinfo.gaussian_kl_divergence_full)
full_kl_grads = jax.jit(
    jax.grad(_sum_of(jaxinfo.gaussian_kl_divergence_full), argnums=(0, 1, 2, 3))
)
bce = jax.jit(jaxinfo.binary_cross_entropy_from_logits)
bce_grads = jax.jit(jax.grad(_sum_of(jaxinfo.binary_cross_entropy_from_logits), argnums=(0, 1)))
bkl = jax.jit(jaxinfo.binary_kl_divergence_from_logits)
bkl_grads = jax.jit(jax.grad(_sum_of(jaxinfo.binary_kl_divergence_from_logits), argnums=(0, 1)))
k3 = jax.jit(lambda lp, lq: jaxinfo.kl_estimate(lp, lq, axis=-1))
k3_grads = jax.jit(jax.grad(lambda lp, lq: jaxinfo.kl_estimate(lp, lq), argnums=(0, 1)))


@given(_floats(-1e3, 1e3), _floats(-80, 80), _floats(-1e3, 1e3), _floats(-80, 80))
def test_diagonal_kl_is_nan_free_non_negative_and_zero_on_equal_arguments(mp, lvp, mq, lvq):
    kl = np.asarray(diag_kl(mp, lvp, mq, lvq))
    _no_nan(kl, *diag_kl_grads(mp, lvp, mq, lvq))
    assert np.all(kl >= 0)
    # float64 reference, finite wherever float32 can hold it
    m, lv, n, lw = (np.asarray(a, np.float64) for a in (mp, lvp, mq, lvq))
    want = 0.5 * np.sum(np.expm1(lv - lw) - (lv - lw) + (m - n) ** 2 * np.exp(-lw), -1)
    fits = want < 1e38
    np.testing.assert_allclose(kl[fits], want[fits], rtol=1e-5, atol=1e-5)
    assert np.all(np.isinf(kl[want > 3.5e38]))  # inf only beyond the float32 range
    assert np.all(np.asarray(diag_kl(mp, lvp, mp, lvp)) == 0)
    for g in diag_kl_grads(mp, lvp, mp, lvp):
        assert np.all(np.asarray(g) == 0)


def _tril(diag_logs, off):
    return jnp.tril(off, -1) + jax.vmap(jnp.diag)(jnp.exp(diag_logs))


@given(
    hnp.arrays(np.float32, (2, D), elements=st.floats(-5, 5, width=32)),
    hnp.arrays(np.float32, (2, D, D), elements=st.floats(-3, 3, width=32)),
    hnp.arrays(np.float32, (2, D), elements=st.floats(-5, 5, width=32)),
    hnp.arrays(np.float32, (2, D), elements=st.floats(-10, 10, width=32)),
)
def test_full_kl_is_nan_free_non_negative_and_matches_float64(logs_p, off, logs_q, means):
    lp, lq = _tril(logs_p, off), _tril(logs_q, off[::-1])
    mp, mq = means, means[::-1]
    kl = np.asarray(full_kl(mp, lp, mq, lq))
    _no_nan(kl, *full_kl_grads(mp, lp, mq, lq))
    assert np.all(kl >= 0)
    a, b = np.asarray(lp, np.float64), np.asarray(lq, np.float64)
    m, n = np.asarray(mp, np.float64), np.asarray(mq, np.float64)
    sq_inv_sp = np.linalg.solve(b @ b.swapaxes(-1, -2), a @ a.swapaxes(-1, -2))
    y = np.linalg.solve(b, (n - m)[..., None])[..., 0]
    r = 2 * (np.log(np.abs(np.diagonal(a, 0, -2, -1))) - np.log(np.abs(np.diagonal(b, 0, -2, -1))))
    want = 0.5 * (np.trace(sq_inv_sp, 0, -2, -1) + np.sum(y * y, -1) - D - np.sum(r, -1))
    assert np.all(np.abs(kl - want) <= 2e-3 * (1 + np.abs(want))), (kl, want)
    assert np.all(np.asarray(full_kl(mp, lp, mp, lp)) == 0)


@given(_floats(0, 1), _floats(-1e4, 1e4), _floats(-1e4, 1e4))
def test_bernoulli_measures_are_nan_free_on_logits_of_1e4(p, a, b):
    ce = np.asarray(bce(p, a))
    kl = np.asarray(bkl(a, b))
    _no_nan(ce, kl, *bce_grads(p, a), *bkl_grads(a, b))
    assert np.all(np.isfinite(ce)) and np.all(ce >= 0)
    assert np.all(np.isfinite(kl)) and np.all(kl >= 0)
    # the cross-entropy is the KL plus the target's entropy (p = sigmoid(a))
    pa = jax.nn.sigmoid(a)
    ce_pa = np.asarray(bce(pa, b))
    want = kl + np.asarray(jaxinfo.binary_entropy(pa))
    assert np.all(np.abs(ce_pa - want) <= 1e-4 * (1 + np.abs(want))), (ce_pa, want)
    assert np.all(np.asarray(bkl(a, a)) == 0)


@given(_floats(-1e4, 1e4), _floats(-1e4, 1e4))
def test_k3_is_never_negative_and_nan_free(log_p, log_q):
    est = np.asarray(k3(log_p, log_q))
    _no_nan(est, *k3_grads(log_p, log_q))
    assert np.all(est >= 0)
    d = np.asarray(log_q, np.float64) - np.asarray(log_p, np.float64)
    assert np.all(np.isfinite(est[np.all(d < 88, axis=-1)]))
    assert float(k3(log_p, log_p).sum()) == 0

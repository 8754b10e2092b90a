"""Tests of the Bernoulli measures from logits: binary cross-entropy and KL."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxinfo

bce = jax.jit(jaxinfo.binary_cross_entropy_from_logits)
bkl = jax.jit(jaxinfo.binary_kl_divergence_from_logits)
ce_from_logits = jax.jit(jaxinfo.cross_entropy_from_logits)
kl_from_logits = jax.jit(jaxinfo.kl_divergence_from_logits)

N = 64
BIG = np.array([-1e4, -100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0, 1e4])


def _targets_logits(seed=0, scale=4.0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=N)
    p[:4] = [0.0, 1.0, 0.0, 1.0]
    return p, rng.normal(size=N) * scale


def _log_sigmoid64(x):
    return -np.logaddexp(0.0, -x)


def test_bce_matches_float64_formula(x64):
    p, x = _targets_logits()
    want = -(p * _log_sigmoid64(x) + (1 - p) * _log_sigmoid64(-x))
    np.testing.assert_allclose(bce(p, x), want, rtol=1e-13)
    np.testing.assert_allclose(bce(p, x, base=2), want / np.log(2), rtol=1e-13)


def test_bce_float32_against_float64_and_large_logits():
    p, x = _targets_logits(1)
    p32, x32 = jnp.asarray(p, jnp.float32), jnp.asarray(x, jnp.float32)
    p64, x64_ = np.asarray(p32, np.float64), np.asarray(x32, np.float64)
    want = -(p64 * _log_sigmoid64(x64_) + (1 - p64) * _log_sigmoid64(-x64_))
    np.testing.assert_allclose(bce(p32, x32), want, rtol=2e-6, atol=1e-7)
    # logits of ±1e4: exact softplus values, no inf, no NaN
    pp, xx = np.meshgrid([0.0, 0.25, 1.0], BIG)
    pp, xx = pp.ravel(), xx.ravel()
    got = np.asarray(bce(jnp.asarray(pp, jnp.float32), jnp.asarray(xx, jnp.float32)))
    want = pp * np.logaddexp(0, -xx) + (1 - pp) * np.logaddexp(0, xx)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-30)


def test_bce_gradient_is_sigmoid_minus_target():
    pp, xx = np.meshgrid([0.0, 0.25, 1.0], BIG)
    p, x = jnp.asarray(pp.ravel(), jnp.float32), jnp.asarray(xx.ravel(), jnp.float32)
    gp, gx = jax.jit(jax.grad(lambda p, x: jnp.sum(bce(p, x)), (0, 1)))(p, x)
    np.testing.assert_allclose(gx, jax.nn.sigmoid(x) - p, atol=1e-7)
    np.testing.assert_allclose(gp, -x, rtol=1e-6)


def test_bce_check_grads(x64):
    p, x = _targets_logits(2, scale=2.0)
    p = np.clip(p, 0.05, 0.95)
    check_grads(jax.jit(bce), (jnp.asarray(p), jnp.asarray(x)), order=2, modes=["fwd", "rev"])


def test_bce_equals_two_class_cross_entropy_from_logits():
    p, x = (jnp.asarray(a, jnp.float32) for a in _targets_logits(3))
    two_p = jnp.stack([p, 1 - p], axis=-1)
    two_x = jnp.stack([x, jnp.zeros_like(x)], axis=-1)
    np.testing.assert_allclose(bce(p, x), ce_from_logits(two_p, two_x), rtol=2e-6, atol=1e-6)
    g1 = jax.grad(lambda x: jnp.sum(bce(p, x)))(x)
    g2 = jax.grad(lambda x: jnp.sum(ce_from_logits(two_p, jnp.stack([x, 0 * x], -1))))(x)
    np.testing.assert_allclose(g1, g2, rtol=1e-5, atol=1e-6)


def test_bkl_matches_float64_formula_and_two_class_kl(x64):
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=N) * 4, rng.normal(size=N) * 4
    sa, sb = 1 / (1 + np.exp(-a)), 1 / (1 + np.exp(-b))
    want = sa * np.log(sa / sb) + (1 - sa) * np.log((1 - sa) / (1 - sb))
    np.testing.assert_allclose(bkl(a, b), want, rtol=1e-10, atol=1e-15)
    zero = np.zeros((N, 1))
    two = kl_from_logits(
        np.concatenate([a[:, None], zero], -1), np.concatenate([b[:, None], zero], -1)
    )
    np.testing.assert_allclose(bkl(a, b), two, rtol=1e-10, atol=1e-15)
    check_grads(jax.jit(bkl), (jnp.asarray(a[:8]), jnp.asarray(b[:8])), order=2, modes=["rev"])


def test_bkl_large_logits_equal_arguments_and_gradients():
    a, b = (jnp.asarray(v.ravel(), jnp.float32) for v in np.meshgrid(BIG, BIG))
    kl = np.asarray(bkl(a, b))
    assert np.all(np.isfinite(kl)) and np.all(kl >= 0)
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ls = _log_sigmoid64
    want = np.exp(ls(a64)) * (ls(a64) - ls(b64)) + np.exp(ls(-a64)) * (ls(-a64) - ls(-b64))
    np.testing.assert_allclose(kl, want, rtol=1e-5, atol=1e-6)
    ga, gb = jax.jit(jax.grad(lambda a, b: jnp.sum(bkl(a, b)), (0, 1)))(a, b)
    assert np.all(np.isfinite(np.asarray(ga))) and np.all(np.isfinite(np.asarray(gb)))
    # d/db = sigmoid(b) - sigmoid(a)
    np.testing.assert_allclose(gb, jax.nn.sigmoid(b) - jax.nn.sigmoid(a), atol=1e-6)
    same = np.asarray(bkl(jnp.asarray(BIG, jnp.float32), jnp.asarray(BIG, jnp.float32)))
    assert np.all(same == 0.0)
    g = jax.grad(lambda a, b: jnp.sum(bkl(a, b)), (0, 1))(
        jnp.asarray(BIG, jnp.float32), jnp.asarray(BIG, jnp.float32)
    )
    assert np.all(np.asarray(g[0]) == 0.0) and np.all(np.asarray(g[1]) == 0.0)


def test_small_divergence_keeps_its_digits():
    a = jnp.asarray([20.0, -3.0, 0.5], jnp.float32)
    b = a + jnp.asarray([1.0, 1e-3, -1e-3], jnp.float32)
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ls = _log_sigmoid64
    want = np.exp(ls(a64)) * (ls(a64) - ls(b64)) + np.exp(ls(-a64)) * (ls(-a64) - ls(-b64))
    np.testing.assert_allclose(bkl(a, b), want, rtol=1e-3)  # the naive sum: 33% off


def test_errors():
    with pytest.raises(
        ValueError, match=re.escape("p must hold probabilities in [0, 1], got 1.5 at index (1,)")
    ):
        jaxinfo.binary_cross_entropy_from_logits(jnp.array([0.5, 1.5, -1.0]), jnp.zeros(3))
    with pytest.raises(ValueError, match=re.escape("got -0.25 at index (0, 1), and 1 more")):
        jaxinfo.binary_cross_entropy_from_logits([[0.0, -0.25], [np.nan, 1.0]], 0.0)
    with pytest.raises(ValueError, match=re.escape("p.shape=(3,) and logits.shape=(4,)")):
        jaxinfo.binary_cross_entropy_from_logits(jnp.zeros(3), jnp.zeros(4))
    with pytest.raises(ValueError, match=re.escape("p_logits.shape=(2,) and q_logits.shape=(3,)")):
        jaxinfo.binary_kl_divergence_from_logits(jnp.zeros(2), jnp.zeros(3))
    with pytest.raises(TypeError, match="logits must be real-valued"):
        jaxinfo.binary_cross_entropy_from_logits(0.5, jnp.zeros(2, jnp.complex64))
    # traced targets are taken as given (no value check inside jit)
    assert np.isfinite(float(jax.jit(jaxinfo.binary_cross_entropy_from_logits)(0.5, 1.0)))
    assert bce(jnp.array([0, 1]), jnp.array([0, 0])).dtype == jnp.float32  # ints promote

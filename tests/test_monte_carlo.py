"""Tests of kl_estimate: the k1, k2 and k3 sample estimates of KL divergence."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import jaxinfo

kl_estimate = jax.jit(jaxinfo.kl_estimate, static_argnames=("estimator", "axis"))


def _gaussian_samples(n, seed=0, mu=0.3, sigma=1.2):
    """x ~ P = N(0, 1), with log p(x) and log q(x) under Q = N(mu, sigma^2), and the exact KL."""
    x = np.random.default_rng(seed).normal(size=n)
    log_p = scipy.stats.norm.logpdf(x)
    log_q = scipy.stats.norm.logpdf(x, mu, sigma)
    exact = np.log(sigma) + (1 + mu**2) / (2 * sigma**2) - 0.5
    return log_p, log_q, exact


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_k1_and_k3_are_unbiased_within_3_standard_errors(estimator):
    n = 1_000_000
    log_p, log_q, exact = _gaussian_samples(n)
    d = log_q - log_p
    terms = -d if estimator == "k1" else np.expm1(d) - d  # float64, for the standard error
    se = terms.std(ddof=1) / np.sqrt(n)
    got = float(
        kl_estimate(log_p.astype(np.float32), log_q.astype(np.float32), estimator=estimator)
    )
    np.testing.assert_allclose(got, terms.mean(), rtol=1e-5)  # float32 vs float64 on the samples
    assert abs(got - exact) < 3 * se, (got, exact, se)


def test_k2_is_close_for_close_distributions_and_k3_has_less_variance_than_k1():
    log_p, log_q, exact = _gaussian_samples(100_000, seed=1, mu=0.1, sigma=1.05)
    d = log_q - log_p
    k1, k2, k3 = (float(kl_estimate(log_p, log_q, estimator=e)) for e in ("k1", "k2", "k3"))
    np.testing.assert_allclose(k2, np.mean(0.5 * d * d), rtol=1e-5)
    assert abs(k2 - exact) < 0.1 * exact  # biased, to third order in the distance
    assert np.var(np.expm1(d) - d) < 0.1 * np.var(d)  # the reason to use k3
    assert abs(k3 - exact) < 0.05 * exact and abs(k1 - exact) < 0.5 * exact


def test_values_against_float64_per_sample_terms():
    rng = np.random.default_rng(2)
    log_p = rng.normal(size=(6, 50)) * 3
    log_q = rng.normal(size=(6, 50)) * 3
    d = log_q.astype(np.float32).astype(np.float64) - log_p.astype(np.float32).astype(np.float64)
    lp32, lq32 = log_p.astype(np.float32), log_q.astype(np.float32)
    for estimator, terms in (("k1", -d), ("k2", 0.5 * d * d), ("k3", np.expm1(d) - d)):
        np.testing.assert_allclose(
            kl_estimate(lp32, lq32, estimator=estimator), terms.mean(), rtol=1e-5
        )
        np.testing.assert_allclose(
            kl_estimate(lp32, lq32, estimator=estimator, axis=1), terms.mean(1), rtol=1e-5
        )
        np.testing.assert_allclose(
            kl_estimate(lp32, lq32, estimator=estimator, axis=(0,)),
            terms.mean(0),
            rtol=1e-5,
            atol=1e-6,
        )


def test_k3_near_zero_keeps_its_digits_and_is_never_negative():
    d = np.concatenate([-np.logspace(-7, 1, 40), [0.0], np.logspace(-7, 1, 40)]).astype(np.float32)
    got = jax.vmap(lambda d: jaxinfo.kl_estimate(jnp.zeros(()), d))(jnp.asarray(d))
    d64 = d.astype(np.float64)
    np.testing.assert_allclose(got, np.expm1(d64) - d64, rtol=1e-6)
    naive = (np.exp(d) - np.float32(1)) - d  # (r - 1) - log r in float32
    assert np.max(np.abs(naive[d != 0] / (np.expm1(d64) - d64)[d != 0] - 1)) > 0.5
    # never negative, finite wherever e^d fits, no NaN anywhere, even at ±1e4
    wide = jnp.asarray([-1e4, -100.0, -1.0, 0.0, 1.0, 80.0, 88.0, 89.0, 1e4], jnp.float32)
    k3 = jax.vmap(lambda d: jaxinfo.kl_estimate(jnp.zeros(()), d))(wide)
    assert np.all(np.asarray(k3) >= 0)
    np.testing.assert_array_equal(np.isfinite(np.asarray(k3)), np.asarray(wide) < 88.7)
    g = jax.grad(lambda lq: jaxinfo.kl_estimate(jnp.zeros_like(lq), lq))(wide)
    assert not np.any(np.isnan(np.asarray(g)))


def test_equal_log_probabilities_give_zero_with_zero_gradient():
    lp = jnp.asarray(np.random.default_rng(3).normal(size=40) * 10, jnp.float32)
    for estimator in ("k1", "k2", "k3"):
        assert float(kl_estimate(lp, lp, estimator=estimator)) == 0.0
        g = jax.grad(lambda a, b, e=estimator: jaxinfo.kl_estimate(a, b, estimator=e), (0, 1))(
            lp, lp
        )
        if estimator != "k1":  # k1's gradient is constant: ±1/n
            assert np.all(np.asarray(g[0]) == 0.0) and np.all(np.asarray(g[1]) == 0.0)


def test_where_equals_slicing_and_hides_bad_values():
    rng = np.random.default_rng(4)
    lp = jnp.asarray(rng.normal(size=(3, 10)), jnp.float32)
    lq = jnp.asarray(rng.normal(size=(3, 10)), jnp.float32)
    mask = jnp.arange(10) < 6
    lp_bad = jnp.where(mask, lp, -jnp.inf)
    lq_bad = jnp.where(mask, lq, jnp.nan)
    for estimator in ("k1", "k2", "k3"):
        want = kl_estimate(lp[:, :6], lq[:, :6], estimator=estimator, axis=1)
        got = kl_estimate(lp_bad, lq_bad, estimator=estimator, where=mask, axis=1)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        np.testing.assert_allclose(
            kl_estimate(lp_bad, lq_bad, estimator=estimator, where=mask),
            kl_estimate(lp[:, :6], lq[:, :6], estimator=estimator),
            rtol=1e-6,
        )
        g = jax.grad(
            lambda a, b, e=estimator: jaxinfo.kl_estimate(a, b, estimator=e, where=mask), (0, 1)
        )(lp_bad, lq_bad)
        for gi in g:
            assert np.all(np.isfinite(np.asarray(gi))) and np.all(np.asarray(gi)[:, 6:] == 0)
    # nothing included: 0, not NaN
    assert float(jaxinfo.kl_estimate(lp, lq, where=jnp.zeros(10, bool))) == 0.0


def test_errors():
    with pytest.raises(
        ValueError, match=re.escape("estimator must be one of 'k1', 'k2', 'k3', got 'k4'")
    ):
        jaxinfo.kl_estimate(jnp.zeros(3), jnp.zeros(3), estimator="k4")
    with pytest.raises(ValueError, match=re.escape("log_p.shape=(3,) and log_q.shape=(4,)")):
        jaxinfo.kl_estimate(jnp.zeros(3), jnp.zeros(4))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        jaxinfo.kl_estimate(jnp.zeros((2, 3)), jnp.zeros((2, 3)), axis=2)
    with pytest.raises(ValueError, match="names an axis twice"):
        jaxinfo.kl_estimate(jnp.zeros((2, 3)), jnp.zeros((2, 3)), axis=(1, -1))
    with pytest.raises(TypeError, match="axis must be None, an int or a tuple"):
        jaxinfo.kl_estimate(jnp.zeros(3), jnp.zeros(3), axis=1.0)
    with pytest.raises(TypeError, match="where must be a boolean array"):
        jaxinfo.kl_estimate(jnp.zeros(3), jnp.zeros(3), where=jnp.ones(3))
    with pytest.raises(ValueError, match=re.escape("does not broadcast to the shape of log_p")):
        jaxinfo.kl_estimate(jnp.zeros(3), jnp.zeros(3), where=jnp.ones(4, bool))


def test_gradients_against_float64():
    rng = np.random.default_rng(6)
    lp32 = rng.normal(size=40).astype(np.float32) * 2
    lq32 = rng.normal(size=40).astype(np.float32) * 2
    d = lq32.astype(np.float64) - lp32.astype(np.float64)
    want_dq = {"k1": -np.ones_like(d), "k2": d, "k3": np.expm1(d)}
    for estimator, dq in want_dq.items():
        g_p, g_q = jax.jit(
            jax.grad(lambda a, b, e=estimator: jaxinfo.kl_estimate(a, b, estimator=e), (0, 1))
        )(lp32, lq32)
        np.testing.assert_allclose(g_q, dq / d.size, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(g_p, -dq / d.size, rtol=1e-5, atol=1e-8)

"""Tests of the Gaussian measures: entropy and KL, diagonal and full covariance."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from jax.test_util import check_grads

import jaxinfo

gaussian_kl = jax.jit(jaxinfo.gaussian_kl_divergence, static_argnames=("axis", "keepdims"))
gaussian_entropy = jax.jit(jaxinfo.gaussian_entropy, static_argnames=("axis", "keepdims"))
kl_full = jax.jit(jaxinfo.gaussian_kl_divergence_full)
entropy_full = jax.jit(jaxinfo.gaussian_entropy_full)

B, D = 5, 4  # a few fixed shapes: JAX compiles once per shape


def _diag_params(seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(B, D)) * scale for _ in range(4)]


def _kl_diag_reference(mp, lvp, mq, lvq):
    """Float64 closed form, the textbook way: variances, ratios and logs."""
    vp, vq = np.exp(lvp), np.exp(lvq)
    return 0.5 * np.sum(np.log(vq / vp) + (vp + (mp - mq) ** 2) / vq - 1, axis=-1)


def _spd(rng, d, batch=()):
    a = rng.normal(size=(*batch, d, d))
    return a @ np.swapaxes(a, -1, -2) + 0.5 * np.eye(d)


def _kl_full_reference(mp, sp, mq, sq):
    """Float64 with the inverse and the determinants (what the measure avoids)."""
    d = mp.shape[-1]
    sq_inv = np.linalg.inv(sq)
    diff = mq - mp
    return 0.5 * (
        np.trace(sq_inv @ sp, axis1=-2, axis2=-1)
        + np.einsum("...i,...ij,...j->...", diff, sq_inv, diff)
        - d
        + np.log(np.linalg.det(sq))
        - np.log(np.linalg.det(sp))
    )


# ---------------------------------------------------------------- diagonal


def test_diagonal_kl_matches_float64_closed_form(x64):
    mp, lvp, mq, lvq = _diag_params()
    got = gaussian_kl(mp, lvp, mq, lvq)
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, _kl_diag_reference(mp, lvp, mq, lvq), rtol=1e-12)
    # defaults: the standard-normal prior, the VAE's -1/2 sum(1 + lv - m^2 - e^lv)
    want = -0.5 * np.sum(1 + lvp - mp**2 - np.exp(lvp), axis=-1)
    np.testing.assert_allclose(gaussian_kl(mp, lvp), want, rtol=1e-12)
    np.testing.assert_allclose(gaussian_kl(mp, lvp, base=2), want / np.log(2), rtol=1e-12)


def test_diagonal_kl_float32_against_float64():
    mp, lvp, mq, lvq = _diag_params(1)
    args32 = [jnp.asarray(a, jnp.float32) for a in (mp, lvp, mq, lvq)]
    want = _kl_diag_reference(*(np.asarray(a, np.float64) for a in args32))
    got = gaussian_kl(*args32)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, want, rtol=2e-6)


def test_diagonal_kl_axis_keepdims_and_broadcasting():
    mp, lvp, mq, lvq = (jnp.asarray(a, jnp.float32) for a in _diag_params(2))
    np.testing.assert_allclose(
        gaussian_kl(mp.T, lvp.T, mq.T, lvq.T, axis=0), gaussian_kl(mp, lvp, mq, lvq), rtol=1e-6
    )
    assert gaussian_kl(mp, lvp, keepdims=True).shape == (B, 1)
    # one prior for the whole batch broadcasts against the posteriors
    np.testing.assert_allclose(
        gaussian_kl(mp, lvp, mq[0], lvq[0]),
        gaussian_kl(mp, lvp, jnp.broadcast_to(mq[0], mp.shape), jnp.broadcast_to(lvq[0], mp.shape)),
        rtol=1e-6,
    )
    # vmap equals the batched call
    np.testing.assert_allclose(
        jax.vmap(jaxinfo.gaussian_kl_divergence)(mp, lvp, mq, lvq),
        gaussian_kl(mp, lvp, mq, lvq),
        rtol=1e-6,
    )


def test_diagonal_kl_gradients_against_float64_closed_form():
    mp, lvp, mq, lvq = (jnp.asarray(a, jnp.float32) for a in _diag_params(3, scale=1.5))
    grads = jax.grad(lambda *a: jnp.sum(jaxinfo.gaussian_kl_divergence(*a)), argnums=(0, 1, 2, 3))(
        mp, lvp, mq, lvq
    )
    m, lv, n, lw = (np.asarray(a, np.float64) for a in (mp, lvp, mq, lvq))
    want = (
        (m - n) * np.exp(-lw),
        0.5 * (np.exp(lv - lw) - 1),
        (n - m) * np.exp(-lw),
        0.5 * (1 - np.exp(lv - lw) - (m - n) ** 2 * np.exp(-lw)),
    )
    for g, w in zip(grads, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_diagonal_check_grads_order_2(x64):
    args = tuple(jnp.asarray(a) for a in _diag_params(4, scale=1.0))
    check_grads(jax.jit(gaussian_kl), args, order=2, modes=["fwd", "rev"])
    check_grads(jax.jit(gaussian_entropy), args[:2], order=2, modes=["rev"])


def test_diagonal_equal_arguments_give_exactly_zero_with_zero_gradient():
    rng = np.random.default_rng(5)
    m = jnp.asarray(rng.normal(size=(B, D)) * 100, jnp.float32)
    lv = jnp.asarray(rng.uniform(-80, 80, size=(B, D)), jnp.float32)
    lv = lv.at[0].set(jnp.array([-80.0, 80.0, 0.0, 1e-7]))
    assert np.all(np.asarray(gaussian_kl(m, lv, m, lv)) == 0.0)
    grads = jax.grad(lambda *a: jnp.sum(jaxinfo.gaussian_kl_divergence(*a)), argnums=(0, 1, 2, 3))(
        m, lv, m, lv
    )
    for g in grads:
        assert np.all(np.asarray(g) == 0.0)
    # the prior itself: KL(N(0, 1) || N(0, 1)) = 0
    assert float(jaxinfo.gaussian_kl_divergence(jnp.zeros(3), jnp.zeros(3))) == 0.0


def test_diagonal_log_variances_of_80_are_nan_free():
    grid = jnp.array([-80.0, -30.0, 0.0, 30.0, 80.0], jnp.float32)
    lvp, lvq = (a.reshape(-1, 1) for a in jnp.meshgrid(grid, grid))
    mp, mq = jnp.ones_like(lvp), -jnp.ones_like(lvp)

    def total(*a):
        return jnp.sum(jaxinfo.gaussian_kl_divergence(*a))

    kl = np.asarray(gaussian_kl(mp, lvp, mq, lvq))
    assert not np.any(np.isnan(kl)) and np.all(kl >= 0)
    # finite wherever the value fits float32: e^r / 2 with r = lvp - lvq <= 88, and the
    # mean term (2^2) e^(-lvq) / 2
    r, lw = np.asarray(lvp - lvq)[:, 0], np.asarray(lvq)[:, 0]
    fits = (r < 88) & (-lw < 87)
    assert np.all(np.isfinite(kl[fits])) and np.all(np.isinf(kl[~fits]))
    for g in jax.grad(total, argnums=(0, 1, 2, 3))(mp, lvp, mq, lvq):
        assert not np.any(np.isnan(np.asarray(g)))
    h = jaxinfo.gaussian_entropy(mp, lvp)
    assert np.all(np.isfinite(np.asarray(h)))


def test_diagonal_entropy_matches_scipy(x64):
    _, lv, _, _ = _diag_params(6)
    m = np.zeros_like(lv)
    got = gaussian_entropy(m, lv)
    want = [
        scipy.stats.multivariate_normal(m[i], np.diag(np.exp(lv[i]))).entropy() for i in range(B)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(gaussian_entropy(m, lv, base=2), np.asarray(want) / np.log(2))
    g = jax.grad(lambda m, lv: jnp.sum(jaxinfo.gaussian_entropy(m, lv)), (0, 1))(m, lv)
    np.testing.assert_array_equal(g[0], 0.0)
    np.testing.assert_allclose(g[1], 0.5)


# ---------------------------------------------------------------- full covariance


def test_full_kl_matches_float64_inverse_and_determinants(x64):
    rng = np.random.default_rng(7)
    sp, sq = _spd(rng, D, (B,)), _spd(rng, D, (B,))
    mp, mq = rng.normal(size=(B, D)), rng.normal(size=(B, D))
    lp, lq = np.linalg.cholesky(sp), np.linalg.cholesky(sq)
    got = kl_full(mp, lp, mq, lq)
    np.testing.assert_allclose(got, _kl_full_reference(mp, sp, mq, sq), rtol=1e-10)
    # the entries above the diagonal are not read
    junk = np.triu(rng.normal(size=(B, D, D)), 1)
    np.testing.assert_allclose(kl_full(mp, lp + junk, mq, lq + junk), got, rtol=1e-14)
    # one Q broadcasts against a batch of P
    np.testing.assert_allclose(
        kl_full(mp, lp, mq[0], lq[0]), _kl_full_reference(mp, sp, mq[0], sq[0]), rtol=1e-10
    )
    np.testing.assert_allclose(kl_full(mp, lp, mq, lq, base=2), got / np.log(2), rtol=1e-14)


def test_full_kl_float32_against_float64():
    rng = np.random.default_rng(8)
    sp, sq = _spd(rng, D, (B,)), _spd(rng, D, (B,))
    args = [rng.normal(size=(B, D)), np.linalg.cholesky(sp), rng.normal(size=(B, D))]
    args = [np.asarray(a, np.float32) for a in (*args, np.linalg.cholesky(sq))]
    l64 = [np.asarray(a, np.float64) for a in args]
    want = _kl_full_reference(
        l64[0], l64[1] @ l64[1].swapaxes(-1, -2), l64[2], l64[3] @ l64[3].swapaxes(-1, -2)
    )
    np.testing.assert_allclose(kl_full(*args), want, rtol=1e-5)


def test_full_equals_diagonal_on_diagonal_factors():
    mp, lvp, mq, lvq = (jnp.asarray(a, jnp.float32) for a in _diag_params(9, scale=1.0))

    def tril(lv):
        return jax.vmap(jnp.diag)(jnp.exp(lv / 2))

    np.testing.assert_allclose(
        kl_full(mp, tril(lvp), mq, tril(lvq)), gaussian_kl(mp, lvp, mq, lvq), rtol=1e-5
    )
    np.testing.assert_allclose(
        entropy_full(tril(lvp)), gaussian_entropy(mp, lvp), rtol=1e-5, atol=1e-5
    )


def test_full_entropy_matches_scipy(x64):
    rng = np.random.default_rng(10)
    s = _spd(rng, D, (B,))
    want = [scipy.stats.multivariate_normal(np.zeros(D), s[i]).entropy() for i in range(B)]
    np.testing.assert_allclose(entropy_full(np.linalg.cholesky(s)), want, rtol=1e-12)
    # a factor with negative diagonal entries is the same covariance
    flip = np.linalg.cholesky(s) * np.array([1, -1, 1, -1])
    np.testing.assert_allclose(entropy_full(flip), want, rtol=1e-12)


def test_full_gradients(x64):
    rng = np.random.default_rng(11)
    lp = np.linalg.cholesky(_spd(rng, 3))
    lq = np.linalg.cholesky(_spd(rng, 3))
    args = (
        jnp.asarray(rng.normal(size=3)),
        jnp.asarray(lp),
        jnp.asarray(rng.normal(size=3)),
        jnp.asarray(lq),
    )
    check_grads(jax.jit(kl_full), args, order=2, modes=["rev"])
    check_grads(jax.jit(entropy_full), (args[1],), order=2, modes=["rev"])
    # float32 gradients against the float64 ones
    g64 = jax.jit(jax.grad(kl_full, argnums=(0, 1, 2, 3)))(*args)
    with jax.enable_x64(False):
        a32 = [jnp.asarray(np.asarray(a), jnp.float32) for a in args]
        g32 = jax.jit(jax.grad(kl_full, argnums=(0, 1, 2, 3)))(*a32)
    for g, w in zip(g32, g64, strict=True):
        np.testing.assert_allclose(
            np.tril(g) if g.ndim == 2 else g, np.tril(w) if w.ndim == 2 else w, rtol=2e-4, atol=1e-5
        )


def test_full_equal_arguments_give_zero_with_zero_gradient():
    rng = np.random.default_rng(12)
    m = jnp.asarray(rng.normal(size=(B, D)), jnp.float32)
    chol = jnp.asarray(np.linalg.cholesky(_spd(rng, D, (B,))), jnp.float32)
    assert np.all(np.asarray(kl_full(m, chol, m, chol)) == 0.0)
    grads = jax.jit(jax.grad(lambda *a: jnp.sum(kl_full(*a)), argnums=(0, 1, 2, 3)))(
        m, chol, m, chol
    )
    for g in grads:
        np.testing.assert_allclose(g, 0.0, atol=1e-6)
    assert float(jnp.max(jnp.abs(grads[0]))) == 0.0


def test_full_kl_is_never_negative_for_nearly_equal_arguments():
    rng = np.random.default_rng(13)
    m = jnp.asarray(rng.normal(size=(B, D)), jnp.float32)
    chol = jnp.asarray(np.linalg.cholesky(_spd(rng, D, (B,))), jnp.float32)
    kl = np.asarray(kl_full(m, chol, m + 1e-6, chol * (1 + 1e-6)))
    assert np.all(kl >= 0) and np.all(kl < 1e-9)


# ---------------------------------------------------------------- errors


def test_errors_name_the_arguments_and_shapes():
    with pytest.raises(ValueError, match=re.escape("p_mean.shape=(3,), p_log_var.shape=(4,)")):
        jaxinfo.gaussian_kl_divergence(jnp.zeros(3), jnp.zeros(4))
    with pytest.raises(ValueError, match="out of range for p_mean"):
        jaxinfo.gaussian_kl_divergence(jnp.zeros(3), jnp.zeros(3), axis=1)
    with pytest.raises(ValueError, match=re.escape("mean.shape=(2, 3), log_var.shape=(2,)")):
        jaxinfo.gaussian_entropy(jnp.zeros((2, 3)), jnp.zeros(2))
    with pytest.raises(ValueError, match=re.escape("scale_tril must be a (batch of) square")):
        jaxinfo.gaussian_entropy_full(jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match=re.escape("got shape (3,)")):
        jaxinfo.gaussian_entropy_full(jnp.zeros(3))
    eye = jnp.eye(3)
    with pytest.raises(ValueError, match=re.escape("q_scale_tril must be a (batch of) square")):
        jaxinfo.gaussian_kl_divergence_full(jnp.zeros(3), eye, jnp.zeros(3), jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match="the same size d"):
        jaxinfo.gaussian_kl_divergence_full(jnp.zeros(3), eye, jnp.zeros(2), jnp.eye(2))
    with pytest.raises(ValueError, match=re.escape("q_mean must have shape (..., d) with d = 3")):
        jaxinfo.gaussian_kl_divergence_full(jnp.zeros(3), eye, jnp.zeros(2), eye)
    with pytest.raises(ValueError, match="must have the same shape"):
        jaxinfo.gaussian_kl_divergence_full(
            jnp.zeros((2, 3)), jnp.broadcast_to(eye, (2, 3, 3)), jnp.zeros((5, 3)), eye
        )
    with pytest.raises(TypeError, match="p_mean must be real-valued"):
        jaxinfo.gaussian_kl_divergence(jnp.zeros(2, jnp.complex64), jnp.zeros(2))
    with pytest.raises(ValueError, match="base must be positive"):
        jaxinfo.gaussian_entropy_full(eye, base=1)


def test_the_default_prior_keeps_the_dtype_of_the_posterior(x64):
    m32, lv32 = jnp.ones(3, jnp.float32), jnp.zeros(3, jnp.float32)
    assert jaxinfo.gaussian_kl_divergence(m32, lv32).dtype == jnp.float32
    assert jaxinfo.gaussian_kl_divergence(m32, lv32, 0.5, 1).dtype == jnp.float32
    assert jaxinfo.gaussian_kl_divergence(m32.astype(jnp.bfloat16), lv32).dtype == jnp.float32
    assert jaxinfo.gaussian_kl_divergence(np.ones(3), np.zeros(3)).dtype == jnp.float64
    np.testing.assert_allclose(jaxinfo.gaussian_kl_divergence(m32, lv32), 1.5)


def test_diagonal_measures_take_a_tuple_of_axes():
    # A latent of shape (channels, height) per example: the tuple's axes are its dimensions.
    rng = np.random.default_rng(3)
    m = jnp.asarray(rng.normal(size=(2, 3, 4)), jnp.float32)
    lv = jnp.asarray(rng.normal(size=(2, 3, 4)), jnp.float32)
    flat_m, flat_lv = m.reshape(2, 12), lv.reshape(2, 12)
    kl = jaxinfo.gaussian_kl_divergence(m, lv, q_mean=0.5, axis=(1, 2), keepdims=True)
    assert kl.shape == (2, 1, 1)
    np.testing.assert_allclose(
        kl.ravel(), jaxinfo.gaussian_kl_divergence(flat_m, flat_lv, q_mean=0.5), rtol=1e-6
    )
    h = jaxinfo.gaussian_entropy(m, lv, axis=(-1, -2))
    np.testing.assert_allclose(h, jaxinfo.gaussian_entropy(flat_m, flat_lv), rtol=1e-6)

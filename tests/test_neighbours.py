"""Tests of differential_entropy (Kozachenko–Leonenko) and mutual_information_ksg (KSG)."""

import math

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import digamma

import jaxinfo
from jaxinfo import _neighbours

# ---------------------------------------------------------------- references
# Whole-matrix NumPy, float64, written from the papers.


def _np_kl(x, k):
    n, d = x.shape
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    eps = np.sort(dist, axis=1)[:, k - 1]
    log_ball = d / 2 * np.log(np.pi) - math.lgamma(d / 2 + 1)
    with np.errstate(divide="ignore"):
        return digamma(n) - digamma(k) + log_ball + d * np.mean(np.log(eps))


def _np_ksg(x, y, k):
    n = x.shape[0]
    dx = np.abs(x[:, None, :] - x[None, :, :]).max(-1)
    dy = np.abs(y[:, None, :] - y[None, :, :]).max(-1)
    np.fill_diagonal(dx, np.inf)
    np.fill_diagonal(dy, np.inf)
    eps = np.sort(np.maximum(dx, dy), axis=1)[:, k - 1]
    nx = (dx < eps[:, None]).sum(1)
    ny = (dy < eps[:, None]).sum(1)
    return digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1))


RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 150, 2))
Y = 0.7 * X[..., :1] + RNG.normal(size=(3, 150, 1))


@pytest.mark.parametrize("k", [1, 4])
def test_match_whole_matrix_reference(x64, k):
    h = jaxinfo.differential_entropy(jnp.asarray(X), k=k)
    mi = jaxinfo.mutual_information_ksg(jnp.asarray(X), jnp.asarray(Y), k=k)
    assert h.shape == mi.shape == (3,) and h.dtype == jnp.float64
    np.testing.assert_allclose(h, [_np_kl(x, k) for x in X], rtol=1e-12)
    np.testing.assert_allclose(
        mi, [_np_ksg(x, y, k) for x, y in zip(X, Y, strict=True)], rtol=1e-11
    )


def test_blocks_and_padding_change_nothing(x64, monkeypatch):
    # 97 samples in blocks of 8 rows: 13 blocks, the last one padded.
    monkeypatch.setattr(_neighbours, "_BLOCK_ELEMENTS", 97 * 8)
    x, y = X[0, :97], Y[0, :97]
    np.testing.assert_allclose(
        jaxinfo.differential_entropy(jnp.asarray(x), k=2), _np_kl(x, 2), rtol=1e-12
    )
    np.testing.assert_allclose(
        jaxinfo.mutual_information_ksg(jnp.asarray(x), jnp.asarray(y), k=2),
        _np_ksg(x, y, 2),
        rtol=1e-11,
    )


def test_batches_axes_vmap_and_base():
    x, y = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    h = jaxinfo.differential_entropy(x)
    mi = jaxinfo.mutual_information_ksg(x, y)
    np.testing.assert_allclose(jax.vmap(jaxinfo.differential_entropy)(x), h, rtol=1e-5)
    np.testing.assert_allclose(jax.vmap(jaxinfo.mutual_information_ksg)(x, y), mi, rtol=1e-5)
    moved = jnp.moveaxis(x, 1, 0)  # (n, batch, d): samples along axis 0
    np.testing.assert_allclose(jaxinfo.differential_entropy(moved, axis=0), h, rtol=1e-5)
    np.testing.assert_allclose(jaxinfo.differential_entropy(x, base=2), h / np.log(2), rtol=1e-6)
    np.testing.assert_allclose(
        jaxinfo.mutual_information_ksg(x, y, base=2), mi / np.log(2), rtol=1e-6
    )
    # Batch axes broadcast: one x against three y.
    np.testing.assert_allclose(
        jaxinfo.mutual_information_ksg(x[:1], y),
        jaxinfo.mutual_information_ksg(x[jnp.array([0, 0, 0])], y),
    )


def test_gaussian_closed_forms():
    # n = 2000, rho = 0.9: KSG's bias is a few thousandths of a nat, its spread
    # about 0.02; KL's spread about 0.03. Margins are several of those.
    rng = np.random.default_rng(1)
    rho = 0.9
    cov = np.array([[1.0, rho], [rho, 1.0]])
    z = rng.multivariate_normal([0, 0], cov, size=2000).astype(np.float32)
    mi = float(jaxinfo.mutual_information_ksg(jnp.asarray(z[:, :1]), jnp.asarray(z[:, 1:])))
    assert abs(mi - (-0.5 * np.log(1 - rho**2))) < 0.06
    h = float(jaxinfo.differential_entropy(jnp.asarray(z)))
    assert abs(h - 0.5 * np.log((2 * np.pi * np.e) ** 2 * np.linalg.det(cov))) < 0.1


def test_ties_and_duplicates():
    x = np.repeat(X[0, :40], 2, axis=0)  # every sample twice
    # KL: with k = 1 every nearest neighbour is at distance 0: an atom, -inf.
    assert float(jaxinfo.differential_entropy(jnp.asarray(x), k=1)) == -np.inf
    # With k = 2 the duplicate is the first neighbour only: finite, as the reference.
    np.testing.assert_allclose(
        jaxinfo.differential_entropy(jnp.asarray(x), k=2), _np_kl(x, 2), rtol=1e-5
    )
    # KSG: counts strictly inside eps, duplicates included; finite either way.
    y = np.repeat(Y[0, :40], 2, axis=0)
    for k in (1, 3):
        got = jaxinfo.mutual_information_ksg(jnp.asarray(x), jnp.asarray(y), k=k)
        assert np.isfinite(float(got))
        np.testing.assert_allclose(got, _np_ksg(x, y, k), rtol=1e-5)


# ---------------------------------------------------------------- infomeasure


def test_agree_with_infomeasure(x64):
    im = pytest.importorskip("infomeasure", reason="infomeasure (a test extra) is not installed")
    for x, y in zip(X, Y, strict=True):
        for k in (1, 4):
            # Euclidean KL; no jitter (infomeasure adds noise by default).
            want = im.entropy(x, approach="metric", k=k, noise_level=0, minkowski_p=2)
            np.testing.assert_allclose(
                jaxinfo.differential_entropy(jnp.asarray(x), k=k), want, rtol=1e-9
            )
            want = im.mutual_information(x, y, approach="metric", k=k, noise_level=0)
            np.testing.assert_allclose(
                jaxinfo.mutual_information_ksg(jnp.asarray(x), jnp.asarray(y), k=k),
                want,
                rtol=1e-9,
                atol=1e-12,
            )


# ---------------------------------------------------------------- errors


def test_errors():
    x = jnp.ones((5, 2))
    with pytest.raises(ValueError, match=r"k must satisfy 1 <= k < n.*k=5 with n=5"):
        jaxinfo.differential_entropy(x, k=5)
    with pytest.raises(ValueError, match=r"k must satisfy 1 <= k < n.*k=0"):
        jaxinfo.mutual_information_ksg(x, x, k=0)
    with pytest.raises(TypeError, match="k must be an int"):
        jaxinfo.differential_entropy(x, k=2.0)
    with pytest.raises(ValueError, match=r"same number of samples.*\(5, 2\).*\(4, 1\)"):
        jaxinfo.mutual_information_ksg(x, jnp.ones((4, 1)))
    with pytest.raises(ValueError, match=r"batch axes of x and y must broadcast"):
        jaxinfo.mutual_information_ksg(jnp.ones((2, 5, 1)), jnp.ones((3, 5, 1)))
    with pytest.raises(ValueError, match=r"shape \(..., n, d\).*samples\[:, None\]"):
        jaxinfo.differential_entropy(jnp.ones(5))
    with pytest.raises(ValueError, match="is the last axis of samples"):
        jaxinfo.differential_entropy(x, axis=-1)
    with pytest.raises(TypeError, match="samples must be real-valued"):
        jaxinfo.differential_entropy(jnp.ones((5, 2), jnp.complex64))
    with pytest.raises(ValueError, match="base must be positive"):
        jaxinfo.mutual_information_ksg(x, x, base=-1)


def _shapes(jaxpr):
    for eqn in jaxpr.eqns:
        for v in eqn.outvars:
            yield tuple(getattr(v.aval, "shape", ()))
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            yield from _shapes(sub)


def test_no_n_by_n_matrix_for_20000_samples():
    # Traced only (nothing runs): no intermediate holds n x n distances.
    n = 20_000
    x = jax.ShapeDtypeStruct((n, 2), jnp.float32)
    y = jax.ShapeDtypeStruct((n, 1), jnp.float32)
    for jaxpr in (
        jax.make_jaxpr(jaxinfo.differential_entropy)(x).jaxpr,
        jax.make_jaxpr(jaxinfo.mutual_information_ksg)(x, y).jaxpr,
    ):
        sizes = [math.prod(s) for s in _shapes(jaxpr)]
        assert max(sizes) <= 2 * _neighbours._BLOCK_ELEMENTS
        assert max(sizes) < n * n // 100

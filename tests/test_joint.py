"""Tests of joint_entropy, conditional_entropy and mutual_information."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxinfo

# Jitted once per shape: far cheaper on CPU than op-by-op dispatch.
joint_entropy = jax.jit(jaxinfo.joint_entropy)
conditional_entropy = jax.jit(jaxinfo.conditional_entropy)
mutual_information = jax.jit(jaxinfo.mutual_information)
entropy = jax.jit(jaxinfo.entropy, static_argnames=("axis", "keepdims"))
binary_entropy = jax.jit(jaxinfo.binary_entropy)


def _tables(seed, shape, zero_frac=0.3):
    """Random joint tables with some exact zeros, each normalised over the last two axes."""
    rng = np.random.default_rng(seed)
    t = rng.gamma(0.7, size=shape)
    t[rng.random(shape) < zero_frac] = 0.0
    return t / t.sum(axis=(-2, -1), keepdims=True)


# float64 references, written out from the definitions.
def _np_h(p):
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def _np_joint(pxy):
    return _np_h(pxy.ravel())


def _np_conditional(pxy):
    px = pxy.sum(axis=1, keepdims=True)
    nz = pxy > 0
    return float(-np.sum(pxy[nz] * np.log((pxy / np.where(px > 0, px, 1))[nz])))


def _np_mi(pxy):
    px = pxy.sum(axis=1, keepdims=True)
    py = pxy.sum(axis=0, keepdims=True)
    nz = pxy > 0
    return float(np.sum(pxy[nz] * np.log((pxy / (px * py))[nz])))


@pytest.mark.parametrize(
    "fn, ref",
    [
        (joint_entropy, _np_joint),
        (conditional_entropy, _np_conditional),
        (mutual_information, _np_mi),
    ],
)
@pytest.mark.parametrize("base", [None, 2])
def test_matches_numpy_reference(x64, fn, ref, base):
    tables = _tables(0, (6, 4, 5))
    got = np.asarray(fn(jnp.asarray(tables), base=base))
    want = np.array([ref(t) for t in tables]) / (np.log(base) if base else 1.0)
    assert got.shape == (6,)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_identities(x64):
    tables = jnp.asarray(_tables(1, (8, 3, 7)))
    hx = entropy(jnp.sum(tables, axis=-1))
    hy = entropy(jnp.sum(tables, axis=-2))
    hxy = joint_entropy(tables)
    mi = mutual_information(tables)
    np.testing.assert_allclose(mi, hx + hy - hxy, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(conditional_entropy(tables), hxy - hx, atol=1e-14)
    # H(X|Y) is the conditional entropy of the transposed table.
    np.testing.assert_allclose(
        conditional_entropy(jnp.swapaxes(tables, -1, -2)), hxy - hy, atol=1e-14
    )
    # Symmetric, non-negative and at most the smaller marginal entropy.
    np.testing.assert_allclose(mutual_information(jnp.swapaxes(tables, -1, -2)), mi)
    assert np.all(np.asarray(mi) > 0)
    assert np.all(np.asarray(mi) <= np.minimum(hx, hy) + 1e-14)


def test_joint_entropy_is_the_entropy_over_both_axes(x64):
    pxy = np.random.default_rng(3).gamma(0.5, size=(4, 3, 5))
    np.testing.assert_allclose(joint_entropy(pxy), entropy(pxy, axis=(-2, -1)), rtol=1e-14)


def test_independent_variables_share_no_information(x64):
    rng = np.random.default_rng(2)
    px, py = rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(4))
    px[1] = 0.0  # a zero row: still independent
    pxy = jnp.asarray(np.outer(px / px.sum(), py))
    np.testing.assert_allclose(mutual_information(pxy), 0.0, atol=1e-15)
    np.testing.assert_allclose(conditional_entropy(pxy), entropy(jnp.asarray(py)), rtol=1e-13)


@pytest.mark.parametrize("k", [2, 3, 16])
def test_diagonal_joint_carries_log_k(k):
    pxy = jnp.eye(k, dtype=jnp.float32) / k
    np.testing.assert_allclose(mutual_information(pxy), np.log(k), rtol=1e-6)
    np.testing.assert_allclose(mutual_information(pxy, base=2), np.log2(k), rtol=1e-6)
    np.testing.assert_allclose(joint_entropy(pxy), np.log(k), rtol=1e-6)
    assert float(conditional_entropy(pxy)) == 0.0


def test_binary_symmetric_channel_capacity():
    # Uniform input through a channel that flips with probability eps: I = 1 - h(eps) bits.
    eps = jnp.linspace(0.0, 1.0, 11, dtype=jnp.float32)
    pxy = jnp.stack([jnp.stack([1 - eps, eps], -1), jnp.stack([eps, 1 - eps], -1)], -2) / 2
    want = 1 - binary_entropy(eps, base=2)
    np.testing.assert_allclose(mutual_information(pxy, base=2), want, atol=2e-6)


def test_tables_are_normalised_and_empty_tables_measure_zero():
    counts = jnp.array([[3, 0, 1], [0, 2, 2]])  # integer counts promote to float
    probs = counts.astype(jnp.float32) / 8
    for fn in (joint_entropy, conditional_entropy, mutual_information):
        np.testing.assert_allclose(fn(counts), fn(probs), rtol=1e-6)
        assert float(fn(jnp.zeros((3, 2)))) == 0.0


def test_no_underflow_of_the_product_of_marginals():
    # p(x) p(y) = 1e-50 underflows in float32; the result must not be inf.
    pxy = jnp.diag(jnp.array([1.0, 1e-25, 1e-25], dtype=jnp.float32))
    p = np.array([1.0, 1e-25, 1e-25]) / (1 + 2e-25)
    want = -np.sum(p * np.log(p))
    got = mutual_information(pxy)
    assert np.isfinite(float(got))
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("fn", [joint_entropy, conditional_entropy, mutual_information])
@pytest.mark.parametrize(
    "table",
    [
        [[0.5, 0.0], [0.0, 0.5]],
        [[0.3, 0.0, 0.2], [0.0, 0.0, 0.5]],
        [[1.0, 0.0], [0.0, 0.0]],
        [[0.0, 0.0], [0.0, 0.0]],
    ],
)
def test_gradients_are_finite_at_zero_cells(fn, table):
    table = jnp.array(table, dtype=jnp.float32)
    assert np.all(np.isfinite(np.asarray(jax.grad(fn)(table))))
    assert np.all(np.isfinite(np.asarray(jax.hessian(fn)(table))))


def test_gradients_at_zero_cells_point_the_right_way():
    # As for entropy: a large finite slope where the true one is infinite.
    # Moving mass off the diagonal of a noiseless channel lowers I(X;Y) and
    # raises H(Y|X).
    diag = jnp.eye(2, dtype=jnp.float32) / 2
    off = np.array([[False, True], [True, False]])
    g_mi = np.asarray(jax.grad(mutual_information)(diag))
    g_ce = np.asarray(jax.grad(conditional_entropy)(diag))
    g_h = np.asarray(jax.grad(entropy)(jnp.array([0.5, 0.0], dtype=jnp.float32)))
    assert np.all(g_mi[off] < -50) and np.all(g_ce[off] > 50) and g_h[1] > 50


@pytest.mark.parametrize("fn", [joint_entropy, conditional_entropy, mutual_information])
def test_gradients_match_finite_differences_inside(x64, fn):
    table = jnp.asarray(_tables(3, (3, 4), zero_frac=0.0) + 0.05)  # away from the boundary
    check_grads(jax.jit(fn), (table,), order=2, modes=["rev"])


def test_gradient_of_mutual_information_is_the_pointwise_information(x64):
    # On a normalised table dI/dp(x,y) = log p(x,y)/(p(x)p(y)) - I: the
    # unnormalised derivative pmi - 1, minus its mean I - 1 (the normalisation).
    pxy = _tables(4, (3, 3), zero_frac=0.0)
    px, py = pxy.sum(1, keepdims=True), pxy.sum(0, keepdims=True)
    pmi = np.log(pxy / (px * py))
    want = pmi - _np_mi(pxy)
    g = jax.grad(mutual_information)(jnp.asarray(pxy))
    np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["joint_entropy", "conditional_entropy", "mutual_information"])
def test_batching_jit_and_vmap_agree(name):
    fn = getattr(jaxinfo, name)  # eager here
    tables = jnp.asarray(_tables(5, (2, 3, 4, 5)), dtype=jnp.float32)
    batched = fn(tables, base=2)
    assert batched.shape == (2, 3)
    looped = jnp.array([[fn(t, base=2) for t in row] for row in tables])
    np.testing.assert_allclose(batched, looped, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.vmap(fn))(tables), fn(tables), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(fn)(tables), fn(tables), rtol=1e-6)
    # A traced base.
    np.testing.assert_allclose(jax.jit(lambda t, b: fn(t, base=b))(tables, 2.0), batched, rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_computes_in_float32(dtype):
    pxy = jnp.array([[0.4, 0.1], [0.1, 0.4]], dtype=dtype)
    out = mutual_information(pxy)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, _np_mi(np.array([[0.4, 0.1], [0.1, 0.4]])), rtol=1e-2)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "fn", [jaxinfo.joint_entropy, jaxinfo.conditional_entropy, jaxinfo.mutual_information]
)
@pytest.mark.parametrize("pxy", [jnp.array([0.5, 0.5]), jnp.array(1.0)])
def test_tables_need_two_axes(fn, pxy):
    with pytest.raises(ValueError, match=r"pxy must have at least two dimensions.*got shape"):
        fn(pxy)


@pytest.mark.parametrize(
    "fn", [jaxinfo.joint_entropy, jaxinfo.conditional_entropy, jaxinfo.mutual_information]
)
def test_bad_dtype_and_base(fn):
    with pytest.raises(TypeError, match="pxy must be real-valued, got dtype complex64"):
        fn(jnp.ones((2, 2), dtype=jnp.complex64))
    with pytest.raises(TypeError, match="pxy must have a real numeric dtype"):
        fn(jnp.ones((2, 2), dtype=bool))
    with pytest.raises(ValueError, match="base must be positive and not 1"):
        fn(jnp.ones((2, 2)), base=1)

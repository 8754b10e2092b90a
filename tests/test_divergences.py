"""Tests of js_divergence, renyi_entropy and renyi_divergence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads
from scipy.spatial.distance import jensenshannon

import jaxinfo

# Jitted once per shape: far cheaper on CPU than op-by-op dispatch.
js_divergence = jax.jit(jaxinfo.js_divergence, static_argnames=("axis", "keepdims"))
renyi_entropy = jax.jit(jaxinfo.renyi_entropy, static_argnames=("axis", "keepdims"))
renyi_divergence = jax.jit(jaxinfo.renyi_divergence, static_argnames=("axis", "keepdims"))
entropy = jax.jit(jaxinfo.entropy, static_argnames=("axis", "keepdims"))
kl_divergence = jax.jit(jaxinfo.kl_divergence, static_argnames=("axis", "keepdims"))


def _dists(seed, shape, zero_frac=0.25):
    """Random distributions along the last axis, with some exact zeros."""
    rng = np.random.default_rng(seed)
    p = rng.gamma(0.8, size=shape)
    p[rng.random(shape) < zero_frac] = 0.0
    p[..., 0] += 0.1  # never an empty row
    return p / p.sum(axis=-1, keepdims=True)


P = np.array([0.5, 0.2, 0.15, 0.1, 0.05, 0.0])
Q = np.array([0.1, 0.3, 0.2, 0.2, 0.1, 0.1])


# float64 references, from the definitions.
def _np_renyi_entropy(p, a):
    p = p[p > 0]
    return float(np.log(np.sum(p**a)) / (1 - a))


def _np_renyi_divergence(p, q, a):
    s = p > 0
    return float(np.log(np.sum(p[s] ** a * q[s] ** (1 - a))) / (a - 1))


def _np_escort_slope(p, q, a):
    """d/dalpha of D_alpha(P‖Q) = D(R_alpha‖P) / (alpha - 1)**2, R_alpha ∝ p**alpha q**(1-alpha)."""
    s = p > 0
    p, q = p[s], q[s]
    r = p**a * q ** (1 - a)
    r = r / r.sum()
    return float(np.sum(r * np.log(r / p)) / (a - 1) ** 2)


# ---------------------------------------------------------------- Jensen–Shannon


@pytest.mark.parametrize("base", [None, 2])
def test_js_matches_scipy_squared_distance(x64, base):
    p, q = _dists(0, (10, 7)), _dists(1, (10, 7))
    got = js_divergence(jnp.asarray(p), jnp.asarray(q), base=base)
    want = jensenshannon(p, q, axis=-1, base=base) ** 2
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_js_bounds_symmetry_and_disjoint_supports(x64):
    p, q = jnp.asarray(_dists(2, (50, 5))), jnp.asarray(_dists(3, (50, 5)))
    js = np.asarray(js_divergence(p, q))
    assert np.all(js >= 0) and np.all(js <= np.log(2) + 1e-15)
    np.testing.assert_allclose(js_divergence(q, p), js, rtol=1e-14)
    np.testing.assert_allclose(js_divergence(p, p), 0.0, atol=1e-15)
    disjoint = js_divergence(jnp.array([0.3, 0.7, 0.0, 0.0]), jnp.array([0, 0, 0.9, 0.1]))
    np.testing.assert_allclose(disjoint, np.log(2), rtol=1e-15)
    one_bit = js_divergence(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), base=2)
    np.testing.assert_allclose(one_bit, 1.0, rtol=1e-15)


@pytest.mark.parametrize(
    "p, q",
    [
        ([1.0, 0.0], [0.0, 1.0]),
        ([0.5, 0.5, 0.0], [0.0, 0.5, 0.5]),
        ([0.5, 0.5, 0.0], [0.5, 0.5, 0.0]),
        ([1.0, 0.0, 0.0], [0.2, 0.3, 0.5]),
    ],
)
def test_js_gradients_are_finite_at_zeros(p, q):
    p, q = jnp.array(p), jnp.array(q)
    gp, gq = jax.grad(js_divergence, argnums=(0, 1))(p, q)
    assert np.all(np.isfinite(np.asarray(gp))) and np.all(np.isfinite(np.asarray(gq)))
    hess = jax.hessian(js_divergence, argnums=(0, 1))(p, q)
    assert all(np.all(np.isfinite(np.asarray(h))) for h in jax.tree.leaves(hess))


def test_js_gradients_match_finite_differences_inside(x64):
    p, q = jnp.array([0.2, 0.3, 0.5]), jnp.array([0.6, 0.1, 0.3])
    check_grads(jax.jit(js_divergence), (p, q), order=2, modes=["rev"])


def test_js_where_axis_vmap_jit():
    p, q = jnp.asarray(_dists(4, (3, 6)), jnp.float32), jnp.asarray(_dists(5, (3, 6)), jnp.float32)
    mask = jnp.array([True, True, False, True, False, True])
    np.testing.assert_allclose(
        js_divergence(p, q, where=mask),
        js_divergence(p[:, mask], q[:, mask]),
        rtol=1e-6,
    )
    np.testing.assert_allclose(js_divergence(p.T, q.T, axis=0), js_divergence(p, q), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(js_divergence)(p, q), js_divergence(p, q), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(js_divergence)(p, q), js_divergence(p, q), rtol=1e-6)
    assert js_divergence(p, q, keepdims=True).shape == (3, 1)


# ---------------------------------------------------------------- Rényi entropy


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9, 0.999, 1.001, 1.3, 2.0, 3.5, 20.0])
def test_renyi_entropy_matches_numpy_formula(x64, alpha):
    p = _dists(6, (8, 9))
    got = renyi_entropy(jnp.asarray(p), alpha)
    want = [_np_renyi_entropy(row, alpha) for row in p]
    np.testing.assert_allclose(got, want, rtol=1e-11)


def test_renyi_entropy_special_orders(x64):
    p = _dists(7, (6, 8))
    support = (p > 0).sum(-1)
    rows = jnp.asarray(p)
    cases = {
        0.0: np.log(support),
        1.0: np.asarray(entropy(rows)),
        2.0: -np.log(np.sum(p**2, -1)),
        np.inf: -np.log(p.max(-1)),
    }
    for alpha, want in cases.items():
        np.testing.assert_allclose(renyi_entropy(rows, alpha), want, rtol=1e-13)
        np.testing.assert_allclose(renyi_entropy(rows, alpha, base=2), want / np.log(2), rtol=1e-13)


def test_renyi_entropy_is_log_k_for_uniform_and_non_increasing_in_alpha(x64):
    alphas = jnp.array([0.0, 0.2, 0.5, 0.8, 0.95, 1.0, 1.05, 1.2, 1.5, 2.0, 5.0, 50.0, np.inf])
    h_of = jax.jit(jax.vmap(renyi_entropy, in_axes=(None, 0)))
    np.testing.assert_allclose(h_of(jnp.full(7, 1 / 7), alphas), np.log(7), rtol=1e-14)
    h = np.asarray(h_of(jnp.asarray(P), alphas))
    assert np.all(np.diff(h) < 0)


def test_renyi_entropy_is_smooth_through_one_in_value_and_slope(x64):
    p = jnp.asarray(P)
    shannon = float(entropy(p))
    logp = np.log(P[P > 0])
    varentropy = float(np.sum(P[P > 0] * (logp + shannon) ** 2))
    h = jax.jit(renyi_entropy)
    dh = jax.jit(jax.grad(renyi_entropy, argnums=1))
    assert float(h(p, 1.0)) == pytest.approx(shannon, rel=1e-15)
    assert float(dh(p, 1.0)) == pytest.approx(-varentropy / 2, rel=1e-13)
    # Within 1e-6 of 1 the float64 closed forms lose digits themselves; there
    # the first-order expansion H - (alpha - 1) V / 2 is the reference.
    # Elsewhere d/dalpha H_alpha(P) = -D(R_alpha‖P) / (1 - alpha)**2, with the
    # escort R_alpha ∝ p**alpha; H_alpha(P) = log 6 - D_alpha(P‖uniform).
    uniform = np.full(6, 1 / 6)
    for eps in [1e-12, 1e-9, 1e-6, 1e-3, 0.1, 0.3]:
        for alpha in (1 - eps, 1 + eps):
            if eps <= 1e-6:
                want_h, want_dh, rel = shannon - (alpha - 1) * varentropy / 2, -varentropy / 2, 1e-5
            else:
                want_h, rel = _np_renyi_entropy(P, alpha), 1e-8
                want_dh = -_np_escort_slope(P, uniform, alpha)
            assert float(h(p, alpha)) == pytest.approx(want_h, rel=1e-11)
            assert float(dh(p, alpha)) == pytest.approx(want_dh, rel=rel)


@pytest.mark.parametrize("alpha", [0.5, 0.9, 0.99, 0.9999, 1.0, 1.0001, 1.01, 1.1, 1.6, 4.0])
def test_renyi_float32_slope_is_accurate_near_one(alpha):
    # Against the float64 closed form: the naive log(sum p**a) / (1 - a) loses
    # every digit of its derivative near alpha = 1 in float32.
    q = np.full(6, 1 / 6)
    p32 = jnp.asarray(P, jnp.float32)
    q32 = jnp.asarray(Q, jnp.float32)
    dh = float(jax.grad(renyi_entropy, argnums=1)(p32, jnp.float32(alpha)))
    dd = float(jax.grad(renyi_divergence, argnums=2)(p32, q32, jnp.float32(alpha)))
    a = float(np.float32(alpha))
    if alpha == 1:
        logp = np.log(P[P > 0])
        want_h = np.sum(P[P > 0] * (logp - np.sum(P[P > 0] * logp)) ** 2) / 2
        lr = np.log(P[P > 0] / Q[P > 0])
        want_d = np.sum(P[P > 0] * (lr - np.sum(P[P > 0] * lr)) ** 2) / 2
    else:
        want_h = _np_escort_slope(P, q, a)
        want_d = _np_escort_slope(P, Q, a)
    assert dh == pytest.approx(-want_h, rel=2e-5)
    assert dd == pytest.approx(want_d, rel=2e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.0, np.inf])
def test_renyi_entropy_gradients_are_finite_at_zeros_and_at_special_orders(alpha):
    p = jnp.array([0.7, 0.3, 0.0, 0.0])
    gp, ga = jax.grad(renyi_entropy, argnums=(0, 1))(p, jnp.float32(alpha))
    assert np.all(np.isfinite(np.asarray(gp))) and np.isfinite(float(ga))
    g_one_hot = jax.grad(renyi_entropy)(jnp.array([1.0, 0.0, 0.0]), jnp.float32(alpha))
    assert np.all(np.isfinite(np.asarray(g_one_hot)))
    hess = jax.hessian(renyi_entropy, argnums=(0, 1))(p, jnp.float32(alpha))
    assert all(np.all(np.isfinite(np.asarray(h))) for h in jax.tree.leaves(hess))
    # Where the exact one-sided derivative at p_i = 0 is finite, it is the one
    # returned: 2 / sum(p) for H_2 = -log(sum p**2) + 2 log(sum p), 1 / sum(p) for H_inf.
    if alpha in (2.0, np.inf):
        np.testing.assert_allclose(gp[2:], 2.0 if alpha == 2 else 1.0, rtol=1e-6)


def test_renyi_entropy_gradients_match_finite_differences_inside(x64):
    p = jnp.array([0.2, 0.3, 0.5])
    for alpha in (0.5, 1.0, 1.1, 3.0):
        check_grads(jax.jit(renyi_entropy), (p, alpha), order=2, modes=["rev"])


def test_renyi_where_axis_vmap_jit_and_traced_alpha():
    p = jnp.asarray(_dists(8, (4, 6)), jnp.float32)
    mask = jnp.array([True, False, True, True, False, True])
    for alpha in (0.0, 0.5, 1.0, 2.0, jnp.inf):
        np.testing.assert_allclose(
            renyi_entropy(p, alpha, where=mask),
            renyi_entropy(p[:, mask], alpha),
            rtol=1e-6,
        )
    np.testing.assert_allclose(renyi_entropy(p.T, 2.0, axis=0), renyi_entropy(p, 2.0), rtol=1e-6)
    alphas = jnp.array([0.0, 0.5, 1.0, 2.0, jnp.inf], dtype=jnp.float32)
    by_vmap = jax.jit(jax.vmap(renyi_entropy, in_axes=(None, 0)))(p, alphas)
    by_loop = jnp.stack([renyi_entropy(p, float(a)) for a in alphas])
    np.testing.assert_allclose(by_vmap, by_loop, rtol=1e-6)
    assert renyi_entropy(p, 2.0, keepdims=True).shape == (4, 1)
    assert float(renyi_entropy(jnp.zeros(3), 2.0)) == 0.0


def test_renyi_entropy_extreme_probabilities_in_float32():
    p = jnp.array([1e-37, 1e-30, 0.5, 0.5 - 1e-30], dtype=jnp.float32)
    for alpha in (0.0, 0.3, 0.8, 1.0, 1.2, 2.0, 7.0, jnp.inf):
        h = float(renyi_entropy(p, alpha))
        want = np.log(4) if alpha == 0 else np.log(2)
        assert h == pytest.approx(want, rel=1e-5), alpha


# ---------------------------------------------------------------- Rényi divergence


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.9, 0.999, 1.001, 1.3, 2.0, 3.5, 20.0])
def test_renyi_divergence_matches_numpy_formula(x64, alpha):
    p = _dists(9, (8, 9))
    q = _dists(10, (8, 9), zero_frac=0.0)
    got = renyi_divergence(jnp.asarray(p), jnp.asarray(q), alpha)
    want = [_np_renyi_divergence(a, b, alpha) for a, b in zip(p, q, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def test_renyi_divergence_special_orders(x64):
    p = _dists(11, (6, 8))
    q = _dists(12, (6, 8), zero_frac=0.0)
    pj, qj = jnp.asarray(p), jnp.asarray(q)
    s = p > 0
    cases = {
        0.0: -np.log(np.sum(np.where(s, q, 0), -1)),
        0.5: -2 * np.log(np.sum(np.sqrt(p * q), -1)),  # Bhattacharyya
        1.0: np.asarray(kl_divergence(pj, qj)),
        2.0: np.log(np.sum(np.where(s, p**2 / q, 0), -1)),
        np.inf: np.log(np.max(p / q, -1)),
    }
    for alpha, want in cases.items():
        np.testing.assert_allclose(renyi_divergence(pj, qj, alpha), want, rtol=1e-12)


def test_renyi_divergence_slope_at_one_and_monotone(x64):
    p, q = jnp.asarray(P), jnp.asarray(Q)
    lr = np.log(P[P > 0] / Q[P > 0])
    var = np.sum(P[P > 0] * (lr - np.sum(P[P > 0] * lr)) ** 2)
    slope = jax.grad(renyi_divergence, argnums=2)(p, q, 1.0)
    assert float(slope) == pytest.approx(var / 2, rel=1e-13)
    alphas = jnp.array([0.0, 0.25, 0.5, 0.9, 1.0, 1.1, 2.0, 10.0, np.inf])
    d = np.asarray(jax.vmap(renyi_divergence, in_axes=(None, None, 0))(p, q, alphas))
    assert np.all(np.diff(d) > 0)
    assert np.all(np.asarray(renyi_divergence(p, p, alphas[0])) == 0)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 0.9, 1.0, 1.5, np.inf])
def test_renyi_divergence_where_q_rules_out_outcomes(x64, alpha):
    p = jnp.array([0.5, 0.3, 0.2, 0.0])
    q = jnp.array([0.6, 0.4, 0.0, 0.0])
    got = float(renyi_divergence(p, q, alpha))
    if alpha >= 1:
        assert got == np.inf
    else:  # the sum simply has no term where q = 0
        pn, qn = np.array([0.5, 0.3]), np.array([0.6, 0.4])
        want = (
            -np.log(1.0)
            if alpha == 0
            else np.log(np.sum(pn**alpha * qn ** (1 - alpha))) / (alpha - 1)
        )
        assert got == pytest.approx(want, rel=1e-13)
    disjoint = renyi_divergence(jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0]), alpha)
    assert float(disjoint) == np.inf


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.0, np.inf])
def test_renyi_divergence_gradients_are_finite_at_zeros(alpha):
    p = jnp.array([0.7, 0.3, 0.0, 0.0])
    q = jnp.array([0.2, 0.2, 0.6, 0.0])
    grads = jax.grad(renyi_divergence, argnums=(0, 1, 2))(p, q, jnp.float32(alpha))
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)
    hess = jax.hessian(renyi_divergence, argnums=(0, 2))(p, q, jnp.float32(alpha))
    assert all(np.all(np.isfinite(np.asarray(h))) for h in jax.tree.leaves(hess))


def test_renyi_divergence_gradients_match_finite_differences_inside(x64):
    p, q = jnp.array([0.2, 0.3, 0.5]), jnp.array([0.4, 0.4, 0.2])
    for alpha in (0.5, 1.0, 1.2, 3.0):
        check_grads(jax.jit(renyi_divergence), (p, q, alpha), order=2, modes=["fwd", "rev"])


def test_renyi_divergence_where_and_batching():
    p = jnp.asarray(_dists(13, (3, 5)), jnp.float32)
    q = jnp.asarray(_dists(14, (3, 5), zero_frac=0.0), jnp.float32)
    mask = jnp.array([True, True, False, True, True])
    np.testing.assert_allclose(
        renyi_divergence(p, q, 2.0, where=mask),
        renyi_divergence(p[:, mask], q[:, mask], 2.0),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        jax.vmap(renyi_divergence, in_axes=(0, 0, None))(p, q, 0.5),
        renyi_divergence(p, q, 0.5, base=None),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        renyi_divergence(p, q, 1.0, base=2), kl_divergence(p, q, base=2), rtol=1e-6
    )


# ---------------------------------------------------------------- tuple axes


def _merged(x, axes):
    """``axes`` moved to the end in their order and flattened, in NumPy."""
    x = np.moveaxis(np.asarray(x), axes, range(-len(axes), 0))
    return x.reshape(*x.shape[: x.ndim - len(axes)], -1)


TUPLE_AXIS_MEASURES = {
    "js_divergence": (js_divergence, 2),
    "renyi_entropy": (lambda p, **kw: renyi_entropy(p, 0.5, **kw), 1),
    "renyi_divergence": (lambda p, q, **kw: renyi_divergence(p, q, 2.0, **kw), 2),
}


@pytest.mark.parametrize("name", TUPLE_AXIS_MEASURES)
def test_tuple_axis_is_one_flattened_axis(name):
    f, n_args = TUPLE_AXIS_MEASURES[name]
    axes = (2, 0)
    args = [jnp.asarray(_dists(20 + i, (3, 4, 5)), jnp.float32) for i in range(n_args)]
    flat = [_merged(x, axes) for x in args]
    np.testing.assert_allclose(f(*args, axis=axes), f(*flat), rtol=1e-6, atol=1e-7)
    mask = np.random.default_rng(22).random((3, 4, 5)) < 0.7
    want = f(*flat, where=_merged(mask, axes))
    np.testing.assert_allclose(f(*args, axis=axes, where=mask), want, rtol=1e-6, atol=1e-7)
    kept = f(*args, axis=axes, where=mask, keepdims=True)
    assert kept.shape == (1, 4, 1)
    np.testing.assert_allclose(kept[:, :, 0], want[None], rtol=1e-6, atol=1e-7)
    # gradients flow back through the merge, finite at the zeros
    grad = jax.grad(lambda x: f(x, *args[1:], axis=axes).sum())(args[0])
    flat_grad = jax.grad(lambda x: f(x, *flat[1:]).sum())(jnp.asarray(flat[0]))
    assert jnp.all(jnp.isfinite(grad))
    np.testing.assert_allclose(_merged(grad, axes), flat_grad, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "fn",
    [
        lambda alpha: jaxinfo.renyi_entropy(jnp.array([0.5, 0.5]), alpha),
        lambda alpha: jaxinfo.renyi_divergence(jnp.array([0.5, 0.5]), jnp.array([0.5, 0.5]), alpha),
    ],
)
def test_bad_orders(fn):
    with pytest.raises(ValueError, match=r"alpha must be in \[0, inf\], got -0.5"):
        fn(-0.5)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, inf\], got nan"):
        fn(float("nan"))
    with pytest.raises(ValueError, match=r"alpha must be a scalar .* got an array of shape \(2,\)"):
        fn(jnp.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"alpha must be a scalar"):
        jax.jit(fn)(jnp.array([1.0, 2.0]))  # traced, but its shape is known
    with pytest.raises(TypeError, match="alpha must be a real number in \\[0, inf\\], got dtype"):
        fn(1j)
    with pytest.raises(
        TypeError, match="alpha must be a real number in \\[0, inf\\], got dtype bool"
    ):
        fn(True)
    with pytest.raises(TypeError, match=r"alpha must be a real number .* of type str"):
        fn("2")


def test_pair_shape_mismatch_and_bad_options():
    p, q = jnp.ones(3) / 3, jnp.ones(4) / 4
    for call in (
        lambda: jaxinfo.js_divergence(p, q),
        lambda: jaxinfo.renyi_divergence(p, q, 2.0),
    ):
        with pytest.raises(ValueError, match=r"p and q must have the same shape.*\(3,\).*\(4,\)"):
            call()
    with pytest.raises(TypeError, match="where must be a boolean array"):
        jaxinfo.js_divergence(p, p, where=jnp.ones(3))
    with pytest.raises(ValueError, match="axis 1 is out of range for p"):
        jaxinfo.renyi_entropy(p, 2.0, axis=1)
    with pytest.raises(ValueError, match=r"axis \(0, -1\) names axis 0 of p"):
        jaxinfo.js_divergence(p, p, axis=(0, -1))
    with pytest.raises(ValueError, match="base must be positive and not 1"):
        jaxinfo.renyi_divergence(p, p, 2.0, base=-2)
    with pytest.raises(TypeError, match="p must be real-valued"):
        jaxinfo.renyi_entropy(p.astype(jnp.complex64), 2.0)

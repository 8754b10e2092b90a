"""Tests of binary_entropy, perplexity and entropy_from_counts."""

import re

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import digamma, gammaln, polygamma

import jaxinfo

# Jitted once per shape: far cheaper on CPU than op-by-op dispatch.
binary_entropy = jax.jit(jaxinfo.binary_entropy)
perplexity = jax.jit(jaxinfo.perplexity, static_argnames=("axis", "keepdims"))
entropy = jax.jit(jaxinfo.entropy, static_argnames=("axis", "keepdims"))
entropy_from_counts = jax.jit(
    jaxinfo.entropy_from_counts,
    static_argnames=("axis", "keepdims", "estimator", "num_classes"),
)


# ---------------------------------------------------------------- binary entropy


def test_binary_entropy_matches_formula_and_the_seed_numbers(x64):
    p = np.linspace(0.0, 1.0, 101)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    want[[0, -1]] = 0.0
    np.testing.assert_allclose(binary_entropy(jnp.asarray(p), base=2), want, atol=1e-15)
    # The seed article: H(0.5, 0.5) = 1 bit, H(0.99, 0.01) = 0.080794 bits
    # (its rounding of 0.0807931; 0.99 in float32 moves it by 5e-8 more).
    got = binary_entropy(jnp.array([0.5, 0.01, 0.99], dtype=jnp.float32), base=2)
    np.testing.assert_allclose(got, [1.0, 0.080794, 0.080794], atol=1.5e-6)
    np.testing.assert_allclose(got, [1.0, 0.0807931, 0.0807931], atol=1e-7)


def test_binary_entropy_is_the_entropy_of_the_pair():
    p = jnp.linspace(0.0, 1.0, 17, dtype=jnp.float32).reshape(17, 1)
    pairs = jnp.concatenate([p, 1 - p], axis=-1)
    np.testing.assert_allclose(binary_entropy(p[:, 0]), entropy(pairs), atol=1e-7)
    assert binary_entropy(jnp.zeros((2, 3))).shape == (2, 3)  # elementwise


def test_binary_entropy_edges_gradients_and_bad_values():
    g = jax.vmap(jax.grad(jaxinfo.binary_entropy))(jnp.array([0.0, 0.5, 1.0]))
    assert np.all(np.isfinite(np.asarray(g)))
    assert float(g[1]) == 0.0 and float(g[0]) > 80 and float(g[2]) < -80  # log(tiny) scale
    np.testing.assert_allclose(jax.grad(jaxinfo.binary_entropy)(0.25), np.log(3), rtol=1e-6)
    out = np.asarray(binary_entropy(jnp.array([0.0, 1.0, -0.1, 1.1])))
    assert out[0] == 0.0 and out[1] == 0.0 and not np.signbit(out[0]) and not np.signbit(out[1])
    assert np.all(np.isnan(out[2:]))
    assert binary_entropy(jnp.array([0, 1])).dtype == jnp.float32  # ints promote
    assert binary_entropy(jnp.array(0.5, dtype=jnp.bfloat16)).dtype == jnp.float32


# ---------------------------------------------------------------- perplexity


@pytest.mark.parametrize("k", [1, 2, 7, 1000])
def test_perplexity_of_uniform_is_k(k):
    np.testing.assert_allclose(perplexity(jnp.full(k, 1.0 / k)), k, rtol=1e-5)


def test_perplexity_is_exp_entropy_with_masks_and_axes(x64):
    rng = np.random.default_rng(0)
    p = jnp.asarray(rng.dirichlet(np.ones(6), size=4))
    np.testing.assert_allclose(perplexity(p), np.exp(entropy(p)), rtol=1e-14)
    mask = jnp.array([True, False, True, True, False, True])
    np.testing.assert_allclose(perplexity(p, where=mask), perplexity(p[:, mask]), rtol=1e-14)
    np.testing.assert_allclose(perplexity(p.T, axis=0), perplexity(p), rtol=1e-14)
    assert perplexity(p, keepdims=True).shape == (4, 1)
    np.testing.assert_allclose(perplexity(jnp.array([[1.0, 0, 0], [0, 0, 0]])), [1.0, 1.0])
    g = jax.grad(jaxinfo.perplexity)(jnp.array([1.0, 0.0, 0.0]))
    assert np.all(np.isfinite(np.asarray(g)))


def test_language_model_perplexity_recipe_of_the_docstring(x64):
    # exp of the mean loss over real tokens: the geometric mean of 1 / q(y_t)
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 6, 11)) * 2
    labels = rng.integers(0, 11, size=(3, 6))
    labels[0, 4:] = labels[2, 1:] = -1  # padding
    recipe = jnp.exp(
        jaxinfo.cross_entropy_from_labels(
            jnp.asarray(labels), jnp.asarray(logits), reduction="mean"
        )
    )
    log_q = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    real = labels >= 0
    q_y = np.exp(np.take_along_axis(log_q, np.where(real, labels, 0)[..., None], -1)[..., 0])
    np.testing.assert_allclose(recipe, np.prod(1 / q_y[real]) ** (1 / real.sum()), rtol=1e-12)
    assert 'reduction="mean"' in jaxinfo.perplexity.__doc__


# ---------------------------------------------------------------- entropy from counts


def _np_plugin(c):
    n = c.sum()
    p = c[c > 0] / n
    return float(-np.sum(p * np.log(p))) if n > 0 else 0.0


def _np_miller_madow(c):
    n = c.sum()
    return _np_plugin(c) + ((c > 0).sum() - 1) / (2 * n) if n > 0 else 0.0


def _np_chao_shen(c):
    """Chao & Shen (2003), eq. (8), written out sample by sample."""
    c = c[c > 0]
    n = c.sum()
    if n == 0:
        return 0.0
    f1 = np.sum(c == 1)
    if f1 == n:
        f1 = n - 1
    coverage = 1 - f1 / n
    h = 0.0
    for ci in c:
        pa = coverage * ci / n
        h -= pa * np.log(pa) / (1 - (1 - pa) ** n)
    return float(h)


COUNTS = np.array(
    [
        [4, 2, 1, 1, 0, 0],
        [1, 1, 1, 1, 1, 1],  # every sample a singleton
        [7, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],  # one sample
        [0, 0, 0, 0, 0, 0],  # no sample
        [30, 12, 5, 2, 1, 1],
        [3, 3, 0, 9, 1, 2],
    ]
)


@pytest.mark.parametrize(
    "estimator, ref",
    [("plugin", _np_plugin), ("miller_madow", _np_miller_madow), ("chao_shen", _np_chao_shen)],
)
@pytest.mark.parametrize("base", [None, 2])
def test_estimators_match_numpy_reference(x64, estimator, ref, base):
    got = entropy_from_counts(jnp.asarray(COUNTS), estimator=estimator, base=base)
    want = np.array([ref(c) for c in COUNTS]) / (np.log(base) if base else 1.0)
    assert got.dtype == jnp.float64  # int64 counts -> the default float
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    assert np.all(np.isfinite(np.asarray(got)))


@pytest.mark.parametrize("estimator", ["plugin", "miller_madow", "chao_shen"])
def test_integer_and_float_counts_axes_and_batching(estimator):
    ints = jnp.asarray(COUNTS, dtype=jnp.int32)
    floats = ints.astype(jnp.float32)
    by_int = entropy_from_counts(ints, estimator=estimator)
    np.testing.assert_allclose(entropy_from_counts(floats, estimator=estimator), by_int)
    np.testing.assert_allclose(entropy_from_counts(ints.T, axis=0, estimator=estimator), by_int)
    assert entropy_from_counts(ints, estimator=estimator, keepdims=True).shape == (7, 1)
    by_vmap = jax.vmap(lambda c: jaxinfo.entropy_from_counts(c, estimator=estimator))(ints)
    np.testing.assert_allclose(by_vmap, by_int, rtol=1e-6)
    eager = jaxinfo.entropy_from_counts(ints, estimator=estimator)
    np.testing.assert_allclose(eager, by_int, rtol=1e-6)
    assert float(by_int[4]) == 0.0  # no samples
    assert float(by_int[2]) == 0.0 and not np.signbit(float(by_int[2]))  # one bin


@pytest.mark.parametrize("estimator", ["plugin", "miller_madow", "chao_shen"])
def test_tuple_axis_counts_the_bins_of_several_axes(estimator):
    # a 2-D histogram per row: bins along axes (0, 2) of a (2, 7, 3) array
    grid = jnp.asarray(COUNTS, dtype=jnp.int32).reshape(7, 2, 3).transpose(1, 0, 2)
    got = entropy_from_counts(grid, axis=(0, 2), estimator=estimator)
    np.testing.assert_allclose(got, entropy_from_counts(COUNTS, estimator=estimator), rtol=1e-6)
    kept = entropy_from_counts(grid, axis=(0, 2), estimator=estimator, keepdims=True)
    assert kept.shape == (1, 7, 1)
    np.testing.assert_array_equal(kept[0, :, 0], got)


def test_perplexity_takes_a_tuple_axis():
    p = jnp.asarray(np.random.default_rng(1).dirichlet(np.ones(6), size=4), jnp.float32)
    grid = p.reshape(4, 2, 3)
    np.testing.assert_allclose(perplexity(grid, axis=(1, 2)), perplexity(p), rtol=1e-6)
    mask = np.array([True, False, True, True, False, True])
    np.testing.assert_allclose(
        perplexity(grid, axis=(-2, -1), where=mask.reshape(2, 3), keepdims=True)[:, 0, 0],
        perplexity(p, where=mask),
        rtol=1e-6,
    )


def test_plugin_is_the_entropy_of_the_frequencies():
    c = jnp.array([[5, 3, 0, 2]])
    np.testing.assert_allclose(entropy_from_counts(c), entropy(c / 10), rtol=1e-6)
    # Miller–Madow adds (m - 1) / (2N) nats = 2 / 20, whatever the base.
    np.testing.assert_allclose(
        entropy_from_counts(c, estimator="miller_madow", base=2),
        entropy(c / 10, base=2) + 0.1 / np.log(2),
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "k, n, shape",
    [(10, 10, "zipf"), (10, 20, "uniform"), (50, 20, "zipf")],
)
def test_corrected_estimators_are_less_biased_than_plugin(x64, k, n, shape):
    # Fixed seeds and 4000 replicates: the margins below are >= 15 standard
    # errors on these seeds, so the test cannot flake and cannot pass by luck.
    p = 1.0 / np.arange(1, k + 1) if shape == "zipf" else np.ones(k)
    p = p / p.sum()
    h_true = -np.sum(p * np.log(p))
    counts = jnp.asarray(np.random.default_rng(k * 1000 + n).multinomial(n, p, size=4000))
    bias, se = {}, {}
    for est in ("plugin", "miller_madow", "chao_shen"):
        h = np.asarray(entropy_from_counts(counts, estimator=est))
        bias[est], se[est] = h.mean() - h_true, h.std(ddof=1) / np.sqrt(h.size)
    # The plug-in estimate is biased low, by more than (m - 1) / 2N nats would fix.
    assert bias["plugin"] < -5 * se["plugin"]
    margin = 5 * (se["plugin"] + se["miller_madow"])
    assert abs(bias["miller_madow"]) < abs(bias["plugin"]) - margin
    # Undersampled (N <= 2K): Chao–Shen also corrects for unseen outcomes and
    # beats Miller–Madow.
    margin = 5 * (se["miller_madow"] + se["chao_shen"])
    assert abs(bias["chao_shen"]) < abs(bias["miller_madow"]) - margin


def test_estimators_never_nan_on_any_small_histogram():
    # Every histogram of up to 4 samples in 3 bins.
    grid = np.array([[a, b, c] for a in range(5) for b in range(5) for c in range(5)])
    for est in ("plugin", "miller_madow", "chao_shen"):
        out = np.asarray(entropy_from_counts(jnp.asarray(grid), estimator=est))
        assert np.all(np.isfinite(out)) and np.all(out >= 0), est


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("estimator", ["NSB", "Plugin", "", None, 3])
def test_unknown_estimator(estimator):
    with pytest.raises(
        ValueError,
        match=r"estimator must be one of 'plugin', 'miller_madow', 'chao_shen', "
        r"'grassberger', 'james_stein', 'zhang', 'chao_wang_jost', 'nsb', got "
        + re.escape(repr(estimator)),
    ):
        jaxinfo.entropy_from_counts(jnp.array([1, 2]), estimator=estimator)


def test_bad_counts_and_options():
    with pytest.raises(TypeError, match=r"counts must have a real numeric dtype.*bool"):
        jaxinfo.entropy_from_counts(jnp.array([True, False]))
    with pytest.raises(TypeError, match="counts must be real-valued"):
        jaxinfo.entropy_from_counts(jnp.array([1j, 2]))
    with pytest.raises(ValueError, match="counts must have at least one dimension"):
        jaxinfo.entropy_from_counts(jnp.array(3))
    with pytest.raises(ValueError, match="axis 2 is out of range for counts"):
        jaxinfo.entropy_from_counts(jnp.ones((2, 2)), axis=2)
    with pytest.raises(ValueError, match="base must be positive and not 1"):
        jaxinfo.entropy_from_counts(jnp.array([1, 2]), base=0)
    with pytest.raises(TypeError, match="p must be real-valued"):
        jaxinfo.binary_entropy(jnp.array([0.5j]))
    with pytest.raises(ValueError, match="base must be positive and not 1"):
        jaxinfo.binary_entropy(0.5, base=1.0)
    with pytest.raises(TypeError, match="where must be a boolean array"):
        jaxinfo.perplexity(jnp.ones(3), where=jnp.ones(3))
    with pytest.raises(TypeError, match="unexpected keyword argument 'base'"):
        jaxinfo.perplexity(jnp.ones(3), base=2)  # unit-free: no base


# ---------------------------------------------------------------- the further estimators
# References written from the papers, sum by sum, in float64 NumPy/SciPy.


def _np_grassberger(c):
    """Grassberger (2003), eq. (35)."""
    c = c[c > 0]
    n = c.sum()
    if n == 0:
        return 0.0
    g = digamma(c) + 0.5 * (-1.0) ** c * (digamma((c + 1) / 2) - digamma(c / 2))
    return float(np.log(n) - np.sum(c * g) / n)


def _np_james_stein(c, k=None):
    """Hausser and Strimmer (2009), eqs. (5), (8)."""
    k = len(c) if k is None else k
    c = np.concatenate([c, np.zeros(k - len(c))])
    n = c.sum()
    u = c / n if n > 0 else np.zeros(k)
    t = 1.0 / k
    msp = np.sum((u - t) ** 2)
    lam = 1.0 if n <= 1 or msp == 0 else min(1.0, max(0.0, (1 - np.sum(u**2)) / ((n - 1) * msp)))
    p = lam * t + (1 - lam) * u
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def _np_zhang(c):
    """Zhang (2012), eq. (9): the series, term by term."""
    n = int(c.sum())
    h = 0.0
    for nk in c[c > 0]:
        prod, s = 1.0, 0.0
        for v in range(1, n - int(nk) + 1):
            prod *= 1 - (nk - 1) / (n - v)
            s += prod / v
        h += nk / n * s
    return float(h)


def _np_chao_wang_jost(c):
    """Chao, Wang and Jost (2013), eq. (7), with the finite sum in mpmath."""
    n = int(c.sum())
    if n == 0:
        return 0.0
    f1, f2 = int(np.sum(c == 1)), int(np.sum(c == 2))
    if f2 > 0:
        a = mpmath.mpf(2 * f2) / ((n - 1) * f1 + 2 * f2)
    elif f1 > 0:
        a = mpmath.mpf(2) / ((n - 1) * (f1 - 1) + 2)
    else:
        a = mpmath.mpf(1)
    h = _np_zhang(c)
    if f1 > 0 and a < 1:
        with mpmath.workdps(60):
            s = -mpmath.log(a) - mpmath.fsum((1 - a) ** r / r for r in range(1, n))
            h += float(mpmath.mpf(f1) / n * (1 - a) ** (1 - n) * s)
    return h


NEW = {
    "grassberger": _np_grassberger,
    "james_stein": _np_james_stein,
    "zhang": _np_zhang,
    "chao_wang_jost": _np_chao_wang_jost,
}
# The rows of COUNTS, and some with many samples: the unseen-outcome term of
# Chao–Wang–Jost then needs (1 - A)^(1 - N), far beyond the float range.
MORE = np.array(
    [
        [1, 1, 1, 1, 1, 1, 1, 1, 2000, 0],
        [1, 2, 1, 2, 1, 900, 300, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        [2, 2, 2, 0, 1, 0, 0, 0, 0, 0],
    ]
)


@pytest.mark.parametrize("estimator", sorted(NEW))
@pytest.mark.parametrize("base", [None, 2])
def test_further_estimators_match_the_papers(x64, estimator, base):
    scale = np.log(base) if base else 1.0
    for counts in (COUNTS, MORE):
        got = entropy_from_counts(jnp.asarray(counts), estimator=estimator, base=base)
        want = np.array([NEW[estimator](c.astype(float)) for c in counts]) / scale
        if estimator == "james_stein":
            want[np.all(counts == 0, axis=1)] = np.log(counts.shape[1]) / scale
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)


def test_james_stein_num_classes_adds_empty_bins(x64):
    c = np.array([[5, 3, 0, 2], [1, 1, 1, 1]])
    got = entropy_from_counts(jnp.asarray(c), estimator="james_stein", num_classes=7)
    padded = np.concatenate([c, np.zeros((2, 3), int)], axis=1)
    np.testing.assert_allclose(
        got, entropy_from_counts(jnp.asarray(padded), estimator="james_stein")
    )
    np.testing.assert_allclose(got, [_np_james_stein(r.astype(float), 7) for r in c], rtol=1e-12)


@pytest.mark.parametrize(
    "estimator", ["grassberger", "james_stein", "zhang", "chao_wang_jost", "nsb"]
)
def test_further_estimators_batch_axes_and_finite(estimator):
    grid = jnp.asarray([[a, b, c] for a in range(5) for b in range(5) for c in range(5)])
    f = lambda c, **kw: entropy_from_counts(c, estimator=estimator, num_classes=3, **kw)  # noqa: E731
    out = f(grid)
    assert np.all(np.isfinite(np.asarray(out))), estimator
    if estimator == "nsb":  # a posterior mean lies inside the prior's support
        assert np.all((np.asarray(out) > 0) & (np.asarray(out) < np.log(3)))
    np.testing.assert_allclose(f(grid.T, axis=0), out, rtol=1e-6)
    np.testing.assert_allclose(f(grid.reshape(5, 25, 3)), out.reshape(5, 25), rtol=1e-6)
    by_vmap = jax.vmap(
        lambda c: jaxinfo.entropy_from_counts(c, estimator=estimator, num_classes=3)
    )(grid)
    np.testing.assert_allclose(by_vmap, out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("k, n", [(10, 10), (50, 20)])
def test_further_estimators_beat_plugin_when_undersampled(x64, k, n):
    p = 1.0 / np.arange(1, k + 1)
    p = p / p.sum()
    h_true = -np.sum(p * np.log(p))
    counts = jnp.asarray(np.random.default_rng(k + n).multinomial(n, p, size=2000))
    plug = np.asarray(entropy_from_counts(counts)).mean() - h_true
    for est in ("grassberger", "james_stein", "zhang", "chao_wang_jost", "nsb"):
        h = np.asarray(entropy_from_counts(counts, estimator=est, num_classes=k))
        se = h.std(ddof=1) / np.sqrt(h.size)
        assert abs(h.mean() - h_true) < abs(plug) - 5 * se, est


# ---------------------------------------------------------------- NSB


def _nsb_reference(c, k):
    """NSB by scipy.integrate.quad in float64, over t = log(beta)."""
    c = np.asarray(c, float)
    n, extra = c.sum(), k - len(c)

    def logd(t):
        b = np.exp(t)
        ll = np.sum(gammaln(c + b) - gammaln(b)) + gammaln(k * b) - gammaln(n + k * b)
        return ll + np.log(k * polygamma(1, k * b + 1) - polygamma(1, b + 1)) + t

    def moments(t):
        b = np.exp(t)
        a = np.concatenate([c + b, np.full(extra, b)])
        tot = a.sum()
        m1 = digamma(tot + 1) - np.sum(a * digamma(a + 1)) / tot
        d = digamma(a + 1) - digamma(tot + 2)
        e = digamma(a + 2) - digamma(tot + 2)
        outer = np.outer(a * d, a * d) - polygamma(1, tot + 2) * np.outer(a, a)
        m2 = np.sum(outer) - np.trace(outer)
        m2 += np.sum(a * (a + 1) * (e**2 + polygamma(1, a + 2) - polygamma(1, tot + 2)))
        return m1, m2 / (tot * (tot + 1))

    ts = np.linspace(-40, 30, 4001)
    ls = np.array([logd(t) for t in ts])
    top = ls.max()
    inside = ts[ls > top - 60]
    kw = dict(epsabs=0, epsrel=1e-12, limit=400, points=[ts[np.argmax(ls)]])

    def integral(g):
        return quad(lambda t: np.exp(logd(t) - top) * g(t), inside[0], inside[-1], **kw)[0]

    z = integral(lambda t: 1.0)
    mean = integral(lambda t: moments(t)[0]) / z
    second = integral(lambda t: moments(t)[1]) / z
    return mean, np.sqrt(second - mean**2)


# Grouped by alphabet size, one shape each (one compilation each).
NSB_CASES = {
    3: [
        [7, 0, 0],  # all in one bin
        [0, 0, 0],  # no samples: the prior
        [1, 1, 1],  # no coincidences
        [140, 160, 0],  # many samples, an outcome unseen
    ],
    10: [
        [4, 2, 1, 1, 0, 0, 0, 0],  # two more unseen outcomes than bins
        [3000, 1500, 700, 300, 200, 150, 100, 50],
        [2, 1, 1, 1, 1, 1, 1, 1],
    ],
}


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("k", sorted(NSB_CASES))
def test_nsb_quadrature_matches_scipy_quad(x64, k):
    counts = np.array(NSB_CASES[k])
    mean, std = jaxinfo.entropy_from_counts_nsb(jnp.asarray(counts), num_classes=k)
    for c, m, s in zip(counts, np.asarray(mean), np.asarray(std), strict=True):
        want_mean, want_std = _nsb_reference(c, k)
        np.testing.assert_allclose(m, want_mean, rtol=1e-8, err_msg=str(c))
        np.testing.assert_allclose(s, want_std, rtol=1e-6, err_msg=str(c))
    if k == 3:  # no samples: the posterior is the prior, uniform xi on [0, log K]
        np.testing.assert_allclose(mean[1], np.log(3) / 2, rtol=1e-8)


def test_nsb_moments_for_one_beta_match_monte_carlo(x64):
    from jaxinfo._nsb import _moments

    c = np.array([4.0, 2, 1, 0, 0])
    beta = 0.7
    mean, var = _moments(jnp.log(beta), jnp.asarray(c), jnp.asarray(c.sum()), 5.0, 0.0, 0)
    p = np.random.default_rng(0).dirichlet(c + beta, size=200_000)
    h = -np.sum(p * np.log(p), axis=1)
    np.testing.assert_allclose(mean, h.mean(), atol=4 * h.std() / np.sqrt(h.size))
    np.testing.assert_allclose(var, h.var(), rtol=0.02)


def test_nsb_batched_jitted_vmapped_and_in_bits():
    c = jnp.asarray(COUNTS[:4])
    mean, std = jaxinfo.entropy_from_counts_nsb(c, num_classes=8)
    assert mean.shape == std.shape == (4,)
    assert np.all(np.isfinite(np.asarray(mean))) and np.all(np.asarray(std) > 0)
    mt, st = jaxinfo.entropy_from_counts_nsb(c.T, num_classes=8, axis=0)
    np.testing.assert_allclose(mt, mean, rtol=1e-5)
    np.testing.assert_allclose(st, std, rtol=1e-4)
    m1, s1 = jax.jit(jax.vmap(lambda r: jaxinfo.entropy_from_counts_nsb(r, num_classes=8)))(c)
    np.testing.assert_allclose(m1, mean, rtol=1e-5)
    np.testing.assert_allclose(s1, std, rtol=1e-4)
    mb, sb = jaxinfo.entropy_from_counts_nsb(c, num_classes=8, base=2)
    np.testing.assert_allclose(mb, mean / np.log(2), rtol=1e-6)
    np.testing.assert_allclose(sb, std / np.log(2), rtol=1e-6)
    by_name = jaxinfo.entropy_from_counts(c, estimator="nsb", num_classes=8)
    np.testing.assert_allclose(by_name, mean)


# ---------------------------------------------------------------- infomeasure


IM_COUNTS = [[4, 2, 1, 1, 3], [30, 12, 5, 2, 1, 1], [1, 1, 1, 1], [5, 1, 2, 2, 7], [3, 1, 1, 9]]
IM_NAMES = {
    "plugin": "discrete",
    "miller_madow": "miller_madow",
    "chao_shen": "chao_shen",
    "james_stein": "shrink",  # infomeasure shrinks towards 1/(observed classes)
    "zhang": "zhang",
    "chao_wang_jost": "chao_wang_jost",
}


def _infomeasure():
    return pytest.importorskip("infomeasure", reason="infomeasure (a test extra) is not installed")


@pytest.mark.parametrize("estimator", sorted(IM_NAMES))
def test_agrees_with_infomeasure(x64, estimator):
    im = _infomeasure()
    # Every bin occupied: infomeasure knows only the classes it observes.
    for c in IM_COUNTS:
        samples = np.repeat(np.arange(len(c)), c)
        want = im.entropy(samples, approach=IM_NAMES[estimator])
        got = jaxinfo.entropy_from_counts(jnp.asarray(c), estimator=estimator)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=str(c))


def test_grassberger_2003_differs_from_infomeasures_1988_form_by_the_expected_amount(x64):
    im = _infomeasure()
    for c in IM_COUNTS:
        c = np.asarray(c, float)
        samples = np.repeat(np.arange(len(c)), c.astype(int))
        theirs = im.entropy(samples, approach="grassberger")
        ours = float(jaxinfo.entropy_from_counts(jnp.asarray(c), estimator="grassberger"))
        sign = (-1.0) ** c
        # 1988: G(n) = psi(n) + (-1)^n / (n + 1); 2003: the half-difference of psi.
        g88_minus_g03 = sign / (c + 1) - sign / 2 * (digamma((c + 1) / 2) - digamma(c / 2))
        expected = np.sum(c * g88_minus_g03) / c.sum()
        assert abs(expected) > 1e-4  # the forms do differ
        np.testing.assert_allclose(ours - theirs, expected, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- errors of the further estimators


def test_bad_counts_and_num_classes():
    f = jaxinfo.entropy_from_counts
    with pytest.raises(ValueError, match=r"counts has a negative entry -1 at index \(1,\)"):
        f(jnp.array([2, -1, 3]), estimator="zhang")
    with pytest.raises(ValueError, match=r"counts has a negative entry -1 at index \(1,\)"):
        f(jnp.array([2, -1, 3]))
    with pytest.raises(ValueError, match=r"non-integer entry 1.5 at index \(0, 2\).*whole-number"):
        f(jnp.array([[2.0, 1.0, 1.5]]), estimator="grassberger")
    f(jnp.array([2.0, 1.0, 1.5]))  # the plug-in takes weights
    with pytest.raises(ValueError, match=r"counts has NaN at index \(0,\)"):
        f(jnp.array([jnp.nan, 1.0]), estimator="chao_wang_jost")
    with pytest.raises(ValueError, match="estimator 'nsb' needs num_classes"):
        f(jnp.array([1, 2]), estimator="nsb")
    with pytest.raises(ValueError, match=r"num_classes=2 is smaller than the number of bins.*3"):
        f(jnp.array([1, 2, 0]), estimator="nsb", num_classes=2)
    with pytest.raises(ValueError, match=r"num_classes=2 is smaller than the number of bins"):
        jaxinfo.entropy_from_counts_nsb(jnp.array([1, 2, 0]), num_classes=2)
    with pytest.raises(TypeError, match="num_classes must be an int"):
        f(jnp.array([1, 2]), estimator="james_stein", num_classes=2.5)
    with pytest.raises(ValueError, match="counts has a negative entry"):
        jaxinfo.entropy_from_counts_nsb(jnp.array([1, -2]), num_classes=2)


def test_traced_bad_counts_give_nan_not_a_number():
    out = entropy_from_counts(jnp.array([[2.0, -1.0], [1.0, 1.5], [1.0, 1.0]]), estimator="zhang")
    assert np.isnan(out[0]) and np.isnan(out[1]) and np.isfinite(out[2])
    mean, std = jax.jit(jaxinfo.entropy_from_counts_nsb, static_argnames="num_classes")(
        jnp.array([[2.0, -1.0], [1.0, 1.0]]), num_classes=2
    )
    assert np.isnan(mean[0]) and np.isnan(std[0]) and np.isfinite(mean[1])

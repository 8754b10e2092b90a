"""Tests of binary_entropy, perplexity and entropy_from_counts."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinfo

# Jitted once per shape: far cheaper on CPU than op-by-op dispatch.
binary_entropy = jax.jit(jaxinfo.binary_entropy)
perplexity = jax.jit(jaxinfo.perplexity, static_argnames=("axis", "keepdims"))
entropy = jax.jit(jaxinfo.entropy, static_argnames=("axis", "keepdims"))
entropy_from_counts = jax.jit(
    jaxinfo.entropy_from_counts, static_argnames=("axis", "keepdims", "estimator")
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


@pytest.mark.parametrize("estimator", ["nsb", "Plugin", "", None, 3])
def test_unknown_estimator(estimator):
    with pytest.raises(
        ValueError,
        match=r"estimator must be one of 'plugin', 'miller_madow', 'chao_shen', got "
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

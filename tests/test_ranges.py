"""Every measure lies inside its mathematical range, exactly, and the Jensen–Shannon distance.

Rounding used to take a value just outside: ``kl_divergence`` of nearly equal
distributions was ``-1.7e-7`` for almost half of random pairs, and
``jnp.sqrt(js_divergence(p, q))`` NaN. Now each result is clamped, in the unit
it is returned in, into ``[0, log_b K]`` (``_units.in_range``); the checks here
are exact (no tolerance): a value is in range when it is at least 0 and at
most the float nearest ``log_b K`` in the result's dtype.

The property tests use a few fixed shapes so that compiled programs are
reused; values are drawn by the strategies of the property suite.
"""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import strategies as gen
from hypothesis import given
from hypothesis import strategies as st
from jax.test_util import check_grads
from scipy.spatial.distance import jensenshannon

import jaxinfo
from jaxinfo._units import clamp
from jaxinfo._weights import kl_divergence_of_weights


def _jit(f, *static):
    return jax.jit(f, static_argnames=("base", *static))


# Jitted once per layout (op-by-op dispatch compiles far more on CPU); the
# Rényi order is traced, so one program serves every alpha.
entropy = _jit(jaxinfo.entropy)
cross_entropy = _jit(jaxinfo.cross_entropy)
kl_divergence = _jit(jaxinfo.kl_divergence)
js_divergence = _jit(jaxinfo.js_divergence)
js_distance = _jit(jaxinfo.js_distance)
renyi_entropy = _jit(jaxinfo.renyi_entropy)
renyi_divergence = _jit(jaxinfo.renyi_divergence)
perplexity = jax.jit(jaxinfo.perplexity)
entropy_from_logits = _jit(jaxinfo.entropy_from_logits)
cross_entropy_from_logits = _jit(jaxinfo.cross_entropy_from_logits)
kl_divergence_from_logits = _jit(jaxinfo.kl_divergence_from_logits)
cross_entropy_from_labels = _jit(jaxinfo.cross_entropy_from_labels)
mutual_information = _jit(jaxinfo.mutual_information)
conditional_entropy = _jit(jaxinfo.conditional_entropy)
joint_entropy = _jit(jaxinfo.joint_entropy)
entropy_from_counts = _jit(jaxinfo.entropy_from_counts, "estimator")
binary_entropy = _jit(jaxinfo.binary_entropy)

# One layout per dtype, two shapes in all: each measure compiles once per layout.
LAYOUTS = (
    gen.Layout((4, 8), 1, "float32"),
    gen.Layout((4, 8), 1, "float64"),
    gen.Layout((3, 5), 1, "bfloat16"),
    gen.Layout((3, 5), 1, "float16"),
)
ALPHAS = (0.0, 0.5, 1.0, 2.0, np.inf)


def _x64(dtype: str):
    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def _bound(k, base, dtype):
    """The float nearest ``log_base k`` in ``dtype``, from float64 (``k = 0`` counts as one)."""
    nats = np.log(np.maximum(np.asarray(k, np.float64), 1))
    return (nats / (1.0 if base is None else np.log(base))).astype(dtype)


def assert_in_range(value, upper, what):
    """``0 <= value <= upper`` elementwise, exactly; NaN fails."""
    value = np.asarray(value)
    upper = np.broadcast_to(np.asarray(upper, value.dtype), value.shape)
    inside = (value >= 0) & (value <= upper)
    assert inside.all(), (
        f"{what} outside [0, upper]: values {value[~inside]} against bounds {upper[~inside]}"
    )


# ------------------------------------------------------------- the case


def _nearly_equal_pairs(n=10_000, k=8, *, rel=1e-7, seed=0):
    """``n`` random pairs over ``k`` outcomes: ``q`` is ``p`` perturbed by ``rel``."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k), size=n).astype(np.float32)
    q = p * (1 + rel * rng.standard_normal((n, k)).astype(np.float32))
    return p, (q / q.sum(axis=-1, keepdims=True)).astype(np.float32)


def test_nearly_equal_pairs_are_never_negative():
    """The issue's count: before the clamp, 5,455 of these 10,000 KL values were negative."""
    p, q = _nearly_equal_pairs()
    kl = np.asarray(kl_divergence(p, q))
    js = np.asarray(js_divergence(p, q))
    negative = {"KL": int((kl < 0).sum()), "JS": int((js < 0).sum())}
    assert negative == {"KL": 0, "JS": 0}
    with np.errstate(invalid="raise"):
        root = np.sqrt(js)  # what a user writes for the distance
    np.testing.assert_array_equal(np.asarray(js_distance(p, q)), root)
    # Not clamped to 0 wholesale: the values are the rounding-level ones.
    assert 0 < kl.max() < 1e-6 and 0 < js.max() < 1e-6


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.dtype)
def test_nearly_equal_pairs_in_every_form(layout):
    """Each dtype on its layout, with a ``where`` of every outcome: the programs of the
    property tests below, compiled once for both."""
    dtype = layout.dtype
    with _x64(dtype):
        p, q = (x.astype(dtype) for x in _nearly_equal_pairs(*layout.shape, seed=1))
        lp, lq = (np.log(x.astype(np.float64)).astype(dtype) for x in (p, q))
        where = np.ones(layout.shape, bool)
        for name, value in [
            ("KL", kl_divergence(p, q, where=where)),
            ("KL(P‖P)", kl_divergence(p, p, where=where)),
            ("JS distance", js_distance(p, q, where=where)),
            ("CE", cross_entropy(p, q, where=where)),
            ("KL of logits", kl_divergence_from_logits(lp, lq, where=where)),
            ("CE of logits", cross_entropy_from_logits(p, lq, where=where)),
            *((f"Rényi D_{a}", renyi_divergence(p, q, a, where=where)) for a in ALPHAS),
        ]:
            assert_in_range(value, np.inf, f"{name} of nearly equal {dtype} rows")
        js = js_divergence(p, q, where=where)
        assert_in_range(js, _bound(2, None, js.dtype), "JS <= log 2")


# ------------------------------------------------------------- exact upper bounds


@pytest.mark.parametrize("base", [None, 2, 10])
def test_uniform_rows_reach_log_k_and_no_further(base):
    """Rows uniform over K outcomes measure the float nearest log_b K, never above it."""
    k = np.array([1, 3, 5, 8])
    where = jnp.asarray(np.arange(8) < k[:, None])  # K outcomes of a row of 8
    ones = jnp.ones((4, 8))
    bound = _bound(k, base, np.float32)
    for name, value in [
        ("H", entropy(ones, where=where, base=base)),
        ("H of logits", entropy_from_logits(jnp.zeros_like(ones), where=where, base=base)),
        ("H_0", renyi_entropy(ones, 0.0, where=where, base=base)),
        ("H_2", renyi_entropy(ones, 2.0, where=where, base=base)),
    ]:
        assert_in_range(value, bound, name)
        # and not pulled away from the bound by it: within an ulp or two
        np.testing.assert_allclose(np.asarray(value), bound, rtol=2.5e-7, err_msg=name)
    # A static K (no where): the bound is taken from float64 while tracing.
    h = entropy(ones[:, :7], base=base)
    assert_in_range(h, _bound(7, base, np.float32), "H of a static K")


def test_disjoint_supports_reach_log_2_and_no_further():
    p, q = jnp.eye(4, 8), jnp.roll(jnp.eye(4, 8), 1, axis=1)
    where = jnp.ones((4, 8), bool)
    for base in (None, 2, 10):
        js = js_divergence(p, q, where=where, base=base)
        assert_in_range(js, _bound(2, base, np.float32), "JS <= log 2")
        np.testing.assert_allclose(np.asarray(js), _bound(2, base, np.float32), rtol=2.5e-7)
    np.testing.assert_array_equal(np.asarray(js_divergence(p, q, where=where, base=2)), 1.0)
    np.testing.assert_array_equal(np.asarray(js_distance(p, q, where=where, base=2)), 1.0)
    np.testing.assert_array_equal(np.asarray(jaxinfo.binary_entropy(0.5, base=2)), 1.0)


def test_perplexity_of_uniform_rows_is_at_most_k():
    k = np.array([1, 3, 4, 7])
    where = jnp.asarray(np.arange(8) < k[:, None])
    pp = np.asarray(perplexity(jnp.ones((4, 8)), where=where))
    assert ((pp >= 1) & (pp <= k)).all(), pp
    np.testing.assert_allclose(pp, k, rtol=5e-7)


def test_traced_base_keeps_the_range():
    """A traced base: the range is kept in nats, then converted (within the division's rounding)."""
    p, q = _nearly_equal_pairs(4, 8)
    js = jax.jit(jaxinfo.js_divergence)(p, q, base=2.0)
    assert_in_range(js, np.inf, "JS with a traced base")
    js = jax.jit(jaxinfo.js_divergence)(jnp.eye(4, 8), jnp.roll(jnp.eye(4, 8), 1, 1), base=2.0)
    np.testing.assert_allclose(np.asarray(js), 1.0, rtol=1e-7)


def test_nan_stays_nan():
    """The clamp keeps a NaN (an out-of-range label's loss: see test_labels_losses_in_range)."""
    p = np.ones((4, 8), np.float32)
    p[1, 2] = np.nan
    h = np.asarray(entropy(p, where=np.ones((4, 8), bool)))
    np.testing.assert_array_equal(np.isnan(h), [False, True, False, False])


def test_the_clamp_passes_the_derivative_through():
    """Clamping moves a value by rounding only; its derivative is the measure's own."""
    for x in (-1e-7, 0.5, 1.0 + 1e-7):
        assert float(jax.grad(lambda x: clamp(x, 0.0, 1.0))(x)) == 1.0
    assert float(jax.grad(jax.grad(lambda x: clamp(x, 0.0, 1.0) * x))(-1e-7)) == 2.0
    # The pairs: where the kernel's value was negative (and is now 0),
    # the gradient is still the kernel's, not jnp.clip's 0.
    p, q = _nearly_equal_pairs()
    assert (np.asarray(kl_divergence_of_weights(p, q, 1)) < 0).any()
    got = jax.grad(lambda b: kl_divergence(p, b).sum())(q)
    want = jax.grad(lambda b: kl_divergence_of_weights(p, b, 1).sum())(q)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert np.abs(np.asarray(got)).max() > 0


# ------------------------------------------------------------- property tests
# In nats: the bound in other units is the same clamp, checked exactly above.


@given(data=st.data(), regime=st.sampled_from(["standard", "extreme"]))
def test_measures_of_probabilities_in_range(data, regime):
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    with _x64(layout.dtype):
        p = data.draw(gen.weights(layout, regime), label="p")
        q = data.draw(gen.weights(layout, regime), label="q")
        where = data.draw(gen.masks(layout.shape, layout.axis), label="where")
        k = where.sum(axis=layout.axis)
        h = entropy(p, where=where)
        assert_in_range(h, _bound(k, None, h.dtype), "H <= log K")
        for name, value in [
            ("CE", cross_entropy(p, q, where=where)),
            ("KL", kl_divergence(p, q, where=where)),
            ("KL(P‖P)", kl_divergence(p, p, where=where)),
            ("JS distance", js_distance(p, q, where=where)),
        ]:
            assert_in_range(value, np.inf, name)
        js = js_divergence(p, q, where=where)
        assert_in_range(js, _bound(2, None, js.dtype), "JS <= log 2")
        for alpha in ALPHAS:
            h_a = renyi_entropy(p, alpha, where=where)
            assert_in_range(h_a, _bound(k, None, h_a.dtype), f"H_{alpha} <= log K")
            assert_in_range(renyi_divergence(p, q, alpha, where=where), np.inf, f"D_{alpha}")
        pp = np.asarray(perplexity(p, where=where))
        assert ((pp >= 1) & (pp <= np.maximum(k, 1))).all(), "1 <= perplexity <= K"


@given(data=st.data(), regime=st.sampled_from(["standard", "extreme"]))
def test_measures_of_logits_in_range(data, regime):
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    with _x64(layout.dtype):
        a = data.draw(gen.logits(layout, regime), label="logits")
        b = data.draw(gen.logits(layout, regime), label="other logits")
        p = data.draw(gen.weights(layout, "standard"), label="p")
        where = data.draw(gen.masks(layout.shape, layout.axis), label="where")
        h = entropy_from_logits(a, where=where)
        k = where.sum(axis=layout.axis)
        assert_in_range(h, _bound(k, None, h.dtype), "H of logits <= log K")
        assert_in_range(kl_divergence_from_logits(a, b, where=where), np.inf, "KL of logits")
        assert_in_range(kl_divergence_from_logits(a, a, where=where), np.inf, "KL(P‖P)")
        assert_in_range(cross_entropy_from_logits(p, a, where=where), np.inf, "CE of logits")


@given(data=st.data())
def test_labels_losses_in_range(data):
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    with _x64(layout.dtype):
        logits = data.draw(gen.logits(layout, "standard"), label="logits")
        y = data.draw(gen.labels(layout.batch_shape, layout.classes), label="labels")
        eps = data.draw(st.sampled_from([0.0, 0.1]), label="label_smoothing")
        loss = np.asarray(cross_entropy_from_labels(y, logits, label_smoothing=eps))
        valid = y < layout.classes  # a label out of range gives NaN, by design
        assert np.isnan(loss[~valid]).all()
        assert_in_range(loss[valid], np.inf, "CE of labels")
        # The loss of the most likely class, which rounding used to take below 0.
        top = np.argmax(logits.astype(np.float64), axis=-1).astype(np.int32)
        assert_in_range(cross_entropy_from_labels(top, logits), np.inf, "CE of the top label")


def test_linear_cross_entropy_of_a_certain_label_is_not_negative():
    x = jnp.array([[30.0, 0.0], [0.0, 50.0], [1.0, 1.0]])
    w = jnp.array([[1.0, 0.0, 0.1], [0.0, 1.0, 0.1]])
    labels = jnp.array([0, 1, 2])
    loss = jaxinfo.linear_cross_entropy(x, w, labels, chunk_size=2)
    assert_in_range(loss, np.inf, "linear CE")
    want = jaxinfo.cross_entropy_from_labels(labels, x @ w)
    np.testing.assert_allclose(np.asarray(loss), np.asarray(want), rtol=1e-6)


@given(data=st.data(), regime=st.sampled_from(["standard", "extreme"]))
def test_joint_measures_in_range(data, regime):
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    with _x64(layout.dtype):
        pxy = data.draw(gen.weights(layout, regime), label="pxy")
        nx, ny = layout.shape
        mi = mutual_information(pxy)
        assert_in_range(mi, _bound(min(nx, ny), None, mi.dtype), "I(X;Y) <= log min(|X|,|Y|)")
        ch = conditional_entropy(pxy)
        assert_in_range(ch, _bound(ny, None, ch.dtype), "H(Y|X) <= log |Y|")
        hj = joint_entropy(pxy)
        assert_in_range(hj, _bound(nx * ny, None, hj.dtype), "H(X,Y) <= log |X||Y|")
        # A deterministic channel: H(Y|X) = 0 exactly, never -1e-8.
        copy = np.eye(nx, ny).astype(pxy.dtype)
        assert_in_range(conditional_entropy(copy), 0, "H(Y|X) of a copy")


@given(data=st.data(), regime=st.sampled_from(["standard", "extreme"]))
def test_estimates_from_counts_in_range(data, regime):
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    with _x64(layout.dtype):
        with np.errstate(over="ignore"):  # the strategy scales float64 counts past the maximum
            counts = data.draw(gen.counts(layout, regime), label="counts")
        counts = counts.astype(layout.dtype)  # whole numbers: one program per layout
        h = entropy_from_counts(counts)
        assert_in_range(h, _bound(layout.classes, None, h.dtype), "plug-in H <= log K")
        # The corrections can exceed log K (K singletons: Miller–Madow adds (K-1)/2K).
        for estimator in ("miller_madow", "chao_shen"):
            assert_in_range(entropy_from_counts(counts, estimator=estimator), np.inf, estimator)
        u = data.draw(gen.unit_interval(layout.shape, layout.dtype), label="p")
        hb = binary_entropy(u)
        assert_in_range(hb, _bound(2, None, hb.dtype), "binary H <= log 2")


def test_miller_madow_can_exceed_log_k():
    """Why only the plug-in estimate is bounded above: K singletons."""
    k = 8
    h = float(jaxinfo.entropy_from_counts(jnp.ones(k), estimator="miller_madow"))
    np.testing.assert_allclose(h, np.log(k) + (k - 1) / (2 * k), rtol=1e-6)
    assert h > np.log(k)


# ------------------------------------------------------------- js_distance


def _dists(seed, shape, zero_frac=0.25):
    rng = np.random.default_rng(seed)
    p = rng.gamma(0.8, size=shape)
    p[rng.random(shape) < zero_frac] = 0.0
    p[..., 0] += 0.1
    return p / p.sum(axis=-1, keepdims=True)


def test_js_distance_matches_scipy(x64):
    p, q = _dists(0, (4, 8)), _dists(1, (4, 8))
    where = np.arange(8) < 6
    for base in (None, 2):
        got = js_distance(p, q, where=np.broadcast_to(where, (4, 8)), base=base)
        want = jensenshannon(p[:, :6], q[:, :6], axis=-1, base=base)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-15)


def test_js_distance_gradients_away_from_p_equal_q(x64):
    # entries well above the finite differences' step
    rng = np.random.default_rng(2)
    p, q = rng.dirichlet(np.full(5, 5.0), size=(2, 3))
    f = jax.jit(lambda a, b: jaxinfo.js_distance(a, b, base=2))
    check_grads(jax.jit(f), (jnp.asarray(p), jnp.asarray(q)), order=1, modes=("fwd", "rev"))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_js_distance_gradient_at_p_equal_q_is_zero(dtype):
    """The tip of the cone: 0 (the least subgradient), never NaN, in both modes."""
    with _x64(dtype):
        p = jnp.asarray(_dists(4, (4, 8)), dtype)
        both = jax.jit(jax.grad(lambda a, b: js_distance(a, b).sum(), argnums=(0, 1)))
        for g in both(p, p):
            np.testing.assert_array_equal(np.asarray(g, np.float64), 0.0)
        if dtype != "float32":
            return
        forward = jax.jit(lambda a, t: jax.jvp(lambda a: js_distance(a, p), (a,), (t,))[1])
        np.testing.assert_array_equal(np.asarray(forward(p, jnp.ones_like(p))), 0.0)
        # Through a softmax, as a loss would use it; the naive root is NaN there.
        loss = lambda s, f: f(jax.nn.softmax(s), jax.nn.softmax(s)).sum()  # noqa: E731
        grad = jax.jit(jax.grad(loss), static_argnums=1)
        logits = jnp.log(p)
        assert np.isfinite(np.asarray(grad(logits, js_distance))).all()
        naive = lambda a, b: jnp.sqrt(js_divergence(a, b))  # noqa: E731
        assert np.isnan(np.asarray(grad(logits, naive))).any()


def test_js_distance_gradient_near_p_equal_q_is_finite():
    """Close to the tip, where JS is at the level of rounding, the gradient is finite."""
    p, q = _nearly_equal_pairs()
    g = np.asarray(jax.jit(jax.grad(lambda b: js_distance(p, b).sum()))(q))
    assert np.isfinite(g).all()


def test_js_distance_rejects_a_base_below_one():
    with pytest.raises(ValueError, match="base above 1"):
        jaxinfo.js_distance(jnp.ones(2), jnp.ones(2), base=0.5)

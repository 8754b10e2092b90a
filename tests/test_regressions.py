"""Regression tests: the minimal failing examples found by tests/test_properties.py.

Each test is the smallest input hypothesis shrank a failure to, with the value
or gradient it must give.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinfo


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_inputs_under_strict_promotion(dtype):
    # Found: entropy(float16 array) raised TypePromotionError under
    # jax_numpy_dtype_promotion="strict": float16 -> float32 was an implicit
    # promotion. Low precision is widened to float32 by width now.
    p = jnp.array([0.5, 0.5], dtype)
    logits = jnp.zeros(2, dtype)
    with jax.numpy_dtype_promotion("strict"):
        h = jaxinfo.entropy(p)
        ce = jaxinfo.cross_entropy(p, p)
        kl = jaxinfo.kl_divergence_from_logits(logits, logits)
        ce_labels = jaxinfo.cross_entropy_from_labels(jnp.array(0), logits)
    assert h.dtype == ce.dtype == kl.dtype == ce_labels.dtype == jnp.float32
    np.testing.assert_allclose(
        [h, ce, kl, ce_labels], [math.log(2), math.log(2), 0, math.log(2)], rtol=1e-6, atol=1e-7
    )


TINY = float(jnp.finfo(jnp.float32).tiny)  # 1.18e-38, the smallest normal float32
F32 = jnp.float32
MAX = float(jnp.finfo(jnp.float32).max)  # 3.4e38


# Probabilities are normalised along the axis, so weights of any size are valid
# input. Found: weights near the float32 maximum overflowed (p log p, or the row
# sum) and rows of weights near the smallest normal number lost their products
# p log q to flush-to-zero, or got NaN gradients of order 1 / sum(p)**2. Fixed
# by scaling each row by the power of two nearest its total first
# (_range.scale_by_total).


@pytest.mark.parametrize("big", [1e37, 3e38])
def test_entropy_of_huge_weights(big):
    # was -inf (1e37: p log p overflows) and NaN (3e38: the sum overflows)
    np.testing.assert_allclose(jaxinfo.entropy(jnp.array([big, big], F32)), math.log(2), rtol=1e-6)


def test_entropy_gradient_of_tiny_weights():
    # was [nan, nan]: 1 / sum(p)**2 overflowed; the uniform row is a maximum
    g = jax.grad(jaxinfo.entropy)(jnp.array([TINY, TINY], F32))
    np.testing.assert_array_equal(g, [0.0, 0.0])


def test_cross_entropy_of_tiny_weights():
    # was 0.6931 = log 2: p * log q underflowed to zero, leaving only log(sum q)
    got = jaxinfo.cross_entropy(jnp.array([TINY, TINY], F32), jnp.array([0.25, 0.75], F32))
    want = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_cross_entropy_of_huge_weights():
    q = jnp.array([0.25, 0.75], F32)
    want = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    # was nan: sum(p) overflowed to inf
    np.testing.assert_allclose(
        jaxinfo.cross_entropy(jnp.array([3e38, 3e38], F32), q), want, rtol=1e-5
    )
    # was inf: log(sum(q)) overflowed
    got = jaxinfo.cross_entropy(jnp.array([0.5, 0.5], F32), jnp.array([3e38, 3e38], F32))
    np.testing.assert_allclose(got, math.log(2), rtol=1e-5)


@pytest.mark.parametrize(
    "p, q, want",
    [
        pytest.param([0.5, 0.5], [3e38, 3e38], 0.0),  # log(sum(q)) overflowed
        pytest.param([1e37, 1e37], [0.5, 0.5], 0.0),  # p log p overflowed
        ([TINY, 0.0], [0.5, 0.5], math.log(2)),  # was 0: p log p flushed to zero
    ],
)
def test_kl_divergence_of_extreme_weights(p, q, want):
    got = jaxinfo.kl_divergence(jnp.array(p, F32), jnp.array(q, F32))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_cross_entropy_from_logits_of_extreme_weights():
    logits = jnp.array([0.0, 1.0], F32)
    want = math.log1p(math.e) - 0.5  # p = (1/2, 1/2)
    # was log(1 + e) = 1.3133: sum(p) overflowed and the p-weighted sum vanished
    got = jaxinfo.cross_entropy_from_logits(jnp.array([3e38, 3e38], F32), logits)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # was [-inf, -inf]; the true gradient, (-log q_i - H) / sum(p), is about 2e37
    g = jax.grad(jaxinfo.cross_entropy_from_logits)(jnp.array([TINY, TINY], F32), logits)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g * (2 * TINY), [0.5, -0.5], rtol=1e-5)


def test_scaled_weights_survive_xla_reciprocal():
    # Found while fixing the above: XLA compiles w / max(w) as w * (1 / max(w)),
    # and 1 / 3.4e38 is subnormal, flushed to zero on CPU: a row of bfloat16
    # maxima had entropy 0. The scale is a multiplication by a power of two
    # clipped to normal numbers (entries up to 4 where the clip bites), and a
    # row whose sum overflows is summed again after scaling.
    p = jnp.full((9,), jnp.finfo(jnp.bfloat16).max, jnp.bfloat16)
    np.testing.assert_allclose(jax.jit(jaxinfo.entropy)(p), math.log(9), rtol=1e-6)


def test_gradient_on_a_row_of_subnormals_is_finite():
    # Found while fixing the above: a row whose total is subnormal is empty
    # where the platform flushes subnormals (CPU), but its exponent is not; a
    # scale of 2**127 made the (one-sided) gradient inf. Such rows are not
    # scaled now, as before the fix.
    p = jnp.array([9.18355e-41], jnp.bfloat16)  # the smallest bfloat16
    assert np.all(np.isfinite(jax.grad(jaxinfo.entropy)(p).astype(F32)))
    assert np.all(np.isfinite(jax.jacfwd(jaxinfo.entropy)(p)))


# Logits near the float maximum: a sum of p_i * s_i over classes overflowed
# before the division by the total that brings it back in range. Found with
# logits of -3.4e38 (float32's lowest) among zeros; fixed by normalising inside
# the sum. BIG is chosen so that the true values are finite in float32.
BIG = 3e38


def test_cross_entropy_from_logits_with_huge_negative_logits():
    # was inf: 1 * -3e38 + 1 * -3e38 overflowed before dividing by sum(p) = 2
    got = jaxinfo.cross_entropy_from_logits(
        jnp.array([1.0, 1.0, 0.0], F32), jnp.array([-BIG, -BIG, 0.0], F32)
    )
    np.testing.assert_allclose(got, BIG, rtol=1e-6)


def test_kl_divergence_from_logits_with_huge_negative_logits():
    # was inf: the sum of exp(s) * (s_p - s_q) = 6e38 overflowed before / Z = 3
    got = jaxinfo.kl_divergence_from_logits(jnp.zeros(3, F32), jnp.array([-BIG, -BIG, 0.0], F32))
    np.testing.assert_allclose(got, 2 / 3 * BIG, rtol=1e-6)


def test_label_smoothing_with_huge_negative_logits():
    # was inf: the mean of the logits was a sum (-6e38) divided by their number
    logits = jnp.array([-BIG, -BIG, 0.0], F32)
    got = jaxinfo.cross_entropy_from_labels(jnp.array(2), logits, label_smoothing=0.1)
    np.testing.assert_allclose(got, 0.1 * 2 / 3 * BIG, rtol=1e-6)


def test_label_on_a_row_with_every_class_excluded_measures_zero():
    # Found by the property suite: the docstring said "a label on an excluded
    # class has loss inf" without exception, while the code (and the README:
    # "a row whose classes are all masked measures 0") gives 0 when every class
    # of the row is excluded. The docstring now states the exception.
    logits = jnp.zeros((2, 3), F32)
    where = jnp.array([[False, False, False], [True, False, True]])
    got = jaxinfo.cross_entropy_from_labels(jnp.array([0, 1]), logits, where=where)
    np.testing.assert_array_equal(got, [0.0, np.inf])


# The family (js_divergence, renyi_*, the joint measures) normalised with
# p / sum(p): for weights near the float maximum the sum overflows and the row
# became "no mass". Found by the property suite; fixed with _range.normalise
# (scale_by_total, then divide).


def test_family_of_huge_weights():
    big = jnp.array([3e38, 3e38], F32)
    np.testing.assert_allclose(
        jaxinfo.renyi_entropy(jnp.full(7, 3e38, F32), 0.0), math.log(7), rtol=1e-6
    )  # was 0
    np.testing.assert_allclose(jaxinfo.renyi_entropy(big, 2.0), math.log(2), rtol=1e-6)  # was 0
    js = jaxinfo.js_divergence(jnp.array([1.0, 0.0], F32), big)  # was 0
    want = 0.5 * (math.log(4 / 3) + 0.5 * math.log(2 / 3) + 0.5 * math.log(2))
    np.testing.assert_allclose(js, want, rtol=1e-5)
    np.testing.assert_allclose(
        jaxinfo.renyi_divergence(jnp.array([1.0, 0.0], F32), big, 1.0), math.log(2), rtol=1e-6
    )  # was 0
    table = jnp.full((2, 2), 3e38, F32)
    np.testing.assert_allclose(jaxinfo.conditional_entropy(table), math.log(2), rtol=1e-6)
    np.testing.assert_allclose(
        jaxinfo.mutual_information(jnp.eye(2, dtype=F32) * 3e38), math.log(2), rtol=1e-6
    )  # was 0


def test_js_divergence_of_entries_near_the_smallest_normal():
    # was inf: M = (P + Q) / 2 halved 2e-38 to a subnormal, flushed to zero, so
    # D(P‖M) saw p > 0 = m. The Jensen-Shannon divergence is never infinite.
    p, q = jnp.array([2e-38, 1.0], F32), jnp.array([0.0, 1.0], F32)
    assert float(jaxinfo.js_divergence(p, q)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_renyi_divergence_of_disjoint_supports_is_inf(alpha):
    # was 16.6 (alpha = 0) and 33.3 (alpha = 1/2): the mass of P outside the
    # support of Q summed to 1 - 6e-8, which was taken for a partial overlap.
    p = jnp.array([0.175655618, 0.863178909, 0.541461229, 0.299711883, 0.422687232], F32)
    assert jaxinfo.renyi_divergence(p, jnp.zeros(5, F32), alpha) == jnp.inf
    assert jaxinfo.renyi_divergence(p, jnp.array([0, 0, 0, 0, 1.0], F32), alpha) < jnp.inf


@pytest.mark.parametrize("measure", [jaxinfo.conditional_entropy, jaxinfo.mutual_information])
def test_joint_gradients_with_small_marginals(measure):
    # was NaN: the derivative of p(x, y) / p(x) in p(x) squares the marginal,
    # 1e-40 underflows to zero in float32, and 0 * inf followed.
    table = jnp.array([[1.0, 1e-20], [1e-20, 1e-20]], F32)
    g = jax.grad(measure)(table)
    assert np.all(np.isfinite(g)), g
    with jax.enable_x64(True):
        want = jax.grad(measure)(table.astype(jnp.float64))
    np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-6)


def test_kl_divergence_forward_mode_on_a_row_of_tiny_weights():
    # Found by the property suite (float64, rows of 2.2e-308): jacfwd of
    # kl_divergence was NaN where the true derivatives are about 4e37 (float32
    # here). Each p_i log p_i carried log p = -87 times a derivative of 1e37,
    # and the terms cancelled as inf - inf. The logarithms are now of the
    # scaled weights (order one), normalised inside the sum.
    p = jnp.full(4, TINY, F32)
    q = jnp.array([0.64, 0.27, 0.04, 0.017], F32)
    fwd = jax.jacfwd(jaxinfo.kl_divergence)(p, q)
    np.testing.assert_allclose(fwd, jax.grad(jaxinfo.kl_divergence)(p, q), rtol=1e-5)
    assert np.all(np.isfinite(fwd))
    # and identical rows still cancel exactly, whatever their scale
    for row in ([0.2, 0.3, 0.5], [3e38, 1e38], [TINY, 2 * TINY]):
        assert float(jaxinfo.kl_divergence(jnp.array(row, F32), jnp.array(row, F32))) == 0.0


def test_chao_shen_of_counts_summing_beyond_the_float_range():
    # Found by the property suite: "finite for every histogram" (the
    # docstring), but 1000 bins of 3.4e35 gave NaN: N = sum(counts) overflowed
    # to inf, the frequencies counts / N became 0, and N * log1p(-0) = inf * 0.
    counts = jnp.full(1000, 3.4e35, F32)
    got = jaxinfo.entropy_from_counts(counts, estimator="chao_shen")
    np.testing.assert_allclose(got, math.log(1000), rtol=1e-5)


@pytest.mark.parametrize(
    "measure",
    [
        jaxinfo.entropy_from_logits,
        lambda x: jaxinfo.cross_entropy_from_logits(x, x),
        lambda x: jaxinfo.kl_divergence_from_logits(x, x),
        lambda x: jaxinfo.renyi_entropy(x, 2.0),
        lambda x: jaxinfo.renyi_divergence(x, x, 0.5),
    ],
)
def test_rows_with_no_classes_are_empty_rows(measure):
    # Found by the validation work: logits of shape (3, 0) raised "zero-size
    # array to reduction operation max" from inside jnp.max, while entropy and
    # the other probability measures gave 0. A row with no classes is an
    # empty row: it measures 0, with an (empty) gradient.
    x = jnp.ones((3, 0), F32)
    np.testing.assert_array_equal(measure(x), [0.0, 0.0, 0.0])
    assert jax.grad(lambda x: jnp.sum(measure(x)))(x).shape == (3, 0)


# Found by the property suite (tests/test_properties.py) in the Shannon kernels.


def test_float16_entropy_gradient_of_a_tiny_row_is_not_nan():
    # was [nan, nan, nan]: the narrow (float16) input received its gradient
    # twice, each part cast to float16 on its own, +inf and -inf summing to
    # NaN. The true gradient, [0, 2.4e6, 2.4e6], is beyond float16's range.
    g = jax.grad(jaxinfo.entropy)(jnp.array([3.159e-05, 0, 0], jnp.float16))
    assert not np.any(np.isnan(g.astype(F32)))
    # the first entry's true gradient is 0: zero up to rounding, against a
    # gradient scale of 1 / sum(p) = 3.2e4
    assert abs(float(g[0])) < 1e-6 / 3.159e-05 and g[1] > 0 and g[2] > 0


def test_kl_divergence_with_a_tiny_entry_of_p_under_a_large_q():
    # was -inf: x / y = 1.18e-38 / 16 is subnormal, flushed to 0 on CPU, and
    # x * log(0) = -inf. The tiny entry contributes about 1e-36.
    got = jaxinfo.kl_divergence(jnp.array([1.0, TINY], F32), jnp.array([1.0, 16.0], F32))
    np.testing.assert_allclose(got, math.log(17), rtol=1e-6)


def test_cross_entropy_forward_derivative_with_subnormal_entries():
    # was nan (jvp and vjp in one jit) and -inf (jvp alone): the derivative
    # rule tested "== 0" on subnormals that XLA:CPU reads as 0 in some
    # operations and not in others. The float64 value is 2 / 35 either way.
    p = jnp.array([35, 1.83671e-40, 9.18355e-41], jnp.bfloat16)
    tp, tq = jnp.array([1, -1, 1], jnp.bfloat16), jnp.ones(3, jnp.bfloat16)

    def jvp(p, q):
        return jax.jvp(jaxinfo.cross_entropy, (p, q), (tp, tq))[1]

    @jax.jit
    def jvp_and_vjp(p, q):
        v, vjp = jax.vjp(jaxinfo.cross_entropy, p, q)
        return jvp(p, q), vjp(jnp.ones_like(v))

    np.testing.assert_allclose(jax.jit(jvp)(p, p), 2 / 35, rtol=1e-5)
    np.testing.assert_allclose(jvp_and_vjp(p, p)[0], 2 / 35, rtol=1e-5)


@pytest.mark.parametrize(
    "logits, where",
    [([-np.inf, -np.inf], None), ([0.0, 1.0], [False, False])],
)
def test_label_smoothing_gradient_on_an_empty_row(logits, where):
    # was nan: the empty row measures 0 for every eps, but the smoothed loss
    # took (1 - eps) * s_y with s_y = -inf before the final select.
    where = None if where is None else jnp.array(where)

    def loss(eps):
        logits_ = jnp.array(logits, F32)
        return jaxinfo.cross_entropy_from_labels(
            jnp.array(0), logits_, where=where, label_smoothing=eps
        )

    assert loss(0.1) == 0
    assert jax.grad(loss)(0.1) == 0


# Found by the property suite: forward-mode derivatives of the Rényi measures
# were NaN next to a weight near the smallest normal number (reverse mode was
# right). Its logarithm's tangent, dw / w, is near the float maximum; times
# t = alpha - 1 (alpha = 100, the log-sum-exp form) or times t h'(t y)
# (alpha = 0.75, the centred form) it overflowed, and then met a weight of 0
# (an underflowed exp) or of 2e-38 as 0 * inf. Fixed in _scaled_cgf: terms
# whose exponential underflows leave the derivative as well as the sum, and the
# centred form's terms multiply their tangents by the weight first.
@pytest.mark.parametrize("alpha, want", [(100.0, 1010.101010), (0.75, 1.3624125e12)])
def test_renyi_forward_mode_next_to_the_smallest_normal(alpha, want):
    p = jnp.array([1e-3, 2 * TINY], F32)  # the derivative along the tiny entry
    d = jnp.array([0.0, 1.0], F32)
    q = jnp.array([0.5, 0.5], F32)
    for measure, sign in (
        (lambda p: jaxinfo.renyi_entropy(p, alpha), 1),
        (lambda p: jaxinfo.renyi_divergence(p, q, alpha), -1),
    ):
        forward = jax.jvp(measure, (p,), (d,))[1]  # was NaN
        np.testing.assert_allclose(forward, sign * want, rtol=1e-5)
        np.testing.assert_allclose(forward, jax.grad(measure)(p) @ d, rtol=1e-5)


def test_binary_entropy_of_small_probabilities():
    # Found by the property suite: h(p) = -p log p - (1 - p) log(1 - p) lost
    # its second term, about +p, where 1 - p rounds: 2.07969e-05 instead of
    # 2.08062e-05 at p = 1.44e-6 (float32), 69.08 p instead of 70.08 p at
    # p = 1e-30. Fixed with log1p(-p) below p = 1/2.
    p = jnp.array([1.439772e-06, 1e-30], F32)
    want = [-x * math.log(x) - (1 - x) * math.log1p(-x) for x in np.asarray(p, np.float64)]
    np.testing.assert_allclose(jaxinfo.binary_entropy(p), want, rtol=1e-6)


def test_linear_cross_entropy_with_one_feature_and_huge_logits():
    # Found by the property suite: with one feature (D = 1) the loss was inf
    # where the logits x @ w are 1e30 (cross_entropy_from_labels(y, x @ w) is
    # 0 and 7e30), and the gradients wrong. XLA made the product an
    # elementwise multiplication, recomputed it in every consumer and fused
    # x·w - max into a multiply-add: exp(±half an ulp of 1e30) = inf or 0.
    # One feature is now padded to two, so that the product stays a dot.
    x = jnp.array([[1e15]], F32)
    w = jnp.array([[-1e15, 6e15]], F32)
    for label, want, want_dx, want_dw in (
        (1, 0.0, 0.0, [0.0, 0.0]),
        (0, 7e30, 7e15, [-1e15, 1e15]),
    ):
        y = jnp.array([label])
        np.testing.assert_allclose(jaxinfo.linear_cross_entropy(x, w, y), [want], rtol=1e-6)
        got = jax.jit(jaxinfo.linear_cross_entropy)(x, w, y)
        np.testing.assert_allclose(got, [want], rtol=1e-6)
        dx, dw = jax.jit(
            jax.grad(lambda x, w, y=y: jaxinfo.linear_cross_entropy(x, w, y).sum(), argnums=(0, 1))
        )(x, w)
        np.testing.assert_allclose(dx, [[want_dx]], rtol=1e-6)
        np.testing.assert_allclose(dw, [want_dw], rtol=1e-6)


def test_renyi_measures_count_entries_whose_normalised_weight_underflows():
    # Found by the property suite (float64, weights from 4e-308 to 9e307): the
    # Rényi measures normalised first and then took logarithms, so an entry
    # 1e-30 next to 1e30 (float32) became 0 and left the support. H_0 = log 2
    # came out 0, D_1(P‖Q) = inf (Q rules out a class P allows) came out 0, and
    # the gradient of D_0.75 was off by a factor of 3. The logarithms are now
    # taken of the scaled weights, and the supports read from the weights.
    wide = jnp.array([1e30, 1e-30], F32)
    np.testing.assert_allclose(jaxinfo.renyi_entropy(wide, 0.0), math.log(2), rtol=1e-6)
    assert jaxinfo.renyi_divergence(wide, jnp.array([1.0, 0.0], F32), 1.0) == jnp.inf
    p = jnp.array([1.0, 1.0], F32)
    alpha = 0.75  # Q = (1, 1e-60): class 2 adds (1e-60)**0.25 = 1e-15, nothing
    want = 3 * math.log(2)  # log(0.5**0.75) / (0.75 - 1)
    np.testing.assert_allclose(jaxinfo.renyi_divergence(p, wide, alpha), want, rtol=5e-6)
    grad = jax.grad(lambda p: jaxinfo.renyi_divergence(p, wide, alpha))(p)
    np.testing.assert_allclose(grad, [-1.5, 1.5], rtol=1e-4)  # was [-0.5, 0.5]


# Found by the property suite (session 3): the derivatives of cross_entropy and
# kl_divergence took the difference of terms of order log(q) / sum(p); for a row
# of weights near the smallest normal (1 / sum(p) = 2**126) both overflowed and
# gave inf - inf = NaN where the derivative is 0. They are now written out, each
# coefficient in units of order one before the factor 1 / sum(p).
def test_derivatives_of_a_row_near_the_smallest_normal():
    p, q = jnp.array([TINY], F32), jnp.array([MAX], F32)
    for measure in (jaxinfo.cross_entropy, jaxinfo.kl_divergence):
        assert measure(p, q) == 0
        grads = jax.grad(measure, (0, 1))(p, q)
        _, forward = jax.jvp(measure, (p, q), (jnp.ones_like(p), jnp.ones_like(q)))
        np.testing.assert_array_equal(grads, [[0.0], [0.0]])
        assert forward == 0
    # P proportional to Q on its support, Q's mass elsewhere: dD/dp = 0 there
    p = jnp.array([TINY, TINY, 0.0], F32)
    q = jnp.array([1e-30, 1e-30, MAX], F32)
    grad = jax.grad(jaxinfo.kl_divergence)(p, q)
    # 0 to rounding: the coefficients' logarithms are of order 100, and the
    # factor 1 / sum(p) is 4e37 (the third entry, at the edge of the support,
    # has a derivative beyond the float range: -inf)
    np.testing.assert_allclose(grad[:2], [0.0, 0.0], atol=4e37 * 1e-4)
    assert grad[2] == -jnp.inf


def test_kl_divergence_with_a_ratio_that_underflows_next_to_a_ruled_out_class():
    # was nan: the entry 1e-20 of a row summing to 3e38 is floored at tiny when
    # scaled, and its ratio to q's scaled entry underflowed: -inf, which met
    # the +inf of the class that Q rules out.
    got = jaxinfo.kl_divergence(jnp.array([1e-20, 3e38], F32), jnp.array([3e38, 0.0], F32))
    assert got == jnp.inf


def test_kl_divergence_where_q_spans_more_than_the_float_range():
    # was 72.0 (true 110.24): q's entries 6.6e-21 are 1e-59 of its total and
    # underflowed to 0 when scaled, then floored at tiny. Their log ratios are
    # now taken from the logarithms of the weights themselves.
    p = jnp.array([1.2114569e-38, 3.5264831e-38, 2.1040523e-38], F32)
    q = jnp.array([3.4028235e38, 6.6096335e-21, 6.6572445e-21], F32)
    p64, q64 = np.float64(p) / np.float64(p).sum(), np.float64(q) / np.float64(q).sum()
    want = float(np.sum(p64 * np.log(p64 / q64)))
    np.testing.assert_allclose(jaxinfo.kl_divergence(p, q), want, rtol=1e-6)
    value, grads = jax.value_and_grad(jaxinfo.kl_divergence, (0, 1))(p, q)
    np.testing.assert_allclose(value, want, rtol=1e-6)
    assert not np.any(np.isnan(np.concatenate(grads)))


def test_kl_divergence_from_logits_where_q_rules_out_a_class():
    # K6, settled as documented: Q ruling out a class that P gives positive
    # probability makes D inf; a class whose P-probability underflows to 0 in
    # float32 (e**-200) is outside P's support, as a 0 entry is for the
    # measures of probabilities (finite, and the same under value_and_grad).
    q_logits = jnp.array([0.0, -jnp.inf], F32)
    assert jaxinfo.kl_divergence_from_logits(jnp.array([0.0, -50.0], F32), q_logits) == jnp.inf
    underflowed = jnp.array([0.0, -200.0], F32)
    assert jaxinfo.kl_divergence_from_logits(underflowed, q_logits) == 0
    value, grad = jax.value_and_grad(jaxinfo.kl_divergence_from_logits)(underflowed, q_logits)
    assert value == 0 and np.all(np.isfinite(grad))


def test_kl_divergence_from_logits_near_the_float_maximum_under_grad():
    # was inf under value_and_grad (the derivative's formula summed the terms
    # before dividing by the partition function): the true value is 3.38e38.
    p_logits = jnp.array([3.38e38, 3.38e38, 0.0], F32)
    q_logits = jnp.array([0.0, 0.0, 3.38e38], F32)
    value, grad = jax.value_and_grad(jaxinfo.kl_divergence_from_logits)(p_logits, q_logits)
    np.testing.assert_allclose(jaxinfo.kl_divergence_from_logits(p_logits, q_logits), 3.38e38)
    np.testing.assert_allclose(value, 3.38e38)
    assert not np.any(np.isnan(grad))


def test_label_smoothing_with_logits_spread_beyond_the_float_range():
    # was 0: logit - max = -6e38 overflows to -inf, and the class was taken as
    # excluded from the uniform part of the target. It is in play: the loss is
    # eps / 2 * 6e38 (the label's own term is 0).
    logits = jnp.array([3e38, -3e38], F32)
    got = jaxinfo.cross_entropy_from_labels(jnp.array(0), logits, label_smoothing=0.1)
    np.testing.assert_allclose(got, 0.05 * 6e38, rtol=1e-6)


def test_label_smoothing_derivative_on_a_label_that_is_ruled_out():
    # was nan: a label on a -inf class has loss inf for eps < 1; a zero
    # cotangent on it (the loss masked out) met the derivative -inf in eps.
    logits = jnp.array([[0.0, 1.0, -jnp.inf], [0.0, 1.0, 2.0]], F32)
    labels = jnp.array([2, 0])

    def finite_part(eps):
        loss = jaxinfo.cross_entropy_from_labels(labels, logits, label_smoothing=eps)
        return jnp.where(jnp.isfinite(loss), loss, 0).sum()

    loss = jaxinfo.cross_entropy_from_labels(labels, logits, label_smoothing=0.3)
    assert loss[0] == jnp.inf
    # d/d eps of the second row: log q_0 - mean(log q) = -1
    np.testing.assert_allclose(jax.grad(finite_part)(0.3), -1.0, rtol=1e-6)
    assert jaxinfo.cross_entropy_from_labels(labels, logits, label_smoothing=1.0)[0] < jnp.inf


def test_cross_entropy_from_logits_target_derivative_of_a_tiny_row():
    # was nan in forward mode: targets summing to 1e-19 (a factor 1e19 in the
    # derivative) met log q of order 3e38, and autodiff's two overflowing
    # terms cancelled as inf - inf. The coefficients are now summed first.
    bf16 = jnp.bfloat16
    p = jnp.full(6, 1.70465e-20, bf16)
    logits = jnp.array([-88, -1.69477e38, 960, -1012, 89, -3.00406e38], bf16)
    value = jaxinfo.cross_entropy_from_logits(p, logits)
    want = (1.69477e38 + 3.00406e38) / 6  # the mean of -log q, all else negligible
    np.testing.assert_allclose(value, want, rtol=1e-2)
    # along p itself the true derivative is 0 (the measure is scale-free); its
    # rounding, times 1e19, is beyond the float range: +-inf, not NaN
    tangents = (jnp.ones(6, bf16), jnp.zeros(6, bf16))
    _, forward = jax.jvp(jaxinfo.cross_entropy_from_logits, (p, logits), tangents)
    assert not np.isnan(forward)
    # -(log q_i + H) / sum(p), beyond the float range with the right signs
    grad = jax.grad(jaxinfo.cross_entropy_from_logits)(p.astype(F32), logits.astype(F32))
    np.testing.assert_array_equal(grad, np.array([-1, 1, -1, -1, -1, 1]) * np.inf)


def test_cross_entropy_from_logits_support_floor_only_where_q_is_zero():
    # was 2.64 (true 1.8e-18): the target entry 4e-35 of a row summing to
    # 1.1e38 underflows when scaled and was floored at tiny, which times
    # -log q = 3e38 added 3.5 nats. The floor is for log q = -inf only.
    p = jnp.array([4.2881876e-35, 1.1342745e38], F32)
    logits = jnp.array([-3.0e38, 1.0e30], F32)
    np.testing.assert_allclose(jaxinfo.cross_entropy_from_logits(p, logits), 0.0, atol=1e-6)
    # where Q rules the class out, the underflowed entry still makes H inf
    ruled_out = jnp.array([-jnp.inf, 1.0e30], F32)
    assert jaxinfo.cross_entropy_from_logits(p, ruled_out) == jnp.inf


@pytest.mark.parametrize("measure", [jaxinfo.entropy, jaxinfo.perplexity])
def test_forward_derivative_on_zeros_of_a_row_near_the_smallest_normal(measure):
    # Found by a random run of the property suite (issue 12): a bfloat16 row of
    # zeros and smallest normals (total T = 500 * tiny), with a tangent on the
    # zero entries, gave a NaN forward derivative: two terms of the autodiff
    # derivative overflowed and met as inf - inf. The derivative is written
    # out now, -(sum of (log p̂_i + H) dp_i) / T, one product of a finite sum
    # and 1 / T; here the convention's slope at a zero entry (its logarithm
    # read at the smallest normal of the scaled row) times 1 / T = 2**117 does
    # not fit the float range, so the derivative is +inf: never NaN.
    p = jnp.zeros(1000, jnp.bfloat16).at[::2].set(TINY)
    tangent = jnp.zeros(1000, jnp.bfloat16).at[1::2].set(1)
    value, derivative = jax.jvp(measure, (p,), (tangent,))
    want = math.log(500) if measure is jaxinfo.entropy else 500.0
    np.testing.assert_allclose(value, want, rtol=1e-5)
    assert not jnp.isnan(derivative)
    assert derivative == jnp.inf
    # reverse mode: the entropy's slope of each entry fits the range (the
    # perplexity's, 500 times larger, does not)
    gradient = jax.grad(measure)(p).astype(F32)
    assert not bool(jnp.any(jnp.isnan(gradient)))
    if measure is jaxinfo.entropy:
        assert bool(jnp.all(jnp.isfinite(gradient)))


# Found by a random run of the property suite (the extreme regime): P of three
# bfloat16 maxima against logits (-3.39e38, 0, 0). The sum of P overflows, so
# scale_by_total clips its scale at the smallest normal, 2**-126, and each
# scaled weight was 3.39e38 * 2**-126 = 3.98: its product with log q =
# -3.39e38 overflowed before the division by the total (11.95) brought it
# back in range. The weights enter the sum normalised now (times scale, then
# times 1 / total: scale / total in one factor is subnormal, flushed to zero).
# The gradient in P was 0, that one factor of the derivative flushed to zero.


@pytest.mark.parametrize("dtype", [jnp.bfloat16, F32])
def test_cross_entropy_from_logits_of_huge_targets_and_huge_logits(dtype):
    p = jnp.full(3, 3.39e38, dtype)
    logits = jnp.array([-3.39e38, 0.0, 0.0], dtype)
    big = float(p[0])  # 3.3895e38 in bfloat16, 3.39e38 in float32
    # log q = (-big - log 2, -log 2, -log 2) and P = (1/3, 1/3, 1/3)
    want = big / 3 + math.log(2)
    f = jaxinfo.cross_entropy_from_logits
    for got in (f(p, logits), jax.jit(f)(p, logits), f(p[:, None], logits[:, None], axis=0)):
        np.testing.assert_allclose(got, want, rtol=1e-6)  # was inf
    # the classes split across a (vmapped) mesh axis: the reference formula
    split = jax.vmap(lambda a, b: f(a, b, axis_name="k"), axis_name="k")(
        p[:, None], logits[:, None]
    )
    np.testing.assert_allclose(split, [want] * 3, rtol=1e-6)
    # dH/dp_i = -(log q_i + H) / sum(p) = (2/9, -1/9, -1/9) (was 0, 0, 0);
    # dH/dlogits = softmax - P = (-1/3, 1/6, 1/6)
    grads = jax.grad(f, argnums=(0, 1))(p.astype(F32), logits.astype(F32))
    np.testing.assert_allclose(grads[0], [2 / 9, -1 / 9, -1 / 9], rtol=1e-5)
    np.testing.assert_allclose(grads[1], [-1 / 3, 1 / 6, 1 / 6], rtol=1e-5)
    e0 = jnp.eye(3, dtype=dtype)[0]
    for tangents, want_tangent in [((e0, 0 * e0), 2 / 9), ((0 * e0, e0), -1 / 3)]:
        value, tangent = jax.jvp(f, (p, logits), tangents)
        np.testing.assert_allclose(value, want, rtol=1e-6)
        np.testing.assert_allclose(tangent, want_tangent, rtol=1e-5)


def test_cross_entropy_from_logits_of_targets_summing_above_one():
    # Found while fixing the above, away from the float limits: targets that
    # sum to 1.4 are scaled by 1 (the power of two nearest their sum), so
    # 1.4 * log q = 1.4 * -3e38 overflowed; H = 3e38 (all of P on that class).
    got = jaxinfo.cross_entropy_from_logits(jnp.array([1.4, 0.0], F32), jnp.array([-BIG, 0.0], F32))
    np.testing.assert_allclose(got, BIG, rtol=1e-6)  # was inf


@pytest.mark.parametrize("masked", [False, True])
def test_entropy_derivatives_on_a_row_of_subnormals_and_one_smallest_normal(masked):
    # Found by the random profile (issue 12): a row of one smallest normal and
    # subnormals, which XLA:CPU reads as zeros, gave a NaN forward-mode
    # derivative (with a where mask; inf - inf in the autodiff derivative).
    # The derivative is written out now: +inf where it exceeds the float range
    # (the subnormal directions, of order 87 / tiny), never NaN.
    p = jnp.array([TINY, TINY / 2, TINY / 2, TINY / 2], F32)
    where = jnp.array([True, True, True, False]) if masked else None

    def h(p):
        return jaxinfo.entropy(p, where=where)

    _, derivative = jax.jvp(h, (p,), (jnp.ones(4, F32),))
    assert not jnp.isnan(derivative)
    assert not bool(jnp.any(jnp.isnan(jax.grad(h)(p))))


# Found by the ci profile once it drew from four layouts (float64, the extreme
# regime). JS's slope along a zero of P where Q > 0 is finite (about -11 here,
# the derivative rule's value at the boundary), but for a row near the
# smallest normal it is that times 1 / sum(p), beyond the float range, and
# along a zero of Q as well, with the other sign. Summed term by term, as the
# chain rule did, a tangent that moves the two in opposite directions met
# -inf + inf = NaN in forward mode, although the directional derivative,
# (its value for the rows scaled to sum 4 and 6) / TINY = -3.08e38, is in the
# float range. The rule in _divergences._js adds the two parts scaled first.
def test_js_forward_derivative_on_zeros_of_a_row_near_the_smallest_normal():
    p = jnp.array([0.0, 3.0, 1.0], F32)
    q = jnp.array([3.0, 3.0, 0.0], F32)
    tangents = (jnp.ones(3, F32), -jnp.ones(3, F32))
    # JS is unchanged by scaling a row (TINY = 2**-126 scales exactly), so its
    # derivative scales as 1 / TINY. (The slope at a zero is the rule's
    # boundary value, which depends on the dtype: the reference is float32.)
    _, reference = jax.jvp(jaxinfo.js_divergence, (p, q), tangents)
    reference = float(reference) / TINY
    assert np.isfinite(np.float32(reference))
    _, forward = jax.jvp(jaxinfo.js_divergence, (p * TINY, q * TINY), tangents)
    np.testing.assert_allclose(float(forward), reference, rtol=1e-5)


# Found by the ci profile once its regimes ran in one xdist worker (the
# worker's group was then part of a test's id, which seeded the derandomised
# examples): the Rényi divergence's forward-mode derivative was NaN for a row
# near the smallest normal. The tangents of the normalised weights are of
# order 1 / sum(p) = 2**125 there, and inside the cumulant generating function
# they met log ratios of order 40: inf - inf. Fixed in
# jaxinfo._divergences._renyi: the slopes are taken at the three rows (P, P
# on Q's support, Q) scaled to sums of order one and summed before the scale,
# which is split between the tangents and the sum so that reverse mode does
# not overflow either. P on Q's support is a row of its own: taken inside a
# rule for the pair (P, Q), as js_divergence's is, its slopes lie beyond the
# float range (the float64 case of the test below).
def test_renyi_forward_derivative_of_a_row_near_the_smallest_normal():
    def forward(p, q, dp, dq):
        def d(p, q):
            return jaxinfo.renyi_divergence(p, q, jnp.float32(0.75))

        return float(jax.jvp(d, (p, q), (dp, dq))[1])

    p = jnp.array([0.0, 2.0], F32)  # times TINY: a row near the smallest normal
    q = jnp.array([1e-20, 2 * TINY], F32)
    dp, dq = jnp.array([1.0, -1.0], F32), jnp.array([-0.5, 1.0], F32)
    got = forward(p * TINY, q, dp, dq)
    assert not np.isnan(got)  # was NaN
    # D is unchanged by scaling p (TINY = 2**-126 scales exactly), so its
    # derivative along p scales as 1 / TINY: here -1.7e39, beyond the float
    # range, so -inf is the float32 derivative
    zero = jnp.zeros(2, F32)
    reference = forward(p, q, dp, zero) / TINY + forward(p * TINY, q, zero, dq)
    assert reference < -float(np.finfo(np.float32).max)
    assert got == -np.inf


# The Rényi divergence's reverse-mode derivative was NaN along the entry of P
# inside Q's support when that entry is ~1e-38 of P's mass (here p = (2 TINY,
# 1), q = (63, 0), alpha = 0.75: D = log(P(supp Q)) / (alpha - 1) + ... =
# 259.9). P restricted to Q's support, (2 TINY, 0), is scaled by 2**125 to
# normalise it; the chain rule multiplied the cotangent of the scaled row
# (-87) and that of its total (+83) by 2**125 each before adding them: -inf +
# inf. Fixed in jaxinfo._range.log_normalise: the total's derivative is the
# sum of the scaled row's, so the two meet before the scale.
def test_renyi_gradient_when_p_inside_the_support_of_q_is_near_the_smallest_normal():
    q = jnp.array([63.0, 0.0], F32)
    value, grad = jax.value_and_grad(lambda p: jaxinfo.renyi_divergence(p, q, jnp.float32(0.75)))(
        jnp.array([2 * TINY, 1.0], F32)
    )
    np.testing.assert_allclose(value, 259.930193, rtol=1e-6)
    # float64 at the same rows (nowhere near its limits): -1.7e38 from the
    # mass inside, +4.3e37 from the log ratio
    np.testing.assert_allclose(grad, [-1.27605888e38, 3.0], rtol=1e-6)


def test_renyi_gradient_with_mass_inside_the_support_of_q_beyond_the_float64_range(x64):
    # Drawn by the ci profile (float64) once the Rényi divergence took the
    # scale-free rule: P's mass inside Q's support is 1.1e-307 of a total of
    # 1e30. D = log(P(supp Q)) / (alpha - 1) + ..., and its slope along those
    # two entries, -1 / 1.1e-307 / 1e-4, lies beyond the float64 range: -inf,
    # not the NaN of inf - inf. The entries outside the support enter through
    # sum(p) alone, as -alpha log(sum(p)) / (alpha - 1): slope 0.9999e-26.
    p = jnp.array([6.7e-308, 1e30, 4.5e-308, 2.2e-308])
    q = jnp.array([9e307, 0.0, 1e-20, 0.0])
    assert p.dtype == jnp.float64
    g_p, g_q = jax.grad(lambda p, q: jaxinfo.renyi_divergence(p, q, 0.9999), (0, 1))(p, q)
    np.testing.assert_array_equal(g_p[np.array([0, 2])], [-np.inf, -np.inf])
    np.testing.assert_allclose(g_p[np.array([1, 3])], [0.9999 / 1e30 / 1e-4] * 2, rtol=1e-6)
    assert np.all(np.isfinite(np.asarray(g_q)))
    # Forward mode, along tangents of opposite signs on the two entries: the
    # sign of the infinite slope times dp0 + dp2 (NaN under the rule for the
    # pair (P, Q), whose two slopes were each -inf).
    for dp, want in (([1.0, 0.0, -0.5, 0.0], -np.inf), ([-1.0, 0.0, 0.5, 0.0], np.inf)):
        _, got = jax.jvp(
            lambda p, q: jaxinfo.renyi_divergence(p, q, 0.9999),
            (p, q),
            (jnp.array(dp), jnp.array([1.0, 0.0, -1.0, 0.0])),
        )
        assert float(got) == want


# The Jensen–Shannon divergence's gradient was NaN for a loss that scales it
# (here 1e6 * JS) at P = Q near the smallest normal, where the true gradient
# is 0. Its derivative rule summed the terms of the scaled rows and then
# multiplied by their scale, 2**125; reverse mode, the transpose, multiplied
# the cotangent 1e6 by that scale first: inf, and inf * 0 = NaN. Fixed in
# jaxinfo._range.jvp_at_scaled_rows, which splits the scale into two halves,
# one on each side, as it does for the Rényi divergence.
@pytest.mark.parametrize("measure", ["js_divergence", "renyi_divergence"])
def test_gradient_of_a_scaled_loss_at_equal_rows_near_the_smallest_normal(measure):
    def loss(p, q):
        if measure == "renyi_divergence":
            return 1e6 * jaxinfo.renyi_divergence(p, q, jnp.float32(0.5))
        return 1e6 * jaxinfo.js_divergence(p, q)

    p = jnp.array([1.0, 2.0], F32) * TINY
    g_p, g_q = jax.grad(loss, (0, 1))(p, p)
    np.testing.assert_array_equal(g_p, [0.0, 0.0])
    np.testing.assert_array_equal(g_q, [0.0, 0.0])


# The Rényi divergence's gradient along P was off where P's mass outside Q's
# support is exactly 1/2 (found in review): log P(supp Q) was log1p(-minimum(
# outside, 0.5)), and at the tie jnp.minimum passes on half the slope (-1.29,
# 0.5, -0.30 here, where the slopes are -1.79, 1, -0.80). A where now picks the
# branch, whole.
def test_renyi_gradient_where_the_mass_outside_the_support_of_q_is_one_half(x64):
    p = np.array([0.1, 0.0, 0.5, 0.4])
    q = np.array([0.3, 0.2, 0.0, 0.5])
    alpha = 0.5

    def reference(p):  # float64, normalising as the library does
        p, r = p / p.sum(), q / q.sum()
        return np.log(np.sum(p**alpha * r ** (1 - alpha))) / (alpha - 1)

    eps = 1e-6
    want = [
        (reference(p + eps * np.eye(4)[i]) - reference(p - eps * np.eye(4)[i])) / (2 * eps)
        for i in (0, 2, 3)  # the entries where P has mass (p[1] = 0 is a boundary)
    ]
    grad = jax.grad(jaxinfo.renyi_divergence)(jnp.asarray(p), jnp.asarray(q), alpha)
    forward = jax.jacfwd(jaxinfo.renyi_divergence)(jnp.asarray(p), jnp.asarray(q), alpha)
    for got in (grad, forward):
        np.testing.assert_allclose(np.asarray(got)[[0, 2, 3]], want, rtol=1e-6)

"""Tests for the Shannon measures: references, identities, composition, gradients."""

import functools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats
from jax.test_util import check_grads

import jaxinfo

PROB_MEASURES = ("entropy", "cross_entropy", "kl_divergence")
BASES = (None, 2, 10, math.e)


def _log(base):
    return 1.0 if base is None else math.log(base)


def _random_probs(rng, shape, axis=-1, zero_fraction=0.2):
    """Distributions along ``axis`` with some exact zeros (never a whole row)."""
    x = rng.gamma(0.7, size=shape)
    x[rng.random(shape) < zero_fraction] = 0.0
    x = np.moveaxis(x, axis, -1)
    x[..., 0] += 0.1  # every row keeps some mass
    x = np.moveaxis(x, -1, axis)
    return x / x.sum(axis=axis, keepdims=True)


def _support_cover(rng, p):
    """A Q that is positive wherever P is, and zero on some cells where P is zero."""
    q = rng.gamma(0.7, size=p.shape) + 1e-3
    q[(p == 0) & (rng.random(p.shape) < 0.5)] = 0.0
    return q / q.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------
# The article's numbers (bits)
# ----------------------------------------------------------------------------


def test_article_information_of_events():
    h = jaxinfo.information(jnp.array([0.01, 0.99, 0.5]), base=2)
    np.testing.assert_allclose(h, [6.6439, 0.0145, 1.0], atol=5e-5)


def test_article_two_systems():
    h = jaxinfo.entropy(jnp.array([[0.5, 0.5], [0.99, 0.01]]), base=2)
    # The article prints 0.080794: it summed its rounded terms 0.99 * 0.0145 and
    # 0.01 * 6.6439. The exact value is 0.08079314, so compare at its precision.
    np.testing.assert_allclose(h, [1.0, 0.080794], atol=1e-6)
    assert float(h[1]) == pytest.approx(0.0807931359, abs=1e-7)


def test_article_unweighted_sum_misleads():
    # Summing information without weighting by probability ranks the systems the
    # wrong way round: 2 bits vs 6.6584 bits, where the entropies are 1 vs 0.0808.
    info = jaxinfo.information(jnp.array([[0.5, 0.5], [0.99, 0.01]]), base=2)
    np.testing.assert_allclose(info.sum(-1), [2.0, 6.6584], atol=5e-5)


def test_article_kl_is_cross_entropy_minus_entropy():
    p, q = jnp.array([0.99, 0.01]), jnp.array([0.5, 0.5])
    ce = jaxinfo.cross_entropy(p, q, base=2)
    kl = jaxinfo.kl_divergence(p, q, base=2)
    np.testing.assert_allclose([ce, kl], [1.0, 1.0 - 0.0807931359], atol=2e-7)


# ----------------------------------------------------------------------------
# float64 references: SciPy
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_entropy_matches_scipy(x64, axis, base):
    p = _random_probs(np.random.default_rng(0), (3, 4, 5), axis=axis)
    got = jaxinfo.entropy(p, axis=axis, base=base)
    assert got.dtype == jnp.float64
    want = scipy.stats.entropy(p, axis=axis, base=base)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_kl_and_cross_entropy_match_scipy(x64, axis, base):
    rng = np.random.default_rng(1)
    p = np.moveaxis(_random_probs(rng, (6, 3, 7)), -1, axis)
    q = np.moveaxis(_support_cover(rng, np.moveaxis(p, axis, -1)), -1, axis)
    kl_want = scipy.stats.entropy(p, q, axis=axis, base=base)
    kl_rel = scipy.special.rel_entr(p, q).sum(axis) / _log(base)
    ce_want = -scipy.special.xlogy(p, q).sum(axis) / _log(base)
    np.testing.assert_allclose(kl_want, kl_rel, rtol=1e-12)
    kl = jaxinfo.kl_divergence(p, q, axis=axis, base=base)
    ce = jaxinfo.cross_entropy(p, q, axis=axis, base=base)
    np.testing.assert_allclose(kl, kl_want, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ce, ce_want, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("axis", [0, -1])
def test_unnormalised_inputs_are_normalised_like_scipy(x64, axis):
    rng = np.random.default_rng(2)
    p = rng.gamma(1.0, size=(5, 6)) * 7.0
    q = rng.gamma(1.0, size=(5, 6)) * 0.3
    np.testing.assert_allclose(
        jaxinfo.entropy(p, axis=axis), scipy.stats.entropy(p, axis=axis), rtol=1e-12
    )
    np.testing.assert_allclose(
        jaxinfo.kl_divergence(p, q, axis=axis),
        scipy.stats.entropy(p, q, axis=axis),
        rtol=1e-11,
    )
    pn = p / p.sum(axis, keepdims=True)
    qn = q / q.sum(axis, keepdims=True)
    np.testing.assert_allclose(
        jaxinfo.cross_entropy(p, q, axis=axis),
        -(pn * np.log(qn)).sum(axis),
        rtol=1e-12,
    )


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_logits_forms_match_scipy_softmax(x64, axis, base):
    rng = np.random.default_rng(3)
    a = rng.normal(scale=3.0, size=(4, 5, 6))
    b = rng.normal(scale=3.0, size=(4, 5, 6))
    pa = scipy.special.softmax(a, axis=axis)
    log_pb = scipy.special.log_softmax(b, axis=axis)
    pb = np.exp(log_pb)
    h = jaxinfo.entropy_from_logits(a, axis=axis, base=base)
    ce = jaxinfo.cross_entropy_from_logits(pa, b, axis=axis, base=base)
    kl = jaxinfo.kl_divergence_from_logits(a, b, axis=axis, base=base)
    np.testing.assert_allclose(h, scipy.stats.entropy(pa, axis=axis, base=base), rtol=1e-12)
    np.testing.assert_allclose(ce, -(pa * log_pb).sum(axis) / _log(base), rtol=1e-12)
    np.testing.assert_allclose(
        kl, scipy.stats.entropy(pa, pb, axis=axis, base=base), rtol=1e-10, atol=1e-14
    )


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_labels_match_scipy_log_softmax(x64, axis):
    rng = np.random.default_rng(4)
    logits = rng.normal(scale=4.0, size=(5, 7, 3))
    k = logits.shape[axis]
    labels = rng.integers(0, k, size=np.delete(np.array(logits.shape), axis % 3))
    log_q = scipy.special.log_softmax(logits, axis=axis)
    want = -np.take_along_axis(log_q, np.expand_dims(labels, axis), axis).squeeze(axis)
    got = jaxinfo.cross_entropy_from_labels(labels, logits, axis=axis)
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ----------------------------------------------------------------------------
# Identities
# ----------------------------------------------------------------------------


def test_kl_is_cross_entropy_minus_entropy_and_nonnegative(x64):
    rng = np.random.default_rng(5)
    p = _random_probs(rng, (200, 9))
    q = _support_cover(rng, p)
    h, ce, kl = (
        jaxinfo.entropy(p),
        jaxinfo.cross_entropy(p, q),
        jaxinfo.kl_divergence(p, q),
    )
    np.testing.assert_allclose(kl, ce - h, atol=1e-12)
    assert np.all(kl >= 0)
    assert np.all(h <= np.log(9) + 1e-12)
    assert np.all(h >= 0)
    np.testing.assert_array_equal(jaxinfo.kl_divergence(p, p), 0.0)
    np.testing.assert_allclose(jaxinfo.cross_entropy(p, p), h, rtol=1e-14)


def test_entropy_is_maximal_for_uniform():
    for k in (1, 2, 7, 1000):
        np.testing.assert_allclose(jaxinfo.entropy(jnp.ones(k)), math.log(k), rtol=1e-6)
        np.testing.assert_allclose(jaxinfo.entropy_from_logits(jnp.zeros(k)), math.log(k))


def test_gibbs_on_random_models():
    rng = np.random.default_rng(6)
    p = jnp.asarray(_random_probs(rng, (1, 12)))
    q = jnp.asarray(rng.dirichlet(np.ones(12), size=500), dtype=jnp.float32)
    assert bool(jnp.all(jaxinfo.cross_entropy(p, q) >= jaxinfo.entropy(p) - 1e-6))


def test_logits_forms_equal_probability_forms(x64):
    rng = np.random.default_rng(7)
    a = rng.normal(size=(10, 8)) * 2
    b = rng.normal(size=(10, 8)) * 2
    a[:, :2] = -np.inf  # P rules out two classes: its probabilities are exact zeros
    pa, pb = scipy.special.softmax(a, -1), scipy.special.softmax(b, -1)
    np.testing.assert_allclose(jaxinfo.entropy_from_logits(a), jaxinfo.entropy(pa), rtol=1e-12)
    np.testing.assert_allclose(
        jaxinfo.cross_entropy_from_logits(pa, b), jaxinfo.cross_entropy(pa, pb), rtol=1e-12
    )
    np.testing.assert_allclose(
        jaxinfo.kl_divergence_from_logits(a, b), jaxinfo.kl_divergence(pa, pb), rtol=1e-10
    )


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
def test_labels_form_equals_one_hot(x64, smoothing):
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(6, 5)) * 3
    labels = rng.integers(0, 5, size=6)
    target = (1 - smoothing) * np.eye(5)[labels] + smoothing / 5
    got = jaxinfo.cross_entropy_from_labels(labels, logits, label_smoothing=smoothing)
    np.testing.assert_allclose(
        got, jaxinfo.cross_entropy_from_logits(target, logits), rtol=1e-12, atol=1e-15
    )


def test_label_smoothing_spreads_over_unmasked_classes_only(x64):
    logits = np.array([[1.0, 2.0, -np.inf, 0.5], [0.0, 0.3, 0.2, 0.1]])
    where = np.array([True, True, True, False])
    labels = np.array([1, 2])
    got = jaxinfo.cross_entropy_from_labels(labels, logits, where=where, label_smoothing=0.2)
    # Row 0: valid classes {0, 1}; row 1: {0, 1, 2}.
    t0 = np.array([0.1, 0.9, 0.0, 0.0])
    t1 = np.array([0.2 / 3, 0.2 / 3, 0.8 + 0.2 / 3, 0.0])
    want = jaxinfo.cross_entropy_from_logits(np.stack([t0, t1]), logits, where=where)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_base_conversion():
    p = jnp.array([0.2, 0.3, 0.5])
    nats = jaxinfo.entropy(p)
    np.testing.assert_allclose(jaxinfo.entropy(p, base=2), nats / math.log(2), rtol=1e-6)
    np.testing.assert_allclose(jaxinfo.entropy(p, base=10), nats / math.log(10), rtol=1e-6)
    np.testing.assert_allclose(jaxinfo.entropy(p, base=math.e), nats, rtol=1e-6)


def test_base_may_be_traced():
    p = jnp.array([0.5, 0.25, 0.25])
    f = jax.jit(lambda p, b: jaxinfo.entropy(p, base=b))
    np.testing.assert_allclose(f(p, 2.0), 1.5, rtol=1e-6)
    np.testing.assert_allclose(f(p, 4.0), 0.75, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(f, (None, 0))(p, jnp.array([2.0, 4.0])), [1.5, 0.75])


# ----------------------------------------------------------------------------
# Zeros, infinities and masks: values
# ----------------------------------------------------------------------------


def test_zero_probabilities():
    p = jnp.array([0.0, 0.5, 0.5, 0.0])
    q = jnp.array([0.0, 0.25, 0.75, 0.0])
    assert float(jaxinfo.entropy(p, base=2)) == pytest.approx(1.0)
    assert float(jaxinfo.kl_divergence(p, p)) == 0.0
    np.testing.assert_allclose(
        jaxinfo.cross_entropy(p, q),
        -(0.5 * math.log(0.25) + 0.5 * math.log(0.75)),
        rtol=1e-6,
    )


def test_q_zero_where_p_positive_is_infinite_not_nan():
    p, q = jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0])
    assert jnp.isposinf(jaxinfo.kl_divergence(p, q))
    assert jnp.isposinf(jaxinfo.cross_entropy(p, q))
    assert jnp.isposinf(jaxinfo.cross_entropy_from_logits(p, jnp.array([0.0, -jnp.inf])))
    assert jnp.isposinf(jaxinfo.kl_divergence_from_logits(jnp.zeros(2), jnp.array([0.0, -jnp.inf])))
    assert float(jaxinfo.information(0.0)) == math.inf


def test_empty_rows_measure_zero():
    zeros = jnp.zeros((2, 3))
    none = jnp.zeros((2, 3), bool)
    assert np.all(jaxinfo.entropy(zeros) == 0)
    assert np.all(jaxinfo.cross_entropy(zeros, jnp.ones((2, 3))) == 0)
    assert np.all(jaxinfo.kl_divergence(zeros, jnp.ones((2, 3))) == 0)
    ninf = jnp.full((2, 3), -jnp.inf)
    assert np.all(jaxinfo.entropy_from_logits(ninf) == 0)
    assert np.all(jaxinfo.entropy_from_logits(jnp.ones((2, 3)), where=none) == 0)
    assert np.all(jaxinfo.kl_divergence_from_logits(ninf, jnp.ones((2, 3))) == 0)
    assert np.all(
        jaxinfo.cross_entropy_from_logits(jnp.ones((2, 3)), ninf * 0 + 1, where=none) == 0
    )
    assert np.all(jaxinfo.cross_entropy_from_labels(jnp.array([0, 2]), ninf) == 0)


def test_single_class_distributions():
    assert float(jaxinfo.entropy(jnp.array([1.0]))) == 0.0
    assert float(jaxinfo.entropy_from_logits(jnp.array([3.0]))) == 0.0
    assert float(jaxinfo.kl_divergence_from_logits(jnp.array([3.0]), jnp.array([-7.0]))) == 0.0
    assert float(jaxinfo.cross_entropy_from_labels(jnp.array(0), jnp.array([5.0]))) == 0.0


def test_huge_logits():
    logits = jnp.array([1e30, -1e30, 0.0])
    assert float(jaxinfo.entropy_from_logits(logits)) == 0.0
    assert float(jaxinfo.cross_entropy_from_labels(jnp.array(0), logits)) == 0.0
    assert float(jaxinfo.cross_entropy_from_labels(jnp.array(2), logits)) == pytest.approx(1e30)
    kl = jaxinfo.kl_divergence_from_logits(logits, jnp.array([-1e30, 1e30, 0.0]))
    assert float(kl) == pytest.approx(2e30)
    np.testing.assert_allclose(
        jaxinfo.entropy_from_logits(jnp.array([1e30, 1e30, -1e30])), math.log(2), rtol=1e-6
    )


def test_labels_ignore_out_of_range_and_masked():
    logits = jnp.zeros((4, 3))
    where = jnp.array([True, True, False])
    loss = jaxinfo.cross_entropy_from_labels(jnp.array([0, -1, 3, 2]), logits, where=where)
    np.testing.assert_allclose(loss[0], math.log(2), rtol=1e-6)
    assert float(loss[1]) == 0.0  # ignored (padding)
    assert jnp.isnan(loss[2])  # out of range: NaN, never a wrap-around
    assert jnp.isposinf(loss[3])  # label on an excluded class
    # Huge unsigned ids stay out of range instead of wrapping to "ignored".
    big = jaxinfo.cross_entropy_from_labels(jnp.array([2**32 - 1], jnp.uint32), logits[:1])
    assert jnp.isnan(big[0])


def test_labels_accept_every_integer_dtype():
    logits = jnp.array([[0.0, 1.0, 2.0]])
    want = jaxinfo.cross_entropy_from_labels(jnp.array([2]), logits)
    for dtype in (jnp.int8, jnp.uint8, jnp.int16, jnp.int32, jnp.uint32):
        got = jaxinfo.cross_entropy_from_labels(jnp.array([2], dtype), logits)
        np.testing.assert_array_equal(got, want)


# ----------------------------------------------------------------------------
# Composition: jit, vmap, where, axis, keepdims
# ----------------------------------------------------------------------------


def _all_measures(rng, shape):
    p = jnp.asarray(_random_probs(rng, shape), dtype=jnp.float32)
    q = jnp.asarray(_support_cover(rng, np.asarray(p, np.float64)), dtype=jnp.float32)
    a = jnp.asarray(rng.normal(size=shape) * 2, dtype=jnp.float32)
    b = jnp.asarray(rng.normal(size=shape) * 2, dtype=jnp.float32)
    labels = jnp.asarray(rng.integers(-1, shape[-1], size=shape[:-1]), dtype=jnp.int32)
    return {
        "entropy": (jaxinfo.entropy, (p,)),
        "cross_entropy": (jaxinfo.cross_entropy, (p, q)),
        "kl_divergence": (jaxinfo.kl_divergence, (p, q)),
        "entropy_from_logits": (jaxinfo.entropy_from_logits, (a,)),
        "cross_entropy_from_logits": (jaxinfo.cross_entropy_from_logits, (p, b)),
        "kl_divergence_from_logits": (jaxinfo.kl_divergence_from_logits, (a, b)),
        "cross_entropy_from_labels": (jaxinfo.cross_entropy_from_labels, (labels, b)),
    }


MEASURES = tuple(_all_measures(np.random.default_rng(0), (2, 3)))


@pytest.mark.parametrize("name", MEASURES)
def test_jit_equals_eager(name):
    f, args = _all_measures(np.random.default_rng(9), (4, 6, 5))[name]
    np.testing.assert_allclose(jax.jit(f)(*args), f(*args), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", MEASURES)
def test_vmap_equals_batched_call(name):
    f, args = _all_measures(np.random.default_rng(10), (3, 4, 5))[name]
    batched = f(*args)
    np.testing.assert_allclose(jax.vmap(f)(*args), batched, rtol=1e-6, atol=1e-7)
    nested = jax.vmap(jax.vmap(f))(*args)
    np.testing.assert_allclose(nested, batched, rtol=1e-6, atol=1e-7)
    # Mapping over a non-leading axis of the batch.
    moved = jax.vmap(f, in_axes=1, out_axes=1)(*args)
    np.testing.assert_allclose(moved, batched, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", MEASURES)
def test_where_equals_slicing(name):
    f, args = _all_measures(np.random.default_rng(11), (6,))[name]
    keep = np.array([True, False, True, True, False, True])
    if name == "cross_entropy_from_labels":
        labels, logits = args
        labels = jnp.array(3)  # class 3 is kept; it is class 2 of the slice
        got = f(labels, logits, where=keep)
        want = f(jnp.array(2), logits[keep])
    else:
        # Whatever sits in the excluded entries is ignored: put NaN there.
        poisoned = [jnp.where(keep, x, jnp.nan) for x in args]
        got = f(*poisoned, where=keep)
        want = f(*(x[keep] for x in args))
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("name", MEASURES)
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_axis_equals_moveaxis(name, axis):
    f, args = _all_measures(np.random.default_rng(12), (3, 4, 5))[name]
    want = f(*args)
    if name == "cross_entropy_from_labels":
        labels, logits = args
        got = f(labels, jnp.moveaxis(logits, -1, axis), axis=axis)
    else:
        got = f(*(jnp.moveaxis(x, -1, axis) for x in args), axis=axis)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", [m for m in MEASURES if m != "cross_entropy_from_labels"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_keepdims(name, axis):
    f, args = _all_measures(np.random.default_rng(13), (3, 4, 5))[name]
    moved = [jnp.moveaxis(x, -1, axis) for x in args]
    kept = f(*moved, axis=axis, keepdims=True)
    expected_shape = list(moved[0].shape)
    expected_shape[axis] = 1
    assert kept.shape == tuple(expected_shape)
    np.testing.assert_array_equal(jnp.squeeze(kept, axis), f(*moved, axis=axis))


def test_broadcasting_p_against_batch_of_q():
    p = jnp.array([0.7, 0.2, 0.1])
    q = jnp.array([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]])
    kl = jaxinfo.kl_divergence(p, q)
    assert kl.shape == (2,)
    np.testing.assert_allclose(kl[0], 0.0, atol=1e-7)
    np.testing.assert_allclose(kl[1], math.log(3) - float(jaxinfo.entropy(p)), rtol=1e-6)


def test_works_on_sharded_arrays():
    devices = np.array(jax.devices())
    mesh = jax.sharding.Mesh(devices, ("batch",))
    spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    p = jax.device_put(jnp.full((len(devices) * 2, 4), 0.25), spec)
    h = jax.jit(jaxinfo.entropy)(p)
    np.testing.assert_allclose(h, math.log(4), rtol=1e-6)


# ----------------------------------------------------------------------------
# Tuple axes: several axes that hold the outcomes together, as one flattened axis
# ----------------------------------------------------------------------------

TUPLE_AXES = [(2, 0), (-1, -2, 0)]  # out of order, and every axis


def _merged(x, axes):
    """The reference layout, in NumPy: ``axes`` moved to the end in their order, flattened."""
    x = np.moveaxis(np.asarray(x), axes, range(-len(axes), 0))
    return x.reshape(*x.shape[: x.ndim - len(axes)], -1)


def _tuple_axis_case(rng, name, shape, axes):
    """A measure's arguments on ``shape``, labels indexing the flattened classes of ``axes``."""
    f, args = _all_measures(rng, shape)[name]
    if name == "cross_entropy_from_labels":
        rows = _merged(np.empty(shape), axes).shape
        labels = jnp.asarray(rng.integers(-1, rows[-1], size=rows[:-1]), dtype=jnp.int32)
        args = (labels, args[1])
    return f, args


@pytest.mark.parametrize("name", MEASURES)
@pytest.mark.parametrize("axes", TUPLE_AXES, ids=str)
def test_tuple_axis_is_one_flattened_axis(name, axes):
    rng = np.random.default_rng(15)
    shape = (3, 4, 5)
    f, args = _tuple_axis_case(rng, name, shape, axes)
    arrays = args[1:] if name == "cross_entropy_from_labels" else args
    labels = args[:1] if name == "cross_entropy_from_labels" else ()
    flat = [*labels, *(_merged(x, axes) for x in arrays)]
    np.testing.assert_allclose(f(*args, axis=axes), f(*flat), rtol=1e-6, atol=1e-7)
    # where: the mask is merged as the arrays are; a mask that broadcasts too
    mask = rng.random(shape) < 0.7
    want = f(*flat, where=_merged(mask, axes))
    np.testing.assert_allclose(f(*args, axis=axes, where=mask), want, rtol=1e-6, atol=1e-7)
    row_mask = mask[0]  # shape (4, 5): broadcast over the first axis
    want = f(*flat, where=_merged(np.broadcast_to(row_mask, shape), axes))
    np.testing.assert_allclose(f(*args, axis=axes, where=row_mask), want, rtol=1e-6, atol=1e-7)
    if name != "cross_entropy_from_labels":  # it has no keepdims: the loss is shaped like labels
        kept = f(*args, axis=axes, where=mask, keepdims=True)
        reduced = sorted(a % len(shape) for a in axes)
        assert kept.shape == tuple(1 if a in reduced else n for a, n in enumerate(shape))
        np.testing.assert_array_equal(jnp.squeeze(kept, reduced), f(*args, axis=axes, where=mask))


def test_tuple_axis_labels_index_the_classes_in_the_order_of_the_axes(x64):
    rng = np.random.default_rng(16)
    logits = rng.normal(size=(3, 4, 5))
    # classes along axes 2 and 0 (in that order): class c is (c // 3, c % 3) there
    labels = rng.integers(0, 15, size=4)
    got = jaxinfo.cross_entropy_from_labels(labels, logits, axis=(2, 0))
    log_q = scipy.special.log_softmax(logits, axis=(0, 2))
    want = [-log_q[c % 3, i, c // 3] for i, c in enumerate(labels)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # optax's integer-label loss takes a tuple axis the same way
    optax = pytest.importorskip("optax")
    ref = optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels, axis=(2, 0))
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_tuple_axis_entropy_of_an_image_matches_scipy(x64):
    rng = np.random.default_rng(17)
    image = rng.gamma(0.5, size=(2, 6, 7))  # a batch of two p(x, y), unnormalised
    want = [scipy.stats.entropy(im.ravel(), base=2) for im in image]
    np.testing.assert_allclose(jaxinfo.entropy(image, axis=(1, 2), base=2), want, rtol=1e-12)
    # a one-axis tuple is that axis
    np.testing.assert_array_equal(jaxinfo.entropy(image, axis=(1,)), jaxinfo.entropy(image, axis=1))


@pytest.mark.parametrize("name", MEASURES)
def test_tuple_axis_gradients_jit_and_vmap(name):
    rng = np.random.default_rng(18)
    axes = (2, 0)
    f, args = _tuple_axis_case(rng, name, (3, 4, 5), axes)
    k = 0 if name != "cross_entropy_from_labels" else 1  # the argument differentiated

    def tuple_loss(x):
        return f(*args[:k], x, *args[k + 1 :], axis=axes).sum()

    def merged_loss(x):
        moved = jnp.moveaxis(x, axes, (-2, -1))
        flat = [moved.reshape(4, 15) if i == k else a for i, a in enumerate(args)]
        if name != "cross_entropy_from_labels":
            flat = [
                a if i == k else jnp.moveaxis(a, axes, (-2, -1)).reshape(4, 15)
                for i, a in enumerate(flat)
            ]
        return f(*flat).sum()

    got = jax.jit(jax.grad(tuple_loss))(args[k])
    assert jnp.all(jnp.isfinite(got))
    np.testing.assert_allclose(got, jax.grad(merged_loss)(args[k]), rtol=1e-5, atol=1e-7)
    # vmap over a leading batch: the axes are those of one element
    batched = [jnp.stack([a, a]) for a in args]
    mapped = jax.vmap(lambda *a: f(*a, axis=axes))(*batched)
    np.testing.assert_allclose(mapped[1], f(*args, axis=axes), rtol=1e-6, atol=1e-7)


def test_tuple_axis_errors():
    p = jnp.full((2, 3, 4), 1 / 12)
    with pytest.raises(ValueError, match=re.escape("axis (1, -2) names axis 1 of p")):
        jaxinfo.entropy(p, axis=(1, -2))
    with pytest.raises(ValueError, match=re.escape("axis=() names no axis")):
        jaxinfo.kl_divergence(p, p, axis=())
    with pytest.raises(ValueError, match="axis 3 is out of range for p with 3 dimension"):
        jaxinfo.cross_entropy(p, p, axis=(1, 3))
    with pytest.raises(TypeError, match=re.escape("got the list [1, 2]")):
        jaxinfo.entropy(p, axis=[1, 2])
    with pytest.raises(TypeError, match=re.escape("whose entry 2.0 is of type float")):
        jaxinfo.entropy_from_logits(p, axis=(1, 2.0))
    with pytest.raises(ValueError, match="with axis_name: classes split across devices"):
        jaxinfo.entropy_from_logits(p, axis=(1, 2), axis_name="model")
    with pytest.raises(ValueError, match=re.escape("labels should have shape (2,), got (2, 3)")):
        jaxinfo.cross_entropy_from_labels(jnp.zeros((2, 3), jnp.int32), p, axis=(1, 2))
    with pytest.raises(ValueError, match=re.escape("p.shape=(2, 3, 4), q.shape=(5,)")):
        jaxinfo.kl_divergence(p, jnp.ones(5), axis=(1, 2))
    with pytest.raises(ValueError, match=re.escape("where with shape (3,) does not broadcast")):
        jaxinfo.entropy(p, axis=(1, 2), where=jnp.ones(3, bool))


# ----------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", MEASURES)
def test_check_grads_interior(x64, name):
    rng = np.random.default_rng(14)
    p = rng.dirichlet(np.ones(5), size=3) * 0.8 + 0.04
    q = rng.dirichlet(np.ones(5), size=3) * 0.8 + 0.04
    a, b = rng.normal(size=(2, 3, 5))
    args = {
        "entropy": (p,),
        "cross_entropy": (p, q),
        "kl_divergence": (p, q),
        "entropy_from_logits": (a,),
        "cross_entropy_from_logits": (p, b),
        "kl_divergence_from_logits": (a, b),
    }
    f = getattr(jaxinfo, name)
    if name == "cross_entropy_from_labels":
        labels = np.array([0, 4, -1])

        def g(logits):
            return jaxinfo.cross_entropy_from_labels(labels, logits, label_smoothing=0.1)

        f, args = g, {name: (b,)}
    # jitted: check_grads evaluates each derivative many times; eagerly every
    # evaluation dispatches primitive by primitive (37 s instead of 6 s for
    # the labels loss). jit changes no derivative: the same rules are traced.
    check_grads(jax.jit(f), args[name], order=2, modes=("fwd", "rev"))


def _finite_grads(f, *args):
    """Reverse- and forward-mode derivatives of sum(f) are all finite."""
    argnums = tuple(range(len(args)))
    rev = jax.grad(lambda *a: jnp.sum(f(*a)), argnums=argnums)(*args)
    fwd = jax.jacfwd(lambda *a: jnp.sum(f(*a)), argnums=argnums)(*args)
    for g in (*rev, *fwd):
        assert bool(jnp.all(jnp.isfinite(g))), g
    return rev


BOUNDARY_PROBS = [
    np.array([0.0, 0.5, 0.5]),
    np.array([1.0, 0.0, 0.0]),
    np.array([0.0, 0.0, 0.0]),
    np.array([1e-45, 0.5, 0.5]),
    np.array([1.0]),
]


@pytest.mark.parametrize("p", BOUNDARY_PROBS, ids=str)
def test_finite_gradients_at_zero_probabilities(p):
    p = jnp.asarray(p, jnp.float32)
    q = jnp.where(p > 0, 0.5 * p + 0.5 / p.shape[-1], 0.0)  # positive exactly where p is
    for f, args in [
        (jaxinfo.entropy, (p,)),
        (jaxinfo.cross_entropy, (p, q)),
        (jaxinfo.kl_divergence, (p, q)),
    ]:
        assert bool(jnp.isfinite(f(*args)))
    _finite_grads(jaxinfo.entropy, p)
    _finite_grads(jaxinfo.cross_entropy, p, q)
    _finite_grads(jaxinfo.kl_divergence, p, q)
    _finite_grads(jaxinfo.cross_entropy_from_logits, p, jnp.where(p > 0, 0.0, -jnp.inf))


def test_zero_probability_entries_get_finite_gradient_value():
    # -p log p has slope +inf at 0; the gradient is finite, and points the right way.
    g = jax.grad(jaxinfo.entropy)(jnp.array([0.0, 0.5, 0.5]))
    assert bool(jnp.all(jnp.isfinite(g)))
    assert g[0] > g[1]
    # p = 0 with q > 0: the textbook derivative -log q of the cross term is kept.
    gp = jax.grad(lambda p: jaxinfo.cross_entropy(p, jnp.array([0.25, 0.75])))(
        jnp.array([0.0, 1.0])
    )
    # Normalisation adds the same constant to every entry; differences are textbook.
    np.testing.assert_allclose(gp[0] - gp[1], -math.log(0.25) + math.log(0.75), rtol=1e-6)


BOUNDARY_LOGITS = {
    "masked": np.array([0.0, -np.inf, 1.0]),
    "all_masked": np.array([-np.inf, -np.inf, -np.inf]),
    "huge": np.array([1e30, -1e30, 0.0]),
    "all_huge": np.array([1e30, 1e30, 1e30]),
    "exp_edge": np.array([88.7, -88.7, 0.0]),
    "single": np.array([2.0]),
}


@pytest.mark.parametrize("logits", BOUNDARY_LOGITS.values(), ids=BOUNDARY_LOGITS.keys())
def test_finite_gradients_at_boundary_logits(logits):
    x = jnp.asarray(logits, jnp.float32)
    k = x.shape[-1]
    # A target uniform over the classes that are not masked (all zero if none is).
    support = np.isfinite(logits).astype(np.float32)
    p = jnp.asarray(support / max(support.sum(), 1.0))
    for f, args in [
        (jaxinfo.entropy_from_logits, (x,)),
        (jaxinfo.kl_divergence_from_logits, (x, x)),
        (jaxinfo.kl_divergence_from_logits, (x, jnp.zeros(k))),
        (jaxinfo.cross_entropy_from_logits, (p, x)),
    ]:
        value = f(*args)
        assert bool(jnp.isfinite(value)), (f.__name__, value)
        _finite_grads(f, *args)
    label = jnp.array(int(np.argmax(logits)))
    for smoothing in (0.0, 0.1):
        loss = functools.partial(
            jaxinfo.cross_entropy_from_labels, label, label_smoothing=smoothing
        )
        assert bool(jnp.isfinite(loss(x)))
        _finite_grads(loss, x)


def test_masked_entries_get_zero_gradient():
    where = jnp.array([True, False, True])
    x = jnp.array([0.3, jnp.nan, -0.2])
    p = jnp.array([0.5, jnp.nan, 0.5])
    for f, args in [
        (jaxinfo.entropy_from_logits, (x,)),
        (jaxinfo.kl_divergence_from_logits, (x, x[::-1])),
        (jaxinfo.cross_entropy_from_logits, (p, x)),
        (jaxinfo.entropy, (p,)),
        (jaxinfo.kl_divergence, (p, p[::-1])),
        (jaxinfo.cross_entropy, (p, p[::-1])),
    ]:
        grads = jax.grad(lambda *a, f=f: f(*a, where=where), argnums=tuple(range(len(args))))(*args)
        for g in grads:
            assert bool(jnp.all(jnp.isfinite(g)))
            assert float(g[1]) == 0.0


def test_ignored_labels_get_no_gradient():
    logits = jnp.arange(12.0).reshape(4, 3)
    labels = jnp.array([0, -1, 2, -5])
    g = jax.grad(lambda x: jaxinfo.cross_entropy_from_labels(labels, x).sum())(logits)
    np.testing.assert_array_equal(g[1], 0.0)
    np.testing.assert_array_equal(g[3], 0.0)
    soft = jax.nn.softmax(logits[0])
    np.testing.assert_allclose(g[0], soft - jnp.array([1.0, 0, 0]), rtol=1e-6)


def test_label_gradient_is_softmax_minus_one_hot():
    x = jnp.array([[1.0, 2.0, 3.0, -jnp.inf]])
    g = jax.grad(lambda x: jaxinfo.cross_entropy_from_labels(jnp.array([1]), x).sum())(x)
    want = jax.nn.softmax(x) - jnp.array([0.0, 1, 0, 0])
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------
# dtypes
# ----------------------------------------------------------------------------


def test_bf16_uniform_over_50000_classes():
    p = jnp.full((50000,), 1 / 50000, jnp.bfloat16)
    h = jaxinfo.entropy(p)
    assert h.dtype == jnp.float32
    assert abs(float(h) - math.log(50000)) < 0.01
    naive = -(p * jnp.log(p)).sum()
    assert abs(float(naive) - math.log(50000)) > abs(float(h) - math.log(50000))
    hl = jaxinfo.entropy_from_logits(jnp.zeros((50000,), jnp.bfloat16))
    assert abs(float(hl) - math.log(50000)) < 1e-4


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_is_computed_in_float32(dtype):
    rng = np.random.default_rng(15)
    p32 = jnp.asarray(rng.dirichlet(np.ones(300), size=4), jnp.float32)
    p = p32.astype(dtype)
    logits = jnp.log(p)
    for f, args in [
        (jaxinfo.entropy, (p,)),
        (jaxinfo.kl_divergence, (p, p[::-1])),
        (jaxinfo.entropy_from_logits, (logits,)),
        (jaxinfo.cross_entropy_from_labels, (jnp.arange(4), logits)),
    ]:
        got = f(*args)
        assert got.dtype == jnp.float32
        want = f(*(a.astype(jnp.float32) if a.dtype == dtype else a for a in args))
        np.testing.assert_allclose(got, want, rtol=1e-6)
    g = jax.grad(lambda x: jaxinfo.entropy_from_logits(x).sum())(logits)
    assert g.dtype == dtype


def test_integer_inputs_are_promoted():
    assert jaxinfo.entropy(jnp.array([1, 1, 2])).dtype == jnp.float32
    np.testing.assert_allclose(
        jaxinfo.entropy(jnp.array([1, 1, 2])), scipy.stats.entropy([1, 1, 2]), rtol=1e-6
    )
    np.testing.assert_allclose(jaxinfo.entropy([0.5, 0.5], base=2), 1.0)


def test_float64_under_x64(x64):
    p = jnp.array([0.99, 0.01])
    h = jaxinfo.entropy(p, base=2)
    assert h.dtype == jnp.float64
    assert float(h) == pytest.approx(0.08079313589591118, rel=1e-15)


# ----------------------------------------------------------------------------
# reduction: the loss over the positions whose label is >= 0
# ----------------------------------------------------------------------------

_PADDED_LABELS = np.array([[3, 0, 6, -1, -1], [2, -1, -1, -1, -1], [5, 1, 4, 6, 0]])


def _padded_problem(seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(_PADDED_LABELS), jnp.asarray(rng.normal(size=(3, 5, 7)) * 2)


@pytest.mark.parametrize("base", [None, 2])
def test_labels_reduction_matches_numpy_with_padding(x64, base):
    labels, logits = _padded_problem()
    log_q = scipy.special.log_softmax(np.asarray(logits), axis=-1)
    real = _PADDED_LABELS >= 0
    nll = -np.take_along_axis(log_q, np.where(real, _PADDED_LABELS, 0)[..., None], -1)[..., 0]
    nll = np.where(real, nll, 0.0) / _log(base)
    ce = functools.partial(jaxinfo.cross_entropy_from_labels, labels, logits, base=base)
    np.testing.assert_allclose(ce(), nll, rtol=1e-13)
    np.testing.assert_allclose(ce(reduction="none"), nll, rtol=1e-13)
    np.testing.assert_allclose(ce(reduction="sum"), nll.sum(), rtol=1e-13)
    np.testing.assert_allclose(ce(reduction="mean"), nll[real].mean(), rtol=1e-13)
    # the padding would dilute a plain mean: 9 real positions of 15
    assert float(ce(reduction="mean")) > 1.5 * float(ce().mean())


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_labels_mean_gradient_is_that_of_the_masked_mean(label_smoothing):
    labels, logits = _padded_problem(1)
    logits = logits.astype(jnp.float32)
    ce = functools.partial(jaxinfo.cross_entropy_from_labels, label_smoothing=label_smoothing)

    def by_hand(a):
        return ce(labels, a).sum() / (labels >= 0).sum().astype(a.dtype)

    got = jax.grad(lambda a: ce(labels, a, reduction="mean"))(logits)
    np.testing.assert_allclose(got, jax.grad(by_hand)(logits), rtol=1e-6, atol=1e-7)
    got = jax.grad(lambda a: ce(labels, a, reduction="sum"))(logits)
    np.testing.assert_allclose(got, jax.grad(lambda a: ce(labels, a).sum())(logits), rtol=1e-6)
    assert np.all(np.asarray(got)[np.asarray(labels) < 0] == 0)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_labels_reduction_of_an_all_padding_batch_is_zero(reduction, label_smoothing):
    labels = jnp.full((3, 5), -1)
    logits = jnp.asarray(_padded_problem()[1], jnp.float32).at[0, 0].set(-jnp.inf)

    def f(a):
        return jaxinfo.cross_entropy_from_labels(
            labels, a, reduction=reduction, label_smoothing=label_smoothing
        )

    value, grad = jax.value_and_grad(f)(logits)
    assert value == 0.0 and value.shape == ()
    assert np.all(np.asarray(grad) == 0.0)


def test_labels_reduction_under_jit_and_vmap():
    labels, logits = _padded_problem(2)
    logits = logits.astype(jnp.float32)
    mean = functools.partial(jaxinfo.cross_entropy_from_labels, reduction="mean")
    np.testing.assert_allclose(jax.jit(mean)(labels, logits), mean(labels, logits), rtol=1e-6)
    # vmap over the sequences: each one's mean over its own real tokens
    per_sequence = jax.vmap(mean)(labels, logits)
    loop = [mean(labels[i], logits[i]) for i in range(3)]
    np.testing.assert_allclose(per_sequence, loop, rtol=1e-6)
    per_position = jaxinfo.cross_entropy_from_labels(labels, logits)
    np.testing.assert_allclose(per_sequence[1], per_position[1, 0], rtol=1e-6)  # one real token


def test_labels_reduction_keeps_nan_and_inf_of_real_positions():
    logits = jnp.zeros((2, 4))
    out_of_range = jnp.array([1, 4])
    assert np.isnan(jaxinfo.cross_entropy_from_labels(out_of_range, logits, reduction="mean"))
    excluded = jnp.array([1, -1])
    where = jnp.array([True, False, True, True])
    got = jaxinfo.cross_entropy_from_labels(excluded, logits, where=where, reduction="sum")
    assert got == np.inf


@pytest.mark.parametrize("reduction", ["avg", "Mean", None, 0])
def test_labels_reduction_error(reduction):
    with pytest.raises(ValueError, match=r"reduction must be one of 'none', 'sum', 'mean'"):
        jaxinfo.cross_entropy_from_labels(jnp.array([0]), jnp.zeros((1, 2)), reduction=reduction)

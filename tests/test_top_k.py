"""Tests for jaxinfo/_top_k.py (kl_divergence_from_top_k) and its value checks.

Values and gradients against a float64 NumPy reference written from the
definition (the tail masses from explicit sets of classes, ``scipy``'s
``rel_entr`` for the terms), its identities (``k = V`` is the KL divergence
of the full distributions; the tail form is ``kl_divergence`` of the two
``k + 1``-outcome distributions and at most the full KL), the edges
(``-inf`` on either side, padding, bad ids), the options, the errors, and
``check_top_k`` / ``checkify_top_k`` (in ``jaxinfo/_validation.py``).
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
from jax.experimental import checkify
from jax.test_util import check_grads

import jaxinfo

LEAD, K, V = (3, 4), 5, 12  # the common shapes: one compilation per option set


# ----------------------------------------------------------------------------
# float64 references, from the definition
# ----------------------------------------------------------------------------


def _lse(x):
    """log Σ exp(x) in float64, -inf for an empty or all -inf x."""
    x = np.asarray(x, np.float64)
    if x.size == 0 or np.all(x == -np.inf):
        return -np.inf
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


def _outcomes(log_p, ids, q_logits, real, tail):
    """The two distributions the measure compares, for one position (float64)."""
    a = np.asarray(log_p, np.float64)[real]
    i = np.asarray(ids)[real]
    q = np.asarray(q_logits, np.float64)
    log_z = _lse(q)
    p = np.exp(a)
    q_top = np.exp(q[i] - log_z)
    if not tail:
        with np.errstate(invalid="ignore", divide="ignore"):
            return p / p.sum(), q_top / q_top.sum()
    rest = np.setdiff1d(np.arange(q.size), i)
    if rest.size == 0:  # k = V: no tail outcome
        return p, q_top
    p_tail = max(1.0 - np.sum(p), 0.0)
    q_tail = np.exp(_lse(q[rest]) - log_z)
    return np.append(p, p_tail), np.append(q_top, q_tail)


def reference(log_p, ids, q_logits, *, tail=True, where=None):
    """Per-position KL in float64 nats; classes and slots on the last axis."""
    log_p, ids, q_logits = np.asarray(log_p), np.asarray(ids), np.asarray(q_logits)
    real_all = np.ones(ids.shape, bool) if where is None else np.broadcast_to(where, ids.shape)
    out = np.empty(ids.shape[:-1])
    for idx in np.ndindex(*ids.shape[:-1]):
        p, q = _outcomes(log_p[idx], ids[idx], q_logits[idx], real_all[idx], tail)
        out[idx] = np.sum(scipy.special.rel_entr(p, q)) if p.size and p.sum() > 0 else 0.0
    return out


def reference_grads(log_p, ids, q_logits, *, tail=True, where=None):
    """The float64 gradients of Σ KL: (d/d log_p, d/d q_logits), written out.

    With ``tail``: ``dKL/dl_c = q_c - p_j`` for ``c = i_j``, ``q_c (1 - p_tail
    / q_tail)`` elsewhere; ``dKL/da_j = p_j (log(p_j / q_j) - log(p_tail /
    q_tail))``. Renormalised: ``q̂_j - p̂_j`` and ``p̂_j (log(p̂_j / q̂_j) - KL)``.
    """
    log_p, ids, q_logits = np.asarray(log_p), np.asarray(ids), np.asarray(q_logits)
    real_all = np.ones(ids.shape, bool) if where is None else np.broadcast_to(where, ids.shape)
    d_a = np.zeros(ids.shape)
    d_l = np.zeros(q_logits.shape)
    for idx in np.ndindex(*ids.shape[:-1]):
        real = real_all[idx]
        i = ids[idx][real]
        p, q = _outcomes(log_p[idx], ids[idx], q_logits[idx], real, tail)
        k = i.size
        q_all = np.exp(q_logits[idx] - _lse(q_logits[idx]))
        if tail:
            ratio = p[k] / q[k]
            d_a[idx][real] = p[:k] * (np.log(p[:k] / q[:k]) - np.log(ratio))
            g = q_all * (1 - ratio)
            g[i] = q_all[i] - p[:k]
        else:
            kl = np.sum(scipy.special.rel_entr(p, q))
            d_a[idx][real] = p * (np.log(p / q) - kl)
            g = np.zeros(q_all.shape)
            g[i] = q - p
        d_l[idx] = g
    return d_a, d_l


def _problem(seed=0, lead=LEAD, k=K, v=V, spread=2.0):
    """A teacher's top-k of random logits and a random student, float32."""
    rng = np.random.default_rng(seed)
    teacher = rng.normal(size=(*lead, v)) * spread
    log_p_full = teacher - scipy.special.logsumexp(teacher, axis=-1, keepdims=True)
    ids = np.argsort(-log_p_full, axis=-1)[..., :k]
    log_p = np.take_along_axis(log_p_full, ids, axis=-1)
    q_logits = rng.normal(size=(*lead, v)) * spread
    return (
        np.float32(log_p),
        ids.astype(np.int32),
        np.float32(q_logits),
        np.float32(teacher),
    )


def _padding(seed=0, lead=LEAD, k=K):
    """A where mask with 0 to 2 padding slots per row (never the first slot)."""
    rng = np.random.default_rng(seed + 100)
    real = np.ones((*lead, k), bool)
    drop = rng.integers(0, 3, size=lead)
    for idx in np.ndindex(*lead):
        real[idx][k - drop[idx] :] = False
    return real


def _kl(tail=True, **options):
    return jax.jit(
        lambda a, i, q, where=None: jaxinfo.kl_divergence_from_top_k(
            a, i, q, tail=tail, where=where, **options
        )
    )


TAILS = pytest.mark.parametrize("tail", [True, False], ids=["tail", "renormalised"])


# ----------------------------------------------------------------------------
# values
# ----------------------------------------------------------------------------


@TAILS
def test_values_against_reference(tail):
    log_p, ids, q, _ = _problem()
    real = _padding()
    got = _kl(tail)(log_p, ids, q, real)
    assert got.shape == LEAD and got.dtype == jnp.float32
    want = reference(log_p, ids, q, tail=tail, where=real)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(
        _kl(tail)(log_p, ids, q), reference(log_p, ids, q, tail=tail), rtol=2e-5, atol=1e-6
    )


@TAILS
def test_all_classes_is_the_full_kl_divergence(tail):
    # k = V (all classes, in a shuffled order): no tail, nothing to renormalise
    log_p, ids, q, teacher = _problem(k=V)
    rng = np.random.default_rng(5)
    order = rng.permuted(np.broadcast_to(np.arange(V), ids.shape), axis=-1)
    log_p, ids = np.take_along_axis(log_p, order, -1), np.take_along_axis(ids, order, -1)
    got = _kl(tail)(log_p, ids, q)
    full = jaxinfo.kl_divergence_from_logits(teacher, q)
    np.testing.assert_allclose(got, full, rtol=1e-5, atol=1e-6)
    p = scipy.special.softmax(np.float64(teacher), axis=-1)
    np.testing.assert_allclose(got, jaxinfo.kl_divergence(p, scipy.special.softmax(q, -1)), 1e-5)


def test_tail_form_is_kl_of_the_k_plus_one_outcomes():
    log_p, ids, q, teacher = _problem(1)
    pq = [_outcomes(log_p[i], ids[i], q[i], np.ones(K, bool), True) for i in np.ndindex(*LEAD)]
    p = np.stack([x for x, _ in pq]).reshape(*LEAD, K + 1)
    qq = np.stack([y for _, y in pq]).reshape(*LEAD, K + 1)
    got = _kl(True)(log_p, ids, q)
    np.testing.assert_allclose(got, jaxinfo.kl_divergence(p, qq), rtol=2e-5, atol=1e-6)
    # data processing: lumping the classes outside the top k can only lose divergence
    full = np.asarray(jaxinfo.kl_divergence_from_logits(teacher, q))
    assert np.all(np.asarray(got) <= full * (1 + 1e-5))


@TAILS
def test_zero_for_a_matching_student_and_never_negative(tail):
    log_p, ids, _, teacher = _problem(2)
    got = np.asarray(_kl(tail)(log_p, ids, teacher))
    assert np.all(got >= 0) and np.all(got < 1e-6)
    # a student that is sharper on the top k than the teacher: the truncated sum
    # Σ p log(p/q) is negative there; with the tail outcome the KL is not
    sharp = teacher.copy()
    np.put_along_axis(sharp, ids, np.take_along_axis(teacher, ids, -1) + 3, axis=-1)
    truncated = np.sum(
        np.exp(log_p) * (log_p - np.take_along_axis(scipy.special.log_softmax(sharp, -1), ids, -1)),
        axis=-1,
    )
    assert np.all(truncated < 0)
    got = np.asarray(_kl(True)(log_p, ids, sharp))
    assert np.all(got > 0)
    np.testing.assert_allclose(got, reference(log_p, ids, sharp), rtol=2e-5, atol=1e-6)


def test_a_tail_far_below_rounding_is_exact():
    # The student keeps 3e-9 of its mass outside the top 4 of 1000 classes:
    # 1 - Σ q rounds to 0 in float32 (an infinite KL); the log-sum-exp over the
    # classes outside the top k gives it to rounding.
    v, p_tail = 1000, 1e-3
    q = np.full((1, v), -15.0)
    ids = np.array([[7, 500, 3, 999]], np.int32)
    q[0, ids[0]] = [10.0, 9.5, 9.0, 8.0]
    q = np.float32(q)
    q_top = scipy.special.softmax(np.float64(q[0, ids[0]]))
    log_p = np.float32(np.log((1 - p_tail) * q_top))[None]
    got = _kl(True)(log_p, ids, q)
    want = reference(log_p, ids, q)
    assert 1e-2 < want[0] < 2e-2
    np.testing.assert_allclose(got, want, rtol=1e-4)
    # its gradient, -p_tail/q_tail · q_c + q_c ≈ -1e-6 on each class outside the top k
    d_a, d_l = reference_grads(log_p, ids, q)
    g_a, g_l = jax.jit(jax.grad(lambda a, q: jnp.sum(_kl(True)(a, ids, q)), (0, 1)))(log_p, q)
    np.testing.assert_allclose(g_l, d_l, rtol=1e-3, atol=1e-9)
    np.testing.assert_allclose(g_a, d_a, rtol=1e-3, atol=1e-6)
    assert d_l[0, 0] < -5e-7
    # the student's mass on the top k, 1 - 3e-9, rounds to 1 (or above) in float32:
    assert 1 - np.sum(np.float32(scipy.special.softmax(np.float64(q[0]))[ids[0]])) <= 0


def test_a_teacher_tail_near_one_and_near_zero():
    log_p, ids, q, _ = _problem(3, lead=(2,))
    log_p = np.float32(log_p - np.array([[0.0], [20.0]]))  # a top-k mass of about e^-20
    np.testing.assert_allclose(_kl(True)(log_p, ids, q), reference(log_p, ids, q), rtol=1e-5)
    # top-k mass within a few ulps of 1: tail of rounding size, or none
    full = np.float32(np.log([[0.5, 0.25, 0.125, 0.0625, 0.0625]]))
    q1 = q[:1]
    for shift in (0.0, -1e-6, 1e-7):
        a = np.float32(full + shift)
        got = _kl(True)(a, ids[:1], q1)
        np.testing.assert_allclose(got, reference(a, ids[:1], q1), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------


@TAILS
def test_gradients_against_float64(x64, tail):
    log_p, ids, q, _ = _problem(4)
    log_p, q = np.float64(log_p), np.float64(q)
    real = _padding(4)
    weights = np.linspace(0.5, 1.5, math.prod(LEAD)).reshape(LEAD)

    def total(a, q):
        return jnp.sum(weights * jaxinfo.kl_divergence_from_top_k(a, ids, q, tail=tail, where=real))

    g_a, g_q = jax.jit(jax.grad(total, (0, 1)))(log_p, q)
    d_a, d_q = reference_grads(log_p, ids, q, tail=tail, where=real)
    np.testing.assert_allclose(g_a, weights[..., None] * d_a, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(g_q, weights[..., None] * d_q, rtol=1e-10, atol=1e-13)
    assert np.all(np.asarray(g_a)[~real] == 0)


@TAILS
def test_check_grads(x64, tail):
    log_p, ids, q, _ = _problem(5, lead=(2,))
    real = _padding(5, lead=(2,))

    def f(a, q):
        return jaxinfo.kl_divergence_from_top_k(a, ids, q, tail=tail, where=real)

    check_grads(jax.jit(f), (jnp.float64(log_p), jnp.float64(q)), order=2, modes=["rev"])


# ----------------------------------------------------------------------------
# -inf on either side, padding, bad ids
# ----------------------------------------------------------------------------


def _grads(tail, log_p, ids, q, where=None):
    def total(a, q):
        kl = jaxinfo.kl_divergence_from_top_k(a, ids, q, tail=tail, where=where)
        return jnp.sum(jnp.where(jnp.isfinite(kl), kl, 0.0))

    return jax.jit(jax.grad(total, (0, 1)))(log_p, q)


@TAILS
def test_student_rules_out_classes_outside_the_top_k(tail):
    log_p, ids, q, _ = _problem(6)
    out = np.ones(q.shape, bool)
    np.put_along_axis(out, ids, False, axis=-1)
    q = np.where(out & (np.random.default_rng(6).random(q.shape) < 0.5), -np.inf, q)
    q = np.float32(q)
    got = _kl(tail)(log_p, ids, q)
    np.testing.assert_allclose(got, reference(log_p, ids, q, tail=tail), rtol=2e-5, atol=1e-6)
    g_a, g_q = _grads(tail, log_p, ids, q)
    assert np.all(np.isfinite(g_a)) and np.all(np.isfinite(g_q))
    assert np.all(np.asarray(g_q)[q == -np.inf] == 0)
    _, d_q = reference_grads(log_p, ids, q, tail=tail)
    np.testing.assert_allclose(g_q, d_q, rtol=1e-4, atol=1e-6)


@TAILS
def test_student_rules_out_a_class_the_teacher_supports(tail):
    log_p, ids, q, _ = _problem(7)
    q = q.copy()
    q[0, 1, ids[0, 1, 2]] = -np.inf  # a top-k class
    got = np.asarray(_kl(tail)(log_p, ids, q))
    assert got[0, 1] == np.inf
    np.testing.assert_allclose(
        np.delete(got.reshape(-1), 1),
        np.delete(reference(log_p, ids, q, tail=tail).reshape(-1), 1),
        rtol=2e-5,
    )
    # the student's gradient stays finite at the infinite value (the teacher's
    # need not: as for kl_divergence_from_logits, it is the derivative of inf)
    g_q = jax.jit(jax.grad(lambda q: jnp.sum(_kl(tail)(log_p, ids, q)[0, 1])))(q)
    assert np.all(np.isfinite(g_q))
    # and the other positions' gradients are those without the infinite one
    g_a, g_q = _grads(tail, log_p, ids, q)
    with np.errstate(divide="ignore", invalid="ignore"):  # the infinite row
        r_a, r_q = reference_grads(log_p, ids, q, tail=tail)
    keep = np.arange(math.prod(LEAD)) != 1
    for g, r in ((g_a, r_a), (g_q, r_q)):
        g, r = (
            np.reshape(g, (math.prod(LEAD), -1))[keep],
            np.reshape(r, (math.prod(LEAD), -1))[keep],
        )
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)


def test_student_rules_out_its_whole_tail():
    log_p, ids, q, _ = _problem(8, lead=(2,))
    rest = np.ones(q.shape, bool)
    np.put_along_axis(rest, ids, False, axis=-1)
    q = np.float32(np.where(rest, -np.inf, q))
    # the teacher keeps mass outside the top k, the student none: inf
    assert np.all(np.asarray(_kl(True)(log_p, ids, q)) == np.inf)
    # renormalised over the top k, the tail does not matter
    got = _kl(False)(log_p, ids, q)
    np.testing.assert_allclose(got, reference(log_p, ids, q, tail=False), rtol=2e-5)
    g_q = jax.jit(jax.grad(lambda q: jnp.sum(_kl(True)(log_p, ids, q))))(q)
    assert np.all(np.isfinite(g_q))


@TAILS
def test_teacher_rules_out_classes(tail):
    log_p, ids, q, _ = _problem(9)
    log_p = log_p.copy()
    log_p[..., -2:] = -np.inf
    log_p[0, 0, 1:] = -np.inf  # a teacher sure of one class
    got = _kl(tail)(log_p, ids, q)
    np.testing.assert_allclose(got, reference(log_p, ids, q, tail=tail), rtol=2e-5, atol=1e-6)
    # and where the student rules out those classes too (0 log 0 = 0)
    q2 = q.copy()
    np.put_along_axis(q2, ids[..., -2:], -np.inf, axis=-1)
    got = _kl(tail)(log_p, ids, q2)
    np.testing.assert_allclose(got, reference(log_p, ids, q2, tail=tail), rtol=2e-5, atol=1e-6)
    for qq in (q, q2):
        g_a, g_q = _grads(tail, log_p, ids, qq)
        assert np.all(np.isfinite(g_a)) and np.all(np.isfinite(g_q))
        assert np.all(np.asarray(g_a)[log_p == -np.inf] == 0)


@TAILS
def test_padding_is_absent(tail):
    # padding slots repeat an id, hold NaN or a positive log-probability, or an
    # id out of range: the result is that of the real slots alone
    log_p, ids, q, _ = _problem(10, lead=(4,))
    log_p, ids = log_p.copy(), ids.copy()
    real = np.ones(ids.shape, bool)
    real[:, 3:] = False
    ids[0, 3:] = ids[0, 0]
    log_p[1, 3:] = [np.nan, 2.0]
    ids[2, 3:] = [-1, V + 5]
    ids[3, 3:] = ids[3, 3]  # the same padding id twice
    got = _kl(tail)(log_p, ids, q, real)
    alone = _kl(tail)(log_p[:, :3], ids[:, :3], q)
    np.testing.assert_allclose(got, alone, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got, reference(log_p, ids, q, tail=tail, where=real), rtol=2e-5)
    g_a, g_q = _grads(tail, log_p, ids, q, real)
    assert np.all(np.isfinite(g_a)) and np.all(np.isfinite(g_q))
    assert np.all(np.asarray(g_a)[:, 3:] == 0)
    _, alone_q = _grads(tail, log_p[:, :3], ids[:, :3], q)
    np.testing.assert_allclose(g_q, alone_q, rtol=1e-5, atol=1e-7)


def test_no_real_slot():
    log_p, ids, q, _ = _problem(11, lead=(2,))
    none = np.zeros(ids.shape, bool)
    # the teacher's whole mass in the tail, as the student's: 0; renormalised: an empty row
    np.testing.assert_array_equal(_kl(True)(log_p, ids, q, none), [0.0, 0.0])
    np.testing.assert_array_equal(_kl(False)(log_p, ids, q, none), [0.0, 0.0])
    g_a, g_q = _grads(True, log_p, ids, q, none)
    assert np.all(np.asarray(g_a) == 0) and np.all(np.asarray(g_q) == 0)


@TAILS
def test_bad_ids_give_nan(tail):
    log_p, ids, q, _ = _problem(12, lead=(4,))
    ids = ids.copy()
    ids[0, 2] = ids[0, 4]  # repeated, both real
    ids[1, 0] = -1
    ids[2, 3] = V
    got = np.asarray(_kl(tail)(log_p, ids, q))
    assert np.all(np.isnan(got[:3])) and np.isfinite(got[3])
    np.testing.assert_allclose(got[3], reference(log_p[3:], ids[3:], q[3:], tail=tail)[0], 2e-5)
    g_a, g_q = _grads(tail, log_p, ids, q)
    assert np.all(np.isfinite(g_a)) and np.all(np.isfinite(g_q))
    assert np.all(np.asarray(g_q)[:3] == 0)


def test_ids_beyond_int32_do_not_wrap():
    log_p, ids, q, _ = _problem(13, lead=(2,))
    wide = ids.astype(np.int64)
    wide[0, 0] = 2**32 + int(ids[0, 0])  # would wrap round to a valid id
    # eager: jax.jit converts a NumPy int64 argument to int32 itself (wrapping it)
    got = np.asarray(jaxinfo.kl_divergence_from_top_k(log_p, wide, q))
    assert np.isnan(got[0]) and np.isfinite(got[1])
    unsigned = np.uint64(ids)
    unsigned[1, 0] = 2**63
    assert np.isnan(np.asarray(jaxinfo.kl_divergence_from_top_k(log_p, unsigned, q))[1])


# ----------------------------------------------------------------------------
# options and transformations
# ----------------------------------------------------------------------------


@TAILS
def test_base_two(tail):
    log_p, ids, q, _ = _problem(14)
    nats = _kl(tail)(log_p, ids, q)
    np.testing.assert_allclose(_kl(tail, base=2)(log_p, ids, q), nats / np.log(2), rtol=1e-6)


@pytest.mark.parametrize("axis", [0, 1, -2])
def test_axis(axis):
    log_p, ids, q, _ = _problem(15)
    real = _padding(15)
    want = _kl(True)(log_p, ids, q, real)
    moved = [np.moveaxis(x, -1, axis) for x in (log_p, ids, q, real)]
    got = jaxinfo.kl_divergence_from_top_k(*moved[:3], where=moved[3], axis=axis)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_where_broadcasts():
    log_p, ids, q, _ = _problem(16)
    slots = np.array([True, True, True, False, False])
    got = jaxinfo.kl_divergence_from_top_k(log_p, ids, q, where=slots)
    np.testing.assert_allclose(got, _kl(True)(log_p[..., :3], ids[..., :3], q), rtol=1e-6)


def test_vmap_jit_and_eager_agree():
    log_p, ids, q, _ = _problem(17)
    batched = _kl(True)(log_p, ids, q)
    mapped = jax.vmap(jaxinfo.kl_divergence_from_top_k)(log_p, ids, q)
    eager = jaxinfo.kl_divergence_from_top_k(log_p, ids, q)
    np.testing.assert_allclose(mapped, batched, rtol=1e-6)
    np.testing.assert_allclose(eager, batched, rtol=1e-6)


def test_narrow_and_mixed_dtypes():
    log_p, ids, q, _ = _problem(18)
    want = reference(log_p, ids, q)
    got = jaxinfo.kl_divergence_from_top_k(jnp.bfloat16(log_p), ids, jnp.bfloat16(q))
    assert got.dtype == jnp.float32
    want16 = reference(np.float32(jnp.bfloat16(log_p)), ids, np.float32(jnp.bfloat16(q)))
    np.testing.assert_allclose(got, want16, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(got, want, rtol=0.1, atol=0.02)
    g = jax.grad(lambda q: jnp.sum(jaxinfo.kl_divergence_from_top_k(log_p, ids, q)))
    assert g(jnp.bfloat16(q)).dtype == jnp.bfloat16


@TAILS
def test_axis_name_on_classes_split_along_a_vmap_axis(tail):
    # lax.psum / pmax / axis_index under vmap act as under shard_map: the
    # classes in 4 blocks along a mapped axis, ids global
    log_p, ids, q, _ = _problem(19, lead=(6,))
    q = q.copy()
    q[0, 3:9] = -np.inf  # a whole block and parts of two
    real = _padding(19, lead=(6,))
    ids = ids.copy()
    ids[1, 0] = V  # out of range: NaN on every block
    blocks = 4

    def f(a, q, axis_name=None):
        return jaxinfo.kl_divergence_from_top_k(
            a, ids, q, tail=tail, where=real, axis_name=axis_name
        )

    mapped = jax.vmap(lambda a, q: f(a, q, "m"), in_axes=(None, 0), axis_name="m")

    def split(a, q):  # every block's result, (blocks, 6)
        return mapped(a, jnp.moveaxis(q.reshape(6, blocks, -1), 1, 0))

    got, want = jax.jit(split)(log_p, q), f(log_p, q)
    for block in np.asarray(got):
        np.testing.assert_allclose(block, want, rtol=1e-6, atol=1e-7)
    assert np.isnan(want[1])
    finite = np.isfinite(np.asarray(want))
    weights = np.where(finite, np.linspace(0.5, 1.5, 6), 0)

    def total(g):
        return lambda a, q: jnp.sum(jnp.where(finite, g(a, q), 0) * weights)

    g_a, g_q = jax.jit(jax.grad(total(lambda a, q: split(a, q)[0]), (0, 1)))(log_p, q)
    r_a, r_q = jax.jit(jax.grad(total(f), (0, 1)))(log_p, q)
    np.testing.assert_allclose(g_a, r_a, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g_q, r_q, rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------

_A, _I, _Q = np.zeros((2, 3), np.float32), np.zeros((2, 3), np.int32), np.zeros((2, 7))


@pytest.mark.parametrize(
    ("args", "options", "error", "match"),
    [
        ((_A, _I[:, :2], _Q), {}, ValueError, "p_log_probs and p_ids must have the same shape"),
        ((_A, np.float32(_I), _Q), {}, TypeError, "p_ids must have an integer dtype"),
        ((_A, _I > 0, _Q), {}, TypeError, "p_ids must have an integer dtype"),
        ((_A, _I, _Q[:1]), {}, ValueError, r"q_logits should have shape \(2, V\), got \(1, 7\)"),
        ((_A, _I, _Q[0]), {}, ValueError, r"q_logits should have shape \(2, V\), got \(7,\)"),
        ((_A, _I, _Q), {"axis": 2}, ValueError, "axis 2 is out of range for p_log_probs"),
        ((_A, _I, _Q), {"axis": 1.0}, TypeError, "axis must be an int"),
        ((_A, _I, _Q), {"where": np.ones((2, 3))}, TypeError, "where must be a boolean array"),
        ((_A, _I, _Q), {"where": np.ones((2,), bool)}, ValueError, "does not broadcast"),
        ((_A, _I, _Q), {"tail": 1}, TypeError, "tail must be a bool"),
        ((_A, _I, _Q), {"tail": "yes"}, TypeError, "tail must be a bool"),
        ((_A, _I, _Q), {"base": 1}, ValueError, "base must be positive and not 1"),
        ((_A.astype(bool), _I, _Q), {}, TypeError, "p_log_probs must have a real numeric"),
        ((_A, _I, _Q * 1j), {}, TypeError, "q_logits must be real-valued"),
    ],
)
def test_errors(args, options, error, match):
    with pytest.raises(error, match=match):
        jaxinfo.kl_divergence_from_top_k(*args, **options)


def test_errors_are_raised_before_tracing():
    with pytest.raises(ValueError, match="q_logits should have shape"):
        jax.jit(jaxinfo.kl_divergence_from_top_k).lower(_A, _I, _Q[:1])


# ----------------------------------------------------------------------------
# check_top_k and checkify_top_k
# ----------------------------------------------------------------------------


def _valid():
    log_p = np.float32([[np.log(0.6), np.log(0.3), np.log(0.05)], [np.log(0.5)] * 2 + [-np.inf]])
    return log_p, np.array([[4, 1, 0], [2, 3, 0]], np.int32)


def test_check_top_k_accepts_and_returns():
    log_p, ids = _valid()
    a, i = jaxinfo.check_top_k(log_p, ids, num_classes=5)
    assert isinstance(a, jax.Array) and i.dtype == jnp.int32
    np.testing.assert_array_equal(a, log_p)
    # -inf is fine; a top-k mass of 1 within atol too; padding is ignored
    a = log_p.copy()
    a[1, 2] = np.nan
    jaxinfo.check_top_k(a, ids, num_classes=5, where=np.array([True, True, False]))
    jaxinfo.check_top_k(np.log([[0.5, 0.5000001]]), [[0, 1]], num_classes=2)


@pytest.mark.parametrize(
    ("change", "options", "message"),
    [
        (lambda a, i: a.__setitem__((1, 1), np.nan), {}, r"p_log_probs has NaN at index \(1, 1\)"),
        (
            lambda a, i: a.__setitem__((0, 2), 0.25),
            {},
            r"p_log_probs has 0.25 at index \(0, 2\), above 0; log-probabilities must be <= 0",
        ),
        (
            lambda a, i: i.__setitem__((1, 0), 5),
            {},
            r"p_ids has 5 at index \(1, 0\), out of range \[0, 5\); mark padding slots",
        ),
        (
            lambda a, i: i.__setitem__((0, slice(None)), [-1, 1, 9]),
            {},
            r"p_ids has -1 at index \(0, 0\), out of range \[0, 5\), and 1 more such id",
        ),
        (
            lambda a, i: i.__setitem__((1, 2), 2),
            {},
            r"p_ids repeats class 2 at index \(1, 2\); the ids of the slots that where includes",
        ),
        (
            lambda a, i: a.__setitem__((0, 2), np.log(0.2)),
            {},
            r"row \(0,\) of p_log_probs has top-k mass 1.1 along axis -1, above 1 \(atol=1e-05\)",
        ),
        (
            lambda a, i: a.__setitem__((0, 2), np.log(0.2)),
            {"axis": 1},
            r"top-k mass 1.1 along axis 1, above 1",
        ),
    ],
)
def test_check_top_k_names_what_is_wrong(change, options, message):
    log_p, ids = _valid()
    change(log_p, ids)
    with pytest.raises(ValueError, match=message):
        jaxinfo.check_top_k(log_p, ids, num_classes=5, **options)
    err, _ = checkify.checkify(lambda a, i: jaxinfo.checkify_top_k(a, i, num_classes=5, **options))(
        log_p, ids
    )
    first = re.split(r"(, and \d+ more)|;", message)[0]
    assert re.search(first, str(err.get())), err.get()


def test_check_top_k_repeats_along_another_axis_and_where():
    ids = np.array([[1, 2], [3, 3], [1, 0]])  # slots along axis 0: column 0 repeats 1
    log_p = np.full(ids.shape, -2.0, np.float32)
    with pytest.raises(ValueError, match=r"repeats class 1 at index \(2, 0\)"):
        jaxinfo.check_top_k(log_p, ids, num_classes=4, axis=0)
    jaxinfo.check_top_k(log_p, ids, num_classes=4, axis=0, where=np.array([[1], [1], [0]]) > 0)


def test_check_top_k_argument_errors():
    log_p, ids = _valid()
    with pytest.raises(TypeError, match="num_classes must be a positive int"):
        jaxinfo.check_top_k(log_p, ids, num_classes=5.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        jaxinfo.check_top_k(log_p, ids, num_classes=0)
    with pytest.raises(ValueError, match="must have the same shape"):
        jaxinfo.check_top_k(log_p, ids[:, :2], num_classes=5)
    with pytest.raises(TypeError, match="p_ids must have an integer dtype"):
        jaxinfo.check_top_k(log_p, np.float32(ids), num_classes=5)
    with pytest.raises(TypeError, match=r"use jaxinfo\.checkify_top_k"):
        jax.jit(lambda a: jaxinfo.check_top_k(a, ids, num_classes=5))(log_p)

"""Tests for the value checks: messages and indices, valid inputs, the traced (checkify) form."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jaxinfo

NEGATIVE_HINT = "; probabilities (and the weights that jaxinfo normalises) must be >= 0"
SUM_HINT = "; pass normalized=False for non-negative weights, which jaxinfo normalises along axis"
EMPTY_HINT = "; pass allow_empty_rows=True if that is intended (jaxinfo measures an empty row as 0)"


def _uniform(shape, dtype=np.float32):
    return np.full(shape, 1 / shape[-1], dtype)


def _raises(match_exactly, f, *args, **kwargs):
    """Asserts that ``f`` raises a ValueError whose message is exactly ``match_exactly``."""
    with pytest.raises(ValueError) as info:
        f(*args, **kwargs)
    assert str(info.value) == match_exactly
    return info.value


def _checkified(f, *args, **kwargs):
    """Runs ``f`` through ``checkify.checkify(jax.jit(...))``; the error string (or None)."""
    err, out = checkify.checkify(jax.jit(lambda *a: f(*a, **kwargs)))(*args)
    return err.get(), out


# ----------------------------------------------------------------------------
# check_distribution: each error, with its full index
# ----------------------------------------------------------------------------


def test_negative_entry_names_value_and_full_index():
    p = _uniform((8, 40))
    p[3, 17] = -0.2
    _raises(
        f"p has a negative entry -0.2 at index (3, 17){NEGATIVE_HINT}",
        jaxinfo.check_distribution,
        p,
    )


def test_count_of_the_other_offending_entries():
    p = _uniform((8, 40))
    p[3, 17] = -0.2
    p[5, 0] = -1.0
    _raises(
        f"p has a negative entry -0.2 at index (3, 17), and 1 more negative entry{NEGATIVE_HINT}",
        jaxinfo.check_distribution,
        p,
    )
    p[6, :12] = -0.5
    _raises(
        "p has a negative entry -0.2 at index (3, 17), and 13 more negative entries"
        + NEGATIVE_HINT,
        jaxinfo.check_distribution,
        p,
    )


def test_first_location_is_in_row_major_order():
    p = _uniform((2, 3, 4))
    p[1, 0, 3] = -0.5
    p[0, 2, 1] = -0.25
    _raises(
        "p has a negative entry -0.25 at index (0, 2, 1), and 1 more negative entry"
        + NEGATIVE_HINT,
        jaxinfo.check_distribution,
        p,
    )


def test_nan_and_inf():
    p = _uniform((3, 4))
    p[0, 2] = np.nan
    _raises("p has NaN at index (0, 2)", jaxinfo.check_distribution, p)
    p = _uniform((3, 4))
    p[2, 1] = np.inf
    _raises(
        "p has inf at index (2, 1); probabilities must be finite", jaxinfo.check_distribution, p
    )
    p[1, 3] = -np.inf
    _raises(
        "p has -inf at index (1, 3), and 1 more infinite entry; probabilities must be finite",
        jaxinfo.check_distribution,
        p,
    )


def test_nan_is_reported_before_negative_entries_and_sums():
    p = _uniform((3, 4))
    p[0, 0] = -1.0
    p[2, 3] = np.nan
    _raises("p has NaN at index (2, 3)", jaxinfo.check_distribution, p, normalized=False)


def test_row_sum_names_row_sum_axis_and_tolerance():
    p = _uniform((8, 10))
    p[5] *= 0.93
    _raises(
        f"row (5,) of p sums to 0.93 along axis -1, expected 1 (atol=1e-05){SUM_HINT}",
        jaxinfo.check_distribution,
        p,
    )
    p[7] *= 1.5
    _raises(
        f"row (5,) of p sums to 0.93 along axis -1, expected 1 (atol=1e-05), "
        f"and 1 more such row{SUM_HINT}",
        jaxinfo.check_distribution,
        p,
    )


def test_row_index_leaves_out_the_outcome_axis():
    p = np.moveaxis(_uniform((2, 3, 5)), -1, 1)  # outcomes on axis 1: shape (2, 5, 3)
    p[1, :, 2] *= 2
    _raises(
        f"row (1, 2) of p sums to 2 along axis 1, expected 1 (atol=1e-05){SUM_HINT}",
        jaxinfo.check_distribution,
        p,
        axis=1,
    )


def test_one_dimensional_p_is_named_without_a_row():
    _raises(
        f"p sums to 1.1 along axis -1, expected 1 (atol=1e-05){SUM_HINT}",
        jaxinfo.check_distribution,
        [0.5, 0.6],
    )
    _raises(
        f"p has no mass (sums to 0 along axis 0){EMPTY_HINT}",
        jaxinfo.check_distribution,
        [0.0, 0.0],
        axis=0,
        normalized=False,
    )


@pytest.mark.parametrize("normalized", [True, False])
def test_empty_row_is_an_error_unless_allowed(normalized):
    p = _uniform((4, 3))
    p[2] = 0
    _raises(
        f"row (2,) of p has no mass (sums to 0 along axis -1){EMPTY_HINT}",
        jaxinfo.check_distribution,
        p,
        normalized=normalized,
    )
    out = jaxinfo.check_distribution(p, normalized=normalized, allow_empty_rows=True)
    np.testing.assert_array_equal(out, p)


def test_row_emptied_by_where():
    p = _uniform((2, 3))
    where = np.array([[True, True, True], [False, False, False]])
    _raises(
        f"row (1,) of p has no mass (its entries selected by where sum to 0 along axis -1)"
        f"{EMPTY_HINT}",
        jaxinfo.check_distribution,
        p,
        where=where,
    )
    jaxinfo.check_distribution(p, where=where, allow_empty_rows=True)


def test_default_tolerance_depends_on_dtype():
    off = np.array([0.5, 0.5 + 5e-3], np.float32)  # inside bf16's 1e-2, outside f16's 1e-3
    jaxinfo.check_distribution(jnp.asarray(off, jnp.bfloat16))
    with pytest.raises(ValueError, match=re.escape("expected 1 (atol=0.001)")):
        jaxinfo.check_distribution(jnp.asarray(off, jnp.float16))
    with pytest.raises(ValueError, match=re.escape("expected 1 (atol=0.01)")):
        jaxinfo.check_distribution(jnp.array([0.5, 0.53], jnp.bfloat16))
    jaxinfo.check_distribution(np.array([0.5, 0.5 + 5e-6], np.float32))
    with pytest.raises(ValueError, match=re.escape("expected 1 (atol=1e-05)")):
        jaxinfo.check_distribution(np.array([0.5, 0.5 + 5e-5], np.float32))


def test_default_tolerance_in_float64(x64):
    jaxinfo.check_distribution(jnp.array([0.5, 0.5 + 1e-10]))
    _raises(
        f"p sums to 1.00000001 along axis -1, expected 1 (atol=1e-09){SUM_HINT}",
        jaxinfo.check_distribution,
        jnp.array([0.5, 0.5 + 1e-8]),
    )


def test_explicit_tolerance():
    p = [0.5, 0.6]
    assert jaxinfo.check_distribution(p, atol=0.2).shape == (2,)
    with pytest.raises(ValueError, match=re.escape("(atol=0.05)")):
        jaxinfo.check_distribution(p, atol=0.05)


@pytest.mark.parametrize(
    "atol, error, message",
    [
        (-1e-3, ValueError, "atol must be a finite number >= 0, got -0.001."),
        (float("nan"), ValueError, "atol must be a finite number >= 0, got nan."),
        ("1e-3", TypeError, "atol must be a non-negative number or None, got '1e-3'."),
        (True, TypeError, "atol must be a non-negative number or None, got True."),
    ],
)
def test_bad_tolerance(atol, error, message):
    with pytest.raises(error) as info:
        jaxinfo.check_distribution([0.5, 0.5], atol=atol)
    assert str(info.value) == message


# ----------------------------------------------------------------------------
# check_distribution: valid inputs pass, and come back as arrays
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_valid_distributions_pass_in_each_dtype(dtype):
    rng = np.random.default_rng(0)
    p = rng.gamma(0.7, size=(16, 50))
    p[rng.random(p.shape) < 0.2] = 0.0
    p[:, 0] += 0.1
    p = jnp.asarray(p / p.sum(-1, keepdims=True), dtype)
    out = jaxinfo.check_distribution(p)
    assert isinstance(out, jax.Array)
    assert out.dtype == dtype
    np.testing.assert_array_equal(np.asarray(out, np.float32), np.asarray(p, np.float32))


def test_rounded_bfloat16_distribution_passes():
    # 50000 entries of 1/50000 in bfloat16 sum to 1.0014 (README, Semantics).
    p = jnp.full(50000, 1 / 50000, jnp.bfloat16)
    assert abs(float(jnp.sum(p.astype(jnp.float32))) - 1) > 1e-3
    jaxinfo.check_distribution(p)


def test_valid_float64_passes(x64):
    p = jnp.array([[0.1, 0.2, 0.7], [1 / 3, 1 / 3, 1 / 3]])
    out = jaxinfo.check_distribution(p)
    assert out.dtype == jnp.float64


def test_lists_and_integers_are_accepted():
    out = jaxinfo.check_distribution([[0.25, 0.75], [1.0, 0.0]])
    assert isinstance(out, jax.Array)
    np.testing.assert_array_equal(out, [[0.25, 0.75], [1.0, 0.0]])
    onehot = jaxinfo.check_distribution(np.eye(3, dtype=np.int32))
    assert onehot.dtype == jnp.float32
    counts = jaxinfo.check_distribution([[3, 0, 1], [0, 0, 7]], normalized=False)
    np.testing.assert_array_equal(counts, [[3.0, 0.0, 1.0], [0.0, 0.0, 7.0]])
    with pytest.raises(ValueError, match=re.escape("row (0,) of p sums to 4 along axis -1")):
        jaxinfo.check_distribution([[3, 0, 1], [0, 0, 7]])


def test_zero_entries_pass_unnormalised():
    w = np.array([[0.0, 2.0, 5.0], [0.0, 0.0, 1e-30]], np.float32)
    np.testing.assert_array_equal(jaxinfo.check_distribution(w, normalized=False), w)


def test_where_excludes_entries_from_every_check():
    p = np.array([[0.5, np.nan, 0.5], [0.25, -3.0, 0.75], [0.1, 0.9, 7.0]], np.float32)
    where = np.array([[True, False, True], [True, False, True], [True, True, False]])
    jaxinfo.check_distribution(p, where=where)
    column = np.array([True, False, True])  # broadcast to every row
    jaxinfo.check_distribution(p[:2], where=column)
    with pytest.raises(ValueError, match=re.escape("NaN at index (0, 1)")):
        jaxinfo.check_distribution(p)


def test_tuple_axis_checks_the_rows_of_several_axes():
    p = _uniform((2, 3, 4)) / 3  # each (3, 4) slab along axes (1, 2) sums to 1
    np.testing.assert_array_equal(jaxinfo.check_distribution(p, axis=(1, 2)), p)
    p[1, 0, 0] += 0.5
    _raises(
        f"row (1,) of p sums to 1.5 along axis (-1, 1), expected 1 (atol=1e-05){SUM_HINT}",
        jaxinfo.check_distribution,
        p,
        axis=(-1, 1),
    )
    # every axis: one distribution, named as p
    _raises(
        f"p sums to 0.5 along axis (0, 1), expected 1 (atol=1e-05){SUM_HINT}",
        jaxinfo.check_distribution,
        _uniform((2, 2)) / 4,
        axis=(0, 1),
    )
    logits = np.zeros((2, 3, 4), np.float32)
    logits[0] = -np.inf
    _raises(
        f"row (0,) of logits has no possible class along axis (1, 2) (every entry is -inf)"
        f"{EMPTY_HINT}",
        jaxinfo.check_logits,
        logits,
        axis=(1, 2),
    )
    where = np.ones((3, 4), bool)
    jaxinfo.check_logits(logits, axis=(1, 2), where=where, allow_empty_rows=True)
    err, _ = checkify.checkify(jax.jit(lambda x: jaxinfo.checkify_distribution(x, axis=(1, 2))))(
        jnp.asarray(p)
    )
    assert err.get().startswith("row (1,) of p sums to 1.5 along axis (1, 2)")
    err, _ = checkify.checkify(
        jax.jit(lambda x: jaxinfo.checkify_logits(x, axis=(1, 2), allow_empty_rows=True))
    )(jnp.asarray(logits))
    assert err.get() is None


# ----------------------------------------------------------------------------
# check_distribution: static errors come from the shared helpers
# ----------------------------------------------------------------------------


def test_type_and_axis_errors():
    with pytest.raises(TypeError, match="p must be real-valued, got dtype complex64"):
        jaxinfo.check_distribution(jnp.ones(3, jnp.complex64))
    with pytest.raises(TypeError, match="p must have a real numeric dtype"):
        jaxinfo.check_distribution(jnp.array([True, False]))
    with pytest.raises(ValueError, match="axis 2 is out of range for p with 2 dimension"):
        jaxinfo.check_distribution(_uniform((2, 3)), axis=2)
    with pytest.raises(TypeError, match=re.escape("axis must be an int, got 0.5")):
        jaxinfo.check_distribution(_uniform((2, 3)), axis=0.5)
    with pytest.raises(ValueError, match=re.escape("axis (1, -1) names axis 1 of p")):
        jaxinfo.check_distribution(_uniform((2, 3)), axis=(1, -1))
    with pytest.raises(ValueError, match=re.escape("axis=() names no axis")):
        jaxinfo.check_logits(_uniform((2, 3)), axis=())
    with pytest.raises(ValueError, match="p must have at least one dimension"):
        jaxinfo.check_distribution(1.0)
    with pytest.raises(TypeError, match="where must be a boolean array, got dtype int32"):
        jaxinfo.check_distribution(_uniform((2, 3)), where=np.array([1, 0, 1], np.int32))
    with pytest.raises(ValueError, match=re.escape("where with shape (2,) does not broadcast")):
        jaxinfo.check_distribution(_uniform((2, 3)), where=np.array([True, False]))


# ----------------------------------------------------------------------------
# check_logits
# ----------------------------------------------------------------------------


def test_logits_nan():
    x = np.zeros((3, 5), np.float32)
    x[1, 4] = x[2, 0] = np.nan
    _raises("logits has NaN at index (1, 4), and 1 more NaN entry", jaxinfo.check_logits, x)


def test_logits_positive_infinity():
    x = np.zeros((3, 5), np.float32)
    x[2, 3] = np.inf
    _raises(
        "logits has +inf at index (2, 3); logits must be finite, or -inf for an impossible "
        "(masked) class",
        jaxinfo.check_logits,
        x,
    )


def test_logits_empty_row_is_an_error_unless_allowed():
    x = np.zeros((4, 3), np.float32)
    x[:, 0] = -np.inf  # a masked class: fine
    x[3] = -np.inf
    _raises(
        f"row (3,) of logits has no possible class along axis -1 (every entry is -inf){EMPTY_HINT}",
        jaxinfo.check_logits,
        x,
    )
    np.testing.assert_array_equal(jaxinfo.check_logits(x, allow_empty_rows=True), x)
    _raises(
        f"logits has no possible class along axis -1 (every entry is -inf){EMPTY_HINT}",
        jaxinfo.check_logits,
        x[3],
    )


def test_logits_where():
    x = np.array([[0.0, np.nan, np.inf], [-np.inf, 1.0, 2.0]], np.float32)
    where = np.array([True, False, False])
    with pytest.raises(ValueError, match=re.escape("logits has NaN at index (0, 1)")):
        jaxinfo.check_logits(x)
    _raises(
        "row (1,) of logits has no possible class along axis -1 (every entry is -inf or "
        f"excluded by where){EMPTY_HINT}",
        jaxinfo.check_logits,
        x,
        where=where,
    )
    jaxinfo.check_logits(x, where=where, allow_empty_rows=True)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_valid_logits_pass(dtype):
    big = float(jnp.finfo(dtype).max)  # huge logits are valid; 1e30 would be inf in float16
    x = jnp.array([[-big, 0.0, big], [-jnp.inf, 3.0, -2.0]], dtype)
    out = jaxinfo.check_logits(x)
    assert out.dtype == dtype
    assert jaxinfo.check_logits([[1, 2, 3]]).dtype == jnp.float32


def test_valid_float64_logits(x64):
    assert jaxinfo.check_logits(jnp.array([0.0, -jnp.inf, 1e300])).dtype == jnp.float64


# ----------------------------------------------------------------------------
# Traced values: the eager checks refuse them
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "transform",
    [jax.jit, jax.vmap, jax.grad],
    ids=["jit", "vmap", "grad"],
)
def test_eager_checks_refuse_tracers(transform):
    def f(p):
        return jnp.sum(jaxinfo.check_distribution(p))

    with pytest.raises(TypeError) as info:
        transform(f)(jnp.full((2, 2), 0.5))
    message = str(info.value)
    assert message.startswith("check_distribution checks concrete values on the host, but p")
    assert "jaxinfo.checkify_distribution" in message
    assert "jax.experimental.checkify.checkify" in message


def test_traced_where_and_traced_logits_are_refused():
    p = _uniform((2, 3))
    with pytest.raises(TypeError, match="but where is a traced value"):
        jax.jit(lambda m: jaxinfo.check_distribution(p, where=m))(np.ones(3, bool))
    with pytest.raises(TypeError, match=re.escape("use jaxinfo.checkify_logits")):
        jax.jit(jaxinfo.check_logits)(jnp.zeros(3))


# ----------------------------------------------------------------------------
# The checkify form, under jit and vmap
# ----------------------------------------------------------------------------


def _entropy_checked(p, where=None):
    return jaxinfo.entropy(jaxinfo.checkify_distribution(p, where=where), where=where)


def test_checkify_passes_valid_input_under_jit():
    p = jnp.asarray(_uniform((4, 8)))
    err, h = checkify.checkify(jax.jit(_entropy_checked))(p)
    assert err.get() is None
    err.throw()
    np.testing.assert_allclose(h, np.log(8), rtol=1e-6)
    err, _ = checkify.checkify(jax.jit(_entropy_checked))(p.astype(jnp.bfloat16))
    assert err.get() is None


def test_checkify_reports_index_and_value_under_jit():
    p = _uniform((8, 40))
    p[3, 17] = -0.2
    p[6, 2] = -1.0
    err, _ = checkify.checkify(jax.jit(_entropy_checked))(jnp.asarray(p))
    assert err.get() == (
        f"p has a negative entry -0.2 at index (3, 17), and 1 more{NEGATIVE_HINT} (`check` failed)"
    )
    with pytest.raises(ValueError, match=re.escape("at index (3, 17)")):
        err.throw()


def test_checkify_row_checks_under_jit():
    p = _uniform((8, 10))
    p[5] *= 0.93
    message, _ = _checkified(jaxinfo.checkify_distribution, jnp.asarray(p))
    assert message.startswith("row (5,) of p sums to 0.93 along axis -1, expected 1 (atol=1e-05)")
    p[5] = 0
    message, _ = _checkified(jaxinfo.checkify_distribution, jnp.asarray(p), normalized=False)
    assert message.startswith("row (5,) of p has no mass (sums to 0 along axis -1), and 0 more")
    message, _ = _checkified(
        jaxinfo.checkify_distribution, jnp.asarray(p), normalized=False, allow_empty_rows=True
    )
    assert message is None


def test_checkify_respects_where():
    p = jnp.array([[0.5, jnp.nan, 0.5]])
    where = jnp.array([True, False, True])
    err, h = checkify.checkify(jax.jit(_entropy_checked))(p, where)
    assert err.get() is None
    np.testing.assert_allclose(h, [np.log(2)], rtol=1e-6)
    err, _ = checkify.checkify(jax.jit(_entropy_checked))(p)
    assert err.get().startswith("p has NaN at index (0, 1)")


def test_checkify_logits_under_jit():
    x = jnp.array([[0.0, 1.0], [jnp.inf, 0.0]])
    message, _ = _checkified(jaxinfo.checkify_logits, x)
    assert message.startswith("logits has +inf at index (1, 0), and 0 more")
    x = jnp.array([[0.0, -jnp.inf], [-jnp.inf, -jnp.inf]])
    message, _ = _checkified(jaxinfo.checkify_logits, x)
    assert message.startswith("row (1,) of logits has no possible class along axis -1")
    message, out = _checkified(jaxinfo.checkify_logits, x, allow_empty_rows=True)
    assert message is None
    np.testing.assert_array_equal(out, x)


def test_checkify_under_jit_of_vmap_reports_index_within_the_element():
    p = _uniform((8, 40))
    p[6, 2] = -1.0
    err, h = checkify.checkify(jax.jit(jax.vmap(_entropy_checked)))(jnp.asarray(p))
    assert err.get().startswith("p has a negative entry -1 at index (2,), and 0 more")
    assert h.shape == (8,)
    err, _ = checkify.checkify(jax.jit(jax.vmap(_entropy_checked)))(jnp.asarray(_uniform((8, 4))))
    assert err.get() is None


def test_vmap_of_checkify_reports_the_batch_index():
    p = _uniform((8, 40))
    p[6, 2] = -1.0
    p[3, 5] = np.nan
    err, _ = jax.vmap(checkify.checkify(_entropy_checked))(jnp.asarray(p))
    lines = err.get().splitlines()
    assert lines[0].startswith("at mapped index 3: p has NaN at index (5,)")
    assert lines[1].startswith("at mapped index 6: p has a negative entry -1 at index (2,)")


def test_checkify_form_outside_jit_and_without_checkify():
    p = jnp.array([0.5, -0.5])
    with pytest.raises(ValueError, match=re.escape("p has a negative entry -0.5 at index (1,)")):
        jaxinfo.checkify_distribution(p)  # eager: the check raises at once
    with pytest.raises(ValueError, match="not functionalized"):
        jax.jit(jaxinfo.checkify_distribution)(p)


BAD_INPUTS = [
    ("p", np.array([[0.5, 0.5], [0.5, np.nan]], np.float32), {}),
    ("p", np.array([[0.5, 0.5], [-np.inf, 1.0]], np.float32), {}),
    ("p", np.array([[[0.5, 0.5], [1.5, -0.5]]], np.float32), {}),
    ("p", np.array([[0.5, 0.5], [0.5, 0.4]], np.float32), {}),
    ("p", np.array([[0.5, 0.5], [0.5, 0.4]], np.float32), {"axis": 0}),
    ("p", np.array([[0.0, 0.0], [2.0, 0.4]], np.float32), {"normalized": False}),
    ("p", np.array([0.5, 0.52]).astype(jnp.bfloat16), {}),
    ("logits", np.array([[0.0, 1.0], [np.inf, 0.0]], np.float32), {}),
    ("logits", np.array([[0.0, 1.0], [-np.inf, -np.inf]], np.float32), {}),
    ("logits", np.array([[0.0, 1.0], [-np.inf, 2.0]], np.float32), {"where": [True, False]}),
]


@pytest.mark.parametrize("kind, x, kwargs", BAD_INPUTS)
def test_eager_and_checkify_messages_agree(kind, x, kwargs):
    eager = {"p": jaxinfo.check_distribution, "logits": jaxinfo.check_logits}[kind]
    traced = {"p": jaxinfo.checkify_distribution, "logits": jaxinfo.checkify_logits}[kind]
    if "where" in kwargs:
        kwargs = {**kwargs, "where": np.asarray(kwargs["where"])}
    with pytest.raises(ValueError) as info:
        eager(x, **kwargs)
    message, _ = _checkified(traced, jnp.asarray(x), **kwargs)
    assert message is not None
    # Same text up to the count of the others, which the eager form leaves out when 0.
    eager_head = str(info.value).split(", and ")[0].split("; ")[0]
    traced_head = message.split(", and ")[0]
    assert eager_head == traced_head


# ----------------------------------------------------------------------------
# The measures themselves do not check values
# ----------------------------------------------------------------------------


def test_measures_do_not_validate():
    p = jnp.array([[0.5, 0.5], [1.2, -0.2]])
    h = jaxinfo.entropy(p)  # no error: garbage in, no exception out
    assert h.shape == (2,)
    assert jaxinfo.entropy_from_logits(jnp.array([0.0, jnp.nan])).shape == ()
    assert jaxinfo.kl_divergence(p, jnp.array([0.5, 0.5])).shape == (2,)


@pytest.mark.parametrize(
    "measure, args",
    [
        ("entropy", (jnp.array([1.2, -0.2]),)),
        ("cross_entropy", (jnp.array([1.2, -0.2]), jnp.array([0.5, 0.5]))),
        ("kl_divergence", (jnp.array([1.2, -0.2]), jnp.array([0.5, 0.5]))),
        ("entropy_from_logits", (jnp.array([jnp.nan, jnp.inf]),)),
        ("cross_entropy_from_logits", (jnp.array([1.2, -0.2]), jnp.array([jnp.nan, 0.0]))),
    ],
)
def test_measures_contain_no_checks(measure, args):
    # A measure with a checkify.check inside would report it here.
    err, _ = checkify.checkify(jax.jit(getattr(jaxinfo, measure)))(*args)
    assert err.get() is None
    assert "check" not in str(jax.make_jaxpr(getattr(jaxinfo, measure))(*args))


def test_public_names():
    for name in ("check_distribution", "check_logits", "checkify_distribution", "checkify_logits"):
        assert name in jaxinfo.__all__
        assert getattr(jaxinfo, name).__module__ == "jaxinfo._validation"
    assert jaxinfo.__all__ == sorted(jaxinfo.__all__)

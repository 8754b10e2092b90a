"""Tests for the shared numerics: safe primitives, dtype policy and argument checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinfo
from jaxinfo._checks import compute_dtype
from jaxinfo._softmax import shift_logits
from jaxinfo._xlogy import xlog_from_log, xlogx, xlogy

# ----------------------------------------------------------------------------
# Safe primitives
# ----------------------------------------------------------------------------


def test_xlogx_values_and_derivatives_at_zero():
    x = jnp.array([0.0, 1e-45, 0.5, 1.0])
    np.testing.assert_allclose(xlogx(x), [0.0, 0.0, 0.5 * np.log(0.5), 0.0], atol=1e-42)
    d1 = jax.vmap(jax.grad(xlogx))(x)
    d2 = jax.vmap(jax.grad(jax.grad(xlogx)))(x)
    assert bool(jnp.all(jnp.isfinite(d1))) and bool(jnp.all(jnp.isfinite(d2)))
    np.testing.assert_allclose(d1[2:], np.log([0.5, 1.0]) + 1, rtol=1e-6)


def test_xlogy_conventions():
    x = jnp.array([0.0, 0.0, 0.5, 0.5])
    y = jnp.array([0.0, 0.3, 0.0, 0.3])
    v = xlogy(x, y)
    np.testing.assert_array_equal(v[:2], 0.0)
    assert v[2] == -jnp.inf
    np.testing.assert_allclose(v[3], 0.5 * np.log(0.3), rtol=1e-6)
    gx, gy = jax.vmap(jax.grad(xlogy, argnums=(0, 1)))(x, y)
    # The textbook derivatives wherever y > 0: d/dx = log y, d/dy = x / y.
    np.testing.assert_allclose(gx[1], np.log(0.3), rtol=1e-6)
    np.testing.assert_allclose(gy[3], 0.5 / 0.3, rtol=1e-6)
    np.testing.assert_array_equal(gy[1], 0.0)
    # x = y = 0: finite (zero) instead of 0/0.
    assert float(gx[0]) == 0.0 and float(gy[0]) == 0.0


def test_xlog_from_log():
    x = jnp.array([0.0, 0.5, 0.5])
    log_y = jnp.array([-jnp.inf, -jnp.inf, -1.0])
    np.testing.assert_array_equal(xlog_from_log(x, log_y), [0.0, -jnp.inf, -0.5])
    g = jax.grad(lambda lx: xlog_from_log(x, lx)[0])(log_y)
    assert bool(jnp.all(jnp.isfinite(g)))


def test_shift_logits_guards_fully_masked_rows():
    x = jnp.array([[1.0, 2.0], [-jnp.inf, -jnp.inf]])
    sh = shift_logits(x, 1, None)
    np.testing.assert_array_equal(sh.nonempty[:, 0], [True, False])
    np.testing.assert_array_equal(sh.log_z[1], 0.0)
    np.testing.assert_allclose(sh.log_z[0], np.log1p(np.exp(-1.0)), rtol=1e-6)
    assert float(jnp.max(sh.s[0])) == 0.0


def test_compute_dtype_policy():
    assert compute_dtype(jnp.bfloat16) == jnp.float32
    assert compute_dtype(jnp.float16, jnp.bfloat16) == jnp.float32
    assert compute_dtype(jnp.int8) == jnp.float32
    with jax.enable_x64(True):
        assert compute_dtype(jnp.float32, jnp.float64) == jnp.float64
        assert compute_dtype(jnp.int64) == jnp.float64


# ----------------------------------------------------------------------------
# Bad input: a clear error before compiling
# ----------------------------------------------------------------------------

PAIRS = [
    jaxinfo.cross_entropy,
    jaxinfo.kl_divergence,
    jaxinfo.cross_entropy_from_logits,
    jaxinfo.kl_divergence_from_logits,
]
SINGLES = [jaxinfo.entropy, jaxinfo.entropy_from_logits]


def _call(f, x, **kw):
    if f in PAIRS:
        return f(x, x, **kw)
    if f is jaxinfo.cross_entropy_from_labels:
        return f(jnp.zeros(x.shape[:-1], jnp.int32), x, **kw)
    return f(x, **kw)


ALL = SINGLES + PAIRS + [jaxinfo.cross_entropy_from_labels]


@pytest.mark.parametrize("f", PAIRS, ids=lambda f: f.__name__)
def test_shape_mismatch(f):
    with pytest.raises(ValueError, match=r"must have the same shape.*\(2, 3\).*\(2, 4\)"):
        f(jnp.ones((2, 3)), jnp.ones((2, 4)))


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.__name__)
@pytest.mark.parametrize("axis", [2, -3, 7])
def test_axis_out_of_range(f, axis):
    with pytest.raises(ValueError, match=rf"axis {axis} is out of range .* 2 dimension"):
        _call(f, jnp.ones((2, 3)), axis=axis)


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.__name__)
def test_axis_not_an_int(f):
    with pytest.raises(TypeError, match=r"axis must be an int, got 1\.5"):
        _call(f, jnp.ones((2, 3)), axis=1.5)


@pytest.mark.parametrize("f", [*SINGLES, jaxinfo.information], ids=lambda f: f.__name__)
def test_complex_rejected(f):
    name = "logits" if "logits" in f.__name__ else "p"
    with pytest.raises(TypeError, match=rf"{name} must be real-valued, got dtype complex64"):
        f(jnp.ones(3, jnp.complex64))


@pytest.mark.parametrize("f", PAIRS, ids=lambda f: f.__name__)
def test_complex_second_argument_rejected(f):
    with pytest.raises(TypeError, match="must be real-valued, got dtype complex64"):
        f(jnp.ones(3), jnp.ones(3, jnp.complex64))


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), jnp.array([True, False]), object()])
def test_non_numeric_rejected(bad):
    with pytest.raises(TypeError, match=r"p must (have a real numeric dtype|be a real-valued)"):
        jaxinfo.entropy(bad)


def test_scalar_input_rejected():
    with pytest.raises(ValueError, match="p must have at least one dimension"):
        jaxinfo.entropy(jnp.array(0.5))


def test_float_labels_rejected():
    with pytest.raises(TypeError, match=r"labels must have an integer dtype.*float32"):
        jaxinfo.cross_entropy_from_labels(jnp.array([0.0, 1.0]), jnp.ones((2, 3)))
    with pytest.raises(TypeError, match=r"labels must have an integer dtype.*bool"):
        jaxinfo.cross_entropy_from_labels(jnp.array([True]), jnp.ones((1, 3)))


@pytest.mark.parametrize(
    ("labels_shape", "logits_shape", "axis", "expected"),
    [
        ((3,), (2, 5), -1, r"\(2,\)"),
        ((2, 5), (2, 5), -1, r"\(2,\)"),
        ((2,), (2, 5, 4), 1, r"\(2, 4\)"),
    ],
)
def test_labels_shape_mismatch(labels_shape, logits_shape, axis, expected):
    with pytest.raises(ValueError, match=rf"labels should have shape {expected}"):
        jaxinfo.cross_entropy_from_labels(
            jnp.zeros(labels_shape, jnp.int32), jnp.ones(logits_shape), axis=axis
        )


@pytest.mark.parametrize("f", ALL, ids=lambda f: f.__name__)
def test_where_not_broadcastable(f):
    with pytest.raises(ValueError, match=r"where with shape \(4,\) does not broadcast .*\(2, 3\)"):
        _call(f, jnp.ones((2, 3)), where=jnp.ones(4, bool))


def test_where_must_be_boolean():
    with pytest.raises(TypeError, match="where must be a boolean array, got dtype float32"):
        jaxinfo.entropy(jnp.ones(3), where=jnp.ones(3))


@pytest.mark.parametrize("base", [0, -2, 1, 1.0])
def test_bad_base(base):
    with pytest.raises(ValueError, match="base must be positive and not 1"):
        jaxinfo.entropy(jnp.ones(3), base=base)


def test_base_not_a_number():
    with pytest.raises(TypeError, match="base must be a"):
        jaxinfo.entropy(jnp.ones(3), base="2")


@pytest.mark.parametrize("eps", [-0.1, 1.5, [0.1, 0.2]])
def test_bad_label_smoothing(eps):
    with pytest.raises(ValueError, match="label_smoothing must be a scalar in"):
        jaxinfo.cross_entropy_from_labels(jnp.array([0]), jnp.ones((1, 3)), label_smoothing=eps)


def test_errors_are_raised_before_compiling():
    # Under jit the checks run at trace time, on shapes and dtypes alone.
    f = jax.jit(jaxinfo.kl_divergence)
    with pytest.raises(ValueError, match="must have the same shape"):
        f(jnp.ones((2, 3)), jnp.ones((2, 4)))
    g = jax.jit(jaxinfo.cross_entropy_from_labels)
    with pytest.raises(TypeError, match="integer dtype"):
        g(jnp.array([0.5]), jnp.ones((1, 3)))


def test_ragged_list_input():
    with pytest.raises(ValueError, match="could not make an array"):
        jaxinfo.entropy([[0.5, 0.5], [1.0]])

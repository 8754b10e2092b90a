"""Tests for linear_cross_entropy: values, gradients, dtypes, memory, errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinfo
from jaxinfo import _linear_kernel as kernel


def _problem(n=24, d=16, v=300, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w = rng.normal(size=(d, v)) * scale / np.sqrt(d)
    labels = rng.integers(0, v, size=n)
    return x, w, labels


def _reference(x, w, labels, weights):
    """float64 numpy: per-position loss, and dx, dw of sum(weights * loss)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    labels = np.asarray(labels)
    logits = x @ w
    m = logits.max(axis=1, keepdims=True)
    log_z = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
    valid = (labels >= 0) & (labels < w.shape[1])
    safe = np.where(valid, labels, 0)
    loss = log_z - logits[np.arange(len(labels)), safe]
    loss = np.where(labels < 0, 0.0, np.where(valid, loss, np.nan))
    onehot = np.zeros_like(logits)
    onehot[np.arange(len(labels)), safe] = 1.0
    g = np.where(valid, weights, 0.0)[:, None] * (np.exp(logits - log_z[:, None]) - onehot)
    return loss, g @ w.T, x.T @ g


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def _value_and_grads(x, w, labels, weights, **kwargs):
    def total(x, w):
        loss = jaxinfo.linear_cross_entropy(x, w, labels, **kwargs)
        return jnp.sum(loss * weights), loss

    (_, loss), (dx, dw) = jax.jit(jax.value_and_grad(total, argnums=(0, 1), has_aux=True))(x, w)
    return loss, dx, dw


# ----------------------------------------------------------------------------
# values and gradients against float64
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [None, 1, 7, 64, 100, 128, 299, 300, 1000])
def test_float32_matches_float64_reference(chunk_size):
    # 300 classes: chunk sizes that divide it, do not (ragged last block),
    # equal it, exceed it, and the default.
    x, w, labels = _problem(v=300)
    labels[[2, 5]] = -1  # ignored positions
    weights = np.linspace(0.5, 2.0, len(labels)).astype(np.float32)
    loss, dx, dw = _value_and_grads(
        jnp.asarray(x, jnp.float32),
        jnp.asarray(w, jnp.float32),
        jnp.asarray(labels),
        weights,
        chunk_size=chunk_size,
    )
    ref_loss, ref_dx, ref_dw = _reference(np.float32(x), np.float32(w), labels, np.float64(weights))
    assert loss.dtype == dx.dtype == dw.dtype == jnp.float32
    assert _rel(loss, ref_loss) < 1e-6
    assert _rel(dx, ref_dx) < 1e-5
    assert _rel(dw, ref_dw) < 1e-5


def test_matches_materialised_cross_entropy_from_labels():
    x, w, labels = _problem(n=40, v=513, scale=3.0)
    labels[0] = -1
    x, w, labels = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), jnp.asarray(labels)
    fused = jaxinfo.linear_cross_entropy(x, w, labels, chunk_size=128)
    materialised = jaxinfo.cross_entropy_from_labels(labels, x @ w)
    np.testing.assert_allclose(fused, materialised, rtol=2e-6, atol=1e-6)
    g_fused = jax.jit(jax.grad(lambda w: jnp.mean(jaxinfo.linear_cross_entropy(x, w, labels))))(w)
    g_mat = jax.jit(jax.grad(lambda w: jnp.mean(jaxinfo.cross_entropy_from_labels(labels, x @ w))))(
        w
    )
    np.testing.assert_allclose(g_fused, g_mat, rtol=1e-5, atol=1e-7)


def test_float64_inputs_compute_in_float64(x64):
    x, w, labels = _problem(v=97)
    weights = np.ones(len(labels))
    loss, dx, dw = _value_and_grads(
        jnp.asarray(x), jnp.asarray(w), jnp.asarray(labels), weights, chunk_size=10
    )
    assert loss.dtype == dx.dtype == dw.dtype == jnp.float64
    ref_loss, ref_dx, ref_dw = _reference(x, w, labels, weights)
    assert _rel(loss, ref_loss) < 1e-13
    assert _rel(dx, ref_dx) < 1e-12
    assert _rel(dw, ref_dw) < 1e-12


def test_large_logits_do_not_overflow():
    # Logits around 1e4: exp would overflow without the running max.
    x, w, labels = _problem(n=8, v=50)
    x = x * 3000.0
    loss = jaxinfo.linear_cross_entropy(
        jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), jnp.asarray(labels), chunk_size=16
    )
    ref = _reference(np.float32(x), np.float32(w), labels, np.ones(8))[0]
    assert np.all(np.isfinite(loss))
    assert _rel(loss, ref) < 1e-6


# ----------------------------------------------------------------------------
# labels
# ----------------------------------------------------------------------------


def test_ignored_labels_give_zero_loss_and_no_gradient():
    x, w, labels = _problem(n=10, v=40)
    labels[[1, 4]] = [-1, -100]
    x, w = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)
    loss, dx, dw = _value_and_grads(x, w, jnp.asarray(labels), np.ones(10), chunk_size=16)
    assert loss[1] == 0.0 and loss[4] == 0.0
    assert np.all(np.asarray(dx[1]) == 0.0) and np.all(np.asarray(dx[4]) == 0.0)
    # dw equals the gradient computed without those positions at all.
    keep = np.array([i not in (1, 4) for i in range(10)])
    _, _, dw_kept = _value_and_grads(
        x[keep], w, jnp.asarray(labels[keep]), np.ones(8), chunk_size=16
    )
    np.testing.assert_allclose(dw, dw_kept, rtol=1e-6, atol=1e-7)


def test_out_of_range_labels_give_nan_with_finite_gradients():
    x, w, labels = _problem(n=6, v=30)
    labels[2] = 30
    labels[3] = 2**31 - 1
    x, w = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)
    loss, dx, dw = _value_and_grads(x, w, jnp.asarray(labels), np.ones(6), chunk_size=8)
    assert np.isnan(loss[2]) and np.isnan(loss[3])
    assert np.all(np.isfinite(np.delete(np.asarray(loss), [2, 3])))
    assert np.all(np.asarray(dx[2:4]) == 0.0)
    assert np.all(np.isfinite(dw))
    # Same convention as cross_entropy_from_labels.
    ref = jaxinfo.cross_entropy_from_labels(jnp.asarray(labels), x @ w)
    np.testing.assert_array_equal(np.isnan(loss), np.isnan(ref))


def test_unsigned_and_int64_labels():
    x, w, labels = _problem(n=5, v=20)
    x, w = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)
    expected = jaxinfo.linear_cross_entropy(x, w, jnp.asarray(labels, jnp.int32))
    for dtype in (np.uint8, np.uint32, np.int64):
        got = jaxinfo.linear_cross_entropy(x, w, labels.astype(dtype))
        np.testing.assert_array_equal(got, expected)


# ----------------------------------------------------------------------------
# shapes and transformations
# ----------------------------------------------------------------------------


def test_leading_axes_are_batch_axes():
    x, w, labels = _problem(n=12, v=33)
    x, w, labels = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), jnp.asarray(labels)
    flat = jaxinfo.linear_cross_entropy(x, w, labels, chunk_size=8)
    batched = jaxinfo.linear_cross_entropy(
        x.reshape(3, 4, -1), w, labels.reshape(3, 4), chunk_size=8
    )
    assert batched.shape == (3, 4)
    np.testing.assert_array_equal(batched.reshape(-1), flat)
    one = jaxinfo.linear_cross_entropy(x[0], w, labels[0], chunk_size=8)
    assert one.shape == ()
    np.testing.assert_allclose(one, flat[0], rtol=1e-6)


def test_vmap_and_jit_equal_the_batched_call():
    x, w, labels = _problem(n=12, v=33)
    x, w, labels = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), jnp.asarray(labels)
    f = functools.partial(jaxinfo.linear_cross_entropy, chunk_size=8)
    direct = jax.jit(f)(x.reshape(3, 4, -1), w, labels.reshape(3, 4))
    vmapped = jax.jit(jax.vmap(f, (0, None, 0)))
    np.testing.assert_allclose(
        vmapped(x.reshape(3, 4, -1), w, labels.reshape(3, 4)), direct, rtol=1e-6
    )
    np.testing.assert_allclose(jax.jit(f)(x, w, labels), f(x, w, labels), rtol=1e-6)

    # Gradients through vmap, with w shared: summed over the mapped axis.
    def loss(x, w, y):
        return jnp.sum(f(x, w, y))

    g_vmap = jax.jit(jax.vmap(jax.grad(loss, argnums=1), (0, None, 0)))(
        x.reshape(3, 4, -1), w, labels.reshape(3, 4)
    )
    g = jax.jit(jax.grad(loss, argnums=1))(x, w, labels)
    np.testing.assert_allclose(g_vmap.sum(0), g, rtol=1e-5, atol=1e-6)


def test_empty_batch():
    w = jnp.ones((4, 10))
    loss = jaxinfo.linear_cross_entropy(jnp.ones((0, 4)), w, jnp.zeros((0,), jnp.int32))
    assert loss.shape == (0,)
    dw = jax.grad(
        lambda w: jnp.sum(
            jaxinfo.linear_cross_entropy(jnp.ones((0, 4)), w, jnp.zeros((0,), jnp.int32))
        )
    )(w)
    np.testing.assert_array_equal(dw, np.zeros((4, 10)))


def test_integer_inputs_promote_to_float():
    x = jnp.array([[1, 0], [0, 2]])
    w = jnp.array([[0, 1, 0], [0, 0, 1]])
    loss = jaxinfo.linear_cross_entropy(x, w, jnp.array([1, 2]))
    ref = jaxinfo.cross_entropy_from_labels(jnp.array([1, 2]), (x @ w).astype(jnp.float32))
    assert loss.dtype == jnp.float32
    np.testing.assert_allclose(loss, ref, rtol=1e-6)


# ----------------------------------------------------------------------------
# low precision
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("chunk_size", [16, 50])
def test_half_precision_accumulates_in_float32(dtype, chunk_size):
    x, w, labels = _problem(n=32, d=64, v=200)
    labels[3] = -1
    xh, wh = jnp.asarray(x, dtype), jnp.asarray(w, dtype)
    weights = np.ones(32, np.float32)
    loss, dx, dw = _value_and_grads(xh, wh, jnp.asarray(labels), weights, chunk_size=chunk_size)
    assert loss.dtype == jnp.float32
    assert dx.dtype == dw.dtype == dtype
    # Reference in float64 on the same (rounded) inputs: the loss is exact to
    # float32 accumulation; gradients carry the rounding of their dtype.
    ref_loss, ref_dx, ref_dw = _reference(
        np.asarray(xh, np.float64), np.asarray(wh, np.float64), labels, weights
    )
    assert _rel(loss, ref_loss) < 1e-5
    assert _rel(dx, ref_dx) < 2e-2
    assert _rel(dw, ref_dw) < 2e-2


def test_mixed_precision_float32_x_bfloat16_w():
    x, w, labels = _problem(n=8, v=40)
    xf, wh = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.bfloat16)
    loss, dx, dw = _value_and_grads(
        xf, wh, jnp.asarray(labels), np.ones(8, np.float32), chunk_size=16
    )
    assert dx.dtype == jnp.float32 and dw.dtype == jnp.bfloat16
    ref_loss, ref_dx, _ = _reference(
        np.asarray(xf, np.float64), np.asarray(wh, np.float64), labels, np.ones(8)
    )
    assert _rel(loss, ref_loss) < 1e-6
    assert _rel(dx, ref_dx) < 1e-5


@pytest.mark.parametrize("cpu", [True, False])
@pytest.mark.parametrize("vocab", [96, 100])
def test_both_platform_variants_agree(cpu, vocab):
    # lax.platform_dependent runs only the CPU variant here; call both.
    x, w, labels = _problem(n=16, d=8, v=vocab)
    xh, wh = jnp.asarray(x, jnp.bfloat16), jnp.asarray(w, jnp.bfloat16)
    y = jnp.asarray(labels, jnp.int32)
    head = kernel.Head(x=xh, w=wh, bias=None, mask=None, scalars=jnp.ones(2, jnp.float32))
    cfg = kernel.Config(chunk=32)
    terms = kernel._forward_loop(head, y, cfg=cfg, cpu=cpu)
    log_z, label_logit = terms.log_z, terms.label
    logits = np.asarray(xh, np.float64) @ np.asarray(wh, np.float64)
    np.testing.assert_allclose(log_z, np.log(np.exp(logits).sum(1)), rtol=1e-6)
    np.testing.assert_allclose(label_logit, logits[np.arange(16), labels], rtol=1e-5, atol=1e-6)
    ones = jnp.ones((16, 1), jnp.float32)
    grads = kernel._backward_loop(
        head, y, (log_z[:, None], None), (ones, -ones, None, None), cfg=cfg, cpu=cpu
    )
    dx, dw = grads.x, grads.w
    _, ref_dx, ref_dw = _reference(
        np.asarray(xh, np.float64), np.asarray(wh, np.float64), labels, np.ones(16)
    )
    assert _rel(dx, ref_dx) < 2e-2
    assert _rel(dw, ref_dw) < 2e-2


def test_group_size():
    assert kernel.group_size(14, 262144, 1024) == 8  # a divisor of 256 blocks
    assert kernel.group_size(14, 262000, 1024) == 14  # ragged: no divisor needed
    assert kernel.group_size(100, 4096, 1024) == 4
    assert kernel.group_size(0, 4096, 1024) == 1


# ----------------------------------------------------------------------------
# memory: the compiled program never holds the logits, nor a copy of w
# ----------------------------------------------------------------------------

GEMMA = (8192, 2304, 262144)  # N, D, V


def _compiled_temp_bytes(fn, dtype, n, d, v):
    args = (
        jax.ShapeDtypeStruct((n, d), dtype),
        jax.ShapeDtypeStruct((d, v), dtype),
        jax.ShapeDtypeStruct((n,), jnp.int32),
    )
    vg = jax.jit(jax.value_and_grad(lambda x, w, y: jnp.mean(fn(x, w, y)), argnums=(0, 1)))
    return vg.lower(*args).compile().memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("vocab", [GEMMA[2], GEMMA[2] - 100])
def test_compiled_memory_at_gemma_shape(dtype, vocab):
    n, d, _ = GEMMA
    temp = _compiled_temp_bytes(jaxinfo.linear_cross_entropy, dtype, n, d, vocab)
    # Target 512 MiB; the logits alone would take n * vocab * 4 = 8 GiB, and a
    # copy of w (in its dtype or float32) 1.2-2.4 GiB.
    assert temp <= 512 * 2**20
    assert temp < d * vocab * jnp.dtype(dtype).itemsize


# ----------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------


def test_error_shape_mismatch_between_x_and_w():
    with pytest.raises(ValueError, match=r"x and w do not chain: x has shape \(4, 3\)"):
        jaxinfo.linear_cross_entropy(jnp.ones((4, 3)), jnp.ones((5, 7)), jnp.zeros(4, jnp.int32))


def test_error_w_not_a_matrix():
    with pytest.raises(ValueError, match=r"w must be a \(D, V\) matrix, got shape \(3,\)"):
        jaxinfo.linear_cross_entropy(jnp.ones((4, 3)), jnp.ones(3), jnp.zeros(4, jnp.int32))


def test_error_x_scalar():
    with pytest.raises(ValueError, match="x must have at least one dimension"):
        jaxinfo.linear_cross_entropy(jnp.float32(1.0), jnp.ones((1, 3)), jnp.int32(0))


def test_error_labels_shape():
    with pytest.raises(ValueError, match=r"labels should have shape \(4,\), got \(4, 1\)"):
        jaxinfo.linear_cross_entropy(
            jnp.ones((4, 3)), jnp.ones((3, 7)), jnp.zeros((4, 1), jnp.int32)
        )


def test_error_float_labels():
    with pytest.raises(TypeError, match="labels must have an integer dtype"):
        jaxinfo.linear_cross_entropy(jnp.ones((4, 3)), jnp.ones((3, 7)), jnp.zeros(4))


@pytest.mark.parametrize("name", ["x", "w"])
def test_error_complex_or_boolean_inputs(name):
    args = {"x": jnp.ones((4, 3)), "w": jnp.ones((3, 7))}
    args[name] = args[name].astype(jnp.complex64)
    with pytest.raises(TypeError, match=f"{name} must be real-valued, got dtype complex64"):
        jaxinfo.linear_cross_entropy(args["x"], args["w"], jnp.zeros(4, jnp.int32))
    args[name] = args[name].real > 0
    with pytest.raises(TypeError, match=f"{name} must have a real numeric dtype"):
        jaxinfo.linear_cross_entropy(args["x"], args["w"], jnp.zeros(4, jnp.int32))


@pytest.mark.parametrize("chunk_size", [0, -3])
def test_error_chunk_size_not_positive(chunk_size):
    with pytest.raises(ValueError, match=f"chunk_size must be a positive int, got {chunk_size}"):
        jaxinfo.linear_cross_entropy(
            jnp.ones((4, 3)), jnp.ones((3, 7)), jnp.zeros(4, jnp.int32), chunk_size=chunk_size
        )


@pytest.mark.parametrize("chunk_size", [2.0, True, "8"])
def test_error_chunk_size_not_int(chunk_size):
    with pytest.raises(TypeError, match="chunk_size must be an int or None"):
        jaxinfo.linear_cross_entropy(
            jnp.ones((4, 3)), jnp.ones((3, 7)), jnp.zeros(4, jnp.int32), chunk_size=chunk_size
        )


def test_chunk_size_accepts_numpy_ints():
    x, w, labels = _problem(n=4, v=20)
    x, w = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)
    a = jaxinfo.linear_cross_entropy(x, w, labels, chunk_size=np.int64(6))
    b = jaxinfo.linear_cross_entropy(x, w, labels, chunk_size=6)
    np.testing.assert_array_equal(a, b)


def test_default_chunk_size():
    # About 16 MiB of float32 logits per block, a multiple of 128, at most V.
    assert kernel.chunk_size(None, 8192, 262144) == 512
    assert kernel.chunk_size(None, 2048, 32768) == 2048
    assert kernel.chunk_size(None, 10**7, 262144) == 128
    assert kernel.chunk_size(None, 4, 1000) == 1000
    assert kernel.chunk_size(None, 0, 50) == 50


# ----------------------------------------------------------------------------
# reduction over the real positions
# ----------------------------------------------------------------------------


def _padded(n=10, v=40, seed=3):
    x, w, labels = _problem(n=n, v=v, seed=seed)
    labels[[1, 4, 5]] = -1
    return jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32), labels


def test_reduction_matches_float64_reference():
    x, w, labels = _padded()
    real = labels >= 0
    loss_ref, dx_ref, dw_ref = _reference(np.float32(x), np.float32(w), labels, real / real.sum())
    f = functools.partial(jaxinfo.linear_cross_entropy, chunk_size=16)
    y = jnp.asarray(labels)
    np.testing.assert_allclose(f(x, w, y, reduction="sum"), loss_ref.sum(), rtol=1e-6)
    mean, (dx, dw) = jax.jit(
        jax.value_and_grad(lambda x, w: f(x, w, y, reduction="mean"), argnums=(0, 1))
    )(x, w)
    np.testing.assert_allclose(mean, loss_ref[real].mean(), rtol=1e-6)
    assert _rel(dx, dx_ref) < 1e-5 and _rel(dw, dw_ref) < 1e-5


def test_reduction_mean_gradient_is_that_of_the_masked_mean():
    x, w, labels = _padded(seed=4)
    y = jnp.asarray(labels)
    f = functools.partial(jaxinfo.linear_cross_entropy, chunk_size=16)
    got = jax.grad(lambda x, w: f(x, w, y, reduction="mean"), argnums=(0, 1))(x, w)
    count = (y >= 0).sum().astype(jnp.float32)
    want = jax.grad(lambda x, w: f(x, w, y).sum() / count, argnums=(0, 1))(x, w)
    for g, r in zip(got, want, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reduction_of_an_all_padding_batch_is_zero(reduction):
    x, w, _ = _padded()
    y = jnp.full((10,), -1)
    f = functools.partial(jaxinfo.linear_cross_entropy, chunk_size=16, reduction=reduction)
    value, (dx, dw) = jax.value_and_grad(lambda x, w: f(x, w, y), argnums=(0, 1))(x, w)
    assert value == 0.0 and value.shape == ()
    assert np.all(np.asarray(dx) == 0.0) and np.all(np.asarray(dw) == 0.0)
    # and an empty batch
    empty = f(jnp.ones((0, 16)), w, jnp.zeros((0,), jnp.int32))
    assert empty == 0.0


def test_reduction_under_vmap_and_jit():
    x, w, labels = _padded(n=12, seed=5)
    labels[6:11] = -1  # the second sequence has one real token
    x, y = x.reshape(3, 4, -1), jnp.asarray(labels).reshape(3, 4)
    f = functools.partial(jaxinfo.linear_cross_entropy, chunk_size=16, reduction="mean")
    per_sequence = jax.jit(jax.vmap(f, (0, None, 0)))(x, w, y)
    np.testing.assert_allclose(per_sequence, [f(x[i], w, y[i]) for i in range(3)], rtol=1e-6)
    per_position = jaxinfo.linear_cross_entropy(x, w, y, chunk_size=16)
    np.testing.assert_allclose(per_sequence[1], per_position[1, 0], rtol=1e-6)
    np.testing.assert_allclose(jax.jit(f)(x, w, y), f(x, w, y), rtol=1e-6)


@pytest.mark.parametrize("reduction", ["avg", None])
def test_error_reduction(reduction):
    with pytest.raises(ValueError, match=r"reduction must be one of 'none', 'sum', 'mean'"):
        jaxinfo.linear_cross_entropy(
            jnp.ones((2, 3)), jnp.ones((3, 4)), jnp.zeros(2, jnp.int32), reduction=reduction
        )


# ----------------------------------------------------------------------------
# reverse mode only
# ----------------------------------------------------------------------------

_SMALL = (jnp.ones((4, 3)), jnp.ones((3, 5)) * jnp.arange(5.0), jnp.array([0, 1, -1, 4]))


def _sum_of_loss(x, w=_SMALL[1]):
    return jaxinfo.linear_cross_entropy(x, w, _SMALL[2], chunk_size=2).sum()


@pytest.mark.parametrize(
    "forward_mode",
    [
        lambda x: jax.jvp(_sum_of_loss, (x,), (x,)),
        jax.jit(lambda x: jax.jvp(_sum_of_loss, (x,), (x,))),
        lambda x: jax.jvp(lambda w: _sum_of_loss(x, w), (_SMALL[1],), (_SMALL[1],)),
        jax.jacfwd(_sum_of_loss),
        jax.hessian(_sum_of_loss),
        jax.vmap(lambda x: jax.jvp(_sum_of_loss, (x,), (x,)), in_axes=None, axis_size=2),
    ],
    ids=["jvp", "jit-jvp", "jvp-w", "jacfwd", "hessian", "vmap-jvp"],
)
def test_forward_mode_raises_an_error_naming_the_function_and_the_alternative(forward_mode):
    with pytest.raises(TypeError, match=r"linear_cross_entropy supports reverse-mode") as e:
        forward_mode(_SMALL[0])
    assert "cross_entropy_from_labels(labels, x @ w)" in str(e.value)


def test_reverse_mode_still_works_beside_the_forward_mode_check():
    x, w, y = _SMALL

    def materialised(x):
        return jaxinfo.cross_entropy_from_labels(y, x @ w).sum()

    want = jax.grad(materialised)(x)
    close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-5)
    close(jax.grad(_sum_of_loss)(x), want)
    close(jax.jit(jax.jacrev(_sum_of_loss))(x), want)
    (_, pullback) = jax.vjp(_sum_of_loss, x)
    close(pullback(jnp.float32(1.0))[0], want)
    # forward mode on the materialised loss is the documented way out
    _, tangent = jax.jvp(materialised, (x,), (x,))
    close(tangent, jnp.sum(want * x))

"""Vocabulary-parallel measures on 8 devices: each equals the unsharded call.

These tests need 8 devices, which on a CPU-only machine means
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` set before JAX starts:
``tests/test_parallel.py`` runs this directory in such a process. Collected by
a plain ``pytest`` run (one device), they are skipped.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hlo import collectives
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxinfo

if jax.device_count() < 8:
    pytest.skip("needs 8 devices; run through tests/test_parallel.py", allow_module_level=True)

N, D, V = 16, 12, 96  # 4 vocabulary shards of 24 classes; 2 data shards of 8 rows


@pytest.fixture(scope="module")
def mesh():
    return Mesh(np.array(jax.devices()[:8]).reshape(2, 4), ("data", "model"))


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(N, D)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(D, V)) / np.sqrt(D) * 2, jnp.float32)
    labels = rng.integers(0, V, size=N)
    labels[[0, 5, 9]] = [-1, V - 1, 30]  # an ignored position, last class, shard 1
    weights = jnp.asarray(rng.uniform(0.5, 2.0, size=N), jnp.float32)
    return x, w, jnp.asarray(labels, jnp.int32), weights


def _sharded_linear(mesh, check_vma, **kwargs):
    def local(x, w, y):
        return jaxinfo.linear_cross_entropy(x, w, y, axis_name="model", **kwargs)

    return jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P("data", None), P(None, "model"), P("data")),
        out_specs=P("data"),
        check_vma=check_vma,
    )


@pytest.mark.parametrize("check_vma", [True, False])
@pytest.mark.parametrize("chunk_size", [None, 5, 24])
def test_linear_cross_entropy_equals_unsharded(mesh, problem, check_vma, chunk_size):
    x, w, labels, weights = problem
    sharded = _sharded_linear(mesh, check_vma, chunk_size=chunk_size)

    def total(f):
        return lambda x, w: jnp.sum(f(x, w, labels) * weights)

    value, (dx, dw) = jax.jit(jax.value_and_grad(total(sharded), argnums=(0, 1)))(x, w)
    unsharded = _unsharded_linear(chunk_size)
    ref_value, (ref_dx, ref_dw) = jax.value_and_grad(total(unsharded), argnums=(0, 1))(x, w)
    np.testing.assert_allclose(jax.jit(sharded)(x, w, labels), unsharded(x, w, labels), rtol=1e-6)
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-5, atol=1e-6)


def _unsharded_linear(chunk_size):
    def f(x, w, y):
        return jaxinfo.linear_cross_entropy(x, w, y, chunk_size=chunk_size)

    return f


def test_linear_out_of_range_label_is_nan_on_every_shard(mesh, problem):
    x, w, labels, _ = problem
    labels = labels.at[3].set(V)  # one past the last global class
    loss = jax.jit(_sharded_linear(mesh, True))(x, w, labels)
    assert np.isnan(loss[3])
    assert np.all(np.isfinite(np.delete(np.asarray(loss), 3)))


def test_linear_gradient_inside_shard_map(mesh, problem):
    # A training step written entirely inside shard_map: the loss is averaged
    # over 'data' with psum; dw comes out per vocabulary shard.
    x, w, labels, weights = problem

    def step(x, w, y, c):
        def loss(x, w):
            ce = jaxinfo.linear_cross_entropy(x, w, y, chunk_size=7, axis_name="model")
            return lax.psum(jnp.sum(ce * c), "data")

        return jax.value_and_grad(loss, argnums=(0, 1))(x, w)

    sharded = jax.shard_map(
        step,
        mesh=mesh,
        in_specs=(P("data", None), P(None, "model"), P("data"), P("data")),
        out_specs=(P(), (P("data", None), P(None, "model"))),
    )
    value, (dx, dw) = jax.jit(sharded)(x, w, labels, weights)
    ref_value, (ref_dx, ref_dw) = jax.value_and_grad(
        lambda x, w: jnp.sum(jaxinfo.linear_cross_entropy(x, w, labels) * weights), argnums=(0, 1)
    )(x, w)
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-5, atol=1e-6)


def test_linear_bfloat16_sharded(mesh, problem):
    x, w, labels, weights = problem
    xh, wh = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    sharded = _sharded_linear(mesh, True, chunk_size=8)

    def total(f):
        return lambda x, w: jnp.sum(f(x, w, labels) * weights)

    value, (dx, dw) = jax.jit(jax.value_and_grad(total(sharded), argnums=(0, 1)))(xh, wh)
    ref = _unsharded_linear(8)
    ref_value, (ref_dx, ref_dw) = jax.value_and_grad(total(ref), argnums=(0, 1))(xh, wh)
    assert dx.dtype == dw.dtype == jnp.bfloat16
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    np.testing.assert_allclose(np.float32(dx), np.float32(ref_dx), rtol=2e-2, atol=2e-3)
    np.testing.assert_allclose(np.float32(dw), np.float32(ref_dw), rtol=2e-2, atol=2e-3)


def test_linear_one_dimensional_mesh_with_replicated_x():
    mesh = Mesh(np.array(jax.devices()[:8]), ("model",))
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(6, 5)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(5, 8 * 11)), jnp.float32)  # 11 classes per device
    labels = jnp.asarray(rng.integers(0, 88, size=6), jnp.int32)
    sharded = jax.shard_map(
        lambda x, w, y: jaxinfo.linear_cross_entropy(x, w, y, chunk_size=4, axis_name="model"),
        mesh=mesh,
        in_specs=(P(), P(None, "model"), P()),
        out_specs=P(),
    )
    dx, dw = jax.jit(jax.grad(lambda x, w: jnp.sum(sharded(x, w, labels)), argnums=(0, 1)))(x, w)
    ref_dx, ref_dw = jax.grad(
        lambda x, w: jnp.sum(jaxinfo.linear_cross_entropy(x, w, labels)), argnums=(0, 1)
    )(x, w)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------
# the compiled program: only O(N) collectives across the vocabulary shards
# ----------------------------------------------------------------------------


def test_compiled_program_has_no_all_gather_over_the_vocabulary(mesh):
    n, d, v = 64, 24, 4096  # per device: 32 rows, 1024 classes
    specs = (P("data", None), P(None, "model"), P("data"))
    args = [
        jax.ShapeDtypeStruct(shape, dtype, sharding=NamedSharding(mesh, spec))
        for shape, dtype, spec in zip(
            [(n, d), (d, v), (n,)], [jnp.float32, jnp.float32, jnp.int32], specs, strict=True
        )
    ]
    sharded = jax.shard_map(
        lambda x, w, y: jaxinfo.linear_cross_entropy(x, w, y, chunk_size=128, axis_name="model"),
        mesh=mesh,
        in_specs=specs,
        out_specs=P("data"),
    )
    forward = jax.jit(lambda x, w, y: jnp.mean(sharded(x, w, y))).lower(*args).compile()
    both = (
        jax.jit(jax.value_and_grad(lambda x, w, y: jnp.mean(sharded(x, w, y)), argnums=(0, 1)))
        .lower(*args)
        .compile()
    )

    fwd = collectives(forward.as_text())
    assert fwd, "expected the partial maxima and sums to be combined"
    # Forward: every collective is per position (32 rows per device), or the mean.
    assert all(op == "all-reduce" for op, *_ in fwd)
    assert max(max(sizes) for _, sizes, *_ in fwd) <= n // 2

    bwd = collectives(both.as_text())
    assert all(op == "all-reduce" for op, *_ in bwd), bwd  # no all-gather, all-to-all, ...
    for _, sizes, *_ in bwd:
        # Per position (N), dx (N x D) across the vocabulary shards, and the
        # data-parallel sum of this device's dw shard (D x V/4): never the
        # whole vocabulary.
        assert max(sizes) <= max(n // 2 * d, d * v // 4)
    assert not any(f",{v}]" in line or f"[{v}" in line for line in both.as_text().splitlines())


# ----------------------------------------------------------------------------
# the logits measures with axis_name
# ----------------------------------------------------------------------------


def _logits_problem():
    rng = np.random.default_rng(2)
    a = jnp.asarray(rng.normal(size=(N, V)) * 2, jnp.float32)
    b = jnp.asarray(rng.normal(size=(N, V)) * 2, jnp.float32)
    a = a.at[1, 40:].set(-jnp.inf)  # whole shards masked out on one row
    mask = jnp.asarray(rng.uniform(size=(N, V)) > 0.2).at[2].set(False)  # an empty row
    return a, b, mask


def _check_sharded(mesh, f, args, where):
    """``f(*args, where=, axis_name=)`` with the classes split over 'model' equals it unsplit."""
    split = P("data", "model")
    sharded = jax.jit(
        jax.shard_map(
            lambda where, *a: f(*a, where=where, axis_name="model"),
            mesh=mesh,
            in_specs=(None if where is None else split, *(split,) * len(args)),
            out_specs=P("data"),
        )
    )
    unsharded = jax.jit(lambda where, *a: f(*a, where=where, axis_name=None))
    np.testing.assert_allclose(sharded(where, *args), unsharded(where, *args), rtol=1e-5, atol=1e-6)
    weights = jnp.linspace(0.5, 1.5, N)
    argnums = tuple(range(1, len(args) + 1))
    grads = jax.jit(jax.grad(lambda *a: jnp.sum(sharded(*a) * weights), argnums))(where, *args)
    ref = jax.jit(jax.grad(lambda *a: jnp.sum(unsharded(*a) * weights), argnums))(where, *args)
    for g, r in zip(grads, ref, strict=True):
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5 * np.max(np.abs(r)))


@pytest.mark.parametrize("use_mask", [False, True])
def test_entropy_from_logits(mesh, use_mask):
    a, _, mask = _logits_problem()

    def f(a, where, axis_name):
        return jaxinfo.entropy_from_logits(a, where=where, base=2, axis_name=axis_name)

    _check_sharded(mesh, f, (a,), mask if use_mask else None)


@pytest.mark.parametrize("use_mask", [False, True])
def test_cross_entropy_from_logits(mesh, use_mask):
    a, b, mask = _logits_problem()

    def f(p, b, where, axis_name):
        return jaxinfo.cross_entropy_from_logits(p, b, where=where, axis_name=axis_name)

    _check_sharded(mesh, f, (jax.nn.softmax(a, axis=-1), b), mask if use_mask else None)


@pytest.mark.parametrize("use_mask", [False, True])
def test_kl_divergence_from_logits(mesh, use_mask):
    a, b, mask = _logits_problem()

    def f(a, b, where, axis_name):
        return jaxinfo.kl_divergence_from_logits(a, b, where=where, axis_name=axis_name)

    _check_sharded(mesh, f, (a, b), mask if use_mask else None)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_from_labels(mesh, label_smoothing):
    _, b, mask = _logits_problem()
    labels = jnp.asarray(np.random.default_rng(3).integers(0, V, size=N), jnp.int32)
    labels = labels.at[0].set(-1).at[1].set(V + 3).at[4].set(V - 1)

    def f(b, y, where, axis_name=None):
        return jaxinfo.cross_entropy_from_labels(
            y, b, where=where, label_smoothing=label_smoothing, axis_name=axis_name
        )

    sharded = jax.jit(
        jax.shard_map(
            lambda b, y, where: f(b, y, where, axis_name="model"),
            mesh=mesh,
            in_specs=(P("data", "model"), P("data"), P("data", "model")),
            out_specs=P("data"),
        )
    )
    got, ref = sharded(b, labels, mask), f(b, labels, mask)
    assert np.isnan(got[1]) and got[0] == 0.0
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    finite = jnp.isfinite(ref)
    g = jax.jit(jax.grad(lambda b: jnp.sum(jnp.where(finite, sharded(b, labels, mask), 0))))(b)
    r = jax.grad(lambda b: jnp.sum(jnp.where(finite, f(b, labels, mask), 0)))(b)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


def test_reduction_inside_shard_map(mesh, problem):
    # The per-position loss is the same on every vocabulary shard, so a
    # reduction is over this device's positions only: "mean" per data shard,
    # and the global token mean from psums of "sum" and of the count.
    x, w, labels, _ = problem
    labels = labels.at[1:4].set(-1)  # padding: 4 of the first data shard's 8 positions

    def step(x, w, y):
        def global_mean(x, w):
            total = jaxinfo.linear_cross_entropy(
                x, w, y, chunk_size=7, axis_name="model", reduction="sum"
            )
            count = lax.psum(jnp.sum(y >= 0, dtype=jnp.int32), "data").astype(total.dtype)
            return lax.psum(total, "data") / count

        local_means = jnp.stack(
            [
                jaxinfo.linear_cross_entropy(x, w, y, axis_name="model", reduction="mean"),
                jaxinfo.cross_entropy_from_labels(y, x @ w, axis_name="model", reduction="mean"),
            ]
        )[None]
        return jax.value_and_grad(global_mean, argnums=(0, 1))(x, w), local_means

    sharded = jax.shard_map(
        step,
        mesh=mesh,
        in_specs=(P("data", None), P(None, "model"), P("data")),
        out_specs=((P(), (P("data", None), P(None, "model"))), P("data")),
    )
    (value, (dx, dw)), local_means = jax.jit(sharded)(x, w, labels)

    def mean(x, w):
        return jaxinfo.linear_cross_entropy(x, w, labels, reduction="mean")

    ref_value, (ref_dx, ref_dw) = jax.value_and_grad(mean, argnums=(0, 1))(x, w)
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw, ref_dw, rtol=1e-5, atol=1e-6)
    half = N // 2
    for k in range(2):
        rows = slice(k * half, (k + 1) * half)
        ref = jaxinfo.linear_cross_entropy(x[rows], w, labels[rows], reduction="mean")
        np.testing.assert_allclose(local_means[k], [ref, ref], rtol=1e-5)

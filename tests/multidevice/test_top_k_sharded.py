"""kl_divergence_from_top_k with the student's classes split over 8 devices.

The value and the gradients (in the student's logits and the teacher's
log-probabilities) equal the unsharded call, and the compiled program moves
only per-position values (``k`` per position at most) between the devices,
never the classes. Run through ``tests/test_parallel.py`` (8 CPU devices);
collected by a plain ``pytest`` run, these are skipped.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hlo import collectives
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxinfo

if jax.device_count() < 8:
    pytest.skip("needs 8 devices; run through tests/test_parallel.py", allow_module_level=True)

N, K, V = 16, 5, 96  # 4 vocabulary shards of 24 classes; 2 data shards of 8 rows


@pytest.fixture(scope="module")
def mesh():
    return Mesh(np.array(jax.devices()[:8]).reshape(2, 4), ("data", "model"))


def _problem():
    rng = np.random.default_rng(0)
    teacher = rng.normal(size=(N, V)) * 2
    log_p_full = teacher - np.log(np.sum(np.exp(teacher), axis=-1, keepdims=True))
    ids = np.argsort(-log_p_full, axis=-1)[:, :K]
    log_p = np.take_along_axis(log_p_full, ids, axis=-1)
    q = rng.normal(size=(N, V)) * 2
    q[1, 30:60] = -np.inf  # all of shard 1, parts of 2 (outside the top k)
    q[1, ids[1]] = rng.normal(size=K)
    ids[2, 0] = V - 1  # the last class, on the last shard
    ids[3, 1] = 24  # the first class of shard 1
    where = np.ones((N, K), bool)
    where[4, 3:] = False
    ids[4, 3:] = ids[4, 0]  # padding that repeats a real id
    where[5] = False  # no real slot
    return (
        jnp.asarray(log_p, jnp.float32),
        jnp.asarray(ids, jnp.int32),
        jnp.asarray(q, jnp.float32),
        jnp.asarray(where),
    )


def _sharded(mesh, tail, check_vma=True):
    def local(log_p, ids, q, where):
        return jaxinfo.kl_divergence_from_top_k(
            log_p, ids, q, tail=tail, where=where, axis_name="model"
        )

    return jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(P("data", None), P("data", None), P("data", "model"), P("data", None)),
        out_specs=P("data"),
        check_vma=check_vma,
    )


def _unsharded(tail):
    def f(log_p, ids, q, where):
        return jaxinfo.kl_divergence_from_top_k(log_p, ids, q, tail=tail, where=where)

    return f


@pytest.mark.parametrize("check_vma", [True, False])
@pytest.mark.parametrize("tail", [True, False])
def test_equals_unsharded_in_value_and_gradient(mesh, tail, check_vma):
    log_p, ids, q, where = _problem()
    sharded, unsharded = _sharded(mesh, tail, check_vma), _unsharded(tail)
    got = jax.jit(sharded)(log_p, ids, q, where)
    want = unsharded(log_p, ids, q, where)
    assert np.all(np.isfinite(want))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    weights = jnp.linspace(0.5, 1.5, N)

    def total(f):
        return lambda a, q: jnp.sum(f(a, ids, q, where) * weights)

    g_a, g_q = jax.jit(jax.grad(total(sharded), (0, 1)))(log_p, q)
    r_a, r_q = jax.jit(jax.grad(total(unsharded), (0, 1)))(log_p, q)
    for g, r in ((g_a, r_a), (g_q, r_q)):
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5 * np.max(np.abs(r)))


def test_out_of_range_and_repeated_ids_are_nan_on_every_shard(mesh):
    log_p, ids, q, where = _problem()
    ids = ids.at[6, 2].set(V).at[7, 1].set(ids[7, 0])
    got = np.asarray(jax.jit(_sharded(mesh, True))(log_p, ids, q, where))
    assert np.isnan(got[6]) and np.isnan(got[7])
    assert np.all(np.isfinite(np.delete(got, [6, 7])))


# ----------------------------------------------------------------------------
# the compiled program: per-position collectives only
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("tail", [True, False])
def test_compiled_program_moves_no_classes(mesh, tail):
    n, k, v = 64, 8, 4096  # per device: 32 positions, 1024 classes
    specs = (P("data", None), P("data", None), P("data", "model"), P("data", None))
    shapes = [(n, k), (n, k), (n, v), (n, k)]
    dtypes = [jnp.float32, jnp.int32, jnp.float32, jnp.bool_]
    args = [
        jax.ShapeDtypeStruct(shape, dtype, sharding=NamedSharding(mesh, spec))
        for shape, dtype, spec in zip(shapes, dtypes, specs, strict=True)
    ]
    sharded = _sharded(mesh, tail)

    def loss(a, i, q, w):
        return jnp.mean(sharded(a, i, q, w))

    forward = jax.jit(loss).lower(*args).compile().as_text()
    both = jax.jit(jax.value_and_grad(loss, (0, 2))).lower(*args).compile().as_text()
    for text in (forward, both):
        found = collectives(text)
        assert found, "expected the per-position sums across the vocabulary shards"
        assert all(op == "all-reduce" for op, _, _ in found), found
        # per position: the k gathered logits (32 x 8 per device), the tail's
        # maximum and sum (32), and the mean; never a block of classes
        assert max(max(sizes) for _, sizes, _ in found) <= (n // 2) * k
        for _, _, line in found:
            assert str(v // 4) not in line and str(v) not in line, line

"""linear_cross_entropy's options and linear_entropy with the vocabulary split over devices.

Every option, the statistics and the reductions: values and gradients equal
the unsharded call; the compiled program has no collective of the
vocabulary's size. Run by ``tests/test_parallel.py`` with 8 virtual devices.
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

N, D, V = 16, 12, 96  # 4 vocabulary shards of 24 classes; 2 data shards of 8 rows


@pytest.fixture(scope="module")
def mesh():
    return Mesh(np.array(jax.devices()[:8]).reshape(2, 4), ("data", "model"))


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(3)
    where = rng.uniform(size=V) > 0.2
    where[24:48] = False  # the whole of shard 1 excluded
    labels = rng.choice(np.flatnonzero(where), size=N)
    labels[[0, 6]] = -1
    return dict(
        x=jnp.asarray(rng.normal(size=(N, D)), jnp.float32),
        w=jnp.asarray(rng.normal(size=(D, V)) / np.sqrt(D) * 3, jnp.float32),
        bias=jnp.asarray(rng.normal(size=V), jnp.float32),
        where=jnp.asarray(where),
        labels=jnp.asarray(labels, jnp.int32),
        weights=jnp.asarray(rng.uniform(0.5, 2.0, size=N), jnp.float32),
        temperature=jnp.float32(0.8),
        cap=jnp.float32(5.0),
        r=jnp.asarray(rng.normal(size=N), jnp.float32),
    )


OPTIONS = dict(label_smoothing=0.1, z_loss=1e-3)
DIFF = ("x", "w", "bias", "temperature", "cap")


def _loss(p, *, axis_name, reduction="none", chunk_size=7):
    return jaxinfo.linear_cross_entropy(
        p["x"],
        p["w"],
        p["labels"],
        bias=p["bias"],
        where=p["where"],
        weights=p["weights"],
        temperature=p["temperature"],
        logit_soft_cap=p["cap"],
        axis_name=axis_name,
        reduction=reduction,
        return_stats=True,
        chunk_size=chunk_size,
        **OPTIONS,
    )


SPECS = dict(
    x=P("data", None),
    w=P(None, "model"),
    bias=P("model"),
    where=P("model"),
    labels=P("data"),
    weights=P("data"),
    temperature=P(),
    cap=P(),
    r=P("data"),
)


def _objective(loss, stats, r):
    return jnp.sum(loss * r) + 0.3 * jnp.sum(stats.entropy * r) + 0.01 * jnp.sum(stats.log_z)


@pytest.mark.parametrize("check_vma", [True, False])
def test_every_option_equals_unsharded(mesh, problem, check_vma):
    out_specs = (P("data"), jaxinfo.LogitStats(P("data"), P("data"), P("data")))
    sharded = jax.shard_map(
        lambda p: _loss(p, axis_name="model"),
        mesh=mesh,
        in_specs=(SPECS,),
        out_specs=out_specs,
        check_vma=check_vma,
    )

    def run(f, diff):
        loss, stats = f({**problem, **diff})
        return _objective(loss, stats, problem["r"]), (loss, stats)

    diff = {k: problem[k] for k in DIFF}
    (value, (loss, stats)), grads = jax.jit(
        jax.value_and_grad(lambda d: run(sharded, d), has_aux=True)
    )(diff)

    def unsharded(p):
        return _loss(p, axis_name=None)

    (ref_value, (ref_loss, ref_stats)), ref_grads = jax.value_and_grad(
        lambda d: run(unsharded, d), has_aux=True
    )(diff)
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(stats.log_z, ref_stats.log_z, rtol=1e-6)
    np.testing.assert_allclose(stats.entropy, ref_stats.entropy, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(stats.argmax, ref_stats.argmax)
    for k in DIFF:
        g, r = np.asarray(grads[k]), np.asarray(ref_grads[k])
        assert np.all(np.isfinite(g)), k
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5 * np.max(np.abs(r)), err_msg=k)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reductions_on_a_model_only_mesh(problem, reduction):
    mesh = Mesh(np.array(jax.devices()[:8]), ("model",))  # 12 classes a device
    specs = {k: (P() if s in (P("data"), P("data", None)) else s) for k, s in SPECS.items()}
    sharded = jax.shard_map(
        lambda p: _loss(p, axis_name="model", reduction=reduction, chunk_size=5),
        mesh=mesh,
        in_specs=(specs,),
        out_specs=(P(), jaxinfo.LogitStats(P(), P(), P())),
    )

    def run(f, diff):
        loss, stats = f({**problem, **diff})
        return loss + 0.3 * jnp.sum(stats.entropy * problem["r"])

    diff = {k: problem[k] for k in DIFF}
    value, grads = jax.jit(jax.value_and_grad(lambda d: run(sharded, d)))(diff)

    def unsharded(p):
        return _loss(p, axis_name=None, reduction=reduction, chunk_size=5)

    ref_value, ref_grads = jax.value_and_grad(lambda d: run(unsharded, d))(diff)
    np.testing.assert_allclose(value, ref_value, rtol=1e-6)
    for k in DIFF:
        g, r = np.asarray(grads[k]), np.asarray(ref_grads[k])
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5 * np.max(np.abs(r)), err_msg=k)


def test_linear_entropy_equals_unsharded(mesh, problem):
    def entropy(p, axis_name):
        return jaxinfo.linear_entropy(
            p["x"],
            p["w"],
            bias=p["bias"],
            where=p["where"],
            weights=p["weights"],
            logit_soft_cap=5.0,
            temperature=0.8,
            chunk_size=7,
            axis_name=axis_name,
        )

    keys = ("x", "w", "bias", "where", "weights")
    sharded = jax.shard_map(
        lambda p: entropy(p, "model"),
        mesh=mesh,
        in_specs=({k: SPECS[k] for k in keys},),
        out_specs=P("data"),
    )
    diff_keys = ("x", "w", "bias", "weights")

    def total(f):
        return lambda d: jnp.sum(f({**d, "where": problem["where"]}) * problem["r"])

    diff = {k: problem[k] for k in diff_keys}
    value, grads = jax.jit(jax.value_and_grad(total(sharded)))(diff)
    ref_value, ref_grads = jax.value_and_grad(total(lambda p: entropy(p, None)))(diff)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    for k in diff_keys:
        np.testing.assert_allclose(
            grads[k], ref_grads[k], rtol=1e-5, atol=1e-5 * np.max(np.abs(ref_grads[k])), err_msg=k
        )


def test_compiled_program_with_every_option_has_no_collective_of_the_vocabulary(mesh):
    n, d, v = 64, 24, 4096  # per device: 32 rows, 1024 classes
    shapes = dict(
        x=((n, d), jnp.float32),
        w=((d, v), jnp.float32),
        bias=((v,), jnp.float32),
        where=((v,), jnp.bool_),
        labels=((n,), jnp.int32),
        weights=((n,), jnp.float32),
        temperature=((), jnp.float32),
        cap=((), jnp.float32),
    )
    specs = {k: SPECS[k] for k in shapes}
    args = {
        k: jax.ShapeDtypeStruct(s, t, sharding=NamedSharding(mesh, specs[k]))
        for k, (s, t) in shapes.items()
    }
    sharded = jax.shard_map(
        lambda p: _loss(p, axis_name="model", chunk_size=128),
        mesh=mesh,
        in_specs=(specs,),
        out_specs=(P("data"), jaxinfo.LogitStats(P("data"), P("data"), P("data"))),
    )

    def objective(diff, rest):
        loss, stats = sharded({**rest, **diff})
        return jnp.mean(loss) + jnp.mean(stats.entropy)

    diff = {k: args[k] for k in DIFF}
    rest = {k: a for k, a in args.items() if k not in DIFF}
    hlo = jax.jit(jax.value_and_grad(objective)).lower(diff, rest).compile().as_text()
    found = collectives(hlo)
    assert found and all(op == "all-reduce" for op, *_ in found), found
    for _, sizes, *_ in found:
        # per position (32 rows), dx (32 x 24), this device's dw and db shards
        # summed over 'data' (24 x 1024, 1024): never the whole vocabulary.
        assert max(sizes) <= max(n // 2 * d, d * v // 4)
    assert not any(f",{v}]" in line or f"[{v}]" in line for line in hlo.splitlines())

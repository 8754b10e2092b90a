"""linear_kl_divergence and linear_js_divergence with the vocabulary split over devices.

Values and gradients (both heads, the temperature, beta) equal the unsharded
call; the compiled program has no collective of the vocabulary's size. Run by
``tests/test_parallel.py`` with 8 virtual devices.
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

N, DP, DQ, V = 16, 10, 6, 96  # 4 vocabulary shards of 24 classes; 2 data shards of 8 rows

FUSED = {"kl": jaxinfo.linear_kl_divergence, "js": jaxinfo.linear_js_divergence}
HEADS = ("x_p", "w_p", "x_q", "w_q")
SPECS = dict(
    x_p=P("data", None),
    w_p=P(None, "model"),
    x_q=P("data", None),
    w_q=P(None, "model"),
    where=P("model"),
    weights=P("data"),
    temperature=P(),
    beta=P(),
)


@pytest.fixture(scope="module")
def mesh():
    return Mesh(np.array(jax.devices()[:8]).reshape(2, 4), ("data", "model"))


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(4)
    where = rng.uniform(size=V) > 0.2
    where[48:72] = False  # the whole of shard 2 excluded
    return dict(
        x_p=jnp.asarray(rng.normal(size=(N, DP)), jnp.float32),
        w_p=jnp.asarray(rng.normal(size=(DP, V)) / np.sqrt(DP) * 3, jnp.float32),
        x_q=jnp.asarray(rng.normal(size=(N, DQ)), jnp.float32),
        w_q=jnp.asarray(rng.normal(size=(DQ, V)) / np.sqrt(DQ) * 3, jnp.float32),
        where=jnp.asarray(where),
        weights=jnp.asarray(rng.uniform(0.5, 2.0, size=N), jnp.float32),
        temperature=jnp.float32(1.3),
        beta=jnp.float32(0.3),
        r=jnp.asarray(rng.normal(size=N), jnp.float32),
    )


def _divergence(kind, p, axis_name):
    extra = {"beta": p["beta"]} if kind == "js" else {}
    return FUSED[kind](
        *(p[k] for k in HEADS),
        where=p["where"],
        weights=p["weights"],
        temperature=p["temperature"],
        chunk_size=7,
        axis_name=axis_name,
        **extra,
    )


def _diff_keys(kind):
    return HEADS + ("temperature",) + (("beta",) if kind == "js" else ())


@pytest.mark.parametrize("kind", ["kl", "js"])
@pytest.mark.parametrize("check_vma", [True, False])
def test_equals_unsharded(mesh, problem, kind, check_vma):
    keys = (*HEADS, "where", "weights", "temperature", "beta")
    sharded = jax.shard_map(
        lambda p: _divergence(kind, p, "model"),
        mesh=mesh,
        in_specs=({k: SPECS[k] for k in keys},),
        out_specs=P("data"),
        check_vma=check_vma,
    )

    def unsharded(p):
        return _divergence(kind, p, None)

    def objective(f):
        def total(diff):
            return jnp.sum(f({**{k: problem[k] for k in keys}, **diff}) * problem["r"])

        return total

    diff = {k: problem[k] for k in _diff_keys(kind)}
    value, grads = jax.jit(jax.value_and_grad(objective(sharded)))(diff)
    ref_value, ref_grads = jax.value_and_grad(objective(unsharded))(diff)
    per = jax.jit(sharded)({k: problem[k] for k in keys})
    np.testing.assert_allclose(per, unsharded({k: problem[k] for k in keys}), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    for k, g in grads.items():
        r = np.asarray(ref_grads[k])
        assert np.all(np.isfinite(g)), k
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5 * np.max(np.abs(r)), err_msg=k)


@pytest.mark.parametrize("kind", ["kl", "js"])
def test_compiled_program_has_no_collective_of_the_vocabulary(mesh, kind):
    n, d, v = 64, 24, 4096  # per device: 32 rows, 1024 classes
    specs = [SPECS[k] for k in HEADS]
    shapes = [(n, d), (d, v), (n, d), (d, v)]
    args = [
        jax.ShapeDtypeStruct(s, jnp.float32, sharding=NamedSharding(mesh, spec))
        for s, spec in zip(shapes, specs, strict=True)
    ]
    sharded = jax.shard_map(
        lambda xp, wp, xq, wq: FUSED[kind](xp, wp, xq, wq, chunk_size=128, axis_name="model"),
        mesh=mesh,
        in_specs=tuple(specs),
        out_specs=P("data"),
    )

    def student_loss(x_q, w_q, x_p, w_p):
        x_p, w_p = jax.lax.stop_gradient((x_p, w_p))
        return jnp.mean(sharded(x_p, w_p, x_q, w_q))

    vg = jax.jit(jax.value_and_grad(student_loss, argnums=(0, 1)))
    hlo = vg.lower(args[2], args[3], args[0], args[1]).compile().as_text()
    found = collectives(hlo)
    assert found and all(op == "all-reduce" for op, *_ in found), found
    for _, sizes, *_ in found:
        # per position (32 rows), dx (32 x 24), this device's dw shard summed
        # over 'data' (24 x 1024): never the whole vocabulary.
        assert max(sizes) <= max(n // 2 * d, d * v // 4)
    assert not any(f",{v}]" in line or f"[{v}]" in line for line in hlo.splitlines())

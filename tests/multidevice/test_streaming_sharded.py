"""Streaming accumulators on 8 devices: per-device states merged by ``lax.psum``.

Needs 8 devices (``tests/test_parallel.py`` runs this directory with
``--xla_force_host_platform_device_count=8``); skipped otherwise.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

import jaxinfo

if jax.device_count() < 8:
    pytest.skip("needs 8 devices; run through tests/test_parallel.py", allow_module_level=True)

N, T, V = 32, 5, 7  # 32 sequences, 4 a device


def test_psum_of_device_states_equals_one_pass():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(N, T, V)) * 3, jnp.float32)
    labels = rng.integers(0, V, size=(N, T))
    labels[rng.uniform(size=(N, T)) < 0.25] = -1
    labels = jnp.asarray(labels, jnp.int32)
    mesh = Mesh(np.array(jax.devices()[:8]), ("data",))

    def local(labels, logits):
        ce = jaxinfo.StreamingCrossEntropy.init().update(labels, logits)
        h = jaxinfo.StreamingEntropy.init().update(logits, where=labels >= 0)
        ce, h = lax.psum((ce, h), "data")  # the merge across devices
        return ce.result(), h.result()

    sharded = jax.shard_map(local, mesh=mesh, in_specs=(P("data"), P("data")), out_specs=(P(), P()))
    ce, h = jax.jit(sharded)(labels, logits)
    one_ce = jaxinfo.StreamingCrossEntropy.init().update(labels, logits).result()
    one_h = jaxinfo.StreamingEntropy.init().update(logits, where=labels >= 0).result()
    np.testing.assert_allclose(ce, one_ce, rtol=1e-6)
    np.testing.assert_allclose(h, one_h, rtol=1e-6)
    loss = jaxinfo.cross_entropy_from_labels(labels, logits)
    np.testing.assert_allclose(
        ce, jnp.sum(loss) / jnp.sum(labels >= 0).astype(loss.dtype), rtol=1e-6
    )

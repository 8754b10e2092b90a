"""``axis_name`` on one device: classes split along a ``vmap`` axis.

``lax.psum``, ``lax.pmax`` and ``lax.axis_index`` work the same under ``vmap``
with an ``axis_name`` as under ``shard_map``, so splitting the classes into
``k`` blocks along a mapped axis exercises the vocabulary-parallel code paths
in this process. ``tests/multidevice`` repeats the checks on 8 devices.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinfo

N, V, K = 6, 20, 4  # K blocks of 5 classes


def _split(a):
    """(N, V) -> (K, N, V/K): block k holds classes k*V/K ... (k+1)*V/K - 1."""
    return jnp.moveaxis(a.reshape(a.shape[0], K, -1), 1, 0)


def _unsplit(a):
    return jnp.moveaxis(a, 0, 1).reshape(a.shape[1], -1)


def _logits(seed=0):
    rng = np.random.default_rng(seed)
    a = jnp.asarray(rng.normal(size=(N, V)) * 3, jnp.float32)
    return a.at[0, 5:15].set(-jnp.inf)  # two whole blocks masked on one row


def _as_vmapped(f, n_args):
    """Runs ``f(*blocks, axis_name='k')`` on each block; every block gets the full result."""
    mapped = jax.vmap(lambda *a: f(*a, axis_name="k"), axis_name="k")

    def g(*args):
        out = mapped(*(_split(a) for a in args[:n_args]))
        return out[0]

    return g


def _check(f, args, atol=1e-6):
    split = _as_vmapped(f, len(args))
    np.testing.assert_allclose(
        jax.jit(split)(*args), f(*args, axis_name=None), rtol=1e-5, atol=atol
    )
    weights = jnp.linspace(0.5, 1.5, N)
    argnums = tuple(range(len(args)))
    got = jax.jit(jax.grad(lambda *a: jnp.sum(split(*a) * weights), argnums))(*args)
    ref = jax.jit(jax.grad(lambda *a: jnp.sum(f(*a, axis_name=None) * weights), argnums))(*args)
    for g, r in zip(got, ref, strict=True):
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5 * np.max(np.abs(r)))


def test_entropy_from_logits():
    _check(lambda a, axis_name: jaxinfo.entropy_from_logits(a, axis_name=axis_name), (_logits(),))


def test_cross_entropy_from_logits():
    p = jax.nn.softmax(_logits(1))
    _check(
        lambda p, b, axis_name: jaxinfo.cross_entropy_from_logits(p, b, axis_name=axis_name),
        (p, _logits(2)),  # p is 0 where the logits are -inf
    )


def test_kl_divergence_from_logits():
    _check(
        lambda a, b, axis_name: jaxinfo.kl_divergence_from_logits(
            a, b, base=2, axis_name=axis_name
        ),
        (_logits(1), _logits(2)),
    )


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_cross_entropy_from_labels(label_smoothing):
    labels = jnp.array([-1, 0, 7, V - 1, 13, V + 2])  # ignored, blocks 0, 1, 3, 2, out of range

    def f(b, axis_name):
        return jaxinfo.cross_entropy_from_labels(
            labels, b, label_smoothing=label_smoothing, axis_name=axis_name
        )

    b = _logits(3)
    got = _as_vmapped(f, 1)(b)
    ref = f(b, None)
    assert got[0] == 0.0 and np.isnan(got[5])
    np.testing.assert_allclose(got[:5], ref[:5], rtol=1e-5)
    g = jax.grad(lambda b: jnp.sum(_as_vmapped(f, 1)(b)[:5]))(b)
    r = jax.grad(lambda b: jnp.sum(f(b, None)[:5]))(b)
    np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)


def test_linear_cross_entropy():
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(N, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, V)), jnp.float32)
    labels = jnp.array([-1, 0, 7, V - 1, 13, 4])

    def f(w_block, axis_name):
        return jaxinfo.linear_cross_entropy(x, w_block, labels, chunk_size=2, axis_name=axis_name)

    mapped = jax.vmap(lambda w: f(w, "k"), in_axes=1, axis_name="k")

    def split(x, w):
        del x
        return mapped(w.reshape(3, K, -1))[0]

    np.testing.assert_allclose(jax.jit(split)(x, w), f(w, None), rtol=1e-6)
    got = jax.jit(jax.grad(lambda w: jnp.sum(split(x, w))))(w)
    ref = jax.jit(jax.grad(lambda w: jnp.sum(f(w, None))))(w)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)

    # dx: x is shared by the K blocks; its cotangents are summed over them.
    def by_x(x, axis_name, w_block):
        return jaxinfo.linear_cross_entropy(x, w_block, labels, chunk_size=2, axis_name=axis_name)

    mapped_x = jax.vmap(lambda x, w: by_x(x, "k", w), in_axes=(None, 1), axis_name="k")
    got = jax.jit(jax.grad(lambda x: jnp.sum(mapped_x(x, w.reshape(3, K, -1))[0])))(x)
    ref = jax.jit(jax.grad(lambda x: jnp.sum(by_x(x, None, w))))(x)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "f",
    [
        lambda a: jaxinfo.entropy_from_logits(a),
        lambda a: jaxinfo.cross_entropy_from_logits(jax.nn.softmax(a), a),
        lambda a: jaxinfo.kl_divergence_from_logits(a, a * 2),
        lambda a: jaxinfo.cross_entropy_from_labels(
            jnp.zeros(N, jnp.int32), a, label_smoothing=0.1
        ),
        lambda a: jaxinfo.linear_cross_entropy(a, jnp.ones((V, 3)), jnp.zeros(N, jnp.int32)),
    ],
)
def test_without_axis_name_no_collective_is_traced(f):
    jaxpr = str(jax.make_jaxpr(jax.value_and_grad(lambda a: jnp.sum(f(a))))(_logits()))
    for name in ("psum", "pmax", "axis_index", "pcast", "pvary"):
        assert name not in jaxpr


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reduction_is_over_positions_only(reduction):
    # The per-position loss is the same on every block of classes, so the
    # reduction (over positions) is too, and equals the unsplit one.
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.normal(size=(N, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, V)), jnp.float32)
    labels = jnp.array([-1, 0, 7, -1, 13, V - 1])

    def f(w_block, axis_name):
        linear = jaxinfo.linear_cross_entropy(
            x, w_block, labels, chunk_size=2, axis_name=axis_name, reduction=reduction
        )
        logits = jaxinfo.cross_entropy_from_labels(
            labels, x @ w_block, axis_name=axis_name, reduction=reduction
        )
        return jnp.stack([linear, logits])

    mapped = jax.jit(jax.vmap(lambda w: f(w, "k"), in_axes=1, axis_name="k"))
    got = mapped(w.reshape(3, K, -1))
    ref = f(w, None)
    np.testing.assert_allclose(got, jnp.broadcast_to(ref, (K, 2)), rtol=1e-6)
    g = jax.jit(jax.grad(lambda w: mapped(w.reshape(3, K, -1))[0].sum()))(w)
    r = jax.grad(lambda w: f(w, None).sum())(w)
    np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)

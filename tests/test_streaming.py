"""Tests of the streaming accumulators: StreamingEntropy and StreamingCrossEntropy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jaxinfo
from jaxinfo import CompensatedSum, StreamingCrossEntropy, StreamingEntropy

B, T, V = 4, 16, 11  # one batch: (B, T) positions over V classes
update_ce = jax.jit(StreamingCrossEntropy.update)
update_h = jax.jit(StreamingEntropy.update)


def _batches(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        logits = jnp.asarray(rng.normal(size=(B, T, V)) * 3, jnp.float32)
        labels = rng.integers(0, V, size=(B, T))
        labels[rng.uniform(size=(B, T)) < 0.3] = -1  # padding
        out.append((jnp.asarray(labels, jnp.int32), logits))
    return out


def test_cross_entropy_equals_the_one_shot_masked_mean():
    batches = _batches(6)
    state = StreamingCrossEntropy.init()
    for labels, logits in batches:
        state = update_ce(state, labels, logits)
    labels = jnp.concatenate([b[0] for b in batches])
    logits = jnp.concatenate([b[1] for b in batches])
    loss = jaxinfo.cross_entropy_from_labels(labels, logits)
    one_shot = jaxinfo.cross_entropy_from_labels(labels, logits, reduction="mean")
    by_hand = loss.sum() / (labels >= 0).sum().astype(loss.dtype)
    np.testing.assert_allclose(one_shot, by_hand, rtol=1e-6)
    np.testing.assert_allclose(state.result(), one_shot, rtol=1e-6)
    np.testing.assert_allclose(state.result(base=2), one_shot / np.log(2), rtol=1e-6)
    np.testing.assert_allclose(state.perplexity(), np.exp(one_shot), rtol=1e-6)
    assert float(state.count.value) == float((labels >= 0).sum())
    # float64 reference of the same losses
    want = np.asarray(loss, np.float64).sum() / np.sum(np.asarray(labels) >= 0)
    np.testing.assert_allclose(state.result(), want, rtol=2e-7)


def test_entropy_is_the_mean_entropy_of_the_included_positions():
    batches = _batches(5, seed=1)
    state = StreamingEntropy.init()
    hs, masks = [], []
    for labels, logits in batches:
        where = labels >= 0
        state = update_h(state, logits, where=where)
        hs.append(jaxinfo.entropy_from_logits(logits))
        masks.append(where)
    h, mask = jnp.concatenate(hs), jnp.concatenate(masks)
    np.testing.assert_allclose(
        state.result(), jnp.sum(jnp.where(mask, h, 0)) / mask.sum().astype(h.dtype), rtol=1e-6
    )
    # without a mask every position counts; classes on another axis
    s = StreamingEntropy.init().update(jnp.moveaxis(batches[0][1], -1, 0), axis=0)
    np.testing.assert_allclose(s.result(), jnp.mean(hs[0]), rtol=1e-6)


def test_merge_equals_one_pass_and_psum_of_states_merges():
    batches = _batches(8, seed=2)
    one = StreamingCrossEntropy.init()
    for labels, logits in batches:
        one = update_ce(one, labels, logits)
    halves = []
    for part in (batches[:3], batches[3:]):
        s = StreamingCrossEntropy.init()
        for labels, logits in part:
            s = update_ce(s, labels, logits)
        halves.append(s)
    np.testing.assert_allclose(halves[0].merge(halves[1]).result(), one.result(), rtol=1e-7)
    assert float(halves[0].merge(halves[1]).count.value) == float(one.count.value)
    # lax.psum of the states along a named axis, as inside shard_map (here vmap with an
    # axis_name, which runs the same collective in this process; see test_axis_name.py)
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *halves)
    summed = jax.vmap(lambda s: lax.psum(s, "devices"), axis_name="devices")(stacked)
    first = jax.tree.map(lambda x: x[0], summed)
    assert isinstance(first, StreamingCrossEntropy)
    np.testing.assert_allclose(first.result(), one.result(), rtol=1e-7)


def test_states_are_pytrees_that_scan_and_jit():
    batches = _batches(4, seed=3)
    labels = jnp.stack([b[0] for b in batches])
    logits = jnp.stack([b[1] for b in batches])

    @jax.jit
    def run(labels, logits):
        def step(state, batch):
            return state.update(*batch), None

        return lax.scan(step, StreamingCrossEntropy.init(), (labels, logits))[0].result()

    eager = StreamingCrossEntropy.init()
    for y, x in batches:
        eager = eager.update(y, x)
    np.testing.assert_allclose(run(labels, logits), eager.result(), rtol=1e-7)
    leaves = jax.tree.leaves(StreamingEntropy.init())
    assert len(leaves) == 4 and all(leaf.dtype == jnp.float32 for leaf in leaves)


def test_empty_state_reads_zero():
    assert float(StreamingEntropy.init().result()) == 0.0
    state = StreamingCrossEntropy.init().update(jnp.full((2,), -1), jnp.zeros((2, 3)))
    assert float(state.result()) == 0.0 and float(state.count.value) == 0.0


def test_compensated_sum_does_not_drift_where_float32_does():
    """10**6 batches, each adding 1/3 + noise nats: float32 totals drift, the pair does not."""
    n = 1_000_000
    rng = np.random.default_rng(5)
    values = (1 / 3 + rng.uniform(0, 1e-3, size=n)).astype(np.float32)
    want = np.sum(values.astype(np.float64))

    @jax.jit
    def run(values):
        def step(carry, v):
            total, naive = carry
            return (total.add(v), naive + v), None

        zero = jnp.zeros((), jnp.float32)
        return lax.scan(step, (CompensatedSum.zero(), zero), values)[0]

    total, naive = run(jnp.asarray(values))
    ours = float(total.hi) + float(total.lo)  # the pair's value, read in float64
    assert abs(ours - want) / want < 1e-12
    assert abs(float(total.value) - want) / want < 1e-7  # its float32 rounding
    assert abs(float(naive) - want) / want > 1e-4  # the running float32 total drifts


def test_a_billion_tokens_are_counted_exactly():
    """10**5 batches of 10**4 + 7 tokens: beyond 2**24, float32 counts stop being exact."""
    n, per_batch = 100_000, 10_007

    @jax.jit
    def run():
        ones = jnp.ones((per_batch,), jnp.float32)

        def step(carry, _):
            count, naive = carry
            return (count.add_all(ones), naive + jnp.sum(ones)), None

        return lax.scan(step, (CompensatedSum.zero(), jnp.zeros((), jnp.float32)), None, length=n)[
            0
        ]

    count, naive = run()
    assert int(count.hi) + int(count.lo) == n * per_batch
    assert float(naive) != n * per_batch


@pytest.mark.parametrize("n", [1, 2, 3, 1000, 4097])
def test_add_all_is_exact_for_any_length(n):
    rng = np.random.default_rng(n)
    x = (rng.normal(size=n) * 10.0 ** rng.integers(-6, 6, size=n)).astype(np.float32)
    s = CompensatedSum.zero().add_all(jnp.asarray(x))
    want = np.sum(x.astype(np.float64))
    assert abs(float(s.hi) + float(s.lo) - want) <= 1e-13 * np.sum(np.abs(x.astype(np.float64)))


def test_errors():
    logits = jnp.zeros((2, 3, 4))
    with pytest.raises(
        ValueError, match=r"where must have the shape of logits without axis 2, \(2, 3\)"
    ):
        StreamingEntropy.init().update(logits, where=jnp.ones((2, 4), bool))
    with pytest.raises(TypeError, match="where must be a boolean array"):
        StreamingEntropy.init().update(logits, where=jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="labels must have an integer dtype"):
        StreamingCrossEntropy.init().update(jnp.zeros((2, 3)), logits)
    with pytest.raises(ValueError, match="base must be positive"):
        StreamingCrossEntropy.init().result(base=-2)

"""Streaming accumulators: dataset-level entropy and cross-entropy, batch by batch.

An evaluation run sees its tokens a batch at a time, on several devices; what
it reports is a mean over all of them. The accumulators here keep the two
sums that mean needs, the measure's total and the number of positions, as
pytrees that pass through ``jit``, ``scan`` and ``shard_map``:

* ``update`` adds a batch; ``merge`` adds two states (two devices, two
  hosts, two halves of a run); ``result`` reads the mean.
* Each sum is a compensated pair ``(hi, lo)``, a float-float number whose
  value is ``hi + lo``: every addition is error-free (Knuth's two-sum), and a
  batch is summed pairwise with the same error terms. A float32 state then
  carries about 48 bits: a billion tokens (far past 2**24, where float32
  counts stop being exact and a running float32 total starts losing the
  digits of every batch it adds) lose nothing that the result shows.
* The state is linear: ``lax.psum(state, axis_name)`` inside ``shard_map``
  sums the pairs component by component, which is a valid state whose value
  is the sum of the devices' values (each component sum rounds once per
  device, far below what ``result`` shows).
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from jaxinfo._checks import Array, ArrayLike, as_label_array, canonical_axis, compute_dtype
from jaxinfo._shannon import cross_entropy_from_labels, entropy_from_logits
from jaxinfo._units import check_base, in_base


def _two_sum(a: Array, b: Array) -> tuple[Array, Array]:
    """``s + e = a + b`` exactly, with ``s = fl(a + b)`` (Knuth's two-sum, no branch)."""
    s = a + b
    b_virtual = s - a
    e = (a - (s - b_virtual)) + (b - b_virtual)
    return s, e


class CompensatedSum(NamedTuple):
    """A float-float number ``hi + lo``: a sum kept with about twice the float's digits.

    Attributes:
      hi: the sum rounded to the float.
      lo: what rounding left out (small against ``hi``).

    Examples:
      A million float32 additions of 0.1, where a plain float32 sum drifts
      in its fourth digit:

      >>> import jax.numpy as jnp, jaxinfo
      >>> x = jnp.full((1_000_000,), 0.1, jnp.float32)
      >>> total = jaxinfo.CompensatedSum.zero().add_all(x)
      >>> print(f"{float(total.value):.1f}")
      100000.0
    """

    hi: Array
    lo: Array

    @staticmethod
    def zero(dtype=jnp.float32) -> CompensatedSum:
        zero = jnp.zeros((), compute_dtype(dtype))
        return CompensatedSum(zero, zero)

    def add(self, hi: Array, lo: Array | float = 0.0) -> CompensatedSum:
        """Adds the float-float number ``hi + lo`` (renormalised: ``|lo|`` stays small)."""
        s, e = _two_sum(self.hi, jnp.asarray(hi, self.hi.dtype))
        return CompensatedSum(*_two_sum(s, e + (self.lo + jnp.asarray(lo, self.lo.dtype))))

    def add_all(self, x: Array) -> CompensatedSum:
        """Adds every entry of ``x``, summed pairwise with the error of each addition kept."""
        x = jnp.ravel(x).astype(self.hi.dtype)
        if x.size == 0:
            return self
        size = 1 << (x.size - 1).bit_length()  # the next power of two
        x = jnp.pad(x, (0, size - x.size))
        lo = None  # the error terms, pairwise as x
        while x.size > 1:
            half = x.size // 2
            x, e = _two_sum(x[:half], x[half:])
            lo = e if lo is None else lo[:half] + lo[half:] + e
        if lo is None:
            return self.add(x[0])
        return self.add(x[0], lo[0])

    @property
    def value(self) -> Array:
        return self.hi + self.lo


def _merge_sums(a: CompensatedSum, b: CompensatedSum) -> CompensatedSum:
    return a.add(b.hi, b.lo)


def _mean(total: CompensatedSum, count: CompensatedSum) -> Array:
    """``total / count`` to the float's precision; 0 where nothing was counted."""
    n = count.value
    mean = (total.hi + total.lo) / jnp.where(n > 0, n, jnp.ones_like(n))
    return jnp.where(n > 0, mean, jnp.zeros_like(mean))


class StreamingCrossEntropy(NamedTuple):
    r"""Token-level cross-entropy (and perplexity) of an evaluation run, batch by batch.

    .. math::
       \bar H = \frac{\sum_{t: y_t \ge 0} -\log q_t(y_t)}{\#\{t: y_t \ge 0\}},
       \qquad \mathrm{PP} = e^{\bar H}

    over every position of every batch passed to :meth:`update`; a negative
    label marks padding, which is left out of both sums. The result equals
    the one-shot mean of :func:`cross_entropy_from_labels` over the
    concatenated batches (``reduction="mean"``).

    Attributes:
      loss: the summed loss in nats, a :class:`CompensatedSum`.
      count: the number of positions counted, a :class:`CompensatedSum`
        (exact far beyond 2**24 in float32).

    Examples:
      >>> import jax, jax.numpy as jnp, jaxinfo
      >>> logits = jnp.log(jnp.array([[0.5, 0.5], [0.9, 0.1]]))
      >>> state = jaxinfo.StreamingCrossEntropy.init()
      >>> state = jax.jit(jaxinfo.StreamingCrossEntropy.update)(state, jnp.array([0, -1]), logits)
      >>> state = state.update(jnp.array([0, 0]), logits)
      >>> state.result(base=2)  # (1 + 1 + 0.152) / 3 bits
      Array(0.7173, dtype=float32)
      >>> state.merge(state).result(base=2)
      Array(0.7173, dtype=float32)
    """

    loss: CompensatedSum
    count: CompensatedSum

    @staticmethod
    def init(dtype=jnp.float32) -> StreamingCrossEntropy:
        """An empty state; its sums are float32 (or ``dtype`` where wider)."""
        return StreamingCrossEntropy(CompensatedSum.zero(dtype), CompensatedSum.zero(dtype))

    def update(
        self, labels: ArrayLike, logits: ArrayLike, *, axis: int = -1
    ) -> StreamingCrossEntropy:
        """Adds a batch: integer ``labels`` (negative: padding) and the model's ``logits``.

        ``labels`` has the shape of ``logits`` without ``axis``, the class axis,
        as in :func:`cross_entropy_from_labels`.
        """
        labels = as_label_array(labels)
        loss = cross_entropy_from_labels(labels, logits, axis=axis)
        counted = (labels >= 0).astype(self.count.hi.dtype)
        return StreamingCrossEntropy(self.loss.add_all(loss), self.count.add_all(counted))

    def merge(self, other: StreamingCrossEntropy) -> StreamingCrossEntropy:
        """The state of both runs together (two devices, hosts or halves of a run)."""
        return StreamingCrossEntropy(
            _merge_sums(self.loss, other.loss), _merge_sums(self.count, other.count)
        )

    def result(self, *, base: ArrayLike | None = None) -> Array:
        """The mean cross-entropy per counted position; 0 before any is counted."""
        check_base(base)
        return in_base(_mean(self.loss, self.count), base)

    def perplexity(self) -> Array:
        """``exp`` of the mean cross-entropy in nats: the run's token-level perplexity."""
        return jnp.exp(self.result())


class StreamingEntropy(NamedTuple):
    r"""Mean entropy of a model's predictive distributions over an evaluation run.

    .. math::
       \bar H = \frac{1}{N} \sum_{t} H\big(\operatorname{softmax}(\ell_t)\big)

    over the ``N`` positions (rows of logits) of every batch passed to
    :meth:`update` that ``where`` includes: how uncertain the model is, per
    token, across the whole run, the companion of
    :class:`StreamingCrossEntropy`. It is not the entropy of a pooled
    histogram (the entropy of the mean distribution, as a codebook usage is
    measured): for that, sum the counts or probabilities over the batches and
    call :func:`entropy` or :func:`entropy_from_counts` once.

    Attributes:
      entropy: the summed entropy in nats, a :class:`CompensatedSum`.
      count: the number of positions counted, a :class:`CompensatedSum`.

    Examples:
      >>> import jax.numpy as jnp, jaxinfo
      >>> logits = jnp.array([[0.0, 0.0], [0.0, -jnp.inf]])  # 1 bit, 0 bits
      >>> state = jaxinfo.StreamingEntropy.init().update(logits)
      >>> state = state.update(logits, where=jnp.array([True, False]))
      >>> state.result(base=2)  # (1 + 0 + 1) / 3
      Array(0.6667, dtype=float32)
    """

    entropy: CompensatedSum
    count: CompensatedSum

    @staticmethod
    def init(dtype=jnp.float32) -> StreamingEntropy:
        """An empty state; its sums are float32 (or ``dtype`` where wider)."""
        return StreamingEntropy(CompensatedSum.zero(dtype), CompensatedSum.zero(dtype))

    def update(
        self, logits: ArrayLike, *, axis: int = -1, where: ArrayLike | None = None
    ) -> StreamingEntropy:
        """Adds a batch of logits (classes along ``axis``).

        ``where``: optional boolean mask of the positions to count, with the
        shape of ``logits`` without ``axis`` (padding: False).
        """
        h = entropy_from_logits(logits, axis=axis)
        counted = jnp.ones(h.shape, self.count.hi.dtype)
        if where is not None:
            where = jnp.asarray(where)
            if where.dtype != jnp.bool_:
                raise TypeError(f"where must be a boolean array, got dtype {where.dtype}.")
            if where.shape != h.shape:
                shape = jnp.shape(logits)
                raise ValueError(
                    f"where must have the shape of logits without axis "
                    f"{canonical_axis(axis, len(shape), 'logits')}, {h.shape}, "
                    f"got {where.shape} (logits.shape={shape})."
                )
            h = jnp.where(where, h, jnp.zeros_like(h))
            counted = where.astype(counted.dtype)
        return StreamingEntropy(self.entropy.add_all(h), self.count.add_all(counted))

    def merge(self, other: StreamingEntropy) -> StreamingEntropy:
        """The state of both runs together (two devices, hosts or halves of a run)."""
        return StreamingEntropy(
            _merge_sums(self.entropy, other.entropy), _merge_sums(self.count, other.count)
        )

    def result(self, *, base: ArrayLike | None = None) -> Array:
        """The mean entropy per counted position; 0 before any is counted."""
        check_base(base)
        return in_base(_mean(self.entropy, self.count), base)

r"""Losses of a linear classifier's softmax, without forming the logits.

A language model's last layer maps hidden states ``x`` (N, D) to logits
``x @ w`` (N, V) over a vocabulary of V classes. At N = 8192 tokens and
V = 262144 classes those logits take 8 GiB in float32, and their gradient as
much again. :func:`linear_cross_entropy` and :func:`linear_entropy` compute
their losses and gradients one block of classes at a time:

* forward: for each block ``w[:, j:j+C]`` the block of logits is computed,
  folded into a running log-sum-exp (the online softmax recurrence) and the
  other running statistics, and dropped; only a few numbers per position are
  kept;
* backward (a ``custom_vjp``): each block of logits is recomputed, turned into
  its cotangent with the saved statistics, and multiplied out at once:
  ``dx += G @ w_blockᵀ`` accumulates over blocks, ``dw[:, j:j+C] = xᵀ @ G``
  is written block by block into the output.

The largest temporary is one (N, C) block, so the memory is
O(N·D + N·C) instead of O(N·V). The price is one extra matrix product (the
recomputation): four products of the logits' size instead of three.

What lives here: the public functions, their argument checks, and how the
per-device statistics become a loss, an entropy and an argmax over all
classes (the collectives of ``axis_name``). What does not: the blockwise
kernel and its derivative (``_linear_kernel.py``).

Vocabulary parallelism. With ``axis_name``, the call runs inside
``shard_map`` with ``w`` split along its vocabulary axis across the devices of
that mesh axis: each device streams over its own block of classes, and the
per-position maxima and sums are combined with ``lax.pmax`` / ``lax.psum``
(collectives of size N, never of size V); the backward pass needs no
collective beyond the ``psum`` of ``dx`` that autodiff inserts for the
replicated ``x``. Labels stay global class ids.

The same program scales from one host to many: on a TPU pod slice or a GPU
cluster, start every process with ``jax.distributed.initialize()`` and build
the mesh from ``jax.devices()`` (all devices of all hosts); ``shard_map``
and the collectives then span the hosts, and nothing in this module changes::

    import jax, numpy as np
    from jax.sharding import Mesh, PartitionSpec as P

    jax.distributed.initialize()  # once per process, before any computation
    devices = np.array(jax.devices()).reshape(-1, jax.local_device_count())
    mesh = Mesh(devices, ("data", "model"))  # hosts x the devices of a host

    @jax.jit
    @jax.shard_map(mesh=mesh, in_specs=(P("data"), P(None, "model"), P("data")),
                   out_specs=P())
    def loss(x, w, labels):
        ce = jaxinfo.linear_cross_entropy(x, w, labels, axis_name="model")
        return jax.lax.pmean(ce.mean(), "data")

See ``docs/scale.md`` for the full story.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, overload

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxinfo import _linear_kernel as kernel
from jaxinfo._checks import (
    Array,
    ArrayLike,
    AxisName,
    as_class_mask,
    as_label_array,
    as_position_weights,
    as_real_array,
    check_chunk_size,
    check_scalar,
    compute_dtype,
    differentiable,
    forward_mode,
    forward_mode_error,
    is_one,
    is_zero,
)
from jaxinfo._collectives import class_offset, combine_log_partitions, match_varying, num_classes
from jaxinfo._reduction import Reduction, check_reduction, reduce_positions, weighted
from jaxinfo._units import Outcomes, in_range


class LogitStats(NamedTuple):
    r"""Per-position statistics of a linear head's prediction ``softmax(z)``.

    Returned by ``linear_cross_entropy(..., return_stats=True)`` beside the
    loss, from the same pass over the vocabulary. Every field is shaped like
    the labels and is given at every position, padding included (mask it as
    the loss is masked, if you average it).

    .. math::
       \log Z = \log \sum_v e^{z_v}, \qquad
       H = -\sum_v q_v \log q_v, \quad q = \mathrm{softmax}(z)

    Attributes:
      log_z: the log-partition ``log Z`` of the logits ``z`` (after the
        soft cap, the temperature and the class mask), differentiable.
      entropy: the entropy of ``softmax(z)`` in nats, differentiable (an
        entropy bonus in RL fine-tuning adds ``-β·entropy`` to the loss; its
        gradient comes from the same backward pass as the loss's).
      argmax: the predicted class (int32, a global class id under
        ``axis_name``; the first one on a tie), -1 if every class is
        excluded.

    Examples:
      >>> x = jnp.array([[1.0, 0.0]])
      >>> w = jnp.array([[0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
      >>> loss, stats = jaxinfo.linear_cross_entropy(x, w, jnp.array([1]), return_stats=True)
      >>> stats.argmax
      Array([1], dtype=int32)
      >>> bool(jnp.allclose(stats.log_z, jnp.log(jnp.exp(0.0) + jnp.exp(2.0) + jnp.exp(0.0))))
      True
    """

    log_z: Array
    entropy: Array
    argmax: Array


@overload
def linear_cross_entropy(
    x: ArrayLike,
    w: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    label_smoothing: ArrayLike = 0.0,
    z_loss: ArrayLike = 0.0,
    logit_soft_cap: ArrayLike | None = None,
    temperature: ArrayLike = 1.0,
    chunk_size: int | None = None,
    axis_name: AxisName | None = None,
    reduction: Reduction = "none",
    return_stats: Literal[False] = False,
) -> Array: ...


@overload
def linear_cross_entropy(
    x: ArrayLike,
    w: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    label_smoothing: ArrayLike = 0.0,
    z_loss: ArrayLike = 0.0,
    logit_soft_cap: ArrayLike | None = None,
    temperature: ArrayLike = 1.0,
    chunk_size: int | None = None,
    axis_name: AxisName | None = None,
    reduction: Reduction = "none",
    return_stats: Literal[True],
) -> tuple[Array, LogitStats]: ...


@overload
def linear_cross_entropy(
    x: ArrayLike,
    w: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    label_smoothing: ArrayLike = 0.0,
    z_loss: ArrayLike = 0.0,
    logit_soft_cap: ArrayLike | None = None,
    temperature: ArrayLike = 1.0,
    chunk_size: int | None = None,
    axis_name: AxisName | None = None,
    reduction: Reduction = "none",
    return_stats: bool,
) -> Array | tuple[Array, LogitStats]: ...


def linear_cross_entropy(
    x: ArrayLike,
    w: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    label_smoothing: ArrayLike = 0.0,
    z_loss: ArrayLike = 0.0,
    logit_soft_cap: ArrayLike | None = None,
    temperature: ArrayLike = 1.0,
    chunk_size: int | None = None,
    axis_name: AxisName | None = None,
    reduction: Reduction = "none",
    return_stats: bool = False,
) -> Array | tuple[Array, LogitStats]:
    r"""Cross-entropy of ``softmax(z)``, ``z`` the logits of a linear head, never forming them.

    .. math::
       z = g(x w + b) / T, \qquad
       \ell = (1 - \varepsilon)\,(\log Z - z_y)
         + \varepsilon \Big(\log Z - \frac{1}{K}\sum_{v \in \mathcal{K}} z_v\Big)
         + c\,(\log Z)^2

    with ``g(u) = cap·tanh(u / cap)`` when ``logit_soft_cap`` is set (Gemma
    2's soft-capping, applied before the temperature) and ``g(u) = u``
    otherwise; ``Z = Σ_{v ∈ K} e^{z_v}`` over the ``K`` included classes;
    ``ε`` the label smoothing and ``c`` the z-loss weight (PaLM, T5X). Each
    position's loss is multiplied by its weight.

    Equal to the same options applied by hand to the materialised logits
    ``x @ w + bias`` (``cross_entropy_from_labels(labels, z, where=...,
    label_smoothing=ε) + c·logsumexp(z)²``), but the (N, V) logits are
    computed one block of ``chunk_size`` classes at a time, in the forward
    pass and again in the backward pass (a ``custom_vjp``), so the memory
    stays O(N·(D + chunk_size)) for any vocabulary size V. The statistics of
    ``return_stats`` come from the same pass, and their gradients from the
    same backward pass as the loss's.

    Reverse mode only: ``jax.grad``, ``jax.vjp``, ``jax.value_and_grad`` and
    ``jax.jacrev`` work; forward mode (``jax.jvp``, ``jax.jacfwd``,
    ``jax.linearize``, ``jax.hessian``) raises a ``TypeError``. Where you
    need it, differentiate the materialised loss
    ``cross_entropy_from_labels(labels, x @ w)`` instead, at the price of the
    (N, V) logits.

    Args:
      x: hidden states, shape ``(..., D)``.
      w: classifier weights, shape ``(D, V)``. Inside ``shard_map`` with
        ``axis_name``, this device's block of classes.
      labels: integer class ids, shape ``(...)`` (``x`` without its last
        axis). A negative label marks an ignored position: loss 0, no
        gradient. A label ``>= V`` is out of range and gives NaN; a label on
        an excluded class gives ``inf``.
      bias: optional ``(V,)`` bias added to ``x @ w`` (this device's block
        under ``axis_name``); differentiable.
      where: optional boolean ``(V,)`` mask of the classes to include (this
        device's block under ``axis_name``): an excluded class (a padded
        vocabulary entry, say) is absent from the softmax, the smoothing, the
        statistics and every gradient. At least one class must be included.
      weights: optional per-position weights, shaped like ``labels`` (real or
        boolean): the loss and its gradient are scaled by them. A weight of 0
        removes a position even where its loss is ``inf`` or NaN.
      label_smoothing: ``ε`` in ``[0, 1]``: the target is
        ``(1 - ε)·onehot + ε·uniform`` over the included classes (of the whole
        vocabulary under ``axis_name``), the convention of
        ``torch.nn.functional.cross_entropy`` and of
        :func:`cross_entropy_from_labels`. May be traced.
      z_loss: ``c >= 0``: adds ``c·(log Z)²`` per position, which keeps the
        log-partition near 0 (PaLM uses 1e-4). May be traced, and
        differentiated.
      logit_soft_cap: ``cap > 0`` to soft-cap the logits,
        ``cap·tanh(u / cap)``; ``None`` for none.
      temperature: ``T > 0``; the logits are divided by it (after the cap).
        A Python number is a constant; a JAX array receives its gradient
        (as does ``logit_soft_cap``), for a learned temperature.
      chunk_size: classes per block (a static int >= 1); by default about
        16 MiB of float32 logits per block, a multiple of 128 classes. V
        need not be a multiple of it.
      axis_name: for vocabulary (tensor) parallelism inside ``shard_map``:
        the mesh axis across which ``w`` (with ``bias`` and ``where``) is
        split along V in equal contiguous blocks. Each device passes its
        block and the full ``x``, global ``labels`` and ``weights`` of its
        positions, and gets the loss over all V classes. Only per-position
        values cross the devices. ``None``: the whole vocabulary is local.
      reduction: ``"none"`` for the per-position (weighted) loss; ``"sum"``
        for its sum; ``"mean"`` for ``Σ wᵢ ℓᵢ / Σ wᵢ`` over the positions
        whose label is ``>= 0`` (``wᵢ`` the weights, 1 by default), with the
        gradient of exactly that, and 0 (with a zero gradient) when that sum
        is 0. With ``axis_name`` the reduction is over this device's
        positions (the same on every device of that axis); across data
        shards, ``lax.psum`` the ``"sum"`` and the weight of the real
        positions, then divide.
      return_stats: also return a :class:`LogitStats` of per-position
        ``log_z``, ``entropy`` and ``argmax``.

    Returns:
      The loss in nats: per position (shaped like ``labels``) for
      ``reduction="none"``, else a scalar; with ``return_stats``, the pair
      ``(loss, stats)``. Float32 for bfloat16/float16 inputs (the products
      run in the input dtype and accumulate in float32), float64 for float64.
      Gradients come back in the dtypes of the inputs.

    Raises:
      ValueError: shapes that do not chain, a ``bias``, ``where`` or
        ``weights`` of the wrong shape, ``temperature <= 0``,
        ``logit_soft_cap <= 0``, ``label_smoothing`` outside ``[0, 1]``,
        ``z_loss < 0``, a ``where`` that excludes every class, a
        ``chunk_size`` below 1, or an unknown ``reduction``.
      TypeError: non-integer labels, complex or boolean ``x``/``w``/``bias``,
        a non-boolean ``where``, a ``chunk_size`` that is not an int, or a
        forward-mode derivative (``jax.jvp`` and what builds on it).

    Examples:
      >>> x = jnp.array([[1.0, 0.0], [0.0, 2.0]])
      >>> w = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
      >>> jaxinfo.linear_cross_entropy(x, w, jnp.array([1, -1]), chunk_size=2)
      Array([0.55144465, 0.        ], dtype=float32)
      >>> jaxinfo.cross_entropy_from_labels(jnp.array([1, -1]), x @ w)
      Array([0.55144465, 0.        ], dtype=float32)

      The mean over the real tokens (one here; the other is padding):

      >>> jaxinfo.linear_cross_entropy(x, w, jnp.array([1, -1]), reduction="mean")
      Array(0.55144465, dtype=float32)

      A language model's loss with a z-loss, soft-capped logits and the
      statistics an RL step logs, in one pass:

      >>> loss, stats = jaxinfo.linear_cross_entropy(
      ...     x, w, jnp.array([1, 2]), z_loss=1e-4, logit_soft_cap=30.0, return_stats=True
      ... )
      >>> stats.argmax
      Array([1, 2], dtype=int32)
      >>> bool(jnp.all(stats.entropy <= jnp.log(3.0)))
      True

    References:
      Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models"
      (Cut Cross-Entropy), 2024; Milakov & Gimelshein, "Online normalizer
      calculation for softmax", 2018; Chowdhery et al., "PaLM", 2022 (the
      z-loss); Gemma Team, "Gemma 2", 2024 (logit soft-capping).
    """
    check_reduction(reduction)
    if not isinstance(return_stats, bool):
        raise TypeError(f"return_stats must be a bool, got {return_stats!r}.")
    head = _Prepared.of(
        "linear_cross_entropy",
        x,
        w,
        labels,
        bias=bias,
        where=where,
        weights=weights,
        logit_soft_cap=logit_soft_cap,
        temperature=temperature,
        chunk_size=chunk_size,
    )
    check_scalar(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    check_scalar(z_loss, "z_loss", low=0.0)
    smoothing = not is_zero(label_smoothing)
    penalty = not is_zero(z_loss)
    cfg = head.config(label=True, total=smoothing, entropy=return_stats, argmax=return_stats)
    terms, global_terms = head.run(cfg, axis_name)
    log_z, count = global_terms.log_z, global_terms.count
    acc = log_z.dtype

    loss = in_range(log_z - global_terms.label, None)  # -log q_y >= 0, also after rounding
    if smoothing:
        eps = jnp.asarray(label_smoothing, acc)
        uniform = in_range(log_z - global_terms.total / count_value(count, acc), None)
        hard = jnp.where(eps == 1, jnp.zeros_like(loss), (1 - eps) * loss)
        loss = hard + eps * uniform
    if penalty:
        loss = loss + jnp.asarray(z_loss, acc) * jnp.square(log_z)
    y = head.labels
    loss = jnp.where(y >= num_classes(head.vocab, axis_name), jnp.nan, loss)
    loss = jnp.where(y < 0, jnp.zeros_like(loss), loss)
    loss = head.reduce(loss.reshape(head.batch_shape), reduction)
    if not return_stats:
        return loss
    stats = LogitStats(
        log_z=log_z.reshape(head.batch_shape),
        entropy=_global_entropy(terms, log_z, count, axis_name).reshape(head.batch_shape),
        argmax=_global_argmax(terms, head.vocab, axis_name).reshape(head.batch_shape),
    )
    return loss, stats


def linear_entropy(
    x: ArrayLike,
    w: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    logit_soft_cap: ArrayLike | None = None,
    temperature: ArrayLike = 1.0,
    chunk_size: int | None = None,
    axis_name: AxisName | None = None,
) -> Array:
    r"""Entropy of ``softmax(z)``, ``z`` the logits of a linear head, never forming them.

    .. math::
       H(Q) = \log Z - \sum_v q_v z_v, \qquad q = \mathrm{softmax}(z), \quad
       z = g(x w + b) / T

    The per-position entropy of a policy's next-token distribution (an
    entropy regulariser in RL fine-tuning, or a model's uncertainty per
    token), with the logits as in :func:`linear_cross_entropy` and the same
    memory bound: one block of ``chunk_size`` classes at a time, forward and
    backward. Equal to ``entropy_from_logits(x @ w + bias, where=where)``.
    Reverse mode only, as :func:`linear_cross_entropy`.

    Args:
      x: hidden states, shape ``(..., D)``.
      w: classifier weights, shape ``(D, V)`` (this device's block of classes
        under ``axis_name``).
      bias: optional ``(V,)`` bias added to ``x @ w``.
      where: optional boolean ``(V,)`` mask of the classes to include.
      weights: optional per-position weights, shaped like ``x`` without its
        last axis; the entropy and its gradient are scaled by them.
      logit_soft_cap: ``cap > 0`` to soft-cap the logits; ``None`` for none.
      temperature: ``T > 0``; the logits are divided by it (after the cap).
      chunk_size: classes per block, as in :func:`linear_cross_entropy`.
      axis_name: the mesh axis across which the classes are split inside
        ``shard_map``, as in :func:`linear_cross_entropy`.

    Returns:
      The entropy in nats per position (shaped like ``x`` without its last
      axis), in ``[0, log K]`` for ``K`` included classes. Float32 for
      bfloat16/float16 inputs.

    Raises:
      ValueError: shapes that do not chain, a ``bias``, ``where`` or
        ``weights`` of the wrong shape, ``temperature <= 0``,
        ``logit_soft_cap <= 0``, a ``where`` that excludes every class, or a
        ``chunk_size`` below 1.
      TypeError: complex or boolean ``x``/``w``/``bias``, a non-boolean
        ``where``, a ``chunk_size`` that is not an int, or forward mode.

    Examples:
      >>> x = jnp.array([[1.0, 0.0], [0.0, 0.0]])
      >>> w = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
      >>> jaxinfo.linear_entropy(x, w)
      Array([0.9753278, 1.0986123], dtype=float32)
      >>> jaxinfo.entropy_from_logits(x @ w)
      Array([0.9753278, 1.0986123], dtype=float32)
    """
    x_arr = as_real_array(x, "x")
    labels = jnp.full(x_arr.shape[:-1], -1, jnp.int32)
    head = _Prepared.of(
        "linear_entropy",
        x_arr,
        w,
        labels,
        bias=bias,
        where=where,
        weights=weights,
        logit_soft_cap=logit_soft_cap,
        temperature=temperature,
        chunk_size=chunk_size,
        weights_name="weights",
        labels_given=False,
    )
    cfg = head.config(label=False, total=False, entropy=True, argmax=False)
    terms, global_terms = head.run(cfg, axis_name)
    entropy = _global_entropy(terms, global_terms.log_z, global_terms.count, axis_name)
    entropy = entropy.reshape(head.batch_shape)
    if head.weights is None:
        return entropy
    return weighted(entropy, head.weights)


# --------------------------------------------------------------------------
# arguments
# --------------------------------------------------------------------------


class _Global(NamedTuple):
    log_z: Array
    label: Array | None
    total: Array | None
    count: Outcomes


class _Prepared:
    """The checked arguments of a linear-head loss, flattened to (N, D), (D, V), (N,)."""

    @classmethod
    def of(
        cls,
        fname,
        x,
        w,
        labels,
        *,
        bias,
        where,
        weights,
        logit_soft_cap,
        temperature,
        chunk_size,
        weights_name="weights",
        labels_given=True,
    ):
        self = cls()
        x = as_real_array(x, "x")
        w = as_real_array(w, "w")
        labels = as_label_array(labels) if labels_given else labels
        if x.ndim == 0:
            raise ValueError("x must have at least one dimension (the features D), got a scalar.")
        if w.ndim != 2:
            raise ValueError(f"w must be a (D, V) matrix, got shape {w.shape}.")
        if x.shape[-1] != w.shape[0]:
            raise ValueError(
                f"x and w do not chain: x has shape {x.shape} (D = {x.shape[-1]}) but w "
                f"has shape {w.shape} (D = {w.shape[0]}); expected w of shape "
                f"({x.shape[-1]}, V)."
            )
        if labels_given and labels.shape != x.shape[:-1]:
            raise ValueError(
                f"labels must have the shape of x without its last axis: x has shape "
                f"{x.shape}, so labels should have shape {x.shape[:-1]}, got {labels.shape}."
            )
        num_features, vocab = w.shape
        self.vocab = vocab
        self.batch_shape = x.shape[:-1]
        n = int(np.prod(self.batch_shape, dtype=np.int64))
        self.chunk = kernel.chunk_size(check_chunk_size(chunk_size), n, vocab)
        check_scalar(temperature, "temperature", low=0.0, open_low=True)
        if logit_soft_cap is not None:
            check_scalar(logit_soft_cap, "logit_soft_cap", low=0.0, open_low=True)
        # The matmul's dtype: the common one, or the wider (at least float32).
        dtype = x.dtype if x.dtype == w.dtype else compute_dtype(x.dtype, w.dtype)
        acc = compute_dtype(dtype)
        x = x.astype(dtype).reshape(n, num_features)
        # w keeps its own dtype: a float32 x with a bfloat16 w converts one
        # block at a time inside the loop, never the whole (D, V) matrix.
        bias_arr = None
        if bias is not None:
            bias_arr = as_real_array(bias, "bias")
            if bias_arr.shape != (vocab,):
                raise ValueError(
                    f"bias must have shape (V,) = ({vocab},), the classes of w (this "
                    f"device's block under axis_name), got shape {bias_arr.shape}."
                )
        self.mask = as_class_mask(where, vocab)
        self.weights = None
        if weights is not None:
            self.weights = as_position_weights(weights, self.batch_shape, weights_name, acc)
        self.cap = logit_soft_cap is not None
        self.scale = not is_one(temperature)
        self.scalar_grads = (self.scale and differentiable(temperature)) or (
            self.cap and differentiable(logit_soft_cap)
        )
        inv_t = 1 / jnp.asarray(temperature, acc)
        cap = jnp.asarray(1.0 if logit_soft_cap is None else logit_soft_cap, acc)
        scalars = jnp.stack([inv_t, cap])
        args = [x, w, scalars] + ([] if bias_arr is None else [bias_arr])
        for a in (x, w, bias_arr, temperature, logit_soft_cap):
            if a is not None and forward_mode(a):
                raise TypeError(forward_mode_error(fname))
        # Inside shard_map, the differentiable inputs are cast to vary along
        # the same mesh axes, so that the partial cotangents of a replicated
        # input are summed (the cast's transpose is a psum); labels, the mask
        # and the weights need no cotangent from the kernel and keep their type.
        args = match_varying(*args)
        x, w, scalars = args[:3]
        bias_arr = args[3].astype(acc) if bias_arr is not None else None
        self.head = kernel.Head(x=x, w=w, bias=bias_arr, mask=self.mask, scalars=scalars)
        self.labels = labels.reshape(n)
        self.valid = labels >= 0
        return self

    def config(self, **wanted) -> kernel.Config:
        return kernel.Config(
            chunk=self.chunk,
            cap=self.cap,
            scale=self.scale,
            scalar_grads=self.scalar_grads,
            **wanted,
        )

    def run(self, cfg: kernel.Config, axis_name):
        """The kernel on this device's classes, and its terms over all classes."""
        y_local = self.labels - class_offset(self.vocab, axis_name)
        terms = kernel.local_terms(self.head, y_local, cfg)
        log_z = combine_log_partitions(terms.log_z, axis_name)
        label = total = None
        if cfg.label:
            label = terms.label if axis_name is None else lax.psum(terms.label, axis_name)
        if cfg.total:
            total = terms.total if axis_name is None else lax.psum(terms.total, axis_name)
        return terms, _Global(log_z, label, total, self.count(axis_name))

    def count(self, axis_name) -> Outcomes:
        """The number of included classes over all devices: static, or traced with its maximum."""
        most = num_classes(self.vocab, axis_name)
        if self.mask is None:
            return most
        count = jnp.sum(self.mask, dtype=jnp.int32)
        if axis_name is not None:
            count = lax.psum(count, axis_name)
        return count, most

    def reduce(self, loss: Array, reduction: str) -> Array:
        """Weights, then the reduction over the positions whose label is >= 0."""
        valid = self.valid
        if self.weights is None:
            return reduce_positions(loss, valid, reduction)
        weights = jnp.where(valid, self.weights, jnp.zeros_like(self.weights))
        if reduction == "none":
            return weighted(loss, weights)
        return reduce_positions(loss, weights, reduction)


def count_value(count: Outcomes, dtype) -> Array:
    """The number of included classes as a float (at least 1)."""
    k = count if isinstance(count, int) else count[0]
    return jnp.maximum(jnp.asarray(k, dtype), 1)


def _global_entropy(terms: kernel.Terms, log_z: Array, count: Outcomes, axis_name) -> Array:
    """The entropy over all classes from each device's own: ``Σ_k π_k H_k + H(π)``.

    ``π_k = Z_k / Z`` is device ``k``'s share of the probability (the chain
    rule of entropy: pick a device, then a class within it). A device whose
    classes are all excluded has share 0 and adds nothing.
    """
    entropy = terms.entropy
    if axis_name is not None:
        a = terms.log_z - log_z  # log π_k <= 0; -inf for an empty device
        finite = jnp.isfinite(a)
        a = jnp.where(finite, a, jnp.zeros_like(a))
        share = jnp.where(finite, jnp.exp(a), jnp.zeros_like(a))
        entropy = lax.psum(share * (entropy - a), axis_name)
    return in_range(entropy, None, log_of=count)


def _global_argmax(terms: kernel.Terms, vocab: int, axis_name) -> Array:
    """The predicted class over all devices (the smallest id on a tie), -1 if none."""
    argmax = terms.argmax
    if axis_name is None:
        return argmax
    peak = lax.stop_gradient(terms.peak)
    best = lax.pmax(peak, axis_name)
    big = np.iinfo(np.int32).max
    ids = jnp.where((peak == best) & (argmax >= 0), argmax + class_offset(vocab, axis_name), big)
    ids = lax.pmin(ids, axis_name)
    return jnp.where(ids == big, -1, ids)

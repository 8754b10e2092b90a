r"""Cross-entropy of a linear classifier's softmax, without forming the logits.

A language model's last layer maps hidden states ``x`` (N, D) to logits
``x @ w`` (N, V) over a vocabulary of V classes. At N = 8192 tokens and
V = 262144 classes those logits take 8 GiB in float32, and their gradient as
much again. :func:`linear_cross_entropy` computes the same loss and gradients
one block of classes at a time:

* forward: for each block ``w[:, j:j+C]`` the block of logits is computed,
  folded into a running log-sum-exp (the online softmax recurrence) and
  dropped; only the per-position log-partition ``log Z`` (N,) is kept;
* backward (a ``custom_vjp``): each block of logits is recomputed, turned into
  ``softmax - onehot`` with the saved ``log Z``, and multiplied out at once:
  ``dx += G @ w_blockᵀ`` accumulates over blocks, ``dw[:, j:j+C] = xᵀ @ G``
  is written block by block into the output.

The largest temporary is one (N, C) block, so the memory is
O(N·D + N·C) instead of O(N·V). The price is one extra matrix product (the
recomputation): four products of the logits' size instead of three.

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

import functools
import operator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxinfo._checks import Array, ArrayLike, AxisName, as_label_array, as_real_array, compute_dtype
from jaxinfo._collectives import class_offset, combine_log_partitions, match_varying, num_classes
from jaxinfo._reduction import Reduction, check_reduction, reduce_positions
from jaxinfo._softmax import lse_init, lse_update
from jaxinfo._units import in_range

# A block of float32 logits of about this many bytes by default: large enough
# for the matrix products to run at full speed, small enough to be a rounding
# error next to the (N, V) logits it replaces, and to stay in a CPU's last-level
# cache between the products and the elementwise work on it.
_BLOCK_BYTES = 16 * 2**20
_MIN_CHUNK = 128  # keep blocks a multiple of the lanes of a vector unit


def linear_cross_entropy(
    x: ArrayLike,
    w: ArrayLike,
    labels: ArrayLike,
    *,
    chunk_size: int | None = None,
    axis_name: AxisName | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Cross-entropy of ``softmax(x @ w)`` against integer labels, never forming ``x @ w``.

    .. math::
       H(\delta_y, Q) = \log \sum_{v} e^{x \cdot w_v} - x \cdot w_y

    Equal to ``cross_entropy_from_labels(labels, x @ w)``, but the (N, V)
    logits are computed one block of ``chunk_size`` classes at a time, in
    the forward pass and again in the backward pass (a ``custom_vjp``), so
    the memory stays O(N·(D + chunk_size)) for any vocabulary size V.

    Reverse mode only: ``jax.grad``, ``jax.vjp``, ``jax.value_and_grad`` and
    ``jax.jacrev`` work; forward mode (``jax.jvp``, ``jax.jacfwd``,
    ``jax.linearize``, ``jax.hessian``) raises a ``TypeError``. Where you
    need it, differentiate the materialised loss
    ``cross_entropy_from_labels(labels, x @ w)`` instead, at the price of the
    (N, V) logits.

    Args:
      x: hidden states, shape ``(..., D)``.
      w: classifier weights, shape ``(D, V)`` (no bias: append a column of
        ones to ``x`` and the bias as a row of ``w`` if you need one). Inside
        ``shard_map`` with ``axis_name``, this device's block of classes.
      labels: integer class ids, shape ``(...)`` (``x`` without its last
        axis). A negative label marks an ignored position: loss 0, no
        gradient. A label ``>= V`` is out of range and gives NaN.
      chunk_size: classes per block (a static int >= 1); by default about
        16 MiB of float32 logits per block, a multiple of 128 classes. V
        need not be a multiple of it.
      axis_name: for vocabulary (tensor) parallelism inside ``shard_map``:
        the mesh axis across which ``w`` is split along V in equal
        contiguous blocks. Each device passes its block ``w`` (D, V / k) and
        the full ``x`` and global ``labels`` of its positions, and gets the
        loss over all V classes. ``None``: the whole vocabulary is local.
      reduction: ``"none"`` for the per-position loss; ``"sum"`` for its sum;
        ``"mean"`` for its mean over the positions whose label is ``>= 0``
        (padding excluded), with the gradient of exactly that, and 0 (with a
        zero gradient) when no label is ``>= 0``; as for
        :func:`cross_entropy_from_labels`. With ``axis_name`` the
        per-position loss is the same on every device of that axis, so the
        reduction is over this device's positions only, and equal on every
        device of the axis.

    Returns:
      For ``reduction="none"``, the per-position loss in nats, shaped like
      ``labels``; otherwise a scalar. Float32 for bfloat16/float16 inputs
      (the products run in the input dtype and accumulate in float32),
      float64 for float64. Gradients come back in the dtypes of ``x`` and
      ``w``.

    Raises:
      ValueError: shapes that do not chain, a ``chunk_size`` below 1, or a
        ``reduction`` other than ``"none"``, ``"sum"``, ``"mean"``.
      TypeError: non-integer labels, complex or boolean ``x``/``w``, a
        ``chunk_size`` that is not an int, or a forward-mode derivative
        (``jax.jvp`` and what builds on it).

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

    References:
      Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models"
      (Cut Cross-Entropy), 2024; Milakov & Gimelshein, "Online normalizer
      calculation for softmax", 2018.
    """
    check_reduction(reduction)
    x = as_real_array(x, "x")
    w = as_real_array(w, "w")
    labels = as_label_array(labels)
    if _forward_mode(x) or _forward_mode(w):
        raise TypeError(_FORWARD_MODE_ERROR)
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
    if labels.shape != x.shape[:-1]:
        raise ValueError(
            f"labels must have the shape of x without its last axis: x has shape "
            f"{x.shape}, so labels should have shape {x.shape[:-1]}, got {labels.shape}."
        )
    num_features, vocab = w.shape
    batch_shape = labels.shape
    n = int(np.prod(batch_shape, dtype=np.int64))
    chunk = _chunk_size(chunk_size, n, vocab)
    # The matmul's dtype: the common one, or the wider (at least float32).
    dtype = x.dtype if x.dtype == w.dtype else compute_dtype(x.dtype, w.dtype)
    x = x.astype(dtype).reshape(n, num_features)
    # w keeps its own dtype: a float32 x with a bfloat16 w converts one block
    # at a time inside the loop, never the whole (D, V) matrix.
    # Inside shard_map, x and w are cast to vary along the same mesh axes, so
    # that the partial cotangents of a replicated input are summed (the cast's
    # transpose is a psum); labels need no cotangent and keep their type.
    x, w = match_varying(x, w)
    loss = _loss(x, w, labels.reshape(n), chunk, axis_name)
    return reduce_positions(loss.reshape(batch_shape), labels >= 0, reduction)


_FORWARD_MODE_ERROR = (
    "linear_cross_entropy supports reverse-mode differentiation only (jax.grad, "
    "jax.vjp, jax.jacrev): its derivative is a custom_vjp that recomputes the "
    "logits block by block. Forward mode (jax.jvp, jax.jacfwd, jax.linearize, "
    "jax.hessian) needs the materialised loss: differentiate "
    "jaxinfo.cross_entropy_from_labels(labels, x @ w) instead, at the price of "
    "the (N, V) logits."
)


def _forward_mode(a: Array) -> bool:
    """Whether ``a`` carries a tangent of ``jax.jvp`` (or of what builds on it).

    JAX's own error for forward mode through a ``custom_vjp`` names neither
    the function nor a way out, and under ``jit`` it comes only when the
    program is lowered. So the tracers that wrap ``a`` (``vmap``'s, ``jit``'s,
    reverse mode's around ``jax.jvp``'s in ``jax.hessian``) are unwrapped in
    search of a forward-mode one. Tracer types are internal to JAX: should
    they change, nothing is found, and JAX's own error stands. A tangent
    that is a partial-evaluation tracer is reverse mode by the older route
    (``jax_use_direct_linearize=False``), and is let through.
    """
    try:
        from jax._src.interpreters import ad, partial_eval
    except ImportError:  # pragma: no cover - a JAX that moved its internals
        return False
    for _ in range(64):  # a bound on nested transformations, against a cycle
        if not isinstance(a, jax.core.Tracer):
            return False
        if isinstance(a, ad.JVPTracer):
            return not isinstance(a.tangent, partial_eval.JaxprTracer)
        inner = getattr(a, "primal", None)
        a = inner if inner is not None else getattr(a, "val", None)
    return False


def _chunk_size(chunk_size: object, n: int, vocab: int) -> int:
    if chunk_size is None:
        chunk = _BLOCK_BYTES // (4 * max(n, 1))
        chunk = max(_MIN_CHUNK, chunk // _MIN_CHUNK * _MIN_CHUNK)
    else:
        if isinstance(chunk_size, bool):
            raise TypeError(f"chunk_size must be an int or None, got {chunk_size!r}.")
        try:
            chunk = operator.index(chunk_size)
        except TypeError as e:
            raise TypeError(
                f"chunk_size must be an int or None, got {chunk_size!r} of type "
                f"{type(chunk_size).__name__}."
            ) from e
        if chunk < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk}.")
    return max(1, min(chunk, vocab))


# --------------------------------------------------------------------------
# the blockwise kernel: x (N, D), w (D, V), y (N,) int32
# --------------------------------------------------------------------------


class _Block:
    """Block ``j`` of ``size`` columns out of ``vocab``: where it starts, which columns are new.

    Blocks have a fixed size (one compiled loop body). When ``size`` does not
    divide ``vocab`` the last block is moved back to start at
    ``vocab - size`` (``w`` is never padded or copied); its first ``stale``
    columns were covered by the previous block and are masked out.
    """

    def __init__(self, j: Array, size: int, vocab: int):
        first = j * size
        if vocab % size:
            self.start = jnp.minimum(first, vocab - size)
            self.stale = first - self.start
        else:
            self.start, self.stale = first, None

    def fresh(self, offset: Array | int, width: int) -> Array | None:
        """(1, width) mask of the new columns ``offset ... offset + width - 1``; None: all."""
        if self.stale is None:
            return None
        return lax.broadcasted_iota(jnp.int32, (1, width), 1) + offset >= self.stale


def _matmul(a: Array, b: Array, contract: tuple[int, int], acc: np.dtype) -> Array:
    """``a @ b`` contracting ``a``'s axis ``contract[0]`` with ``b``'s ``contract[1]``.

    No transpose is materialised; products run in the inputs' dtype and
    accumulate in ``acc`` (float32 for bfloat16 inputs).
    """
    dims = (((contract[0],), (contract[1],)), ((), ()))
    return lax.dot_general(a, b, dims, preferred_element_type=acc)


def _block_logits(x: Array, w_block: Array, acc: np.dtype) -> Array:
    """The (N, C) block of logits ``x @ w_block``.

    Every use must see the same rounded values: the running maximum, the
    exponentials shifted by it and, in the backward pass, the exponentials
    shifted by the saved log-partition. A product over one feature (D = 1)
    is, to XLA, an elementwise multiplication, which it recomputes inside
    each consumer and, on CPU, contracts with the shift ``x·w - m`` into a
    fused multiply-add whose unrounded product differs from the maximum by up
    to half an ulp of the logit: ``exp(±1e23)`` for logits of 1e30, a loss of
    ``±inf``. So one feature is padded to two with zeros, which keeps the
    product a dot, computed once (no optimization barrier or ``cond``
    survives XLA's simplification there).
    """
    if x.shape[1] == 1:
        x = jnp.concatenate([x, jnp.zeros_like(x)], axis=1)
        w_block = jnp.concatenate([w_block, jnp.zeros_like(w_block)], axis=0)
    return _matmul(x, w_block, (1, 0), acc)


def _label_mask(y_local: Array, start: Array, width: int) -> Array:
    """(N, width) one-hot of the labels among columns ``start ... start + width - 1``."""
    return lax.broadcasted_iota(jnp.int32, (1, width), 1) == (y_local - start)[:, None]


# --------------------------------------------------------------------------
# Reading and writing blocks of columns of a 16-bit float matrix on CPU
#
# XLA on CPU computes every bfloat16/float16 operation other than a few
# library calls in float32, data movement included. A dynamic slice of w
# becomes a slice of a float32 copy of the whole of w, which the compiler
# hoists out of the loop (2.4 GiB for a bfloat16 w at D = 2304, V = 262144);
# an in-place update of dw becomes a pass over the whole of dw. So, on CPU:
# the slice runs inside a (trivially true) ``cond``, whose branch the hoisting
# does not reach and where the conversion fuses into the slice; and the blocks
# of dw are staged as raw 16-bit integers (which XLA updates in place) and
# written into dw a few tens of MiB at a time, so that the passes over dw are
# few. GPUs and TPUs handle 16-bit floats natively and take the plain path;
# ``lax.platform_dependent`` picks one when the program is lowered.
# --------------------------------------------------------------------------

_FLUSH_BYTES = 64 * 2**20  # dw staged on CPU before each pass over the whole of dw


def _is_half(dtype: np.dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.floating) and jnp.dtype(dtype).itemsize == 2


def _per_platform(loop, *args, dtype: np.dtype):
    """Runs ``loop(*args, cpu=...)`` with the CPU variant where it matters.

    ``args`` are arrays (they are traced); static options go in a partial.
    """
    if not _is_half(dtype):
        return loop(*args, cpu=False)
    return lax.platform_dependent(
        *args,
        cpu=functools.partial(loop, cpu=True),
        default=functools.partial(loop, cpu=False),
    )


def _group_size(most: int, vocab: int, chunk: int) -> int:
    """Blocks per group: at most ``most``, a divisor of the number of blocks if possible.

    Groups that tile the vocabulary exactly leave no overlap to compute twice.
    """
    blocks = vocab // chunk
    most = max(1, min(most, blocks))
    if vocab % chunk == 0:
        most = max(k for k in range(1, most + 1) if blocks % k == 0)
    return most


def _take_columns(w: Array, start: Array, width: int, cpu: bool) -> Array:
    """``w[:, start:start + width]``."""

    def take(w):
        return lax.dynamic_slice_in_dim(w, start, width, axis=1)

    if not cpu:
        return take(w)

    def never(w):
        return jnp.zeros_like(w, shape=(w.shape[0], width))

    return lax.cond(start >= 0, take, never, w)


# --------------------------------------------------------------------------
# forward and backward passes
# --------------------------------------------------------------------------


def _loss(x, w, y, chunk, axis_name):
    """Per-position loss from the local log-partition and label logit.

    The ``custom_vjp`` below sees only this device's classes and no
    collective; the shards are combined here with ordinary JAX operations,
    whose derivatives JAX takes itself under either of ``shard_map``'s typing
    modes.
    """
    vocab = w.shape[1]
    y_local = y - class_offset(vocab, axis_name)
    log_z, label_logit = _local_terms(x, w, y_local, chunk)
    log_z = combine_log_partitions(log_z, axis_name)
    if axis_name is not None:
        label_logit = lax.psum(label_logit, axis_name)
    loss = in_range(log_z - label_logit, None)  # -log q_y >= 0, also after rounding
    loss = jnp.where(y >= num_classes(vocab, axis_name), jnp.nan, loss)
    return jnp.where(y < 0, 0, loss)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _local_terms(x: Array, w: Array, y_local: Array, chunk: int) -> tuple[Array, Array]:
    """``(log Σ_v exp(x·w_v), x·w_y)`` over the local classes, one block at a time.

    ``y_local`` is the label's column in ``w``; outside ``[0, V)`` the label
    logit is 0.
    """
    loop = functools.partial(_forward_loop, chunk=chunk)
    return _per_platform(loop, x, w, y_local, dtype=w.dtype)


def _forward_loop(x, w, y_local, *, chunk, cpu):
    """Online log-sum-exp and label logit over blocks of ``chunk`` columns."""
    vocab = w.shape[1]
    acc = compute_dtype(x.dtype)

    def body(j, carry):
        m, s, label_logit = carry
        block = _Block(j, chunk, vocab)
        fresh = block.fresh(0, chunk)
        w_block = _take_columns(w, block.start, chunk, cpu).astype(x.dtype)
        logits = _block_logits(x, w_block, acc)
        if fresh is not None:
            logits = jnp.where(fresh, logits, -jnp.inf)
        m, s = lse_update(m, s, logits)
        # The label's logit, if it is in this block: a gather of N values, not
        # a masked pass over the block.
        col = y_local - block.start
        first_new = 0 if block.stale is None else block.stale
        here = (col >= first_new) & (col < chunk)
        picked = jnp.take_along_axis(
            logits, jnp.clip(col, 0, chunk - 1)[:, None], axis=1, mode="promise_in_bounds"
        )[:, 0]
        label_logit = label_logit + jnp.where(here, picked, 0)
        return m, s, label_logit

    zero = jnp.zeros_like(y_local, dtype=acc)
    m, s = lse_init(zero)
    m, s, label_logit = lax.fori_loop(0, -(-vocab // chunk), body, (m, s, zero))
    return m + jnp.log(s), label_logit


def _local_terms_fwd(x, w, y_local, chunk):
    log_z, label_logit = _local_terms(x, w, y_local, chunk)
    return (log_z, label_logit), (x, w, y_local, log_z)


def _local_terms_bwd(chunk, residuals, cotangents):
    x, w, y_local, log_z = residuals
    ct_log_z, ct_label = cotangents
    acc = compute_dtype(x.dtype)
    ct_log_z = jnp.asarray(ct_log_z, acc)[:, None]
    ct_label = jnp.asarray(ct_label, acc)[:, None]
    loop = functools.partial(_backward_loop, chunk=chunk)
    dx, dw = _per_platform(loop, x, w, y_local, log_z[:, None], ct_log_z, ct_label, dtype=w.dtype)
    return dx.astype(x.dtype), dw, None


_local_terms.defvjp(_local_terms_fwd, _local_terms_bwd)


def _backward_loop(x, w, y_local, log_z, ct_log_z, ct_label, *, chunk, cpu):
    """``dx = Σ G @ w_blockᵀ`` (accumulated) and ``dw[:, block] = xᵀ @ G`` (written).

    ``G`` is the cotangent of a block of logits: ``ct_log_z · softmax_local +
    ct_label · onehot``, with the softmax recomputed from the saved ``log_z``.

    Blocks of ``chunk`` columns are grouped in groups of ``per_group``; each
    group's part of dw is staged, then written into dw at once. Off CPU, or
    for 32/64-bit w, a group is one block and the staging is a formality.
    """
    num_features, vocab = w.shape
    acc = compute_dtype(x.dtype)
    per_group = 1
    if cpu:
        per_group = _group_size(_FLUSH_BYTES // (2 * max(num_features, 1) * chunk), vocab, chunk)
    width = per_group * chunk
    staged_dtype = jnp.uint16 if cpu else w.dtype

    def group_body(k, carry):
        dx, dw = carry
        group = _Block(k, width, vocab)

        def block_body(i, carry):
            dx, staged = carry
            offset = i * chunk
            start = group.start + offset
            fresh = group.fresh(offset, chunk)
            w_block = _take_columns(w, start, chunk, cpu).astype(x.dtype)
            logits = _block_logits(x, w_block, acc)
            p = jnp.exp(logits - log_z)
            hit = _label_mask(y_local, start, chunk)
            grad = (ct_log_z * p + jnp.where(hit, ct_label, 0)).astype(x.dtype)
            # Columns of an overlapping last group that the previous group
            # covered (see _Block): their dw is computed again and written
            # again (no read of dw, so XLA updates it in place), but they must
            # not count twice in dx.
            grad_x = grad if fresh is None else jnp.where(fresh, grad, 0)
            dx = dx + _matmul(grad_x, w_block, (1, 1), acc)
            dw_block = _matmul(x, grad, (0, 0), acc).astype(w.dtype)
            if cpu:
                dw_block = lax.bitcast_convert_type(dw_block, staged_dtype)
            staged = lax.dynamic_update_slice_in_dim(staged, dw_block, offset, axis=1)
            return dx, staged

        staged = jnp.zeros_like(w, shape=(num_features, width), dtype=staged_dtype)
        dx, staged = lax.fori_loop(0, per_group, block_body, (dx, staged))
        # On CPU dw is updated through its bits too: XLA then writes the
        # group in place, where a 16-bit float update would take a copy of dw.
        dw = lax.bitcast_convert_type(dw, staged_dtype) if cpu else dw
        dw = lax.dynamic_update_slice_in_dim(dw, staged, group.start, axis=1)
        dw = lax.bitcast_convert_type(dw, w.dtype) if cpu else dw
        return dx, dw

    dx = jnp.zeros_like(x, dtype=acc)
    dw = jnp.zeros_like(w)
    return lax.fori_loop(0, -(-vocab // width), group_body, (dx, dw))

r"""The blockwise kernel behind the linear-head losses: one pass over the classes, never (N, V).

What lives here: the ``custom_vjp`` :func:`local_terms`, which streams over
blocks of a classifier's columns and returns per-position statistics of
``softmax(z)`` over this device's classes, and its backward pass, which
recomputes each block of logits and multiplies its cotangent out at once.
Also the helpers that make that loop fast and small on every platform (block
sizes, a ragged last block, 16-bit floats on XLA:CPU).

What does not: argument checks, how the statistics combine into a loss, and
the combination across devices of ``axis_name`` (``_linear.py``; every
collective is outside the ``custom_vjp``, so autodiff handles them).

The logits of a block of classes ``v`` are

.. math::
   z_v = g(x \cdot w_v + b_v) / T, \qquad
   g(u) = u \ \text{or}\ c \tanh(u / c) \ \text{(soft-capping)},

and ``-inf`` for an excluded class. One forward pass folds each block into
the running maximum ``m``, the sum ``s = Σ e^{z-m}`` (the online softmax
recurrence) and, where asked for, ``t = Σ e^{z-m} (z - m)``, so that

.. math::
   \log Z = m + \log s, \qquad H = \log s - t / s

(the entropy relative to the running maximum: no cancellation of two large
numbers when the logits are large), the label's logit, the sum of the
included logits (label smoothing), and the argmax. The backward pass forms

.. math::
   \frac{\partial L}{\partial z_v} = \bar{\ell}_Z\, p_v + \bar{\ell}_y [v = y]
     + \bar{\ell}_\Sigma [v \text{ included}] - \bar{\ell}_H\, p_v (\log p_v + H)

for a block at a time and chains it through ``g`` and ``T``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxinfo._checks import Array, compute_dtype
from jaxinfo._collectives import match_varying
from jaxinfo._softmax import lse_init

# A block of float32 logits of about this many bytes by default: large enough
# for the matrix products to run at full speed, small enough to be a rounding
# error next to the (N, V) logits it replaces, and to stay in a CPU's last-level
# cache between the products and the elementwise work on it.
BLOCK_BYTES = 16 * 2**20
MIN_CHUNK = 128  # keep blocks a multiple of the lanes of a vector unit
FLUSH_BYTES = 64 * 2**20  # dw staged on CPU before each pass over the whole of dw


@dataclasses.dataclass(frozen=True)
class Config:
    """What one call computes: static, so each combination is its own program.

    Attributes:
      chunk: classes per block.
      label: the label's logit is wanted.
      total: the sum of the included logits is wanted (label smoothing).
      entropy: the entropy of the local softmax is wanted.
      argmax: the local maximum and its class are wanted.
      cap: the logits are soft-capped.
      scale: the logits are divided by a temperature.
      scalar_grads: the temperature and cap are arrays, and get gradients.
    """

    chunk: int
    label: bool = True
    total: bool = False
    entropy: bool = False
    argmax: bool = False
    cap: bool = False
    scale: bool = False
    scalar_grads: bool = False


class Terms(NamedTuple):
    """Per-position statistics of the softmax over one device's classes; None: not asked for."""

    log_z: Array
    label: Array | None
    total: Array | None
    entropy: Array | None
    peak: Array | None
    argmax: Array | None


class Head(NamedTuple):
    """The arrays that define the logits: ``x`` (N, D), ``w`` (D, V) and the optional rest.

    ``bias`` (V,) in the accumulation dtype, ``mask`` (V,) boolean, and
    ``scalars`` = ``(1 / T, c)`` in the accumulation dtype (either may be a
    placeholder when :class:`Config` says it is unused).
    """

    x: Array
    w: Array
    bias: Array | None
    mask: Array | None
    scalars: Array


def chunk_size(requested: int | None, n: int, vocab: int) -> int:
    """The block width: ``requested``, or about ``BLOCK_BYTES`` of float32 logits."""
    if requested is None:
        chunk = BLOCK_BYTES // (4 * max(n, 1))
        chunk = max(MIN_CHUNK, chunk // MIN_CHUNK * MIN_CHUNK)
    else:
        chunk = requested
    return max(1, min(chunk, vocab))


# --------------------------------------------------------------------------
# blocks of columns
# --------------------------------------------------------------------------


class Block:
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


def matmul(a: Array, b: Array, contract: tuple[int, int], acc: np.dtype) -> Array:
    """``a @ b`` contracting ``a``'s axis ``contract[0]`` with ``b``'s ``contract[1]``.

    No transpose is materialised; products run in the inputs' dtype and
    accumulate in ``acc`` (float32 for bfloat16 inputs).
    """
    dims = (((contract[0],), (contract[1],)), ((), ()))
    return lax.dot_general(a, b, dims, preferred_element_type=acc)


def block_products(x: Array, w_block: Array, acc: np.dtype) -> Array:
    """The (N, C) block of products ``x @ w_block``.

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
    return matmul(x, w_block, (1, 0), acc)


class _Logits(NamedTuple):
    z: Array  # (N, C) logits, -inf where excluded
    keep: Array | None  # (1, C) included classes (mask and fresh), None: all
    tanh: Array | None  # tanh(u / c) where soft-capped, for the derivative
    u: Array | None  # x·w + b where the cap's derivative is wanted


def _logits(head: Head, start: Array, width: int, keep: Array | None, cfg: Config, cpu: bool):
    """The block ``start ... start + width - 1`` of logits, transformed and masked."""
    acc = compute_dtype(head.x.dtype)
    w_block = take_columns(head.w, start, width, cpu).astype(head.x.dtype)
    u = block_products(head.x, w_block, acc)
    if head.bias is not None:
        u = u + lax.dynamic_slice_in_dim(head.bias, start, width)[None, :]
    if head.mask is not None:
        mask = lax.dynamic_slice_in_dim(head.mask, start, width)[None, :]
        keep = mask if keep is None else keep & mask
    inv_t, cap = head.scalars[0], head.scalars[1]
    th = None
    z = u
    if cfg.cap:
        th = jnp.tanh(u / cap)
        z = cap * th
    if cfg.scale:
        z = z * inv_t
    if keep is not None:
        z = jnp.where(keep, z, -jnp.inf)
    return _Logits(z, keep, th, u if cfg.cap and cfg.scalar_grads else None), w_block


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


def is_half(dtype: np.dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.floating) and jnp.dtype(dtype).itemsize == 2


def per_platform(loop, *args, dtype: np.dtype):
    """Runs ``loop(*args, cpu=...)`` with the CPU variant where it matters.

    ``args`` are arrays (they are traced); static options go in a partial.
    """
    if not is_half(dtype):
        return loop(*args, cpu=False)
    return lax.platform_dependent(
        *args,
        cpu=functools.partial(loop, cpu=True),
        default=functools.partial(loop, cpu=False),
    )


def group_size(most: int, vocab: int, chunk: int) -> int:
    """Blocks per group: at most ``most``, a divisor of the number of blocks if possible.

    Groups that tile the vocabulary exactly leave no overlap to compute twice.
    """
    blocks = vocab // chunk
    most = max(1, min(most, blocks))
    if vocab % chunk == 0:
        most = max(k for k in range(1, most + 1) if blocks % k == 0)
    return most


def take_columns(w: Array, start: Array, width: int, cpu: bool) -> Array:
    """``w[:, start:start + width]``."""

    def take(w):
        return lax.dynamic_slice_in_dim(w, start, width, axis=1)

    if not cpu:
        return take(w)

    def never(w):
        return jnp.zeros_like(w, shape=(w.shape[0], width))

    return lax.cond(start >= 0, take, never, w)


# --------------------------------------------------------------------------
# the custom_vjp
# --------------------------------------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def local_terms(head: Head, y_local: Array, cfg: Config) -> Terms:
    """Per-position statistics of ``softmax(z)`` over the local classes, one block at a time.

    ``y_local`` is the label's column in ``w``; outside ``[0, V)`` the label
    logit is 0. ``peak`` and ``argmax`` carry no derivative.
    """
    return per_platform(
        functools.partial(_forward_loop, cfg=cfg), head, y_local, dtype=head.w.dtype
    )


def _forward_loop(head: Head, y_local: Array, *, cfg: Config, cpu: bool) -> Terms:
    """Online log-sum-exp and the other statistics over blocks of ``cfg.chunk`` columns."""
    vocab = head.w.shape[1]
    chunk = cfg.chunk
    acc = compute_dtype(head.x.dtype)
    zero = jnp.zeros(y_local.shape, acc)

    def body(j, carry):
        m, s, t, label, total, argmax = carry
        block = Block(j, chunk, vocab)
        blk, _ = _logits(head, block.start, chunk, block.fresh(0, chunk), cfg, cpu)
        z = blk.z
        z_max = jnp.max(z, axis=1)
        m_new = jnp.maximum(m, z_max)
        scale = jnp.exp(m - m_new)
        e = jnp.exp(z - m_new[:, None])
        if cfg.entropy:
            # Σ e^{z-m}(z-m) moved to the new maximum; a zero sum stays zero
            # (its m may be the float minimum, m - m_new then -inf).
            shift = jnp.where(s > 0, s * (m - m_new), 0)
            d = jnp.where(e > 0, z - m_new[:, None], 0)
            t = (t + shift) * scale + jnp.sum(e * d, axis=1)
        s = s * scale + jnp.sum(e, axis=1)
        if cfg.label:
            # The label's logit, if it is in this block: a gather of N values,
            # not a masked pass over the block.
            col = y_local - block.start
            first_new = 0 if block.stale is None else block.stale
            here = (col >= first_new) & (col < chunk)
            picked = jnp.take_along_axis(
                z, jnp.clip(col, 0, chunk - 1)[:, None], axis=1, mode="promise_in_bounds"
            )[:, 0]
            label = label + jnp.where(here, picked, 0)
        if cfg.total:
            included = z if blk.keep is None else jnp.where(blk.keep, z, 0)
            total = total + jnp.sum(included, axis=1)
        if cfg.argmax:
            best = jnp.argmax(z, axis=1).astype(jnp.int32) + block.start
            argmax = jnp.where(z_max > m, best, argmax)
        return m_new, s, t, label, total, argmax

    m, s = lse_init(zero)
    none = jnp.full(y_local.shape, -1, jnp.int32)
    carry = varying_like((m, s, zero, zero, zero, none), head, y_local)
    m, s, t, label, total, argmax = lax.fori_loop(0, -(-vocab // chunk), body, carry)
    log_z = m + jnp.log(s)
    entropy = None
    if cfg.entropy:
        positive = s > 0
        safe_s = jnp.where(positive, s, 1)
        entropy = jnp.where(positive, jnp.log(safe_s) - t / safe_s, 0)
    return Terms(
        log_z=log_z,
        label=label if cfg.label else None,
        total=total if cfg.total else None,
        entropy=entropy,
        peak=m if cfg.argmax else None,
        argmax=argmax if cfg.argmax else None,
    )


def varying_like(carry: tuple, *others) -> tuple:
    """A loop's initial carry, typed to vary along every mesh axis its inputs vary on.

    Inside ``shard_map`` a loop's carry must keep its type; what it
    accumulates varies along the axes of ``x``, ``w``, the labels and the
    cotangents, so fresh zeros are cast to those axes first (outside
    ``shard_map``, nothing happens).
    """
    others = [a for a in jax.tree.leaves(others) if a is not None]
    return tuple(match_varying(*carry, *others)[: len(carry)])


def _local_terms_fwd(head, y_local, cfg):
    terms = local_terms(head, y_local, cfg)
    return terms, (head, y_local, terms.log_z, terms.entropy)


def _local_terms_bwd(cfg, residuals, cotangents):
    head, y_local, log_z, entropy = residuals
    acc = compute_dtype(head.x.dtype)

    def column(ct):
        return None if ct is None else jnp.asarray(ct, acc)[:, None]

    cts = (
        column(cotangents.log_z),
        column(cotangents.label) if cfg.label else None,
        column(cotangents.total) if cfg.total else None,
        column(cotangents.entropy) if cfg.entropy else None,
    )
    saved = (log_z[:, None], None if entropy is None else entropy[:, None])
    loop = functools.partial(_backward_loop, cfg=cfg)
    grads = per_platform(loop, head, y_local, saved, cts, dtype=head.w.dtype)
    return grads, None


local_terms.defvjp(_local_terms_fwd, _local_terms_bwd)


def _block_cotangent(blk: _Logits, hit, saved, cts, cfg: Config):
    """``∂L/∂z`` of one block of logits (zero at excluded classes)."""
    log_z, entropy = saved
    ct_log_z, ct_label, ct_total, ct_entropy = cts
    log_p = blk.z - log_z
    p = jnp.exp(log_p)
    g = ct_log_z * p
    if ct_label is not None:
        g = g + jnp.where(hit, ct_label, 0)
    if ct_total is not None:
        g = g + ct_total
    if ct_entropy is not None:
        g = g - ct_entropy * (p * (jnp.where(p > 0, log_p, 0) + entropy))
    if blk.keep is not None:
        g = jnp.where(blk.keep, g, 0)
    return g


def _chain(g_z: Array, blk: _Logits, head: Head, cfg: Config):
    """``∂L/∂u`` from ``∂L/∂z`` through the temperature and the cap; and the scalars' parts.

    Returns ``(g_u, g_inv_t, g_cap)``, the last two (N, C) arrays or None.
    """
    inv_t, cap = head.scalars[0], head.scalars[1]
    g_inv_t = g_cap = None
    if cfg.scale:
        if cfg.scalar_grads:
            # z = g(u)·(1/T): ∂z/∂(1/T) = g(u) = z·T, where z is finite.
            finite = blk.z if blk.keep is None else jnp.where(blk.keep, blk.z, 0)
            g_inv_t = g_z * finite / inv_t
        g_z = g_z * inv_t
    if cfg.cap:
        if cfg.scalar_grads:
            # ∂(c·tanh(u/c))/∂c = tanh(u/c) - (u/c)·(1 - tanh²(u/c)).
            th = blk.tanh
            g_cap = g_z * (th - blk.u / cap * (1 - th * th))
        g_z = g_z * (1 - blk.tanh * blk.tanh)
    return g_z, g_inv_t, g_cap


def _backward_loop(head: Head, y_local, saved, cts, *, cfg: Config, cpu: bool):
    """``dx = Σ G @ w_blockᵀ`` (accumulated), ``dw[:, block] = xᵀ @ G`` and ``db[block]`` (written).

    Blocks of ``cfg.chunk`` columns are grouped in groups of ``per_group``;
    each group's part of dw is staged, then written into dw at once. Off CPU,
    or for 32/64-bit w, a group is one block and the staging is a formality.
    """
    x, w = head.x, head.w
    num_features, vocab = w.shape
    chunk = cfg.chunk
    acc = compute_dtype(x.dtype)
    per_group = 1
    if cpu:
        per_group = group_size(FLUSH_BYTES // (2 * max(num_features, 1) * chunk), vocab, chunk)
    width = per_group * chunk
    staged_dtype = jnp.uint16 if cpu else w.dtype
    with_bias = head.bias is not None

    def group_body(k, carry):
        dx, dw, db, d_scalars = carry
        group = Block(k, width, vocab)

        def block_body(i, carry):
            dx, staged, db, d_scalars = carry
            offset = i * chunk
            start = group.start + offset
            fresh = group.fresh(offset, chunk)
            # Columns of an overlapping last group that the previous group
            # covered (see Block) are computed again in full, so that their
            # dw and db are written again with the same values (no read of dw,
            # so XLA updates it in place); they must not count twice in the
            # sums over classes (dx, the scalars).
            blk, w_block = _logits(head, start, chunk, None, cfg, cpu)
            hit = lax.broadcasted_iota(jnp.int32, (1, chunk), 1) == (y_local - start)[:, None]
            g_z = _block_cotangent(blk, hit, saved, cts, cfg)
            g_u, g_inv_t, g_cap = _chain(g_z, blk, head, cfg)
            grad = g_u.astype(x.dtype)
            grad_x = grad if fresh is None else jnp.where(fresh, grad, 0)
            dx = dx + matmul(grad_x, w_block, (1, 1), acc)
            if cfg.scalar_grads:
                parts = [
                    jnp.zeros((), acc)
                    if g is None
                    else jnp.sum(g if fresh is None else jnp.where(fresh, g, 0))
                    for g in (g_inv_t, g_cap)
                ]
                d_scalars = d_scalars + jnp.stack(parts)
            if with_bias:
                db = lax.dynamic_update_slice_in_dim(db, jnp.sum(g_u, axis=0), start, axis=0)
            dw_block = matmul(x, grad, (0, 0), acc).astype(w.dtype)
            if cpu:
                dw_block = lax.bitcast_convert_type(dw_block, staged_dtype)
            staged = lax.dynamic_update_slice_in_dim(staged, dw_block, offset, axis=1)
            return dx, staged, db, d_scalars

        staged = jnp.zeros_like(w, shape=(num_features, width), dtype=staged_dtype)
        dx, staged, db, d_scalars = lax.fori_loop(
            0, per_group, block_body, (dx, staged, db, d_scalars)
        )
        # On CPU dw is updated through its bits too: XLA then writes the
        # group in place, where a 16-bit float update would take a copy of dw.
        dw = lax.bitcast_convert_type(dw, staged_dtype) if cpu else dw
        dw = lax.dynamic_update_slice_in_dim(dw, staged, group.start, axis=1)
        dw = lax.bitcast_convert_type(dw, w.dtype) if cpu else dw
        return dx, dw, db, d_scalars

    dx = jnp.zeros_like(x, dtype=acc)
    dw = jnp.zeros_like(w)
    db = jnp.zeros((vocab,), acc) if with_bias else jnp.zeros((0,), acc)
    d_scalars = jnp.zeros((2,), acc)
    carry = varying_like((dx, dw, db, d_scalars), head, y_local, *saved, *cts)
    dx, dw, db, d_scalars = lax.fori_loop(0, -(-vocab // width), group_body, carry)
    return Head(
        x=dx.astype(x.dtype),
        w=dw,
        bias=db.astype(head.bias.dtype) if with_bias else None,
        mask=None,
        scalars=d_scalars.astype(head.scalars.dtype)
        if cfg.scalar_grads
        else jnp.zeros_like(head.scalars),
    )

r"""The blockwise kernels behind the divergences between two linear heads, never (N, V).

Two heads over one vocabulary, a teacher ``P`` with logits ``z_p = x_p w_p / T``
and a student ``Q`` with ``z_q = x_q w_q / T``, are compared one block of
classes at a time. What lives here:

* :func:`statistics`: one pass over the blocks, folding each into the running
  maxima and sums of both softmaxes (their log-partitions) and, for the KL
  divergence, the running ``A = Σ e^{z_p - m_p} ((z_p - m_p) - (z_q - m_q))``,
  kept relative to the running maxima ``m`` so that it loses no digits:

  .. math::
     D(P \| Q) = A / s_p - \log s_p + \log s_q;

* :func:`mixture_terms`: a second pass, for the Jensen–Shannon divergence,
  once the log-partitions are known: ``Σ p (log p - log m)`` and
  ``Σ q (log q - log m)`` with ``m = β p + (1 - β) q`` (the mixture's
  logarithm does not decompose into running sums, so it needs the
  normalisers first);
* :func:`carrier`: a ``custom_vjp`` whose value is 0 and whose derivative is
  that of the divergence with respect to both heads, computed in one backward
  pass from the per-position statistics of the forward passes:

  .. math::
     \frac{\partial D(P\|Q)}{\partial z_{p,v}} = p_v (\log p_v - \log q_v - D), \qquad
     \frac{\partial D(P\|Q)}{\partial z_{q,v}} = q_v - p_v,

  and for the Jensen–Shannon divergence
  ``β p_v (log p_v - log m_v - D(P‖M))`` and
  ``(1 - β) q_v (log q_v - log m_v - D(Q‖M))``. A head whose arrays are
  not differentiated (a frozen teacher under ``stop_gradient``) gets no
  gradient products at all (``symbolic_zeros``).

What does not: argument checks, and the combination of per-device statistics
under ``axis_name`` (``_linear_pair.py``). The block machinery (ragged last
blocks, 16-bit floats on XLA:CPU) is ``_linear_kernel.py``'s.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxinfo._checks import Array, compute_dtype
from jaxinfo._linear_kernel import (
    FLUSH_BYTES,
    Block,
    block_products,
    group_size,
    matmul,
    per_platform,
    take_columns,
    varying_like,
)
from jaxinfo._softmax import lse_init


@dataclasses.dataclass(frozen=True)
class Config:
    """Static choices of one call.

    Attributes:
      chunk: classes per block.
      kind: ``"kl"`` or ``"js"``.
      scale: the logits are divided by a temperature.
      scalar_grads: the temperature is an array and gets its gradient.
    """

    chunk: int
    kind: str
    scale: bool = False
    scalar_grads: bool = False


class Pair(NamedTuple):
    """The two heads: ``x_p`` (N, D_p), ``w_p`` (D_p, V), ``x_q`` (N, D_q), ``w_q`` (D_q, V).

    ``mask`` (V,) is boolean or None; ``inv_t`` is ``1 / T`` (a scalar in the
    accumulation dtype).
    """

    x_p: Array
    w_p: Array
    x_q: Array
    w_q: Array
    mask: Array | None
    inv_t: Array


class Coefficients(NamedTuple):
    """Per-position statistics over all classes that the backward pass needs (no derivative).

    ``log_z_p``, ``log_z_q``: the log-partitions; ``d_p``, ``d_q``: ``D(P‖Q)``
    and 0 for the KL divergence, ``D(P‖M)`` and ``D(Q‖M)`` for the
    Jensen–Shannon divergence; ``beta``: the mixture weight (a scalar).
    """

    log_z_p: Array
    log_z_q: Array
    d_p: Array
    d_q: Array
    beta: Array


def _blocks(pair: Pair, start, width: int, keep, cfg: Config, cpu: bool):
    """Both heads' logits over columns ``start ... start + width - 1``, masked."""
    acc = compute_dtype(pair.x_p.dtype, pair.x_q.dtype)
    if pair.mask is not None:
        mask = lax.dynamic_slice_in_dim(pair.mask, start, width)[None, :]
        keep = mask if keep is None else keep & mask
    out = []
    for x, w in ((pair.x_p, pair.w_p), (pair.x_q, pair.w_q)):
        w_block = take_columns(w, start, width, cpu).astype(x.dtype)
        z = block_products(x, w_block, acc).astype(acc)
        if cfg.scale:
            z = z * pair.inv_t
        if keep is not None:
            z = jnp.where(keep, z, -jnp.inf)
        out.append((z, w_block))
    return out, keep


# --------------------------------------------------------------------------
# forward passes (not differentiated: the carrier holds the derivative)
# --------------------------------------------------------------------------


def statistics(pair: Pair, cfg: Config) -> tuple[Array, Array, Array | None]:
    """``(log Z_p, log Z_q, D(P‖Q) or None)`` over the local classes."""
    loop = functools.partial(_statistics_loop, cfg=cfg)
    return per_platform(loop, pair, dtype=_half_dtype(pair))


def _half_dtype(pair: Pair):
    """The dtype that decides the CPU variant: a 16-bit ``w`` of either head."""
    for w in (pair.w_p, pair.w_q):
        if jnp.dtype(w.dtype).itemsize == 2:
            return w.dtype
    return pair.w_p.dtype


def _statistics_loop(pair: Pair, *, cfg: Config, cpu: bool):
    vocab = pair.w_p.shape[1]
    chunk = cfg.chunk
    acc = compute_dtype(pair.x_p.dtype, pair.x_q.dtype)
    zero = jnp.zeros(pair.x_p.shape[:1], acc)
    kl = cfg.kind == "kl"

    def body(j, carry):
        m_p, s_p, m_q, s_q, a = carry
        block = Block(j, chunk, vocab)
        ((z_p, _), (z_q, _)), _ = _blocks(pair, block.start, chunk, block.fresh(0, chunk), cfg, cpu)
        new_p = jnp.maximum(m_p, jnp.max(z_p, axis=1))
        new_q = jnp.maximum(m_q, jnp.max(z_q, axis=1))
        scale_p = jnp.exp(m_p - new_p)
        e_p = jnp.exp(z_p - new_p[:, None])
        if kl:
            # Σ e^{z_p - m_p}((z_p - m_p) - (z_q - m_q)) moved to the new maxima;
            # an empty sum stays 0.
            shift = jnp.where(s_p > 0, s_p * ((m_p - new_p) - (m_q - new_q)), 0)
            d = (z_p - new_p[:, None]) - (z_q - new_q[:, None])
            a = (a + shift) * scale_p + jnp.sum(jnp.where(e_p > 0, e_p * d, 0), axis=1)
        s_p = s_p * scale_p + jnp.sum(e_p, axis=1)
        s_q = s_q * jnp.exp(m_q - new_q) + jnp.sum(jnp.exp(z_q - new_q[:, None]), axis=1)
        return new_p, s_p, new_q, s_q, a

    m_p, s_p = lse_init(zero)
    m_q, s_q = lse_init(zero)
    carry = varying_like((m_p, s_p, m_q, s_q, zero), pair)
    m_p, s_p, m_q, s_q, a = lax.fori_loop(0, -(-vocab // chunk), body, carry)
    log_z_p, log_z_q = m_p + jnp.log(s_p), m_q + jnp.log(s_q)
    if not kl:
        return log_z_p, log_z_q, None
    positive = s_p > 0
    safe = jnp.where(positive, s_p, 1)
    divergence = jnp.where(positive, a / safe - jnp.log(safe) + jnp.log(s_q), 0)
    return log_z_p, log_z_q, divergence


def _log_mixture(log_p: Array, log_q: Array, beta: Array) -> Array:
    """``log(β p + (1 - β) q)``, exact at β = 0 and 1."""
    with_p = jnp.where(beta > 0, jnp.log(jnp.where(beta > 0, beta, 1)) + log_p, -jnp.inf)
    with_q = jnp.where(beta < 1, jnp.log1p(-jnp.where(beta < 1, beta, 0)) + log_q, -jnp.inf)
    return jnp.logaddexp(with_p, with_q)


def _p_log_ratio(p: Array, log_p: Array, log_other: Array) -> Array:
    """``p (log p - log other)``, 0 where ``p`` is 0."""
    return jnp.where(p > 0, p * (jnp.where(p > 0, log_p, 0) - log_other), 0)


def mixture_terms(pair: Pair, log_z_p: Array, log_z_q: Array, beta: Array, cfg: Config):
    """``(Σ p (log p - log m), Σ q (log q - log m))`` over the local classes."""
    loop = functools.partial(_mixture_loop, cfg=cfg)
    return per_platform(loop, pair, log_z_p, log_z_q, beta, dtype=_half_dtype(pair))


def _mixture_loop(pair: Pair, log_z_p, log_z_q, beta, *, cfg: Config, cpu: bool):
    vocab = pair.w_p.shape[1]
    chunk = cfg.chunk
    acc = compute_dtype(pair.x_p.dtype, pair.x_q.dtype)
    zero = jnp.zeros(pair.x_p.shape[:1], acc)

    def body(j, carry):
        t_p, t_q = carry
        block = Block(j, chunk, vocab)
        ((z_p, _), (z_q, _)), _ = _blocks(pair, block.start, chunk, block.fresh(0, chunk), cfg, cpu)
        log_p, log_q = z_p - log_z_p[:, None], z_q - log_z_q[:, None]
        log_m = _log_mixture(log_p, log_q, beta)
        t_p = t_p + jnp.sum(_p_log_ratio(jnp.exp(log_p), log_p, log_m), axis=1)
        t_q = t_q + jnp.sum(_p_log_ratio(jnp.exp(log_q), log_q, log_m), axis=1)
        return t_p, t_q

    carry = varying_like((zero, zero), pair, log_z_p, log_z_q)
    return lax.fori_loop(0, -(-vocab // chunk), body, carry)


# --------------------------------------------------------------------------
# the carrier of the derivative
# --------------------------------------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def carrier(pair: Pair, coefficients: Coefficients, cfg: Config) -> Array:
    """0 per position; its derivative is the divergence's (see the module docstring)."""
    acc = compute_dtype(pair.x_p.dtype, pair.x_q.dtype)
    # Typed to vary like the inputs inside shard_map: an invariant constant
    # would make the caller's psum a multiplication by the number of devices,
    # and its transpose would scale the cotangent by it.
    (zero,) = varying_like((jnp.zeros(pair.x_p.shape[:1], acc),), pair, coefficients)
    return zero


class _Wanted(NamedTuple):
    """The residuals: each head's arrays, or None where that head is not differentiated."""

    pair: Pair
    coefficients: Coefficients
    p: bool | None
    q: bool | None
    t: bool | None


def _carrier_fwd(pair, coefficients, cfg):
    value = jax.tree.map(lambda a: a.value, pair)
    coef = jax.tree.map(lambda a: a.value, coefficients)
    perturbed = jax.tree.map(lambda a: a.perturbed, pair)
    head_p = perturbed.x_p or perturbed.w_p
    head_q = perturbed.x_q or perturbed.w_q
    # Python bools are not residuals: presence (an empty tuple) or None encodes them.
    flag = lambda b: () if b else None  # noqa: E731
    out = carrier(value, coef, cfg)
    return out, _Wanted(value, coef, flag(head_p), flag(head_q), flag(perturbed.inv_t))


def _carrier_bwd(cfg, residuals, ct):
    pair, coef = residuals.pair, residuals.coefficients
    if isinstance(ct, jax.custom_derivatives.SymbolicZero):
        return Pair(None, None, None, None, None, None), None
    want_p, want_q = residuals.p is not None, residuals.q is not None
    want_t = residuals.t is not None and cfg.scalar_grads and cfg.scale
    acc = compute_dtype(pair.x_p.dtype, pair.x_q.dtype)
    ct = jnp.asarray(ct, acc)[:, None]
    loop = functools.partial(_backward_loop, cfg=cfg, want=(want_p, want_q, want_t))
    dx_p, dw_p, dx_q, dw_q, d_inv_t = per_platform(loop, pair, coef, ct, dtype=_half_dtype(pair))
    grads = Pair(
        x_p=dx_p.astype(pair.x_p.dtype) if want_p else None,
        w_p=dw_p if want_p else None,
        x_q=dx_q.astype(pair.x_q.dtype) if want_q else None,
        w_q=dw_q if want_q else None,
        mask=None,
        inv_t=d_inv_t.astype(pair.inv_t.dtype) if want_t else None,
    )
    return grads, None


carrier.defvjp(_carrier_fwd, _carrier_bwd, symbolic_zeros=True)


def _block_cotangents(z_p, z_q, keep, coef: Coefficients, ct, kind: str):
    """``(∂L/∂z_p, ∂L/∂z_q)`` of one block, zero at excluded classes."""
    log_p = z_p - coef.log_z_p[:, None]
    log_q = z_q - coef.log_z_q[:, None]
    p, q = jnp.exp(log_p), jnp.exp(log_q)
    if kind == "kl":
        g_p = _p_log_ratio(p, log_p, log_q) - p * coef.d_p[:, None]
        g_q = q - p
    else:
        beta = coef.beta
        log_m = _log_mixture(log_p, log_q, beta)
        g_p = beta * (_p_log_ratio(p, log_p, log_m) - p * coef.d_p[:, None])
        g_q = (1 - beta) * (_p_log_ratio(q, log_q, log_m) - q * coef.d_q[:, None])
    g_p, g_q = ct * g_p, ct * g_q
    if keep is not None:
        g_p, g_q = jnp.where(keep, g_p, 0), jnp.where(keep, g_q, 0)
    return g_p, g_q


def _backward_loop(pair: Pair, coef: Coefficients, ct, *, cfg: Config, want, cpu: bool):
    """Both heads' ``dx`` (accumulated) and ``dw`` (written a block at a time), as asked.

    As in ``_linear_kernel``: the blocks of dw are staged in groups on CPU for
    16-bit ``w`` and written into dw at once; columns of an overlapping last
    group are computed again in full (so dw is rewritten with the same values)
    but not counted twice in the sums over classes.
    """
    want_p, want_q, want_t = want
    vocab = pair.w_p.shape[1]
    chunk = cfg.chunk
    acc = compute_dtype(pair.x_p.dtype, pair.x_q.dtype)
    heads = [(pair.x_p, pair.w_p, want_p), (pair.x_q, pair.w_q, want_q)]
    per_group = 1
    if cpu:
        widest = max(w.shape[0] for _, w, _ in heads)
        per_group = group_size(FLUSH_BYTES // (2 * max(widest, 1) * chunk), vocab, chunk)
    width = per_group * chunk
    staged_dtype = [jnp.uint16 if cpu else w.dtype for _, w, _ in heads]

    def group_body(k, carry):
        dxs, dws, d_inv_t = carry
        group = Block(k, width, vocab)

        def block_body(i, carry):
            dxs, stageds, d_inv_t = carry
            offset = i * chunk
            start = group.start + offset
            fresh = group.fresh(offset, chunk)
            ((z_p, w_bp), (z_q, w_bq)), keep = _blocks(pair, start, chunk, None, cfg, cpu)
            gs = _block_cotangents(z_p, z_q, keep, coef, ct, cfg.kind)
            if want_t:
                part = 0
                for g, z in zip(gs, (z_p, z_q), strict=True):
                    finite = z if keep is None else jnp.where(keep, z, 0)
                    term = g * finite
                    part = part + jnp.sum(term if fresh is None else jnp.where(fresh, term, 0))
                d_inv_t = d_inv_t + part / pair.inv_t
            new_dxs, new_stageds = [], []
            for (x, w, wanted), g, w_block, dx, staged, sdt in zip(
                heads, gs, (w_bp, w_bq), dxs, stageds, staged_dtype, strict=True
            ):
                if not wanted:
                    new_dxs.append(dx)
                    new_stageds.append(staged)
                    continue
                if cfg.scale:
                    g = g * pair.inv_t
                g = g.astype(x.dtype)
                g_x = g if fresh is None else jnp.where(fresh, g, 0)
                dx = dx + matmul(g_x, w_block, (1, 1), acc)
                dw_block = matmul(x, g, (0, 0), acc).astype(w.dtype)
                if cpu:
                    dw_block = lax.bitcast_convert_type(dw_block, sdt)
                staged = lax.dynamic_update_slice_in_dim(staged, dw_block, offset, axis=1)
                new_dxs.append(dx)
                new_stageds.append(staged)
            return tuple(new_dxs), tuple(new_stageds), d_inv_t

        stageds = tuple(
            jnp.zeros_like(w, shape=(w.shape[0], width if wanted else 0), dtype=sdt)
            for (_, w, wanted), sdt in zip(heads, staged_dtype, strict=True)
        )
        stageds = varying_like(stageds, pair, coef, ct)
        dxs, stageds, d_inv_t = lax.fori_loop(0, per_group, block_body, (dxs, stageds, d_inv_t))
        new_dws = []
        for (_, w, wanted), dw, staged, sdt in zip(heads, dws, stageds, staged_dtype, strict=True):
            if wanted:
                dw = lax.bitcast_convert_type(dw, sdt) if cpu else dw
                dw = lax.dynamic_update_slice_in_dim(dw, staged, group.start, axis=1)
                dw = lax.bitcast_convert_type(dw, w.dtype) if cpu else dw
            new_dws.append(dw)
        return dxs, tuple(new_dws), d_inv_t

    dxs = tuple(jnp.zeros(x.shape if wanted else (0,), acc) for x, _, wanted in heads)
    dws = tuple(jnp.zeros_like(w) if wanted else jnp.zeros((0,), w.dtype) for _, w, wanted in heads)
    d_inv_t = jnp.zeros((), acc)
    carry = varying_like((*dxs, *dws, d_inv_t), pair, coef, ct)
    dxs, dws, d_inv_t = tuple(carry[:2]), tuple(carry[2:4]), carry[4]
    dxs, dws, d_inv_t = lax.fori_loop(0, -(-vocab // width), group_body, (dxs, dws, d_inv_t))
    return dxs[0], dws[0], dxs[1], dws[1], d_inv_t

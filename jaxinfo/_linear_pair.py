r"""Divergences between two linear heads over one vocabulary, without forming either's logits.

Knowledge distillation and RL fine-tuning compare a teacher's next-token
distribution ``P = softmax(x_p w_p / T)`` with a student's
``Q = softmax(x_q w_q / T)`` at every position. At N = 8192 positions and
V = 262144 classes each head's logits take 8 GiB in float32; here they are
formed one block of classes at a time, forward and backward, so the memory
stays O(N·(D_p + D_q + chunk)).

What lives here: the public :func:`linear_kl_divergence` and
:func:`linear_js_divergence`, their argument checks, and the combination of
each device's statistics into the divergence over all classes under
``axis_name`` (by the chain rule: pick a device, then a class within it).
What does not: the blockwise passes and the derivative
(``_linear_pair_kernel.py``).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jaxinfo import _linear_pair_kernel as kernel
from jaxinfo._checks import (
    Array,
    ArrayLike,
    AxisName,
    as_class_mask,
    as_position_weights,
    as_real_array,
    check_chunk_size,
    check_scalar,
    compute_dtype,
    differentiable,
    forward_mode,
    is_one,
)
from jaxinfo._collectives import combine_log_partitions, match_varying
from jaxinfo._linear_kernel import chunk_size as default_chunk
from jaxinfo._reduction import weighted
from jaxinfo._units import clamp, in_range


def linear_kl_divergence(
    x_p: ArrayLike,
    w_p: ArrayLike,
    x_q: ArrayLike,
    w_q: ArrayLike,
    *,
    temperature: ArrayLike = 1.0,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    chunk_size: int | None = None,
    axis_name: AxisName | None = None,
) -> Array:
    r"""KL divergence ``D(P‖Q)`` between two linear heads' softmaxes, never forming the logits.

    .. math::
       D(P \| Q) = \sum_v p_v \log \frac{p_v}{q_v}, \qquad
       P = \mathrm{softmax}(x_p w_p / T), \quad Q = \mathrm{softmax}(x_q w_q / T)

    Equal to ``kl_divergence_from_logits(x_p @ w_p / T, x_q @ w_q / T)``, but
    both heads' logits are formed one block of ``chunk_size`` classes at a
    time: one pass forward, one backward (a ``custom_vjp``). P, the teacher
    (or the reference policy), comes first; the reverse KL ``D(Q‖P)`` is the
    same call with the heads swapped. Gradients flow to all four arrays; a
    frozen teacher is the caller's ``jax.lax.stop_gradient``, and then the
    backward pass does no gradient products for it. Reverse mode only.

    Args:
      x_p: the teacher's hidden states, shape ``(..., D_p)``.
      w_p: the teacher's classifier, shape ``(D_p, V)`` (this device's block
        of classes under ``axis_name``).
      x_q: the student's hidden states, shape ``(..., D_q)``, the same
        leading shape as ``x_p``.
      w_q: the student's classifier, shape ``(D_q, V)``.
      temperature: ``T > 0`` dividing both heads' logits (distillation's
        softening). A JAX array receives its gradient.
      where: optional boolean ``(V,)`` mask of the classes to include (a
        padded vocabulary, say); excluded classes are absent from both
        softmaxes.
      weights: optional per-position weights, shaped like the leading axes;
        the divergence and its gradient are scaled by them (0 removes a
        position, even an infinite one).
      chunk_size: classes per block (a static int >= 1); by default about
        16 MiB of float32 logits for the two heads' blocks together.
      axis_name: for vocabulary (tensor) parallelism inside ``shard_map``: the
        mesh axis across which both ``w`` (and ``where``) are split along V in
        equal contiguous blocks; each device gets the divergence over all V
        classes. Only per-position values cross devices.

    Returns:
      The divergence in nats per position (shaped like the leading axes),
      ``>= 0``; ``inf`` where P gives mass to a class Q rules out. Float32
      for bfloat16/float16 inputs (products in the inputs' dtype with float32
      accumulation); gradients in the inputs' dtypes.

    Raises:
      ValueError: shapes that do not chain, heads with different
        vocabularies or leading shapes, ``temperature <= 0``, a ``where`` or
        ``weights`` of the wrong shape (or a ``where`` with no class), a
        ``chunk_size`` below 1.
      TypeError: complex or boolean heads, a non-boolean ``where``, a
        ``chunk_size`` that is not an int, or a forward-mode derivative.

    Examples:
      >>> x_p = jnp.array([[1.0, 0.0]]); w_p = jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
      >>> x_q = jnp.array([[0.5]]); w_q = jnp.array([[1.0, 0.0, -1.0]])
      >>> jaxinfo.linear_kl_divergence(x_p, w_p, x_q, w_q)
      Array([0.174457], dtype=float32)
      >>> jaxinfo.kl_divergence_from_logits(x_p @ w_p, x_q @ w_q)
      Array([0.174457], dtype=float32)

    References:
      Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network",
      2015; Wijmans et al., "Cut Your Losses in Large-Vocabulary Language
      Models", 2024 (the blockwise recomputation).
    """
    prepared = _Heads(
        "linear_kl_divergence", x_p, w_p, x_q, w_q, temperature, where, weights, chunk_size
    )
    cfg = prepared.config("kl")
    pair = prepared.pair
    log_z_p, log_z_q, local = kernel.statistics(lax.stop_gradient(pair), cfg)
    big_p = combine_log_partitions(log_z_p, axis_name)
    big_q = combine_log_partitions(log_z_q, axis_name)
    divergence = local
    if axis_name is not None:
        # D(P‖Q) = Σ_k π_k (D_k + log π_k - log ρ_k), π_k and ρ_k the devices'
        # shares of P and Q: the chain rule over (device, class).
        a_p, a_q = log_z_p - big_p, log_z_q - big_q
        share = jnp.exp(a_p)
        term = jnp.where(share > 0, share * (local + jnp.where(share > 0, a_p - a_q, 0)), 0)
        divergence = lax.psum(term, axis_name)
    divergence = in_range(divergence, None)
    zero = jnp.zeros_like(divergence)
    coef = kernel.Coefficients(big_p, big_q, divergence, zero, jnp.zeros((), divergence.dtype))
    return prepared.finish(divergence, coef, cfg, axis_name)


def linear_js_divergence(
    x_p: ArrayLike,
    w_p: ArrayLike,
    x_q: ArrayLike,
    w_q: ArrayLike,
    *,
    beta: ArrayLike = 0.5,
    temperature: ArrayLike = 1.0,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    chunk_size: int | None = None,
    axis_name: AxisName | None = None,
) -> Array:
    r"""Generalised Jensen–Shannon divergence between two linear heads, never forming the logits.

    .. math::
       \mathrm{JS}_\beta(P, Q) = \beta\, D(P \| M) + (1 - \beta)\, D(Q \| M),
       \qquad M = \beta P + (1 - \beta) Q

    (Lin, 1991), with ``P = softmax(x_p w_p / T)`` and
    ``Q = softmax(x_q w_q / T)``. ``beta = 0.5`` is the symmetric
    Jensen–Shannon divergence, in ``[0, log 2]``; in general it lies in
    ``[0, h(β)]``, ``h`` the binary entropy. Equal to
    ``js_divergence(softmax(x_p @ w_p / T), softmax(x_q @ w_q / T))`` at
    ``beta = 0.5``. The mixture's logarithm needs both normalisers first, so
    the forward pass walks the blocks twice (the log-partitions, then the
    two divergences from M), the backward pass once. Reverse mode only.

    Liger Kernel's ``LigerFusedLinearJSD(jsd_beta=b)`` weights the other way
    round: its mixture is ``b·P_student + (1 - b)·P_teacher`` with the teacher
    first, so its divergence with ``jsd_beta=b`` is this function with the
    teacher as P and ``beta = 1 - b`` (the symmetric case ``b = 0.5`` is the
    same either way).

    Args:
      x_p: P's hidden states (the teacher's), shape ``(..., D_p)``.
      w_p: P's classifier, shape ``(D_p, V)`` (this device's block under
        ``axis_name``).
      x_q: Q's hidden states, shape ``(..., D_q)``, the same leading shape.
      w_q: Q's classifier, shape ``(D_q, V)``.
      beta: the weight of P in the mixture, in ``[0, 1]``; may be traced, and
        differentiated (``∂JS/∂β = D(P‖M) - D(Q‖M)``).
      temperature: ``T > 0`` dividing both heads' logits; a JAX array
        receives its gradient.
      where: optional boolean ``(V,)`` mask of the classes to include.
      weights: optional per-position weights, shaped like the leading axes.
      chunk_size: classes per block, as in :func:`linear_kl_divergence`.
      axis_name: the mesh axis across which the classes are split inside
        ``shard_map``, as in :func:`linear_kl_divergence`.

    Returns:
      The divergence in nats per position, in ``[0, h(β)]``. Float32 for
      bfloat16/float16 inputs.

    Raises:
      ValueError: as :func:`linear_kl_divergence`, and ``beta`` outside
        ``[0, 1]``.
      TypeError: as :func:`linear_kl_divergence`.

    Examples:
      >>> x_p = jnp.array([[1.0, 0.0]]); w_p = jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
      >>> x_q = jnp.array([[0.5]]); w_q = jnp.array([[1.0, 0.0, -1.0]])
      >>> jaxinfo.linear_js_divergence(x_p, w_p, x_q, w_q)
      Array([0.046234], dtype=float32)
      >>> p, q = jax.nn.softmax(x_p @ w_p), jax.nn.softmax(x_q @ w_q)
      >>> jaxinfo.js_divergence(p, q)
      Array([0.046234], dtype=float32)

    References:
      Lin, "Divergence measures based on the Shannon entropy", IEEE Trans.
      Inf. Theory 37(1), 1991.
    """
    check_scalar(beta, "beta", low=0.0, high=1.0)
    prepared = _Heads(
        "linear_js_divergence", x_p, w_p, x_q, w_q, temperature, where, weights, chunk_size
    )
    cfg = prepared.config("js")
    pair = lax.stop_gradient(prepared.pair)
    acc = prepared.acc
    b = jnp.asarray(beta, acc)
    log_z_p, log_z_q, _ = kernel.statistics(pair, cfg)
    big_p = combine_log_partitions(log_z_p, axis_name)
    big_q = combine_log_partitions(log_z_q, axis_name)
    t_p, t_q = kernel.mixture_terms(pair, big_p, big_q, lax.stop_gradient(b), cfg)
    if axis_name is not None:
        t_p, t_q = lax.psum(t_p, axis_name), lax.psum(t_q, axis_name)
    t_p, t_q = in_range(t_p, None), in_range(t_q, None)
    # β's own derivative is D(P‖M) - D(Q‖M) (M's moving with β adds nothing:
    # Σ_v (β p_v + (1 - β) q_v)(p_v - q_v) / m_v = 0), which this product gives.
    divergence = b * t_p + (1 - b) * t_q
    divergence = clamp(divergence, jnp.zeros_like(divergence), _binary_entropy(b))
    coef = kernel.Coefficients(big_p, big_q, t_p, t_q, lax.stop_gradient(b))
    return prepared.finish(divergence, coef, cfg, axis_name)


def _binary_entropy(beta: Array) -> Array:
    """``h(β)`` in nats, the largest ``JS_β``: 0 at β = 0 and 1."""

    def xlogx(v):
        return jnp.where(v > 0, v * jnp.log(jnp.where(v > 0, v, 1)), 0)

    return lax.stop_gradient(-xlogx(beta) - xlogx(1 - beta))


class _Heads:
    """The checked, flattened arguments of a two-head divergence."""

    def __init__(self, fname, x_p, w_p, x_q, w_q, temperature, where, weights, chunk_size):
        arrays = {
            name: as_real_array(a, name)
            for name, a in (("x_p", x_p), ("w_p", w_p), ("x_q", x_q), ("w_q", w_q))
        }
        x_p, w_p, x_q, w_q = arrays.values()
        for x, w, s in ((x_p, w_p, "p"), (x_q, w_q, "q")):
            if x.ndim == 0:
                raise ValueError(
                    f"x_{s} must have at least one dimension (the features), got a scalar."
                )
            if w.ndim != 2:
                raise ValueError(f"w_{s} must be a (D, V) matrix, got shape {w.shape}.")
            if x.shape[-1] != w.shape[0]:
                raise ValueError(
                    f"x_{s} and w_{s} do not chain: x_{s} has shape {x.shape} (D = "
                    f"{x.shape[-1]}) but w_{s} has shape {w.shape} (D = {w.shape[0]})."
                )
        if w_p.shape[1] != w_q.shape[1]:
            raise ValueError(
                f"the two heads must share one vocabulary: w_p has V = {w_p.shape[1]} "
                f"classes, w_q has V = {w_q.shape[1]}."
            )
        if x_p.shape[:-1] != x_q.shape[:-1]:
            raise ValueError(
                f"x_p and x_q must have the same leading shape (one position each), got "
                f"{x_p.shape[:-1]} and {x_q.shape[:-1]}."
            )
        check_scalar(temperature, "temperature", low=0.0, open_low=True)
        for a in (x_p, w_p, x_q, w_q, temperature):
            if forward_mode(a):
                raise TypeError(
                    f"{fname} supports reverse-mode differentiation only (jax.grad, "
                    "jax.vjp, jax.jacrev): its derivative is a custom_vjp that recomputes "
                    "both heads' logits block by block. For forward mode, differentiate "
                    "the materialised divergence of x_p @ w_p and x_q @ w_q instead."
                )
        vocab = w_p.shape[1]
        self.batch_shape = x_p.shape[:-1]
        n = 1
        for d in self.batch_shape:
            n *= d
        self.acc = compute_dtype(x_p.dtype, w_p.dtype, x_q.dtype, w_q.dtype)
        # Two blocks of logits at a time: each half the usual size.
        self.chunk = default_chunk(check_chunk_size(chunk_size), 2 * n, vocab)
        self.mask = as_class_mask(where, vocab)
        self.weights = None
        if weights is not None:
            self.weights = as_position_weights(weights, self.batch_shape, "weights", self.acc)
        self.scale = not is_one(temperature)
        self.scalar_grads = self.scale and differentiable(temperature)
        inv_t = 1 / jnp.asarray(temperature, self.acc)

        def matmul_dtype(x, w):
            return x.dtype if x.dtype == w.dtype else compute_dtype(x.dtype, w.dtype)

        x_p = x_p.astype(matmul_dtype(x_p, w_p)).reshape(n, x_p.shape[-1])
        x_q = x_q.astype(matmul_dtype(x_q, w_q)).reshape(n, x_q.shape[-1])
        # Inside shard_map the differentiable arrays vary along the same mesh
        # axes, so that the partial cotangents of a replicated input are summed.
        x_p, w_p, x_q, w_q, inv_t = match_varying(x_p, w_p, x_q, w_q, inv_t)
        self.pair = kernel.Pair(x_p, w_p, x_q, w_q, self.mask, inv_t)

    def config(self, kind: str) -> kernel.Config:
        return kernel.Config(
            chunk=self.chunk, kind=kind, scale=self.scale, scalar_grads=self.scalar_grads
        )

    def finish(self, divergence: Array, coef, cfg, axis_name) -> Array:
        """The value, the carrier of its derivative, the weights and the batch shape."""
        carried = kernel.carrier(self.pair, lax.stop_gradient(coef), cfg)
        if axis_name is not None:
            carried = lax.psum(carried, axis_name)
        out = (divergence + carried).reshape(self.batch_shape)
        if self.weights is not None:
            out = weighted(out, self.weights)
        return out

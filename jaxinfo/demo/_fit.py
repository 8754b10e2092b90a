"""The fit: fit, FitResult, default_optimizer and their jitted programs (no table, no CLI)."""

from __future__ import annotations

import functools
import math
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

import jaxinfo
from jaxinfo._checks import ArrayLike, as_float_array

Array = jax.Array


class FitResult(NamedTuple):
    """What :func:`fit` returns; every measure is in nats.

    Attributes:
      q: the fitted distribution ``softmax(logits)`` after the last step, shaped
        like ``p``.
      cross_entropy: ``H(P, Q)`` after each step, shape ``p.shape[:-1] + (steps,)``.
      kl_divergence: ``D(P‖Q)`` after each step, shape ``p.shape[:-1] + (steps,)``.
      entropy: ``H(P)``, shape ``p.shape[:-1]``; ``cross_entropy - kl_divergence``
        equals it at every step, to float32 rounding.
    """

    q: Array
    cross_entropy: Array
    kl_divergence: Array
    entropy: Array


def default_optimizer(learning_rate: float = 0.1, steps: int = 500) -> optax.GradientTransformation:
    """The optimiser :func:`fit` uses unless given one.

    Adam with ``b2 = 0.9`` (a second-moment memory of about ten steps instead
    of a thousand), its learning rate decaying from ``learning_rate`` to zero
    along a cosine over ``steps`` steps. See the :mod:`jaxinfo.demo` docstring for why plain
    ``optax.adam`` stalls on this problem.

    Args:
      learning_rate: the initial (largest) learning rate.
      steps: the number of steps over which the learning rate decays.

    Returns:
      An ``optax.GradientTransformation``.

    Examples:
      >>> opt = jaxinfo.demo.default_optimizer(0.1, steps=500)
      >>> state = opt.init(jnp.zeros(2))
    """
    learning_rate = _check_learning_rate(learning_rate)
    steps = _check_steps(steps)
    return _default_optimizer(learning_rate, steps)


@functools.lru_cache(maxsize=16)
def _default_optimizer(learning_rate: float, steps: int) -> optax.GradientTransformation:
    # Cached so that repeated fits with the same settings reuse one compiled program.
    return optax.adam(optax.cosine_decay_schedule(learning_rate, steps), b2=0.9)


def _check_steps(steps: object) -> int:
    if isinstance(steps, bool):
        raise TypeError(f"steps must be a positive int, got {steps!r}.")
    try:
        steps = operator.index(steps)
    except TypeError as e:
        raise TypeError(
            f"steps must be a positive int, got {steps!r} of type {type(steps).__name__}."
        ) from e
    if steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps}.")
    return steps


def _check_learning_rate(learning_rate: object) -> float:
    if isinstance(learning_rate, bool) or not isinstance(
        learning_rate, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"learning_rate must be a positive number, got {learning_rate!r}.")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be positive and finite, got {learning_rate!r}.")
    return float(learning_rate)


def _check_optimizer(optimizer: object) -> None:
    if not (
        callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))
    ):
        raise TypeError(
            "optimizer must be an optax.GradientTransformation (an object with init and "
            f"update), got {optimizer!r} of type {type(optimizer).__name__}."
        )


def _check_p(p: Array) -> None:
    """Static checks always; value checks when ``p`` is concrete."""
    if p.ndim == 0:
        raise ValueError("p must have at least one dimension (the outcomes), got a scalar.")
    if p.shape[-1] == 0:
        raise ValueError(
            f"p must have at least one outcome along its last axis, got shape {p.shape}."
        )
    if isinstance(p, jax.core.Tracer):
        return
    values = np.asarray(p)
    if not np.all(np.isfinite(values)):
        raise ValueError("p must be finite, got inf or NaN entries.")
    if np.any(values < 0):
        raise ValueError(f"p must be non-negative, got a minimum of {values.min()}.")
    if values.size and np.any(values.sum(axis=-1) <= 0):
        raise ValueError("every distribution in p must have some mass, got a row of zeros.")


def _measures(p: Array, logits: Array) -> tuple[Array, Array]:
    """``H(P, Q)`` and ``D(P‖Q)`` in nats for ``Q = softmax(logits)``, row by row.

    The cross-entropy comes straight from the logits. The divergence is
    ``kl_divergence(p, softmax(logits))``: near convergence it had the smallest
    float32 error of jaxinfo's three ways of computing it (measured against
    float64 on converged fits of 64 random 10- and 100-class distributions:
    largest error 2.8e-7 nats, against 3.5e-7 to 5.8e-7 for
    ``kl_divergence_from_logits(log p, logits)`` and 6e-7 to 9.7e-7 for
    ``H(P, Q) - H(P)``). Where softmax underflows on a class that ``P`` needs
    (logits more than ~87 apart) that form is ``inf``; there the divergence
    from the logits, which stays finite, is used instead. It is computed only
    when some row needs it (a ``lax.cond`` on the whole batch): always
    computing it costs about 20% more CPU time per fit.
    """
    ce = jaxinfo.cross_entropy_from_logits(p, logits)
    kl = jaxinfo.kl_divergence(p, jax.nn.softmax(logits))
    finite = jnp.isfinite(kl)

    def from_logits():
        return jnp.where(finite, kl, jaxinfo.kl_divergence_from_logits(jnp.log(p), logits))

    kl = lax.cond(jnp.all(finite), lambda: kl, from_logits)
    return ce, kl


_measures_jit = jax.jit(_measures)


def _optax_promotion():
    """Standard dtype promotion around optax's own code.

    optax 0.2.8 computes Adam's bias correction as ``decay ** count`` (a Python
    float to the power of an int32 step count), which fails when a user has set
    ``jax_numpy_dtype_promotion="strict"``; the optimiser runs under standard
    promotion whatever the global setting, and jaxinfo's own code stays strict.
    """
    return jax.numpy_dtype_promotion("standard")


@jax.jit
def _softmax_and_entropy(logits: Array, p: Array) -> tuple[Array, Array]:
    return jax.nn.softmax(logits), jaxinfo.entropy(p)


def _programs_for(optimizer):
    """Jitted ``init(logits)`` and ``run(length, p, carry)`` for a batch of rows.

    ``run`` is one ``lax.scan`` over the steps. Each row has its own optimiser
    state and is updated on its own (``vmap`` of ``optimizer.update``), so the
    rows stay independent even for optimisers that are not elementwise
    (global-norm clipping, LAMB, ...). The histories come back as
    ``(rows, length)``.
    """
    grad = jax.vmap(jax.grad(jaxinfo.cross_entropy_from_logits, argnums=1))
    update = jax.vmap(optimizer.update)

    def init(logits):
        with _optax_promotion():
            return logits, jax.vmap(optimizer.init)(logits)

    def run(length, p, carry):
        def step(carry, _):
            logits, state = carry
            with _optax_promotion():
                updates, state = update(grad(p, logits), state, logits)
            logits = optax.apply_updates(logits, updates)
            return (logits, state), _measures(p, logits)

        carry, (ce, kl) = lax.scan(step, carry, length=length)
        return carry, (ce.T, kl.T)

    return jax.jit(init), jax.jit(run, static_argnums=0)


_programs_cached = functools.lru_cache(maxsize=32)(_programs_for)


def _programs(optimizer):
    try:
        hash(optimizer)
    except TypeError:
        return _programs_for(optimizer)
    return _programs_cached(optimizer)


class _Problem(NamedTuple):
    p: Array  # (B, K), B the flattened batch
    logits: Array  # (B, K)
    batch_shape: tuple[int, ...]


def _prepare(p, init_logits) -> _Problem:
    p = as_float_array(p, "p")
    _check_p(p)
    if init_logits is None:
        logits = jnp.zeros_like(p)
    else:
        logits = as_float_array(init_logits, "init_logits").astype(p.dtype)
        try:
            ok = np.broadcast_shapes(logits.shape, p.shape) == p.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(
                f"init_logits must have the shape of p (or one that broadcasts to it), "
                f"got init_logits.shape={logits.shape} and p.shape={p.shape}."
            )
        logits = jnp.broadcast_to(logits, p.shape)
    k = p.shape[-1]
    return _Problem(p.reshape(-1, k), logits.reshape(-1, k), p.shape[:-1])


def fit(
    p: ArrayLike,
    *,
    steps: int = 500,
    learning_rate: float = 0.1,
    optimizer: optax.GradientTransformation | None = None,
    init_logits: ArrayLike | None = None,
) -> FitResult:
    r"""Fits ``Q = softmax(logits)`` to ``P`` by minimising ``H(P, Q)`` with optax.

    .. math::
       \min_\ell H(P, \operatorname{softmax}(\ell)) = H(P) + \min_\ell D(P \,\|\,
       \operatorname{softmax}(\ell))

    The whole optimisation is one jitted ``lax.scan``. Every distribution along
    the leading axes of ``p`` is fitted independently, with its own optimiser
    state, in the same call.

    Args:
      p: the target distributions, outcomes along the last axis, any leading
        batch axes. Entries must be finite and non-negative; each row is
        normalised to sum to one.
      steps: the number of optimiser steps.
      learning_rate: the initial learning rate of the default optimiser;
        ignored when ``optimizer`` is given.
      optimizer: any ``optax.GradientTransformation``; defaults to
        :func:`default_optimizer` ``(learning_rate, steps)``.
      init_logits: logits of the starting ``Q``, shaped like ``p`` or
        broadcastable to it; zeros (the uniform distribution) by default.

    Returns:
      A :class:`FitResult`: the final ``q``, and the histories of ``H(P, Q)`` and
      ``D(P‖Q)`` after each step, with ``H(P)``, all in nats.

    Raises:
      TypeError: ``p``, ``init_logits``, ``steps``, ``learning_rate`` or
        ``optimizer`` has the wrong type.
      ValueError: ``p`` is a scalar, has no outcomes, has negative or
        non-finite entries or a row without mass; ``init_logits`` does not
        broadcast to ``p``; ``steps`` or ``learning_rate`` is not positive.

    Examples:
      The article's match, P = (0.99, 0.01), from a uniform start:

      >>> from jaxinfo.demo import fit
      >>> result = fit(jnp.array([0.99, 0.01]))
      >>> [round(float(q), 6) for q in result.q]
      [0.99, 0.01]
      >>> result.kl_divergence.shape
      (500,)
      >>> bool(result.kl_divergence[-1] < 1e-6)
      True
    """
    steps = _check_steps(steps)
    learning_rate = _check_learning_rate(learning_rate)
    if optimizer is None:
        optimizer = _default_optimizer(learning_rate, steps)
    else:
        _check_optimizer(optimizer)
    problem = _prepare(p, init_logits)
    init, run = _programs(optimizer)
    (logits, _), (ce, kl) = run(steps, problem.p, init(problem.logits))
    q, entropy = _softmax_and_entropy(logits, problem.p)
    shape = problem.batch_shape
    return FitResult(
        q=q.reshape(*shape, problem.p.shape[-1]),
        cross_entropy=ce.reshape(*shape, steps),
        kl_divergence=kl.reshape(*shape, steps),
        entropy=entropy.reshape(shape),
    )

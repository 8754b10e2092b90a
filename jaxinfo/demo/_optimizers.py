"""The optimiser table of the command line, _OPTIMIZERS, and make_optimizer (no fitting)."""

from __future__ import annotations

import optax

from jaxinfo.demo._fit import _check_learning_rate, _check_steps, _default_optimizer

_OPTIMIZERS = {
    # name: (factory taking a learning rate or schedule, description, a learning rate that
    # suits this problem with the cosine schedule: the article's P reaches KL < 1e-5 in
    # 200 steps (tested), and most reach < 1e-5 on 64 random 10-class P in 500 steps)
    "adam": (lambda lr: optax.adam(lr, b2=0.9), "Adam, b2=0.9, the default of fit", 0.1),
    "adamw": (
        lambda lr: optax.adamw(lr, b2=0.9),
        "AdamW, b2=0.9, weight decay 1e-4, which pulls Q slightly towards uniform",
        0.1,
    ),
    "adabelief": (optax.adabelief, "AdaBelief", 1),
    "adamax": (optax.adamax, "Adamax; slow on rare classes", 0.3),
    "amsgrad": (optax.amsgrad, "AMSGrad; slow on rare classes", 0.3),
    "nadam": (optax.nadam, "NAdam", 1),
    "radam": (optax.radam, "RAdam", 3),
    "yogi": (optax.yogi, "Yogi", 1),
    "lion": (optax.lion, "Lion; its fixed-size sign steps overshoot on rare classes", 1),
    "rmsprop": (optax.rmsprop, "RMSProp", 0.1),
    "adagrad": (optax.adagrad, "Adagrad", 10),
    "sgd": (optax.sgd, "plain gradient descent", 10),
    "momentum": (lambda lr: optax.sgd(lr, momentum=0.9), "gradient descent, momentum 0.9", 3),
    "nesterov": (
        lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True),
        "gradient descent, Nesterov momentum 0.9",
        3,
    ),
}


def make_optimizer(
    name: str = "adam", learning_rate: float = 0.1, *, steps: int = 500, schedule: str = "cosine"
) -> optax.GradientTransformation:
    """An optimiser of the command line by name.

    Args:
      name: one of ``adam`` (the default of :func:`fit`), ``adamw``,
        ``adabelief``, ``adamax``, ``amsgrad``, ``nadam``, ``radam``, ``yogi``,
        ``lion``, ``rmsprop``, ``adagrad``, ``sgd``, ``momentum``, ``nesterov``.
      learning_rate: the (initial) learning rate.
      steps: the length of the fit, over which a cosine schedule decays.
      schedule: ``"cosine"`` (decay to zero over ``steps``) or ``"constant"``.

    Returns:
      An ``optax.GradientTransformation``; ``make_optimizer("adam", lr,
      steps=n)`` is :func:`default_optimizer` ``(lr, n)``.

    Examples:
      >>> opt = jaxinfo.demo.make_optimizer("sgd", 10.0, steps=200)
    """
    if name not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(_OPTIMIZERS)}.")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}.")
    learning_rate = _check_learning_rate(learning_rate)
    steps = _check_steps(steps)
    if name == "adam" and schedule == "cosine":
        return _default_optimizer(learning_rate, steps)
    lr = (
        optax.cosine_decay_schedule(learning_rate, steps) if schedule == "cosine" else learning_rate
    )
    return _OPTIMIZERS[name][0](lr)

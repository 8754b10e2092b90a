"""A character-level language model trained with ``jaxinfo.linear_cross_entropy``.

    python examples/char_lm.py                      # about 300 steps, both runs, two tables
    python examples/char_lm.py --plot char_lm.png   # also the curves (needs matplotlib)
    python examples/char_lm.py --tiny               # a few steps of a tiny model

The text is the licence of the Python that runs the script: the ``LICENSE.txt``
that CPython installs next to the standard library
(``pathlib.Path(os.__file__).parent / "LICENSE.txt"``, about 14,000 characters).
Where a distribution leaves that file out, the text is the Zen of Python, the
standard library's ``this`` module decoded from its ROT13 (under a thousand
characters, so the model soon learns it by heart); ``--text PATH`` trains on any
UTF-8 file instead. With none of them readable the script stops with an error
that says what it looked for.

The model, in plain JAX: each position sees the ``--context`` characters
before it, embedded (16 numbers a character) and concatenated, then two layers
of ``--dim`` units (``tanh``, the second with a residual connection) give the
hidden state ``x`` (N, D) of the N positions of a batch. The vocabulary
projection ``x @ w + b`` (``w`` (D, V), ``b`` (V,)) is never formed: the loss is

    jaxinfo.linear_cross_entropy(x, w, labels, bias=b, z_loss=1e-4,
                                 return_stats=True, reduction="mean")

the mean over the batch of the cross-entropy ``log Z - logit[label]`` plus the
z-loss ``1e-4 (log Z)²``, which keeps the log-partition near 0. Its statistics
give, per position, ``log Z``, the entropy of the prediction and the predicted
character, from which each step logs the loss, the perplexity ``exp`` of the
mean cross-entropy (the loss less the z-loss), the mean entropy of the
prediction in nats and the accuracy.

The same training runs a second time with the logits materialised, the loss
``optax.softmax_cross_entropy_with_integer_labels(x @ w + b, labels)`` plus the
z-loss written out, and the statistics computed from the logits: the same
initial parameters, the same batches, the same optimiser. The script prints the
largest difference between the two runs' curves at step 0, where both evaluate
the same parameters (a float32 rounding error of the loss: an ulp or so), and
over all steps. There the runs drift apart: the two gradients differ by their
rounding, and each step of the optimiser carries the difference forward, so it
grows to a relative 1e-4 or so of the loss after 300 steps (the plot's last
panel shows it step by step). The figures are those of the training batches;
there is no held-out text, and a model of this size learns much of the licence
by heart.

A character vocabulary is small (76 characters in CPython 3.11's licence), so here
the fused loss saves no memory; it is the same call that at a vocabulary of
262,144 tokens avoids the (N, V) logits (see ``docs/scale.md``).
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import io
import math
import os
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

# Run this checkout's jaxinfo, whichever copy is installed.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import jaxinfo

Z_LOSS = 1e-4  # the weight of (log Z)² in the loss
EMBED = 16  # numbers per character in the embedding

#: The command line's defaults, and those of ``--tiny`` (the test's size). The
#: tiny run streams the 76 classes in blocks of 32, so that the kernel's
#: blockwise path runs even at this vocabulary.
DEFAULTS = dict(steps=300, batch=256, context=16, dim=128, learning_rate=1e-2, chunk_size=None)
TINY = dict(steps=12, batch=32, context=4, dim=16, learning_rate=2e-2, chunk_size=32)


# --------------------------------------------------------------------------
# the text and the batches
# --------------------------------------------------------------------------


def load_text(path: str | os.PathLike | None = None) -> tuple[str, str]:
    """The training text and a phrase that says where it came from.

    Args:
      path: a UTF-8 text file; ``None`` for the standard library's texts:
        CPython's ``LICENSE.txt``, or where that is absent, the Zen of Python.

    Returns:
      ``(text, source)``.

    Raises:
      FileNotFoundError: ``path`` cannot be read, or (without ``path``) neither
        standard library text can.
    """
    if path is not None:
        try:
            return pathlib.Path(path).read_text(encoding="utf-8"), f"the file {path}"
        except (OSError, UnicodeDecodeError) as e:
            raise FileNotFoundError(f"cannot read the text file {path!r}: {e}") from None
    licence = pathlib.Path(os.__file__).parent / "LICENSE.txt"
    try:
        return licence.read_text(encoding="utf-8"), "the Python licence (LICENSE.txt)"
    except (OSError, UnicodeDecodeError):
        pass
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # importing `this` prints the Zen
            import this
        return codecs.decode(this.s, "rot13"), "the Zen of Python (module this)"
    except (ImportError, AttributeError):
        pass
    raise FileNotFoundError(
        f"no training text: this Python has neither {licence} nor the module `this`; "
        "pass a UTF-8 text file with --text PATH"
    )


def encode(text: str) -> tuple[np.ndarray, str]:
    """The text as int32 character ids, and the vocabulary (its characters, sorted)."""
    chars = "".join(sorted(set(text)))
    index = {c: i for i, c in enumerate(chars)}
    return np.array([index[c] for c in text], np.int32), chars


def make_batches(
    ids: np.ndarray, *, steps: int, batch: int, context: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` batches of ``batch`` positions drawn uniformly from the text.

    Returns:
      ``inputs`` (steps, batch, context): the characters before each position;
      ``labels`` (steps, batch): the character at it.

    Raises:
      ValueError: the text is not longer than ``context + 1`` characters.
    """
    if len(ids) < context + 2:
        raise ValueError(
            f"the text has {len(ids)} characters; a context of {context} needs at least "
            f"{context + 2}"
        )
    rng = np.random.default_rng([seed, 1])
    starts = rng.integers(0, len(ids) - context, size=(steps, batch))
    windows = ids[starts[..., None] + np.arange(context + 1)]
    return windows[..., :-1], windows[..., -1]


# --------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------


def init_params(seed: int, vocab: int, *, context: int, dim: int) -> dict[str, jax.Array]:
    """Gaussian weights scaled by 1/sqrt(fan-in) (a tenth of that for ``w``), zero biases.

    NumPy's generator: ``jax.random``'s samplers take seconds to compile on CPU.

    Args:
      seed: the seed of the weights.
      vocab: the number of characters V.
      context: the characters each position sees.
      dim: the width D of the hidden layers and of ``x``.

    Returns:
      ``embed`` (V, 16), ``w1`` (16 context, D), ``b1`` (D,), ``w2`` (D, D),
      ``b2`` (D,), and the vocabulary projection ``w`` (D, V) and ``b`` (V,).
    """
    rng = np.random.default_rng([seed, 0])

    def normal(shape, fan_in):
        return jnp.asarray(rng.standard_normal(shape) / math.sqrt(fan_in), jnp.float32)

    return {
        "embed": normal((vocab, EMBED), 1),
        "w1": normal((context * EMBED, dim), context * EMBED),
        "b1": jnp.zeros(dim),
        "w2": normal((dim, dim), dim),
        "b2": jnp.zeros(dim),
        "w": 0.1 * normal((dim, vocab), dim),  # small logits: the start is near uniform
        "b": jnp.zeros(vocab),
    }


def features(params: dict[str, jax.Array], inputs: jax.Array) -> jax.Array:
    """The hidden state ``x`` (N, D) of each position from its ``inputs`` (N, context)."""
    h = params["embed"][inputs].reshape(inputs.shape[0], -1)
    h = jnp.tanh(h @ params["w1"] + params["b1"])
    return h + jnp.tanh(h @ params["w2"] + params["b2"])


class Metrics(NamedTuple):
    """A batch's figures (scalars), or a run's, one per step (arrays of shape (steps,)).

    Attributes:
      loss: the mean cross-entropy plus the mean z-loss (what is minimised).
      cross_entropy: the mean cross-entropy alone, nats.
      perplexity: ``exp(cross_entropy)``.
      entropy: the mean entropy of the prediction, nats (at most ``log V``).
      accuracy: the fraction of positions whose most likely character is right.
    """

    loss: jax.Array
    cross_entropy: jax.Array
    perplexity: jax.Array
    entropy: jax.Array
    accuracy: jax.Array


def _metrics(loss, cross_entropy, entropy, argmax, labels) -> Metrics:
    return Metrics(
        loss=loss,
        cross_entropy=cross_entropy,
        perplexity=jnp.exp(cross_entropy),
        entropy=jnp.mean(entropy),
        accuracy=jnp.mean(argmax == labels),
    )


def fused_loss(params, inputs, labels, *, chunk_size=None) -> tuple[jax.Array, Metrics]:
    """The loss by ``jaxinfo.linear_cross_entropy``, the figures from its statistics."""
    x = features(params, inputs)
    loss, stats = jaxinfo.linear_cross_entropy(
        x,
        params["w"],
        labels,
        bias=params["b"],
        z_loss=Z_LOSS,
        return_stats=True,
        reduction="mean",
        chunk_size=chunk_size,
    )
    # Every label is a real character (none is < 0), so the mean is over all
    # positions, and the z-loss's share of it is the mean of Z_LOSS (log Z)².
    cross_entropy = loss - Z_LOSS * jnp.mean(stats.log_z**2)
    return loss, _metrics(loss, cross_entropy, stats.entropy, stats.argmax, labels)


def materialised_loss(params, inputs, labels, *, chunk_size=None) -> tuple[jax.Array, Metrics]:
    """The same loss and figures from the (N, V) logits, with optax (``chunk_size`` unused)."""
    del chunk_size
    logits = features(params, inputs) @ params["w"] + params["b"]
    cross_entropy = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    log_z = jax.nn.logsumexp(logits, axis=-1)
    loss = jnp.mean(cross_entropy + Z_LOSS * log_z**2)
    log_q = jax.nn.log_softmax(logits, axis=-1)
    entropy = -jnp.sum(jnp.exp(log_q) * log_q, axis=-1)
    argmax = jnp.argmax(logits, axis=-1)
    return loss, _metrics(loss, jnp.mean(cross_entropy), entropy, argmax, labels)


LossFn = Callable[..., tuple[jax.Array, Metrics]]


def _train(loss_fn, chunk_size, params, inputs, labels, learning_rate):
    optimizer = optax.adam(learning_rate)

    # optax's Adam computes its bias correction as `decay ** count` (a float to
    # the power of an int32), which fails under jax_numpy_dtype_promotion="strict"
    # (the test suite's setting): the optimiser runs under standard promotion.
    def standard_promotion():
        return jax.numpy_dtype_promotion("standard")

    def step(carry, batch):
        params, state = carry
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (_, metrics), grads = grad_fn(params, *batch, chunk_size=chunk_size)
        with standard_promotion():
            updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), metrics

    with standard_promotion():
        state = optimizer.init(params)
    (params, _), history = jax.lax.scan(step, (params, state), (inputs, labels))
    return params, history


# One compiled program per loss, size and chunk size: a second run of the same
# shapes (the test's, then the command line's) reuses it.
_train_jit = jax.jit(_train, static_argnums=(0, 1))


def train(
    loss_fn: LossFn,
    params: dict[str, jax.Array],
    inputs: np.ndarray,
    labels: np.ndarray,
    *,
    learning_rate: float,
    chunk_size: int | None = None,
) -> tuple[dict[str, jax.Array], Metrics]:
    """Adam over the batches, one step each, in one ``lax.scan``.

    Returns:
      The final parameters, and the figures of each step's batch under the
      parameters before that step's update (``Metrics`` of arrays (steps,)).
    """
    return _train_jit(
        loss_fn,
        chunk_size,
        params,
        jnp.asarray(inputs),
        jnp.asarray(labels),
        jnp.float32(learning_rate),
    )


def train_both(
    ids: np.ndarray,
    vocab: int,
    *,
    steps: int,
    batch: int,
    context: int,
    dim: int,
    learning_rate: float,
    chunk_size: int | None = None,
    seed: int = 0,
) -> tuple[Metrics, Metrics]:
    """The histories of the fused and the materialised run, from one start on one stream."""
    inputs, labels = make_batches(ids, steps=steps, batch=batch, context=context, seed=seed)
    params = init_params(seed, vocab, context=context, dim=dim)
    runs = []
    for loss_fn in (fused_loss, materialised_loss):
        _, history = train(
            loss_fn, params, inputs, labels, learning_rate=learning_rate, chunk_size=chunk_size
        )
        runs.append(Metrics(*(np.asarray(a, np.float64) for a in history)))
    return runs[0], runs[1]


# --------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="char_lm.py",
        description=(
            "Train a small character-level language model on the Python licence with "
            "jaxinfo.linear_cross_entropy (z-loss 1e-4, statistics on), then again with the "
            "materialised optax loss from the same start on the same batches, and compare."
        ),
    )
    d, t = DEFAULTS, TINY

    def size(name, metavar, text):
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=_positive_int,
            metavar=metavar,
            help=f"{text} (default {d[name]}; {t[name]} with --tiny)",
        )

    size("steps", "N", "optimiser steps")
    size("batch", "N", "positions per batch")
    size("context", "N", "characters each position sees")
    size("dim", "D", "width of the hidden layers and of x")
    parser.add_argument(
        "--learning-rate",
        type=_learning_rate,
        metavar="LR",
        help=f"Adam's learning rate (default {d['learning_rate']:g}; {t['learning_rate']:g} "
        "with --tiny)",
    )
    parser.add_argument(
        "--chunk-size",
        type=_positive_int,
        metavar="C",
        help="classes per block of the fused loss (default: the library's; "
        f"{t['chunk_size']} with --tiny)",
    )
    parser.add_argument(
        "--seed", type=_seed, default=0, help="seed of the weights and batches (default 0)"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="a tiny model for a few steps (the test's size)"
    )
    parser.add_argument(
        "--log-every",
        type=_positive_int,
        metavar="K",
        help="print every K-th step in the tables (default: about 10 rows)",
    )
    parser.add_argument(
        "--text", metavar="PATH", help="train on this UTF-8 file instead of the Python licence"
    )
    parser.add_argument(
        "--plot",
        metavar="PATH",
        help="write a PNG of the loss, perplexity, entropy and accuracy of both runs",
    )
    return parser


def _check_plot_path(parser: argparse.ArgumentParser, path: str) -> None:
    if not path.lower().endswith(".png"):
        parser.error(f"--plot writes a PNG; the path must end in .png, got {path!r}")
    if os.path.isdir(path):
        parser.error(f"--plot: {path!r} is a folder, not a file name")
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        parser.error(f"--plot: the folder of {path!r} does not exist")


def _pyplot():
    """matplotlib.pyplot with the Agg backend, or a clear exit if it is missing."""
    try:
        import matplotlib  # the optional `plot` extra
    except ImportError:
        raise SystemExit(
            "char_lm.py: error: --plot needs matplotlib; install it with "
            "pip install 'jaxinfo[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _table(title: str, history: Metrics, rows: Sequence[int], out) -> None:
    out(title)
    out(f"{'step':>6}  {'loss':>9}  {'perplexity':>10}  {'entropy':>9}  {'accuracy':>8}")
    for i in rows:
        out(
            f"{i:>6}  {history.loss[i]:>9.5f}  {history.perplexity[i]:>10.4f}  "
            f"{history.entropy[i]:>9.5f}  {history.accuracy[i]:>8.4f}"
        )


def max_differences(a: Metrics, b: Metrics) -> Metrics:
    """The largest absolute difference between two histories, figure by figure."""
    return Metrics(*(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True)))


def _plot(path: str, fused: Metrics, materialised: Metrics, vocab: int) -> None:
    """Four panels, both runs in each, and the loss difference per step on a log scale."""
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    steps = np.arange(len(fused.loss))
    fig = plt.figure(figsize=(9, 8))
    grid = fig.add_gridspec(3, 2, height_ratios=(1, 1, 0.75))
    axes = [fig.add_subplot(grid[i, j]) for i in range(2) for j in range(2)]
    panels = [
        ("loss", "loss (cross-entropy + z-loss), nats"),
        ("perplexity", "perplexity exp(mean cross-entropy)"),
        ("entropy", "mean entropy of the prediction, nats"),
        ("accuracy", "accuracy (argmax = next character)"),
    ]
    for ax, (field, label) in zip(axes, panels, strict=True):
        ax.plot(steps, getattr(fused, field), color="C0", lw=1.6, label="linear_cross_entropy")
        ax.plot(
            steps, getattr(materialised, field), color="C1", lw=1.0, ls="--", label="optax, x @ w"
        )
        ax.set_title(label, fontsize="medium")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize="small")
    axes[1].set_yscale("log")
    low, high = np.min(fused.perplexity), np.max(fused.perplexity)
    axes[1].set_yticks([t for t in (1, 2, 5, 10, 20, 50, 100, 200) if low / 2 <= t <= high * 2])
    axes[1].yaxis.set_major_formatter(ScalarFormatter())
    axes[1].yaxis.set_minor_formatter(NullFormatter())
    axes[2].plot(steps, fused.cross_entropy, color="0.5", lw=0.8, label="mean cross-entropy")
    axes[2].axhline(math.log(vocab), color="0.3", ls=":", label=f"log V (V = {vocab})")
    axes[2].legend(fontsize="small")
    bottom = fig.add_subplot(grid[2, :])
    difference = np.abs(fused.loss - materialised.loss)
    spacing = np.spacing(fused.loss.astype(np.float32)).astype(np.float64)
    floor = float(spacing.min()) / 4  # where a difference of exactly 0 is drawn
    bottom.semilogy(
        steps,
        np.maximum(difference, floor),
        color="C2",
        lw=1.0,
        label="|difference| (0 drawn at the bottom)",
    )
    bottom.semilogy(steps, spacing, color="0.4", ls=":", label="float32 spacing of the loss")
    bottom.set_title("loss, fused run minus materialised run", fontsize="medium")
    bottom.set_xlabel("step")
    bottom.grid(True, alpha=0.3)
    bottom.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=80)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line (``argv`` without the program name); returns 0."""
    parser = _parser()
    args = parser.parse_args(argv)
    sizes = {
        name: getattr(args, name) if getattr(args, name) is not None else value
        for name, value in (TINY if args.tiny else DEFAULTS).items()
    }
    if args.plot is not None:
        _check_plot_path(parser, args.plot)
        _pyplot()  # before training: a missing matplotlib fails at once
    try:
        text, source = load_text(args.text)
    except FileNotFoundError as e:
        parser.error(str(e))
    ids, chars = encode(text)
    if len(ids) < sizes["context"] + 2:
        parser.error(
            f"--context {sizes['context']} needs a text of at least {sizes['context'] + 2} "
            f"characters; {source} has {len(ids)}"
        )
    vocab = len(chars)
    params = init_params(args.seed, vocab, context=sizes["context"], dim=sizes["dim"])
    count = sum(int(p.size) for p in params.values())
    print(f"text: {source}, {len(ids):,} characters, V = {vocab} distinct")
    print(
        f"model: {sizes['context']} characters of context, embedding {EMBED}, 2 layers of "
        f"{sizes['dim']}, {count:,} parameters; adam, learning rate {sizes['learning_rate']:g}"
    )
    print(
        f"training: {sizes['steps']} steps of {sizes['batch']} positions, "
        f"z-loss {Z_LOSS:g}; uniform prediction: loss {math.log(vocab):.4f} + z, "
        f"perplexity {vocab}"
    )
    fused, materialised = train_both(ids, vocab, seed=args.seed, **sizes)
    steps = sizes["steps"]
    every = args.log_every or max(1, steps // 10)
    rows = sorted({*range(0, steps, every), steps - 1})
    print()
    _table("fused: jaxinfo.linear_cross_entropy(x, w, labels, bias=b, ...)", fused, rows, print)
    print()
    _table(
        "materialised: optax.softmax_cross_entropy_with_integer_labels(x @ w + b, labels)",
        materialised,
        rows,
        print,
    )
    first = max_differences(*(Metrics(*(a[:1] for a in h)) for h in (fused, materialised)))
    every_step = max_differences(fused, materialised)
    print()
    print(f"max |fused - materialised|  {'loss':>9}  {'perplexity':>10}  {'entropy':>9}  accuracy")
    for label, diff in (("step 0", first), (f"all {steps} steps", every_step)):
        print(
            f"  {label:<24}  {diff.loss:>9.1e}  {diff.perplexity:>10.1e}  {diff.entropy:>9.1e}"
            f"  {diff.accuracy:.1e}"
        )
    spacing = float(np.spacing(np.float32(fused.loss[0])))
    relative = float(np.max(np.abs(fused.loss - materialised.loss) / fused.loss))
    print(
        f"float32 spacing of the step-0 loss: {spacing:.1e}; largest relative difference of the "
        f"losses: {relative:.1e}"
    )
    if args.plot is not None:
        _plot(args.plot, fused, materialised, vocab)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The command line: argument parsing, main and the tables it prints (no fit code, no plot)."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from jaxinfo.demo._optimizers import _OPTIMIZERS, make_optimizer
from jaxinfo.demo._plotting import _plot, _pyplot
from jaxinfo.demo._trace import _run_fit, _Trace
from jaxinfo.demo._units import _float32_resolution, _to_unit, _unit_name

#: The seed article's match: the favourite wins with probability 0.99.
ARTICLE_P = (0.99, 0.01)


# argparse "type" functions: a ValueError/ArgumentTypeError becomes one usage error.


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _classes(text: str) -> int:
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"a distribution needs at least 2 classes, got {value}")
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


def _base(text: str) -> float | None:
    if text.strip().lower() == "e":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 2 (bits), e (nats), 10 (hartleys) or another positive number, got {text!r}"
        ) from None
    if not (math.isfinite(value) and value > 0 and value != 1):
        raise argparse.ArgumentTypeError(
            f"a logarithm base must be positive and not 1, got {text!r}"
        )
    return value


def _distribution(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(x) for x in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated probabilities such as '0.99,0.01', got {text!r}"
        ) from None
    if len(values) < 2:
        raise argparse.ArgumentTypeError(f"a distribution needs at least 2 outcomes, got {text!r}")
    values = tuple(0.0 if v == 0 else v for v in values)  # "-0" is 0, not -0.0
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"probabilities must be finite, got {text!r}")
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"probabilities must be non-negative, got {text!r}")
    total = math.fsum(values)
    if abs(total - 1) > 1e-6:
        raise argparse.ArgumentTypeError(
            f"probabilities must sum to 1, got {text!r} (sum {total:g})"
        )
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxinfo-demo",
        description=(
            "Fit Q = softmax(logits) to a distribution P by minimising the cross-entropy "
            "H(P,Q) with optax, and watch H(P,Q) fall to the entropy H(P) as the KL "
            "divergence D(P||Q) = H(P,Q) - H(P) goes to zero. With no arguments: the seed "
            "article's P = (0.99, 0.01) and a random 10-class P."
        ),
        epilog=(
            "examples:\n"
            "  python -m jaxinfo.demo\n"
            "  python -m jaxinfo.demo --p 0.5,0.3,0.2 --base e --plot fit.png\n"
            "  python -m jaxinfo.demo --batch 10000 --classes 10\n"
            "  python -m jaxinfo.demo --optimizer sgd --learning-rate 10\n\n"
            "optimizers (the learning rate in brackets suits this problem):\n"
            + "\n".join(
                f"  {name:10s} {text} ({lr:g})" for name, (_, text, lr) in _OPTIMIZERS.items()
            )
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--p",
        type=_distribution,
        metavar="P1,P2,...",
        help="fit this distribution only (comma-separated probabilities summing to 1)",
    )
    parser.add_argument(
        "--classes",
        type=_classes,
        metavar="K",
        help="number of classes of the random distributions (default 10)",
    )
    parser.add_argument(
        "--batch",
        type=_positive_int,
        metavar="N",
        help="fit N random distributions at once; report the worst KL and the throughput",
    )
    parser.add_argument(
        "--steps", type=_positive_int, default=500, help="optimiser steps (default 500)"
    )
    parser.add_argument(
        "--learning-rate",
        type=_learning_rate,
        metavar="LR",
        help="initial learning rate (default: the optimizer's, listed below; 0.1 for adam)",
    )
    parser.add_argument(
        "--optimizer",
        choices=list(_OPTIMIZERS),
        default="adam",
        metavar="NAME",
        help="optax optimizer, one of: %(choices)s (default adam; see below)",
    )
    parser.add_argument(
        "--schedule",
        choices=["cosine", "constant"],
        default="cosine",
        help="learning rate decays to 0 along a cosine over the steps, or stays constant "
        "(default cosine)",
    )
    parser.add_argument(
        "--base",
        type=_base,
        default=2.0,
        metavar="B",
        help="logarithm base of the printed units: 2 (bits, the default), e (nats), "
        "10 (hartleys) or any positive number",
    )
    parser.add_argument(
        "--seed", type=_seed, default=0, help="seed of the random distributions (default 0)"
    )
    parser.add_argument(
        "--plot",
        metavar="PATH",
        help="write a PNG of H(P,Q) approaching H(P) and of the KL on a log scale",
    )
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.p is not None and args.classes is not None:
        parser.error(
            "--p gives the distribution, so --classes does not apply; use one or the other"
        )
    if args.p is not None and args.batch is not None:
        parser.error("--batch fits random distributions, --p a given one; use one or the other")
    if args.plot is not None:
        path = args.plot
        folder = os.path.dirname(os.path.abspath(path))
        if not path.lower().endswith(".png"):
            parser.error(f"--plot writes a PNG; the path must end in .png, got {path!r}")
        if not os.path.isdir(folder):
            parser.error(f"--plot: the folder of {path!r} does not exist")
        if os.path.isdir(path):
            parser.error(f"--plot: {path!r} is a folder, not a file name")


def _random_distributions(seed: int, n: int, k: int) -> np.ndarray:
    """``n`` distributions drawn uniformly from the simplex (Dirichlet(1, ..., 1)).

    NumPy's generator: ``jax.random``'s samplers take seconds to compile on CPU.
    """
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(k), size=n).astype(np.float32)


def _fmt_p(values) -> str:
    values = list(values)
    shown = ", ".join(f"{v:.4g}" for v in values[:10])
    return f"({shown}{', ...' if len(values) > 10 else ''})"


def _fmt_kl(kl_nats: float, entropy_nats: float, base: float | None) -> str:
    """A KL value for the table; values below float32 resolution show as ``<res``.

    A KL is never negative; a computed one below the resolution, negative or
    not, is rounding, so it shows as the bound it is known to lie under.
    """
    resolution = _to_unit(_float32_resolution(entropy_nats), base)
    kl = _to_unit(kl_nats, base)
    return f"<{resolution:.1e}" if kl < resolution else f"{kl:.3e}"


def _fmt_h(value_nats: float, entropy_nats: float, base: float | None) -> str:
    """An entropy or cross-entropy for the tables, ``0.00000000`` at its floor.

    Both are never negative: a computed value below 0 by less than the float32
    resolution (rounding, or a negative zero) shows as 0, never as
    ``-0.00000000``. A value further below 0 would be a fault, and shows as it is.
    """
    value = float(_to_unit(value_nats, base))
    resolution = float(_to_unit(_float32_resolution(entropy_nats), base))
    if -resolution < value <= 0:
        value = 0.0  # also turns -0.0 into 0.0
    return f"{value:.8f}"


def _kl_summary(kl_nats: float, entropy_nats: float, base: float | None, name: str = "KL") -> str:
    """``KL = 3.9e-03 bits``, or its bound ``KL < 1.8e-07 bits`` below the float32 resolution."""
    unit = _unit_name(base)
    resolution = _to_unit(_float32_resolution(entropy_nats), base)
    kl = _to_unit(kl_nats, base)
    if kl < resolution:
        return (
            f"{name} < {resolution:.1e} {unit} (the float32 resolution: "
            "H(P,Q) = H(P) to working precision)"
        )
    return f"{name} = {kl:.2e} {unit}"


def _fit_one_target(label, p, optimizer, steps, base, out) -> _Trace:
    unit = _unit_name(base)
    out(f"{label}: P = {_fmt_p(np.asarray(p))}, {len(p)} classes, {steps} steps, units: {unit}")
    out(f"{'step':>6}  {'H(P,Q)':>12}  {'H(P)':>12}  {'KL(P||Q)':>10}")

    def on_rows(step, ce, kl, h):
        kl = _fmt_kl(kl[0], h[0], base)
        out(f"{step:>6}  {_fmt_h(ce[0], h[0], base):>12}  {_fmt_h(h[0], h[0], base):>12}  {kl:>10}")

    p = jnp.asarray(p, jnp.float32)
    trace = _run_fit(p[None], optimizer, steps, on_rows)
    h_nats = trace.entropy[0]
    ce = _fmt_h(trace.cross_entropy[0, -1], h_nats, base)
    h = _fmt_h(h_nats, h_nats, base)
    kl = _kl_summary(trace.kl_divergence[0, -1], h_nats, base)
    gap = np.abs(trace.q[0] - np.asarray(p / p.sum())).max()
    out(
        f"{label}: after {steps} steps H(P,Q) = {ce} vs H(P) = {h} {unit}, {kl}, "
        f"max|Q-P| = {gap:.1e}"
    )
    out("")
    return trace._replace(label=label)


def _fit_batch(args, optimizer, k, out) -> _Trace:
    n, base, unit = args.batch, args.base, _unit_name(args.base)
    p = _random_distributions(args.seed, n, k)
    out(
        f"batch: {n} random {k}-class distributions (uniform on the simplex, seed {args.seed}), "
        f"{args.steps} steps, units: {unit}"
    )
    out(f"{'step':>6}  {'mean H(P,Q)':>12}  {'mean H(P)':>12}  {'median KL':>10}  {'worst KL':>10}")

    def on_rows(step, ce, kl, h):
        median = _fmt_kl(np.median(kl), h.max(), base)
        worst = _fmt_kl(kl.max(), h.max(), base)
        out(
            f"{step:>6}  {_fmt_h(ce.mean(), h.max(), base):>12}  "
            f"{_fmt_h(h.mean(), h.max(), base):>12}  {median:>10}  {worst:>10}"
        )

    trace = _run_fit(p, optimizer, args.steps, on_rows)
    worst = _kl_summary(trace.kl_divergence[:, -1].max(), trace.entropy.max(), base, "worst KL")
    out(
        f"batch: {n} distributions x {args.steps} steps in {trace.seconds:.3f} s "
        f"= {n / trace.seconds:,.0f} distributions/s (compile {trace.compile_seconds:.2f} s, "
        f"not counted); {worst}"
    )
    return trace._replace(label=f"{n} random {k}-class P")


# A value that argparse would take for an option: "-1,2", "-.5,1.5", "-0, 1".
_DASHED_VALUE = re.compile(r"^-[\d.]")


def _join_dashed_p(argv: Sequence[str]) -> list[str]:
    """``--p -1,2`` becomes ``--p=-1,2``.

    argparse reads a word that starts with "-" as an option unless it is one
    negative number, so ``--p -1,2`` would fail with "expected one argument".
    Joined, the value reaches the check of probabilities, whose message says
    what is wrong with it.
    """
    argv = list(argv)
    joined: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--p" and i + 1 < len(argv) and _DASHED_VALUE.match(argv[i + 1]):
            joined.append(f"--p={argv[i + 1]}")
            i += 2
        else:
            joined.append(argv[i])
            i += 1
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line demo; ``argv`` defaults to ``sys.argv[1:]``."""
    parser = _parser()
    args = parser.parse_args(_join_dashed_p(sys.argv[1:] if argv is None else argv))
    if args.learning_rate is None:
        args.learning_rate = _OPTIMIZERS[args.optimizer][2]
    _check_args(parser, args)
    if args.plot is not None:
        _pyplot()  # fail before fitting if matplotlib is missing

    def out(line: str) -> None:
        print(line, flush=True)

    optimizer = make_optimizer(
        args.optimizer, args.learning_rate, steps=args.steps, schedule=args.schedule
    )
    out(
        f"optimizer: {args.optimizer}, learning rate {args.learning_rate:g}"
        f"{' decaying to 0 along a cosine' if args.schedule == 'cosine' else ' (constant)'}"
    )
    k = 10 if args.classes is None else args.classes
    if args.batch is not None:
        traces = [_fit_batch(args, optimizer, k, out)]
    elif args.p is not None:
        traces = [_fit_one_target("given P", args.p, optimizer, args.steps, args.base, out)]
    else:
        random_p = np.asarray(_random_distributions(args.seed, 1, k)[0])
        traces = [
            _fit_one_target("article P", ARTICLE_P, optimizer, args.steps, args.base, out),
            _fit_one_target(f"random {k}-class P", random_p, optimizer, args.steps, args.base, out),
        ]
    if args.plot is not None:
        _plot(args.plot, traces, args.base, batch=args.batch is not None)
        out(f"plot written to {args.plot}")
    return 0

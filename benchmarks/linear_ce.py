"""Memory and speed of ``linear_cross_entropy`` against the materialised logits and tokamax.

    python benchmarks/linear_ce.py            # the side-by-side table, then accuracy
    python benchmarks/linear_ce.py --quick    # tiny shapes, one round: a smoke test (seconds)
    python benchmarks/linear_ce.py --large    # also a shape where the logits are 2 GiB

The table has one row per contender, all computing the mean loss of
``softmax(x @ w)`` against integer labels:

* ``jaxinfo fused (plain)``: ``jnp.mean(jaxinfo.linear_cross_entropy(x, w, labels))``;
* ``jaxinfo fused (all options)``: the same with a bias, a class mask
  ``where``, per-position ``weights``, ``label_smoothing=0.1``,
  ``z_loss=1e-4``, ``logit_soft_cap=30.0``, ``temperature=0.9``,
  ``reduction="mean"`` and ``return_stats=True`` (about 1 label in 16 is
  negative, i.e. ignored). It runs only once ``linear_cross_entropy`` takes
  these options (checked with ``inspect.signature``); until then the row is
  skipped and the reason printed;
* ``materialised (all options)``: :func:`materialised_loss`, the same loss
  written by hand from ``x @ w`` (the reference for the row above);
* ``materialised optax (plain)``:
  ``optax.softmax_cross_entropy_with_integer_labels(x @ w, labels).mean()``;
* ``materialised jaxinfo (plain)``:
  ``jnp.mean(jaxinfo.cross_entropy_from_labels(labels, x @ w))``;
* ``tokamax (plain)``: ``tokamax.linear_softmax_cross_entropy_loss(x, labels,
  w, reduction="mean")``, skipped (reason printed) where tokamax is not
  installed.

Columns: the forward pass and ``value_and_grad`` (with respect to ``x``,
``w`` and, with the options, the bias), at N=2048 tokens, D=512, V=32768
classes in float32; and the temporary memory of the compiled
``value_and_grad`` at the Gemma-2 shape (N=8192, D=2304, V=262144), lowered
from shapes alone (nothing is allocated), in float32 and bfloat16. Every
contender is compiled in one process and timed in alternation, the order
rotating round by round, one call per sample; the ratio is the median over
rounds of the per-round ratio time(row) / time(its materialised version):
``materialised (all options)`` for the fused row with options,
``materialised optax (plain)`` for the other rows. It is given in wall-clock
time and in this process's CPU time (the latter is less disturbed by other
programs sharing the machine). Below the table, each row's loss and
gradients are compared with its materialised version's.

tokamax (as of 0.0.12, the last release for Python 3.11; 0.0.13 and later
need Python 3.12 and jax 0.11):
``linear_softmax_cross_entropy_loss(x, labels, weights, *, reduction="sum",
precision=None, implementation=None)`` with ``x`` (B, H), ``labels`` (B,),
``weights`` (H, V). It returns a scalar: ``reduction`` is ``"sum"`` or
``"mean"`` (divided by B, ignored positions included), with no per-position
loss. No bias, class mask, per-position weights, label smoothing, z-loss,
soft cap, temperature, statistics or vocabulary sharding; a ``precision``
other than None raises ``NotImplementedError``; no ignored label: a negative
label adds 0 to the loss but its position still gets the softmax as
gradient; reverse mode only (a ``custom_vjp``). Two implementations: a
Pallas kernel, ``"mosaic_tpu"``, on TPU v5 and later only (B a multiple of
its batch block of at least 1024, H of 8), which never forms the logits;
and ``"xla"``, the reference in plain JAX, which forms the (B, V) logits,
their log-softmax and a (B, V) one-hot in the forward pass and recomputes
the logits in the backward pass. On CPU and GPU only ``"xla"`` runs; the
default ``implementation=None`` tries ``"xla"`` first, so it picks the
reference on TPU too: the benchmark names ``"mosaic_tpu"`` on a TPU and
``"xla"`` elsewhere. Any float dtype is taken (float32, bfloat16, float16;
``x`` and ``w`` may differ); the logits are computed in the input dtype, the
loss is float32, and the gradients of bfloat16 inputs come back in float32.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import itertools
import pathlib
import statistics
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

# Measure this checkout's jaxinfo, whichever copy is installed.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import jaxinfo

MiB = 2**20

TIME_SHAPE = (2048, 512, 32768)
MEMORY_SHAPE = (8192, 2304, 262144)  # Gemma 2: tokens, features, classes
LARGE_SHAPE = (8192, 256, 65536)  # 2 GiB of float32 logits
QUICK_TIME_SHAPE = (64, 32, 1000)
QUICK_MEMORY_SHAPE = QUICK_TIME_SHAPE

# The options of the "all options" rows; the arrays (bias, where, weights) are
# arguments, made by `option_inputs`.
OPTIONS = {
    "label_smoothing": 0.1,
    "z_loss": 1e-4,
    "logit_soft_cap": 30.0,
    "temperature": 0.9,
    "reduction": "mean",
    "return_stats": True,
}
OPTION_NAMES = ("bias", "where", "weights", *OPTIONS)
TOKAMAX_PIN = "tokamax==0.0.12"

PLAIN_BASELINE = "materialised optax (plain)"
OPTIONS_BASELINE = "materialised (all options)"


# ----------------------------------------------------------------------------
# the losses
# ----------------------------------------------------------------------------


def materialised_loss(
    x,
    w,
    labels,
    *,
    bias=None,
    where=None,
    weights=None,
    label_smoothing=0.0,
    z_loss=0.0,
    logit_soft_cap=None,
    temperature=1.0,
    reduction="none",
    return_stats=False,
):
    r"""The loss of ``linear_cross_entropy`` with its options, from the logits ``x @ w``.

    .. math::
       z = \frac{c_{\max}}{T}\tanh\frac{x w + b}{c_{\max}}, \qquad
       \ell = (1 - \varepsilon)(\log Z - z_y)
              + \varepsilon\Bigl(\log Z - \frac{1}{|S|}\sum_{v \in S} z_v\Bigr)
              + c\,(\log Z)^2, \qquad
       \log Z = \log \sum_{v \in S} e^{z_v}

    with ``S`` the classes where ``where`` is true (all of them by default)
    and ``z = (x w + b) / T`` without a soft cap. Written from the formulas,
    independently of ``jaxinfo``: the (N, V) logits are formed, and the
    options applied to them in float32 (or float64 for float64 inputs).

    Args:
      x: hidden states ``(..., D)``.
      w: classifier ``(D, V)``.
      labels: integer ``(...)``; negative: ignored (loss 0, no gradient).
      bias: ``(V,)`` added to the logits, or None.
      where: ``(V,)`` bool, the classes in the softmax, or None for all.
      weights: shaped like ``labels``, scaling each position's loss, or None.
      label_smoothing: ``ε``, the target is ``(1-ε)·onehot + ε·uniform(S)``.
      z_loss: ``c``, adds ``c·(log Z)²`` at each position.
      logit_soft_cap: ``c_max`` of ``c_max·tanh(a / c_max)``, or None.
      temperature: ``T``, the logits are divided by it (after the cap).
      reduction: ``"none"``, ``"sum"`` (of ``weights·ℓ``) or ``"mean"``
        (``Σ weights·ℓ / Σ_{label ≥ 0} weights``, 0 where that is 0).
      return_stats: also return ``{"log_z": log Z}``, per position.

    Returns:
      The loss (per position for ``"none"``, else a scalar), and the stats
      with ``return_stats``.
    """
    logits = x @ w
    dtype = jnp.promote_types(logits.dtype, jnp.float32)
    z = logits.astype(dtype)
    if bias is not None:
        z = z + bias.astype(dtype)
    if logit_soft_cap is not None:
        z = logit_soft_cap * jnp.tanh(z / logit_soft_cap)
    z = z / temperature
    mask = None if where is None else jnp.broadcast_to(where, z.shape)
    log_z = jax.nn.logsumexp(z, axis=-1, where=mask)
    valid = labels >= 0
    safe = jnp.where(valid, labels, 0)
    loss = log_z - jnp.take_along_axis(z, safe[..., None], axis=-1)[..., 0]
    if label_smoothing:
        count = z.shape[-1] if where is None else jnp.sum(where).astype(dtype)
        mean_z = jnp.sum(z, axis=-1, where=mask) / count
        loss = (1 - label_smoothing) * loss + label_smoothing * (log_z - mean_z)
    if z_loss:
        loss = loss + z_loss * log_z**2
    scale = jnp.ones_like(loss) if weights is None else weights.astype(dtype)
    loss = jnp.where(valid, loss * scale, 0)
    if reduction == "sum":
        loss = jnp.sum(loss)
    elif reduction == "mean":
        norm = jnp.sum(jnp.where(valid, scale, 0))
        loss = jnp.where(norm > 0, jnp.sum(loss) / jnp.where(norm > 0, norm, 1), 0)
    elif reduction != "none":
        raise ValueError(f"reduction must be 'none', 'sum' or 'mean', got {reduction!r}.")
    return (loss, {"log_z": log_z}) if return_stats else loss


def fused(x, w, labels):
    return jnp.mean(jaxinfo.linear_cross_entropy(x, w, labels))


def materialised(x, w, labels):
    return jnp.mean(jaxinfo.cross_entropy_from_labels(labels, x @ w))


def materialised_optax(x, w, labels):
    return optax.softmax_cross_entropy_with_integer_labels(x @ w, labels).mean()


def fused_options(x, w, labels, bias, where, weights):
    loss, stats = jaxinfo.linear_cross_entropy(
        x, w, labels, bias=bias, where=where, weights=weights, **OPTIONS
    )
    return loss, stats


def materialised_options(x, w, labels, bias, where, weights):
    return materialised_loss(x, w, labels, bias=bias, where=where, weights=weights, **OPTIONS)


def missing_options(fn=None) -> list[str]:
    """The option names of the "all options" rows that ``fn`` does not take."""
    params = inspect.signature(fn or jaxinfo.linear_cross_entropy).parameters
    return [name for name in OPTION_NAMES if name not in params]


def tokamax_loss():
    """``(loss, None)`` for tokamax's loss with plain options, or ``(None, why not)``."""
    try:
        import tokamax
    except ImportError as e:
        return None, f"tokamax is not installed ({e}); pip install '{TOKAMAX_PIN}'"
    op = getattr(tokamax, "linear_softmax_cross_entropy_loss", None)
    if op is None:
        return None, f"tokamax {tokamax.__version__} has no linear_softmax_cross_entropy_loss"
    # tokamax reads its options from absl flags, parsing sys.argv on first use
    # unless they were parsed: a script's own flags (--quick, pytest's) would
    # be rejected as unknown absl flags. Its defaults are what we want.
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    # The Pallas kernel runs on TPU only; the default (None) would pick the
    # XLA reference even there.
    impl = "mosaic_tpu" if jax.devices()[0].platform == "tpu" else "xla"

    def loss(x, w, labels):
        return op(x, labels, w, reduction="mean", implementation=impl)

    loss.implementation = f"tokamax {tokamax.__version__}, implementation={impl!r}"
    return loss, None


@dataclasses.dataclass(frozen=True)
class Contender:
    name: str
    loss: Callable | None  # None: skipped, for the reason in `skip`
    baseline: str  # the materialised row its ratios and agreement are against
    options: bool = False  # takes (x, w, labels, bias, where, weights), returns (loss, stats)
    skip: str | None = None
    note: str = ""

    @property
    def argnums(self):
        return (0, 1, 3) if self.options else (0, 1)


def contenders() -> list[Contender]:
    missing = missing_options()
    why_not = (
        f"jaxinfo.linear_cross_entropy does not take {', '.join(missing)} yet" if missing else None
    )
    tk, tk_skip = tokamax_loss()
    return [
        Contender("jaxinfo fused (plain)", fused, PLAIN_BASELINE),
        Contender(
            "jaxinfo fused (all options)",
            None if missing else fused_options,
            OPTIONS_BASELINE,
            options=True,
            skip=why_not,
        ),
        Contender(OPTIONS_BASELINE, materialised_options, OPTIONS_BASELINE, options=True),
        Contender(PLAIN_BASELINE, materialised_optax, PLAIN_BASELINE),
        Contender("materialised jaxinfo (plain)", materialised, PLAIN_BASELINE),
        Contender(
            "tokamax (plain)",
            tk,
            PLAIN_BASELINE,
            skip=tk_skip,
            note=getattr(tk, "implementation", ""),
        ),
    ]


# ----------------------------------------------------------------------------
# inputs, compilation, timing
# ----------------------------------------------------------------------------


def inputs(n, d, v, dtype=jnp.float32, seed=0):
    """``x`` (N, D), ``w`` (D, V) with logits of unit scale, labels uniform over V.

    Made with NumPy: jax.random would compile a program for each of them.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), np.float32)
    w = rng.standard_normal((d, v), np.float32) / np.float32(d**0.5)
    labels = rng.integers(0, v, n, np.int32)
    return jnp.asarray(x.astype(dtype)), jnp.asarray(w.astype(dtype)), jnp.asarray(labels)


def option_inputs(n, v, dtype=jnp.float32, seed=0):
    """``labels, bias, where, weights`` of the "all options" rows.

    About 90% of the classes are in ``where``; labels are drawn among them,
    and every 16th position is ignored (label -1).
    """
    rng = np.random.default_rng([seed, 1])
    bias = (0.5 * rng.standard_normal(v, np.float32)).astype(dtype)
    where = rng.random(v) > 0.1
    where[0] = True
    labels = rng.choice(np.flatnonzero(where), n).astype(np.int32)
    labels[15::16] = -1
    weights = rng.uniform(0.5, 1.5, n).astype(np.float32)
    return tuple(jnp.asarray(a) for a in (labels, bias, where, weights))


def arguments(contender, n, d, v, dtype, seed=0):
    x, w, labels = inputs(n, d, v, dtype, seed)
    if not contender.options:
        return x, w, labels
    return (x, w, *option_inputs(n, v, dtype, seed))


def argument_shapes(contender, n, d, v, dtype):
    shapes = [
        jax.ShapeDtypeStruct((n, d), dtype),
        jax.ShapeDtypeStruct((d, v), dtype),
        jax.ShapeDtypeStruct((n,), jnp.int32),
    ]
    if contender.options:
        shapes += [
            jax.ShapeDtypeStruct((v,), dtype),
            jax.ShapeDtypeStruct((v,), jnp.bool_),
            jax.ShapeDtypeStruct((n,), jnp.float32),
        ]
    return shapes


def value_and_grad(loss, argnums=(0, 1), has_aux=False):
    return jax.jit(jax.value_and_grad(loss, argnums=argnums, has_aux=has_aux))


def vg_of(contender):
    return value_and_grad(contender.loss, contender.argnums, has_aux=contender.options)


def compiled_temp_bytes(loss, n, d, v, dtype, contender=None):
    """Temporary memory of the compiled ``value_and_grad`` of ``loss``, from shapes alone."""
    if contender is None:
        contender = Contender("", loss, "")
    shapes = argument_shapes(contender, n, d, v, dtype)
    compiled = vg_of(contender).lower(*shapes).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def timed(fn, args):
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - wall, time.process_time() - cpu


def _value_and_grads(out, options):
    value, grads = out
    if options:
        value = value[0]
    return float(value), [np.asarray(g, np.float64) for g in grads]


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(np.float64).tiny))


def side_by_side(time_shape, memory_shape, rounds, memory=True, names=None):
    """Times and memory of the contenders; returns the rows (dicts) of the table.

    ``names``: only these rows and their materialised versions (all by default).
    """
    cs = contenders()
    if names is not None:
        keep = set(names) | {c.baseline for c in cs if c.name in names}
        cs = [c for c in cs if c.name in keep]
    run = [c for c in cs if c.loss is not None]
    n, d, v = time_shape
    args = {c.name: arguments(c, n, d, v, jnp.float32) for c in run}
    fwd = {c.name: jax.jit(c.loss).lower(*args[c.name]).compile() for c in run}
    vg = {c.name: vg_of(c).lower(*args[c.name]).compile() for c in run}
    results = {}
    for c in run:  # warm up, and keep value and gradients for the agreement check
        jax.block_until_ready(fwd[c.name](*args[c.name]))
        results[c.name] = _value_and_grads(vg[c.name](*args[c.name]), c.options)
    samples = {(c.name, mode): [] for c in run for mode in ("fwd", "vg")}
    for r in range(rounds):
        for c in run[r % len(run) :] + run[: r % len(run)]:
            samples[c.name, "fwd"].append(timed(fwd[c.name], args[c.name]))
            samples[c.name, "vg"].append(timed(vg[c.name], args[c.name]))
    rows = []
    for c in cs:
        row = {"name": c.name, "baseline": c.baseline, "skip": c.skip, "note": c.note}
        if c.loss is not None:
            for mode in ("fwd", "vg"):
                own, base = samples[c.name, mode], samples[c.baseline, mode]
                row[f"{mode}_s"] = statistics.median(s[0] for s in own)
                pairs = list(zip(own, base, strict=True))
                row[f"{mode}_ratio"] = statistics.median(a[0] / b[0] for a, b in pairs)
                row[f"{mode}_ratio_cpu"] = statistics.median(a[1] / b[1] for a, b in pairs)
            value, grads = results[c.name]
            ref_value, ref_grads = results[c.baseline]
            row["loss_rel"] = abs(value - ref_value) / abs(ref_value)
            row["grad_rel"] = [_rel(a, b) for a, b in zip(grads, ref_grads, strict=True)]
            if memory:
                for dtype in (jnp.float32, jnp.bfloat16):
                    if dtype == jnp.float32 and tuple(memory_shape) == tuple(time_shape):
                        temp = vg[c.name].memory_analysis().temp_size_in_bytes  # compiled above
                    else:
                        temp = compiled_temp_bytes(c.loss, *memory_shape, dtype, contender=c)
                    row[f"temp_{jnp.dtype(dtype).name}"] = temp
        rows.append(row)
    return rows


def format_table(rows, time_shape, memory_shape, rounds):
    n, d, v = time_shape
    mn, md, mv = memory_shape
    lines = [
        f"Time at N={n} D={d} V={v} float32 (median of {rounds} interleaved rounds; "
        f"ratio: median per-round time / its materialised version's, wall-clock and CPU); "
        f"memory: compiled temporary bytes of value_and_grad at N={mn} D={md} V={mv}",
        "",
        "| contender | forward | × materialised | value+grad | × materialised "
        "| temp float32 | temp bfloat16 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def ratio(row, mode):
        if row["name"] == row["baseline"]:
            return "1 (baseline)"
        return f"{row[f'{mode}_ratio']:.2f} (CPU {row[f'{mode}_ratio_cpu']:.2f})"

    def mib(row, dtype):
        b = row.get(f"temp_{dtype}")
        if b is None:
            return "—"
        return f"{b / MiB:,.0f} MiB" if b >= 100 * MiB else f"{b / MiB:.1f} MiB"

    for row in rows:
        if row["skip"]:
            lines.append(f"| {row['name']} | skipped | | | | | |")
            continue
        lines.append(
            f"| {row['name']} | {row['fwd_s'] * 1e3:.1f} ms | {ratio(row, 'fwd')} "
            f"| {row['vg_s'] * 1e3:.1f} ms | {ratio(row, 'vg')} "
            f"| {mib(row, 'float32')} | {mib(row, 'bfloat16')} |"
        )
    lines.append("")
    for row in rows:
        if row["skip"]:
            lines.append(f"- {row['name']}: skipped: {row['skip']}.")
        elif row["name"] != row["baseline"]:
            grads = ", ".join(f"{g:.1e}" for g in row["grad_rel"])
            lines.append(
                f"- {row['name']} against {row['baseline']}: loss rel. diff "
                f"{row['loss_rel']:.1e}, gradient rel. diffs ({grads})"
                + (f"; {row['note']}" if row["note"] else "")
            )
    return "\n".join(lines)


def accuracy_report(n=1024, d=256, v=32000):
    """Loss, dx and dw of the mean loss against float64 NumPy on the same inputs."""
    print(f"accuracy against float64, N={n} D={d} V={v} (max |error| / max |reference|)")
    for dtype, (name, loss_fn) in itertools.product(
        (jnp.float32, jnp.bfloat16), (("fused", fused), ("materialised", materialised))
    ):
        x, w, labels = inputs(n, d, v, dtype, seed=1)
        loss, (dx, dw) = value_and_grad(loss_fn)(x, w, labels)
        x64, w64, y = np.asarray(x, np.float64), np.asarray(w, np.float64), np.asarray(labels)
        logits = x64 @ w64
        m = logits.max(axis=1, keepdims=True)
        log_z = m[:, 0] + np.log(np.exp(logits - m).sum(axis=1))
        ref_loss = np.mean(log_z - logits[np.arange(n), y])
        g = np.exp(logits - log_z[:, None])
        g[np.arange(n), y] -= 1.0
        g /= n
        errors = [
            abs(float(loss) - ref_loss) / abs(ref_loss),
            *(
                np.max(np.abs(np.asarray(a, np.float64) - r)) / np.max(np.abs(r))
                for a, r in ((dx, g @ w64.T), (dw, x64.T @ g))
            ),
        ]
        print(
            f"  {jnp.dtype(dtype).name:9s} {name:13s} loss {errors[0]:.1e}  dx {errors[1]:.1e}  "
            f"dw {errors[2]:.1e}"
        )


# ----------------------------------------------------------------------------
# distillation: two heads, the teacher frozen
# ----------------------------------------------------------------------------


def _distill_fused(kind):
    fn = {"kl": jaxinfo.linear_kl_divergence, "js": jaxinfo.linear_js_divergence}[kind]

    def loss(x_q, w_q, x_p, w_p):
        x_p, w_p = jax.lax.stop_gradient((x_p, w_p))
        return jnp.mean(fn(x_p, w_p, x_q, w_q, temperature=2.0))

    return loss


def _distill_materialised(kind):
    def loss(x_q, w_q, x_p, w_p):
        x_p, w_p = jax.lax.stop_gradient((x_p, w_p))
        z_p, z_q = x_p @ w_p / 2.0, x_q @ w_q / 2.0
        if kind == "kl":
            return jnp.mean(jaxinfo.kl_divergence_from_logits(z_p, z_q))
        return jnp.mean(jaxinfo.js_divergence(jax.nn.softmax(z_p), jax.nn.softmax(z_q)))

    return loss


def distillation(time_shape, memory_shape, rounds, memory=True):
    """The two-head divergences against the materialised logits: rows of a table.

    Value and gradient with respect to the student (x_q, w_q), the teacher
    frozen under ``stop_gradient``, temperature 2; time and the ratio fused /
    materialised as in :func:`side_by_side`.
    """
    n, d, v = time_shape
    x_q, w_q, _ = inputs(n, d, v, seed=2)
    x_p, w_p, _ = inputs(n, d, v, seed=3)
    args = (x_q, w_q, x_p, w_p)
    progs = {}
    for kind in ("kl", "js"):
        for how, make in (("fused", _distill_fused), ("materialised", _distill_materialised)):
            vg = jax.jit(jax.value_and_grad(make(kind), argnums=(0, 1)))
            progs[kind, how] = vg.lower(*args).compile()
    results = {k: progs[k](*args) for k in progs}
    samples = {k: [] for k in progs}
    keys = list(progs)
    for r in range(rounds):
        for k in keys[r % len(keys) :] + keys[: r % len(keys)]:
            samples[k].append(timed(progs[k], args))
    rows = []
    for kind in ("kl", "js"):
        fused_k, mat_k = (kind, "fused"), (kind, "materialised")
        pairs = list(zip(samples[fused_k], samples[mat_k], strict=True))
        (value, grads), (ref_value, ref_grads) = results[fused_k], results[mat_k]
        row = {
            "name": f"linear_{kind}_divergence",
            "fused_s": statistics.median(s[0] for s in samples[fused_k]),
            "materialised_s": statistics.median(s[0] for s in samples[mat_k]),
            "ratio": statistics.median(a[0] / b[0] for a, b in pairs),
            "ratio_cpu": statistics.median(a[1] / b[1] for a, b in pairs),
            "loss_rel": abs(float(value) - float(ref_value)) / abs(float(ref_value)),
            "grad_rel": [_rel(a, b) for a, b in zip(grads, ref_grads, strict=True)],
        }
        if memory:
            mn, md, mv = memory_shape
            for dtype in (jnp.float32, jnp.bfloat16):
                shapes = [
                    jax.ShapeDtypeStruct(s, dtype) for s in ((mn, md), (md, mv), (mn, md), (md, mv))
                ]
                for how, make in (
                    ("fused", _distill_fused),
                    ("materialised", _distill_materialised),
                ):
                    vg = jax.jit(jax.value_and_grad(make(kind), argnums=(0, 1)))
                    temp = vg.lower(*shapes).compile().memory_analysis().temp_size_in_bytes
                    row[f"temp_{how}_{jnp.dtype(dtype).name}"] = temp
        rows.append(row)
    return rows


def format_distillation(rows, time_shape, memory_shape, rounds):
    n, d, v = time_shape
    mn, md, mv = memory_shape
    lines = [
        f"Distillation, value and gradient w.r.t. the student (teacher frozen, T=2): time at "
        f"N={n} D={d} V={v} float32, median of {rounds} interleaved rounds; memory: compiled "
        f"temporary bytes at N={mn} D={md} V={mv}",
        "",
        "| divergence | fused | materialised | × materialised | fused temp float32 / bfloat16 "
        "| materialised temp float32 / bfloat16 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]

    def mib(row, key):
        b = row.get(key)
        return "—" if b is None else f"{b / MiB:,.0f} MiB"

    for row in rows:
        fused_temp = f"{mib(row, 'temp_fused_float32')} / {mib(row, 'temp_fused_bfloat16')}"
        mat_temp = (
            f"{mib(row, 'temp_materialised_float32')} / {mib(row, 'temp_materialised_bfloat16')}"
        )
        lines.append(
            f"| {row['name']} | {row['fused_s'] * 1e3:.1f} ms "
            f"| {row['materialised_s'] * 1e3:.1f} ms "
            f"| {row['ratio']:.2f} (CPU {row['ratio_cpu']:.2f}) | {fused_temp} | {mat_temp} |"
        )
    lines.append("")
    for row in rows:
        grads = ", ".join(f"{g:.1e}" for g in row["grad_rel"])
        lines.append(
            f"- {row['name']} against the materialised logits: value rel. diff "
            f"{row['loss_rel']:.1e}, gradient rel. diffs ({grads})"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds per shape")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, one round")
    parser.add_argument("--large", action="store_true", help="also N=8192 D=256 V=65536")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {jax.device_count()} device(s)")
    if args.quick:
        time_shape, memory_shape, rounds = QUICK_TIME_SHAPE, QUICK_MEMORY_SHAPE, 1
    else:
        time_shape, memory_shape, rounds = TIME_SHAPE, MEMORY_SHAPE, args.rounds
    rows = side_by_side(time_shape, memory_shape, rounds, memory=not args.skip_memory)
    print(format_table(rows, time_shape, memory_shape, rounds))
    report = {"rows": rows, "time_shape": time_shape, "memory_shape": memory_shape}
    distill = distillation(time_shape, memory_shape, rounds, memory=not args.skip_memory)
    print()
    print(format_distillation(distill, time_shape, memory_shape, rounds))
    report["distillation"] = distill
    if args.quick:
        accuracy_report(*QUICK_TIME_SHAPE)
    else:
        accuracy_report()
    if args.large and not args.quick:
        # Logits of 2 GiB in float32: the materialised programs hold several
        # arrays of that size; the fused one a few tens of MiB.
        large_rounds = max(3, args.rounds // 2)
        rows = side_by_side(LARGE_SHAPE, LARGE_SHAPE, large_rounds, memory=not args.skip_memory)
        print(format_table(rows, LARGE_SHAPE, LARGE_SHAPE, large_rounds))
        report["large"] = rows
    return report


if __name__ == "__main__":
    main()

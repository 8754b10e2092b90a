"""The timing machinery: interleaved rounds, medians of per-round ratios.

For one case, shape, dtype and mode (forward, value+grad, or the gradient
alone where the case asks for it) every contender that runs in that mode is
compiled ahead of time (the compile is never timed) and called once to warm
up. Then, ``repeats`` times, each contender is timed in turn, the order
rotating from round to round (A B C, B C A, ...). The figure reported for a
contender is the median over rounds of ``time(jaxinfo) / time(contender)``
within the same round: a slow stretch of a shared machine hits both members of
a pair alike and cancels out of their ratio.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.cases import (
    ALL_MODES,
    CASES,
    MEMORY_SLACK_PER_ROW,
    TARGETS,
    Case,
    Contender,
    Target,
)

#: Every mode the suite knows; each case is measured in its own ``Case.modes``.
MODES = ALL_MODES

#: The shapes of issue 4: the same 4M elements, from many short rows to few long ones.
DEFAULT_SHAPES = ((4096, 1024), (256, 32768), (16, 262144))
DEFAULT_DTYPES = ("float32", "bfloat16")
QUICK_SHAPES = ((8, 16),)


@dataclasses.dataclass
class Measurement:
    """One contender at one configuration; times in seconds per call."""

    measure: str
    mode: str
    shape: tuple[int, ...]
    dtype: str
    contender: str
    backend: str
    formula: str
    time_s: float  # median over rounds
    ratio: float | None  # median over rounds of time(jaxinfo) / time(this); None for jaxinfo
    ratio_p25: float | None
    ratio_p75: float | None
    temp_bytes: int | None  # compiled temporary memory (JAX contenders)
    calls_per_sample: int
    rounds: int


def _loss(fn, wrt, mode="vg"):
    """``value_and_grad`` ("vg") or ``grad`` ("grad") of the summed measure
    with respect to argument ``wrt``."""

    def total(*args):
        return jnp.sum(fn(*args))

    if mode == "grad":
        return jax.grad(total, argnums=wrt)
    return jax.value_and_grad(total, argnums=wrt)


def _compile(contender: Contender, case: Case, mode: str, args):
    """Returns ``(callable, temp_bytes, hlo_text)``; numpy contenders are not compiled."""
    if contender.backend == "numpy":
        # numpy has no bfloat16 arithmetic: SciPy gets float32 host copies
        # (made here, outside the timed calls).
        host = [np.asarray(a, np.float32 if a.dtype == jnp.bfloat16 else a.dtype) for a in args]
        return (lambda: contender.fn(*host)), None, None
    fn = contender.fn if mode == "fwd" else _loss(contender.fn, case.wrt, mode)
    # Every array is an argument of the jitted function, never a closed-over
    # constant, so XLA cannot fold any of the work away at compile time.
    compiled = jax.jit(fn).lower(*args).compile()
    memory = compiled.memory_analysis()
    temp = None if memory is None else int(memory.temp_size_in_bytes)
    return (lambda: compiled(*args)), temp, compiled.as_text()


def _time_calls(call, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        jax.block_until_ready(call())
    return (time.perf_counter() - start) / n


def _calls_per_sample(call, min_time: float) -> int:
    once = _time_calls(call, 1)
    return max(1, min(10_000, math.ceil(min_time / max(once, 1e-9))))


def _percentile(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def measure_config(
    case: Case,
    mode: str,
    shape: tuple[int, ...],
    dtype: str,
    *,
    repeats: int,
    min_time: float,
    device: jax.Device,
    seed: int = 0,
    hlo_dir: str | None = None,
) -> list[Measurement]:
    """Times every contender of ``case`` that runs in ``mode``, interleaved."""
    if mode not in ALL_MODES:
        raise ValueError(f"unknown mode {mode!r}; known: {ALL_MODES}")
    args = case.inputs(jax.random.key(seed), shape, jnp.dtype(dtype))
    args = jax.device_put(args, device)
    contenders = [c for c in case.contenders if c.runs_in(mode)]
    assert contenders[0].name == "jaxinfo", "the ratios are taken against the first contender"
    calls, temps = [], []
    for contender in contenders:
        call, temp, hlo = _compile(contender, case, mode, args)
        jax.block_until_ready(call())  # warm-up, outside the timed rounds
        calls.append(call)
        temps.append(temp)
        if hlo_dir is not None and hlo is not None:
            os.makedirs(hlo_dir, exist_ok=True)
            shape_name = "x".join(map(str, shape))
            name = f"{case.measure}.{mode}.{shape_name}.{dtype}.{contender.name}.hlo.txt"
            with open(os.path.join(hlo_dir, name), "w") as f:
                f.write(hlo)
    n_calls = [_calls_per_sample(call, min_time) for call in calls]

    k = len(contenders)
    times = [[] for _ in contenders]
    for r in range(repeats):
        for j in range(k):
            i = (r + j) % k  # rotate the order round by round
            times[i].append(_time_calls(calls[i], n_calls[i]))

    out = []
    for i, contender in enumerate(contenders):
        if i == 0:
            ratios = None
        else:
            ratios = [a / b for a, b in zip(times[0], times[i], strict=True)]
        out.append(
            Measurement(
                measure=case.measure,
                mode=mode,
                shape=tuple(shape),
                dtype=dtype,
                contender=contender.name,
                backend=contender.backend,
                formula=contender.formula,
                time_s=statistics.median(times[i]),
                ratio=None if ratios is None else statistics.median(ratios),
                ratio_p25=None if ratios is None else _percentile(ratios, 25),
                ratio_p75=None if ratios is None else _percentile(ratios, 75),
                temp_bytes=temps[i],
                calls_per_sample=n_calls[i],
                rounds=repeats,
            )
        )
    return out


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: jax.Device) -> dict:
    """The machine and software the figures were taken on."""
    import optax
    import scipy

    import jaxinfo

    return {
        "device": str(device),
        "platform": device.platform,
        "device_kind": device.device_kind,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else None,
        "jaxinfo": jaxinfo.__version__,
        "optax": optax.__version__,
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def run(
    *,
    cases: list[Case] | None = None,
    shapes=DEFAULT_SHAPES,
    dtypes=DEFAULT_DTYPES,
    modes=None,
    repeats: int = 15,
    min_time: float = 0.02,
    device: str = "cpu",
    hlo_dir: str | None = None,
    progress=None,
) -> dict:
    """Runs the suite; returns a JSON-ready dict with the environment and results.

    ``modes``: None measures each case in its own ``Case.modes``; a list keeps,
    for each case, those of its modes that are in it.
    """
    cases = list(CASES if cases is None else cases)
    if modes is not None:
        unknown = [m for m in modes if m not in ALL_MODES]
        if unknown:
            raise ValueError(f"unknown mode(s) {unknown}; known: {ALL_MODES}")
    dev = jax.devices(device)[0]
    load_before = _load()
    started = time.time()
    results = []
    measured_modes = []
    for case in cases:
        for mode in case.modes:
            if modes is not None and mode not in modes:
                continue
            if mode not in measured_modes:
                measured_modes.append(mode)
            for shape in shapes:
                for dtype in dtypes:
                    ms = measure_config(
                        case,
                        mode,
                        tuple(shape),
                        dtype,
                        repeats=repeats,
                        min_time=min_time,
                        device=dev,
                        hlo_dir=hlo_dir,
                    )
                    results.extend(ms)
                    if progress is not None:
                        progress(ms)
    env = environment(dev)
    env["load_average_before"] = load_before
    env["load_average_after"] = _load()
    env["wall_s"] = round(time.time() - started, 1)
    env["date"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return {
        "environment": env,
        "settings": {
            "shapes": [list(s) for s in shapes],
            "dtypes": list(dtypes),
            "modes": [m for m in ALL_MODES if m in measured_modes],
            "repeats": repeats,
            "min_time_s": min_time,
        },
        "results": [{**dataclasses.asdict(m), "shape": list(m.shape)} for m in results],
        "targets": check_targets(results),
    }


# --------------------------------------------------------------------------
# targets and tables
# --------------------------------------------------------------------------


def _index(results):
    rows = {}
    for m in results:
        m = m if isinstance(m, Measurement) else Measurement(**m)
        rows[(m.measure, m.mode, tuple(m.shape), m.dtype, m.contender)] = m
    return rows


def _memory_ratio(mine: Measurement, other: Measurement) -> float | None:
    """jaxinfo's temporary bytes over the other's plus the per-row slack."""
    if mine.temp_bytes is None or other.temp_bytes is None:
        return None
    rows = math.prod(mine.shape[:-1])
    return mine.temp_bytes / (other.temp_bytes + MEMORY_SLACK_PER_ROW * rows)


def check_targets(results, targets: tuple[Target, ...] = TARGETS) -> list[dict]:
    """Each target with its worst figure over the measured shapes and dtypes.

    The worst figure is the largest for a ``max_ratio`` target, the smallest
    for a ``min_ratio`` one; a target is met when every figure meets it.
    Targets with no figure (a case, mode or contender not run) are left out.
    """
    rows = _index(results)
    out = []
    for t in targets:
        figures = []
        for (measure, mode, shape, dtype, name), m in rows.items():
            if (measure, mode, name) != (t.measure, t.mode, t.other):
                continue
            if t.kind == "time":
                value = m.ratio
            else:
                value = _memory_ratio(rows[(measure, mode, shape, dtype, "jaxinfo")], m)
            if value is not None:
                figures.append((value, f"{'x'.join(map(str, shape))} {dtype}"))
        if not figures:
            continue
        nans = [f for f in figures if math.isnan(f[0])]
        worst, where = nans[0] if nans else t.worst(figures)
        out.append(
            {
                **dataclasses.asdict(t),
                "worst": worst,
                "worst_at": where,
                "met": all(t.meets(v) for v, _ in figures),
            }
        )
    return out


def _configs(results):
    seen = []
    for m in results:
        key = (tuple(m["shape"]), m["dtype"])
        if key not in seen:
            seen.append(key)
    return seen


def _bytes(n):
    if n is None:
        return "n/a"
    if n >= 2**20:
        return f"{n / 2**20:.1f}M"
    return f"{n / 2**10:.1f}K" if n >= 2**10 else f"{n}B"


def _short_dtype(dtype):
    return {"float32": "f32", "bfloat16": "bf16", "float16": "f16", "float64": "f64"}.get(
        dtype, dtype
    )


def format_tables(report: dict) -> str:
    """Markdown tables: time ratios, absolute jaxinfo times, memory, targets."""
    results = report["results"]
    configs = _configs(results)
    head = [f"{'x'.join(map(str, s))} {_short_dtype(d)}" for s, d in configs]
    rows = _index(results)
    keys = []
    for m in results:
        key = (m["measure"], m["mode"], m["contender"])
        if key not in keys:
            keys.append(key)

    def table(header, body):
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)

    ratio_body, time_body, mem_body = [], [], []
    for measure, mode, name in keys:
        cells_r, cells_t, cells_m = [], [], []
        for shape, dtype in configs:
            m = rows.get((measure, mode, shape, dtype, name))
            mine = rows.get((measure, mode, shape, dtype, "jaxinfo"))
            if m is None:
                cells_r.append("")
                cells_t.append("")
                cells_m.append("")
                continue
            cells_t.append(f"{m.time_s * 1e3:.3g}")
            if m.ratio is not None:
                cells_r.append(f"{m.ratio:.2f}")
            if m.backend == "jax":
                cells_m.append(f"{_bytes(mine.temp_bytes)} / {_bytes(m.temp_bytes)}")
        if name == "jaxinfo":
            time_body.append([measure, mode, name, *cells_t])
        else:
            time_body.append([measure, mode, name, *cells_t])
            ratio_body.append([measure, mode, name, *cells_r])
            if cells_m and any(cells_m):
                mem_body.append([measure, mode, name, *cells_m])

    target_body = []
    for t in report["targets"]:
        what = "temp memory (+32 B/row)" if t["kind"] == "temp" else "time"
        # JSON written before min_ratio existed has max_ratio only.
        if t.get("min_ratio") is not None:
            bound = f">= {t['min_ratio']:.2f}"
        else:
            bound = f"<= {t['max_ratio']:.2f}"
        target_body.append(
            [
                t["measure"],
                t["mode"],
                f"{what} vs {t['other']}",
                bound,
                f"{t['worst']:.2f} ({t['worst_at']})",
                "met" if t["met"] else "MISSED",
            ]
        )

    parts = [
        "Time ratio jaxinfo / other (median of interleaved per-round ratios; < 1: jaxinfo faster)",
        "vmap: the same jaxinfo function per row under jax.vmap (near 1 is the aim); "
        "read: jnp.sum of the inputs over the last axis, the floor (fwd only)",
        "",
        table(["measure", "mode", "vs", *head], ratio_body),
        "",
        "Median time per call, ms",
        "",
        table(["measure", "mode", "contender", *head], time_body),
        "",
        "Compiled temporary memory (jaxinfo / other)",
        "",
        table(["measure", "mode", "vs", *head], mem_body),
        "",
        "Targets (worst case over shapes and dtypes)",
        "",
        table(["measure", "mode", "what", "target", "worst", ""], target_body),
    ]
    return "\n".join(parts)

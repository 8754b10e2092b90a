"""The matplotlib plot of the command line, _plot, and _pyplot, its lazy import (no fitting)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxinfo.demo._trace import _Trace
from jaxinfo.demo._units import _float32_resolution, _to_unit, _unit_name


def _pyplot():
    """matplotlib.pyplot with the Agg backend, or a clear exit if it is missing."""
    try:
        import matplotlib  # optional dependency, imported lazily
    except ImportError:
        raise SystemExit(
            "jaxinfo-demo: error: --plot needs matplotlib; install it with "
            "pip install 'jaxinfo[plot]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot(path: str, traces: Sequence[_Trace], base: float | None, batch: bool) -> None:
    """Two panels: H(P,Q) against the H(P) line, and the KL on a log scale.

    KL values below float32 resolution are rounding noise (some negative); they
    are drawn at the floor of the grey band that marks that region.
    """
    plt = _pyplot()
    unit = _unit_name(base)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    resolution = _to_unit(_float32_resolution(max(float(t.entropy.max()) for t in traces)), base)
    floor = resolution / 10

    def clip(x):
        return np.maximum(x, floor)

    for i, trace in enumerate(traces):
        c = colors[i % len(colors)]
        kl = _to_unit(trace.kl_divergence, base)
        if batch:
            ce = _to_unit(trace.cross_entropy.mean(axis=0), base)
            h = _to_unit(trace.entropy.mean(), base)
            top.plot(trace.steps, ce, color=c, label=f"mean H(P,Q), {trace.label}")
            top.axhline(h, color=c, linestyle="--", label=f"mean H(P) = {h:.4f} {unit}")
            lo, mid, hi = (np.percentile(kl, q, axis=0) for q in (10, 50, 100))
            bottom.fill_between(
                trace.steps,
                clip(lo),
                clip(hi),
                color=c,
                alpha=0.2,
                label="10th percentile to worst",
            )
            bottom.plot(trace.steps, clip(mid), color=c, label="median D(P||Q)")
            bottom.plot(trace.steps, clip(hi), color=c, linewidth=0.8, label="worst D(P||Q)")
        else:
            h = _to_unit(trace.entropy[0], base)
            ce = _to_unit(trace.cross_entropy[0], base)
            top.plot(trace.steps, ce, color=c, label=f"H(P,Q), {trace.label}")
            top.axhline(h, color=c, linestyle="--", label=f"H(P) = {h:.4f} {unit}")
            bottom.plot(trace.steps, clip(kl[0]), color=c, label=f"D(P||Q), {trace.label}")
    bottom.axhspan(floor, resolution, color="0.85", zorder=0, label="below float32 resolution")
    top.set_ylabel(f"cross-entropy H(P,Q) [{unit}]")
    top.set_title("Minimising H(P,Q) over Q drives it down to H(P)")
    top.legend(fontsize="small")
    bottom.set_yscale("log")
    bottom.set_ylim(bottom=floor)
    bottom.set_xlabel("optimiser step")
    bottom.set_ylabel(f"KL divergence D(P||Q) [{unit}]")
    bottom.legend(fontsize="small")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=80)
    plt.close(fig)

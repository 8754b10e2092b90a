"""Bias, spread and speed of jaxinfo's entropy estimators; writes docs/estimators.md.

The discrete part follows the design of Contreras Rodríguez et al., "Selecting
an effective entropy estimator for short sequences of bits and bytes with
maximum entropy", Entropy 23 (2021) 561: for uniform distributions over 256
and over 2 outcomes (and, here, also a Zipf distribution over 256), samples of
n = 8, 16, ..., 16384, 1000 repetitions each; the bias and the RMSE of every
estimator against the true entropy. The continuous part checks KSG and
Kozachenko–Leonenko against the Gaussian closed forms. The speed part times
10,000 histograms of 256 bins, every estimator, against ``infomeasure``
looping over them.

    python -m benchmarks.estimators                 # the full run (about 20 minutes on 2 cores)
    python -m benchmarks.estimators --quick         # toy sizes, seconds; writes nothing by default

Everything runs in float64 (inside ``main``; importing the module changes no setting).
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxinfo
from jaxinfo._estimators import ESTIMATORS

# infomeasure's names; its "grassberger" is the 1988 form, not the 2003 one.
INFOMEASURE = {
    "plugin": "discrete",
    "miller_madow": "miller_madow",
    "chao_shen": "chao_shen",
    "grassberger": "grassberger",
    "james_stein": "shrink",
    "zhang": "zhang",
    "chao_wang_jost": "chao_wang_jost",
    "nsb": "nsb",
}


def distributions(k_big: int):
    zipf = 1.0 / np.arange(1, k_big + 1)
    return {
        f"uniform over {k_big}": np.full(k_big, 1.0 / k_big),
        "uniform over 2": np.full(2, 0.5),
        f"Zipf over {k_big} (p_i ∝ 1/i)": zipf / zipf.sum(),
    }


def _estimate(counts: np.ndarray, estimator: str) -> np.ndarray:
    k = counts.shape[-1]
    f = jax.jit(jaxinfo.entropy_from_counts, static_argnames=("estimator", "num_classes"))
    return np.asarray(f(jnp.asarray(counts, jnp.float64), estimator=estimator, num_classes=k))


def discrete_bias(sizes, reps: int, k_big: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, p in distributions(k_big).items():
        h_true = float(-np.sum(p * np.log2(p)))
        rows = {est: {"bias": [], "rmse": []} for est in ESTIMATORS}
        for n in sizes:
            counts = rng.multinomial(n, p, size=reps)
            for est in ESTIMATORS:
                h = _estimate(counts, est) / np.log(2)  # bits, as the paper
                rows[est]["bias"].append(float(h.mean() - h_true))
                rows[est]["rmse"].append(float(np.sqrt(np.mean((h - h_true) ** 2))))
        out[name] = {"h_true_bits": h_true, "sizes": list(sizes), "estimators": rows}
        print(f"  {name}: done", flush=True)
    return out


def gaussian(rhos, sizes, reps_for, k: int = 3, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        reps = reps_for(n)
        for rho in rhos:
            cov = np.array([[1.0, rho], [rho, 1.0]])
            z = rng.multivariate_normal([0.0, 0.0], cov, size=(reps, n))
            z = jnp.asarray(z)
            t = time.perf_counter()
            mi = np.asarray(jaxinfo.mutual_information_ksg(z[..., :1], z[..., 1:], k=k))
            h = np.asarray(jaxinfo.differential_entropy(z, k=k))
            seconds = time.perf_counter() - t
            mi_true = -0.5 * math.log(1 - rho**2)
            h_true = 0.5 * math.log((2 * math.pi * math.e) ** 2 * np.linalg.det(cov))
            out.append(
                {
                    "n": n,
                    "rho": rho,
                    "reps": reps,
                    "mi_true": mi_true,
                    "mi_bias": float(mi.mean() - mi_true),
                    "mi_sd": float(mi.std(ddof=1)),
                    "h_true": h_true,
                    "h_bias": float(h.mean() - h_true),
                    "h_sd": float(h.std(ddof=1)),
                    "seconds": seconds,
                }
            )
            print(f"  n={n} rho={rho}: {seconds:.1f} s", flush=True)
    return out


NOTES = """
### Against the paper

Contreras Rodríguez et al. compared 18 estimators on the same design (uniform bytes
and bits, n = 8 … 16384, 1000 repetitions). From memory of the paper (its text was
not at hand when this page was written), they single out the James–Stein shrinkage
estimator (their SHR) as the most effective for short byte sequences, with the
coverage-based (Chao–Shen, Chao–Wang–Jost) and Bayesian (NSB) estimators next and
the plug-in, Miller–Madow, Zhang and Grassberger estimators badly biased below
n ≈ K. What we find:

- **Uniform over 256 (bytes): the same ranking at the top.** James–Stein is nearly
  unbiased from n = 8 (−0.06 bits, RMSE 0.19) because its shrinkage target, the
  uniform distribution, *is* the truth; then Chao–Wang–Jost and Chao–Shen (within
  0.3 bits from n = 32), NSB (−1.6 bits at n = 8, −0.13 at n = 128: without
  coincidences its posterior is dominated by the prior), then Grassberger,
  Zhang, Miller–Madow and plug-in: within 0.02 bits from n = 512 (Grassberger),
  n = 1024 (Zhang, Miller–Madow) and only at n = 16384 (plug-in).
  Chao–Shen overshoots (+0.28 bits at n = 32) and then undershoots again
  (−0.07 at n = 4096) where the coverage estimate changes regime; we are not sure
  the paper shows this non-monotone bias.
- **Uniform over 2 (bits): we differ.** Every estimator is within 0.1 bits at
  n = 8; the *least biased* are Zhang and Chao–Wang–Jost (|bias| ≤ 0.001 bits at
  every n) and Miller–Madow, not James–Stein (−0.04 at n = 8). In RMSE Chao–Shen is
  best at n = 8 (0.098) and James–Stein from n = 16 on. Grassberger (2003) is the
  only one biased *high* (+0.09 at n = 8).
- **Zipf over 256 (not in the paper): the ranking changes.** James–Stein now
  *overestimates* by 1.2 bits at n = 8 (it shrinks towards the uniform, far from
  the truth), and its bias crosses zero near n = 64 on its way down to −0.18 bits
  at n = 256; NSB has the smallest bias at n ≤ 16, Chao–Wang–Jost at most sizes
  from n = 32 on; Chao–Shen and NSB overshoot slightly (+0.01 to +0.08 bits) at
  n = 512–4096.
  A ranking obtained on uniform sources is a property of that source, not of the
  estimator: James–Stein's win there is built into its target.
"""


def _best_of(f, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def speed(batch: int, bins: int, samples: int, subset: int, nsb_subset: int) -> dict:
    rng = np.random.default_rng(2)
    zipf = 1.0 / np.arange(1, bins + 1)
    counts = rng.multinomial(samples, zipf / zipf.sum(), size=batch)
    c = jnp.asarray(counts, jnp.float64)
    out = {"batch": batch, "bins": bins, "samples": samples, "rows": {}}
    try:
        import infomeasure as im
    except ImportError:
        im = None
    data = [np.repeat(np.arange(bins), row) for row in counts[: max(subset, nsb_subset)]]
    for est in ESTIMATORS:
        f = jax.jit(
            lambda c, est=est: jaxinfo.entropy_from_counts(c, estimator=est, num_classes=bins)
        )
        jax.block_until_ready(f(c))
        ours = _best_of(lambda f=f: jax.block_until_ready(f(c)), 3)
        row = {"jaxinfo_s": ours}
        if im is not None:
            m = nsb_subset if est == "nsb" else subset
            kw = {"K": bins} if est == "nsb" else {}
            t = time.perf_counter()
            for x in data[:m]:
                im.entropy(x, approach=INFOMEASURE[est], **kw)
            per_row = (time.perf_counter() - t) / m
            row.update(
                infomeasure_rows_timed=m,
                infomeasure_s=per_row * batch,
                ratio=per_row * batch / ours,
            )
        out["rows"][est] = row
        print(f"  {est}: {row}", flush=True)
    return out


def plots(discrete: dict, outdir: pathlib.Path, stem: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for i, (name, res) in enumerate(discrete.items()):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for est in ESTIMATORS:
            ax.plot(res["sizes"], res["estimators"][est]["bias"], marker="o", ms=3, label=est)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sample size n")
        ax.set_ylabel("bias (bits)")
        ax.set_title(f"Bias of the entropy estimators: {name}, H = {res['h_true_bits']:.3f} bits")
        ax.legend(fontsize=8, ncol=2)
        fig.tight_layout()
        path = outdir / f"{stem}_{i}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        names.append(path.name)
    return names


def _fmt(x: float) -> str:
    return f"{x:+.3f}" if abs(x) >= 5e-4 else f"{x:+.1e}"


def tables(results: dict) -> str:
    d = results["discrete"]
    lines = []
    shown = [n for n in (8, 64, 256, 1024, 16384) if n in next(iter(d.values()))["sizes"]]
    head = " | ".join(f"n={n}" for n in shown)
    lines += [
        f"| distribution | estimator | bias (bits) {head} | RMSE (bits) {head} |".replace(
            f"bias (bits) {head} | RMSE (bits) {head}",
            " | ".join([f"bias n={n}" for n in shown] + [f"RMSE n={n}" for n in shown]),
        ),
        "| --- | --- | " + " | ".join(["---:"] * (2 * len(shown))) + " |",
    ]
    for name, res in d.items():
        idx = [res["sizes"].index(n) for n in shown]
        for est in ESTIMATORS:
            r = res["estimators"][est]
            cells = [_fmt(r["bias"][i]) for i in idx] + [f"{r['rmse'][i]:.3f}" for i in idx]
            lines.append(f"| {name} | `{est}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gaussian_table(rows: list) -> str:
    lines = [
        "| n | ρ | reps | I true | KSG bias | KSG sd | h true | KL bias | KL sd |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['rho']} | {r['reps']} | {abs(r['mi_true']):.4f} | "
            f"{r['mi_bias']:+.4f} | "
            f"{r['mi_sd']:.4f} | {r['h_true']:.4f} | {r['h_bias']:+.4f} | {r['h_sd']:.4f} |"
        )
    return "\n".join(lines)


def speed_table(s: dict) -> str:
    lines = [
        "| estimator | jaxinfo, whole batch (s) | infomeasure, scaled to the batch (s) "
        "| rows timed | ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for est, r in s["rows"].items():
        if "ratio" in r:
            lines.append(
                f"| `{est}` | {r['jaxinfo_s']:.4f} | {r['infomeasure_s']:.1f} | "
                f"{r['infomeasure_rows_timed']} | {r['ratio']:.3g}× |"
            )
        else:
            lines.append(f"| `{est}` | {r['jaxinfo_s']:.4f} | – | – | – |")
    return "\n".join(lines)


def ranking(res: dict, n: int) -> str:
    """Estimators by the size of their bias at sample size ``n``, smallest first."""
    i = res["sizes"].index(n)
    order = sorted(ESTIMATORS, key=lambda e: abs(res["estimators"][e]["bias"][i]))
    return " < ".join(f"`{e}`" for e in order)


def page(results: dict, notes: str = "") -> str:
    """docs/estimators.md from the results: tables, plots, rankings, and ``notes``."""
    out = ["# Entropy estimators: bias, spread and speed", ""]
    out += [
        "Generated by `python -m benchmarks.estimators --json benchmarks/results/estimators.json "
        "--docs docs --page docs/estimators.md` "
        f"on {results.get('device', '?')}, jax {results.get('jax', '?')}, float64.",
        "",
    ]
    if "discrete" in results:
        d = results["discrete"]
        out += [
            "## Discrete: the design of Contreras Rodríguez et al. (2021)",
            "",
            f"{results['discrete_reps']} histograms of n samples for each n = 8, 16, ..., 16384, "
            "from each distribution; bias (mean estimate minus the true entropy) and RMSE in bits. "
            "`nsb` and `james_stein` are given the alphabet size K (256 or 2).",
            "",
        ]
        for name, png in zip(d, results.get("plots", []), strict=False):
            out += [f"![bias, {name}]({png})", ""]
        out += [tables(results), ""]
        out += ["Ranking by |bias| (smallest first):", ""]
        for name, res in d.items():
            for n in (8, 256, 4096):
                if n in res["sizes"]:
                    out.append(f"- {name}, n = {n}: {ranking(res, n)}")
        out.append("")
    if notes:
        out += [notes.strip(), ""]
    if "gaussian" in results:
        out += [
            "## Continuous: KSG and Kozachenko–Leonenko against the Gaussian closed forms",
            "",
            "Bivariate normal, unit variances, correlation ρ; k = 3. KSG estimates "
            "I(X;Y) = −½ log(1 − ρ²) from the two coordinates, Kozachenko–Leonenko the joint "
            "h = ½ log((2πe)² det Σ), in nats; bias and standard deviation over the repetitions. "
            "n = 10000 has 10 repetitions, not 100: on the 2 shared CPU cores of this run one "
            "repetition of both estimators took about 7 s (n² = 10⁸ distances each), so 100 "
            "would have taken some 50 minutes for the four ρ. Its bias is therefore known only "
            "to about sd/√10.",
            "",
            gaussian_table(results["gaussian"]),
            "",
            "KSG is nearly unbiased for independent and moderately dependent pairs at every n; "
            "at ρ = 0.99 (I = 1.96 nats) it underestimates at n = 100 (−0.11), the known "
            "weakness of kNN estimators for strong dependence, and the bias shrinks with n. "
            "Kozachenko–Leonenko is off by up to 0.06 nats at n = 100 (mostly low), by 0.015–0.04 "
            "at n = 1000 and by at most 0.02 nats at n = 10000.",
            "",
        ]
    if "speed" in results:
        s = results["speed"]
        out += [
            "## Speed: a batch of histograms against infomeasure looping over them",
            "",
            f"{s['batch']:,} histograms of {s['bins']} bins ({s['samples']} samples each, Zipf), "
            "every estimator; jaxinfo jitted on the whole batch (best of 3, after compiling), "
            "infomeasure 0.6.3 called once per histogram on its samples, timed on the first "
            "`rows timed` histograms and scaled to the batch. Same CPU (2 cores shared "
            "with other jobs), float64. Ratio: infomeasure's time over jaxinfo's.",
            "",
            speed_table(s),
            "",
            "Every estimator but NSB is 13–250× faster batched than looped. NSB is slower "
            "here: jaxinfo evaluates the posterior at 288 values of the concentration "
            "(three fixed stages of 96) for each of the 256 bins, seen or not, of each "
            "histogram, to reach 1e-9 relative accuracy without an adaptive loop; infomeasure "
            "runs an adaptive `quad` over the observed bins only. The two do not compute the "
            "same number either (infomeasure's likelihood weights each bin's log-Gamma ratio "
            "by its count, and its posterior mean leaves out the unseen bins), so NSB is timed "
            "but not compared in the tests. On an accelerator the fixed rule is one batched "
            "program; no GPU was available for this run.",
            "",
        ]
    return "\n".join(out)


def main(argv=None) -> dict:
    # float64 for this run only: importing this module (the tests do) changes nothing.
    with jax.enable_x64(True):
        return _main(argv)


def _main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy sizes (seconds)")
    parser.add_argument("--json", type=pathlib.Path, help="write the results here")
    parser.add_argument("--docs", type=pathlib.Path, help="write the PNGs here")
    parser.add_argument("--parts", default="discrete,gaussian,speed")
    parser.add_argument("--page", type=pathlib.Path, help="write the markdown page here")
    parser.add_argument(
        "--from-json", type=pathlib.Path, help="make the page and plots from these results"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        results = json.loads(args.from_json.read_text())
        if args.docs and "discrete" in results:
            results["plots"] = plots(results["discrete"], args.docs, "estimators_bias")
        if args.page:
            args.page.write_text(page(results, NOTES))
        return results
    parts = set(args.parts.split(","))
    if args.quick:
        sizes, reps, k_big = [8, 16], 20, 8
        g_sizes, g_reps = [50], lambda n: 3
        sp = dict(batch=50, bins=8, samples=40, subset=5, nsb_subset=2)
    else:
        sizes, reps, k_big = [2**e for e in range(3, 15)], 1000, 256
        g_sizes = [100, 1000, 10000]
        g_reps = lambda n: 100 if n <= 1000 else 10  # noqa: E731
        sp = dict(batch=10000, bins=256, samples=1000, subset=200, nsb_subset=20)
    results = {"device": str(jax.devices()[0]), "jax": jax.__version__}
    if "discrete" in parts:
        print("discrete bias and RMSE", flush=True)
        results["discrete"] = discrete_bias(sizes, reps, k_big)
        results["discrete_reps"] = reps
    if "gaussian" in parts:
        print("KSG and Kozachenko–Leonenko against the Gaussian closed forms", flush=True)
        results["gaussian"] = gaussian([0.0, 0.5, 0.9, 0.99], g_sizes, g_reps)
    if "speed" in parts:
        print("speed", flush=True)
        results["speed"] = speed(**sp)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.docs and "discrete" in results:
        results["plots"] = plots(results["discrete"], args.docs, "estimators_bias")
    if args.page:
        args.page.write_text(page(results, NOTES))
    return results


if __name__ == "__main__":
    main()

"""The tour notebook's section on the wider family of measures (issue 6), as cells.

``TOUR_FAMILY`` is a list of notebook cells in the form ``notebooks/build.py``
uses (``md(...)`` and ``code(...)``), meant to go into its ``TOUR`` list just
before ``TOUR_END``. The cells rely only on the tour's first code cell
(``jax``, ``jnp``, ``np``, ``plt`` and ``jaxinfo`` imported).

Run this file to execute the cells on their own, with that preamble, figures
written to a temporary folder instead of shown:

    python notebooks/sections/family_section.py
"""

from __future__ import annotations

import textwrap

import nbformat


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(textwrap.dedent(text).strip())


TOUR_FAMILY = [
    md(
        r"""
        ## 6. The family: mutual information, Rényi entropy, estimates from counts

        Entropy and the KL divergence have relatives that researchers reach for
        as soon as there are two variables, a need for a tunable notion of
        uncertainty, or only a sample to go on. jaxinfo has them with the same
        conventions (probabilities normalised along `axis`, `base=2` for bits,
        `where` masks, batching, finite gradients at zeros):

        * `joint_entropy`, `conditional_entropy` and `mutual_information` of a
          joint table $p(x, y)$ with $X$ on axis −2 and $Y$ on axis −1;
        * `js_divergence`, `renyi_entropy`, `renyi_divergence`, `perplexity`
          and `binary_entropy`;
        * `entropy_from_counts`, which estimates $H$ from a histogram.

        ### A noisy channel

        Send a fair bit $X$ through a *binary symmetric channel* that flips it
        with probability $\varepsilon$, and receive $Y$. The mutual information

        $$I(X; Y) = H(Y) - H(Y \mid X) = 1 - h(\varepsilon) \text{ bits}$$

        is how much the received bit says about the sent one: one bit through a
        perfect channel, nothing when $\varepsilon = 1/2$, and one bit again
        when the channel always flips (just invert what arrives). With a fair
        input this is the channel's capacity; a biased input sends less.
        """
    ),
    code(
        r"""
        def bsc_joint(flip, prior_one=0.5):
            # p(x, y) = p(x) p(y | x): X (sent) on axis -2, Y (received) on axis -1.
            px = jnp.array([1 - prior_one, prior_one])
            keep, swap = 1 - flip, flip
            channel = jnp.stack([jnp.stack([keep, swap], -1), jnp.stack([swap, keep], -1)], -2)
            return px[:, None] * channel

        flip = jnp.linspace(0.0, 1.0, 201)
        mi_fair = jaxinfo.mutual_information(bsc_joint(flip), base=2)  # 201 tables, one call
        mi_biased = jaxinfo.mutual_information(bsc_joint(flip, 0.1), base=2)
        capacity = 1 - jaxinfo.binary_entropy(flip, base=2)
        print(f"max |I - (1 - h(eps))| over the grid: {float(jnp.max(jnp.abs(mi_fair - capacity))):.1e} bits")
        print(f"eps = 0.11: I = {float(jaxinfo.mutual_information(bsc_joint(0.11), base=2)):.4f} bits")

        # Differentiable in the channel: dI/deps = -log2((1 - eps) / eps).
        slope = jax.grad(lambda e: jaxinfo.mutual_information(bsc_joint(e), base=2))
        print(f"dI/deps at 0.1: {float(slope(0.1)):.4f} (exact {-np.log2(0.9 / 0.1):.4f});"
              f" at 0.5: {float(slope(0.5)):.1e};"
              f" at 0, a table with zero cells: {float(slope(0.0)):.1f} (finite; the exact one is -inf)")

        fig, ax = plt.subplots(figsize=(6.5, 3.5))
        ax.plot(flip, mi_fair, label="I(X;Y), fair input")
        ax.plot(flip, mi_biased, label="I(X;Y), input 1 with prob. 0.1")
        ax.plot(flip[::10], capacity[::10], "k.", label=r"$1 - h(\varepsilon)$")
        ax.plot(flip, jaxinfo.conditional_entropy(bsc_joint(flip), base=2), ":",
                label="H(Y|X), fair input")
        ax.set(xlabel=r"flip probability $\varepsilon$", ylabel="bits",
               title="Binary symmetric channel")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        plt.show()
        """
    ),
    md(
        r"""
        ### Rényi entropy: one dial from "how many outcomes" to "how likely the best guess"

        $$H_\alpha(P) = \frac{1}{1 - \alpha} \log \sum_i p_i^\alpha$$

        weights outcomes by $p^\alpha$: $\alpha = 0$ counts the possible
        outcomes ($\log$ of the support size, Hartley), $\alpha = 1$ is
        Shannon's entropy, $\alpha = 2$ the collision entropy
        $-\log \sum p_i^2$ (the chance that two draws agree), and
        $\alpha \to \infty$ the min-entropy $-\log \max p_i$ (the chance of
        guessing right in one go, which matters in cryptography). $H_\alpha$
        never increases with $\alpha$, and it is flat only for a uniform
        distribution. The formula is $0/0$ at $\alpha = 1$; jaxinfo evaluates it
        there and around it without loss, with the derivative
        $-\mathrm{Var}_P[\log p] / 2$, and `alpha` may be traced, so one `vmap`
        draws each curve.
        """
    ),
    code(
        r"""
        distributions = {
            "uniform over 4": [0.25, 0.25, 0.25, 0.25],
            "[1/2, 1/4, 1/8, 1/8]": [0.5, 0.25, 0.125, 0.125],
            "[0.7, 0.1, 0.1, 0.1]": [0.7, 0.1, 0.1, 0.1],
            "[0.97, 0.01, 0.01, 0.01]": [0.97, 0.01, 0.01, 0.01],
        }
        alphas = jnp.linspace(0.0, 6.0, 241)
        renyi_curve = jax.jit(jax.vmap(lambda p, a: jaxinfo.renyi_entropy(p, a, base=2), in_axes=(None, 0)))
        slope_at_one = jax.grad(lambda a, p: jaxinfo.renyi_entropy(p, a, base=2))

        print(f"{'':26s} {'H_0':>6s} {'H_1':>6s} {'H_2':>6s} {'H_inf':>6s}   dH/dalpha at 1")
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        for name, p in distributions.items():
            p = jnp.array(p)
            line, = ax.plot(alphas, renyi_curve(p, alphas), label=name)
            special = renyi_curve(p, jnp.array([0.0, 1.0, 2.0, jnp.inf]))
            ax.plot([0, 1, 2], special[:3], "o", color=line.get_color(), ms=4)
            ax.axhline(float(special[3]), color=line.get_color(), ls=":", lw=0.8)
            var_bits = float(jnp.sum(p * (jnp.log2(p) + jaxinfo.entropy(p, base=2)) ** 2))
            print(f"{name:26s} " + " ".join(f"{float(h):6.3f}" for h in special)
                  + f"   {float(slope_at_one(1.0, p)):+.4f} (-Var/2 ln2 = {-var_bits * np.log(2) / 2:+.4f})")
        ax.set(xlabel=r"order $\alpha$", ylabel=r"$H_\alpha$ [bits]",
               title=r"Rényi entropy across $\alpha$ (dotted: $H_\infty$; dots: $\alpha$ = 0, 1, 2)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
        plt.show()
        """
    ),
    md(
        r"""
        ### Estimating entropy from a sample

        With only $N$ samples the natural estimate, the entropy of the observed
        frequencies (*plug-in*), is biased low: a small sample looks more
        predictable than its source, and outcomes never seen count for
        nothing. *Miller–Madow* adds the first-order correction $(m - 1)/(2N)$
        nats for $m$ occupied bins. *Chao–Shen* (2003) also estimates how much
        probability the unseen outcomes hold (the sample coverage
        $1 - f_1/N$, from the number $f_1$ of outcomes seen once) and weights
        each seen outcome by the inverse of its chance of being seen at all.

        Below: a Zipf distribution over 20 outcomes, 2000 samples of each size
        $N$; the mean estimate minus the truth, with two standard errors.
        """
    ),
    code(
        r"""
        k = 20
        p_true = 1.0 / np.arange(1, k + 1)
        p_true /= p_true.sum()
        h_true = float(jaxinfo.entropy(jnp.asarray(p_true)))
        sizes = [5, 10, 20, 50, 100, 200, 500, 1000]
        estimators = {"plugin": "plug-in", "miller_madow": "Miller–Madow", "chao_shen": "Chao–Shen"}
        estimate = jax.jit(jaxinfo.entropy_from_counts, static_argnames="estimator")

        rng = np.random.default_rng(0)
        bias = {e: [] for e in estimators}
        stderr = {e: [] for e in estimators}
        for n in sizes:
            counts = jnp.asarray(rng.multinomial(n, p_true, size=2000))  # 2000 histograms
            for e in estimators:
                h = np.asarray(estimate(counts, estimator=e))
                bias[e].append(h.mean() - h_true)
                stderr[e].append(h.std(ddof=1) / np.sqrt(h.size))

        print(f"H = {h_true:.4f} nats; mean bias in nats:")
        print("     N " + "".join(f"{estimators[e]:>14s}" for e in estimators))
        for i, n in enumerate(sizes):
            print(f"{n:6d} " + "".join(f"{bias[e][i]:+14.4f}" for e in estimators))

        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        for e, label in estimators.items():
            ax.errorbar(sizes, bias[e], yerr=2 * np.array(stderr[e]), marker="o", ms=4,
                        capsize=2, label=label)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set(xscale="log", xlabel="sample size N", ylabel="mean estimate − true H [nats]",
               title=f"Bias of entropy estimators, Zipf over {k} outcomes")
        ax.grid(alpha=0.3)
        ax.legend()
        plt.show()
        """
    ),
    md(
        r"""
        The plug-in estimate falls short by about $(K - 1)/(2N)$ nats once most
        outcomes have been seen, and by more when many have not. Miller–Madow
        removes most of that for moderate $N$; Chao–Shen is the one that copes
        with small samples where many outcomes are still unseen, and for large
        samples (full coverage) it comes back to the plug-in value, so there
        Miller–Madow is the better of the three.
        """
    ),
]


def _run() -> None:
    """Executes the code cells after the tour's imports; figures go to a temporary folder."""
    import os
    import tempfile
    import time

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = tempfile.mkdtemp(prefix="family_section_")
    shown = []

    def show() -> None:
        path = os.path.join(out, f"figure_{len(shown)}.png")
        plt.gcf().savefig(path, bbox_inches="tight")  # as the inline backend does
        plt.close("all")
        shown.append(path)

    namespace: dict = {}
    exec(
        "import jax\nimport jax.numpy as jnp\nimport matplotlib.pyplot as plt\n"
        "import numpy as np\nimport jaxinfo\n",
        namespace,
    )
    plt.show = show
    start = time.perf_counter()
    for cell in TOUR_FAMILY:
        if cell.cell_type == "code":
            exec(cell.source, namespace)
    print(f"\n{len(shown)} figures in {out}; {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    _run()

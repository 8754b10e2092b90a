"""Builds the notebooks in this folder from the cell sources below, and runs them.

    python notebooks/build.py                # rebuild and execute every notebook
    python notebooks/build.py 01_tour        # only the ones named

Each notebook is a list of sections and each section a list of cells, written
here as plain strings, so that the notebooks are reproducible and reviewable as
code. The script writes every notebook with its outputs (figures as embedded
PNG), executed top to bottom in a fresh kernel whose working folder is the
repository root, so the jaxinfo of this checkout is the one imported.

To add a section, write a list of cells like those below and put it in the
notebook's list of sections (``TOUR`` or ``DEMO``), then run this script and
commit the rebuilt notebook. ``tests/test_notebooks.py`` checks that the stored
notebooks match these sources and that they run without error.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip())


def code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(textwrap.dedent(text).strip())


# ============================================================================
# 01_tour: the seed article's ideas, checked with jaxinfo
# ============================================================================

TOUR_INTRO = [
    md(
        """
        # A tour of information theory with jaxinfo

        This notebook walks through the ideas of the short article that started
        jaxinfo, a Chinese blog post on information content, entropy, relative
        entropy (the KL divergence) and cross-entropy, and checks each of its
        numbers with jaxinfo. The article's running example is football: some
        matches are all but decided before kick-off, others are open.

        Every jaxinfo function takes probabilities with the true distribution
        first. `base=2` gives bits, the article's unit; without it the result is
        in nats.
        """
    ),
    code(
        """
        import jax
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np

        import jaxinfo

        plt.rcParams["figure.dpi"] = 80
        """
    ),
]

TOUR_INFORMATION = [
    md(
        """
        ## 1. The information of an event

        How much does it tell you that something happened? The less likely it
        was, the more. A result everybody expected is hardly news; an upset is.
        The article measures the information content (or *surprisal*) of an event
        of probability $p$ as

        $$h = -\\log_2 p .$$

        The logarithm of a probability is never positive, so the minus sign makes
        $h \\ge 0$, growing as $p$ shrinks. In base 2 the unit is the bit: an event
        of probability $1/2^n$ is as surprising as $n$ fair coins all landing
        heads, and carries $n$ bits.
        """
    ),
    code(
        """
        teams = {"the 99% favourite": 0.99, "a fair coin flip": 0.5, "the 1% outsider": 0.01}
        bits = jaxinfo.information(jnp.array(list(teams.values())), base=2)
        for (name, p), h in zip(teams.items(), bits):
            print(f"{name:18s}  p = {p:<5}  h = {float(h):.4f} bits")
        """
    ),
    md(
        """
        A win of the 1% team is 6.64 bits of news (the article prints 6.6493 once,
        a slip for 6.6439); the favourite's win is only 0.0145 bits. Information
        of independent events adds up, because probabilities multiply and the
        logarithm turns products into sums: the outsider winning *and* a coin
        landing heads has probability 0.005, and carries 6.6439 + 1 bits.
        """
    ),
    code(
        """
        both = jaxinfo.information(jnp.array(0.01 * 0.5), base=2)
        print(f"h(0.01 x 0.5) = {float(both):.4f} bits = {float(bits[2]):.4f} + {float(bits[1]):.4f}")

        p = jnp.linspace(0.002, 1.0, 500)
        fig, ax = plt.subplots(figsize=(6.5, 3.5))
        ax.plot(p, jaxinfo.information(p, base=2), label="$h = -\\\\log_2 p$")
        label_at = [(0.55, 2.2), (0.45, 4.2), (0.1, 6.9)]  # where the labels go, in data units
        for (name, pk), h, at in zip(teams.items(), bits, label_at):
            ax.plot(pk, float(h), "o")
            ax.annotate(f"{name}: {float(h):.4f} bits", (pk, float(h)), xytext=at,
                        arrowprops=dict(arrowstyle="->", color="0.5"))
        ax.set(xlabel="probability p of the event", ylabel="information [bits]",
               title="Rare events carry more information")
        ax.grid(alpha=0.3)
        ax.legend()
        plt.show()
        """
    ),
]

TOUR_TWO_SYSTEMS = [
    md(
        """
        ## 2. Two systems: why entropy weights information by probability

        How uncertain is a whole *system* of outcomes? The article compares two
        matches:

        * system 1: Belgium against Argentina, each winning with probability 0.5;
        * system 2: France against China, France winning with probability 0.99.

        A first idea is to add up the information of the possible outcomes:
        """
    ),
    code(
        """
        system1 = jnp.array([0.5, 0.5])
        system2 = jnp.array([0.99, 0.01])
        naive1 = jaxinfo.information(system1, base=2).sum()
        naive2 = jaxinfo.information(system2, base=2).sum()
        print(f"sum of information: system 1 {float(naive1):.4f} bits, system 2 {float(naive2):.4f} bits")
        """
    ),
    md(
        """
        By this count system 2 would be the more uncertain, with 6.6584 bits
        against 2, yet system 2 is nearly decided while system 1 is a coin toss.
        The sum goes wrong because it counts China's 6.64 bits in full although
        that outcome occurs in one match out of a hundred, and France's 0.0145
        bits, received in the other ninety-nine, no more than once. Weighting
        each outcome's information by how often it occurs gives the *average*
        information per match, the entropy

        $$H(P) = -\\sum_i p_i \\log_2 p_i .$$
        """
    ),
    code(
        """
        h1 = jaxinfo.entropy(system1, base=2)
        h2 = jaxinfo.entropy(system2, base=2)
        print(f"entropy: system 1 {float(h1):.4f} bits, system 2 {float(h2):.6f} bits")
        terms = system2 * jaxinfo.information(system2, base=2)
        print(f"system 2 term by term: France {float(terms[0]):.6f} + China {float(terms[1]):.6f} bits")

        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
        x = np.arange(2)
        for offset, values, label in [(-0.2, [naive1, naive2], "sum of information"),
                                      (0.2, [h1, h2], "entropy (weighted by probability)")]:
            bars = left.bar(x + offset, [float(v) for v in values], width=0.4, label=label)
            left.bar_label(bars, fmt="%.4g")
        left.set_xticks(x, ["system 1: 50% / 50%", "system 2: 99% / 1%"])
        left.set(ylabel="bits", ylim=(0, 10.5), title="Adding up vs weighting by probability")
        left.legend(loc="upper left")

        q = jnp.linspace(0.0, 1.0, 501)
        two_outcomes = jnp.stack([q, 1 - q], axis=-1)  # 501 distributions, one call
        right.plot(q, jaxinfo.entropy(two_outcomes, base=2))
        right.plot([0.5, 0.99], [float(h1), float(h2)], "o")
        right.annotate("system 1: 1 bit", (0.5, float(h1)), textcoords="offset points", xytext=(-30, -18))
        right.annotate(f"system 2: {float(h2):.4f} bits", (0.99, float(h2)),
                       textcoords="offset points", xytext=(-120, 4))
        right.set(xlabel="probability of the first outcome", ylabel="entropy [bits]",
                  title="Entropy of a match with two outcomes")
        right.grid(alpha=0.3)
        plt.show()
        """
    ),
    md(
        """
        The entropy of a two-outcome system is largest, one bit, when both are
        equally likely, and falls to zero as the result becomes certain. The curve
        comes from a single call on 501 distributions, the two ends included,
        where `0 log 0` counts as 0.
        """
    ),
]

TOUR_CROSS_ENTROPY = [
    md(
        """
        ## 3. Cross-entropy and KL divergence

        Now suppose the truth is $P$, but our expectations come from a model $Q$,
        say we take system 2 for an even match. The information we assign to each
        outcome is $-\\log q_i$, from the model, while the outcomes occur as often
        as the truth says. On average that is the cross-entropy

        $$H(P, Q) = -\\sum_i p_i \\log q_i .$$

        In the language of codes, $H(P, Q)$ is the average length of a message
        that names each outcome with a code built for $Q$; the best code, built
        for $P$, needs only $H(P)$. The excess is the KL divergence, or relative
        entropy:

        $$D(P \\,\\|\\, Q) = \\sum_i p_i \\log \\frac{p_i}{q_i} = H(P, Q) - H(P),
        \\qquad H(P, Q) = H(P) + D(P \\,\\|\\, Q).$$

        The truth comes first, as in the article, SciPy and jaxinfo (optax orders
        its loss functions the other way round). Since $H(P)$ is fixed by the
        truth, whatever lowers the cross-entropy over $Q$ lowers the divergence by
        exactly as much: this is why cross-entropy is the loss of classification.
        """
    ),
    code(
        """
        p = system2
        models = {
            "Q = P, 99/1": [0.99, 0.01],
            "Q = 90/10": [0.9, 0.1],
            "Q = 70/30": [0.7, 0.3],
            "Q = 50/50": [0.5, 0.5],
            "Q = 20/80": [0.2, 0.8],
        }
        q = jnp.array(list(models.values()))  # five models; p broadcasts against them
        ce = jaxinfo.cross_entropy(p, q, base=2)
        kl = jaxinfo.kl_divergence(p, q, base=2)
        h = jaxinfo.entropy(p, base=2)
        print(f"{'model':12s} {'H(P,Q)':>8s} {'H(P)':>8s} {'D(P||Q)':>8s} {'H(P)+D(P||Q)':>13s}")
        for name, c, k in zip(models, ce, kl):
            print(f"{name:12s} {float(c):8.4f} {float(h):8.4f} {float(k):8.4f} {float(h + k):13.4f}")

        fig, ax = plt.subplots(figsize=(7.5, 3.8))
        names = list(models)
        ax.bar(names, [float(h)] * len(names), label="H(P), the entropy of the truth")
        ax.bar(names, np.asarray(kl), bottom=float(h), label="D(P‖Q), the extra cost of the model")
        ax.plot(names, np.asarray(ce), "kD", label="H(P,Q), computed on its own")
        ax.set(ylabel="bits", title="Cross-entropy = entropy + KL divergence, for P = 99% / 1%")
        ax.legend(loc="upper left")
        plt.show()
        """
    ),
    md(
        """
        The diamonds, computed by `cross_entropy` alone, sit on top of the stacks
        of `entropy` and `kl_divergence`. For the even-match model the
        cross-entropy is exactly 1 bit: 0.0808 bits of real uncertainty and 0.9192
        bits wasted on a wrong belief.

        The divergence is not a distance: it is not symmetric. Mistaking the
        lopsided match for an even one costs less than the reverse, because the
        reverse mistake gives the outcome that happens half the time a
        probability of only 1%.
        """
    ),
    code(
        """
        lopsided, even = jnp.array([0.99, 0.01]), jnp.array([0.5, 0.5])
        print(f"D(lopsided || even) = {float(jaxinfo.kl_divergence(lopsided, even, base=2)):.4f} bits")
        print(f"D(even || lopsided) = {float(jaxinfo.kl_divergence(even, lopsided, base=2)):.4f} bits")
        """
    ),
]

TOUR_GIBBS = [
    md(
        """
        ## 4. Gibbs' inequality

        The article leans on Gibbs' inequality: $H(P, Q) \\ge H(P)$ for every
        model $Q$, with equality only when $Q = P$. So the KL divergence is never
        negative, and the cross-entropy is smallest when the model is the truth.
        We cannot try every $Q$, but we can try a great many in one call: 100,000
        random models of a fixed 5-class $P$, plus models that mix $P$ with a
        little of a random one, to come close to $P$.
        """
    ),
    code(
        """
        rng = np.random.default_rng(0)
        p = jnp.asarray(rng.dirichlet(np.ones(5)), jnp.float32)
        far = rng.dirichlet(np.ones(5), size=100_000)
        t = 10 ** rng.uniform(-2, 0, size=(20_000, 1))  # how much of a random model to mix in
        near = (1 - t) * np.asarray(p) + t * rng.dirichlet(np.ones(5), size=20_000)
        q = jnp.asarray(np.concatenate([far, near]), jnp.float32)

        ce = jaxinfo.cross_entropy(p, q, base=2)  # 120,000 cross-entropies, one call
        h = jaxinfo.entropy(p, base=2)
        kl = jaxinfo.kl_divergence(p, q, base=2)
        print("P =", np.round(np.asarray(p), 4))
        print(f"H(P) = {float(h):.6f} bits; the smallest H(P,Q) over {q.shape[0]:,} models is {float(ce.min()):.6f} bits")
        print(f"models with D(P||Q) < 0: {int((kl < 0).sum())}; smallest D(P||Q): {float(kl.min()):.2e} bits")

        distance = 0.5 * jnp.abs(q - p).sum(axis=-1)  # total variation distance from P
        fig, ax = plt.subplots(figsize=(7, 3.8))
        ax.scatter(distance[::10], ce[::10], s=2, alpha=0.4, label="H(P,Q) of a random model Q")
        ax.axhline(float(h), color="k", linestyle="--", label=f"H(P) = {float(h):.4f} bits")
        ax.set(xscale="log", xlabel="distance of Q from P (total variation)", ylabel="H(P,Q) [bits]",
               title="Every model pays at least H(P); only models close to P come close")
        ax.legend()
        plt.show()
        """
    ),
]

TOUR_UNITS = [
    md(
        """
        ## 5. Bits, nats and other units

        The base of the logarithm only chooses the unit: base 2 gives bits, the
        natural logarithm nats, base 10 hartleys. Changing the base multiplies
        every measure by the same constant (one nat is $1/\\ln 2 \\approx 1.4427$
        bits), so it never changes which model is best. jaxinfo returns nats
        unless told otherwise, as SciPy and optax do and as gradients prefer
        ($d \\ln x / dx = 1/x$ with no stray constant); `base=2` gives the article's
        bits. The base may even be a traced value inside `jit`.
        """
    ),
    code(
        """
        for base, unit in [(None, "nats"), (2, "bits"), (10, "hartleys")]:
            print(f"H(system 2) = {float(jaxinfo.entropy(system2, base=base)):.6f} {unit}")
        ratio = jaxinfo.entropy(system2, base=2) / jaxinfo.entropy(system2)
        print(f"bits per nat: {float(ratio):.6f} (1 / ln 2 = {1 / np.log(2):.6f})")

        entropy_in_base = jax.jit(lambda base: jaxinfo.entropy(system2, base=base))
        print("under jit, bases 2, e, 10:", [round(float(entropy_in_base(b)), 6) for b in (2.0, np.e, 10.0)])
        """
    ),
]

TOUR_FAMILY = [
    md(
        r"""
        ## 6. The family: mutual information, Rényi entropy, estimates from counts

        The article stops at cross-entropy and the KL divergence, but their
        relatives come up as soon as there are two variables, a need for a
        tunable notion of uncertainty, or only a sample to go on. jaxinfo has
        them with the same conventions (probabilities normalised along `axis`,
        `base=2` for bits, `where` masks, batching, finite gradients at zeros):

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

TOUR_GAUSSIAN = [
    md(
        r"""
        ## 7. Continuous distributions: a VAE's KL term, and KL from samples

        A variational autoencoder's encoder outputs, for each input, a diagonal
        Gaussian $P = \mathcal{N}(\mu, \operatorname{diag} \sigma^2)$ as a mean and a
        log-variance, and its loss charges the KL divergence from $P$ to the
        prior $Q = \mathcal{N}(0, I)$:

        $$D(P \| Q) = \tfrac12 \sum_i \left(\sigma_i^2 - 1 - \log \sigma_i^2 + \mu_i^2\right).$$

        `gaussian_kl_divergence(mean, log_var)` is that term (the prior is its
        default `Q`), summed over the last axis, for a whole batch at once. Each
        summand is non-negative, so the result is exactly 0 when the posterior
        is the prior, and stays finite for log-variances of ±80.
        """
    ),
    code(
        """
        key_mean, key_log_var = jax.random.split(jax.random.key(0))
        mean = 0.5 * jax.random.normal(key_mean, (4, 8))  # a batch of 4 posteriors
        log_var = -0.3 + 0.1 * jax.random.normal(key_log_var, (4, 8))  # over 8 latent dimensions

        kl = jaxinfo.gaussian_kl_divergence(mean, log_var)
        by_hand = -0.5 * jnp.sum(1 + log_var - mean**2 - jnp.exp(log_var), axis=-1)
        print("KL per example [nats]:", np.round(np.asarray(kl, np.float64), 4))
        print("by hand              :", np.round(np.asarray(by_hand, np.float64), 4))
        print("posterior = prior    :", jaxinfo.gaussian_kl_divergence(jnp.zeros(8), jnp.zeros(8)))
        """
    ),
    md(
        r"""
        When the two log-densities can be evaluated but the KL has no closed
        form (a language model's policy against its reference, say), it is
        estimated from samples $x \sim P$ with $d = \log q(x) - \log p(x)$
        (J. Schulman, *Approximating KL divergence*, 2020): `k1` averages
        $-d$ (unbiased, noisy, negative on some samples), `k2` averages
        $d^2/2$ (biased, low variance) and `k3` averages $e^d - 1 - d$
        (unbiased, low variance, never negative). Here $P$ is one of the
        posteriors above, where the exact value is known, and the estimates are
        drawn from more and more samples.
        """
    ),
    code(
        """
        m, lv = mean[0], log_var[0]
        exact = float(jaxinfo.gaussian_kl_divergence(m, lv))

        def log_normal(x, m, lv):
            return -0.5 * jnp.sum(jnp.log(2 * jnp.pi) + lv + (x - m) ** 2 / jnp.exp(lv), axis=-1)

        sizes = [10, 30, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000]
        x = m + jnp.exp(lv / 2) * jax.random.normal(jax.random.key(1), (sizes[-1], m.size))
        log_p, log_q = log_normal(x, m, lv), log_normal(x, 0.0, 0.0)

        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        for estimator in ("k1", "k2", "k3"):
            estimates = [float(jaxinfo.kl_estimate(log_p[:n], log_q[:n], estimator=estimator))
                         for n in sizes]
            ax.plot(sizes, estimates, marker="o", ms=4, label=estimator)
            print(f"{estimator}: {estimates[-1]:.4f} from {sizes[-1]} samples")
        print(f"exact: {exact:.4f}")
        ax.axhline(exact, color="k", lw=0.8, ls="--", label="exact")
        ax.set(xscale="log", xlabel="samples from P", ylabel="estimate of D(P‖Q) [nats]",
               title="Sample estimates of KL against the closed form")
        ax.grid(alpha=0.3)
        ax.legend()
        plt.show()
        """
    ),
    md(
        r"""
        `k1` and `k3` settle on the closed form as the samples grow. `k2`
        settles too, but on a different number: it approximates KL only to
        second order in the distance between $P$ and $Q$. `k3`'s low variance has
        a condition: it averages $r = q/p$, whose variance under $P$ is finite
        only where $P$ is not much narrower than $Q$ (here, a variance above
        $1/2$ in every dimension; these posteriors have about $0.74$). For a
        posterior much narrower than the prior, `k3`'s average converges slowly
        from below, and the closed form is the one to use.
        """
    ),
]

TOUR_DISTILLATION = [
    md(
        r"""
        ## 8. Distillation without the logits

        A small model can learn more from a large trained one than from the
        text alone. *Knowledge distillation* (Hinton, Vinyals & Dean, 2015)
        trains a *student* $Q$ to reproduce, at every position, the whole
        next-token distribution $P$ of a *teacher*, not only the one token that
        came next. Its loss is the KL divergence with the teacher first:

        $$D(P \,\|\, Q) = \sum_v p_v \log \frac{p_v}{q_v} = H(P, Q) - H(P).$$

        This is section 3 with the teacher in the place of the truth. $H(P)$
        does not depend on the student, so lowering the divergence is lowering
        the cross-entropy of the student against the teacher's soft labels,
        and the divergence is 0 only where the student says what the teacher
        says. The order is not a convention here. $D(P \,\|\, Q)$ averages over
        what the *teacher* finds likely: a continuation the teacher expects
        costs $p_v \log(p_v / q_v)$, which grows without bound as the
        student's $q_v$ goes to 0, so the student is pushed to cover every
        continuation the teacher considers.
        The reverse, $D(Q \,\|\, P)$, averages over the student's own guesses
        and lets it drop some of the teacher's (it is the same call with the
        two heads swapped).

        The *temperature* $T$ divides both heads' logits before the softmax,
        $P = \mathrm{softmax}(x_p w_p / T)$ and likewise $Q$. A trained teacher
        is confident: its second and third choices get small probabilities,
        which weigh little in the divergence, although they are what the
        teacher knows beyond the label (which wrong characters are nearly
        right). $T > 1$ flattens both distributions, lifts those runners-up,
        and makes the student match them too; $T = 1$ compares the plain
        distributions.

        Finally, the logits are never formed.
        `jaxinfo.linear_kl_divergence(x_p, w_p, x_q, w_q, temperature=T)` takes
        each head's hidden states $x$ (N, D) and classifier $w$ (D, V), and
        computes the divergence and its gradients one block of classes at a
        time. A character vocabulary is tiny, so nothing is saved below; but
        at the shape of Gemma 2, 8192 positions and a vocabulary of 262,144
        tokens, the logits of *each* head would take 8 GiB in float32, while
        the fused value and gradient need under 100 MiB of temporaries (see
        `docs/scale.md`).

        The teacher is the character-level model of `examples/char_lm.py`
        (loaded here as a module, as its test does): 16 characters of context,
        two `tanh` layers of 128 units, trained on CPython's licence with
        `linear_cross_entropy`. Its classifier has a bias, which the two-head
        functions do not take; appending a 1 to $x$ and the bias as a last row
        of $w$ gives the same logits, $[x, 1] \, [w; b] = x w + b$.
        """
    ),
    code(
        """
        import functools
        import importlib.util
        import sys

        import optax

        # examples/ is no package: load examples/char_lm.py as a module (this kernel runs in
        # the repository root).
        spec = importlib.util.spec_from_file_location("char_lm", "examples/char_lm.py")
        char_lm = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = char_lm
        spec.loader.exec_module(char_lm)

        text, source = char_lm.load_text()
        ids, chars = char_lm.encode(text)
        V, CONTEXT = len(chars), 16
        inputs, labels = char_lm.make_batches(ids, steps=300, batch=256, context=CONTEXT, seed=0)
        teacher, _ = char_lm.train(
            char_lm.fused_loss, char_lm.init_params(0, V, context=CONTEXT, dim=128), inputs, labels,
            learning_rate=1e-2,
        )


        def size(params):
            return sum(int(a.size) for a in params.values())


        @jax.jit
        def head(params, inputs):
            \"\"\"A model's hidden states with a 1 appended, and its classifier with the bias as last row.\"\"\"
            x = char_lm.features(params, inputs)
            x = jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)
            return x, jnp.concatenate([params["w"], params["b"][None, :]], axis=0)


        # Every position of the text, for the figures below (a model this size learns much of
        # the licence by heart: there is no held-out text).
        windows = np.lib.stride_tricks.sliding_window_view(ids, CONTEXT + 1)
        text_inputs, text_labels = jnp.asarray(windows[:, :-1]), jnp.asarray(windows[:, -1])


        @jax.jit
        def next_character_ce(params):
            \"\"\"The mean cross-entropy of a model's predictions of the text's next characters.\"\"\"
            x, w = head(params, text_inputs)
            return jaxinfo.linear_cross_entropy(x, w, text_labels, reduction="mean")


        print(f"text: {source}, {len(ids):,} characters, V = {V}")
        print(f"teacher: {size(teacher):,} parameters, 300 steps of 256 positions; cross-entropy "
              f"on the text {float(next_character_ce(teacher)):.3f} nats (uniform: log V = {np.log(V):.3f})")
        x_p, w_p = head(teacher, text_inputs)
        mean_entropy = jax.jit(lambda x, w, T: jnp.mean(jaxinfo.linear_entropy(x, w, temperature=T)))
        for T in (1.0, 2.0, 4.0):
            h = float(mean_entropy(x_p, w_p, T))
            print(f"T = {T:g}: mean entropy of the teacher's prediction {h:.3f} nats")


        def softmax(z):
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)


        # One position, the runners-up at T = 1 and 2 (the logits formed, for display).
        logits = np.asarray(x_p @ w_p, np.float64)
        i = int(np.argmin(np.abs(softmax(logits).max(axis=-1) - 0.6)))
        print(f"\\nafter {''.join(chars[c] for c in windows[i, :-1])!r} (next: {chars[windows[i, -1]]!r}):")
        for T in (1.0, 2.0):
            p = softmax(logits[i] / T)
            print(f"  T = {T:g}: " + "  ".join(f"{chars[c]!r} {p[c]:.3f}" for c in np.argsort(-p)[:5]))
        """
    ),
    md(
        r"""
        The student is the same code at a quarter of the width, two layers of
        32, from a fresh start. It trains on batches of contexts only, with no
        labels: at each position its target is the teacher's distribution at
        $T = 2$, frozen with `jax.lax.stop_gradient`, and the loss is the mean
        over positions of `linear_kl_divergence`. Adam, 400 steps of 256
        positions, all in one compiled `lax.scan`.
        """
    ),
    code(
        """
        TEMPERATURE = 2.0
        optimizer = optax.adam(1e-2)


        def distillation_loss(student, inputs):
            x_p, w_p = jax.lax.stop_gradient(head(teacher, inputs))  # the teacher is frozen
            x_q, w_q = head(student, inputs)
            return jnp.mean(jaxinfo.linear_kl_divergence(x_p, w_p, x_q, w_q, temperature=TEMPERATURE))


        @functools.partial(jax.jit, static_argnums=0)
        def train_student(loss, student, batches):
            \"\"\"Adam on `loss(student, batch)`, one step per batch; the loss before each step.\"\"\"
            def step(carry, batch):
                student, state = carry
                value, grads = jax.value_and_grad(loss)(student, batch)
                updates, state = optimizer.update(grads, state, student)
                return (optax.apply_updates(student, updates), state), value

            (student, _), values = jax.lax.scan(step, (student, optimizer.init(student)), batches)
            return student, values


        STEPS = 400
        student_inputs, _ = char_lm.make_batches(ids, steps=STEPS, batch=256, context=CONTEXT, seed=1)
        student_inputs = jnp.asarray(student_inputs)  # the labels are not used
        student0 = char_lm.init_params(1, V, context=CONTEXT, dim=32)
        student, kl = train_student(distillation_loss, student0, student_inputs)
        kl = np.asarray(kl)

        print(f"student: {size(student):,} parameters ({size(teacher) / size(student):.1f}x fewer)")
        print(f"{'step':>6} {'D(P||Q) at T=2':>16}")
        for s in [0, 25, 50, 100, 200, 300, STEPS - 1]:
            print(f"{s:6d} {kl[s]:16.4f}")

        fig, ax = plt.subplots(figsize=(6.5, 3.6))
        ax.plot(np.arange(STEPS), kl, lw=1)
        ax.set(xlabel="step", ylabel="mean D(P‖Q) of the batch [nats]", ylim=(0, None),
               title="Distilling the 2x128 teacher into a 2x32 student, T = 2")
        ax.grid(alpha=0.3)
        plt.show()
        """
    ),
    md(
        r"""
        At the end, the check: the same divergence from the materialised
        logits, `kl_divergence_from_logits(x_p @ w_p / T, x_q @ w_q / T)`, at
        every position of the text, and the gradients of the mean with respect
        to the student's classifier by both routes.
        """
    ),
    code(
        """
        @functools.partial(jax.jit, static_argnames="fused")
        def divergence_and_gradient(student, inputs, *, fused):
            \"\"\"D(P||Q) at each position, and the gradient of its mean w.r.t. the student's w.\"\"\"
            x_p, w_p = head(teacher, inputs)
            x_q, w_q = head(student, inputs)

            def per_position(w_q):
                if fused:
                    return jaxinfo.linear_kl_divergence(x_p, w_p, x_q, w_q, temperature=TEMPERATURE)
                return jaxinfo.kl_divergence_from_logits(x_p @ w_p / TEMPERATURE, x_q @ w_q / TEMPERATURE)

            return per_position(w_q), jax.grad(lambda w: jnp.mean(per_position(w)))(w_q)


        fused, grad_fused = divergence_and_gradient(student, text_inputs, fused=True)
        materialised, grad_materialised = divergence_and_gradient(student, text_inputs, fused=False)
        print(f"mean D(P||Q) over the {len(fused):,} positions: fused {float(fused.mean()):.6f}, "
              f"materialised {float(materialised.mean()):.6f} nats")
        print(f"largest difference at a position: {float(jnp.max(jnp.abs(fused - materialised))):.1e} nats "
              f"(float32 eps = {np.finfo(np.float32).eps:.1e})")
        relative = jnp.max(jnp.abs(grad_fused - grad_materialised)) / jnp.max(jnp.abs(grad_materialised))
        print(f"gradient w.r.t. the student's classifier: largest difference {float(relative):.1e} "
              "of its largest entry")
        print(f"cross-entropy of the next characters: student {float(next_character_ce(student)):.3f} nats, "
              f"teacher {float(next_character_ce(teacher)):.3f}, uniform {np.log(V):.3f} "
              "(the student never saw a label)")
        """
    ),
    md(
        r"""
        The two routes agree to float32 rounding, in value and in gradient.
        The divergence levels off above zero: a student four times narrower
        cannot say everything the teacher says. Yet what it learned from the
        teacher's soft targets alone, without a single label, predicts the
        text's next characters far better than chance.

        **Offline, from the teacher's top k.** When the teacher is too
        expensive to run beside the student, its predictions are computed once
        and stored, and at a large vocabulary storing all V probabilities per
        position is out of the question; one keeps the $k$ largest log-probabilities and their ids.
        `kl_divergence_from_top_k` is the divergence over those $k$ classes
        plus one outcome for all the rest (the *tail*), which keeps the
        student's mass outside the top $k$ at the teacher's. Here $k = 8$ of
        the 76 characters, at the same $T = 2$, and a second student trained
        from the stored arrays (this variant takes the student's logits, so it
        forms them; it spares the teacher, not the student's memory).
        """
    ),
    code(
        """
        K = 8


        @jax.jit
        def teacher_top_k(inputs):
            \"\"\"The teacher's K largest log-probabilities at T and their ids, for inputs (..., CONTEXT).\"\"\"
            x, w = head(teacher, inputs.reshape(-1, CONTEXT))
            log_probs, class_ids = jax.lax.top_k(jax.nn.log_softmax(x @ w / TEMPERATURE), K)
            return log_probs.reshape(*inputs.shape[:-1], K), class_ids.reshape(*inputs.shape[:-1], K)


        def top_k_divergence(student, inputs, log_probs, class_ids):
            x_q, w_q = head(student, inputs)
            return jaxinfo.kl_divergence_from_top_k(log_probs, class_ids, x_q @ w_q / TEMPERATURE)


        def top_k_loss(student, batch):
            return jnp.mean(top_k_divergence(student, *batch))


        stored = teacher_top_k(student_inputs)  # computed once: (steps, batch, K), twice
        mass = float(jnp.mean(jnp.exp(jax.nn.logsumexp(stored[0], axis=-1))))
        print(f"stored: {2 * stored[0].size:,} numbers instead of {student_inputs.shape[0] * 256 * V:,}; "
              f"the top {K} hold {mass:.1%} of the teacher's mass at T = 2 on average")
        student_k, _ = train_student(top_k_loss, student0, (student_inputs, *stored))

        top_k_value = jax.jit(top_k_divergence)(student_k, text_inputs, *teacher_top_k(text_inputs))
        full_k, _ = divergence_and_gradient(student_k, text_inputs, fused=True)
        print(f"student from the top {K}: on the text, its loss (the top-{K} divergence) "
              f"{float(top_k_value.mean()):.4f} <= the full D(P||Q) {float(full_k.mean()):.4f} nats")
        print(f"student from the full distribution: full D(P||Q) {float(fused.mean()):.4f} nats")
        """
    ),
    md(
        r"""
        The top-$k$ student's own loss is below its full divergence, as it must
        be: lumping classes together into the tail can only hide differences,
        never add them, and only $k = V$ would show them all. What the stored
        arrays cannot tell the student is how the teacher spreads the tail's
        share over the other characters, so this student ends further from the
        teacher than the one that saw the whole distribution. That is the
        price of storing $2k$ numbers per position instead of $V$: a fifth of
        the teacher's output here, a vanishing fraction of it at a vocabulary
        of 262,144 tokens.
        """
    ),
]

TOUR_END = [
    md(
        """
        ## Next

        [02_demo.ipynb](02_demo.ipynb) puts section 3 to work: it minimises the
        cross-entropy over $Q$ by gradient descent with optax and watches
        $H(P, Q)$ come down to $H(P)$.
        """
    ),
]

# Sections in order. Add a new section to this list (before TOUR_END).
TOUR = [
    TOUR_INTRO,
    TOUR_INFORMATION,
    TOUR_TWO_SYSTEMS,
    TOUR_CROSS_ENTROPY,
    TOUR_GIBBS,
    TOUR_UNITS,
    TOUR_FAMILY,
    TOUR_GAUSSIAN,
    TOUR_DISTILLATION,
    TOUR_END,
]


# ============================================================================
# 02_demo: fitting Q to P with optax
# ============================================================================

DEMO_INTRO = [
    md(
        """
        # Fitting Q to P with optax

        The tour showed that $H(P, Q) = H(P) + D(P \\,\\|\\, Q)$ and that $H(P)$
        does not depend on $Q$. So if we adjust a model $Q$ to lower the
        cross-entropy, only the KL divergence can shrink, and the best we can do
        is $Q = P$, where $H(P, Q) = H(P)$. This notebook does that by gradient
        descent with `jaxinfo.demo.fit`, the function behind the command line demo
        `python -m jaxinfo.demo`.

        The model is $Q = \\mathrm{softmax}(\\ell)$ for a vector of logits $\\ell$,
        starting from $\\ell = 0$, the uniform distribution. Every vector of logits
        is a valid distribution, so the optimiser needs no constraints, and the
        gradient of the cross-entropy with respect to the logits is simply
        $q - p$.
        """
    ),
    code(
        """
        import time

        import jax
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np
        import optax

        import jaxinfo
        from jaxinfo.demo import default_optimizer, fit

        plt.rcParams["figure.dpi"] = 80
        LN2 = np.log(2)
        EPS = np.finfo(np.float32).eps


        def random_distributions(n, k, seed=0):
            \"\"\"n distributions drawn uniformly from the simplex; some classes get p ~ 1e-4.\"\"\"
            return jnp.asarray(np.random.default_rng(seed).dirichlet(np.ones(k), size=n), jnp.float32)


        def kl64(p, q):
            \"\"\"D(P||Q) in float64, to check the float32 values.\"\"\"
            p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
            p, q = p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)
            return np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1) / q), 0), axis=-1)


        p = jnp.array([0.99, 0.01])
        logits = jnp.array([0.3, -0.2])
        print("gradient of H(P, softmax(l)):", jax.grad(jaxinfo.cross_entropy_from_logits, argnums=1)(p, logits))
        print("q - p:                       ", jax.nn.softmax(logits) - p)
        """
    ),
]

DEMO_ONE = [
    md(
        """
        ## 1. One distribution: the article's match

        `fit(p)` runs 500 steps of Adam from the uniform $Q$ in one compiled
        `lax.scan` and returns the final $Q$ with the history of $H(P, Q)$ and
        $D(P \\,\\|\\, Q)$ after every step, in nats.
        """
    ),
    code(
        """
        p = jnp.array([0.99, 0.01])
        result = fit(p)
        print("final Q:", result.q)
        h = float(result.entropy) / LN2
        for step in [1, 10, 50, 100, 200, 500]:
            ce = float(result.cross_entropy[step - 1]) / LN2
            kl = float(result.kl_divergence[step - 1]) / LN2
            print(f"step {step:3d}: H(P,Q) = {ce:.8f} bits   H(P) = {h:.8f} bits   D(P||Q) = {kl:9.2e} bits")
        print(f"D(P||Q) of the final Q recomputed in float64: {kl64(p, result.q) / LN2:.1e} bits")


        def show(steps, ce, h, kl_curves, title, unit="bits"):
            \"\"\"H(P,Q) against H(P) on the left, the KL on a log scale on the right.\"\"\"
            scale = LN2 if unit == "bits" else 1.0
            resolution = EPS * (1 + np.max(h)) / scale
            fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
            left.plot(steps, ce / scale, label="H(P,Q)")
            left.axhline(np.mean(h) / scale, color="k", linestyle="--", label="H(P)")
            left.set(xlabel="step", ylabel=f"H(P,Q) and H(P) [{unit}]", title=title)
            left.legend()
            for label, kl in kl_curves.items():
                right.plot(steps, np.maximum(kl / scale, resolution / 10), label=label)
            right.axhspan(resolution / 10, resolution, color="0.85", label="below float32 resolution")
            right.set(yscale="log", ylim=(resolution / 10, None), xlabel="step",
                      ylabel=f"D(P||Q) [{unit}]", title="KL divergence")
            right.legend()
            for ax in (left, right):
                ax.grid(alpha=0.3)
            plt.show()


        steps = np.arange(1, 501)
        show(steps, np.asarray(result.cross_entropy), np.asarray(result.entropy),
             {"D(P||Q)": np.asarray(result.kl_divergence)}, "The article's match, P = (0.99, 0.01)")
        """
    ),
    md(
        """
        $H(P, Q)$ reaches the $H(P)$ line within a hundred steps, while the
        divergence keeps falling on the log scale. Below about
        $\\varepsilon \\cdot (1 + H(P))$ nats, with $\\varepsilon = 1.2 \\cdot 10^{-7}$
        for float32, the computed divergence is rounding noise around zero (some
        values come out slightly negative; the grey band marks that region). The
        true divergence of the final $Q$, recomputed in float64, is far below the
        band.
        """
    ),
]

DEMO_BATCH = [
    md(
        """
        ## 2. A thousand distributions at once

        `fit` accepts any leading batch axes. Each distribution gets its own
        optimiser state (through `jax.vmap`), so the fits are independent of one
        another and all run in one compiled program.
        """
    ),
    code(
        """
        P = random_distributions(1000, 10)
        batch = fit(P)  # the first call compiles
        start = time.perf_counter()
        batch = jax.block_until_ready(fit(P))
        seconds = time.perf_counter() - start
        print(f"{P.shape[0]} fits of 500 steps in {seconds:.2f} s on this CPU: "
              f"{P.shape[0] / seconds:,.0f} distributions/s")
        print("shapes: q", batch.q.shape, " histories", batch.kl_divergence.shape, " entropy", batch.entropy.shape)
        final64 = kl64(P, batch.q)
        print(f"worst final D(P||Q): {float(batch.kl_divergence[:, -1].max()):.1e} nats as recorded in float32, "
              f"{final64.max():.1e} nats recomputed in float64")

        kl = np.asarray(batch.kl_divergence)
        show(steps, np.asarray(batch.cross_entropy).mean(axis=0), np.asarray(batch.entropy),
             {"median D(P||Q)": np.median(kl, axis=0), "90th percentile": np.percentile(kl, 90, axis=0),
              "worst": kl.max(axis=0)},
             "1000 random 10-class P (means of H)", unit="nats")
        """
    ),
]

DEMO_OPTIMIZERS = [
    md(
        """
        ## 3. Comparing optimisers

        `fit` takes any optax `GradientTransformation`. Here are a few on the same
        64 random distributions, each with a learning rate that suits it.
        """
    ),
    code(
        """
        P64 = random_distributions(64, 10, seed=1)


        def cosine(lr):
            return optax.cosine_decay_schedule(lr, 500)


        optimizers = {
            "default: Adam b2=0.9, cosine from 0.1": default_optimizer(0.1, 500),
            "optax.adam(0.1)": optax.adam(0.1),
            "Adam b2=0.9, constant 0.1": optax.adam(0.1, b2=0.9),
            "Adam b2=0.999, cosine from 0.1": optax.adam(cosine(0.1)),
            "RMSProp, cosine from 0.1": optax.rmsprop(cosine(0.1)),
            "gradient descent, cosine from 10": optax.sgd(cosine(10.0)),
            "Lion, cosine from 0.1": optax.lion(cosine(0.1)),
        }
        fitted_by = {}
        fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
        for name, optimizer in optimizers.items():
            fitted = fitted_by[name] = fit(P64, optimizer=optimizer)
            worst = np.asarray(fitted.kl_divergence).max(axis=0)
            print(f"{name:36s} worst final D(P||Q): {worst[-1]:.1e} nats as recorded, "
                  f"{kl64(P64, fitted.q).max():.1e} in float64")
            ax.plot(steps, np.maximum(worst, 1e-8), label=name)
        ax.axhline(1e-5, color="k", linestyle=":", label="target 1e-5 nats")
        ax.set(yscale="log", xlabel="step", ylabel="worst D(P||Q) of 64 [nats]",
               title="64 random 10-class distributions")
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
        ax.grid(alpha=0.3)
        plt.show()
        """
    ),
    md(
        """
        Plain `optax.adam(0.1)` stalls: after 500 steps some distributions are
        still above the $10^{-5}$ target, while the default gets below $10^{-11}$
        (in float64; the recorded float32 values stop at the rounding floor).
        The culprit is the rare classes. The
        gradient in the logit of class $i$ is $q_i - p_i$; for a class with
        $p_i = 10^{-4}$ it is tiny once $q_i$ gets close. Adam divides each
        gradient by the root of a running average of its squares, and with
        `b2 = 0.999` that average remembers about a thousand steps, the whole fit,
        including the first steps, whose gradients were around 0.1. So the steps
        of the rare classes shrink with their gradients and their convergence
        slows to a crawl. With `b2 = 0.9` the average forgets within about ten
        steps and every class moves at the pace of its own current gradient; the
        cosine decay of the learning rate then damps the oscillation that Adam
        keeps up at a constant learning rate. Each change alone is not enough;
        together they gain several orders of magnitude, which is why they are the
        default of `fit`. RMSProp, whose running average also forgets within
        about ten steps (its `decay` is 0.9), does as well. Plain gradient
        descent moves the rare classes slowly for the same reason, their small
        gradients, and Lion, which only follows the sign of the gradient, takes
        steps of one size for every class and struggles too. The plot below shows
        the rare classes lagging under plain Adam. (The default leaves relative
        errors of about $10^{-6}$ on every class: the divergence is quadratic in
        them, so they cost only about $10^{-12}$ nats.)
        """
    ),
    code(
        """
        fig, ax = plt.subplots(figsize=(7, 3.8))
        for name, label in [("optax.adam(0.1)", "optax.adam(0.1)"),
                            ("default: Adam b2=0.9, cosine from 0.1", "default")]:
            fitted = fitted_by[name]
            error = np.abs(np.asarray(fitted.q, np.float64) / np.asarray(P64) - 1)
            ax.scatter(np.asarray(P64).ravel(), np.maximum(error.ravel(), 1e-8), s=6, label=label)
        ax.set(xscale="log", yscale="log", xlabel="p_i of the class",
               ylabel="relative error |q_i / p_i - 1|", title="After 500 steps: rare classes lag with plain Adam")
        ax.axhline(1e-8, color="0.5", linewidth=0.5)  # errors below 1e-8 are drawn on this line
        ax.legend()
        ax.grid(alpha=0.3)
        plt.show()
        """
    ),
]

DEMO_PROBABILITIES = [
    md(
        """
        ## 4. Logits or probabilities?

        Why logits? We could optimise a vector of probabilities $w$ directly. It
        must stay non-negative; it need not sum to one, because jaxinfo normalises
        along the axis, so any positive vector is a valid $Q$. Two common ways to
        keep the sign: take $Q \\propto |w|$, or project, clipping $w$ at a tiny
        positive value after every step. The loop below is the same as inside
        `fit`, with the default optimiser, only the parameters differ.
        """
    ),
    code(
        """
        def fit_probabilities(p, *, parametrisation, learning_rate, steps=500):
            \"\"\"Fits Q proportional to |w| ("abs") or to w clipped at 1e-7 ("clip").\"\"\"
            optimizer = default_optimizer(learning_rate, steps)
            to_q = jnp.abs if parametrisation == "abs" else (lambda w: w)

            def one(p):
                def loss(w):
                    return jaxinfo.cross_entropy(p, to_q(w))

                def step(carry, _):
                    w, state = carry
                    updates, state = optimizer.update(jax.grad(loss)(w), state, w)
                    w = optax.apply_updates(w, updates)
                    if parametrisation == "clip":
                        w = jnp.maximum(w, 1e-7)
                    return (w, state), jaxinfo.kl_divergence(p, to_q(w))

                w = jnp.full_like(p, 1 / p.shape[-1])  # the uniform distribution
                (w, _), kl = jax.lax.scan(step, (w, optimizer.init(w)), length=steps)
                return kl

            return jax.jit(jax.vmap(one))(p)


        curves = {"logits, learning rate 0.1": np.asarray(fit(P64).kl_divergence)}
        for parametrisation in ["abs", "clip"]:
            kl = fit_probabilities(P64, parametrisation=parametrisation, learning_rate=0.01)
            curves[f"probabilities, {parametrisation}, learning rate 0.01"] = np.asarray(kl)

        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
        for name, kl in curves.items():
            print(f"{name:44s} worst final D(P||Q) {kl[:, -1].max():.1e}, median {np.median(kl[:, -1]):.1e} nats")
            left.plot(steps, np.maximum(kl.max(axis=0), 1e-8), label=name)
            right.plot(steps, np.maximum(np.median(kl, axis=0), 1e-8), label=name)
        left.set(yscale="log", xlabel="step", ylabel="D(P||Q) [nats]", title="worst of 64")
        right.set(xlabel="step", title="median of 64")
        right.legend(fontsize="small")
        for ax in (left, right):
            ax.grid(alpha=0.3)
        plt.show()
        """
    ),
    md(
        """
        The probability parametrisations need a learning rate on the scale of the
        probabilities (0.01 here, against 0.1 for logits), and even then the
        worst distributions converge late (abs) or not at all (clip). Adam moves
        every parameter by steps of about the learning rate, whatever the size of
        the parameter; a class that should settle at $p = 2 \\cdot 10^{-4}$ is
        thrown onto the clip and off it again several times, and in the worst
        distribution it ends at $q = 1.2 \\cdot 10^{-3}$ when the schedule runs
        out. The boundary is also a trap. Adam's first step moves
        every parameter by the learning rate, to within one part in $10^7$; with
        a learning rate of 0.1 and 10 classes starting at $w_i = 0.1$, every class
        whose gradient is positive lands on zero or within rounding of it. Where
        it lands exactly on zero, $q_i = 0 < p_i$, the cross-entropy is infinite,
        and its gradient through $|w|$ is $\\infty \\cdot 0$: NaN from then on.
        """
    ),
    code(
        """
        kl = fit_probabilities(P64, parametrisation="abs", learning_rate=0.1)
        print("fits that end in NaN with |w| and learning rate 0.1:", int(jnp.isnan(kl[:, -1]).sum()), "of 64")
        """
    ),
    md(
        """
        Logits have none of these problems: softmax is positive for every finite
        logit, the zero-probability boundary lies at infinity, the gradient
        $q - p$ is bounded, and the same learning rate suits every distribution.
        That is why classifiers produce logits and minimise
        `cross_entropy_from_logits`.
        """
    ),
]

DEMO = [DEMO_INTRO, DEMO_ONE, DEMO_BATCH, DEMO_OPTIMIZERS, DEMO_PROBABILITIES]

NOTEBOOKS = {"01_tour": TOUR, "02_demo": DEMO}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name`` with its cells, not executed."""
    cells = [cell for section in NOTEBOOKS[name] for cell in section]
    for i, cell in enumerate(cells):
        cell.id = f"{name}-{i:02d}"  # stable ids keep diffs small
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 120) -> nbformat.NotebookNode:
    """Runs ``nb`` top to bottom in a fresh kernel started in the repository root."""
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(ROOT)}},
    )
    client.execute()
    nb.metadata["language_info"] = {"name": "python"}  # no interpreter version in the file
    return nb


def main(argv: list[str]) -> None:
    names = argv or list(NOTEBOOKS)
    unknown = sorted(set(names) - set(NOTEBOOKS))
    if unknown:
        raise SystemExit(f"unknown notebook(s) {unknown}; expected some of {list(NOTEBOOKS)}")
    for name in names:
        nb = execute(build(name))
        path = HERE / f"{name}.ipynb"
        nbformat.write(nb, path)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])

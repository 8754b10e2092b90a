"""A user's script: every public function called as a user would call it.

``tests/test_typing.py`` type-checks this file with pyright and asserts no error,
and runs it, so that what the annotations accept and what the functions take
cannot drift apart. Python lists and tuples, NumPy and JAX arrays, scalars,
int and tuple axes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

import jaxinfo
from jaxinfo.typing import ArrayLike, Axis


def bits(p: ArrayLike, *, axis: Axis = -1) -> jax.Array:
    """A user's own wrapper, annotated with jaxinfo's types."""
    return jaxinfo.entropy(p, axis=axis, base=2)


def main() -> None:
    # The README's calls, with lists as a notebook user types them.
    p = jaxinfo.check_distribution([[0.25, 0.75], [0.9, 0.1]])
    jaxinfo.entropy([[0.5, 0.5], [0.99, 0.01]], base=2)
    jaxinfo.information([0.01, 0.99], base=2)
    jaxinfo.cross_entropy([0.99, 0.01], (0.5, 0.5), base=2)
    jaxinfo.kl_divergence(p, [[0.5, 0.5], [0.5, 0.5]])
    bits([0.5, 0.5])
    bits(np.full((2, 2), 0.25), axis=(0, 1))

    # Every measure of probabilities, with lists, tuples, arrays and tuple axes.
    image = np.full((2, 3, 4), 1 / 12)
    jaxinfo.entropy(image, axis=(1, 2), where=np.ones((3, 4), bool), keepdims=True)
    jaxinfo.cross_entropy(image, jnp.asarray(image), axis=(-2, -1))
    jaxinfo.kl_divergence([0.5, 0.5], [0.9, 0.1], axis=0)
    jaxinfo.js_divergence([0.5, 0.5], [0.9, 0.1], base=2)
    jaxinfo.js_distance([0.5, 0.5], [0.9, 0.1], axis=(0,), keepdims=True)
    jaxinfo.renyi_entropy([0.5, 0.25, 0.25], 2)
    jaxinfo.renyi_divergence([0.5, 0.5], [0.9, 0.1], 0.5, axis=(0,))
    jaxinfo.perplexity([[0.5, 0.5], [1, 0]], where=[[True, True], [True, False]])
    jaxinfo.entropy_from_counts([4, 2, 1, 1], estimator="miller_madow")
    jaxinfo.entropy_from_counts([[4, 2], [1, 1]], estimator="nsb", num_classes=6, axis=(0, 1))
    jaxinfo.entropy_from_counts_nsb([4, 2, 1, 1], num_classes=8, base=2)
    jaxinfo.differential_entropy([[0.1, 0.2], [0.4, -0.3], [1.0, 0.5], [0.0, 0.9]], k=2)
    jaxinfo.mutual_information_ksg(
        [[0.1], [0.4], [1.0], [0.3]], ((0.2,), (0.1,), (0.9,), (0.0,)), k=1
    )
    jaxinfo.binary_entropy([0.5, 0.11], base=2)

    # Logits and labels.
    logits = [[0.0, 1.0, -jnp.inf], [2.0, 0.0, 0.0]]
    jaxinfo.entropy_from_logits(logits, axis=-1)
    jaxinfo.cross_entropy_from_logits([[1, 0, 0], [0.5, 0.5, 0]], logits)
    jaxinfo.kl_divergence_from_logits(logits, jnp.zeros((2, 3)))
    jaxinfo.cross_entropy_from_labels([0, -1], logits, label_smoothing=0.1)
    jaxinfo.cross_entropy_from_labels([5, 0], jnp.zeros((2, 2, 3)), axis=(1, 2))
    x, w = [[1.0, 2.0], [0.5, -1.0]], np.ones((2, 5), np.float32)
    jaxinfo.linear_cross_entropy(x, w, [1, 4], chunk_size=2)
    jaxinfo.linear_cross_entropy(x, w, [1, -1], reduction="mean")
    loss, stats = jaxinfo.linear_cross_entropy(
        x,
        w,
        [1, 4],
        bias=[0.0] * 5,
        where=[True] * 5,
        weights=[1.0, 0.5],
        label_smoothing=0.1,
        z_loss=1e-4,
        logit_soft_cap=30.0,
        temperature=0.9,
        return_stats=True,
    )
    stats.entropy.sum() + stats.log_z.sum() + loss.sum()
    jaxinfo.linear_cross_entropy(x, w, [1, 4], return_stats=False).sum()
    jaxinfo.linear_entropy(x, w, bias=np.zeros(5), temperature=jnp.float32(2.0)).sum()
    jaxinfo.linear_kl_divergence(x, w, [[1.0], [2.0]], np.ones((1, 5)), temperature=2.0).sum()
    jaxinfo.linear_js_divergence(x, w, x, w, beta=0.3, where=[True] * 5, weights=[1.0, 0.0])
    jaxinfo.cross_entropy_from_labels([0, -1], logits, reduction="sum")
    top_log_p, top_ids = [[-0.1, -2.5], [-0.7, -0.7]], np.array([[1, 0], [0, 2]])
    jaxinfo.kl_divergence_from_top_k(top_log_p, top_ids, logits, base=2)
    jaxinfo.kl_divergence_from_top_k(
        np.array(top_log_p).T, [[1, 0], [0, 2]], jnp.zeros((3, 2)), tail=False, axis=0
    )
    jaxinfo.kl_divergence_from_top_k(
        top_log_p, top_ids, logits, where=[[True, True], [True, False]], axis_name=None
    )

    # Gaussian and Bernoulli measures, sample estimates.
    jaxinfo.gaussian_entropy([0.0, 1.0], [0.0, -1.0])
    jaxinfo.gaussian_kl_divergence([[0.0, 1.0]], [[0.0, -1.0]], q_mean=0.5)
    jaxinfo.gaussian_entropy_full([[1.0, 0.0], [0.5, 1.0]], base=2)
    eye = [[1.0, 0.0], [0.0, 1.0]]
    jaxinfo.gaussian_kl_divergence_full([0.0, 0.0], eye, (1.0, 0.0), eye)
    jaxinfo.binary_cross_entropy_from_logits([0.0, 1.0], [2.0, -3.0])
    jaxinfo.binary_kl_divergence_from_logits([0.0, 1.0], (2.0, -3.0), base=2)
    jaxinfo.kl_estimate([-1.0, -2.0], [-1.5, -1.0], estimator="k1", where=[True, False])

    # Joint tables.
    pxy = [[0.25, 0.25], [0.25, 0.25]]
    jaxinfo.joint_entropy(pxy, base=2)
    jaxinfo.conditional_entropy(pxy)
    jaxinfo.mutual_information((np.eye(2) / 2).tolist())

    # Checks of values, eager and under checkify.
    jaxinfo.check_logits([[0.0, 1.0], [1.0, 2.0]], axis=(0, 1))
    jaxinfo.check_distribution([3, 1, 0], normalized=False)
    err, _ = checkify.checkify(lambda q: jaxinfo.checkify_distribution(q, axis=(0, 1)))(
        jnp.full((2, 2), 0.25)
    )
    err.throw()
    err, _ = checkify.checkify(lambda s: jaxinfo.checkify_logits(s))(jnp.zeros((2, 2)))
    err.throw()
    jaxinfo.check_top_k([[-0.1, -2.5]], [[1, 0]], num_classes=3, where=[[True, True]])
    err, _ = checkify.checkify(lambda a: jaxinfo.checkify_top_k(a, [2, 0], num_classes=3))(
        jnp.array([-0.5, -1.5])
    )
    err.throw()


if __name__ == "__main__":
    main()

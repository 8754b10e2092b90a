"""Regression tests: the minimal failing examples found by tests/test_properties.py.

Each test is the smallest input hypothesis shrank a failure to, with the value
or gradient it must give.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinfo


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_inputs_under_strict_promotion(dtype):
    # Found: entropy(float16 array) raised TypePromotionError under
    # jax_numpy_dtype_promotion="strict": float16 -> float32 was an implicit
    # promotion. Low precision is widened to float32 by width now.
    p = jnp.array([0.5, 0.5], dtype)
    logits = jnp.zeros(2, dtype)
    with jax.numpy_dtype_promotion("strict"):
        h = jaxinfo.entropy(p)
        ce = jaxinfo.cross_entropy(p, p)
        kl = jaxinfo.kl_divergence_from_logits(logits, logits)
        ce_labels = jaxinfo.cross_entropy_from_labels(jnp.array(0), logits)
    assert h.dtype == ce.dtype == kl.dtype == ce_labels.dtype == jnp.float32
    np.testing.assert_allclose(
        [h, ce, kl, ce_labels], [math.log(2), math.log(2), 0, math.log(2)], rtol=1e-6, atol=1e-7
    )

"""Repository-wide pytest set-up: doctest namespace and strict dtype promotion."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinfo

# Silent upcasts (float32 + float64, int + float) are errors in the test suite,
# so that a helper which forgets its dtype policy shows up at once.
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace.update(jnp=jnp, np=np, jax=jax, jaxinfo=jaxinfo)

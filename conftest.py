"""Repository-wide pytest set-up: doctest namespace, strict dtype promotion, and a
compilation cache shared by the test processes."""

import os
import shutil
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxinfo

# Silent upcasts (float32 + float64, int + float) are errors in the test suite,
# so that a helper which forgets its dtype policy shows up at once.
jax.config.update("jax_numpy_dtype_promotion", "strict")

# Where the compilation cache lives when this run made it (removed at the end).
_OWN_CACHE = "_jaxinfo_jax_cache"


def pytest_configure(config):
    """One compilation cache on disk for every process of the run.

    Compiling, not computing, is what the suite spends its time on, and
    pytest-xdist's workers (and the 8-device subprocess of
    tests/test_parallel.py) would each compile the same small programs again.
    With JAX's persistent cache in one directory, a program that one process
    compiled is read back by the others. The directory is a fresh temporary
    one, removed when the run ends, unless ``JAX_COMPILATION_CACHE_DIR`` names
    one already (then it is kept, and a rerun reads what it holds). Workers
    and subprocesses inherit the directory through the environment.
    """
    cache = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if not cache:
        cache = tempfile.mkdtemp(prefix="jaxinfo-tests-jax-cache-")
        os.environ["JAX_COMPILATION_CACHE_DIR"] = cache
        setattr(config, _OWN_CACHE, cache)
    # Most programs of the suite compile in a few milliseconds: cache them all.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs",
        float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
    )


def pytest_unconfigure(config):
    cache = getattr(config, _OWN_CACHE, None)
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
        if os.environ.get("JAX_COMPILATION_CACHE_DIR") == cache:
            del os.environ["JAX_COMPILATION_CACHE_DIR"]


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace.update(jnp=jnp, np=np, jax=jax, jaxinfo=jaxinfo)

"""Repository-wide pytest set-up: doctest namespace, strict dtype promotion, and a
compilation cache shared by the test processes and kept between runs."""

import contextlib
import gc
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
# The bound on the kept cache's size: its least recently used programs go first.
_CACHE_MAX_BYTES = 1 << 30


def _kept_cache() -> str | None:
    """The compilation cache kept between runs, or None where it is turned off."""
    if os.environ.get("JAXINFO_TEST_CACHE", "").lower() in ("0", "off", "false", "no"):
        return None
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "jaxinfo", "jax-compilation-cache")


def pytest_configure(config):
    """One compilation cache on disk for every process of the run, kept between runs.

    Compiling, not computing, is what the suite spends its time on: about
    30 ms for each small program XLA:CPU builds (every new shape of an eager
    operation is one), and a second for a measure's derivative. With JAX's
    persistent cache, a program that one process compiled is read back by
    the others (pytest-xdist's workers, the 8-device subprocess of
    tests/test_parallel.py) and by later runs: its key is the program, the
    compile options and the versions of jax and jaxlib, not a file's path, so
    a rerun after an edit compiles only the programs the edit changed, in this
    clone or in any other. The cache is ``JAX_COMPILATION_CACHE_DIR`` if set,
    else ``~/.cache/jaxinfo/jax-compilation-cache`` (under ``XDG_CACHE_HOME``
    where that is set), pruned to 3/4 GiB at the end of a run where it
    holds more than 1 GiB (the programs used longest ago go first).
    ``JAXINFO_TEST_CACHE=off`` (or a folder that cannot be written) uses a
    fresh temporary one instead, removed when the run ends. Workers and
    subprocesses inherit the directory through the environment.
    """
    cache = os.environ.get("JAX_COMPILATION_CACHE_DIR") or _kept_cache()
    if cache and not _writable(cache):
        cache = None  # a read-only home, say: a temporary one will do
    if not cache:
        cache = tempfile.mkdtemp(prefix="jaxinfo-tests-jax-cache-")
        setattr(config, _OWN_CACHE, cache)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = cache
    # Most programs of the suite compile in a few milliseconds: cache them all.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update(
        "jax_persistent_cache_min_compile_time_secs",
        float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
    )


def _writable(folder: str) -> bool:
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def pytest_unconfigure(config):
    cache = getattr(config, _OWN_CACHE, None)
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)
        if os.environ.get("JAX_COMPILATION_CACHE_DIR") == cache:
            del os.environ["JAX_COMPILATION_CACHE_DIR"]
    elif os.environ.get("JAX_COMPILATION_CACHE_DIR") == _kept_cache():
        if not hasattr(config, "workerinput"):  # once, in the controlling process
            _prune(_kept_cache(), _CACHE_MAX_BYTES)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    """One full garbage collection at the end of a run, then the heap frozen.

    pytest's clean-up collects garbage five times over to flush out the
    exceptions of finalizers. After the whole suite a worker's heap holds
    millions of objects (traced programs and JAX's caches), about 1.5 s a
    collection, and pytest-xdist's controller interrupts a worker still busy
    5 s after the end: the interrupt landed in a garbage-collection callback
    and was printed as a warning. One collection here still finalizes what
    the run left unreachable; ``gc.freeze`` then leaves the objects alive at
    this point out of the later ones, so that pytest's five are quick.
    """
    gc.collect()
    gc.freeze()


def _prune(cache: str, limit: int) -> None:
    """Removes the files used longest ago (by access or write time) until
    ``cache`` holds at most 3/4 of ``limit`` bytes, where it holds more than
    ``limit``.

    One pass over the directory at the end of a run. JAX's own bound,
    ``jax_compilation_cache_max_size``, scans the whole directory at every
    write, under a file lock: quadratic in the number of programs, of which
    the suite writes thousands.
    """
    entries = []
    with os.scandir(cache) as it:
        for entry in it:
            if entry.is_file(follow_symlinks=False):
                stat = entry.stat(follow_symlinks=False)
                entries.append((max(stat.st_atime, stat.st_mtime), stat.st_size, entry.path))
    size = sum(e[1] for e in entries)
    if size <= limit:
        return
    for _, file_size, path in sorted(entries):
        if size <= limit * 3 // 4:
            break
        with contextlib.suppress(OSError):
            os.remove(path)
        size -= file_size


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace.update(jnp=jnp, np=np, jax=jax, jaxinfo=jaxinfo)

"""Fixtures shared by the test modules, and the hypothesis profiles."""

import os

import jax
import pytest
from hypothesis import HealthCheck, Phase, settings

# Profiles of the property suite (tests/test_properties.py), chosen with the
# HYPOTHESIS_PROFILE environment variable. "ci" (the default) is small and
# reproducible: the same examples on every run, no shrinking (a failure
# prints its drawn features; rerun under "random" or "deep" to shrink it).
# "random" is a short random search for every kernel change: new examples on
# each run, shrunk, printed with a reproduce blob, and kept in .hypothesis/
# so that the next run replays them first; the README gives the bounded
# command. "deep" is a long random search, for runs by hand. "ci-extra" is
# "ci" on the layouts that "ci" leaves out (tests/strategies.py), a step of
# its own in .ci/run.
for _name in ("ci", "ci-extra"):
    settings.register_profile(
        _name,
        max_examples=30,
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
        print_blob=True,
    )
settings.register_profile(
    "random",
    max_examples=60,
    deadline=None,
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
    print_blob=True,
)
settings.register_profile(
    "deep",
    max_examples=1000,
    deadline=None,
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Runs each property test in one xdist worker, with all its regimes, so
    that they share its compiled programs.

    ``tryfirst``: xdist reads the marks in a hook of its own, which must come
    after this one.
    """
    for item in items:
        if item.path.name == "test_properties.py":
            item.add_marker(pytest.mark.xdist_group(item.originalname))


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_call(item):
    """Seeds a parametrized property test's examples from its id without the
    xdist group, so that the ci profile draws the same examples whether the
    suite runs in workers (``--dist loadgroup`` appends ``@group`` to the id)
    or in one process (``-n 0``, as a debugger needs).

    Hypothesis's own wrapper of this hook sets the seed from ``item.nodeid``;
    ``trylast`` runs this one inside it, after it.
    """
    inner = getattr(getattr(getattr(item, "obj", None), "hypothesis", None), "inner_test", None)
    key = getattr(inner, "_hypothesis_internal_add_digest", None)
    if key is not None and b"@" in key:
        inner._hypothesis_internal_add_digest = key.split(b"@")[0]
    yield


@pytest.fixture
def x64():
    """Runs the test with float64 enabled (and restores the default after)."""
    with jax.enable_x64(True):
        yield

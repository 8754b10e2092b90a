"""Fixtures shared by the test modules."""

import jax
import pytest


@pytest.fixture
def x64():
    """Runs the test with float64 enabled (and restores the default after)."""
    with jax.enable_x64(True):
        yield

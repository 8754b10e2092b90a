"""Runs the multi-device tests in a process of their own, with 8 CPU devices.

JAX fixes the number of CPU devices when it starts, from ``XLA_FLAGS``; this
process started with one. ``tests/multidevice`` therefore runs in a fresh
interpreter with ``--xla_force_host_platform_device_count=8``, and this test
passes only if every test there ran and passed.
"""

import os
import pathlib
import subprocess
import sys

import pytest

# A minute of compiling sharded programs: a step of .ci/run (python -m pytest -m slow),
# not the README's test command.
pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_multidevice_suite_passes_on_8_cpu_devices():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        # -n 0: in this one process (the suite's addopts would start xdist workers,
        # each of which would compile the same sharded programs again)
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/multidevice",
            "-q",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert " passed" in output, output
    assert "skipped" not in output, output

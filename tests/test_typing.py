"""The annotations accept what the functions take: a user's script, type-checked and run.

``tests/user_typing/user_script.py`` calls every public function as a user
would, with Python lists and tuples, NumPy and JAX arrays and tuple axes.
basedpyright (the ``test`` extra; it ships its own Node.js, so it runs offline)
checks it against this checkout's ``jaxinfo``, with
``tests/user_typing/pyrightconfig.json``, together with a second script that
has a known error, which must be reported: a checker that could not see
jaxinfo's annotations would pass the first script too.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import runpy
import subprocess
import sys

import pytest

# Node.js type-checking and a script of first calls (a compilation each): a step of
# .ci/run (python -m pytest -m slow), not the README's test command.
pytestmark = pytest.mark.slow

HERE = pathlib.Path(__file__).parent / "user_typing"
USER_SCRIPT = HERE / "user_script.py"

# A list is not an axis (jnp reductions take an int or a tuple); line 3 is the call.
BAD_SCRIPT = """import jaxinfo

jaxinfo.entropy([0.5, 0.5], axis=[0])
"""


def _diagnostics(tmp_path: pathlib.Path) -> dict[str, list[dict]]:
    if importlib.util.find_spec("basedpyright") is None:
        pytest.skip("basedpyright is not installed; pip install '.[test]' installs it")
    bad = tmp_path / "bad_script.py"
    bad.write_text(BAD_SCRIPT)
    command = [
        sys.executable,
        "-m",
        "basedpyright",
        "--outputjson",
        "--project",
        str(HERE / "pyrightconfig.json"),
        str(USER_SCRIPT),
        str(bad),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"basedpyright gave no report (exit {run.returncode}):\n{run.stderr}")
    found: dict[str, list[dict]] = {USER_SCRIPT.name: [], bad.name: []}
    for d in report["generalDiagnostics"]:
        if d["severity"] == "error":
            found.setdefault(pathlib.Path(d["file"]).name, []).append(d)
    assert report["summary"]["filesAnalyzed"] == 2, report["summary"]
    return found


def test_user_script_type_checks(tmp_path):
    found = _diagnostics(tmp_path)
    errors = [
        f"{pathlib.Path(d['file']).name}:{d['range']['start']['line'] + 1}: {d['message']}"
        for d in found[USER_SCRIPT.name]
    ]
    assert not errors, "\n".join(errors)
    # ... while the checker does see the annotations: the list axis is an error.
    (bad,) = found["bad_script.py"]
    assert bad["range"]["start"]["line"] + 1 == 3
    assert '"axis"' in bad["message"]


def test_user_script_runs():
    runpy.run_path(str(USER_SCRIPT), run_name="__main__")

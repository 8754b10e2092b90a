"""A tiny-shape run of the benchmark suite: it runs and reports well-formed figures.

No timing is asserted: the figures of a shared test machine mean nothing. What
is checked is that every contender of every case ran, in both modes where it
can, and that the table and the JSON carry all of it.
"""

import json
import math

import pytest

from benchmarks import cases, run, suite

SHAPES = ((4, 8),)
DTYPES = ("float32", "bfloat16")


@pytest.fixture(scope="module")
def report():
    return suite.run(shapes=SHAPES, dtypes=DTYPES, repeats=2, min_time=1e-4)


def _expected_rows():
    for case in cases.CASES:
        for mode in suite.MODES:
            for contender in case.contenders:
                if mode == "vg" and contender.backend != "jax":
                    continue
                for shape in SHAPES:
                    for dtype in DTYPES:
                        yield case.measure, mode, shape, dtype, contender.name


def test_every_contender_is_measured_with_finite_positive_times(report):
    got = {
        (r["measure"], r["mode"], tuple(r["shape"]), r["dtype"], r["contender"]): r
        for r in report["results"]
    }
    expected = set(_expected_rows())
    assert set(got) == expected
    for key, row in got.items():
        assert math.isfinite(row["time_s"]) and row["time_s"] > 0, key
        assert row["rounds"] == 2 and row["calls_per_sample"] >= 1, key
        if row["contender"] == "jaxinfo":
            assert row["ratio"] is None, key
        else:
            for field in ("ratio", "ratio_p25", "ratio_p75"):
                assert math.isfinite(row[field]) and row[field] > 0, (key, field)
            assert row["ratio_p25"] <= row["ratio"] <= row["ratio_p75"], key
        if row["backend"] == "jax":
            assert isinstance(row["temp_bytes"], int) and row["temp_bytes"] >= 0, key
        else:
            assert row["temp_bytes"] is None, key


def test_both_modes_and_every_backend_are_covered(report):
    modes = {(r["measure"], r["mode"]) for r in report["results"]}
    assert modes == {(c.measure, m) for c in cases.CASES for m in suite.MODES}
    names = {r["contender"] for r in report["results"]}
    assert {"jaxinfo", "naive", "jax.scipy", "optax", "scipy"} <= names


def test_targets_are_all_checked(report):
    checked = {(t["measure"], t["mode"], t["other"], t["kind"]) for t in report["targets"]}
    assert checked == {(t.measure, t.mode, t.other, t.kind) for t in cases.TARGETS}
    for t in report["targets"]:
        assert isinstance(t["met"], bool)
        assert math.isfinite(t["worst"]) and t["worst"] >= 0
        assert t["met"] == (t["worst"] <= t["max_ratio"])


def test_report_is_json_with_its_environment(report):
    back = json.loads(json.dumps(report))
    assert back["results"] == report["results"]
    env = back["environment"]
    for key in ("jax", "jaxinfo", "optax", "scipy", "numpy", "cpu", "device", "date"):
        assert env[key], key
    assert len(env["load_average_before"]) == 3
    assert back["settings"]["shapes"] == [list(s) for s in SHAPES]


def test_tables_name_every_measure_contender_and_configuration(report):
    text = suite.format_tables(report)
    for case in cases.CASES:
        assert f"| {case.measure} |" in text
    for name in ("naive", "naive_normalised", "jax.scipy", "optax", "scipy"):
        assert f"| {name} |" in text
    assert "4x8 f32" in text and "4x8 bf16" in text
    for heading in ("Time ratio", "Median time per call", "temporary memory", "Targets"):
        assert heading in text


def test_command_line_writes_json_and_prints_the_table(tmp_path, capsys):
    path = tmp_path / "out" / "cpu.json"
    got = run.main(
        [
            "--quick",
            "--cases",
            "entropy",
            "--dtypes",
            "float32",
            "--repeats",
            "2",
            "--json",
            str(path),
        ]
    )
    printed = capsys.readouterr().out
    assert "| entropy | fwd | naive |" in printed
    written = json.loads(path.read_text())
    assert written["settings"]["command"].startswith("python -m benchmarks.run --quick")
    assert len(written["results"]) == len(got["results"]) > 0
    assert {r["measure"] for r in written["results"]} == {"entropy"}


def test_command_line_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit, match="unknown case"):
        run.main(["--quick", "--cases", "entropy,perplexity"])
    with pytest.raises(SystemExit):
        run.parse_args(["--shapes", "4096xten"])
    assert "a shape is written like 4096x1024" in capsys.readouterr().err

"""A tiny-shape run of the benchmark suite: it runs and reports well-formed figures.

No timing is asserted: the figures of a shared test machine mean nothing. What
is checked is that every contender of every case ran, in each of the case's
modes where it can, that the table and the JSON carry all of it, and (on
made-up figures) that the targets are judged in the right direction.
"""

import json
import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import cases, run, suite

SHAPES = ((4, 8),)
DTYPES = ("float32", "bfloat16")


@pytest.fixture(scope="module")
def report():
    return suite.run(shapes=SHAPES, dtypes=DTYPES, repeats=2, min_time=1e-4)


def _expected_rows():
    for case in cases.CASES:
        for mode in case.modes:
            for contender in case.contenders:
                if not contender.runs_in(mode):
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
    assert modes == {(c.measure, m) for c in cases.CASES for m in c.modes}
    assert {m for _, m in modes} == set(suite.MODES) == {"fwd", "vg", "grad"}
    names = {r["contender"] for r in report["results"]}
    assert {"jaxinfo", "naive", "jax.scipy", "optax", "scipy", "vmap", "read"} <= names


def test_every_case_has_a_vmap_contender_in_each_mode_and_a_forward_read_floor(report):
    measured = {(r["measure"], r["mode"], r["contender"]) for r in report["results"]}
    for case in cases.CASES:
        for mode in case.modes:
            assert (case.measure, mode, "vmap") in measured, (case.measure, mode)
            assert ((case.measure, mode, "read") in measured) == (mode == "fwd"), (
                case.measure,
                mode,
            )
    assert report["settings"]["modes"] == ["fwd", "vg", "grad"]


@pytest.mark.parametrize("case", cases.CASES, ids=lambda c: c.measure)
def test_vmap_and_read_compute_what_they_claim(case):
    args = case.inputs(jax.random.key(1), (4, 8), jnp.dtype("float32"))
    by_name = {c.name: c for c in case.contenders}
    batched = by_name["jaxinfo"].fn(*args)
    np.testing.assert_allclose(by_name["vmap"].fn(*args), batched, rtol=1e-5, atol=1e-6)
    # vmap hands the function one row (and one scalar label) per call.
    seen = []

    def per_row(*row):
        seen.append(tuple(a.shape for a in row))
        return by_name["jaxinfo"].fn(*row)

    jax.eval_shape(jax.vmap(per_row), *args)  # traces, runs nothing
    assert seen == [tuple(a.shape[1:] for a in args)]
    read = by_name["read"].fn(*args)
    want = sum(jnp.sum(a, axis=-1) for a in args if jnp.issubdtype(a.dtype, jnp.floating))
    if case.measure == "cross_entropy_from_labels":
        want = want + args[0].astype(want.dtype)
    np.testing.assert_allclose(read, want, rtol=1e-6)
    assert by_name["read"].modes == ("fwd",)


def test_targets_are_all_checked(report):
    checked = {(t["measure"], t["mode"], t["other"], t["kind"]) for t in report["targets"]}
    assert checked == {(t.measure, t.mode, t.other, t.kind) for t in cases.TARGETS}
    for t in report["targets"]:
        assert isinstance(t["met"], bool)
        assert math.isfinite(t["worst"]) and t["worst"] >= 0
        if t["min_ratio"] is None:
            assert t["met"] == (t["worst"] <= t["max_ratio"])
        else:
            assert t["max_ratio"] is None
            assert t["met"] == (t["worst"] >= t["min_ratio"])


def test_the_targets_of_issue_12():
    by_key = {(t.measure, t.mode, t.other, t.kind): t for t in cases.TARGETS}
    assert by_key[("entropy", "fwd", "naive", "time")].max_ratio == 1.60
    assert by_key[("entropy", "vg", "naive", "time")].max_ratio == 1.00
    assert by_key[("entropy", "grad", "naive", "time")].max_ratio == 1.90
    assert by_key[("cross_entropy_from_logits", "fwd", "optax", "time")].max_ratio == 1.60
    vmap = [t for t in cases.TARGETS if t.other == "vmap"]
    assert {(t.measure, t.mode) for t in vmap} == {
        (c.measure, m) for c in cases.CASES for m in ("fwd", "vg")
    }
    assert all(t.min_ratio == 0.95 and t.max_ratio is None for t in vmap)
    for t in cases.TARGETS:
        case = cases.CASES_BY_NAME[t.measure]
        assert t.mode in case.modes, t
        assert any(c.name == t.other and c.runs_in(t.mode) for c in case.contenders), t


def _made_up(ratios, other="vmap", mode="fwd"):
    """Measurements of jaxinfo and ``other`` at one shape, one ratio per dtype."""
    out = []
    for dtype, ratio in ratios.items():
        for name, r in (("jaxinfo", None), (other, ratio)):
            out.append(
                suite.Measurement(
                    measure="entropy",
                    mode=mode,
                    shape=(4, 8),
                    dtype=dtype,
                    contender=name,
                    backend="jax",
                    formula="",
                    time_s=1e-3,
                    ratio=r,
                    ratio_p25=r,
                    ratio_p75=r,
                    temp_bytes=0,
                    calls_per_sample=1,
                    rounds=1,
                )
            )
    return out


@pytest.mark.parametrize(
    ("ratios", "worst", "worst_dtype", "met"),
    [
        ({"float32": 1.02, "bfloat16": 0.97}, 0.97, "bfloat16", True),
        ({"float32": 0.95, "bfloat16": 1.30}, 0.95, "float32", True),  # the bound itself
        ({"float32": 1.20, "bfloat16": 0.94}, 0.94, "bfloat16", False),
        ({"float32": 0.50, "bfloat16": 0.90}, 0.50, "float32", False),
        ({"float32": 1.10, "bfloat16": float("nan")}, None, "bfloat16", False),
    ],
)
def test_a_min_ratio_target_is_met_only_when_every_figure_is_at_least_its_bound(
    ratios, worst, worst_dtype, met
):
    target = cases.Target("entropy", "fwd", "vmap", min_ratio=0.95)
    (got,) = suite.check_targets(_made_up(ratios), (target,))
    assert got["met"] is met
    assert got["worst_at"] == f"4x8 {worst_dtype}"
    if worst is None:
        assert math.isnan(got["worst"])
    else:
        assert got["worst"] == worst
    table = suite.format_tables({"results": [], "targets": [got]})
    assert (
        f"| entropy | fwd | time vs vmap | >= 0.95 | {got['worst']:.2f} (4x8 {worst_dtype}) |"
        in (table)
    )
    assert table.rstrip().endswith("met |" if met else "MISSED |")


@pytest.mark.parametrize(
    ("ratios", "worst", "met"),
    [
        ({"float32": 1.60, "bfloat16": 0.70}, 1.60, True),
        ({"float32": 1.61, "bfloat16": 0.70}, 1.61, False),
    ],
)
def test_a_max_ratio_target_keeps_its_direction(ratios, worst, met):
    target = cases.Target("entropy", "fwd", "naive", 1.60)
    (got,) = suite.check_targets(_made_up(ratios, other="naive"), (target,))
    assert (got["worst"], got["met"]) == (worst, met)
    assert "| <= 1.60 |" in suite.format_tables({"results": [], "targets": [got]})


def test_a_target_has_exactly_one_bound_and_unmeasured_targets_are_left_out():
    with pytest.raises(ValueError, match="exactly one"):
        cases.Target("entropy", "fwd", "vmap")
    with pytest.raises(ValueError, match="exactly one"):
        cases.Target("entropy", "fwd", "vmap", 1.0, min_ratio=0.95)
    target = cases.Target("entropy", "vg", "vmap", min_ratio=0.95)
    assert suite.check_targets(_made_up({"float32": 1.0}), (target,)) == []


def test_the_tables_of_an_older_json_still_format():
    # Reports written before min_ratio existed have targets with max_ratio only
    # (the format of the 2026-11-28 run): made here from the committed results.
    path = pathlib.Path(__file__).parent.parent / "benchmarks" / "results" / "cpu.json"
    report = json.loads(path.read_text())
    old = dict(report)
    old["targets"] = [
        {k: v for k, v in t.items() if k != "min_ratio"}
        for t in report["targets"]
        if t.get("min_ratio") is None
    ]
    assert old["targets"] and all("min_ratio" not in t for t in old["targets"])
    text = suite.format_tables(old)
    assert "| <= 1.60 |" in text


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
    for name in ("naive", "naive_normalised", "jax.scipy", "optax", "scipy", "vmap", "read"):
        assert f"| {name} |" in text
    assert "| entropy | grad | naive |" in text
    assert "| >= 0.95 |" in text and "| <= 1.60 |" in text
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
            "--modes",
            "fwd",
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
    assert {r["mode"] for r in written["results"]} == {"fwd"}
    assert {"vmap", "read"} <= {r["contender"] for r in written["results"]}


def test_command_line_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit, match="unknown case"):
        run.main(["--quick", "--cases", "entropy,perplexity"])
    with pytest.raises(SystemExit, match="unknown mode"):
        run.main(["--quick", "--modes", "fwd,backward"])
    with pytest.raises(SystemExit):
        run.parse_args(["--shapes", "4096xten"])
    assert "a shape is written like 4096x1024" in capsys.readouterr().err
